"""Where weight files and checkpoints come from: an explicit path, the tokbench weights folder, the
Hugging Face / torch hub caches, or a download when the network allows it.

Every miss becomes one line naming the file and where to put it; nothing here guesses a substitute.
"""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tokbench.errors import MissingWeightsError
from tokbench.registry import Registry


def cache_root() -> Path:
    """tokbench's cache folder: $TOKBENCH_CACHE, else $XDG_CACHE_HOME/tokbench, else ~/.cache/tokbench."""
    if os.environ.get("TOKBENCH_CACHE"):
        return Path(os.environ["TOKBENCH_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tokbench"


def weights_dir() -> Path:
    """Folder searched for weight files by name: $TOKBENCH_WEIGHTS, else <cache>/weights."""
    if os.environ.get("TOKBENCH_WEIGHTS"):
        return Path(os.environ["TOKBENCH_WEIGHTS"]).expanduser()
    return cache_root() / "weights"


@dataclass(frozen=True)
class WeightFile:
    """A standard weights file: where it lives online and the name it is looked for under locally."""

    name: str  # registry key, e.g. "inception-fid"
    filename: str  # local file name, e.g. "pt_inception-2015-12-05-6726825d.pth"
    hub_repo: Optional[str] = None  # Hugging Face repo id
    hub_filename: Optional[str] = None  # path inside the repo (default: filename)
    url: Optional[str] = None  # plain URL download (torch hub style)
    sha256: Optional[str] = None  # pinned checksum; a mismatch is refused
    torch_hub_name: Optional[str] = None  # file name inside $TORCH_HOME/hub/checkpoints
    description: str = ""
    license: str = ""

    def candidates(self) -> list[Path]:
        """Local places searched, in order."""
        paths = [weights_dir() / self.filename]
        if self.torch_hub_name or self.url:
            paths.append(torch_hub_dir() / (self.torch_hub_name or self.filename))
        return paths

    def discard_partial(self) -> list[Path]:
        """Remove what an interrupted download leaves in the searched places (0-byte files and ``.part``
        files) so it is never loaded or mistaken for the weights; returns the removed paths."""
        removed = []
        for p in self.candidates():
            for cand in (p, p.with_name(p.name + ".part")):
                if cand.is_file() and (cand.suffix == ".part" or cand.stat().st_size == 0):
                    cand.unlink()
                    removed.append(cand)
        return removed

    def find_local(self) -> Optional[Path]:
        for p in self.candidates():
            if p.is_file():
                return p
        if self.hub_repo:
            try:
                from huggingface_hub import try_to_load_from_cache

                hit = try_to_load_from_cache(self.hub_repo, self.hub_filename or self.filename)
                if isinstance(hit, str) and Path(hit).is_file():
                    return Path(hit)
            except ImportError:
                pass
        return None

    def where_to_put(self) -> str:
        return str(weights_dir() / self.filename)


def torch_hub_dir() -> Path:
    torch_home = os.environ.get("TORCH_HOME")
    base = Path(torch_home) if torch_home else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return base / "hub" / "checkpoints"


WEIGHTS: Registry[WeightFile] = Registry("weights file")


def register_weights(wf: WeightFile) -> WeightFile:
    return WEIGHTS.add(wf.name, wf)


def resolve(wf: WeightFile, explicit: Optional[str | Path] = None, download: Optional[bool] = None,
            what: str = "") -> Path:
    """Return a local path to ``wf`` or raise MissingWeightsError with one line saying where to put it.

    ``download`` None means: try only when TOKBENCH_OFFLINE / HF_HUB_OFFLINE are unset.
    """
    label = what or wf.name
    removed = wf.discard_partial()
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"{label}: checkpoint file {p} does not exist")
        return verify_checksum(wf, p, label)
    local = wf.find_local()
    if local is not None:
        return verify_checksum(wf, local, label)
    if download is None:
        download = not (os.environ.get("TOKBENCH_OFFLINE") or os.environ.get("HF_HUB_OFFLINE"))
    errors = [f"removed partial download {p}" for p in removed]
    if download and wf.hub_repo:
        unreachable = hub_unreachable()
        if unreachable:
            download = False
            errors.append(unreachable)
    if download:
        try:
            return verify_checksum(wf, _download(wf), label)
        except MissingWeightsError:
            raise
        except Exception as e:  # network errors of every kind end in the same one-line message
            errors.append(f"download failed: {type(e).__name__}")
    source = f" (from hf://{wf.hub_repo}/{wf.hub_filename or wf.filename})" if wf.hub_repo else (
        f" (from {wf.url})" if wf.url else "")
    why = "".join(f"; {e}" for e in errors)
    raise MissingWeightsError(
        f"{label}: missing {wf.filename}{source}; put it at {wf.where_to_put()} or pass its path{why}")


HUB_PROBE_SECONDS = 3.0


def hub_unreachable(timeout: float = HUB_PROBE_SECONDS) -> Optional[str]:
    """Why the Hugging Face hub cannot be reached, or None when it can (or a proxy decides).

    The hub client retries for ~30 s before failing with an unrelated message; one TCP connection attempt
    (name lookup included, bounded by ``timeout``) tells an offline machine at once.
    """
    if os.environ.get("TOKBENCH_OFFLINE") or os.environ.get("HF_HUB_OFFLINE"):
        return "offline: TOKBENCH_OFFLINE / HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # only the proxy knows; let the hub client try
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    result: list[Optional[str]] = [f"no answer from {host} within {timeout:g} s"]

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result[0] = None
        except OSError as e:
            result[0] = f"{host} unreachable: {e.strerror or type(e).__name__}"

    t = threading.Thread(target=probe, daemon=True)  # the name lookup ignores socket timeouts
    t.start()
    t.join(timeout)
    return f"the Hugging Face hub is unreachable ({result[0]})" if result[0] else None


def _download(wf: WeightFile) -> Path:
    target = weights_dir() / wf.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    if wf.hub_repo:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the failure becomes our one line, not a log dump

        return Path(hf_hub_download(wf.hub_repo, wf.hub_filename or wf.filename))
    if wf.url:
        import torch.hub

        tmp = target.with_name(target.name + ".part")
        try:
            torch.hub.download_url_to_file(wf.url, str(tmp), progress=False)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if tmp.stat().st_size == 0:
            tmp.unlink()
            raise MissingWeightsError(f"{wf.name}: the download from {wf.url} was empty (removed)")
        os.replace(tmp, target)
        return target
    raise MissingWeightsError(f"{wf.name}: no download source known")


def verify_checksum(wf: WeightFile, path: Path, label: str) -> Path:
    if wf.sha256:
        from tokbench.data.dataset import sha256_file

        got = sha256_file(path)
        if got != wf.sha256:
            raise MissingWeightsError(
                f"{label}: {path} has sha256 {got[:12]}…, expected {wf.sha256[:12]}… (refusing a mismatched file)")
    return path


def status() -> list[dict]:
    """One row per registered weights file: present or missing, and where."""
    rows = []
    for name, wf in WEIGHTS.items():
        local = wf.find_local()
        rows.append({"name": name, "file": wf.filename, "present": local is not None,
                     "path": str(local) if local else wf.where_to_put(), "description": wf.description})
    return rows

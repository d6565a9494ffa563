"""Where built embedded datasets live and how they are written, recorded and re-hashed.

A dataset is built into ``<tokbench cache>/datasets/<name>-<recipe[:12]>/``: lossless files (PNG images,
FFV1 Matroska videos) plus ``build.json`` recording every item's annotations, its file sha256 and the sha256
of its decoded pixels. The recipe hash covers the dataset's recipe version, its committed annotation
files and the pinned sources it reads, so a changed input builds into a new folder instead of mixing.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from tokbench.weights import cache_root


def datasets_cache() -> Path:
    """Where built embedded datasets live: $TOKBENCH_DATA_CACHE, else <tokbench cache>/datasets (kept apart
    from result caches so that a fresh result cache does not rebuild the data)."""
    env = os.environ.get("TOKBENCH_DATA_CACHE")
    return Path(env).expanduser() if env else cache_root() / "datasets"


def pixels_sha256(pixels: np.ndarray) -> str:
    """sha256 of decoded pixels (shape and dtype included): unlike file bytes it does not depend on the
    PNG/FFV1 encoder version, so it is what the committed pins compare."""
    a = np.ascontiguousarray(pixels)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(rgb)).save(path, format="PNG", compress_level=1)


def write_ffv1(path: Path, frames: np.ndarray, fps: float) -> None:
    """Lossless FFV1 (RGB) in Matroska with bit-exact muxing, so equal frames give equal bytes."""
    import av
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(100000)
    with av.open(str(path), "w", format="matroska", options={"fflags": "+bitexact"}) as out:
        s = out.add_stream("ffv1", rate=rate)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "bgr0"
        flags = getattr(av.codec.context, "Flags", None)  # no encoder version string in the stream
        if flags is not None:
            s.codec_context.flags |= flags.bitexact
        s.options = {"threads": "1", "slicecrc": "0", "context": "0", "coder": "1"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def atomic_build_dir(final: Path):
    """Context manager yielding a temporary sibling folder (mode from the umask) that replaces ``final``
    as one unit on success."""
    from tokbench.cache import make_temp_dir, replace_dir

    @contextlib.contextmanager
    def _cm():
        tmp = make_temp_dir(final.parent, final.name)
        try:
            yield tmp
            replace_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # after a swap: the previous build

    return _cm()


@contextlib.contextmanager
def build_lock(final: Path):
    """Cross-process lock for building ``final`` (torchrun ranks, parallel CI jobs on one cache): one
    process builds, the others wait here and then find the build done."""
    import fcntl

    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process building {final.name}")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_record(folder: Path) -> dict | None:
    p = folder / "build.json"
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not all((folder / it["file"]).is_file() for it in rec.get("items", [])):
        return None
    return rec


def log(msg: str) -> None:
    print(f"tokbench: {msg}", file=sys.stderr, flush=True)

"""Content-addressed cache for reference-side results and finished items.

Keys are sha256 digests of everything that determines a value (dataset content hash, item id, metric
and evaluator descriptions, tokenizer description, protocol, resolution), so a hit is always valid and
an interrupted run resumes where it stopped. Writes are atomic: a killed process leaves no torn file.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tokbench.weights import cache_root


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it


def writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` if needed and prove a file can be written there, before any work depends on it."""
    from tokbench.errors import BadInputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInputError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".tokbench-probe."):
            pass
    except OSError as e:
        raise BadInputError(f"{what} {path} is not a writable folder ({e.strerror or e})") from None
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; reports are read by other users (leaderboard, CI)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_temp_dir(parent: Path, name: str) -> Path:
    """A hidden temporary sibling folder that follows the umask (mkdtemp alone makes it 0700)."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def replace_dir(new: Path, final: Path) -> None:
    """Put the finished folder ``new`` at ``final`` as one unit: a reader sees the old folder or the new one,
    never a mix. Where ``final`` exists it is swapped atomically (``new`` then holds the old folder, for the
    caller to delete); without renameat2 the old folder is renamed aside first (a reader may briefly find
    no folder, never a mixed one)."""
    import errno
    import uuid

    for _ in range(100):  # concurrent writers of one name: retry until one rename wins
        try:
            os.rename(new, final)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if _exchange(new, final):
            return
        aside = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
        try:
            os.rename(final, aside)
        except FileNotFoundError:
            continue
        os.rename(new, final)
        os.rename(aside, new)  # the caller deletes ``new`` (now the old folder)
        return
    raise OSError(f"could not move {new} to {final}: it keeps being replaced by another process")


def _json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True, sort_keys=True)


def _arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


_SHA_KEY = "__sha256__"


class Cache:
    """Entries carry the sha256 of their value: a torn, truncated or edited entry is never used; it is
    reported, recomputed and replaced."""

    def __init__(self, root: Optional[Path] = None, warn=None):
        self.root = Path(root) if root else cache_root() / "results"
        self.warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
        self.damaged = 0

    def _path(self, namespace: str, key: str, ext: str) -> Path:
        return self.root / namespace / key[:2] / f"{key}{ext}"

    def _damaged(self, p: Path, why: str) -> None:
        self.damaged += 1
        if self.damaged <= 5:  # a cache from an older tokbench would otherwise print one line per entry
            self.warn(f"cache entry {p} is damaged ({why}); recomputing and replacing it"
                      + ("; further damaged entries are replaced silently" if self.damaged == 5 else ""))

    def get_json(self, namespace: str, key: str) -> Optional[Any]:
        p = self._path(namespace, key, ".json")
        if not p.is_file():
            return None
        try:
            doc = json.loads(p.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self._damaged(p, f"unreadable: {type(e).__name__}")
            return None
        if not isinstance(doc, dict) or set(doc) != {"sha256", "value"}:
            self._damaged(p, "not a tokbench cache entry")
            return None
        if hashlib.sha256(_json_text(doc["value"]).encode()).hexdigest() != doc["sha256"]:
            self._damaged(p, "checksum mismatch")
            return None
        return doc["value"]

    def put_json(self, namespace: str, key: str, value: Any) -> None:
        text = _json_text(value)
        doc = '{"sha256": "%s", "value": %s}' % (hashlib.sha256(text.encode()).hexdigest(), text)
        self._write(self._path(namespace, key, ".json"), doc.encode())

    def _write(self, p: Path, data: bytes) -> None:
        try:
            atomic_write_bytes(p, data)
        except OSError as e:  # disk full, folder removed or made read-only mid-run
            from tokbench.errors import TokbenchError

            raise TokbenchError(f"cannot write cache entry {p} ({e.strerror or e}); free space or choose another "
                                "--cache-dir (entries written so far are kept)") from None

    def get_arrays(self, namespace: str, key: str) -> Optional[dict[str, np.ndarray]]:
        p = self._path(namespace, key, ".npz")
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ValueError ... for a torn file
            self._damaged(p, f"unreadable: {type(e).__name__}")
            return None
        stored = arrays.pop(_SHA_KEY, None)
        if stored is None or str(stored) != _arrays_sha256(arrays):
            self._damaged(p, "checksum mismatch" if stored is not None else "no checksum")
            return None
        return arrays

    def put_arrays(self, namespace: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays, **{_SHA_KEY: np.array(_arrays_sha256(arrays))})
        self._write(self._path(namespace, key, ".npz"), buf.getvalue())

    def count(self, namespace: str) -> int:
        d = self.root / namespace
        return sum(1 for _ in d.rglob("*.json")) if d.is_dir() else 0

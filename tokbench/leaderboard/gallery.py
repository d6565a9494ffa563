"""Failure gallery: the worst words and faces of a run, with the pixels to look at.

Reports keep numbers, not pixels, so the gallery reopens the run's datasets (the specs in its manifest),
rebuilds its tokenizer and reconstructs the chosen items again with the harness and the run's protocol.
Codecs and tokenizers are deterministic, so this is the reconstruction that was scored; the gallery checks
that by recomputing the item's PSNR and comparing it with the report.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from PIL import Image

from tokbench import harness
from tokbench.data.dataset import Dataset
from tokbench.data.items import Item
from tokbench.errors import BadInputError

TEXT_ORDER = ("T-NED", "T-ACC")  # worst first: lowest edit similarity, then wrong words
FACE_ORDER = ("F-Sim",)
PSNR_TOLERANCE_DB = 0.01


def worst_instances(rows: pd.DataFrame, level: str, order: tuple[str, ...], n: int,
                    resolution: Optional[int] = None, bins: Optional[list[str]] = None,
                    dataset: Optional[str] = None, item: str = "", text: str = "") -> pd.DataFrame:
    """The ``n`` worst scored instances of ``level`` (ascending by ``order``); unscored ones are skipped.

    ``bins``: only instances in these TokBench bins ("" = below the smallest bin, not in any ranked score);
    ``dataset``, ``item`` (substring) and ``text`` (ground-truth substring, case-insensitive) narrow further.
    """
    cols = [c for c in order if c in rows.columns]
    if not cols or rows.empty:
        return rows.iloc[:0]
    sel = rows[(rows["level"] == level) & rows[cols[0]].notna()]
    if resolution is not None:
        sel = sel[sel["resolution"] == resolution]
    if bins is not None:
        sel = sel[sel["bin"].fillna("").isin(list(bins))]
    if dataset:
        sel = sel[sel["dataset"] == dataset]
    if item.strip():
        sel = sel[sel["item"].astype(str).str.contains(item.strip(), case=False, regex=False)]
    if text.strip() and "gt" in sel.columns:
        sel = sel[sel["gt"].fillna("").astype(str).str.contains(text.strip(), case=False, regex=False)]
    return sel.sort_values([*cols, "dataset", "item", "instance"], kind="stable").head(n).reset_index(drop=True)


def nothing_failed(worst: pd.DataFrame, column: str, perfect: float = 1.0) -> bool:
    """Whether even the worst instance shown is perfect (every word read exactly / every identity kept)."""
    return not worst.empty and column in worst.columns and bool((worst[column] >= perfect).all())


def worst_items(rows: pd.DataFrame, n: int, resolution: Optional[int] = None, metric: str = "PSNR") -> pd.DataFrame:
    """Whole items (images or videos) with the lowest ``metric``: the gallery of runs without words or faces."""
    if metric not in rows.columns or rows.empty:
        return rows.iloc[:0]
    sel = rows[rows["level"].isin(["image", "video"]) & rows[metric].notna()]
    if resolution is not None:
        sel = sel[sel["resolution"] == resolution]
    return sel.sort_values([metric, "dataset", "item"], kind="stable").head(n).reset_index(drop=True)


def changed_instances(a, b, column: str, n: int, binned_only: bool = True) -> pd.DataFrame:
    """Instances (same key in both runs) whose ``column`` changed most from run A to run B: the pairing of
    ``tokbench check`` (``a`` and ``b`` are its RunSides), largest absolute change first."""
    from tokbench.check import _paired

    pairs, _, _ = _paired(a, b, column)
    if binned_only and (pairs["bin"] != "").any():
        pairs = pairs[pairs["bin"] != ""]
    pairs = pairs.assign(change=pairs["c"] - pairs["b"])
    pairs = pairs[pairs["change"] != 0]
    order = pairs["change"].abs().sort_values(ascending=False, kind="stable").index
    return pairs.loc[order].head(n).reset_index(drop=True)


def dataset_specs(manifest: dict) -> list[str]:
    """The dataset specs the run was started with (``--data`` or the suite's)."""
    cfg = manifest.get("config") or {}
    if cfg.get("datasets"):
        return [str(s) for s in cfg["datasets"]]
    return [str(s) for s in (manifest.get("suite_spec") or {}).get("datasets") or []]


def open_dataset(spec: str) -> Dataset:
    """A dataset from a spec as the pipeline opens it (registered name or ``scheme:folder``)."""
    from tokbench.data.external import open_dataset as open_spec
    from tokbench.suites import get_suite

    get_suite("text-face")  # registers the built-in datasets
    return open_spec(spec)


def find_dataset(manifest: dict, name: str, opener=open_dataset) -> Dataset:
    """The run's dataset called ``name``; a clear error when none of its specs opens to it."""
    specs = dataset_specs(manifest)
    errors = []
    for spec in specs:
        if ":" not in spec and spec != name:
            continue
        try:
            ds = opener(spec)
        except Exception as e:  # noqa: BLE001 - reported to the user with the spec
            errors.append(f"{spec}: {e}")
            continue
        if ds.name == name:
            return ds
    why = "; ".join(errors) if errors else f"the run's dataset specs are {specs or 'not recorded'}"
    raise BadInputError(f"cannot reopen dataset {name!r} of this run ({why})")


def find_item(ds: Dataset, item_id: str) -> Item:
    for item in ds.items:
        if item.id == item_id:
            return item
    raise BadInputError(f"dataset {ds.name} has no item {item_id!r} any more (the data changed since the run)")


def tokenizer_args(manifest: dict) -> dict:
    """How to rebuild the run's tokenizer (label, checkpoint, dtype) on this machine's CPU."""
    cfg = manifest.get("config") or {}
    tok = manifest.get("tokenizer") or {}
    return {"label": str(tok.get("label") or cfg.get("tokenizer") or ""),
            "checkpoint": cfg.get("checkpoint"), "dtype": str(manifest.get("dtype") or cfg.get("dtype") or "fp32"),
            "allow_unsafe": bool(cfg.get("allow_unsafe_checkpoint", False))}


def build_tokenizer(label: str, checkpoint: Optional[str] = None, dtype: str = "fp32", allow_unsafe: bool = False,
                    device: str = "cpu"):
    """The run's tokenizer; raises (e.g. MissingWeightsError) when it cannot be built here."""
    from tokbench.pipeline import DTYPES
    from tokbench.tokenizers.registry import create_tokenizer

    return create_tokenizer(label, checkpoint=checkpoint, device=device, dtype=DTYPES.get(dtype, DTYPES["fp32"]),
                            allow_unsafe=allow_unsafe)


def reconstruct(tokenizer, manifest: dict, item: Item, pixels: np.ndarray, resolution: int) -> harness.Reconstruction:
    """The item through the tokenizer with the run's protocol settings (as the pipeline does)."""
    proto = manifest.get("protocol") or {}
    label = f"{item.id}"
    if item.modality == "video":
        clip = (manifest.get("harness") or {}).get("clip_frames")
        return harness.reconstruct_video(tokenizer, pixels, resolution, label, clip_frames=clip,
                                         pad_multiple=int(proto.get("video_pad_multiple", 32)),
                                         resample=str(proto.get("video_resample", "bilinear")))
    return harness.reconstruct_images(tokenizer, [pixels], resolution, [label],
                                      resample=str(proto.get("image_resample", "lanczos")))[0]


def psnr(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """The report's PSNR convention (tokbench.metrics.pixel), for the re-run check."""
    from tokbench.metrics.pixel import psnr_per_frame

    return float(psnr_per_frame(original, reconstruction).mean())


def instance_region(words, faces, level: str, instance: int) -> tuple[int, tuple[float, float, float, float], str]:
    """(frame, box, annotation) of a word or face of an item (its ``words`` / ``faces``); the annotation is
    the word's text or the face's person."""
    if level == "word":
        if not 0 <= instance < len(words):
            raise BadInputError(f"word {instance} is not in the item's annotations any more")
        w = words[instance]
        return int(w.frame), tuple(w.box), w.text
    if level == "face":
        if not 0 <= instance < len(faces):
            raise BadInputError(f"face {instance} is not in the item's annotations any more")
        f = faces[instance]
        return int(f.frame), tuple(f.box), f.person or ""
    raise ValueError(f"no region for level {level!r}")


def crop(frames: np.ndarray, frame: int, box, margin: float = 0.15, min_margin: int = 2) -> np.ndarray:
    """The box (with a margin) out of one frame, clamped to the image."""
    img = frames[min(max(frame, 0), frames.shape[0] - 1)]
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    mx = max(min_margin, int(round((x1 - x0) * margin)))
    my = max(min_margin, int(round((y1 - y0) * margin)))
    xa, ya = max(0, int(np.floor(x0)) - mx), max(0, int(np.floor(y0)) - my)
    xb, yb = min(w, int(np.ceil(x1)) + mx), min(h, int(np.ceil(y1)) + my)
    return np.ascontiguousarray(img[ya:max(yb, ya + 1), xa:max(xb, xa + 1)])


def enlarge(image: np.ndarray, height: int) -> np.ndarray:
    """Blow a small crop up with nearest neighbour so its pixels stay visible (never shrinks)."""
    h, w = image.shape[:2]
    if h >= height:
        return image
    s = height / h
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * s)), height), Image.Resampling.NEAREST))


def canvas_crop(original: np.ndarray, geometry: harness.Geometry, frame: int, box) -> np.ndarray:
    """The same region on the canvas the tokenizer received (fit-resized, padded): what it had to work with,
    so resize loss and coding loss can be told apart."""
    g = geometry
    img = original[min(max(frame, 0), original.shape[0] - 1)][None]
    canvas = harness.to_canvas(img, g)
    sx, sy = g.fit_w / g.orig_w, g.fit_h / g.orig_h
    x0, y0, x1, y1 = box
    return crop(canvas, 0, (x0 * sx + g.left, y0 * sy + g.top, x1 * sx + g.left, y1 * sy + g.top))

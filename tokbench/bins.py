"""TokBench scale bins and aggregation.

Bins are half-open ``[lo, hi)`` on the instance ``ratio``; instances below the first bound belong to no
bin and are left out of binned scores. The TokBench Mean is the unweighted mean of the three bin means;
the micro average over all binned instances is reported beside it.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

BIN_NAMES = ("S", "M", "L")

TEXT_BINS = {256: (0.02, 0.03, 0.04, 1.0), 512: (0.01, 0.02, 0.03, 1.0), 1024: (0.005, 0.01, 0.02, 1.0)}
FACE_BINS_NEW = {256: (0.1, 0.2, 0.3, 1.0), 512: (0.05, 0.1, 0.2, 1.0), 1024: (0.02, 0.05, 0.1, 1.0)}
FACE_BINS_OLD = {256: (0.0, 0.1, 0.2, 1.0), 512: (0.0, 0.05, 0.2, 1.0), 1024: (0.0, 0.05, 0.1, 1.0)}
VIDEO_TEXT_BINS = {256: (0.01, 0.02, 0.03, 1.0), 480: (0.005, 0.01, 0.02, 1.0)}
VIDEO_FACE_BINS = {256: (0.05, 0.10, 0.2, 1.0), 480: (0.02, 0.05, 0.1, 1.0)}


def assign_bin(ratio: Optional[float], bounds: Sequence[float]) -> Optional[str]:
    """Bin name for ``ratio`` or None when it falls outside every bin (or is missing)."""
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return None
    for name, lo, hi in zip(BIN_NAMES, bounds[:-1], bounds[1:]):
        if lo <= ratio < hi:
            return name
    return None


def assign_bins(ratios: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    return np.array([assign_bin(None if r is None else float(r), bounds) for r in ratios], dtype=object)


def aggregate(values: np.ndarray, bins: np.ndarray) -> dict:
    """Per-bin means, their counts, the TokBench Mean (macro over bins) and the micro average.

    An empty bin has mean NaN; the Mean is then NaN too, since TokBench's Mean needs all three bins.
    """
    values = np.asarray(values, dtype=np.float64)
    out: dict = {}
    means = []
    binned = np.array([b is not None for b in bins], dtype=bool)
    for name in BIN_NAMES:
        sel = np.array([b == name for b in bins], dtype=bool) & ~np.isnan(values)
        out[f"n_{name}"] = int(sel.sum())
        m = float(values[sel].mean()) if sel.any() else float("nan")
        out[name] = m
        means.append(m)
    out["Mean"] = float(np.mean(means)) if not any(math.isnan(m) for m in means) else float("nan")
    ok = binned & ~np.isnan(values)
    out["n_binned"] = int(ok.sum())
    out["micro"] = float(values[ok].mean()) if ok.any() else float("nan")
    allv = values[~np.isnan(values)]
    out["n_all"] = int(allv.size)
    out["all"] = float(allv.mean()) if allv.size else float("nan")
    return out

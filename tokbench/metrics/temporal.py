"""Temporal consistency of a video reconstruction: how faithfully it reproduces frame-to-frame change.

Definition (metric ``tcons``, column ``TC-RMSE``, level "video", lower is better). For a clip of T >= 2
frames with original frames o_t and reconstructed frames r_t (uint8 RGB as float, 0..255):

    d_o(t) = o_{t+1} - o_t,   d_r(t) = r_{t+1} - r_t          (signed, per pixel and channel)
    TC-RMSE = sqrt( mean over t = 0..T-2, pixels, channels of (d_r(t) - d_o(t))^2 )

in 8-bit levels. It is 0 when the reconstruction changes exactly as the original does, so an error
that is constant over time (a static blur or colour shift, which PSNR already counts) costs nothing,
while flicker, temporal jitter or lost motion does. Equivalently it is the RMSE of the temporal
difference of the error e_t = r_t - o_t. Images and single-frame clips give no row.
"""
from __future__ import annotations

import numpy as np

from tokbench.errors import BadInputError
from tokbench.metrics.base import InstanceMetric, Sample, register_metric


def temporal_difference_rmse(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """TC-RMSE of (T, H, W, C) clips, T >= 2; accumulated frame pair by frame pair in float64."""
    if original.shape != reconstruction.shape or original.ndim != 4 or original.shape[0] < 2:
        raise BadInputError(f"temporal consistency needs two equal (T>=2, H, W, C) clips, got "
                            f"{original.shape} and {reconstruction.shape}")
    total = 0.0
    error_prev = reconstruction[0].astype(np.float64) - original[0]
    for t in range(1, original.shape[0]):
        error = reconstruction[t].astype(np.float64) - original[t]
        total += float(np.square(error - error_prev).sum())
        error_prev = error
    count = (original.shape[0] - 1) * original[0].size
    return float(np.sqrt(total / count))


class TemporalConsistency(InstanceMetric):
    name = "tcons"
    level = "video"
    columns = ("TC-RMSE",)
    higher_is_better = (False,)
    version = "1"

    def describe(self) -> dict:
        return {**super().describe(),
                "definition": "sqrt(mean_t,pixels,channels ((r[t+1]-r[t]) - (o[t+1]-o[t]))^2), 8-bit levels,"
                              " over all consecutive frame pairs; images give no row"}

    def score(self, sample: Sample, reference) -> list[dict]:
        if sample.original.shape[0] < 2:
            return []
        try:
            value = temporal_difference_rmse(sample.original, sample.reconstruction)
        except BadInputError as e:
            raise BadInputError(f"item {sample.item.id}: {e}") from None
        return [{"instance": 0, "TC-RMSE": value}]


@register_metric("tcons", "temporal-consistency")
def _tcons(protocol, device="cpu"):
    return TemporalConsistency()

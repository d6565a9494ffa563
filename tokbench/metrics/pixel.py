"""PSNR and SSIM on uint8 reconstructions at the original resolution, through torchmetrics.

Conventions (recorded in every manifest): RGB, fixed data range 255, per-image PSNR (videos: mean over
frames) capped at 100 dB for identical images; SSIM with an 11x11 Gaussian window, sigma 1.5, K1 0.01,
K2 0.03, averaged over channels and pixels, computed in float32.
"""
from __future__ import annotations

import numpy as np
import torch

from tokbench.metrics.base import InstanceMetric, Sample, register_metric

PSNR_CAP_DB = 100.0


def _as_batch(frames: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 255]."""
    return torch.from_numpy(np.array(frames, copy=True)).permute(0, 3, 1, 2).to(dtype)


def psnr_per_frame(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    from torchmetrics.functional.image import peak_signal_noise_ratio  # heavy import, only when scoring

    vals = peak_signal_noise_ratio(_as_batch(reconstruction), _as_batch(original), data_range=255.0,
                                   dim=(1, 2, 3), reduction="none")
    return np.minimum(vals.numpy(), PSNR_CAP_DB)


def ssim_per_frame(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    from torchmetrics.functional.image import structural_similarity_index_measure

    # float32: torch's float64 convolution is ~15x slower on CPU and SSIM agrees to ~1e-6
    # one frame at a time: a whole 720p clip in one call builds GBs of intermediates and runs ~2x slower
    vals = [structural_similarity_index_measure(
        _as_batch(r[None], torch.float32), _as_batch(o[None], torch.float32), gaussian_kernel=True, sigma=1.5,
        kernel_size=11, k1=0.01, k2=0.03, data_range=255.0, reduction="none").reshape(-1)
        for o, r in zip(original, reconstruction)]
    return torch.cat(vals).numpy()


class PSNR(InstanceMetric):
    name = "psnr"
    level = "image"
    columns = ("PSNR",)
    higher_is_better = (True,)

    def describe(self) -> dict:
        return {**super().describe(), "implementation": "torchmetrics peak_signal_noise_ratio",
                "convention": "RGB, data_range=255, mean of per-image (per-frame) PSNR, capped at 100 dB"}

    def score(self, sample: Sample, reference) -> list[dict]:
        return [{"instance": 0, "PSNR": float(psnr_per_frame(sample.original, sample.reconstruction).mean())}]


class SSIM(InstanceMetric):
    name = "ssim"
    level = "image"
    columns = ("SSIM",)
    higher_is_better = (True,)

    def describe(self) -> dict:
        return {**super().describe(), "implementation": "torchmetrics structural_similarity_index_measure",
                "convention": "RGB, Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03, data_range=255"}

    def score(self, sample: Sample, reference) -> list[dict]:
        return [{"instance": 0, "SSIM": float(ssim_per_frame(sample.original, sample.reconstruction).mean())}]


@register_metric("psnr")
def _psnr(protocol, device="cpu"):
    return PSNR()


@register_metric("ssim")
def _ssim(protocol, device="cpu"):
    return SSIM()

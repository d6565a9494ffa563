"""PSNR and SSIM on uint8 reconstructions at the original resolution (PSNR: torchmetrics' formula on an exact
integer error sum; SSIM as torchmetrics' SSIM map, computed with separable float64 blurs).

Conventions (recorded in every manifest): RGB, fixed data range 255, per-image PSNR (videos: mean over
frames) capped at 100 dB for identical images; SSIM with an 11x11 Gaussian window, sigma 1.5, K1 0.01,
K2 0.03, averaged over channels and pixels, computed in float64.
"""
from __future__ import annotations

import numpy as np
import torch

from tokbench.errors import BadInputError
from tokbench.metrics.base import InstanceMetric, Sample, register_metric

PSNR_CAP_DB = 100.0


def _as_batch(frames: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 255]."""
    return torch.from_numpy(np.array(frames, copy=True)).permute(0, 3, 1, 2).to(dtype)


# Both metrics run over horizontal strips of about this many pixels: whole-image calls on a 12 MP photo build
# GBs of float temporaries (torchmetrics' SSIM stacks five padded maps), which set a run's peak RSS. 2^18 was
# the fastest of 2^18..2^20 (2.7x less CPU than whole images, peak +91 MiB on 3 MP photos).
STRIP_PIXELS = 1 << 18
SSIM_HALO = 5  # (11 - 1) / 2: rows of context a strip needs on each side for the 11x11 window


def _strips(height: int, width: int, halo: int = 0) -> list[tuple[int, int]]:
    rows = max(STRIP_PIXELS // max(width, 1), 32)
    bounds = list(range(0, height, rows)) + [height]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] <= halo:  # a last sliver too thin to reflect-pad
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:]))


def squared_error(original: np.ndarray, reconstruction: np.ndarray) -> int:
    """Exact sum of squared differences of two uint8 arrays (int64 over row strips: small temporaries)."""
    total = 0
    for a, b in _strips(*original.shape[:2]):
        d = reconstruction[a:b].astype(np.int32)
        d -= original[a:b]
        np.square(d, out=d)  # at most 255**2: no overflow
        total += int(d.sum(dtype=np.int64))
    return total


def psnr_from_error(sse: int, count: int) -> float:
    """torchmetrics' PSNR (PeakSignalNoiseRatio, float64 states, data_range 255, base 10) of an exact error sum:
    its compute steps with its dtypes (the log of the base taken in float32, as torchmetrics does), so the same
    value to the bit (tested against torchmetrics). torchmetrics' float64 sums of squared uint8 differences
    are exact integers (< 2**53). Not imported here: importing torchmetrics loads transformers and torchvision
    (~290 MiB of RSS for the whole run) for three operations."""
    mse = torch.tensor(float(sse), dtype=torch.float64) / torch.tensor(count)
    base_e = 2 * torch.log(torch.tensor(255.0, dtype=torch.float64)) - torch.log(mse)
    return float(base_e * (10 / torch.log(torch.tensor(10.0))))


def psnr_per_frame(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """torchmetrics' PeakSignalNoiseRatio per frame (data_range 255, float64 state), capped at 100 dB."""
    vals = np.array([psnr_from_error(squared_error(o, r), o.size) for o, r in zip(original, reconstruction)])
    return np.minimum(vals, PSNR_CAP_DB)


def psnr_pooled(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """PSNR of the MSE pooled over all frames of a clip (one torchmetrics state fed every frame, its
    default dim=None), capped at 100 dB; LARP's per-video convention. For a single image it equals
    psnr_per_frame."""
    sse = sum(squared_error(o, r) for o, r in zip(original, reconstruction))
    return min(psnr_from_error(sse, original[0].size * len(original)), PSNR_CAP_DB)


# SSIM's window: torchmetrics' Gaussian (kernel 11, sigma 1.5), normalised in float64. The 2-D window is the
# outer product of this 1-D one, so the blur runs as two 1-D passes (22 taps per pixel instead of 121).
SSIM_WINDOW = np.exp(-0.5 * (np.arange(-SSIM_HALO, SSIM_HALO + 1, dtype=np.float64) / 1.5) ** 2)
SSIM_WINDOW /= SSIM_WINDOW.sum()
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2


def _blur_columns_first(planes: np.ndarray) -> np.ndarray:
    """(L, H, W) float64 planes blurred in place along W, then along H; returned as (L, W, H) (C-contiguous).

    Borders reflect without repeating the edge (torch's "reflect", as torchmetrics pads; scipy's "mirror").
    The H pass runs on a transposed copy: scipy filters the last axis from contiguous lines and a strided
    axis -2 pass cost ~3x as much; each output is the same sum, so the values are identical. scipy.ndimage
    runs one thread and no BLAS: numpy's multi-threaded BLAS spun on a busy 2-core machine (12x the CPU time)."""
    from scipy import ndimage

    ndimage.correlate1d(planes, SSIM_WINDOW, axis=-1, mode="mirror", output=planes)
    columns = np.ascontiguousarray(planes.transpose(0, 2, 1))
    return ndimage.correlate1d(columns, SSIM_WINDOW, axis=-1, mode="mirror", output=columns)


def _ssim_map_transposed(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(3, W, H) SSIM map (see ``ssim_map``), computed in the blur's transposed layout with in-place steps
    (fresh temporaries cost page faults); the same operations on the same values as the formula reads."""
    height, width = original.shape[:2]
    moments = np.empty((4, 3, height, width))
    moments[0] = reconstruction.transpose(2, 0, 1)  # x: torchmetrics' preds
    moments[1] = original.transpose(2, 0, 1)  # y: and target
    np.multiply(moments[0], moments[0], out=moments[2])
    moments[2] += moments[1] * moments[1]
    np.multiply(moments[0], moments[1], out=moments[3])
    blurred = _blur_columns_first(moments.reshape(12, height, width)).reshape(4, 3, width, height)
    mu_x, mu_y, sq, xy = blurred
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x
    mu_sq += np.multiply(mu_y, mu_y, out=mu_x)
    variances = np.maximum(np.subtract(sq, mu_sq, out=sq), 0.0, out=sq)  # var_x + var_y, clamped as a sum
    covariance_term = np.subtract(xy, mu_xy, out=xy)
    covariance_term *= 2
    covariance_term += SSIM_C2
    numerator = mu_xy
    numerator *= 2
    numerator += SSIM_C1
    numerator *= covariance_term
    mu_sq += SSIM_C1
    variances += SSIM_C2
    mu_sq *= variances
    numerator /= mu_sq
    return numerator


def ssim_map(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(3, H, W) float64 SSIM map of two uint8 (H, W, 3) images: torchmetrics'
    structural_similarity_index_measure map (Gaussian window, reflect-padded borders, full-size map), computed
    with separable float64 blurs. The two variances are clamped at zero as a sum rather than one by one;
    in float64 they differ from that only by rounding (~1e-12)."""
    return _ssim_map_transposed(original, reconstruction).transpose(0, 2, 1)


def ssim_per_frame(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """torchmetrics' SSIM (mean of its map) per frame, computed strip by strip with a halo of real
    neighbouring rows, so the mean equals one whole-image call (tested against torchmetrics to 1e-6) with a
    bounded working set."""
    vals = np.empty(len(original))
    for t, (o, r) in enumerate(zip(original, reconstruction)):
        height, width = o.shape[:2]
        total = 0.0
        for a, b in _strips(height, width, SSIM_HALO):
            lo, hi = max(a - SSIM_HALO, 0), min(b + SSIM_HALO, height)
            strip = ssim_map(o[lo:hi], r[lo:hi])[:, a - lo:b - lo]
            total += float(np.ascontiguousarray(strip).sum())  # summed in row order, as the map reads
        vals[t] = total / (3 * height * width)
    return vals


class PSNR(InstanceMetric):
    """Video PSNR has two conventions (reference/metric-conventions.md 3): the mean of per-frame PSNR
    (``pooling="frames"``, column PSNR, the default) and the PSNR of the MSE pooled over the clip
    (``pooling="mse"``, metric psnr-pooled, column PSNR-pooled). They agree on images; on clips the mean
    is the larger (Jensen), and a frame reconstructed exactly counts as 100 dB however bad the others are."""

    name = "psnr"
    level = "image"
    columns = ("PSNR",)
    higher_is_better = (True,)
    POOLING = {"frames": "mean of per-image (per-frame) PSNR, capped at 100 dB",
               "mse": "PSNR of the MSE pooled over all frames of the item, capped at 100 dB"}

    def __init__(self, pooling: str = "frames"):
        if pooling not in self.POOLING:
            raise BadInputError(f"unknown PSNR pooling {pooling!r}; use one of {', '.join(self.POOLING)}")
        self.pooling = pooling
        if pooling == "mse":
            self.name, self.columns = "psnr-pooled", ("PSNR-pooled",)

    def describe(self) -> dict:
        return {**super().describe(), "implementation": "torchmetrics PeakSignalNoiseRatio's formula (float64) on the exact int64"
                                                             " sum of squared errors (its value bit for bit)",
                "convention": f"RGB, data_range=255, {self.POOLING[self.pooling]}"}

    def score(self, sample: Sample, reference) -> list[dict]:
        if self.pooling == "mse":
            return [{"instance": 0, "PSNR-pooled": psnr_pooled(sample.original, sample.reconstruction)}]
        return [{"instance": 0, "PSNR": float(psnr_per_frame(sample.original, sample.reconstruction).mean())}]


class SSIM(InstanceMetric):
    name = "ssim"
    level = "image"
    columns = ("SSIM",)
    higher_is_better = (True,)

    def describe(self) -> dict:
        return {**super().describe(),
                "implementation": "separable float64 Gaussian blurs reproducing torchmetrics'"
                                  " structural_similarity_index_measure map, row strips with a 5-row halo",
                "convention": "RGB, Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03, data_range=255"}

    def score(self, sample: Sample, reference) -> list[dict]:
        return [{"instance": 0, "SSIM": float(ssim_per_frame(sample.original, sample.reconstruction).mean())}]


@register_metric("psnr")
def _psnr(protocol, device="cpu"):
    return PSNR()


@register_metric("psnr-pooled")
def _psnr_pooled(protocol, device="cpu"):
    return PSNR(pooling="mse")


@register_metric("ssim")
def _ssim(protocol, device="cpu"):
    return SSIM()

"""Video PSNR conventions: mean of per-frame PSNR (default) against PSNR of the clip's pooled MSE."""
import numpy as np
import pytest

from tokbench.data.items import Item
from tokbench.errors import BadInputError
from tokbench.metrics.base import METRICS, Sample
from tokbench.metrics.pixel import PSNR

import tokbench.metrics.pixel  # noqa: F401  (registers psnr, psnr-pooled)


def clip():
    """Three 40x56 frames: the first reconstructed exactly, the others with +-3 and +-12 integer noise."""
    rng = np.random.default_rng(3)
    orig = rng.integers(20, 236, (3, 40, 56, 3), dtype=np.uint8)
    rec = orig.copy()
    rec[1] = orig[1] + rng.integers(-3, 4, orig[1].shape)
    rec[2] = orig[2] + rng.integers(-12, 13, orig[2].shape)
    return orig, rec


def sample(orig, rec):
    return Sample(Item(id="clip", modality="video", path=None), orig, rec)


def test_pooled_psnr_is_the_psnr_of_the_clip_mse():
    orig, rec = clip()
    mse = ((orig.astype(np.float64) - rec) ** 2).reshape(3, -1).mean(1)  # exact: integer differences
    pooled = METRICS.get("psnr-pooled")(None).score(sample(orig, rec), None)[0]["PSNR-pooled"]
    # rel 1e-7: torchmetrics rounds its final log to float32, as in test_pixel_metrics
    assert pooled == pytest.approx(10 * np.log10(255 ** 2 / mse.mean()), rel=1e-7)
    per_frame = METRICS.get("psnr")(None).score(sample(orig, rec), None)[0]["PSNR"]
    expected = np.mean([100.0, *(10 * np.log10(255 ** 2 / m) for m in mse[1:])])  # identical frame: the cap
    assert per_frame == pytest.approx(expected, rel=1e-7)
    assert per_frame > pooled + 20  # the exact frame inflates the mean


def test_conventions_agree_on_images_and_identical_clips():
    orig, rec = clip()
    one = sample(orig[2:], rec[2:])
    assert PSNR("mse").score(one, None)[0]["PSNR-pooled"] == pytest.approx(
        PSNR().score(one, None)[0]["PSNR"], rel=1e-12)
    assert PSNR("mse").score(sample(orig, orig), None)[0]["PSNR-pooled"] == 100.0
    assert PSNR("mse").describe()["convention"] != PSNR().describe()["convention"]
    assert PSNR("mse").columns == ("PSNR-pooled",) and PSNR().columns == ("PSNR",)
    with pytest.raises(BadInputError, match="pooling"):
        PSNR("median")

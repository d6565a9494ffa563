"""Temporal consistency (TC-RMSE): known values from its definition."""
import numpy as np
import pytest

from tokbench.data.items import Item
from tokbench.errors import BadInputError
from tokbench.metrics.base import METRICS, Sample
from tokbench.metrics.temporal import temporal_difference_rmse

import tokbench.metrics.temporal  # noqa: F401  (registers tcons)


def clip(seed=0, t=6, h=12, w=10):
    return np.random.default_rng(seed).integers(20, 230, (t, h, w, 3), dtype=np.uint8)


def video(orig, recon, item_id="v"):
    return Sample(Item(id=item_id, modality="video", path=f"{item_id}.mp4"), orig, recon)


def test_static_error_costs_nothing_and_flicker_costs_its_amplitude():
    o = clip()
    shifted = (o.astype(int) + 9).astype(np.uint8)  # same error in every frame: no temporal inconsistency
    assert temporal_difference_rmse(o, shifted) == 0.0
    d = 5  # alternating +d / -d brightness: every consecutive difference is off by exactly 2d
    flicker = (o.astype(int) + d * np.where(np.arange(len(o)) % 2 == 0, 1, -1)[:, None, None, None]).astype(np.uint8)
    assert temporal_difference_rmse(o, flicker) == pytest.approx(2 * d, abs=1e-12)


def test_matches_the_vectorised_definition():
    o, r = clip(1), clip(2)
    d_o = np.diff(o.astype(np.float64), axis=0)
    d_r = np.diff(r.astype(np.float64), axis=0)
    assert temporal_difference_rmse(o, r) == pytest.approx(np.sqrt(np.mean((d_r - d_o) ** 2)), rel=1e-12)


def test_frozen_reconstruction_loses_all_motion():
    o = clip(3)
    frozen = np.repeat(o[:1], len(o), axis=0)  # decoder repeats the first frame
    d_o = np.diff(o.astype(np.float64), axis=0)
    assert temporal_difference_rmse(o, frozen) == pytest.approx(np.sqrt(np.mean(d_o ** 2)), rel=1e-12)


def test_metric_rows_and_images_give_none():
    metric = METRICS.get("tcons")(None)
    assert metric.level == "video" and metric.columns == ("TC-RMSE",)
    o, r = clip(4), clip(5)
    assert metric.score(video(o, r), None) == [{"instance": 0, "TC-RMSE": temporal_difference_rmse(o, r)}]
    image = Sample(Item(id="im", modality="image", path="im.png"), o[:1], r[:1])
    assert metric.score(image, None) == []
    assert "r[t+1]-r[t]" in metric.describe()["definition"]


def test_shape_mismatch_names_the_item():
    metric = METRICS.get("tcons")(None)
    with pytest.raises(BadInputError, match="badclip"):
        metric.score(video(clip(6, t=4), clip(7, t=5), "badclip"), None)

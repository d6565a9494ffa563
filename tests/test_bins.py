"""TokBench scale bins and aggregation against hand-computed examples (excluded instances, an empty bin)."""
import math

import numpy as np
import pytest

from tokbench.bins import BIN_NAMES, FACE_BINS_OLD, TEXT_BINS, aggregate, assign_bin, assign_bins
from tokbench.protocols import PROTOCOLS

BOUNDS_256 = TEXT_BINS[256]  # (0.02, 0.03, 0.04, 1.0)


def test_bins_are_half_open_and_drop_outside_ratios():
    assert [assign_bin(r, BOUNDS_256) for r in (0.019999, 0.02, 0.0299, 0.03, 0.0399, 0.04, 0.999, 1.0, 3.0)] == \
        [None, "S", "S", "M", "M", "L", "L", None, None]
    assert assign_bin(None, BOUNDS_256) is None and assign_bin(float("nan"), BOUNDS_256) is None
    assert assign_bin(0.05, PROTOCOLS.get("offline").bounds("face", 256)) is None  # new face bins start at 0.1
    assert assign_bin(0.05, FACE_BINS_OLD[256]) == "S"  # the first release's bins started at 0


def test_hand_computed_example_with_excluded_instances_and_an_empty_bin():
    #            ratio     value   -> bin
    table = [(0.010, 1.0),  # below the first bound: excluded
             (0.015, 1.0),  # excluded
             (0.020, 0.0),  # S (lower bound is inclusive)
             (0.025, 1.0),  # S
             (0.029, 1.0),  # S
             (0.027, float("nan")),  # S, but unscored (e.g. a crop <= 1 px): ignored
             (0.040, 0.5),  # L (M stays empty)
             (0.500, 1.0),  # L
             (1.000, 0.0)]  # upper bound is exclusive: excluded
    ratios = np.array([r for r, _ in table])
    values = np.array([v for _, v in table])
    bins = assign_bins(ratios, BOUNDS_256)
    assert bins.tolist() == [None, None, "S", "S", "S", "S", "L", "L", None]
    out = aggregate(values, bins)
    assert out["n_S"] == 3 and out["S"] == pytest.approx(2 / 3)
    assert out["n_M"] == 0 and math.isnan(out["M"])
    assert out["n_L"] == 2 and out["L"] == pytest.approx(0.75)
    assert math.isnan(out["Mean"])  # the TokBench Mean needs all three bins
    assert out["n_binned"] == 5 and out["micro"] == pytest.approx((0 + 1 + 1 + 0.5 + 1) / 5)
    assert out["n_all"] == 8 and out["all"] == pytest.approx((1 + 1 + 0 + 1 + 1 + 0.5 + 1 + 0) / 8)


def test_mean_is_the_unweighted_mean_of_bin_means():
    ratios = np.array([0.005, 0.02, 0.021, 0.022, 0.023, 0.035, 0.06, 0.07])
    values = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 0.2, 0.9, 0.7])
    out = aggregate(values, assign_bins(ratios, BOUNDS_256))
    s, m, l = 3 / 4, 0.2, 0.8
    assert (out["S"], out["M"], out["L"]) == pytest.approx((s, m, l))
    assert out["Mean"] == pytest.approx((s + m + l) / 3)  # 0.5833..., not the micro average
    assert out["micro"] == pytest.approx((3 + 0.2 + 1.6) / 7)
    assert [out[f"n_{b}"] for b in BIN_NAMES] == [4, 1, 2]


def test_nothing_binned():
    out = aggregate(np.array([1.0, 0.0]), assign_bins(np.array([0.001, 0.002]), BOUNDS_256))
    assert out["n_binned"] == 0 and math.isnan(out["micro"]) and math.isnan(out["Mean"])
    assert out["n_all"] == 2 and out["all"] == 0.5

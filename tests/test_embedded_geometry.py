"""Scale definitions of the embedded sets: the TokBench word ratio and tokbench's face box / ratio."""
import numpy as np
import pytest

from tokbench.bins import FACE_BINS_NEW, TEXT_BINS, assign_bin
from tokbench.data.embedded.geometry import ARCFACE_112, face_box, face_ratio, word_ratio


def test_word_ratio_of_a_known_word():
    # "HELLO": 5 characters in a 100-px-wide box on a 1000 x 500 image -> 20 px per char / 1000 px
    r = word_ratio((100, 20, 200, 40), "HELLO", 1000, 500)
    assert r == pytest.approx(0.02)
    assert assign_bin(r, TEXT_BINS[256]) == "S"  # bins are half-open [lo, hi)
    assert assign_bin(r, TEXT_BINS[512]) == "M"
    assert assign_bin(r, TEXT_BINS[1024]) == "L"
    # the longer side counts, whichever it is
    assert word_ratio((0, 0, 30, 10), "abc", 400, 800) == pytest.approx(10 / 800)


def test_word_ratio_rejects_empty_text():
    with pytest.raises(ValueError):
        word_ratio((0, 0, 10, 10), "", 100, 100)


def test_face_box_is_the_arcface_crop():
    # landmarks exactly at the ArcFace template: the face box is the 112 x 112 crop itself
    assert face_box(ARCFACE_112) == pytest.approx((0.0, 0.0, 112.0, 112.0), abs=1e-6)
    assert face_ratio(ARCFACE_112, 112, 112) == pytest.approx(1.0)
    # scaled by 0.5 and moved: the box follows (pixel centres scale about pixel edges)
    kps = (ARCFACE_112 + 0.5) * 0.5 - 0.5 + np.array([300.0, 100.0])
    assert face_box(kps) == pytest.approx((300.0, 100.0, 356.0, 156.0), abs=1e-6)
    r = face_ratio(kps, 1000, 600)
    assert r == pytest.approx(0.056)
    assert assign_bin(r, FACE_BINS_NEW[512]) == "S" and assign_bin(r, FACE_BINS_NEW[1024]) == "M"


def test_face_box_ignores_in_plane_rotation():
    c = ARCFACE_112.mean(0)
    a = np.deg2rad(30)
    rot = (ARCFACE_112 - c) @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T + c
    x0, y0, x1, y1 = face_box(rot)
    assert x1 - x0 == pytest.approx(112.0) and y1 - y0 == pytest.approx(112.0)

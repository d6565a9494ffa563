"""Word crops: docTR-compatible box cropping, quad rectification, exclusions decided from geometry."""
import numpy as np
import pytest
from skimage import data

from tokbench.data.items import Word
from tokbench.errors import BadInputError
from tokbench.evaluators.crops import crop_words


@pytest.fixture(scope="module")
def page():
    return np.ascontiguousarray(np.stack([data.page()] * 3, -1))


def test_box_crop_matches_doctr_extract_crops(page):
    geometry = pytest.importorskip("doctr.utils.geometry")
    boxes = [(3.7, 9.2, 297.9, 37.5), (2, 47, 381, 66), (100.4, 120.9, 175.2, 138.99)]
    words = [Word(text=f"w{i}", box=b, ratio=0.1) for i, b in enumerate(boxes)]
    ours = crop_words(page, words, "page")
    # TokBench: crop_bboxes_from_image(geoms.astype(int)) -> extract_crops on integer boxes
    theirs = geometry.extract_crops(page, np.array(boxes, dtype=np.float32).astype(int))
    assert ours.kept == [0, 1, 2] and not ours.excluded
    for a, b in zip(ours.crops, theirs):
        np.testing.assert_array_equal(a, b)
    assert ours.crops[0].shape == (28, 294, 3)  # int(37.5) - int(9.2), int(297.9) - int(3.7)


def test_box_clipped_to_image_and_thin_boxes_excluded(page):
    words = [Word("edge", (-5, -3, 20, 10), 0.1), Word("thin", (10, 10, 60, 11), 0.1),
             Word("line", (10, 10, 11.9, 40), 0.1), Word("outside", (500, 10, 520, 30), 0.1),
             Word("ok", (10, 10, 12, 12), 0.1)]
    out = crop_words(page, words, "page")
    assert out.kept == [0, 4]
    assert out.crops[0].shape == (10, 20, 3)  # clipped at the top-left border
    np.testing.assert_array_equal(out.crops[0], page[0:10, 0:20])
    assert out.crops[1].shape == (2, 2, 3)  # 2 px on both sides is kept
    assert out.excluded == {1: "crop 50x1 px (smaller side <= 1 px)", 2: "crop 1x30 px (smaller side <= 1 px)",
                            3: "crop 0x20 px (smaller side <= 1 px)"}


def test_quad_rectifies_a_rotated_word(page):
    """A word rotated by 90 degrees comes back pixel-exact when its quad starts at the word's top-left."""
    crop = page[9:37, 3:297]  # "Region-based segmentation", 28 x 294
    canvas = np.full((400, 100, 3), 255, np.uint8)
    rotated = np.rot90(crop, k=-1)  # clockwise: the word's top-left corner goes to the top-right
    canvas[50:50 + rotated.shape[0], 30:30 + rotated.shape[1]] = rotated
    h, w = crop.shape[:2]
    x0, y0 = 30, 50
    quad = ((x0 + h, y0), (x0 + h, y0 + w), (x0, y0 + w), (x0, y0))  # the word's TL, TR, BR, BL (pixel edges)
    out = crop_words(canvas, [Word("rot", (0, 0, 1, 1), 0.1, quad=quad)], "canvas")
    assert out.crops[0].shape == crop.shape
    np.testing.assert_array_equal(out.crops[0], crop)


def test_axis_aligned_quad_equals_slice(page):
    quad = ((3, 9), (296, 9), (296, 36), (3, 36))
    out = crop_words(page, [Word("q", (0, 0, 1, 1), 0.1, quad=quad)], "page")
    np.testing.assert_array_equal(out.crops[0], page[9:36, 3:296])
    thin = crop_words(page, [Word("t", (0, 0, 1, 1), 0.1, quad=((3, 9), (296, 9), (296, 10.4), (3, 10.4)))], "page")
    assert thin.excluded == {0: "crop 293x1 px (smaller side <= 1 px)"}


def test_video_frames_and_errors(page):
    frames = np.stack([page, 255 - page])
    out = crop_words(frames, [Word("a", (2, 47, 381, 66), 0.1, frame=1), Word("b", (2, 47, 381, 66), 0.1)], "clip")
    np.testing.assert_array_equal(out.crops[0], 255 - page[47:66, 2:381])
    np.testing.assert_array_equal(out.crops[1], page[47:66, 2:381])
    with pytest.raises(BadInputError, match="clip: word 0 .* frame 2 outside the 2 decoded frame"):
        crop_words(frames, [Word("a", (0, 0, 5, 5), 0.1, frame=2)], "clip")
    with pytest.raises(BadInputError, match="non-finite"):
        crop_words(page, [Word("nan", (0, float("nan"), 5, 5), 0.1)], "page")
    degenerate = crop_words(page, [Word("d", (0, 0, 1, 1), 0.1, quad=((0, 0), (5, 0), (10, 0), (15, 0)))], "page")
    assert degenerate.excluded == {0: "degenerate quadrilateral"}

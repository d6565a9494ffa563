"""The text metric (T-ACC / T-NED) end to end with rapidocr on the printed page shipped with scikit-image."""
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage import data

from tokbench.data.items import Item, Word
from tokbench.errors import BadInputError
from tokbench.metrics import METRICS
from tokbench.metrics.base import Sample
from tokbench.metrics.text import TextFidelity, exact_match, normalized_edit_similarity
from tokbench.protocols import PROTOCOLS

PAGE_LINES = [
    ((3, 9, 297, 37), "Region-based segmentation"),
    ((2, 47, 381, 66), "Let us first determine markers of the coins and the"),
    ((2, 65, 381, 84), "background. These markers are pixels that we can label"),
    ((2, 84, 381, 103), "unambiguously as either object or background. Here,"),
    ((2, 102, 381, 120), "the markers are found at the two extreme parts of the"),
    ((2, 119, 175, 138), "histogram of grey values:"),
]


def levenshtein(a: str, b: str) -> int:
    """Textbook dynamic programme (unit costs), the definition nltk.edit_distance implements."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def degrade(image: np.ndarray, factor: int, quality: int) -> np.ndarray:
    h, w = image.shape[:2]
    im = Image.fromarray(image).resize((w // factor, h // factor), Image.BICUBIC).resize((w, h), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def page_item():
    page = np.ascontiguousarray(np.stack([data.page()] * 3, -1))
    words = tuple(Word(text=t, box=b, ratio=(b[2] - b[0]) / len(t) / 384) for b, t in PAGE_LINES)
    thin = Word(text="thin", box=(10, 150, 60, 151), ratio=0.03)  # 1 px high: excluded on both sides
    return page, Item(id="page", modality="image", path="page.png", words=words + (thin,))


@pytest.fixture(scope="module")
def metric():
    return METRICS.get("text")(PROTOCOLS.get("offline"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.text(max_size=12))
def test_ned_is_one_minus_levenshtein_over_max_length(gt, pred):
    expected = 1.0 if not gt and not pred else 1 - levenshtein(gt, pred) / max(len(gt), len(pred))
    assert normalized_edit_similarity(gt, pred) == pytest.approx(expected, abs=1e-12)
    assert exact_match(gt, pred) == float(gt == pred)


def test_known_values():
    assert normalized_edit_similarity("learning", "leaming") == pytest.approx(1 - 2 / 8)
    assert normalized_edit_similarity("Hello", "hello") == pytest.approx(0.8)  # case-sensitive
    assert exact_match("Hello", "hello") == 0.0


def test_identity_is_perfect_and_degradation_costs(metric, page_item):
    page, item = page_item
    assert isinstance(metric, TextFidelity) and metric.engine.name == "rapidocr"
    original = page[None]
    ref = metric.reference(Sample(item, original, original))
    assert ref["pred"][:6] == [t for _, t in PAGE_LINES] and ref["pred"][6] is None
    rows = metric.score(Sample(item, original, original.copy()), ref)
    assert [r["instance"] for r in rows] == list(range(7))
    scored = rows[:6]
    assert all(r["T-ACC"] == 1.0 and r["T-NED"] == 1.0 and r["pred"] == r["gt"] == r["pred_original"] for r in scored)
    assert math.isnan(rows[6]["T-ACC"]) and math.isnan(rows[6]["T-NED"])
    assert rows[6]["excluded"] == "crop 50x1 px (smaller side <= 1 px)" and rows[6]["gt"] == "thin"
    means = []
    for factor, quality in ((2, 30), (3, 20), (4, 10)):
        r = metric.score(Sample(item, original, degrade(page, factor, quality)[None]), ref)[:6]
        means.append((np.mean([x["T-ACC"] for x in r]), np.mean([x["T-NED"] for x in r])))
    print("\nrapidocr page T-ACC/T-NED at 2x/q30, 3x/q20, 4x/q10:", np.round(means, 3).tolist())
    accs, neds = zip(*means)
    assert neds[0] > neds[1] > neds[2] and accs[2] < 1.0 and neds[2] < 0.8


def test_video_words_and_bad_input(metric, page_item):
    page, _ = page_item
    frames = np.stack([page, np.full_like(page, 255)])
    (b0, t0), (b1, t1) = PAGE_LINES[0], PAGE_LINES[5]
    item = Item(id="clip", modality="video", path="clip.mp4",
                words=(Word(t0, b0, 0.03, frame=1), Word(t1, b1, 0.02, frame=0)))
    ref = metric.reference(Sample(item, np.stack([page, page]), np.stack([page, page])))
    assert ref["pred"] == [t0, t1]
    rows = metric.score(Sample(item, np.stack([page, page]), frames), ref)  # frame 1 blanked out
    assert [(r["instance"], r["frame"], r["T-ACC"]) for r in rows] == [(0, 1, 0.0), (1, 0, 1.0)]
    assert rows[0]["pred"] != t0 and rows[0]["pred_original"] == t0
    with pytest.raises(BadInputError, match="stale cache"):
        metric.score(Sample(item, frames, frames), {"pred": [t0]})
    with pytest.raises(BadInputError, match="does not match the original"):
        metric.score(Sample(item, frames, frames[:, :100]), ref)
    assert metric.score(Sample(Item(id="blank", modality="image", path="b.png"), page[None], page[None]),
                        {"pred": []}) == []


def test_describe_names_the_engine(metric):
    d = metric.describe()
    assert d["level"] == "word" and d["columns"] == ["T-ACC", "T-NED"]
    assert d["ocr"]["engine"] == "rapidocr" and "PP-OCRv6_rec_small.onnx" in d["ocr"]["model_files"]
    assert "rapidfuzz" in d["T-NED"] and "case-sensitive" in d["T-ACC"]

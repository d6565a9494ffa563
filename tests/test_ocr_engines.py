"""rapidocr and easyocr offline on real crops: rendered words (matplotlib's DejaVu fonts) and the printed
page shipped with scikit-image, clean and degraded. Accuracies are printed (pytest -s) and asserted."""
import io
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein
from skimage import data

from tokbench.errors import BadInputError
from tokbench.evaluators import create_ocr_engine, list_ocr_engines
from tokbench.registry import UnknownNameError

FONTS = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
WORDS = ["hello", "World", "iPhone15", "USB3", "benchmark", "Tokenizer", "2025", "quality", "Reconstruction",
         "pixel", "Text", "faces", "OpenCV", "learning", "railway", "COVID19", "Python", "decoder", "latent",
         "Vision", "Amsterdam", "green", "Market", "coffee", "Station", "Exit", "bakery", "Street", "1984", "Hotel"]
# skimage.data.page(): line boxes (x0, y0, x1, y1) and their transcription
PAGE_LINES = [
    ((3, 9, 297, 37), "Region-based segmentation"),
    ((2, 47, 381, 66), "Let us first determine markers of the coins and the"),
    ((2, 65, 381, 84), "background. These markers are pixels that we can label"),
    ((2, 84, 381, 103), "unambiguously as either object or background. Here,"),
    ((2, 102, 381, 120), "the markers are found at the two extreme parts of the"),
    ((2, 119, 175, 138), "histogram of grey values:"),
]


def render(word: str, font_file: str = "DejaVuSans.ttf", size: int = 32) -> np.ndarray:
    font = ImageFont.truetype(os.path.join(FONTS, font_file), size)
    left, top, right, bottom = font.getbbox(word)
    im = Image.new("RGB", (right - left + 16, bottom - top + 16), "white")
    ImageDraw.Draw(im).text((8 - left, 8 - top), word, font=font, fill="black")
    return np.asarray(im)


def degrade(crop: np.ndarray, factor: int, quality: int) -> np.ndarray:
    """factor x bicubic down and up, then JPEG: the blur a coarse tokenizer leaves on small text."""
    h, w = crop.shape[:2]
    im = Image.fromarray(crop).resize((max(w // factor, 1), max(h // factor, 1)), Image.BICUBIC)
    buf = io.BytesIO()
    im.resize((w, h), Image.BICUBIC).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def accuracy(preds, gts) -> float:
    return float(np.mean([p == g for p, g in zip(preds, gts)]))


def page_lines():
    page = np.stack([data.page()] * 3, -1)
    return [np.ascontiguousarray(page[y0:y1, x0:x1]) for (x0, y0, x1, y1), _ in PAGE_LINES], [t for _, t in PAGE_LINES]


@pytest.fixture(scope="module")
def rapidocr():
    return create_ocr_engine("rapidocr")


@pytest.fixture(scope="module")
def easyocr():
    return create_ocr_engine("easyocr")


def test_registry_lists_engines():
    assert {"rapidocr", "easyocr", "parseq"} <= set(list_ocr_engines())
    with pytest.raises(UnknownNameError, match="Valid OCR engines: easyocr, parseq, rapidocr"):
        create_ocr_engine("tesseract")


def test_rapidocr_reads_rendered_words_and_degradation_costs_accuracy(rapidocr):
    crops = [render(w, f) for f in ("DejaVuSans.ttf", "DejaVuSerif.ttf") for w in WORDS]
    gts = WORDS * 2
    clean = accuracy(rapidocr.recognize(crops), gts)
    blurred = accuracy(rapidocr.recognize([degrade(c, 6, 10) for c in crops]), gts)
    print(f"\nrapidocr on {len(crops)} rendered words: clean {clean:.3f}, 6x down/up + JPEG q10 {blurred:.3f}")
    assert clean >= 0.95
    assert blurred <= clean - 0.15


def test_rapidocr_reads_the_scanned_page(rapidocr):
    crops, texts = page_lines()
    preds = rapidocr.recognize(crops)
    print("\nrapidocr page lines:", preds)
    assert accuracy(preds, texts) >= 5 / 6
    blurred = rapidocr.recognize([degrade(c, 3, 20) for c in crops])
    assert accuracy(blurred, texts) < accuracy(preds, texts)


def test_rapidocr_batching_matches_single_crops(rapidocr):
    """A crop's prediction does not depend on its batch-mates; up to 320 px (at height 48) it is exactly
    rapidocr's own single-image recognition."""
    import cv2
    from rapidocr.ch_ppocr_rec import TextRecInput

    crops, texts = page_lines()
    crops += [render(w) for w in WORDS[:10]] + [degrade(render(w), 3, 20) for w in WORDS[10:14]]
    batched = rapidocr.recognize(crops)
    assert batched == [rapidocr.recognize([c])[0] for c in crops]
    assert batched[:6] == texts and batched[6:16] == WORDS[:10]
    native = rapidocr._rec(TextRecInput(img=[cv2.cvtColor(c, cv2.COLOR_RGB2BGR) for c in crops[6:]]))
    assert {rapidocr.padded_width(c) for c in crops[6:]} == {320} and batched[6:] == list(native.txts)


def test_rapidocr_cpu_session_follows_torch_threads_and_matches_rapidocr(rapidocr):
    """Our session (single-threaded runs, as many at once as torch has threads; no spin-wait) reads exactly
    what rapidocr's public call reads, with batches run one at a time or concurrently."""
    import cv2
    import torch
    from rapidocr import RapidOCR

    options = rapidocr._rec.session.session.get_session_options()
    assert options.intra_op_num_threads == 1 and rapidocr.concurrent_runs == torch.get_num_threads()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0" and options.enable_cpu_mem_arena
    public = RapidOCR(params={"Global.log_level": "error"})
    crops = [render(w) for w in WORDS[:8]] + [degrade(render(w), 3, 20) for w in WORDS[8:12]]
    theirs = [public(cv2.cvtColor(c, cv2.COLOR_RGB2BGR), use_det=False, use_cls=False, use_rec=True).txts[0]
              for c in crops]
    assert rapidocr.recognize(crops) == theirs and theirs[:8] == WORDS[:8]
    runs = rapidocr.concurrent_runs
    try:
        for rapidocr.concurrent_runs in (1, 3):  # 12 crops: 3 batches of 4
            assert rapidocr.recognize(crops) == theirs
    finally:
        rapidocr.concurrent_runs = runs


def test_engine_rejects_bad_crops(rapidocr):
    assert rapidocr.recognize([]) == []
    with pytest.raises(BadInputError, match="rapidocr crop 1: expected a uint8 RGB"):
        rapidocr.recognize([render("ok"), np.zeros((10, 10), np.uint8)])
    d = rapidocr.describe()
    assert d["engine"] == "rapidocr" and "PP-OCRv6_rec_small.onnx" in d["version"] and "rapidocr 3." in d["version"]


def test_easyocr_offline_reads_words_and_degradation_costs_accuracy(easyocr):
    crops = [render(w) for w in WORDS]
    clean = accuracy(easyocr.recognize(crops), WORDS)
    blurred = accuracy(easyocr.recognize([degrade(c, 4, 10) for c in crops]), WORDS)
    print(f"\neasyocr on {len(crops)} rendered words: clean {clean:.3f}, 4x down/up + JPEG q10 {blurred:.3f}")
    assert clean >= 0.9
    assert blurred <= clean - 0.3
    assert not (Path(os.environ["HOME"]) / ".EasyOCR").exists()  # nothing written into $HOME
    assert "english_g2.pth" in easyocr.describe()["version"]


@pytest.mark.filterwarnings("ignore:'pin_memory' argument")
def test_easyocr_batches_like_reader_recognize(easyocr):
    """Grouped batches give exactly what easyocr's own per-box Reader.recognize gives."""
    import cv2

    crops, texts = page_lines()
    crops = crops[:2] + [render(w) for w in ("iPhone15", "Market", "1984")] + [degrade(render("railway"), 3, 20)]
    ours = easyocr.recognize(crops)
    reader = easyocr._reader
    theirs = []
    for c in crops:
        grey = cv2.cvtColor(c, cv2.COLOR_RGB2GRAY)
        theirs += reader.recognize(grey, horizontal_list=[[0, grey.shape[1], 0, grey.shape[0]]], free_list=[],
                                   detail=0)
    print("\neasyocr:", ours)
    assert ours == theirs
    assert ours[0] == texts[0]
    assert Levenshtein.normalized_similarity(ours[1], texts[1]) > 0.85  # spacing differs on the scanned line

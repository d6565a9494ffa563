"""Small real reports to look at the leaderboard with (and to test it): an annotated set built from package data.

``build_demo_release`` writes a folder in the TokBench release layout (so ``tokbench:<folder>`` reads it):
words rendered with matplotlib's DejaVu Sans at sizes that fall into the three TokBench text bins at 256,
and the scikit-image astronaut cropped at four scales, its five landmarks located by dlib's 68-point
predictor (face-recognition-models) rather than typed in. ``make_demo_reports`` runs codecs and baselines
through it with the real pipeline, so every number the app then shows was measured.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEMO_SUITE = "leaderboard-demo"

# (text, font size px): DejaVu Sans averages ~0.6 x size per character, so on a 512 px wide image sizes
# 15 / 22 / 30 on a 384 px wide image give ratios ~0.024 / 0.035 / 0.047: the S, M and L text bins at 256.
DEMO_WORDS = (
    (("Tokenizer", 30), ("pixels", 22), ("quality", 15), ("Benchmark", 14)),
    (("Reading", 30), ("faces", 22), ("letters", 22), ("detail", 15)),
)
TEXT_SIZE = (384, 288)
# crop side in astronaut pixels around the face: the face box (~90 px) over the crop side is the ratio,
# ~0.18 / 0.25 / 0.40: the S, M and L face bins at 256
DEMO_FACE_CROPS = (512, 360, 224)
FACE_SIDE = 256


def _font(size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def _write_text_images(folder: Path) -> list[dict]:
    entries = []
    rng = np.random.default_rng(0)
    for i, words in enumerate(DEMO_WORDS):
        w, h = TEXT_SIZE
        paper = (rng.normal(238, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
        im = Image.fromarray(paper)
        draw = ImageDraw.Draw(im)
        anns, y = [], 24
        for text, size in words:
            font = _font(size)
            x = 16 + int(rng.integers(0, 40))
            draw.text((x, y), text, font=font, fill=(70, 70, 85))
            x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
            anns.append({"rec": text, "bbox": [x0 - 3, y0 - 3, x1 + 3, y1 + 3]})
            y = y1 + 28
        name = f"demo_text_{i}.png"
        im.save(folder / name)
        entries.append({"file_name": name, "width": w, "height": h, "annotations": anns})
    return entries


def astronaut_landmarks() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Five landmarks (eyes' centres, nose tip, mouth corners) and the face box of the astronaut, by dlib."""
    import dlib
    from skimage import data

    from tokbench.evaluators.dlib_backend import face_recognition_models_dir

    img = data.astronaut()
    rects, scores, _ = dlib.get_frontal_face_detector().run(img, 1)
    if not rects:
        raise RuntimeError("dlib found no face in the scikit-image astronaut")
    rect = rects[int(np.argmax(scores))]
    predictor = dlib.shape_predictor(str(face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"))
    shape = predictor(img, rect)
    p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
    kps = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    return kps, (rect.left(), rect.top(), rect.right(), rect.bottom())


def _write_face_images(folder: Path) -> list[dict]:
    from skimage import data

    img = data.astronaut()
    kps, box = astronaut_landmarks()
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    out_side = FACE_SIDE
    entries = []
    for i, crop in enumerate(DEMO_FACE_CROPS):
        canvas = np.zeros((crop, crop, 3), dtype=np.uint8)  # a crop larger than the image pads with black
        x0 = int(round(min(max(cx - crop / 2, 0), max(img.shape[1] - crop, 0)))) if crop <= img.shape[1] else \
            -(crop - img.shape[1]) // 2
        y0 = int(round(min(max(cy - crop / 2, 0), max(img.shape[0] - crop, 0)))) if crop <= img.shape[0] else \
            -(crop - img.shape[0]) // 2
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + crop, img.shape[1]), min(y0 + crop, img.shape[0])
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
        scale = out_side / crop
        pixels = np.asarray(Image.fromarray(canvas).resize((out_side, out_side), Image.Resampling.LANCZOS))
        name = f"demo_face_{i}.png"
        Image.fromarray(pixels).save(folder / name)
        k = (kps - [x0, y0]) * scale
        b = [(box[0] - x0) * scale, (box[1] - y0) * scale, (box[2] - x0) * scale, (box[3] - y0) * scale]
        ratio = max(b[2] - b[0], b[3] - b[1]) / out_side  # face box side over the longer image side
        entries.append({"image_name": name, "img_width": out_side, "img_height": out_side,
                        "faces": [{"kps": np.round(k, 2).tolist(), "box": np.round(b, 2).tolist(),
                                   "ratio": round(ratio, 4), "gt": "astronaut"}]})
    return entries


def build_demo_release(root: str | Path) -> Path:
    """Write the demo set under ``root`` in the TokBench release layout; returns ``root``."""
    root = Path(root)
    text_dir = root / "images" / "text_data" / "textocr"
    face_dir = root / "images" / "face_data" / "wflw"
    for d in (text_dir, face_dir, root / "annotations"):
        d.mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "text_textocr.json").write_text(json.dumps(_write_text_images(text_dir), indent=1))
    (root / "annotations" / "face_meta.json").write_text(json.dumps(_write_face_images(face_dir), indent=1))
    (root / "README.md").write_text("tokbench leaderboard demo set: rendered words (DejaVu Sans) and the "
                                    "scikit-image astronaut at four scales; built by tokbench.leaderboard.demo\n")
    return root


def demo_suite() -> str:
    """Register (once) a suite with every image metric the demo can score offline; returns its name."""
    from tokbench.metrics.base import METRICS
    from tokbench.suites import SUITES, Suite, get_suite, register_suite

    for module in ("tokbench.metrics.text", "tokbench.metrics.face"):
        try:  # the text and face metrics register themselves on import
            importlib.import_module(module)
        except ImportError:
            pass
    if DEMO_SUITE not in SUITES:
        base = get_suite("text-face").metrics
        extra = tuple(m for m in ("text", "face") if m in METRICS and m not in base)
        register_suite(Suite(DEMO_SUITE, datasets=(), metrics=tuple(base) + extra, resolutions=(256,),
                             description="text-face metrics on the leaderboard demo set"))
    return DEMO_SUITE


DEFAULT_TOKENIZERS = ("jpeg:quality=10", "jpeg:quality=30", "jpeg:quality=70", "webp:quality=20",
                      "webp:quality=60", "resize")


def make_demo_reports(out: str | Path, data_root: str | Path, tokenizers: Iterable[str] = DEFAULT_TOKENIZERS,
                      resolutions: Optional[list[int]] = None, protocol: str = "offline",
                      cache_dir: Optional[str | Path] = None) -> list[Path]:
    """Run ``tokenizers`` over the demo set with the real pipeline; returns the report folders."""
    from tokbench.pipeline import RunConfig, run

    data_root = Path(data_root)
    if not (data_root / "annotations").is_dir():
        build_demo_release(data_root)
    suite = demo_suite()
    paths = []
    for tok in tokenizers:
        rep = run(RunConfig(tokenizer=tok, suite=suite, datasets=[f"tokbench:{data_root}"],
                            resolutions=resolutions or [256], protocol=protocol, out=str(out), quiet=True,
                            cache_dir=str(cache_dir) if cache_dir else None,
                            allow_missing_evaluators=True))  # a demo scores what this machine has
        paths.append(rep.path)
    return paths

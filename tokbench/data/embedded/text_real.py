"""``text-real``: real text (scanned pages, packaging, a circuit board, a football shirt, a taxi sign) with
word boxes and exact transcriptions checked by eye (datasets/annotations/text_real.json)."""
from __future__ import annotations

import json

import numpy as np

from tokbench.data.embedded.base import BuiltItem, EmbeddedDataset
from tokbench.data.embedded.geometry import word_ratio
from tokbench.data.embedded.sources import datasets_dir, read_source_frames, read_source_rgb, source
from tokbench.errors import BadInputError

ANNOTATIONS = "annotations/text_real.json"


def annotations() -> dict:
    return json.loads((datasets_dir() / ANNOTATIONS).read_text())


def item_pixels(entry: dict) -> np.ndarray:
    if entry.get("frame") is not None:
        rgb = read_source_frames(entry["source"], entry["frame"], 1)[0]
    else:
        rgb = read_source_rgb(entry["source"])
    transform = entry.get("transform")
    if transform == "rot90cw":
        rgb = np.ascontiguousarray(np.rot90(rgb, -1))
    elif transform:
        raise BadInputError(f"{ANNOTATIONS}: item {entry['id']}: unknown transform {transform!r}")
    return rgb


def build_words(entry: dict, width: int, height: int, frame: int = 0) -> list[dict]:
    out = []
    for w in entry["words"]:
        x0, y0, x1, y1 = w["box"]
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise BadInputError(f"{ANNOTATIONS}: item {entry['id']}: box {w['box']} of {w['text']!r} is outside"
                                f" the {width}x{height} image")
        rec = {"text": w["text"], "box": [float(v) for v in w["box"]],
               "ratio": word_ratio(w["box"], w["text"], width, height), "frame": frame, "how": w.get("how", "")}
        if w.get("quad"):
            rec["quad"] = w["quad"]
        out.append(rec)
    return out


class TextReal(EmbeddedDataset):
    name = "text-real"
    modality = "image"
    description = "Real text images with eye-checked word boxes and transcriptions"
    license = "per item (see datasets/manifest.json); built locally from installed packages, not redistributed"
    recipe_version = "1"
    annotation_files = (ANNOTATIONS,)
    suites = ("text", "text-face")

    @property
    def source_keys(self) -> tuple[str, ...]:
        return tuple(sorted({e["source"] for e in annotations()["images"]}))

    def generate(self) -> list[BuiltItem]:
        items = []
        for e in annotations()["images"]:
            rgb = item_pixels(e)
            h, w = rgb.shape[:2]
            src = source(e["source"])
            items.append(BuiltItem(id=e["id"], pixels=rgb, words=build_words(e, w, h), source=e["source"],
                                   license=src.license, provenance=f"{src.origin} transform={e.get('transform')}"
                                   f" frame={e.get('frame')}"))
        return items

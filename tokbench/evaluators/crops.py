"""Word crops cut at the original resolution with the original's ground-truth geometry.

TokBench crops the reconstruction (restored to the original size) with the original's boxes, so the
original and the reconstruction give crops of identical size. Axis-aligned boxes follow docTR's
``crop_bboxes_from_image`` (coordinates truncated to int, end-exclusive slices); quadrilaterals are
rectified with a perspective warp. Crops whose smaller side is <= 1 px are excluded (as TokBench's video
loader does) and the exclusion is reported with its reason, decided from the geometry alone so both
sides always agree.

The official rules (``box_cut="numpy"``, ``quad_cut="doctr-rcrops"``, ``min_side=0``) cut as the official
text evaluator does through docTR's ``crop_bboxes_from_image``: coordinates go through float32 and are
int-cast, boxes are plain numpy slices (a negative start counts from the far edge, ends past the image
stop at it), quadrilaterals are ``extract_rcrops``' affine warp of the first three corners onto a
``(int(d1), int(d2))`` crop, and no crop is too small. Only an empty slice, which the official scripts
cannot score either, is excluded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from tokbench.data.items import Word
from tokbench.errors import BadInputError

MIN_SIDE_PX = 2  # a crop needs both sides >= 2 px; smaller ones are excluded


@dataclass
class WordCrops:
    """Crops of the words that could be cut, and why the others could not."""

    crops: list[np.ndarray] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)  # word index of each crop
    excluded: dict[int, str] = field(default_factory=dict)  # word index -> reason


def as_frames(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (T, H, W, 3) -> (T, H, W, 3)."""
    return pixels[None] if pixels.ndim == 3 else pixels


def crop_words(pixels: np.ndarray, words: Sequence[Word], item: str = "", box_cut: str = "clamped",
               quad_cut: str = "perspective", min_side: int = MIN_SIDE_PX) -> WordCrops:
    """Cut every word of ``words`` from ``pixels`` ((H, W, 3) or (T, H, W, 3) uint8 RGB)."""
    frames = as_frames(pixels)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise BadInputError(f"{item}: expected (T, H, W, 3) pixels to crop words from, got {pixels.shape}")
    out = WordCrops()
    for i, word in enumerate(words):
        where = f"{item}: word {i} ({word.text!r})"
        if not 0 <= word.frame < frames.shape[0]:
            raise BadInputError(f"{where}: frame {word.frame} outside the {frames.shape[0]} decoded frame(s)")
        image = frames[word.frame]
        if word.quad is not None:
            cut = _crop_quad_doctr if quad_cut == "doctr-rcrops" else _crop_quad
            crop, reason = cut(image, word.quad, where)
        else:
            cut = _crop_box_numpy if box_cut == "numpy" else _crop_box
            crop, reason = cut(image, word.box, where)
        if crop is not None and min(crop.shape[:2]) < min_side:
            crop, reason = None, f"crop {crop.shape[1]}x{crop.shape[0]} px (smaller side <= {min_side - 1} px)"
        if crop is None:
            out.excluded[i] = reason
        else:
            out.crops.append(crop)
            out.kept.append(i)
    return out


def _finite(values: Sequence[float], where: str, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise BadInputError(f"{where}: {what} has non-finite coordinates {list(values)}")
    return arr


def _crop_box(image: np.ndarray, box, where: str) -> tuple[Optional[np.ndarray], str]:
    if len(box) != 4:
        raise BadInputError(f"{where}: box must be (x0, y0, x1, y1), got {box}")
    x0, y0, x1, y1 = (int(v) for v in _finite(box, where, "box"))  # truncation, as docTR's astype(int)
    h, w = image.shape[:2]
    x0, x1 = max(x0, 0), min(x1, w)
    y0, y1 = max(y0, 0), min(y1, h)
    cw, ch = max(x1 - x0, 0), max(y1 - y0, 0)
    if min(cw, ch) < MIN_SIDE_PX:
        return None, f"crop {cw}x{ch} px (smaller side <= 1 px)"
    return np.ascontiguousarray(image[y0:y1, x0:x1]), ""


def _crop_quad(image: np.ndarray, quad, where: str) -> tuple[Optional[np.ndarray], str]:
    """Rectify a quadrilateral given clockwise from its top-left corner (TL, TR, BR, BL).

    Corners are in the same pixel-edge coordinates as boxes: the quad ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    of an integer box gives exactly the box's slice. The output is round(longer opposite side) wide and
    round(longer opposite side) high.
    """
    import cv2

    pts = _finite(quad, where, "quad")
    if pts.shape != (4, 2):
        raise BadInputError(f"{where}: quad must be 4 (x, y) points, got shape {pts.shape}")
    tl, tr, br, bl = pts
    cw = int(round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))))
    ch = int(round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    if min(cw, ch) < MIN_SIDE_PX:
        return None, f"crop {cw}x{ch} px (smaller side <= 1 px)"
    dst = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
    try:  # OpenCV puts pixel centres at integers: shift edge coordinates by half a pixel on both sides
        matrix = cv2.getPerspectiveTransform((pts - 0.5).astype(np.float32), dst - 0.5)
    except cv2.error:
        matrix = None
    if matrix is None or not np.all(np.isfinite(matrix)) or math.isclose(np.linalg.det(matrix), 0.0, abs_tol=1e-12):
        return None, "degenerate quadrilateral"
    crop = cv2.warpPerspective(np.ascontiguousarray(image), matrix, (cw, ch), flags=cv2.INTER_LINEAR)
    return crop, ""


def _official_ints(values, where: str, what: str) -> np.ndarray:
    """Coordinates as the official loader holds them: a float32 array, then ``astype(int)`` (truncation)."""
    return _finite(values, where, what).astype(np.float32).astype(int)


def _crop_box_numpy(image: np.ndarray, box, where: str) -> tuple[Optional[np.ndarray], str]:
    if len(box) != 4:
        raise BadInputError(f"{where}: box must be (x0, y0, x1, y1), got {box}")
    x0, y0, x1, y1 = _official_ints(box, where, "box")
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        return None, f"empty numpy slice [{y0}:{y1}, {x0}:{x1}] (the official scripts cannot score it either)"
    return np.ascontiguousarray(crop), ""


def _crop_quad_doctr(image: np.ndarray, quad, where: str) -> tuple[Optional[np.ndarray], str]:
    """docTR ``extract_rcrops`` for oriented boxes: affine map of corners 0, 1, 2 onto (0, 0), (d1 - 1, 0),
    (d1 - 1, d2 - 1), output ``int(d1)`` x ``int(d2)``, bilinear, black border."""
    import cv2

    pts = _official_ints(quad, where, "quad")
    if pts.shape != (4, 2):
        raise BadInputError(f"{where}: quad must be 4 (x, y) points, got shape {pts.shape}")
    src = pts[:3].astype(np.float32)
    d1 = np.linalg.norm(src[0] - src[1])  # float32, as docTR computes it
    d2 = np.linalg.norm(src[1] - src[2])
    if int(d1) < 1 or int(d2) < 1:
        return None, f"empty rotated crop {int(d1)}x{int(d2)} (the official scripts cannot score it either)"
    dst = np.array([[0, 0], [d1 - 1, 0], [d1 - 1, d2 - 1]], dtype=np.float32)
    return cv2.warpAffine(np.ascontiguousarray(image), cv2.getAffineTransform(src, dst), (int(d1), int(d2))), ""

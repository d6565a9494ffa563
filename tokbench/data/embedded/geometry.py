"""Scale definitions shared by every embedded set: the TokBench word ratio and tokbench's face box and ratio.

Pixel convention: integer coordinates are pixel centres (as in dlib and OpenCV); boxes are ``(x0, y0, x1, y1)``
with exclusive right/bottom edges in pixel units, so a box's width is ``x1 - x0``.
"""
from __future__ import annotations

import numpy as np

# insightface's ArcFace alignment template (``insightface.utils.face_align.arcface_dst``) for a 112 x 112
# crop, 5 points in the insightface order: left eye, right eye, nose tip, left and right mouth corner
# (left = image-left).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])


def word_ratio(box, text: str, width: int, height: int) -> float:
    """TokBench text scale: (box width / number of characters) / longer image side, i.e. the mean character
    width as a fraction of the image (reference: tokbench-protocol.md section 5.1)."""
    if not text:
        raise ValueError("a word needs at least one character")
    return float((box[2] - box[0]) / len(text) / max(width, height))


def similarity_from(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping ``src`` points onto ``dst``, as a 2 x 3 matrix."""
    from skimage.transform import SimilarityTransform

    t = SimilarityTransform()
    if hasattr(SimilarityTransform, "from_estimate"):
        t = SimilarityTransform.from_estimate(np.asarray(src, float), np.asarray(dst, float))
    else:  # scikit-image < 0.26
        t.estimate(np.asarray(src, float), np.asarray(dst, float))
    return t.params[:2]


def face_box(kps) -> tuple[float, float, float, float]:
    """tokbench's face box: the square that ArcFace alignment (``norm_crop`` to 112 x 112) maps onto its
    crop, made axis-aligned (same centre, same side) -- the region an identity embedder actually sees.

    Its side is about 3.2 x the eye distance of a frontal face (roughly 1.3 x a typical detector box)."""
    m = similarity_from(ARCFACE_112, np.asarray(kps, float))  # template -> image
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    side = 112.0 * scale
    cx, cy = m @ np.array([55.5, 55.5, 1.0])  # centre of the 112-pixel crop (pixel centres 0..111)
    return (float(cx - side / 2 + 0.5), float(cy - side / 2 + 0.5), float(cx + side / 2 + 0.5), float(cy + side / 2 + 0.5))


def face_ratio(kps, width: int, height: int) -> float:
    """Face scale used for the TokBench face bins: face-box side / longer image side."""
    x0, _, x1, _ = face_box(kps)
    return float((x1 - x0) / max(width, height))

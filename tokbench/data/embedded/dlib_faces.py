"""dlib face landmarks and descriptors, used to annotate real faces and to check that every annotated
face can be embedded from its 5 points (the offline face evaluator's route).

Model files come from the ``face-recognition-models`` package, located with importlib (its own
``pkg_resources`` import breaks on setuptools >= 81).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from tokbench.data.embedded.geometry import similarity_from
from tokbench.errors import BadInputError

# Where the insightface 5 points sit in dlib's own 150 x 150 face chip (``get_face_chip``, padding 0.25):
# the mean over 18 faces (scikit-image astronaut, the 6 people of insightface t1.jpg, Tom Hanks, 10 carphone
# frames) of the 68-point-derived 5 points mapped into the chip dlib cuts with its 5-point predictor.
# Aligning a chip to these points reproduces dlib's own descriptor within L2 0.12-0.44 on those faces
# (different people are 0.57-0.93 apart).
DLIB_CHIP_150 = np.array([[46.65, 46.46], [100.48, 46.08], [72.18, 72.97], [49.71, 105.26], [97.69, 104.07]])


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BadInputError("dlib face models missing: run `pip install dlib-bin face-recognition-models`")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=1)
def models():
    import dlib

    d = models_dir()
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(d / "shape_predictor_68_face_landmarks.dat")),
            dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat")))


def five_from_68(shape) -> np.ndarray:
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], float)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def aligned_chip(rgb: np.ndarray, kps) -> np.ndarray:
    """150 x 150 chip aligned like dlib's own from 5 insightface-order points."""
    import cv2

    m = similarity_from(np.asarray(kps, float), DLIB_CHIP_150)
    return cv2.warpAffine(np.ascontiguousarray(rgb), m, (150, 150), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def descriptor_from_kps(rgb: np.ndarray, kps) -> np.ndarray:
    """dlib's 128-d identity descriptor of the face at ``kps``."""
    return np.array(models()[3].compute_face_descriptor(aligned_chip(rgb, kps)))


def detect_landmarks(rgb: np.ndarray, upsample: int = 1, min_score: float = 0.0, scale_first: int = 1) -> list[dict]:
    """Faces found by dlib's HOG detector with 5 points from the 68-point predictor, in ``rgb``'s pixels.

    ``scale_first`` enlarges the image (bicubic) before detection, for faces too small for HOG. Each face
    carries ``check_l2``: L2 between the descriptor of a chip aligned from the 5 points and dlib's own."""
    import cv2

    det, sp68, sp5, rec = models()
    img = np.ascontiguousarray(rgb)
    if scale_first != 1:
        img = cv2.resize(img, (img.shape[1] * scale_first, img.shape[0] * scale_first), interpolation=cv2.INTER_CUBIC)
    rects, scores, _ = det.run(img, upsample, min_score)
    out = []
    for r, s in sorted(zip(rects, scores), key=lambda t: -t[1]):
        kps_up = five_from_68(sp68(img, r))
        native = np.array(rec.compute_face_descriptor(img, sp5(img, r)))
        from_kps = descriptor_from_kps(img, kps_up)
        kps = (kps_up + 0.5) / scale_first - 0.5  # pixel centres scale about their edges
        box = np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], float) / scale_first
        out.append({"kps": kps, "box": box, "score": float(s), "desc": native,
            "check_l2": float(np.linalg.norm(native - from_kps))})
    return out

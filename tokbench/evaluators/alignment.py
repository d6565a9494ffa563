"""Face alignment from 5 ground-truth landmarks (left eye, right eye, nose tip, left/right mouth corner).

* ArcFace: insightface's ``norm_crop`` -- the least-squares similarity transform (scikit-image, as
  insightface uses) mapping the landmarks onto the 112x112 ArcFace template, then ``cv2.warpAffine`` with a
  black border. Re-implemented here because installing insightface pulls a second OpenCV distribution.
* dlib: ``compute_face_descriptor(img, shape)`` aligns a 150x150 chip (padding 0.25) by fitting the
  detection's parts onto dlib's mean face. dlib's 5-point parts are not a reordering of insightface's: they
  are (outer, inner) corner of the image-right eye, (outer, inner) corner of the image-left eye and the point
  under the nose, while insightface gives eye centres, nose tip and mouth corners (image-left first). So we
  fit the insightface points onto the same mean face instead:
  their template positions are computed from dlib's 68-point mean face shape (eye centres = mean of the six
  eye points 36-41 / 42-47, nose tip = point 30, mouth corners = points 48 / 54), which is the frame dlib's
  5-point template lives in. The chip is then cut by dlib itself (``chip_details`` + ``extract_image_chip``,
  which fits the similarity from the template onto the image points, as get_face_chip_details does).
"""
from __future__ import annotations

import numpy as np

from tokbench.errors import BadInputError

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32)

# dlib/image_transforms/interpolation.h get_face_chip_details: mean face shape of the iBUG 300-W points
# (x, y in [0, 1] chip units), only the points the 5-landmark template needs
_DLIB_MEAN_FACE = {
    30: (0.490127, 0.515625),
    36: (0.121737, 0.216423), 37: (0.187122, 0.178758), 38: (0.265825, 0.179852),
    39: (0.334606, 0.231733), 40: (0.260918, 0.245099), 41: (0.182743, 0.244077),
    42: (0.645647, 0.231733), 43: (0.714428, 0.179852), 44: (0.793132, 0.178758),
    45: (0.858516, 0.216423), 46: (0.79751, 0.244077), 47: (0.719335, 0.245099),
    48: (0.254149, 0.780233), 54: (0.726104, 0.780233),
}


def _mean_of(points) -> np.ndarray:
    return np.mean([_DLIB_MEAN_FACE[i] for i in points], axis=0)


DLIB_TEMPLATE_UNIT = np.array([
    _mean_of(range(36, 42)), _mean_of(range(42, 48)), _DLIB_MEAN_FACE[30], _DLIB_MEAN_FACE[48], _DLIB_MEAN_FACE[54],
], dtype=np.float64)
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25  # compute_face_descriptor's default


def dlib_chip_points(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> np.ndarray:
    """Where the 5 landmarks land in a dlib face chip (pixels), as get_face_chip_details places its template."""
    return (padding + DLIB_TEMPLATE_UNIT) / (2 * padding + 1) * size


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity transform (Umeyama, via scikit-image) mapping ``src`` onto ``dst``."""
    from skimage.transform import SimilarityTransform

    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:
        tform = SimilarityTransform()
        ok = tform.estimate(src, dst)
    if not ok or not np.all(np.isfinite(tform.params)):
        raise BadInputError(f"landmarks {src.tolist()} admit no similarity transform onto the template")
    return tform.params[0:2, :]


def arcface_matrix(landmarks: np.ndarray, image_size: int = 112) -> np.ndarray:
    """insightface ``estimate_norm(lmk, image_size, mode='arcface')``."""
    if image_size % 112 == 0:
        ratio, diff_x = image_size / 112.0, 0.0
    elif image_size % 128 == 0:
        ratio, diff_x = image_size / 128.0, 8.0 * image_size / 128.0
    else:
        raise ValueError(f"ArcFace alignment needs a size multiple of 112 or 128, got {image_size}")
    dst = ARCFACE_TEMPLATE_112 * ratio
    dst[:, 0] += diff_x
    return similarity_matrix(landmarks, dst)


def norm_crop(image: np.ndarray, landmarks: np.ndarray, image_size: int = 112) -> np.ndarray:
    """insightface ``face_align.norm_crop``: the aligned ``image_size`` square face (channels untouched)."""
    import cv2

    matrix = arcface_matrix(landmarks, image_size)
    return cv2.warpAffine(image, matrix, (image_size, image_size), borderValue=0.0)

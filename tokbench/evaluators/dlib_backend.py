"""dlib ResNet face descriptors (dlib-bin + face-recognition-models): the offline default face backend.

128-d descriptors of 150x150 chips aligned from the ground-truth landmarks (see ``alignment``); dlib's
standard rule: two descriptors are the same person when their L2 distance is below 0.6 (dlib's
face_recognition_model_v1 documentation; 99.38% on LFW). Cosine similarity is reported for parity with
TokBench's F-Sim, but dlib descriptors are not zero-centred, so cosine stays high even across people.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tokbench.errors import MissingWeightsError
from tokbench.evaluators.alignment import DLIB_CHIP_PADDING, DLIB_CHIP_SIZE, dlib_chip_points
from tokbench.evaluators.face import FaceEmbedder, SamePersonRule, register_face_backend
from tokbench.evaluators.versions import package_version

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_RULE = SamePersonRule(distance="l2", threshold=0.6, normalized=False,
                           source="dlib face_recognition_model_v1: same person when L2 < 0.6 (dlib docs)")


def face_recognition_models_dir() -> Path:
    """The models folder of face-recognition-models, found without importing it (its __init__ needs
    pkg_resources, gone from setuptools >= 81)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(f"face backend dlib: {RESNET_FILE} comes from the face-recognition-models "
                                  "package, which is not installed; pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@register_face_backend("dlib")
class DlibEmbedder(FaceEmbedder):
    name = "dlib"
    dim = 128
    rule = DLIB_RULE

    def __init__(self, device: str = "cpu"):
        try:
            import dlib
        except ImportError as e:
            raise MissingWeightsError(f"face backend dlib: dlib is not importable ({e}); "
                                      "pip install dlib-bin (never the dlib sdist)") from None
        self._dlib = dlib
        self._model_path = face_recognition_models_dir() / RESNET_FILE
        if not self._model_path.is_file():
            raise MissingWeightsError(f"face backend dlib: missing {self._model_path}; "
                                      "reinstall face-recognition-models")
        self._model = dlib.face_recognition_model_v1(str(self._model_path))
        self._chip_points = dlib.dpoints([dlib.dpoint(float(x), float(y)) for x, y in dlib_chip_points()])

    @property
    def version(self) -> str:
        return (f"dlib {self._dlib.__version__} (dlib-bin {package_version('dlib-bin')}); "
                f"face-recognition-models {package_version('face-recognition-models')}; {RESNET_FILE}")

    @property
    def model_files(self) -> list[str]:
        return [RESNET_FILE]

    def describe(self) -> dict:
        return {**super().describe(),
                "alignment": f"{DLIB_CHIP_SIZE}x{DLIB_CHIP_SIZE} chip, padding {DLIB_CHIP_PADDING}, similarity fit"
                             " of the 5 ground-truth landmarks onto dlib's mean face (dlib extract_image_chip)",
                "jitters": 0, "device": "cpu"}

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The aligned 150x150 chip dlib's network sees for these landmarks."""
        dlib = self._dlib
        img_points = dlib.dpoints([dlib.dpoint(float(x), float(y)) for x, y in landmarks])
        details = dlib.chip_details(self._chip_points, img_points, dlib.chip_dims(DLIB_CHIP_SIZE, DLIB_CHIP_SIZE))
        return dlib.extract_image_chip(image, details)

    def _embed(self, image: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        chips = [self.chip(image, kps) for kps in landmarks]
        descriptors = self._model.compute_face_descriptor(chips)  # one batched forward pass
        return np.array([np.asarray(d) for d in descriptors], dtype=np.float64)

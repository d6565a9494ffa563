"""Face identity backend interface and registry.

A backend embeds faces located by their ground-truth 5-point landmarks (no detector at evaluation time,
as TokBench): the same landmarks align the face in the original and in the reconstruction, so only pixel
content can change the embedding. Each backend carries its standard same-person rule, which the face
metric uses for the identity-kept rate.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from tokbench.data.items import Face
from tokbench.errors import BadInputError
from tokbench.registry import Registry


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).ravel()
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class SamePersonRule:
    """When two embeddings count as the same person: ``l2 < threshold`` or ``cosine >= threshold``."""

    distance: str  # "l2" or "cosine"
    threshold: float
    normalized: bool  # whether L2 is taken between unit-normalised embeddings
    source: str  # where the threshold comes from

    def l2(self, a: np.ndarray, b: np.ndarray) -> float:
        a = np.asarray(a, dtype=np.float64).ravel()
        b = np.asarray(b, dtype=np.float64).ravel()
        if self.normalized:
            a, b = unit(a), unit(b)
        return float(np.linalg.norm(a - b))

    def same(self, a: np.ndarray, b: np.ndarray) -> bool:
        if self.distance == "l2":
            return self.l2(a, b) < self.threshold
        if self.distance == "cosine":
            return cosine(a, b) >= self.threshold
        raise ValueError(f"unknown distance {self.distance!r}")

    def describe(self) -> dict:
        rule = f"L2 < {self.threshold}" if self.distance == "l2" else f"cosine >= {self.threshold}"
        return {**asdict(self), "rule": rule}


class FaceEmbedder(ABC):
    """Embeds faces of one image given their ground-truth landmarks."""

    name: str = ""
    dim: int = 0
    rule: SamePersonRule

    @property
    @abstractmethod
    def version(self) -> str:
        """Package versions and model file names in one line."""

    @property
    def model_files(self) -> list[str]:
        return []

    def describe(self) -> dict:
        return {"backend": self.name, "version": self.version, "model_files": self.model_files,
                "embedding_dim": self.dim, "same_person": self.rule.describe()}

    def embed(self, image: np.ndarray, faces: Sequence[Face], item: str = "") -> np.ndarray:
        """(N, D) float64 embeddings, one row per face, for a uint8 RGB (H, W, 3) image."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise BadInputError(f"{item}: face backend {self.name} needs a uint8 RGB (H, W, 3) image, "
                                f"got {getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', None)}")
        kps = [face_landmarks(f, f"{item}: face {i}") for i, f in enumerate(faces)]
        if not kps:
            return np.zeros((0, self.dim), dtype=np.float64)
        out = np.asarray(self._embed(np.ascontiguousarray(image), kps), dtype=np.float64)
        if out.shape != (len(kps), self.dim):
            raise RuntimeError(f"face backend {self.name} returned {out.shape} for {len(kps)} faces")
        return out

    @abstractmethod
    def _embed(self, image: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        ...


def face_landmarks(face: Face, where: str) -> np.ndarray:
    """The 5 landmarks as a (5, 2) float64 array (left eye, right eye, nose, left mouth, right mouth)."""
    try:
        kps = np.asarray(face.kps, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(f"{where}: landmarks are not numeric: {face.kps!r}") from None
    if kps.shape != (5, 2):
        raise BadInputError(f"{where}: expected 5 (x, y) landmarks, got shape {kps.shape}")
    if not np.all(np.isfinite(kps)):
        raise BadInputError(f"{where}: landmarks contain non-finite values")
    spread = np.ptp(kps, axis=0)
    if math.hypot(*spread) < 1e-6:
        raise BadInputError(f"{where}: landmarks coincide, no face geometry to align")
    return kps


# name -> factory(device="cpu", **options) returning a FaceEmbedder; raises MissingWeightsError when absent
FACE_BACKENDS: Registry[Callable[..., FaceEmbedder]] = Registry("face backend")


def register_face_backend(name: str, *aliases: str):
    return FACE_BACKENDS.register(name, *aliases)


def create_face_backend(name: str, device: str = "cpu", **options) -> FaceEmbedder:
    import tokbench.evaluators  # noqa: F401  (registers the built-in backends)

    return FACE_BACKENDS.get(name)(device=device, **options)


def list_face_backends() -> list[str]:
    import tokbench.evaluators  # noqa: F401

    return FACE_BACKENDS.names()

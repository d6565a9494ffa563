"""OCR engine interface and registry.

An engine reads word crops (cut by ``tokbench.evaluators.crops``) and returns one string per crop. It sees
no annotations, so the same engine scores originals and reconstructions identically; engines batch
internally because per-crop calls are dominated by framework overhead.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Optional, Sequence

import numpy as np

from tokbench.errors import BadInputError
from tokbench.registry import Registry


class OCREngine(ABC):
    """A text recogniser for word crops. ``recognize`` takes uint8 RGB ``(H, W, 3)`` crops."""

    name: str = ""
    bounded_decoding: bool = False  # can cap decoding per crop (the official PARSeq batches do)

    @property
    @abstractmethod
    def version(self) -> str:
        """Package versions and model file names in one line (goes into cache keys and manifests)."""

    @property
    def model_files(self) -> list[str]:
        return []

    def describe(self) -> dict:
        return {"engine": self.name, "version": self.version, "model_files": self.model_files}

    def recognize(self, crops: Sequence[np.ndarray], max_lengths: Optional[Sequence[int]] = None) -> list[str]:
        """One prediction per crop, in order (batched inside the engine). ``max_lengths``: decode each crop
        with this cap, as a GT-bounded batch would (only engines with ``bounded_decoding``)."""
        crops = list(crops)
        if max_lengths is not None:
            if not self.bounded_decoding:
                raise ValueError(f"OCR engine {self.name} cannot bound its decoding")
            if len(max_lengths) != len(crops):
                raise ValueError(f"{len(max_lengths)} decoding caps for {len(crops)} crops")
        for i, c in enumerate(crops):
            check_crop(c, f"{self.name} crop {i}")
        if not crops:
            return []
        preds = self._recognize(crops) if max_lengths is None else self._recognize_bounded(crops, list(max_lengths))
        if len(preds) != len(crops):
            raise RuntimeError(f"OCR engine {self.name} returned {len(preds)} predictions for {len(crops)} crops")
        return [p if isinstance(p, str) else "" for p in preds]

    @abstractmethod
    def _recognize(self, crops: list[np.ndarray]) -> list[str]:
        ...

    def _recognize_bounded(self, crops: list[np.ndarray], max_lengths: list[int]) -> list[str]:
        """Engines that set ``bounded_decoding`` override this; ``recognize`` never calls it for the others."""
        raise NotImplementedError(f"OCR engine {self.name} declares bounded_decoding but does not implement it")


def check_crop(crop: np.ndarray, what: str) -> None:
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        shape = getattr(crop, "shape", None)
        dtype = getattr(crop, "dtype", type(crop).__name__)
        raise BadInputError(f"{what}: expected a uint8 RGB (H, W, 3) array, got {dtype} {shape}")
    if min(crop.shape[:2]) < 1:
        raise BadInputError(f"{what}: empty crop {crop.shape}")


# name -> factory(device="cpu", **options) returning an OCREngine. A factory raises MissingWeightsError
# (one line) when the engine's package or weights are absent.
OCR_ENGINES: Registry[Callable[..., OCREngine]] = Registry("OCR engine")


def register_ocr_engine(name: str, *aliases: str):
    return OCR_ENGINES.register(name, *aliases)


def create_ocr_engine(name: str, device: str = "cpu", **options) -> OCREngine:
    """Build a registered engine by name; unknown names list the valid ones."""
    import tokbench.evaluators  # noqa: F401  (registers the built-in engines)

    return OCR_ENGINES.get(name)(device=device, **options)


def list_ocr_engines() -> list[str]:
    import tokbench.evaluators  # noqa: F401

    return OCR_ENGINES.names()

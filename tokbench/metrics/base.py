"""Metric interfaces.

Metrics see pixels and annotations only (never the tokenizer). Two shapes:

* ``InstanceMetric``: one row per scored instance (an image, a word, a face). Work that depends on the
  original only goes in ``reference`` and is cached once per dataset + metric configuration, then reused
  for every tokenizer.
* ``DistributionMetric``: a score over the whole set (FID-like). Per-item states are cached so a resumed
  or sharded run combines them exactly.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from tokbench.data.items import Item
from tokbench.registry import Registry

LEVELS = ("image", "video", "word", "face")


@dataclass
class Sample:
    """An item's original and reconstruction, both uint8 RGB (T, H, W, 3) at the original resolution."""

    item: Item
    original: np.ndarray
    reconstruction: np.ndarray
    context: dict = field(default_factory=dict)  # protocol facts an item needs from its dataset (OCR batches)

    @property
    def frames(self) -> int:
        return self.original.shape[0]


class InstanceMetric(ABC):
    name: str = ""
    level: str = "image"
    columns: tuple[str, ...] = ()  # numeric columns this metric writes
    higher_is_better: tuple[bool, ...] = ()
    version: str = "1"

    def describe(self) -> dict:
        """Everything that changes the numbers: goes into cache keys and the manifest."""
        return {"name": self.name, "version": self.version, "level": self.level, "columns": list(self.columns)}

    def reference(self, sample: Sample) -> Any:
        """Original-only work (e.g. OCR of the original, face embedding of the original). JSON-able."""
        return None

    @property
    def has_reference(self) -> bool:
        """False for metrics without original-only work (PSNR, SSIM): nothing to cache for them."""
        return type(self).reference is not InstanceMetric.reference

    @abstractmethod
    def score(self, sample: Sample, reference: Any) -> list[dict]:
        """Rows for this item: each has ``instance`` (index within the item), optionally ``frame`` and
        ``ratio`` (TokBench scale, used for binning), the metric's columns, and any string extras."""


class DistributionMetric(ABC):
    name: str = ""
    columns: tuple[str, ...] = ()
    higher_is_better: tuple[bool, ...] = ()
    version: str = "1"

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "level": "set", "columns": list(self.columns)}

    @abstractmethod
    def reference_state(self, sample: Sample) -> dict[str, np.ndarray]:
        """State from the original alone (cached across tokenizers)."""

    @abstractmethod
    def item_state(self, sample: Sample) -> dict[str, np.ndarray]:
        """State from the reconstruction."""

    @abstractmethod
    def compute(self, reference_states: Iterable[dict], item_states: Iterable[dict]) -> dict[str, float]:
        """Combine per-item states into the set-level score(s)."""


# name -> factory(protocol, device="cpu") returning a metric; a factory raises MissingWeightsError when
# its weights are absent (the run then reports the metric unavailable, with the reason)
METRICS: Registry = Registry("metric")


def register_metric(name: str, *aliases: str):
    return METRICS.register(name, *aliases)

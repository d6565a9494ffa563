"""rFID: Frechet Inception Distance between originals and reconstructions (pytorch-fid pipeline).

Per item, the state is the pool3 features of every frame (an image is one frame; a video contributes
each frame, so N counts frames). Features are pytorch-fid's (InceptionV3 FID weights, bilinear resize to
299 inside the network, 2x - 1) computed from the uint8 pixels the pipeline rounded once. Both sides
accumulate float64 sums (n, sum x, sum x x^T), so shards and cached reference statistics combine
exactly; the covariance is unbiased (N - 1) like numpy.cov in pytorch-fid, and the distance is the
float64 nuclear-norm form of tokbench.features.frechet (no matrix square root; recorded in describe()).
Every score carries its N; N < 2048 (fewer samples than feature dimensions) triggers a warning because
FID is strongly biased there.
"""
from __future__ import annotations

import logging
import warnings
from typing import Iterable

import numpy as np

from tokbench.errors import BadInputError
from tokbench.features.frechet import DEFAULT_METHOD, DESCRIPTION, frechet_distance
from tokbench.features.gaussian import GaussianStats
from tokbench.features.inception import FEATURE_DIM, InceptionFeatures
from tokbench.metrics.base import DistributionMetric, Sample, register_metric
from tokbench.weights_catalog import INCEPTION_FID, provenance, resolve_for

log = logging.getLogger(__name__)

MIN_RELIABLE_N = 2048


def small_n_warning(metric: str, n: int, threshold: int = MIN_RELIABLE_N) -> None:
    """Warn (and log) when a Frechet score rests on fewer samples than ``threshold``."""
    if n < threshold:
        msg = (f"{metric} from N={n} samples (< {threshold}) is strongly biased upward; compare only scores"
               " with the same N")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)


class RFID(DistributionMetric):
    name = "rfid"
    columns = ("rFID", "rFID-N")
    higher_is_better = (False, True)
    version = "1"
    ddof = 1

    def __init__(self, extractor: InceptionFeatures, weights: dict | None = None):
        self.extractor = extractor
        self.weights = weights or {}

    @property
    def weights_sha256(self) -> str:
        return self.weights.get("sha256", "")

    def describe(self) -> dict:
        return {**super().describe(), **self.extractor.describe(), "weights": self.weights,
                "pixels": "uint8 RGB as rounded once by the pipeline; video frames count as images",
                "statistics": "float64 streaming sums, covariance / (N - 1)",
                "distance": DESCRIPTION[DEFAULT_METHOD]}

    def features(self, pixels: np.ndarray, item_id: str = "") -> dict[str, np.ndarray]:
        try:
            return {"features": self.extractor(pixels)}
        except BadInputError as e:
            raise BadInputError(f"item {item_id}: {e}") from None

    def reference_state(self, sample: Sample) -> dict[str, np.ndarray]:
        return self.features(sample.original, sample.item.id)

    def item_state(self, sample: Sample) -> dict[str, np.ndarray]:
        return self.features(sample.reconstruction, sample.item.id)

    def compute(self, reference_states: Iterable[dict], item_states: Iterable[dict]) -> dict[str, float]:
        ref = GaussianStats.from_states(reference_states, FEATURE_DIM)
        rec = GaussianStats.from_states(item_states, FEATURE_DIM)
        return self.compute_from_stats(ref, rec)

    def compute_from_stats(self, reference: GaussianStats, reconstruction: GaussianStats) -> dict[str, float]:
        if reconstruction.n < 2 or reference.n < 2:
            raise BadInputError(f"rFID needs at least 2 images on each side, got {reference.n} originals and "
                                f"{reconstruction.n} reconstructions")
        small_n_warning("rFID", reconstruction.n)
        fid = frechet_distance(reference.mean, reference.cov(self.ddof), reconstruction.mean,
                               reconstruction.cov(self.ddof))
        return {"rFID": fid, "rFID-N": float(reconstruction.n)}


@register_metric("rfid")
def _rfid(protocol, device="cpu"):
    path = resolve_for(INCEPTION_FID.name, what="rFID Inception weights")
    return RFID(InceptionFeatures(path, device=device), weights=provenance(INCEPTION_FID.name, path))

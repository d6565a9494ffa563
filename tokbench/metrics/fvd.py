"""rFVD: Frechet Video Distance between original and reconstructed clips (I3D Kinetics-400 logits).

Per item the state is the 400-d I3D logits of the clip (one clip per item; the data side decides which
frames form the clip). Detectors:

* ``styleganv`` (default, metric ``rfvd``): StyleGAN-V ``i3d_torchscript.pt`` called as StyleGAN-V
  does; covariance divided by N (StyleGAN-V ``FeatureStats``).
* ``tats`` (metric ``rfvd-tats``): TATS ``i3d_pretrained_400.pt`` with torch bilinear resize to 224;
  covariance divided by N - 1 (TATS ``cov``). TATS computes the distance with a float32 SVD; tokbench
  uses the float64 nuclear-norm form of tokbench.features.frechet for both detectors (recorded in describe()).

Named UCF-101 presets (``FVD_PRESETS``) fix clip length, size, split and detector as LARP and
OmniTokenizer report rFVD; the metric checks every clip against its preset. rFVD numbers from different
presets or detectors are different metrics (metric-conventions.md 2.4).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Optional

import numpy as np

from tokbench.errors import BadInputError
from tokbench.features.frechet import DEFAULT_METHOD, DESCRIPTION, frechet_distance
from tokbench.features.gaussian import GaussianStats
from tokbench.features.i3d import FEATURE_DIM, StyleGANVI3D, TATSI3D
from tokbench.metrics.base import DistributionMetric, Sample, register_metric
from tokbench.metrics.fid import small_n_warning
from tokbench.registry import Registry
from tokbench.weights_catalog import I3D_STYLEGANV, I3D_TATS, provenance, resolve_for

MIN_CLIPS = 2048  # StyleGAN-V's fvd2048 protocols; fewer clips give a biased, N-dependent score
DETECTORS = {"styleganv": (I3D_STYLEGANV.name, StyleGANVI3D), "tats": (I3D_TATS.name, TATSI3D)}


@dataclass(frozen=True)
class FVDPreset:
    """The metric side of a published rFVD protocol (data loading lives in tokbench.data.ucf101)."""

    name: str
    dataset: str
    split: str
    frames: int
    height: int
    width: int
    clips_per_video: int
    clip_rule: str
    detector: str  # key of DETECTORS
    follows: str
    description: str = ""

    def describe(self) -> dict:
        return asdict(self)


FVD_PRESETS: Registry[FVDPreset] = Registry("rFVD preset")

FVD_PRESETS.add("ucf101-larp", FVDPreset(
    name="ucf101-larp", dataset="ucf101", split="train", frames=16, height=128, width=128, clips_per_video=1,
    clip_rule="one 16-frame clip per training video at the native frame rate, 128x128 crop",
    detector="styleganv", follows="LARP eval/eval_larp_tokenizer.py + rfvd_evaluator.py",
    description="UCF-101 train list (~9.5k videos), 16x128x128, StyleGAN-V I3D"), aliases=("ucf101-16x128",))
FVD_PRESETS.add("ucf101-omnitokenizer", FVDPreset(
    name="ucf101-omnitokenizer", dataset="ucf101", split="test", frames=17, height=256, width=256,
    clips_per_video=1, clip_rule="17-frame clips from every video of the test/val list, 256x256",
    detector="tats", follows="OmniTokenizer vqgan_eval.py (annotations/ucf_val.txt)",
    description="UCF-101 test list, 17x256x256, TATS I3D"), aliases=("ucf101-17x256",))


class RFVD(DistributionMetric):
    name = "rfvd"
    columns = ("rFVD", "rFVD-N")
    higher_is_better = (False, True)
    version = "1"

    def __init__(self, extractor, detector: str, weights: dict | None = None, preset: Optional[FVDPreset] = None,
                 name: str = "rfvd"):
        self.extractor = extractor
        self.detector = detector
        self.weights = weights or {}
        self.preset = preset
        self.name = name
        label = "rFVD" + name[len("rfvd"):]  # rfvd -> rFVD, rfvd-tats -> rFVD-tats: variants never share a column
        self.columns = (label, f"{label}-N")

    def describe(self) -> dict:
        return {**super().describe(), "detector": self.detector, **self.extractor.describe(), "weights": self.weights,
                "preset": self.preset.describe() if self.preset else None,
                "clip": "all frames of the item's clip, uint8 as rounded once by the pipeline",
                "statistics": f"float64 streaming sums, covariance / (N - {self.extractor.ddof})",
                "distance": DESCRIPTION[DEFAULT_METHOD]}

    def _check(self, sample: Sample, pixels: np.ndarray) -> None:
        if pixels.shape[0] < 2:
            raise BadInputError(f"item {sample.item.id}: rFVD needs video clips, got a single frame")
        if self.preset is not None:
            want = (self.preset.frames, self.preset.height, self.preset.width)
            if tuple(pixels.shape[:3]) != want:
                raise BadInputError(f"item {sample.item.id}: rFVD preset {self.preset.name} expects clips of "
                                    f"{want[0]}x{want[1]}x{want[2]} (frames x H x W), got "
                                    f"{'x'.join(map(str, pixels.shape[:3]))}")

    def features(self, sample: Sample, pixels: np.ndarray) -> dict[str, np.ndarray]:
        self._check(sample, pixels)
        try:
            return {"features": self.extractor(pixels[None])}
        except BadInputError as e:
            raise BadInputError(f"item {sample.item.id}: {e}") from None

    def reference_state(self, sample: Sample) -> dict[str, np.ndarray]:
        return self.features(sample, sample.original)

    def item_state(self, sample: Sample) -> dict[str, np.ndarray]:
        return self.features(sample, sample.reconstruction)

    def compute(self, reference_states: Iterable[dict], item_states: Iterable[dict]) -> dict[str, float]:
        ref = GaussianStats.from_states(reference_states, FEATURE_DIM)
        rec = GaussianStats.from_states(item_states, FEATURE_DIM)
        return self.compute_from_stats(ref, rec)

    def compute_from_stats(self, reference: GaussianStats, reconstruction: GaussianStats) -> dict[str, float]:
        if reconstruction.n < 2 or reference.n < 2:
            raise BadInputError(f"rFVD needs at least 2 clips on each side, got {reference.n} originals and "
                                f"{reconstruction.n} reconstructions")
        small_n_warning(self.columns[0], reconstruction.n, MIN_CLIPS)
        ddof = self.extractor.ddof
        fvd = frechet_distance(reference.mean, reference.cov(ddof), reconstruction.mean, reconstruction.cov(ddof))
        return {self.columns[0]: fvd, self.columns[1]: float(reconstruction.n)}


def create_rfvd(detector: str = "styleganv", preset: Optional[str] = None, device: str = "cpu",
                weights_path=None, name: str = "rfvd") -> RFVD:
    """Build rFVD for a detector ("styleganv" | "tats") or a named preset (which fixes the detector)."""
    p = FVD_PRESETS.get(preset) if preset else None
    detector = p.detector if p else detector
    if detector not in DETECTORS:
        raise BadInputError(f"unknown rFVD detector {detector!r}; use one of {', '.join(DETECTORS)}")
    weights_name, cls = DETECTORS[detector]
    path = resolve_for(weights_name, explicit=weights_path, what=f"rFVD I3D weights ({detector})")
    return RFVD(cls(path, device=device), detector, weights=provenance(weights_name, path), preset=p, name=name)


@register_metric("rfvd")
def _rfvd(protocol, device="cpu"):
    return create_rfvd("styleganv", device=device, name="rfvd")


@register_metric("rfvd-tats")
def _rfvd_tats(protocol, device="cpu"):
    return create_rfvd("tats", device=device, name="rfvd-tats")


@register_metric("rfvd-ucf101-larp")
def _rfvd_larp(protocol, device="cpu"):
    return create_rfvd(preset="ucf101-larp", device=device, name="rfvd-ucf101-larp")


@register_metric("rfvd-ucf101-omnitokenizer")
def _rfvd_omni(protocol, device="cpu"):
    return create_rfvd(preset="ucf101-omnitokenizer", device=device, name="rfvd-ucf101-omnitokenizer")

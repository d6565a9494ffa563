"""Tokenizer spec and interface.

The spec is static metadata (testable without weights) that tells the harness how to feed the tokenizer:
value range, frame rule, spatial multiple. The tokenizer itself only maps a batch of clips to codes and back;
padding, range conversion and chunking live in the harness.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch

from tokbench.weights import WeightFile

KINDS = ("continuous", "discrete", "codec", "baseline")


@dataclass(frozen=True)
class TokenizerSpec:
    name: str
    family: str
    kind: str  # one of KINDS
    modalities: frozenset = frozenset({"image"})
    input_range: tuple[float, float] = (0.0, 1.0)
    spatial_factor: int = 1
    temporal_factor: int = 1
    causal_first_frame: bool = False  # True: clips must have T = 1 + k * temporal_factor frames
    spatial_multiple: int = 1  # H and W must be multiples of this
    square_only: bool = False
    native_resolution: bool = False  # True: the harness skips the fit-resize (the identity upper bound)
    input_size: Optional[int] = None  # the one square side accepted: the harness fits every frame into it
    latent_channels: Optional[int] = None
    codebook_size: Optional[int] = None
    codebooks: int = 1  # independent codebooks per token position (UniTok: 8); each index is counted in the rate
    latent_bits: Optional[int] = None  # bits per stored latent element of continuous tokenizers
    default_clip_frames: Optional[int] = None  # frames per clip for video; None: whole video at once
    checkpoint: Optional[WeightFile] = None
    license: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    published: Optional[str] = None  # the TokBench leaderboard row this entry reproduces (its `method` name)
    label_options: tuple[str, ...] = ()  # options always in the label, defaults included (a codec's quality / crf)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"tokenizer {self.name}: kind must be one of {KINDS}, not {self.kind!r}")

    def valid_frames(self, t: int) -> bool:
        """Whether a clip of ``t`` frames satisfies the frame rule."""
        if t < 1:
            return False
        if self.causal_first_frame:
            return (t - 1) % self.temporal_factor == 0
        return t % self.temporal_factor == 0 or self.temporal_factor == 1

    def describe(self) -> dict:
        d = asdict(self)
        d["modalities"] = sorted(self.modalities)
        d["checkpoint"] = self.checkpoint.filename if self.checkpoint else None
        return d


@dataclass
class Encoded:
    """What ``encode`` returns. ``bits`` is the rate of each batch element, measured from the real
    representation (bitstream bytes, token count x log2(codebook), latent elements x dtype bits)."""

    bits: torch.Tensor  # (B,) float64
    latents: Optional[torch.Tensor] = None
    indices: Optional[torch.Tensor] = None
    payload: Any = None  # anything else decode needs (bitstreams, decoded frames)


class Tokenizer(ABC):
    """Maps clips (B, C, T, H, W) float32 in ``spec.input_range`` to codes and back.

    Subclasses implement ``encode`` and ``decode``; the harness guarantees the input satisfies the spec.
    """

    spec: TokenizerSpec

    def __init__(self, spec: TokenizerSpec, options: Optional[dict] = None, checkpoint_path: Optional[str] = None,
                 checkpoint_sha256: Optional[str] = None):
        self.spec = spec
        self.options = dict(options or {})
        self.label_keys: Optional[tuple[str, ...]] = None  # options shown in the label; None: all of them
        self.checkpoint_path = checkpoint_path
        self.checkpoint_sha256 = checkpoint_sha256
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    @abstractmethod
    def encode(self, x: torch.Tensor) -> Encoded: ...

    @abstractmethod
    def decode(self, encoded: Encoded) -> torch.Tensor: ...

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.encode(x)
        return self.decode(enc), enc.bits

    def to(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> "Tokenizer":
        self.device, self.dtype = torch.device(device), dtype
        return self

    @property
    def label(self) -> str:
        """Name plus options, e.g. ``jpeg:quality=90`` (what reports and leaderboards show)."""
        shown = getattr(self, "label_keys", None)
        keys = sorted(self.options if shown is None else (k for k in shown if k in self.options))
        if not keys:
            return self.spec.name
        return self.spec.name + ":" + ",".join(f"{k}={self.options[k]}" for k in keys)

    def describe(self) -> dict:
        return {"name": self.spec.name, "label": self.label, "options": self.options,
                "checkpoint_path": self.checkpoint_path, "checkpoint_sha256": self.checkpoint_sha256,
                "spec": self.spec.describe(), "device": str(self.device), "dtype": str(self.dtype).replace("torch.", "")}


def discrete_bits(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Rate of token indices (B, ...): tokens per element x log2(codebook size)."""
    per = indices[0].numel() * math.log2(codebook_size)
    return torch.full((indices.shape[0],), per, dtype=torch.float64)


def continuous_bits(latents: torch.Tensor, bits_per_element: int) -> torch.Tensor:
    """Rate of continuous latents (B, ...) stored at ``bits_per_element``."""
    per = latents[0].numel() * bits_per_element
    return torch.full((latents.shape[0],), float(per), dtype=torch.float64)

"""From a released MaskBit tokenizer file to a ``MaskBitTokenizer``.

The released ``maskbit_tokenizer_<N>bit.bin`` files are flat state_dicts (upstream loads them with
``strict=True``); ``ckpt["state_dict"]`` / ``ckpt["model"]`` nestings are unwrapped as well. They hold no
training-only keys, so nothing is dropped: every key must match. The two quantiser buffers are checked against
their closed form (powers of two, channel 0 first; all +-1 code vectors), since a file that disagreed would
number its tokens differently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tokbench.models.checkpoint_keys import CheckpointMismatch, load_exact, unwrap_state_dict
from tokbench.models.maskbit.model import BitQuantizer, MaskBitConfig, MaskBitTokenizer

IDENTITY_FIELDS = ("stages", "token_size")  # spatial factor and bits per token


@dataclass
class LoadedMaskBit:
    model: MaskBitTokenizer
    config: MaskBitConfig
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, released value)}


def _identity(cfg: MaskBitConfig) -> dict:
    return {"stages": len(cfg.channel_mult), "token_size": cfg.token_size}


def build_model(obj: Any, expected: MaskBitConfig) -> LoadedMaskBit:
    state = unwrap_state_dict(obj)
    try:
        cfg = MaskBitConfig.from_state_dict(state)
    except (KeyError, ValueError):
        cfg = expected
    got, want = _identity(cfg), _identity(expected)
    if got != want:
        said = ", ".join(f"{k}={got[k]} (expected {want[k]})" for k in got if got[k] != want[k])
        raise CheckpointMismatch(f"the file's tensors say {said}")
    with torch.device("meta"):
        model = MaskBitTokenizer(cfg)
    load_exact(model, state)
    reference = BitQuantizer(cfg.token_size)
    for name in ("bits_to_indices", "codebook"):
        if not torch.equal(getattr(model.quantize, name), getattr(reference, name)):
            raise CheckpointMismatch(f"quantize.{name} is not the standard LFQ {name.replace('_', ' ')} "
                                     f"(powers of two, channel 0 least significant)")
    deviations = {k: (v, expected.to_dict()[k]) for k, v in cfg.to_dict().items() if v != expected.to_dict()[k]}
    return LoadedMaskBit(model=model, config=cfg, size_deviations=deviations)

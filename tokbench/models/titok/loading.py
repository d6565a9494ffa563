"""From a released TiTok file to a ``TiTok`` model.

The releases are flat state_dicts without prefix (``model.safetensors`` of the Hub repos, or the
``fun-research/TiTok`` ``.bin`` files of the first three); ``["state_dict"]`` / ``["model"]`` nestings are
unwrapped too. Upstream loads them strictly and they hold no training-only keys, so every key must match.
Identity fields (token count, channels, quantiser, codebook, head type) must equal the entry's; transformer
and pixel-decoder sizes may differ (tiny test files) and are reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tokbench.models.checkpoint_keys import CheckpointMismatch, load_exact, unwrap_state_dict
from tokbench.models.titok.model import TiTok, TiTokConfig, config_from_state_dict

IDENTITY_FIELDS = ("num_tokens", "token_channels", "quantizer", "codebook_size", "legacy", "image_size",
                   "patch_size")
SIZE_FIELDS = ("encoder", "decoder", "pixel_codes", "pixel_z", "pixel_hidden", "pixel_mult", "pixel_res_blocks")


@dataclass
class LoadedTiTok:
    model: TiTok
    config: TiTokConfig
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, released value)}


def build_model(obj: Any, expected: TiTokConfig) -> LoadedTiTok:
    state = unwrap_state_dict(obj)
    try:
        cfg = config_from_state_dict(state, expected)
    except (KeyError, ValueError, IndexError):
        cfg = expected  # not a TiTok file: the strict key report below says what differs
    said = [f"{k}={getattr(cfg, k)!r} (expected {getattr(expected, k)!r})" for k in IDENTITY_FIELDS
            if getattr(cfg, k) != getattr(expected, k)]
    if said:
        raise CheckpointMismatch("the file's tensors say " + ", ".join(said))
    with torch.device("meta"):
        model = TiTok(cfg)
    load_exact(model, state)
    deviations = {k: (getattr(cfg, k), getattr(expected, k)) for k in SIZE_FIELDS
                  if getattr(cfg, k) != getattr(expected, k) and (cfg.legacy or not k.startswith("pixel_"))}
    return LoadedTiTok(model=model, config=cfg, size_deviations=deviations)

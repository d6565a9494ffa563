"""From a loaded upstream checkpoint (PyTorch-Lightning dict, or a bare state_dict) to an ``OmniTokenizer``.

The file's own flags decide the architecture; the registry entry decides what the file must *be*: a
file that disagrees on an identity field (VQ vs VAE, temporal patch, position encoding, causality) is
refused, and one that only differs in size is built as the file says and reported.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch

from tokbench.models.checkpoint_keys import key_report
from tokbench.models.omnitokenizer.config import (IDENTITY_FIELDS, SIZE_FIELDS, OmniTokenizerConfig,
                                                  config_differences, config_from_hparams)
from tokbench.models.omnitokenizer.model import OmniTokenizer

# Lightning module attributes that exist only for training (GAN discriminators, LPIPS).
TRAINING_ONLY_PREFIXES = ("image_discriminator.", "video_discriminator.", "perceptual_model.",
                          "video_perceptual_model.")


class CheckpointMismatch(ValueError):
    """The file is not the checkpoint the caller asked for, or its tensors do not fit the architecture."""

    def __init__(self, message: str, identity: Optional[dict] = None):
        super().__init__(message)
        self.identity = identity or {}  # {field: (file value, expected value)} for identity mismatches


@dataclass
class LoadedOmni:
    model: OmniTokenizer
    config: OmniTokenizerConfig
    hparams_found: bool
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, registry value)}
    dropped_keys: int = 0


def split_checkpoint(obj: Any) -> tuple[Mapping[str, torch.Tensor], Optional[Any]]:
    """``(state_dict, upstream flags or None)`` from a Lightning checkpoint dict or a bare state_dict."""
    if not isinstance(obj, Mapping):
        raise CheckpointMismatch(f"expected a dict checkpoint, got {type(obj).__name__}")
    if "state_dict" in obj:
        state, hp = obj["state_dict"], obj.get("hyper_parameters")
    else:
        state, hp = obj, None
    if isinstance(hp, Mapping) and "args" in hp:  # LightningModule.save_hyperparameters() of __init__(args)
        hp = hp["args"]
    if hp is not None and not isinstance(hp, (argparse.Namespace, Mapping)):
        raise CheckpointMismatch(f"hyper_parameters of type {type(hp).__name__} are not upstream flags")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatch("the state_dict is not a mapping of tensors")
    return state, hp


def model_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the training-only modules; everything else must match the model exactly."""
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}



def build_model(obj: Any, expected: OmniTokenizerConfig, attn_impl: Optional[str] = None) -> LoadedOmni:
    """Build an ``OmniTokenizer`` from a loaded checkpoint with strict key and shape matching.

    ``expected`` is the registry entry's configuration; ``attn_impl`` overrides its attention path.
    """
    state, hp = split_checkpoint(obj)
    if attn_impl is not None:
        expected = OmniTokenizerConfig(**{**expected.to_dict(), "attn_impl": attn_impl})
    cfg = config_from_hparams(hp, expected) if hp is not None else expected
    identity = config_differences(cfg, expected, IDENTITY_FIELDS)
    if identity:
        said = ", ".join(f"{k}={got!r} (expected {want!r})" for k, (got, want) in identity.items())
        raise CheckpointMismatch(f"the file's flags say {said}", identity)
    weights = model_state_dict(state)
    with torch.device("meta"):  # no random init: every tensor comes from the file
        model = OmniTokenizer(cfg)
    report = key_report(model, weights)
    if report:
        raise CheckpointMismatch(f"state_dict does not match the architecture: {report}")
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval().requires_grad_(False)
    return LoadedOmni(model=model, config=cfg, hparams_found=hp is not None,
                      size_deviations=config_differences(cfg, expected, SIZE_FIELDS),
                      dropped_keys=len(state) - len(weights))

"""From an upstream Open-MAGVIT2 checkpoint to an ``OpenMagvit2`` with the weights upstream reconstructs with.

Released files are Lightning checkpoints: ``ckpt["state_dict"]`` holds the training weights (``encoder.*``,
``decoder.*``), their EMA shadows (``model_ema.<parameter name without dots>``, plus ``model_ema.decay`` and
``model_ema.num_updates``) and the loss module (``loss.*``: discriminator, LPIPS) with its EMA shadows
(``model_ema.loss*``). Upstream's evaluation runs inside ``ema_scope()``, which copies every shadow over its
parameter, so the EMA copies are the weights used; the training copies are checked for shape and then set
aside. A file without ``model_ema.*`` keys (``ckpt["model"]`` or a bare state_dict) is loaded as is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tokbench.models.checkpoint_keys import CheckpointMismatch, key_report, load_exact, unwrap_state_dict
from tokbench.models.open_magvit2.model import OpenMagvit2, OpenMagvit2Config

EMA_PREFIX = "model_ema."
# training-only: the loss module (discriminator, LPIPS), its EMA shadows, and the EMA bookkeeping buffers
TRAINING_ONLY_PREFIXES = ("loss.", "model_ema.loss")
EMA_BOOKKEEPING = ("model_ema.decay", "model_ema.num_updates")
IDENTITY_FIELDS = ("levels", "z_channels")  # spatial factor and bits per token: what makes a file this entry


@dataclass
class LoadedOpenMagvit2:
    model: OpenMagvit2
    config: OpenMagvit2Config
    weights: str  # "ema" or "raw"
    dropped_keys: int = 0  # training-only keys (loss module, its EMA shadows, EMA bookkeeping)
    superseded_keys: int = 0  # training copies of the weights, replaced by their EMA shadows
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, released value)}


def ema_name(param: str) -> str:
    """LitEma's buffer name for a parameter: the dotted name with the dots removed."""
    return EMA_PREFIX + param.replace(".", "")


def _identity(cfg: OpenMagvit2Config) -> dict:
    return {"levels": len(cfg.ch_mult), "z_channels": cfg.z_channels}


def build_model(obj: Any, expected: OpenMagvit2Config) -> LoadedOpenMagvit2:
    """Build the model from a loaded checkpoint; strict about every key that is not training-only by rule.

    The architecture is read off the file's encoder tensors (``expected`` when only EMA copies are present);
    a file whose spatial factor or bits per token differ from ``expected`` is refused, other size
    differences are built as the file says and reported in ``size_deviations``.
    """
    state = unwrap_state_dict(obj)
    kept = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES) and k not in EMA_BOOKKEEPING}
    try:
        cfg = OpenMagvit2Config.from_state_dict(kept)
    except (KeyError, ValueError):
        cfg = expected
    got, want = _identity(cfg), _identity(expected)
    if got != want:
        said = ", ".join(f"{k}={got[k]} (expected {want[k]})" for k in got if got[k] != want[k])
        raise CheckpointMismatch(f"the file's tensors say {said}")
    with torch.device("meta"):
        model = OpenMagvit2(cfg)
    params = [n for n, _ in model.named_parameters()]
    shadows = {ema_name(n): n for n in params}
    if len(shadows) != len(params):  # would make the EMA mapping ambiguous (never for the released sizes)
        raise CheckpointMismatch("parameter names collide once their dots are removed")
    if any(k.startswith(EMA_PREFIX) for k in kept):
        ema = {shadows[k]: v for k, v in kept.items() if k in shadows}
        raw = {k: v for k, v in kept.items() if not k.startswith(EMA_PREFIX)}
        stray = sorted(k for k in kept if k.startswith(EMA_PREFIX) and k not in shadows)
        if stray:
            raise CheckpointMismatch(f"{len(stray)} unexpected EMA keys ({', '.join(stray[:4])}"
                                     f"{', ...' if len(stray) > 4 else ''})")
        report = key_report(model, raw) if raw else ""  # the training copies must fit too, though unused
        if report:
            raise CheckpointMismatch(f"training weights do not match the architecture: {report}")
        missing = sorted(ema_name(n) for n in set(params) - set(ema))
        if missing:
            raise CheckpointMismatch(f"{len(missing)} EMA weights missing ({', '.join(missing[:4])}"
                                     f"{', ...' if len(missing) > 4 else ''})")
        load_exact(model, ema)
        weights, superseded = "ema", len(raw)
    else:
        load_exact(model, kept)
        weights, superseded = "raw", 0
    deviations = {k: (v, getattr(expected, k)) for k, v in cfg.to_dict().items()
                  if v != expected.to_dict()[k]}
    return LoadedOpenMagvit2(model=model, config=cfg, weights=weights, dropped_keys=len(state) - len(kept),
                             superseded_keys=superseded, size_deviations=deviations)


"""Shared pieces of strict checkpoint loading for tokbench's own model implementations."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn


class CheckpointMismatch(ValueError):
    """The file is not the checkpoint the caller asked for, or its tensors do not fit the architecture."""


def unwrap_state_dict(obj: Any, nestings: tuple[str, ...] = ("state_dict", "model")) -> Mapping[str, torch.Tensor]:
    """The tensor mapping inside a checkpoint: ``obj[n]`` for the first nesting ``n`` present, else ``obj``."""
    if not isinstance(obj, Mapping):
        raise CheckpointMismatch(f"expected a dict checkpoint, got {type(obj).__name__}")
    for key in nestings:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatch("no state_dict of tensors found (looked for "
                                 + ", ".join(f"[{n!r}]" for n in nestings) + " and a bare state_dict)")
    return obj


def key_report(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """'' when ``state`` has exactly the model's keys and shapes, else a one-line summary of what differs."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            shown = ", ".join(f"{k} {tuple(state[k].shape)} vs {expected[k]}" if label == "wrong shape" else k
                              for k in keys[:4])
            parts.append(f"{len(keys)} {label} ({shown}{', ...' if len(keys) > 4 else ''})")
    return "; ".join(parts)


def load_exact(model: nn.Module, state: Mapping[str, torch.Tensor],
               mismatch: str = "state_dict does not match the architecture") -> nn.Module:
    """Strict load of a meta-device ``model`` from ``state`` (float tensors as float32), in eval mode;
    ``mismatch`` opens the error that lists the differing keys."""
    report = key_report(model, state)
    if report:
        raise CheckpointMismatch(f"{mismatch}: {report}")
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval().requires_grad_(False)

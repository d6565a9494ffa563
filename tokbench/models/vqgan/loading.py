"""From a loaded upstream checkpoint to a ``VQGAN``: find the weights in the file's nesting, drop training-only
keys by rule, read the sizes from the tensors, and load with strict key and shape matching.

What the registry entry fixes (the *identity* of the model): key layout, number of levels (the downsampling
factor), codebook size and the l2-normalised quantiser. A file that disagrees there is refused with a hint.
Sizes (base width, width multipliers, res blocks, latent and code channels, attention levels) are read from
the file; where they differ from the released model the model is built as the file says and the
difference is reported (that is how tiny test checkpoints load).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch

from tokbench.models.checkpoint_keys import key_report
from tokbench.models.vqgan.model import VQGAN, VQGANConfig

IDENTITY_FIELDS = ("layout", "levels", "n_embed", "l2_norm")
SIZE_FIELDS = ("ch", "ch_mult", "num_res_blocks", "z_channels", "embed_dim", "attn_levels", "usage_buffer")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile wrappers, stripped when every key has one
_LEVEL_NAMES = {"taming": ("down", "block", "up"), "llamagen": ("conv_blocks", "res", "conv_blocks")}


class CheckpointMismatch(ValueError):
    """The file is not the checkpoint the caller asked for, or its tensors do not fit the architecture."""

    def __init__(self, message: str, identity: Optional[dict] = None):
        super().__init__(message)
        self.identity = identity or {}  # {field: (file value, expected value)}


@dataclass
class LoadedVQGAN:
    model: VQGAN
    config: VQGANConfig
    source: str  # where in the file the weights were: "ema", "model", "state_dict" or "bare"
    dropped_keys: int = 0
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, released value)}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def find_state_dict(obj: Any, containers: tuple[str, ...]) -> tuple[Mapping[str, torch.Tensor], str]:
    """The first of ``containers`` the file has (upstream's own order), else the file itself if it is a bare
    state_dict. Returns (state_dict, where)."""
    if not isinstance(obj, Mapping):
        raise CheckpointMismatch(f"expected a dict checkpoint, got {type(obj).__name__}")
    for key in containers:
        if key in obj and obj[key] is not None:
            if not _is_state_dict(obj[key]):
                raise CheckpointMismatch(f"ckpt[{key!r}] is not a mapping of tensors")
            return obj[key], key
    if _is_state_dict(obj):
        return obj, "bare"
    raise CheckpointMismatch(f"no weights found: the file has none of {', '.join(map(repr, containers))} "
                             f"and is not a bare state_dict (top-level keys: {', '.join(map(str, list(obj)[:6]))})")


def model_weights(state: Mapping[str, torch.Tensor], training_prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Strip a DDP/compile wrapper prefix shared by every key, then drop the training-only modules."""
    state = dict(state)
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith(training_prefixes)}


def infer_config(state: Mapping[str, torch.Tensor], expected: VQGANConfig) -> VQGANConfig:
    """The configuration the tensors describe, in ``expected``'s layout; a field whose keys are absent keeps
    the expected value (the strict load then names what is missing)."""
    enc_levels, res_name, _ = _LEVEL_NAMES[expected.layout]
    values: dict[str, Any] = {}
    if "encoder.conv_in.weight" in state:
        values["ch"] = int(state["encoder.conv_in.weight"].shape[0])
    pattern = re.compile(rf"^encoder\.{enc_levels}\.(\d+)\.{res_name}\.(\d+)\.conv1\.weight$")
    widths: dict[int, dict[int, int]] = {}
    attn: set[int] = set()
    attn_pattern = re.compile(rf"^encoder\.{enc_levels}\.(\d+)\.attn\.\d+\.q\.weight$")
    for k, v in state.items():
        m = pattern.match(k)
        if m:
            widths.setdefault(int(m.group(1)), {})[int(m.group(2))] = int(v.shape[0])
        m = attn_pattern.match(k)
        if m:
            attn.add(int(m.group(1)))
    ch = values.get("ch", expected.ch)
    if widths and sorted(widths) == list(range(len(widths))) and all(w[0] % ch == 0 for w in widths.values()):
        values["ch_mult"] = tuple(widths[i][0] // ch for i in sorted(widths))
        values["num_res_blocks"] = len(widths[0])
        values["attn_levels"] = tuple(sorted(attn))
    if "encoder.conv_out.weight" in state:
        values["z_channels"] = int(state["encoder.conv_out.weight"].shape[0])
    if "quantize.embedding.weight" in state:
        n, d = state["quantize.embedding.weight"].shape
        values["n_embed"], values["embed_dim"] = int(n), int(d)
    if "quantize.codebook_used" in state:
        values["usage_buffer"] = int(state["quantize.codebook_used"].numel())
    return dataclasses.replace(expected, **values)


def _differences(got: VQGANConfig, want: VQGANConfig, fields: tuple[str, ...]) -> dict:
    out = {}
    for name in fields:
        a, b = getattr(got, name), getattr(want, name)
        if a != b:
            out[name] = (list(a) if isinstance(a, tuple) else a, list(b) if isinstance(b, tuple) else b)
    return out



def build_model(obj: Any, expected: VQGANConfig, containers: tuple[str, ...] = ("state_dict",),
                training_prefixes: tuple[str, ...] = ()) -> LoadedVQGAN:
    """A ``VQGAN`` from a loaded checkpoint ``obj``; ``expected`` is the released configuration."""
    state, source = find_state_dict(obj, containers)
    weights = model_weights(state, training_prefixes)
    cfg = infer_config(weights, expected)
    identity = _differences(cfg, expected, IDENTITY_FIELDS)
    if identity:
        said = ", ".join(f"{k}={got!r} (expected {want!r})" for k, (got, want) in identity.items())
        raise CheckpointMismatch(f"the file's tensors say {said}", identity)
    with torch.device("meta"):  # no random init: every tensor comes from the file
        model = VQGAN(cfg)
    report = key_report(model, weights)
    if report:
        hint = ""
        other = "llamagen" if cfg.layout == "taming" else "taming"
        if any(k.startswith(f"encoder.{_LEVEL_NAMES[other][0]}.") for k in weights):
            hint = f" (the keys are in the {other} layout)"
        raise CheckpointMismatch(f"state_dict ({source}) does not match the architecture: {report}{hint}")
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval().requires_grad_(False)
    return LoadedVQGAN(model=model, config=cfg, source=source, dropped_keys=len(state) - len(weights),
                       size_deviations=_differences(cfg, expected, SIZE_FIELDS))

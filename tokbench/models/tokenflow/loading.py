"""From a released TokenFlow file to a ``TokenFlow`` module.

Upstream's ``reconstruction_vq_ddp.py`` reads ``ckpt["ema"]``, else ``ckpt["model"]``, else
``ckpt["state_dict"]`` and loads strictly; tokbench does the same (a bare state_dict is accepted too) and records
which one was used. The SigLIP file was written by transformers 4.43, whose ``SiglipVisionModel`` kept its
layers under ``vision_model.``; transformers >= 5 dropped that level, so under it ``encoder_vqkd.vision_model.``
is renamed to ``encoder_vqkd.`` (nothing else is touched; under transformers 4.x the file loads as saved). Every other key must match, the training-only
``quantize.codebook_used`` buffer included (it is never read).

Sizes come from the file's tensor shapes; what shapes cannot say (attention heads, the scale schedule and the
input side) comes from the released configuration: CLIP's 64-wide and SigLIP's 72-wide heads, 12 heads in the
semantic decoder.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from tokbench.models.checkpoint_keys import CheckpointMismatch, load_exact
from tokbench.models.tokenflow.model import TokenFlow, TokenFlowConfig

CONTAINERS = ("ema", "model", "state_dict")
SIGLIP_OLD_PREFIX = "encoder_vqkd.vision_model."
CLIP_HEAD_WIDTH = 64
SIGLIP_HEAD_WIDTH = 72
SIZE_FIELDS = ("codebook_size", "semantic_dim", "pixel_dim", "z_channels", "ch_mult", "encoder_ch",
               "encoder_res_blocks", "decoder_ch", "decoder_res_blocks", "tower_width", "tower_layers", "tower_mlp",
               "tower_patch", "tower_grid", "sem_depth", "semantic_out")


@dataclass
class LoadedTokenFlow:
    model: TokenFlow
    config: TokenFlowConfig
    container: str  # where the weights were: "ema", "model", "state_dict" or "bare"
    renamed_keys: int = 0
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, released value)}


def find_state_dict(obj: Any) -> tuple[Mapping[str, torch.Tensor], str]:
    if not isinstance(obj, Mapping):
        raise CheckpointMismatch(f"expected a dict checkpoint, got {type(obj).__name__}")
    for key in CONTAINERS:
        if isinstance(obj.get(key), Mapping):
            state, where = obj[key], key
            break
    else:
        state, where = obj, "bare"
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatch("no state_dict of tensors found (looked for ['ema'], ['model'], ['state_dict'] "
                                 "and a bare state_dict)")
    return state, where


def _count(state: Mapping, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def infer_config(state: Mapping[str, torch.Tensor], released: TokenFlowConfig) -> TokenFlowConfig:
    """The architecture the file's shapes describe, on top of ``released`` (teacher, scales, input side)."""
    try:
        s = lambda k: tuple(state[k].shape)  # noqa: E731
        enc_ch = s("encoder.conv_in.weight")[0]
        levels = _count(state, r"encoder\.conv_blocks\.(\d+)\.")
        ch_mult = tuple(s(f"encoder.conv_blocks.{i}.res.0.conv1.weight")[0] // enc_ch for i in range(levels))
        sizes = dict(
            codebook_size=s("quantize.embedding_vqkd.weight")[0], semantic_dim=s("quantize.embedding_vqkd.weight")[1],
            pixel_dim=s("quantize.embedding_vqgan.weight")[1], z_channels=s("quant_conv.weight")[1],
            ch_mult=ch_mult, encoder_ch=enc_ch, encoder_res_blocks=_count(state, r"encoder\.conv_blocks\.0\.res\.(\d+)\."),
            decoder_ch=s("decoder.norm_out.weight")[0],
            decoder_res_blocks=_count(state, r"decoder\.conv_blocks\.0\.res\.(\d+)\.") - 1,
            usage_buffer=s("quantize.codebook_used")[0] if "quantize.codebook_used" in state else 0,
            sem_depth=_count(state, r"decoder_vqkd\.blocks\.(\d+)\."),
            semantic_out=s("decode_task_layer.2.weight")[0])
        if released.teacher == "clipb":
            width, _, patch, _ = s("encoder_vqkd.conv1.weight")
            sizes.update(tower_width=width, tower_patch=patch, tower_heads=max(1, width // CLIP_HEAD_WIDTH),
                         tower_layers=_count(state, r"encoder_vqkd\.transformer\.resblocks\.(\d+)\."),
                         tower_grid=int(round((s("encoder_vqkd.positional_embedding")[0] - 1) ** 0.5)),
                         tower_mlp=4 * width)
        else:
            width, _, patch, _ = s("encoder_vqkd.embeddings.patch_embedding.weight")
            sizes.update(tower_width=width, tower_patch=patch, tower_heads=max(1, width // SIGLIP_HEAD_WIDTH),
                         tower_layers=_count(state, r"encoder_vqkd\.encoder\.layers\.(\d+)\."),
                         tower_grid=int(round(s("encoder_vqkd.embeddings.position_embedding.weight")[0] ** 0.5)),
                         tower_mlp=s("encoder_vqkd.encoder.layers.0.mlp.fc1.weight")[0])
        sizes["sem_mlp_ratio"] = s("decoder_vqkd.blocks.0.mlp.fc1.weight")[0] / sizes["tower_width"]
    except KeyError as e:
        raise CheckpointMismatch(f"not a TokenFlow {released.teacher} checkpoint: no {e.args[0]}") from None
    return dataclasses.replace(released, **sizes)


def _tower_layout(state: Mapping[str, torch.Tensor], model: TokenFlow) -> tuple[dict, int]:
    """The file's SigLIP tower keys in the layout of the installed transformers (with or without ``vision_model.``)."""
    nested = any(k.startswith(SIGLIP_OLD_PREFIX) for k in model.state_dict())
    if nested:  # transformers < 5: the released layout
        moved = {(SIGLIP_OLD_PREFIX + k[len("encoder_vqkd."):] if k.startswith("encoder_vqkd.")
                  and not k.startswith(SIGLIP_OLD_PREFIX) else k): v for k, v in state.items()}
    else:
        moved = {("encoder_vqkd." + k[len(SIGLIP_OLD_PREFIX):] if k.startswith(SIGLIP_OLD_PREFIX) else k): v
                 for k, v in state.items()}
    return moved, sum(a != b for a, b in zip(state, moved))


def build_model(obj: Any, released: TokenFlowConfig) -> LoadedTokenFlow:
    state, where = find_state_dict(obj)
    renamed = 0
    if released.teacher == "siglip":  # shapes are read in transformers >= 5 names
        state = {("encoder_vqkd." + k[len(SIGLIP_OLD_PREFIX):] if k.startswith(SIGLIP_OLD_PREFIX) else k): v
                 for k, v in state.items()}
    cfg = infer_config(state, released)
    with torch.device("meta"):
        model = TokenFlow(cfg)
    if cfg.teacher == "siglip":
        original = find_state_dict(obj)[0]
        state, renamed = _tower_layout(original, model)
    load_exact(model, state)
    for module in model.modules():  # transformers' non-persistent position ids were made on the meta device
        ids = getattr(module, "position_ids", None)
        if isinstance(ids, torch.Tensor) and ids.is_meta:
            module.position_ids = torch.arange(ids.shape[-1]).expand((1, -1))
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointMismatch(f"tensors not materialised by the file: {', '.join(left[:4])}")
    deviations = {k: (getattr(cfg, k), getattr(released, k)) for k in SIZE_FIELDS
                  if getattr(cfg, k) != getattr(released, k)}
    return LoadedTokenFlow(model=model, config=cfg, container=where, renamed_keys=renamed,
                           size_deviations=deviations)

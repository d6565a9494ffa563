"""From a UniTok training checkpoint to a ``UniTok`` model.

Upstream's ``inference.py`` reads ``ckpt["args"]`` (its ``Args`` flags) and loads ``ckpt["trainer"]["unitok"]``
strictly into ``UniTok(args)``. That state_dict holds the whole CLIP-style model; tokbench keeps the
reconstruction half and accounts for every other key:

* CLIP-only keys (text tower ``text_encoder.*``, ``fc_norm``, ``projection``, ``logit_scale``) must have exactly
  the names and shapes upstream's constructor gives them for the file's flags (``clip_only_shapes``); then they
  are dropped.
* ``quantizer.codebooks.<i>.vocab_usage`` (a usage average the training loop keeps) is dropped by name.
* Everything else must match ``UniTok(config)`` key for key and shape for shape (``load_exact``).

The sizes are read from the tensors (widths, depths, codebooks); the transformer's head count is not in any
shape and is width / 64, the head size of every ViTamin preset. A file that differs from the released size
builds as it says and is reported as a deviation by the caller.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from tokbench.models.checkpoint_keys import CheckpointMismatch, load_exact
from tokbench.models.unitok.model import UniTok, UniTokConfig

HEAD_DIM = 64  # ViTamin transformer heads (vitamin_small 384/6, base 768/12, large 1024/16)

# upstream's Args defaults for the flags that size the CLIP half (utils/config.py)
CLIP_DEFAULTS = {"embed_dim": 768, "text_width": 768, "text_heads": 12, "text_layers": 12,
                 "text_vocab_size": 49408, "text_context_length": 77}

TRAINING_ONLY = re.compile(r"quantizer\.codebooks\.\d+\.vocab_usage")

# the upstream flags that must hold for this implementation (others would build another model)
REQUIRED_FLAGS = {"quant_proj": "attn", "num_query": 0}


@dataclass
class LoadedUniTok:
    model: UniTok
    config: UniTokConfig
    nesting: str  # where the state_dict was found, e.g. "['trainer']['unitok']"
    dropped_clip_keys: int  # CLIP-only tensors checked and not kept
    dropped_training_keys: list
    flags: dict = field(default_factory=dict)  # the upstream flags the file carries that matter here
    size_deviations: dict = field(default_factory=dict)  # {field: (file value, released value)}


def find_state_dict(obj: Any) -> tuple[Mapping[str, torch.Tensor], dict, str]:
    """(state_dict, args, nesting) of upstream's ``{'args', 'trainer': {'unitok': ...}}``; a bare state_dict
    (args absent) is accepted too."""
    if not isinstance(obj, Mapping):
        raise CheckpointMismatch(f"expected a dict checkpoint, got {type(obj).__name__}")
    args = obj.get("args") if isinstance(obj.get("args"), Mapping) else {}
    trainer = obj.get("trainer")
    if isinstance(trainer, Mapping) and isinstance(trainer.get("unitok"), Mapping):
        state, nesting = trainer["unitok"], "['trainer']['unitok']"
    elif "trainer" in obj:
        raise CheckpointMismatch("the checkpoint's ['trainer'] has no 'unitok' state_dict")
    else:
        state, nesting = obj, "bare state_dict"
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatch(f"no state_dict of tensors at {nesting} (upstream saves "
                                 f"{{'args': ..., 'trainer': {{'unitok': state_dict}}}})")
    return state, dict(args), nesting


def clip_only_shapes(width: int, flags: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the CLIP half of upstream's ``UniTok(args)``: open_clip's text transformer
    (``_build_text_tower``, MLP ratio 4, projection without bias), ``fc_norm``, ``projection``, ``logit_scale``."""
    f = {k: int(flags.get(k, v)) for k, v in CLIP_DEFAULTS.items()}
    t, e = f["text_width"], f["embed_dim"]
    shapes = {"text_encoder.text_projection": (t, e),
              "text_encoder.positional_embedding": (f["text_context_length"], t),
              "text_encoder.token_embedding.weight": (f["text_vocab_size"], t)}
    for i in range(f["text_layers"]):
        p = f"text_encoder.transformer.resblocks.{i}."
        shapes.update({p + "ln_1.weight": (t,), p + "ln_1.bias": (t,),
                       p + "attn.in_proj_weight": (3 * t, t), p + "attn.in_proj_bias": (3 * t,),
                       p + "attn.out_proj.weight": (t, t), p + "attn.out_proj.bias": (t,),
                       p + "ln_2.weight": (t,), p + "ln_2.bias": (t,),
                       p + "mlp.c_fc.weight": (4 * t, t), p + "mlp.c_fc.bias": (4 * t,),
                       p + "mlp.c_proj.weight": (t, 4 * t), p + "mlp.c_proj.bias": (t,)})
    shapes.update({"text_encoder.ln_final.weight": (t,), "text_encoder.ln_final.bias": (t,),
                   "fc_norm.weight": (width,), "fc_norm.bias": (width,), "projection.weight": (e, width),
                   "projection.bias": (e,), "logit_scale": ()})
    return shapes


def _count(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def infer_config(state: Mapping[str, torch.Tensor]) -> UniTokConfig:
    """The sizes the tensors say (KeyError when a key that sizes the model is absent)."""
    bb = "encoder.patch_embed.backbone."
    stage = re.escape(bb) + r"stages\.{}\.(\d+)\."
    width = state["encoder.pos_embed"].shape[-1]
    books = _count(state, r"quantizer\.codebooks\.(\d+)\.codebook\.weight$")
    size, dim = state["quantizer.codebooks.0.codebook.weight"].shape
    return UniTokConfig(
        conv_widths=(state[bb + "stem.conv1.weight"].shape[0], state[bb + "pool.norm.weight"].shape[0]),
        conv_depths=(_count(state, stage.format(0)), _count(state, stage.format(1))),
        width=width, depth=_count(state, r"encoder\.blocks\.(\d+)\."), heads=max(1, width // HEAD_DIM),
        mlp_ratio=state["encoder.blocks.0.mlp.w0.weight"].shape[0] / width,
        decoder_conv_depths=(_count(state, r"decoder\.up_conv2\.(\d+)\."),
                             _count(state, r"decoder\.up_conv3\.(\d+)\.")),
        vocab_width=books * dim, num_codebooks=books, codebook_size=size)


def build_unitok(obj: Any, released: UniTokConfig = UniTokConfig()) -> LoadedUniTok:
    """A ``UniTok`` from an upstream checkpoint, sized as the file says; every key checked (CheckpointMismatch)."""
    state, args, nesting = find_state_dict(obj)
    for flag, want in REQUIRED_FLAGS.items():
        if flag in args and args[flag] != want:
            raise CheckpointMismatch(f"the file was trained with {flag}={args[flag]!r}; tokbench implements "
                                     f"upstream's released {flag}={want!r} only")
    try:
        cfg = infer_config(state)
        cfg.check()
    except (KeyError, IndexError, ValueError) as e:
        raise CheckpointMismatch(f"not a UniTok state_dict ({type(e).__name__}: {e})") from None
    if "decoder.blocks.0.norm1.weight" in state and _count(state, r"decoder\.blocks\.(\d+)\.") != cfg.depth:
        raise CheckpointMismatch("encoder and decoder have different transformer depths")
    vocab = args.get("vocab_size")
    if vocab is not None and int(vocab) != cfg.codebook_size * cfg.num_codebooks:
        raise CheckpointMismatch(f"args say vocab_size={vocab}, the codebooks hold "
                                 f"{cfg.num_codebooks} x {cfg.codebook_size}")

    training = sorted(k for k in state if TRAINING_ONLY.fullmatch(k))
    clip_expected = clip_only_shapes(cfg.width, args)
    clip_found = {k: tuple(v.shape) for k, v in state.items() if k in clip_expected}
    missing_clip = sorted(set(clip_expected) - set(clip_found))
    wrong_clip = sorted(k for k, s in clip_found.items() if s != clip_expected[k])
    if missing_clip or wrong_clip:
        parts = ([f"{len(missing_clip)} CLIP-half key(s) missing ({', '.join(missing_clip[:3])})"] if missing_clip
                 else []) + [f"{k} {clip_found[k]} vs {clip_expected[k]}" for k in wrong_clip[:3]]
        raise CheckpointMismatch("the CLIP half is not upstream's layout: " + "; ".join(parts))
    rest = {k: v for k, v in state.items() if k not in clip_expected and k not in training}
    with torch.device("meta"):
        model = UniTok(cfg)
    load_exact(model, rest)
    deviations = {k: (v, released.to_dict()[k]) for k, v in cfg.to_dict().items() if v != released.to_dict()[k]}
    flags = {k: args[k] for k in ("model", "img_size", "vocab_size", "num_codebooks", "vocab_width", "quant_proj")
             if k in args}
    return LoadedUniTok(model=model, config=cfg, nesting=nesting, dropped_clip_keys=len(clip_expected),
                        dropped_training_keys=training, flags=flags, size_deviations=deviations)


"""VidTok (microsoft/VidTok) checkpoints loaded into diffusers' own ``AutoencoderVidTok``.

The released files are PyTorch Lightning checkpoints (``{"state_dict": ...}``) of upstream's
``AutoencodingEngine``. Its ``encoder.*`` / ``decoder.*`` modules use the same names and shapes as diffusers'
class (upstream's VidTok authors wrote the diffusers port), so the conversion is a strict, checked identity on
those prefixes; ``loss.*`` (discriminator, LPIPS, logvar) and ``model_ema.*`` are training state upstream's own
``init_from_ckpt`` also leaves unused. Anything else, a missing key or a wrong shape, is refused in one line.

Each release's architecture is read from its upstream config (``configs/<name>.yaml``): channel multipliers,
which levels downsample in space and time, latent channels, FSQ levels (always 8 per channel: the codebook is
8**z_channels), causal or not.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Optional

import torch
from torch import nn

from tokbench.models.checkpoint_keys import CheckpointMismatch, load_exact, unwrap_state_dict

HUB_REPO = "microsoft/VidTok"
TRAINING_PREFIXES = ("loss.", "model_ema.")  # training-only state in the Lightning file
MODEL_PREFIXES = ("encoder.", "decoder.", "regularization.")


@dataclass(frozen=True)
class Release:
    """One released checkpoint and the architecture its upstream config describes."""

    file: str  # upstream checkpoint / config stem, e.g. "vidtok_kl_causal_488_4chn"
    z_channels: int
    regularizer: str  # "kl" | "fsq"
    causal: bool = True
    v1_1: bool = False  # in checkpoints/vidtok_v1_1/: fine-tuned for long causal videos
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    spatial_ds: Optional[tuple[int, ...]] = None  # None: every level but the last
    tempo_ds: Optional[tuple[int, ...]] = None  # None: the two levels before the last

    @property
    def name(self) -> str:
        """tokbench entry name: ``vidtok-kl-causal-488-4chn``, ``vidtok-fsq-causal-488-32768-v1.1``."""
        stem = self.file.replace("_v1_1", "")
        return stem.replace("_", "-") + ("-v1.1" if self.v1_1 else "")

    @property
    def runs_as_upstream(self) -> bool:
        """diffusers' class implements v1.1's causal padding and the non-causal model; upstream's v1.0 causal
        code zero-pads its causal convolutions and temporal down-sampling and up-samples time with nearest,
        so v1.0 causal weights would run a different model there."""
        return self.v1_1 or not self.causal

    @property
    def hub_filename(self) -> str:
        return f"checkpoints/{'vidtok_v1_1/' if self.v1_1 else ''}{self.file}.ckpt"

    @property
    def codebook_size(self) -> Optional[int]:
        return 8 ** self.z_channels if self.regularizer == "fsq" else None

    @property
    def levels(self) -> Optional[tuple[int, ...]]:
        return (8,) * self.z_channels if self.regularizer == "fsq" else None

    @property
    def spatial_factor(self) -> int:
        n = len(self.ch_mult) - 1 if self.spatial_ds is None else len(self.spatial_ds)
        return 2 ** n

    @property
    def temporal_factor(self) -> int:
        return 2 ** (2 if self.tempo_ds is None else len(self.tempo_ds))

    def diffusers_config(self, ch: int = 128) -> dict:
        """``AutoencoderVidTok(**config)`` of this release (``ch`` smaller only for tiny test models)."""
        n = len(self.ch_mult)
        cfg = dict(in_channels=3, out_channels=3, ch=ch, ch_mult=list(self.ch_mult), z_channels=self.z_channels,
                   double_z=self.regularizer == "kl", num_res_blocks=2, regularizer=self.regularizer,
                   is_causal=self.causal)
        if self.spatial_ds is not None:  # the decoder mirrors the encoder's levels
            cfg["spatial_ds"] = list(self.spatial_ds)
            cfg["spatial_us"] = [n - 1 - i for i in reversed(self.spatial_ds)]
        if self.tempo_ds is not None:
            cfg["tempo_ds"] = list(self.tempo_ds)
            cfg["tempo_us"] = [n - 1 - i for i in reversed(self.tempo_ds)]
        if self.regularizer == "fsq":
            cfg["codebook_size"] = self.codebook_size
        return cfg


def _releases() -> list[Release]:
    r = []
    for v1_1 in (False, True):
        sfx = "_v1_1" if v1_1 else ""
        kl = ([("488_4chn", 4, {}), ("488_8chn", 8, {}), ("488_16chn", 16, {}), ("288_8chn", 8, {"tempo_ds": (1,)}),
               ("444_4chn", 4, {"spatial_ds": (1, 2)}), ("41616_4chn", 4, {"ch_mult": (1, 2, 4, 4, 4)})]
              if not v1_1 else
              [("488_4chn", 4, {}), ("488_16chn", 16, {}), ("288_8chn", 8, {"tempo_ds": (1,)}),
               ("41616_16chn", 16, {"ch_mult": (1, 2, 4, 4, 4)})])
        fsq = ([("488_262144", 6, {}), ("488_32768", 5, {}), ("488_4096", 4, {}),
                ("41616_262144", 6, {"ch_mult": (1, 2, 4, 4, 4)})]
               if not v1_1 else
               [("488_32768", 5, {}), ("888_32768", 5, {"tempo_ds": (0, 1, 2)}),
                ("41616_262144", 6, {"ch_mult": (1, 2, 4, 4, 4)})])
        for reg, rows in (("kl", kl), ("fsq", fsq)):
            for tag, z, kw in rows:
                r.append(Release(f"vidtok_{reg}_causal_{tag}{sfx}", z, reg, v1_1=v1_1, **kw))
    for reg, tag, z, kw in (("kl", "488_4chn", 4, {}), ("kl", "488_16chn", 16, {}),
                            ("kl", "41616_4chn", 4, {"ch_mult": (1, 2, 4, 4, 4)}),
                            ("kl", "41616_16chn", 16, {"ch_mult": (1, 2, 4, 4, 4)}),
                            ("fsq", "488_262144", 6, {}), ("fsq", "41616_262144", 6, {"ch_mult": (1, 2, 4, 4, 4)})):
        r.append(Release(f"vidtok_{reg}_noncausal_{tag}", z, reg, causal=False, **kw))
    return r


RELEASES: dict[str, Release] = {r.name: r for r in _releases()}


def convert_state_dict(obj, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Upstream Lightning checkpoint (or its bare state_dict) -> diffusers ``AutoencoderVidTok`` state_dict.

    Keys keep their names (upstream and diffusers share the module tree); training state is dropped; any other
    key is refused, naming the key and ``where``.
    """
    state = unwrap_state_dict(obj, ("state_dict",))
    kept, unknown = {}, []
    for key, value in state.items():
        if key.startswith(MODEL_PREFIXES):
            kept[key] = value
        elif not key.startswith(TRAINING_PREFIXES):
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:4]) + (f" and {len(unknown) - 4} more" if len(unknown) > 4 else "")
        raise CheckpointMismatch(f"{where}: {len(unknown)} keys are not VidTok encoder/decoder/regularizer "
                                 f"weights nor training state: {shown}")
    return kept


@contextlib.contextmanager
def parameters_on_meta():
    """Build modules with meta parameters (no allocation, no random init) but real buffers: diffusers'
    FSQ regularizer computes its implicit codebook while it is built, which the meta device cannot do."""
    register = nn.Module.register_parameter

    def on_meta(self, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(self, name, param)

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def empty_model(config: Mapping):
    """``AutoencoderVidTok(**config)`` with meta parameters (to be filled by ``load_converted``)."""
    from diffusers import AutoencoderVidTok

    with parameters_on_meta():
        return AutoencoderVidTok(**config)


def base_width(state: Mapping[str, torch.Tensor]) -> Optional[int]:
    """The checkpoint's base channel count ``ch`` (128 in every release), from the first convolution."""
    for key in ("encoder.conv_in.conv.weight", "encoder.conv_in.weight"):  # causal / non-causal
        if key in state and state[key].ndim == 5:
            return int(state[key].shape[0])
    return None


def load_converted(config: Mapping, obj, where: str = "checkpoint"):
    """diffusers ``AutoencoderVidTok(**config)`` holding exactly the checkpoint's weights (float32, eval)."""
    state = convert_state_dict(obj, where)
    return load_exact(empty_model(config), state,
                      mismatch=f"{where} does not fit diffusers.AutoencoderVidTok({_short(config)})")


def _short(config: Mapping) -> str:
    keys = ("ch", "ch_mult", "z_channels", "regularizer", "is_causal", "spatial_ds", "tempo_ds")
    return ", ".join(f"{k}={config[k]}" for k in keys if k in config)


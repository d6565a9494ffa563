"""The latent-diffusion ("VQGAN-KL") convolutional encoder and decoder, in the module layout of the LDM
``ldm.modules.diffusionmodules.model`` checkpoints (``encoder.down.{i}.block.{j}...``, ``decoder.up.{i}...``).

VA-VAE (LightningDiT) and VAR's multi-scale VQVAE both use this stack; they differ in two details that change
the last bits of the output, so both are options here rather than approximations:

* ``fused_qkv``: VAR's attention projects q, k, v with one 1x1 conv ``qkv`` (output channels [q | k | v]);
  LDM has three convs ``q``, ``k``, ``v``.
* ``swish``: VAR calls ``F.silu``; LDM computes ``x * sigmoid(x)``.

Attention (one head over all channels, GroupNorm first) sits after every resnet block of the levels in
``attn_levels`` (encoder and decoder alike) and in both mid blocks.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

SWISH = ("silu", "x_sigmoid")


@dataclass(frozen=True)
class ConvStackConfig:
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2  # per encoder level; decoder levels have one more
    in_channels: int = 3
    z_channels: int = 32
    double_z: bool = True  # encoder outputs 2 x z_channels (mean | logvar)
    attn_levels: tuple[int, ...] = (4,)  # level indices (0 = full resolution) with attention blocks
    fused_qkv: bool = False
    swish: str = "x_sigmoid"

    def __post_init__(self):
        if self.swish not in SWISH:
            raise ValueError(f"swish must be one of {SWISH}, not {self.swish!r}")

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


def _swish_x_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, act):
        super().__init__()
        self.act = act
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.act(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the h*w positions, scores scaled by 1/sqrt(C)."""

    def __init__(self, channels: int, fused_qkv: bool):
        super().__init__()
        self.fused = fused_qkv
        self.norm = _norm(channels)
        if fused_qkv:
            self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        else:
            self.q = nn.Conv2d(channels, channels, 1)
            self.k = nn.Conv2d(channels, channels, 1)
            self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        if self.fused:  # VAR's order of operations, contiguous copies included
            q, k, v = self.qkv(n).reshape(b, 3, c, h, w).unbind(1)
            q = q.reshape(b, c, h * w).contiguous().permute(0, 2, 1).contiguous()
            k = k.reshape(b, c, h * w).contiguous()
            v = v.reshape(b, c, h * w).contiguous()
            attn = torch.softmax(torch.bmm(q, k).mul_(c ** -0.5), dim=2).permute(0, 2, 1).contiguous()
        else:  # LDM's: strided views straight into bmm
            q, k, v = self.q(n), self.k(n), self.v(n)
            q = q.reshape(b, c, h * w).permute(0, 2, 1)
            attn = torch.softmax(torch.bmm(q, k.reshape(b, c, h * w)) * (c ** -0.5), dim=2)
            attn = attn.permute(0, 2, 1)
            v = v.reshape(b, c, h * w)
        out = torch.bmm(v, attn).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then a stride-2 3x3 conv without padding: n -> floor(n / 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _activation(cfg: ConvStackConfig):
    return F.silu if cfg.swish == "silu" else _swish_x_sigmoid


def _mid(channels: int, cfg: ConvStackConfig, act) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels, act)
    mid.attn_1 = AttnBlock(channels, cfg.fused_qkv)
    mid.block_2 = ResnetBlock(channels, channels, act)
    return mid


def _run_mid(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(h)))


class Encoder(nn.Module):
    def __init__(self, cfg: ConvStackConfig):
        super().__init__()
        self.act = act = _activation(cfg)
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            cout = cfg.ch * mult
            stage = nn.Module()
            stage.block = nn.ModuleList()
            stage.attn = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                stage.block.append(ResnetBlock(cin, cout, act))
                cin = cout
                if level in cfg.attn_levels:
                    stage.attn.append(AttnBlock(cout, cfg.fused_qkv))
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(cout)
            self.down.append(stage)
        self.mid = _mid(cin, cfg, act)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.z_channels * (2 if cfg.double_z else 1), 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            for j, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[j](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = _run_mid(self.mid, h)
        return self.conv_out(self.act(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: ConvStackConfig):
        super().__init__()
        self.act = act = _activation(cfg)
        cin = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid = _mid(cin, cfg, act)
        stages = []
        for level in reversed(range(len(cfg.ch_mult))):  # built lowest resolution first, stored by level
            cout = cfg.ch * cfg.ch_mult[level]
            stage = nn.Module()
            stage.block = nn.ModuleList()
            stage.attn = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(ResnetBlock(cin, cout, act))
                cin = cout
                if level in cfg.attn_levels:
                    stage.attn.append(AttnBlock(cout, cfg.fused_qkv))
            if level != 0:
                stage.upsample = Upsample(cout)
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _run_mid(self.mid, self.conv_in(z))
        for stage in reversed(self.up):
            for j, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[j](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(self.act(self.norm_out(h)))


def infer_conv_stack(state: Mapping[str, torch.Tensor], **fixed) -> ConvStackConfig:
    """The encoder/decoder sizes a state_dict holds (channel width, levels, blocks, attention levels).

    ``fixed`` supplies what the tensors cannot tell (``fused_qkv``, ``swish``, ``double_z``...). Raises
    ValueError naming the first key it needed and did not find.
    """
    def need(key: str) -> torch.Tensor:
        if key not in state:
            raise ValueError(f"no {key} in the state_dict")
        return state[key]

    ch = need("encoder.conv_in.weight").shape[0]
    in_channels = need("encoder.conv_in.weight").shape[1]
    levels = sorted({int(m.group(1)) for k in state for m in [re.match(r"encoder\.down\.(\d+)\.", k)] if m})
    if not levels or levels != list(range(len(levels))):
        raise ValueError("no contiguous encoder.down.{i} levels in the state_dict")
    ch_mult = tuple(need(f"encoder.down.{i}.block.0.conv1.weight").shape[0] // ch for i in levels)
    blocks = {int(m.group(1)) for k in state for m in [re.match(r"encoder\.down\.0\.block\.(\d+)\.", k)] if m}
    attn = tuple(i for i in levels if f"encoder.down.{i}.attn.0.norm.weight" in state)
    out = need("encoder.conv_out.weight").shape[0]
    double_z = fixed.pop("double_z", True)
    return ConvStackConfig(ch=ch, ch_mult=ch_mult, num_res_blocks=len(blocks), in_channels=in_channels,
                           z_channels=out // 2 if double_z else out, double_z=double_z, attn_levels=attn, **fixed)

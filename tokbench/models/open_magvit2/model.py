"""Open-MAGVIT2 image tokenizer (TencentARC SEED-Voken, ``improved_model.py`` + LFQ), written from
shared/reference/tokenizer-zoo/open-magvit2.md; module and parameter names follow upstream so its checkpoints
load with strict key matching.

Notable upstream details kept on purpose: convolutions inside residual blocks and the encoder's ``conv_in`` have
no bias; upsampling is a 3x3 conv to 4C channels followed by depth-to-space in DCR order (not pixel_shuffle's
CRD order); every decoder level starts with an adaptive GroupNorm whose scale and shift come from the
*decoder input* latent (unbiased variance over the h*w positions, so a 1x1 latent gives NaN, as upstream).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.lfq import lfq_codes, lfq_quantize


@dataclass(frozen=True)
class OpenMagvit2Config:
    """Architecture (upstream ``ddconfig``). Defaults: the released f16 ImageNet / pretrain tokenizers."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 4
    z_channels: int = 18  # = bits per token; codebook 2**z_channels

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def codebook_size(self) -> int:
        return 2 ** self.z_channels

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ch_mult"] = list(self.ch_mult)
        return d

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "OpenMagvit2Config":
        """Read the architecture off the (non-EMA) encoder tensors; KeyError when they are absent."""
        ch = state["encoder.conv_in.weight"].shape[0]
        levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
        blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.block."))
        mult = tuple(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in range(levels))
        return cls(ch=ch, ch_mult=mult, num_res_blocks=blocks, z_channels=state["encoder.conv_out.weight"].shape[0])


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)  # upstream's spelling (not F.silu), kept for bitwise parity


def group_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=affine)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm2 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        return h + (x if self.nin_shortcut is None else self.nin_shortcut(x))


def depth_to_space(x: torch.Tensor, block: int = 2) -> torch.Tensor:
    """DCR order: channel index = (row offset, column offset, c), offsets outermost."""
    b, c, h, w = x.shape
    c_out = c // (block * block)
    x = x.reshape(b, block, block, c_out, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c_out, h * block, w * block)


class Upsampler(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(self.conv1(x))


class AdaptiveGroupNorm(nn.Module):
    def __init__(self, z_channels: int, channels: int):
        super().__init__()
        self.gn = group_norm(channels, affine=False)
        self.gamma = nn.Linear(z_channels, channels)
        self.beta = nn.Linear(z_channels, channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        flat = style.flatten(2)
        scale = self.gamma((flat.var(dim=-1) + 1e-6).sqrt())[..., None, None]
        bias = self.beta(flat.mean(dim=-1))[..., None, None]
        return scale * self.gn(x) + bias


class Level(nn.Module):
    """One resolution level: ``block`` plus an optional ``downsample`` / ``upsample`` (upstream's bare nn.Module)."""


class Encoder(nn.Module):
    def __init__(self, cfg: OpenMagvit2Config):
        super().__init__()
        self.conv_in = nn.Conv2d(3, cfg.ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        cin = cfg.ch
        for i, mult in enumerate(cfg.ch_mult):
            level = Level()
            level.block = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                level.block.append(ResBlock(cin, cfg.ch * mult))
                cin = cfg.ch * mult
            if i < len(cfg.ch_mult) - 1:
                level.downsample = nn.Conv2d(cin, cin, 3, stride=2, padding=1)
            self.down.append(level)
        self.mid_block = nn.ModuleList(ResBlock(cin, cin) for _ in range(cfg.num_res_blocks))
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                x = block(x)
            if hasattr(level, "downsample"):
                x = level.downsample(x)
        for block in self.mid_block:
            x = block(x)
        return self.conv_out(swish(self.norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: OpenMagvit2Config):
        super().__init__()
        n = len(cfg.ch_mult)
        cin = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid_block = nn.ModuleList(ResBlock(cin, cin) for _ in range(cfg.num_res_blocks))
        up, adaptive = [None] * n, [None] * n  # indexed by level; run deepest first
        for i in reversed(range(n)):
            adaptive[i] = AdaptiveGroupNorm(cfg.z_channels, cin)
            level = Level()
            level.block = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                level.block.append(ResBlock(cin, cfg.ch * cfg.ch_mult[i]))
                cin = cfg.ch * cfg.ch_mult[i]
            if i > 0:
                level.upsample = Upsampler(cin)
            up[i] = level
        self.up = nn.ModuleList(up)
        self.adaptive = nn.ModuleList(adaptive)
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        style = z
        x = self.conv_in(z)
        for block in self.mid_block:
            x = block(x)
        for i in reversed(range(len(self.up))):
            x = self.adaptive[i](x, style)
            for block in self.up[i].block:
                x = block(x)
            if i > 0:
                x = self.up[i].upsample(x)
        return self.conv_out(swish(self.norm_out(x)))


class OpenMagvit2(nn.Module):
    """Encoder + LFQ + decoder. Inputs (B, 3, H, W) in [-1, 1], H and W multiples of the spatial factor;
    outputs unclamped (upstream's evaluation clamps to [-1, 1])."""

    def __init__(self, config: OpenMagvit2Config | None = None):
        super().__init__()
        self.config = config or OpenMagvit2Config()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(straight-through latent (B, C, h, w), indices (B, h, w)); upstream decodes the former."""
        return lfq_quantize(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        # upstream's quantiser hands the decoder a channels-last view (einops 'b h w c -> b c h w'); CPU kernels
        # pick their algorithm by layout, so matching it keeps the output bitwise equal (1e-5 apart otherwise)
        return self.decoder(z.contiguous(memory_format=torch.channels_last))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(lfq_codes(indices, self.config.z_channels, self.decoder.conv_in.weight.dtype))

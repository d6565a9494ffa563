"""MaskBit's VQGAN+ tokenizer with lookup-free bit tokens (markweberdev/maskbit ``ConvVQModel`` with
``ConvEncoder`` / ``ConvDecoder``, ``legacy=False``), written from shared/reference/tokenizer-zoo/maskbit.md;
names follow upstream so the released state_dicts load with strict key matching.

It resembles Open-MAGVIT2's network but differs where it matters numerically, so no block is shared:
TensorFlow SAME padding (a stride-2 conv on an even side pads only bottom/right), a residual block whose
shortcut, when the width changes, is a 1x1 conv of the block's *own output* (``h + conv1x1(h)``), nearest x2
upsampling followed by a 3x3 conv, and no adaptive norms. The quantiser is the same LFQ (tokbench.models.lfq).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.lfq import bit_weights, lfq_codes, lfq_quantize


@dataclass(frozen=True)
class MaskBitConfig:
    """Architecture (upstream ``model.vq_model``). Defaults: the released tokenizers, ``token_size`` bits."""

    token_size: int = 12
    hidden_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def codebook_size(self) -> int:
        return 2 ** self.token_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        return d

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "MaskBitConfig":
        hidden = state["encoder.conv_in.weight"].shape[0]
        stages = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
        blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.res_blocks."))
        mult = tuple(state[f"encoder.down.{i}.res_blocks.0.conv1.weight"].shape[0] // hidden for i in range(stages))
        return cls(token_size=state["encoder.conv_out.weight"].shape[0], hidden_channels=hidden, channel_mult=mult,
                   num_res_blocks=blocks)


class Conv2dSame(nn.Conv2d):
    """Conv with TensorFlow 'SAME' padding, applied explicitly (extra row/column at the bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return super().forward(x)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = Conv2dSame(cin, cout, 3, bias=False)
        self.norm2 = group_norm(cout)
        self.conv2 = Conv2dSame(cout, cout, 3, bias=False)
        self.nin_shortcut = Conv2dSame(cout, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.nin_shortcut is None else self.nin_shortcut(h))  # upstream: shortcut of h


class Stage(nn.Module):
    """Residual blocks, then (encoder) a stride-2 ``down_conv`` or (decoder) nearest x2 + ``upsample_conv``."""

    def __init__(self, cin: int, cout: int, blocks: int, sample: str | None = None):
        super().__init__()
        self.res_blocks = nn.ModuleList(ResidualBlock(cin if i == 0 else cout, cout) for i in range(blocks))
        self.sample = sample
        if sample == "down":
            self.down_conv = Conv2dSame(cout, cout, 3, stride=2)
        elif sample == "up":
            self.upsample_conv = Conv2dSame(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        if self.sample == "down":
            x = self.down_conv(x)
        elif self.sample == "up":
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: MaskBitConfig):
        super().__init__()
        hid, n = cfg.hidden_channels, len(cfg.channel_mult)
        mult = (1,) + tuple(cfg.channel_mult)
        self.conv_in = Conv2dSame(3, hid, 3, bias=False)
        self.down = nn.ModuleList(Stage(hid * mult[i], hid * mult[i + 1], cfg.num_res_blocks,
                                        "down" if i < n - 1 else None) for i in range(n))
        cout = hid * mult[-1]
        self.mid = Stage(cout, cout, cfg.num_res_blocks)
        self.norm_out = group_norm(cout)
        self.conv_out = Conv2dSame(cout, cfg.token_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for stage in self.down:
            x = stage(x)
        x = self.mid(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: MaskBitConfig):
        super().__init__()
        hid, n = cfg.hidden_channels, len(cfg.channel_mult)
        mult = tuple(cfg.channel_mult) + (cfg.channel_mult[-1],)
        cin = hid * cfg.channel_mult[-1]
        self.conv_in = Conv2dSame(cfg.token_size, cin, 3)
        self.mid = Stage(cin, cin, cfg.num_res_blocks)
        # up.0 is the deepest level and runs first
        self.up = nn.ModuleList(Stage(hid * mult[i + 1], hid * mult[i], cfg.num_res_blocks, "up" if i > 0 else None)
                                for i in reversed(range(n)))
        self.norm_out = group_norm(hid * mult[0])
        self.conv_out = Conv2dSame(hid * mult[0], 3, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for stage in self.up:
            x = stage(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class BitQuantizer(nn.Module):
    """LFQ with upstream's two persistent buffers: ``bits_to_indices`` (int32 powers of two, used for the
    indices) and ``codebook`` (all 2**bits code vectors, unused at inference but part of the state_dict)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.register_buffer("bits_to_indices", bit_weights(bits).to(torch.int32))
        self.register_buffer("codebook", lfq_codes(torch.arange(2 ** bits).view(1, -1, 1), bits)[0, :, :, 0].T
                             .contiguous())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return lfq_quantize(z, self.bits_to_indices)


class MaskBitTokenizer(nn.Module):
    """Encoder + bit quantiser + decoder. Inputs (B, 3, H, W) in [0, 1], H and W multiples of 16; outputs
    unclamped (upstream's evaluation clamps to [0, 1])."""

    def __init__(self, config: MaskBitConfig | None = None):
        super().__init__()
        self.config = config or MaskBitConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quantize = BitQuantizer(self.config.token_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(straight-through latent (B, bits, h, w), bit-token indices (B, h, w)); upstream decodes the former."""
        return self.quantize(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decoder(lfq_codes(indices, self.config.token_size, self.decoder.conv_in.weight.dtype))

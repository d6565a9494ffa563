"""The convolutional building blocks shared by taming-transformers' VQGAN and the models derived from it
(LlamaGen's VQ tokenizers, Chameleon's image tokenizer): the same arithmetic in all three upstreams.

Written from shared/reference/tokenizer-zoo/{taming-vqgan,llamagen,chameleon}.md. Parameter names are the
upstream ones (``norm1``, ``conv1``, ``nin_shortcut``, ``q``/``k``/``v``/``proj_out``), so a checkpoint's keys
below the block level load unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORM_GROUPS = 32
NORM_EPS = 1e-6


def swish(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` written out (not ``F.silu``), as upstream does, so the rounding is the same."""
    return x * torch.sigmoid(x)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(NORM_GROUPS, channels, eps=NORM_EPS, affine=True)


class ResnetBlock(nn.Module):
    """norm -> swish -> 3x3 conv, twice, plus a 1x1 shortcut when the width changes (no timestep input;
    dropout is 0 in every released model and inactive in eval)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all h*w positions with 1x1-conv projections and a residual add.

    Computed with two ``bmm`` calls and an explicit softmax in upstream's order (logits scaled after the
    product), not SDPA: SDPA rounds differently and the point here is upstream's numbers.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        logits = torch.bmm(q.reshape(b, c, hh * ww).permute(0, 2, 1), k.reshape(b, c, hh * ww))
        weights = F.softmax(logits * (int(c) ** (-0.5)), dim=2)
        out = torch.bmm(v.reshape(b, c, hh * ww), weights.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Zero pad right and bottom by one, then a stride-2 3x3 conv: a side n becomes floor(n / 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

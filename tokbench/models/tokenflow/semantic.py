"""TokenFlow's semantic branch: the CLIP ViT-B/16 visual tower (clipb teacher), SigLIP's tower (transformers'
``SiglipVisionModel``) and the small BEiT-style ViT that decodes semantic codes back to teacher features.

Written from shared/reference/tokenizer-zoo/tokenflow.md after reading upstream's ``clip/model.py`` and
``vqkd_model.py``; parameter names follow the released checkpoint so its keys load unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def interpolate_grid(table: torch.Tensor, grid: int) -> torch.Tensor:
    """A (1 + n*n, D) position table (class position first) resized to ``grid`` x ``grid`` positions.

    DINO's recipe, as upstream: bicubic with the *scale factor* (grid + 0.1) / n (not a target size), so the
    sampling positions are those of the scale factor; the class position is kept as is.
    """
    n = table.shape[0] - 1
    side = int(math.sqrt(n))
    if n == grid * grid:
        return table
    dim = table.shape[-1]
    factor = (grid + 0.1) / math.sqrt(n)
    patches = table[1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, scale_factor=(factor, factor), mode="bicubic")
    if patches.shape[-2:] != (grid, grid):
        raise ValueError(f"position table of {side}x{side} cannot be resized to {grid}x{grid}")
    return torch.cat([table[:1], patches.permute(0, 2, 3, 1).reshape(grid * grid, dim)], dim=0)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ClipMLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, width * 4)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(width * 4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ClipBlock(nn.Module):
    """Pre-LN block on sequence-first (L, N, D) tokens; attention is torch's ``nn.MultiheadAttention``, the
    module CLIP was trained with (its fused ``in_proj`` weights are the checkpoint's)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = ClipMLP(width)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ClipTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ClipBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class ClipVisionTower(nn.Module):
    """OpenAI CLIP's visual ViT without its projection: patch tokens after ``ln_post`` (class token dropped).

    No CLIP mean/std normalisation is applied: TokenFlow's clipb tokenizer feeds its [-1, 1] input directly.
    Inputs whose patch grid differs from the trained one get the DINO-interpolated position table.
    """

    def __init__(self, width: int = 768, layers: int = 12, heads: int = 12, patch: int = 16, grid: int = 14):
        super().__init__()
        self.patch = patch
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = ClipTransformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, (H/patch)^2, width)."""
        grid = x.shape[-2] // self.patch
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + interpolate_grid(self.positional_embedding, grid).to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x)[:, 1:, :]


def siglip_tower(hidden: int = 1152, intermediate: int = 4304, layers: int = 27, heads: int = 16, patch: int = 14,
                 image_size: int = 384) -> nn.Module:
    """transformers' ``SiglipVisionModel`` with so400m-patch14-384's shape (its pooling head included: the
    released checkpoint carries it although TokenFlow never reads its output)."""
    try:
        from transformers.models.siglip.configuration_siglip import SiglipVisionConfig
        from transformers.models.siglip.modeling_siglip import SiglipVisionModel
    except ImportError:
        from tokbench.errors import TokbenchError

        raise TokbenchError("TokenFlow's SigLIP tokenizer needs the transformers package: "
                            "pip install 'tokbench[transformers]'") from None

    return SiglipVisionModel(SiglipVisionConfig(
        hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers, num_attention_heads=heads,
        patch_size=patch, image_size=image_size, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6))


def siglip_features(tower: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Tokens after the second-to-last encoder layer (before ``post_layernorm``), TokenFlow's semantic input."""
    return tower(x, output_hidden_states=True).hidden_states[-2]


class SiglipScaling(nn.Module):
    """[-1, 1] -> 8-bit range clamp -> (x - shift) / scale; the two buffers are stored in the checkpoint."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("scale", torch.full((1, 3, 1, 1), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1.0) * 127.5).clamp(0, 255.0) / 255.0
        return (x - self.shift) / self.scale


# ---------------------------------------------------------------- semantic decoder (BEiT v2 style ViT)


class PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=1, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class QVBiasAttention(nn.Module):
    """Multi-head attention with biases on queries and values only (keys get zeros), BEiT's convention;
    written as explicit products (q scaled first) in upstream's order."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        weights = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, -1))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = QVBiasAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SemanticDecoder(nn.Module):
    """Semantic codes (B, C, g, g) -> teacher-width patch features (B, g*g, dim): 1x1 patch embedding, class
    token, absolute positions (DINO-interpolated when g differs from the trained grid), pre-LN blocks with
    exact GELU, ``fc_norm`` on the patch tokens."""

    def __init__(self, in_channels: int = 32, dim: int = 768, depth: int = 3, heads: int = 12,
                 mlp_ratio: float = 4.0, grid: int = 14):
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList([DecoderBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        grid = z.shape[-2]
        x = self.patch_embed(z)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + interpolate_grid(self.pos_embed[0], grid)[None]
        for block in self.blocks:
            x = block(x)
        return self.fc_norm(x[:, 1:])

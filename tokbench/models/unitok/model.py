"""UniTok's image tokenizer (FoundationVision/UniTok, ``UniTok-Large``), written from
shared/reference/tokenizer-zoo/unitok.md after reading upstream's ``models/{unitok,quant,vqvae,vitamin}.py``.

Only the reconstruction path is built: ViTamin encoder -> attention projection 1024 -> 64 -> eight cosine
codebooks of 4096 x 8-d -> attention projection 64 -> 1024 -> ViTamin decoder. The CLIP half of the released
file (text tower, ``fc_norm``, ``projection``, ``logit_scale``) is checked by name and shape at load time and
not kept (``tokbench.models.unitok.loading``). Module and parameter names follow the released state_dict, so
the file loads strictly; the layers are plain torch (upstream builds them through timm 1.0.8).

Numerics follow upstream's inference path (``img_to_idx`` / ``idx_to_img``): every op is the one upstream
calls, in the same order, including the per-codebook matmul of the nearest-code search (a fused search over
all codebooks would round differently and could flip near-ties).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6  # the ViTamin layers (timm's default for VisionTransformer and LayerNorm2d here)
PROJ_LN_EPS = 1e-5  # the attention projections' own three norms are plain nn.LayerNorm


@dataclass(frozen=True)
class UniTokConfig:
    """Sizes of the tokenizer; the defaults are the released UniTok-Large (``vitamin_large``, 8 x 4096)."""

    conv_widths: tuple[int, int] = (160, 320)  # the two conv stages (the stem has the first width)
    conv_depths: tuple[int, int] = (2, 4)  # encoder conv blocks per stage
    width: int = 1024  # transformer width
    depth: int = 31  # transformer blocks in the encoder and in the decoder
    heads: int = 16  # transformer heads (64-d heads in every ViTamin preset)
    mlp_ratio: float = 2.0
    decoder_conv_depths: tuple[int, int] = (4, 2)  # decoder up blocks per stage
    vocab_width: int = 64  # channels the codebooks see, split evenly over them
    num_codebooks: int = 8
    codebook_size: int = 4096  # codes per codebook (upstream vocab_size / num_codebooks)

    @property
    def spatial_factor(self) -> int:
        return 16

    @property
    def code_dim(self) -> int:
        return self.vocab_width // self.num_codebooks

    @property
    def projection_heads(self) -> int:
        """Upstream: embed_dim // vocab_width, so each head of the down projection is vocab_width wide."""
        return self.width // self.vocab_width

    def check(self) -> "UniTokConfig":
        if self.vocab_width % self.num_codebooks:
            raise ValueError(f"vocab_width {self.vocab_width} does not split over {self.num_codebooks} codebooks")
        if self.width % self.vocab_width or self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of vocab_width {self.vocab_width} and of "
                             f"heads {self.heads}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def expanded(channels: int, ratio: float = 4.0, divisor: int = 8) -> int:
    """Inverted-bottleneck width: ``ratio x channels`` rounded to a multiple of 8, never more than 10% down
    (timm's make_divisible, which sizes upstream's conv blocks)."""
    v = channels * ratio
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


# ---------------------------------------------------------------- conv pieces


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map, optionally followed by GELU (timm LayerNorm[Act]2d)."""

    def __init__(self, channels: int, act: bool = False):
        super().__init__(channels, eps=LN_EPS)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return F.gelu(x) if self.act else x


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Symmetric padding ((stride - 1) + (k - 1)) // 2, as timm's create_conv2d with the default padding."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=((stride - 1) + (k - 1)) // 2, groups=groups)


class Stem(nn.Module):
    """3x3 stride-2 conv, LayerNorm2d + GELU, 3x3 conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride=2)
        self.norm1 = LayerNorm2d(cout, act=True)
        self.conv2 = conv(cout, cout, 3)

    def forward(self, x):
        return self.conv2(self.norm1(self.conv1(x)))


class PoolShortcut(nn.Module):
    """Shortcut of a stride-2 encoder block: 3x3 average pool (padding not counted), then 1x1 to the new width."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.expand = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.expand(self.pool(x))


class Upsample2d(nn.Module):
    """Nearest x2, then a 3x3 conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ConvBlock(nn.Module):
    """Pre-norm inverted bottleneck: LN2d, 1x1 expand, GELU, [x2 up], depthwise 3x3 [stride 2], GELU, 1x1.

    ``resample`` -1 halves the side (strided depthwise conv; pooled shortcut), +1 doubles it (an upsampling
    conv on the expanded features and on the shortcut), 0 keeps it.
    """

    def __init__(self, cin: int, cout: int, resample: int = 0):
        super().__init__()
        mid = expanded(cout)
        if resample < 0:
            self.shortcut = PoolShortcut(cin, cout)
        elif resample > 0:
            self.shortcut = Upsample2d(cin, cout)
        else:
            self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.pre_norm = LayerNorm2d(cin)
        self.conv1_1x1 = conv(cin, mid, 1)
        if resample > 0:
            self.up = Upsample2d(mid, mid)
        self.conv2_kxk = conv(mid, mid, 3, stride=2 if resample < 0 else 1, groups=mid)
        self.conv3_1x1 = conv(mid, cout, 1)

    def forward(self, x):
        shortcut = self.shortcut(x)
        x = F.gelu(self.conv1_1x1(self.pre_norm(x)))
        if hasattr(self, "up"):
            x = self.up(x)
        x = F.gelu(self.conv2_kxk(x))
        return self.conv3_1x1(x) + shortcut


class StridedConv(nn.Module):
    """The backbone's last step: LayerNorm2d, then a 3x3 stride-2 conv to the transformer width."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm = LayerNorm2d(cin)
        self.proj = nn.Conv2d(cin, cout, 3, stride=2, padding=1)

    def forward(self, x):
        return self.proj(self.norm(x))


class ConvBackbone(nn.Module):
    """Stem + two stages of conv blocks + strided conv: pixels -> (B, width, H/16, W/16)."""

    def __init__(self, cfg: UniTokConfig):
        super().__init__()
        w = cfg.conv_widths
        self.stem = Stem(3, w[0])
        self.stages = nn.ModuleList()
        for s, (dim, depth) in enumerate(zip(w, cfg.conv_depths)):
            cin = w[s - 1] if s else w[0]
            self.stages.append(nn.Sequential(*[ConvBlock(cin if d == 0 else dim, dim, resample=-1 if d == 0 else 0)
                                               for d in range(depth)]))
        self.pool = StridedConv(w[1], cfg.width)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.pool(x)


class PatchEmbed(nn.Module):
    """The conv backbone as the transformer's patch embedding (1x1 patches of its output grid)."""

    def __init__(self, cfg: UniTokConfig):
        super().__init__()
        self.backbone = ConvBackbone(cfg)

    def forward(self, x):
        return self.backbone(x).flatten(2).transpose(1, 2)


# ---------------------------------------------------------------- transformer pieces


class GeGluMlp(nn.Module):
    """LayerNorm, then gelu_tanh(w0 x) * w1 x, then w2 (the MLP carries its own norm)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.w0 = nn.Linear(dim, hidden)
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = self.norm(x)
        return self.w2(F.gelu(self.w0(x), approximate="tanh") * self.w1(x))


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (biases on), scale 1/sqrt(head_dim)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1 x), then x + mlp(norm2 x)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = GeGluMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """Conv patch embedding, + pos_embed (one (1, 1, width) vector, broadcast to every token), blocks, norm."""

    def __init__(self, cfg: UniTokConfig):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, cfg.width), requires_grad=False)
        self.patch_embed = PatchEmbed(cfg)
        self.blocks = nn.Sequential(*[Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)

    def forward(self, x):
        return self.norm(self.blocks(self.patch_embed(x) + self.pos_embed))


class ProjectionAttention(nn.Module):
    """Attention between widths: q and v biases, a zero k bias buffer; ``heads`` heads of
    max(in, out) / heads channels. Going down the heads are averaged, going up they are concatenated."""

    def __init__(self, cin: int, cout: int, heads: int):
        super().__init__()
        wide = max(cin, cout)
        self.heads, self.down = heads, cin > cout
        self.head_dim = wide // heads
        if self.down and self.head_dim != cout:
            raise ValueError(f"a down projection needs {cin} / {heads} heads == {cout} channels")
        self.qkv = nn.Linear(cin, wide * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(wide))
        self.v_bias = nn.Parameter(torch.zeros(wide))
        self.register_buffer("zero_k_bias", torch.zeros(wide))
        self.proj = nn.Linear(cout, cout)

    def forward(self, x):
        b, n, _ = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.mean(dim=1) if self.down else x.transpose(1, 2).reshape(b, n, -1)
        return self.proj(x)


class AttnProjection(nn.Module):
    """Width change around the quantiser: x = proj(norm3 x) + attn(norm1 x); x = x + mlp(norm2 x)."""

    def __init__(self, cin: int, cout: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(cin, eps=PROJ_LN_EPS)
        self.attn = ProjectionAttention(cin, cout, heads)
        self.proj = nn.Linear(cin, cout)
        self.norm3 = nn.LayerNorm(cin, eps=PROJ_LN_EPS)
        self.norm2 = nn.LayerNorm(cout, eps=PROJ_LN_EPS)
        self.mlp = GeGluMlp(cout, cout * 2)

    def forward(self, x):
        x = self.proj(self.norm3(x)) + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ---------------------------------------------------------------- quantiser


class Codebook(nn.Module):
    """One codebook; its rows are used L2-normalised (cosine codes)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.codebook = nn.Embedding(size, dim)

    def normalized(self) -> torch.Tensor:
        return F.normalize(self.codebook.weight, dim=1)


class MultiCodebookQuantizer(nn.Module):
    """Features (B, L, C) split into ``num_codebooks`` consecutive chunks; each chunk takes the code of highest
    cosine similarity in its own codebook. Indices are (B, num_codebooks, L)."""

    def __init__(self, cfg: UniTokConfig):
        super().__init__()
        self.codebooks = nn.ModuleList(Codebook(cfg.codebook_size, cfg.code_dim) for _ in range(cfg.num_codebooks))

    def indices(self, features: torch.Tensor) -> torch.Tensor:
        b, n, c = features.shape
        chunks = features.split(c // len(self.codebooks), dim=-1)
        out = []
        for chunk, book in zip(chunks, self.codebooks):
            f = F.normalize(chunk.reshape(b * n, -1), dim=-1).float()
            out.append(torch.argmax(f @ book.normalized().float().T, dim=1).view(b, n))
        return torch.stack(out, dim=1)

    def features(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.shape[1] != len(self.codebooks):
            raise ValueError(f"indices have {indices.shape[1]} codebooks, the quantiser {len(self.codebooks)}")
        return torch.cat([F.embedding(indices[:, i].flatten(1), book.normalized())
                          for i, book in enumerate(self.codebooks)], dim=-1)


# ---------------------------------------------------------------- decoder


class InvStem(nn.Module):
    """Nearest x2 + 3x3 conv, LayerNorm2d + GELU, 3x3 conv to RGB."""

    def __init__(self, cin: int, cout: int = 3):
        super().__init__()
        self.conv1 = Upsample2d(cin, cin)
        self.norm1 = LayerNorm2d(cin, act=True)
        self.conv2 = conv(cin, cout, 3)

    def forward(self, x):
        return self.conv2(self.norm1(self.conv1(x)))


class Decoder(nn.Module):
    """Transformer blocks + norm on the tokens, reshaped to a square grid, then x16 through conv up stages."""

    def __init__(self, cfg: UniTokConfig):
        super().__init__()
        w1, w0 = cfg.conv_widths[1], cfg.conv_widths[0]
        d1, d2 = cfg.decoder_conv_depths
        self.blocks = nn.Sequential(*[Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.up_conv1 = Upsample2d(cfg.width, w1)
        self.up_conv2 = nn.Sequential(*[ConvBlock(w1, w1, resample=1 if d == 0 else 0) for d in range(d1)])
        self.up_conv3 = nn.Sequential(*[ConvBlock(w1 if d == 0 else w0, w0, resample=1 if d == 0 else 0)
                                        for d in range(d2)])
        self.up_conv4 = InvStem(w0)

    def forward(self, x: torch.Tensor, grid: Optional[tuple[int, int]] = None) -> torch.Tensor:
        b, n, c = x.shape
        if grid is None:  # upstream: H = W = int(sqrt(L))
            side = int(n ** 0.5)
            grid = (side, side)
        if grid[0] * grid[1] != n:
            raise ValueError(f"{n} tokens do not fill a {grid[0]}x{grid[1]} grid")
        x = self.norm(self.blocks(x))
        x = x.reshape(b, grid[0], grid[1], c).permute(0, 3, 1, 2)
        return self.up_conv4(self.up_conv3(self.up_conv2(self.up_conv1(x))))


# ---------------------------------------------------------------- the tokenizer


class UniTok(nn.Module):
    """The reconstruction half of UniTok, with upstream's parameter names."""

    def __init__(self, cfg: UniTokConfig = UniTokConfig()):
        super().__init__()
        self.config = cfg.check()
        self.encoder = Encoder(cfg)
        self.quant_proj = AttnProjection(cfg.width, cfg.vocab_width, cfg.projection_heads)
        self.quantizer = MultiCodebookQuantizer(cfg)
        self.post_quant_proj = AttnProjection(cfg.vocab_width, cfg.width, cfg.projection_heads)
        self.decoder = Decoder(cfg)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (B, L, width) of images in [-1, 1]."""
        return self.encoder(x)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Encoder tokens -> the (B, L, vocab_width) vectors the codebooks see (float32, as upstream)."""
        return self.quant_proj(tokens.float())

    def img_to_idx(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> int64 (B, num_codebooks, H/16 * W/16), tokens row-major."""
        return self.quantizer.indices(self.project(self.features(x)))

    def idx_to_tokens(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices -> the decoder's input tokens (B, L, width)."""
        return self.post_quant_proj(self.quantizer.features(indices))

    def idx_to_img(self, indices: torch.Tensor, grid: Optional[tuple[int, int]] = None) -> torch.Tensor:
        """Indices -> images clamped to [-1, 1]."""
        return self.decoder(self.idx_to_tokens(indices), grid).clamp(-1, 1)

"""TiTok 1-D image tokenizers (bytedance/1d-tokenizer ``modeling/titok.py``), written from
shared/reference/tokenizer-zoo/titok.md after reading upstream; parameter names follow upstream so the
released state_dicts load with strict key matching.

A ViT encoder reads the 16x16 patch grid of a 256x256 image together with N learned latent tokens and keeps
only the latent rows; a 1x1 conv projects them to the token channels. The decoder puts the (quantised)
tokens after 256 mask queries and predicts, per patch position:

* legacy (TiTok-L-32 / B-64 / S-128, two-stage training): logits over the 1024 MaskGIT-VQGAN codes, turned into a
  softmax-weighted mix of that codebook and decoded to pixels by MaskGIT-VQGAN's conv decoder (both part of the
  released file, ``pixel_quantize`` / ``pixel_decoder``);
* single-stage (vq8k, VAE): a 16x16x3 pixel patch, then one 3x3 conv.

Legacy encoders also carry a memory quirk upstream keeps for compatibility: the (B, N, W) latent rows are
reinterpreted as (B, W, N, 1) without a transpose before the 1x1 projection.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.maskbit.model import Conv2dSame, ResidualBlock

# upstream's three ViT sizes: (width, layers, heads)
VIT_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}


@dataclass(frozen=True)
class TiTokConfig:
    """One released architecture. ``encoder`` / ``decoder`` are (width, layers, heads)."""

    encoder: tuple[int, int, int] = VIT_SIZES["large"]
    decoder: tuple[int, int, int] = VIT_SIZES["large"]
    num_tokens: int = 32
    token_channels: int = 12  # per token; a VAE's encoder emits twice as many (mean, logvar)
    quantizer: str = "vq"  # "vq" or "vae"
    codebook_size: Optional[int] = 4096
    l2_norm: bool = True  # VQ: nearest code by cosine (both sides L2-normalised)
    legacy: bool = True  # reshape quirk + MaskGIT-VQGAN pixel decoder head
    image_size: int = 256
    patch_size: int = 16
    # the MaskGIT-VQGAN pixel decoder of legacy models
    pixel_codes: int = 1024
    pixel_z: int = 256
    pixel_hidden: int = 128
    pixel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    pixel_res_blocks: int = 2

    def __post_init__(self):
        if self.quantizer not in ("vq", "vae"):
            raise ValueError(f"quantizer must be 'vq' or 'vae', not {self.quantizer!r}")
        if self.legacy and self.quantizer != "vq":
            raise ValueError("legacy (two-stage) TiTok models are VQ only")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s packed parameters, batch-first."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = (t.view(b, n, self.heads, w // self.heads).transpose(1, 2)
                   for t in F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, w))


class MLP(nn.Module):
    def __init__(self, width: int, ratio: int = 4):
        super().__init__()
        self.c_fc = nn.Linear(width, width * ratio)
        self.c_proj = nn.Linear(width * ratio, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LN transformer block (open_clip ``ResidualAttentionBlock`` naming)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = MLP(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    """What encoder and decoder share: embeddings of [class, grid positions] and of the latent tokens, a
    pre-LN transformer between ``ln_pre`` and ``ln_post``."""

    def __init__(self, size: tuple[int, int, int], grid: int, num_tokens: int):
        super().__init__()
        width, layers, heads = size
        self.width = width
        self.class_embedding = nn.Parameter(torch.empty(1, width))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.empty(num_tokens, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)

    def grid_rows(self, grid_tokens: torch.Tensor) -> torch.Tensor:
        """[class, grid tokens] + positional embedding: (B, 1 + G*G, W)."""
        cls = self.class_embedding.expand(grid_tokens.shape[0], 1, -1)
        return torch.cat([cls, grid_tokens], dim=1) + self.positional_embedding

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_pre(x)
        for block in self.transformer:
            x = block(x)
        return x


class Encoder(ViT):
    def __init__(self, cfg: TiTokConfig):
        super().__init__(cfg.encoder, cfg.grid, cfg.num_tokens)
        self.legacy = cfg.legacy
        self.out_channels = cfg.token_channels * (2 if cfg.quantizer == "vae" else 1)
        self.patch_embed = nn.Conv2d(3, self.width, cfg.patch_size, stride=cfg.patch_size)
        self.conv_out = nn.Conv2d(self.width, self.out_channels, 1)

    def forward(self, pixels: torch.Tensor, latent_tokens: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 256) -> (B, C, 1, N)."""
        b = pixels.shape[0]
        patches = self.patch_embed(pixels).flatten(2).transpose(1, 2)  # (B, G*G, W), row-major
        latents = (latent_tokens + self.latent_token_positional_embedding).expand(b, -1, -1)
        n = latents.shape[1]
        x = self.transform(torch.cat([self.grid_rows(patches), latents], dim=1))
        z = self.ln_post(x[:, -n:])
        if self.legacy:  # upstream's legacy layout: the (N, W) rows read as a (W, N) map, no transpose
            z = z.reshape(b, self.width, n, 1)
        else:
            z = z.transpose(1, 2).unsqueeze(-1)
        return self.conv_out(z).reshape(b, self.out_channels, 1, n)


class Decoder(ViT):
    def __init__(self, cfg: TiTokConfig):
        super().__init__(cfg.decoder, cfg.grid, cfg.num_tokens)
        self.grid, self.patch, self.legacy = cfg.grid, cfg.patch_size, cfg.legacy
        self.decoder_embed = nn.Linear(cfg.token_channels, self.width)
        self.mask_token = nn.Parameter(torch.empty(1, 1, self.width))
        if cfg.legacy:  # logits over the MaskGIT-VQGAN codes
            self.ffn = nn.Sequential(nn.Conv2d(self.width, 2 * self.width, 1), nn.Tanh(),
                                     nn.Conv2d(2 * self.width, cfg.pixel_codes, 1))
        else:  # a pixel patch per position, channel order (p1, p2, rgb), then a 3x3 conv
            self.ffn = nn.Sequential(nn.Conv2d(self.width, cfg.patch_size ** 2 * 3, 1))
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, N) -> (B, 1024, 16, 16) code logits (legacy) or (B, 3, 256, 256) pixels."""
        b, c, _, n = z.shape
        tokens = self.decoder_embed(z.reshape(b, c, n).transpose(1, 2)) + self.latent_token_positional_embedding[:n]
        queries = self.grid_rows(self.mask_token.expand(b, self.grid * self.grid, -1))
        x = self.transform(torch.cat([queries, tokens], dim=1))
        x = self.ln_post(x[:, 1:1 + self.grid * self.grid])
        x = self.ffn(x.transpose(1, 2).reshape(b, self.width, self.grid, self.grid).contiguous())  # as upstream
        if self.legacy:
            return x
        g, p = self.grid, self.patch
        x = x.view(b, p, p, 3, g, g).permute(0, 3, 4, 1, 5, 2).reshape(b, 3, g * p, g * p)
        return self.conv_out(x)


class Table(nn.Module):
    """An uninitialised lookup table with ``nn.Embedding``'s parameter name (weights always come from a file)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(size, dim))

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.weight)


class Codebook(nn.Module):
    """Codebook named as upstream's (``<name>.embedding.weight``)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embedding = Table(size, dim)


class VectorQuantizer(Codebook):
    """Nearest code by |z|^2 + |e|^2 - 2 z.e, as upstream computes it (so ties break the same way); with
    ``l2_norm`` both sides are unit vectors and the looked-up code is normalised again."""

    def __init__(self, size: int, dim: int, l2_norm: bool):
        super().__init__(size, dim)
        self.l2_norm = l2_norm

    def codes(self) -> torch.Tensor:
        e = self.embedding.weight
        return F.normalize(e, dim=-1) if self.l2_norm else e

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, N) -> (B, N) int64."""
        b, c, _, n = z.shape
        flat = z.float().permute(0, 2, 3, 1).reshape(-1, c)
        if self.l2_norm:
            flat = F.normalize(flat, dim=-1)
        e = self.codes().float()
        d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * flat @ e.T
        return d.argmin(dim=1).view(b, n)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, C, 1, N)."""
        z = self.embedding(indices)
        if self.l2_norm:
            z = F.normalize(z, dim=-1)
        return z.permute(0, 2, 1).unsqueeze(2)


class UpLevel(nn.Module):
    def __init__(self, cin: int, cout: int, blocks: int, upsample: bool):
        super().__init__()
        self.block = nn.ModuleList(ResidualBlock(cin if i == 0 else cout, cout) for i in range(blocks))
        if upsample:
            self.upsample_conv = Conv2dSame(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if hasattr(self, "upsample_conv"):
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class PixelDecoder(nn.Module):
    """MaskGIT-VQGAN's conv decoder (open-muse port): TF-SAME convs, output-side residual shortcut (the
    ``ResidualBlock`` tokbench's MaskBit shares), nearest x2 + 3x3 conv per level; ``up.i`` is level i and the
    deepest level runs first."""

    def __init__(self, cfg: TiTokConfig):
        super().__init__()
        hid, mult, nrb = cfg.pixel_hidden, cfg.pixel_mult, cfg.pixel_res_blocks
        deep = hid * mult[-1]
        self.conv_in = Conv2dSame(cfg.pixel_z, deep, 3)
        self.mid = nn.ModuleList(ResidualBlock(deep, deep) for _ in range(nrb))
        inputs = tuple(mult[1:]) + (mult[-1],)  # level i reads level i+1's width (the deepest: its own)
        self.up = nn.ModuleList(UpLevel(hid * inputs[i], hid * mult[i], nrb, i > 0) for i in range(len(mult)))
        self.norm_out = nn.GroupNorm(32, hid * mult[0], eps=1e-6)
        self.conv_out = Conv2dSame(hid * mult[0], 3, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(z)
        for block in self.mid:
            x = block(x)
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class TiTok(nn.Module):
    """Encoder, quantiser (VQ codebook or diagonal Gaussian) and decoder of one TiTok release. Inputs
    (B, 3, 256, 256) in [0, 1]; outputs unclamped (upstream clamps to [0, 1] after decoding)."""

    def __init__(self, config: Optional[TiTokConfig] = None):
        super().__init__()
        self.config = cfg = config or TiTokConfig()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.latent_tokens = nn.Parameter(torch.empty(cfg.num_tokens, cfg.encoder[0]))
        if cfg.quantizer == "vq":
            self.quantize = VectorQuantizer(cfg.codebook_size, cfg.token_channels, cfg.l2_norm)
        if cfg.legacy:
            self.pixel_quantize = Codebook(cfg.pixel_codes, cfg.pixel_z)
            self.pixel_decoder = PixelDecoder(cfg)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output (B, C, 1, N): VQ features, or a VAE's [mean, logvar] (2 x 16 channels)."""
        if x.shape[-2:] != (self.config.image_size,) * 2:
            raise ValueError(f"TiTok takes {self.config.image_size}x{self.config.image_size} input, "
                             f"not {x.shape[-2]}x{x.shape[-1]}")
        return self.encoder(x, self.latent_tokens)

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """VQ token indices (B, N)."""
        return self.quantize.indices(self.encode_latent(x))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VAE (mean, std), each (B, 16, 1, N); log-variance clamped to [-30, 20] as upstream."""
        mean, logvar = self.encode_latent(x).float().chunk(2, dim=1)
        return mean, torch.exp(0.5 * logvar.clamp(-30.0, 20.0))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, C, 1, N) -> image (B, 3, 256, 256)."""
        y = self.decoder(z)
        if self.config.legacy:  # soft mix of the MaskGIT-VQGAN codebook, then its pixel decoder
            mix = torch.einsum("nchw,cd->ndhw", y.softmax(1), self.pixel_quantize.embedding.weight)
            y = self.pixel_decoder(mix)
        return y

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantize.lookup(indices))


def config_from_state_dict(state: Mapping[str, torch.Tensor], expected: TiTokConfig) -> TiTokConfig:
    """The architecture a state_dict describes. Heads are not in the tensors: upstream's sizes all use 64-wide
    heads, and so does this rule. The legacy reshape and the l2-normalised codebook are not visible either;
    they follow the decoder head (the MaskGIT-VQGAN pixel decoder is present exactly in legacy files) and the
    expected release."""
    def vit(prefix: str) -> tuple[int, int, int]:
        width = state[f"{prefix}.ln_pre.weight"].shape[0]
        layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith(f"{prefix}.transformer."))
        return width, layers, max(1, width // 64)

    legacy = any(k.startswith("pixel_decoder.") for k in state)
    vq = "quantize.embedding.weight" in state
    grid = int(round((state["encoder.positional_embedding"].shape[0] - 1) ** 0.5))
    patch = state["encoder.patch_embed.weight"].shape[-1]
    kw = {}
    if legacy:
        hid = state["pixel_decoder.norm_out.weight"].shape[0]
        levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("pixel_decoder.up."))
        mult = tuple(state[f"pixel_decoder.up.{i}.block.0.conv2.weight"].shape[0] // hid for i in range(levels))
        nrb = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("pixel_decoder.up.0.block."))
        codes, pz = state["pixel_quantize.embedding.weight"].shape
        kw = dict(pixel_codes=codes, pixel_z=pz, pixel_hidden=hid, pixel_mult=mult, pixel_res_blocks=nrb)
    return TiTokConfig(encoder=vit("encoder"), decoder=vit("decoder"), num_tokens=state["latent_tokens"].shape[0],
                       token_channels=state["decoder.decoder_embed.weight"].shape[1], quantizer="vq" if vq else "vae",
                       codebook_size=state["quantize.embedding.weight"].shape[0] if vq else None,
                       l2_norm=expected.l2_norm if vq else False, legacy=legacy, image_size=grid * patch,
                       patch_size=patch, **kw)

"""One convolutional VQ autoencoder (taming-transformers' VQGAN design) with the two upstream key layouts.

taming-transformers, Chameleon and LlamaGen share the arithmetic (``layers.py``) and differ in:

* key layout: taming/Chameleon name levels ``down.{i}.block.{j}`` / ``up.{i}`` (decoder indexed by resolution
  level, lowest resolution last) and the middle ``mid.block_1/attn_1/block_2``; LlamaGen names them
  ``conv_blocks.{i}.res.{j}`` (decoder in execution order) and ``mid.{0,1,2}``;
* where level attention sits: taming at the levels whose *nominal* resolution (from the config, not the
  input) is in ``attn_resolutions``, Chameleon nowhere, LlamaGen at the lowest-resolution level;
* the quantiser: LlamaGen l2-normalises latents and codes before the distance (and looks up normalised codes
  when decoding) and keeps a training-only ``codebook_used`` buffer; taming/Chameleon use the raw codebook.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.vqgan.layers import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm, swish

LAYOUTS = ("taming", "llamagen")
DISTANCE_ELEMENTS = 1 << 26  # rows x codes of one distance block (256 MiB in float32)


@dataclass(frozen=True)
class VQGANConfig:
    layout: str  # "taming" (taming-transformers, Chameleon) or "llamagen"
    n_embed: int
    embed_dim: int
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    attn_levels: tuple[int, ...] = ()  # levels (0 = full resolution) with attention after every res block
    l2_norm: bool = False  # LlamaGen: latents and codes l2-normalised
    usage_buffer: int = 0  # LlamaGen: length of the training-only ``quantize.codebook_used`` buffer
    in_channels: int = 3
    out_channels: int = 3

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {self.layout!r}")

    @property
    def levels(self) -> int:
        return len(self.ch_mult)

    @property
    def downsampling(self) -> int:
        return 2 ** (self.levels - 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def taming_attn_levels(resolution: int, attn_resolutions, levels: int) -> tuple[int, ...]:
    """Levels with attention under taming's rule: the encoder halves a nominal ``resolution`` after each level,
    the decoder doubles ``resolution // 2**(levels-1)``; both must agree (they do for every released config)."""
    enc, res = [], resolution
    for i in range(levels):
        if res in attn_resolutions:
            enc.append(i)
        if i != levels - 1:
            res //= 2
    dec, res = [], resolution // 2 ** (levels - 1)
    for i in reversed(range(levels)):
        if res in attn_resolutions:
            dec.append(i)
        if i != 0:
            res *= 2
    if sorted(enc) != sorted(dec):
        raise ValueError(f"resolution {resolution}: encoder attention at levels {enc}, decoder at {sorted(dec)}")
    return tuple(enc)


class Level(nn.Module):
    """One resolution level: res blocks (attention after each where enabled), then an optional resampler.
    ``names`` = (res list attribute, resampler attribute) of the upstream layout."""

    def __init__(self, names: tuple[str, str], blocks: list[nn.Module], attns: list[nn.Module],
                 resample: Optional[nn.Module]):
        super().__init__()
        self._res_name, self._resample_name = names
        self.add_module(self._res_name, nn.ModuleList(blocks))
        self.attn = nn.ModuleList(attns)
        if resample is not None:
            self.add_module(self._resample_name, resample)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        blocks = getattr(self, self._res_name)
        for i, block in enumerate(blocks):
            h = block(h)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        resample = getattr(self, self._resample_name, None)
        return resample(h) if resample is not None else h


class NamedMid(nn.Module):
    """taming's middle: ``block_1``, ``attn_1``, ``block_2``."""

    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


def _mid(layout: str, channels: int) -> nn.Module:
    if layout == "taming":
        return NamedMid(channels)
    return nn.Sequential(ResnetBlock(channels, channels), AttnBlock(channels), ResnetBlock(channels, channels))


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        names = ("block", "downsample") if cfg.layout == "taming" else ("res", "downsample")
        levels, width = [], cfg.ch
        for i, mult in enumerate(cfg.ch_mult):
            out = cfg.ch * mult
            blocks = [ResnetBlock(width if j == 0 else out, out) for j in range(cfg.num_res_blocks)]
            attns = [AttnBlock(out) for _ in blocks] if i in cfg.attn_levels else []
            levels.append(Level(names, blocks, attns, Downsample(out) if i != cfg.levels - 1 else None))
            width = out
        self.add_module("down" if cfg.layout == "taming" else "conv_blocks", nn.ModuleList(levels))
        self._levels = levels
        self.mid = _mid(cfg.layout, width)
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self._levels:
            h = level(h)
        return self.conv_out(swish(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        width = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, width, 3, padding=1)
        self.mid = _mid(cfg.layout, width)
        names = ("block", "upsample") if cfg.layout == "taming" else ("res", "upsample")
        run = []  # execution order: lowest resolution first
        for i in reversed(range(cfg.levels)):
            out = cfg.ch * cfg.ch_mult[i]
            blocks = [ResnetBlock(width if j == 0 else out, out) for j in range(cfg.num_res_blocks + 1)]
            attns = [AttnBlock(out) for _ in blocks] if i in cfg.attn_levels else []
            run.append(Level(names, blocks, attns, Upsample(out) if i != 0 else None))
            width = out
        if cfg.layout == "taming":
            self.up = nn.ModuleList(run[::-1])  # indexed by resolution level: up.0 is full resolution
        else:
            self.conv_blocks = nn.ModuleList(run)
        self._run = run
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in self._run:
            h = level(h)
        return self.conv_out(swish(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest code by ``|z|^2 + |e|^2 - 2 z.e`` and ``argmin`` (first index on ties), upstream's formula;
    returns the indices and the straight-through ``z + (e - z)`` upstream's evaluations decode.

    With ``l2_norm`` latents and codes are unit-normalised first (codes at every use: stored rows are not unit
    length). The distance runs in float32 with autocast off whatever the model dtype, in blocks of
    ``DISTANCE_ELEMENTS`` (rows x codes) so 1024-pixel inputs do not need gigabytes.
    """

    def __init__(self, n_embed: int, embed_dim: int, l2_norm: bool = False, usage_buffer: int = 0,
                 contiguous_quant: bool = True):
        super().__init__()
        self.n_embed, self.embed_dim, self.l2_norm = n_embed, embed_dim, l2_norm
        self.contiguous_quant = contiguous_quant
        self.embedding = nn.Embedding(n_embed, embed_dim)
        if usage_buffer:  # training statistics only; kept so upstream's state_dict loads strictly
            self.register_buffer("codebook_used", torch.zeros(usage_buffer))

    def codebook(self) -> torch.Tensor:
        w = self.embedding.weight
        return F.normalize(w, p=2, dim=-1) if self.l2_norm else w

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) latent -> (indices (B, h, w) int64, straight-through quant (B, C, h, w))."""
        b, c, h, w = z.shape
        autocast = torch.autocast(z.device.type, enabled=False) if z.device.type in ("cuda", "cpu") else nullcontext()
        with autocast:
            zl = z.float().permute(0, 2, 3, 1).contiguous()
            flat = zl.view(-1, c)
            if self.l2_norm:
                zl = F.normalize(zl, p=2, dim=-1)
                flat = F.normalize(flat, p=2, dim=-1)
            codes = self.codebook().float()
            code_sq = torch.sum(codes ** 2, dim=1)
            step = max(1, DISTANCE_ELEMENTS // self.n_embed)
            indices = torch.cat([
                torch.argmin(torch.sum(part ** 2, dim=1, keepdim=True) + code_sq
                             - 2 * torch.einsum("bd,dn->bn", part, codes.t()), dim=1)
                for part in flat.split(step)])
            chosen = codes[indices].view(zl.shape)
            quant = (zl + (chosen - zl)).permute(0, 3, 1, 2)
        if self.contiguous_quant:
            quant = quant.contiguous()
        return indices.view(b, h, w), quant.to(z.dtype)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) indices -> (B, C, h, w) codes (normalised ones under ``l2_norm``), as upstream's
        ``get_codebook_entry``."""
        b, h, w = indices.shape
        codes = self.codebook()[indices.reshape(-1)]
        return codes.view(b, h, w, self.embed_dim).permute(0, 3, 1, 2).contiguous()


class VQGAN(nn.Module):
    """Encoder -> 1x1 ``quant_conv`` -> quantiser; ``post_quant_conv`` -> decoder. Keys as upstream's."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # LlamaGen hands the decoder the permuted (channels-last strided) quant, taming a contiguous copy; the
        # layout picks the convolution kernels, so it is kept for upstream's rounding
        self.quantize = VectorQuantizer(cfg.n_embed, cfg.embed_dim, cfg.l2_norm, cfg.usage_buffer,
                                        contiguous_quant=cfg.layout == "taming")
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> (indices (B, h, w), straight-through quant (B, embed_dim, h, w))."""
        return self.quantize(self.quant_conv(self.encoder(x)))

    def decode(self, quant: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quant))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantize.lookup(indices).to(self.post_quant_conv.weight.dtype))

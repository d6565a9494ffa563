"""OmniTokenizer encoder, decoder and bottleneck (VQ with an EMA codebook, or a diagonal-Gaussian VAE).

Spec: shared/reference/omnitokenizer.md §4-§5. Inputs are ``(B, 3, T, H, W)`` in [-0.5, 0.5] with
``T = 1 + k * temporal_patch_size``; frame 0 is patchified on its own (the image path), so an image is a
one-frame video through the same weights. Sides are square multiples of ``config.spatial_multiple``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.omnitokenizer.config import OmniTokenizerConfig
from tokbench.models.omnitokenizer.layers import Transformer, set_attention_impl


class PatchesToTokens(nn.Module):
    """``b c (t pt) (h p1) (w p2) -> b t h w (c pt p1 p2)``; parameter-free, keeps Sequential positions."""

    def __init__(self, patch: int, temporal_patch: int):
        super().__init__()
        self.p, self.pt = patch, temporal_patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        p, pt = self.p, self.pt
        x = x.reshape(b, c, t // pt, pt, h // p, p, w // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(b, t // pt, h // p, w // p, c * pt * p * p)


class TokensToPatches(nn.Module):
    """``b t h w (c pt p1 p2) -> b c (t pt) (h p1) (w p2)``."""

    def __init__(self, patch: int, temporal_patch: int, channels: int):
        super().__init__()
        self.p, self.pt, self.c = patch, temporal_patch, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, _ = x.shape
        p, pt, c = self.p, self.pt, self.c
        x = x.reshape(b, t, h, w, c, pt, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(b, c, t * pt, h * p, w * p)


class ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 4, 1)


class ChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 4, 1, 2, 3)


def _stack(cfg: OmniTokenizerConfig, block: str, *, temporal: bool) -> Transformer:
    # Temporal stacks keep upstream's default spatial_pos "rel": they own unused position-bias MLPs.
    return Transformer(cfg.dim, block=block, dim_head=cfg.dim_head, heads=cfg.heads, ff_mult=cfg.ff_mult,
                       causal=cfg.causal_temporal if temporal else False, peg_causal=cfg.causal_peg,
                       window_size=cfg.window_size, spatial_pos="rel" if temporal else cfg.spatial_pos,
                       attn_impl=cfg.attn_impl)


class OmniEncoder(nn.Module):
    """Patch embedding (first frame apart), spatial stack over each latent frame, causal temporal stack
    over each token position. Output ``(B, dim, t', h, w)``."""

    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        p, pt, c = cfg.patch_size, cfg.temporal_patch_size, cfg.image_channels
        self.to_patch_emb_first_frame = nn.Sequential(
            PatchesToTokens(p, 1), nn.LayerNorm(c * p * p), nn.Linear(c * p * p, cfg.dim), nn.LayerNorm(cfg.dim))
        self.to_patch_emb = nn.Sequential(
            PatchesToTokens(p, pt), nn.LayerNorm(c * pt * p * p), nn.Linear(c * pt * p * p, cfg.dim),
            nn.LayerNorm(cfg.dim))
        self.enc_spatial_transformer = _stack(cfg, cfg.enc_block, temporal=False)
        self.enc_temporal_transformer = _stack(cfg, "t" * cfg.temporal_depth, temporal=True)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        tokens = self.to_patch_emb_first_frame(video[:, :, :1])
        if video.shape[2] > 1:
            tokens = torch.cat([tokens, self.to_patch_emb(video[:, :, 1:])], dim=1)
        b, t, h, w, d = tokens.shape
        shape = (b, t, h, w)
        x = self.enc_spatial_transformer(tokens.reshape(b * t, h * w, d), shape, is_spatial=True)
        x = x.reshape(b, t, h, w, d).permute(0, 2, 3, 1, 4).reshape(b * h * w, t, d)
        x = self.enc_temporal_transformer(x, shape, is_spatial=False)
        return x.reshape(b, h, w, t, d).permute(0, 4, 3, 1, 2)


class OmniDecoder(nn.Module):
    """Causal temporal stack, then global spatial stack, then linear un-patchify (first frame apart)."""

    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        p, pt, c = cfg.patch_size, cfg.temporal_patch_size, cfg.image_channels
        self.dec_spatial_transformer = _stack(cfg, cfg.dec_block, temporal=False)
        self.dec_temporal_transformer = _stack(cfg, "t" * cfg.temporal_depth, temporal=True)
        self.to_pixels_first_frame = nn.Sequential(nn.Linear(cfg.dim, c * p * p), TokensToPatches(p, 1, c))
        self.to_pixels = nn.Sequential(nn.Linear(cfg.dim, c * pt * p * p), TokensToPatches(p, pt, c))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, d, t, h, w = z.shape
        shape = (b, t, h, w)
        x = z.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, d)
        x = self.dec_temporal_transformer(x, shape, is_spatial=False)
        x = x.reshape(b, h, w, t, d).permute(0, 3, 1, 2, 4).reshape(b * t, h * w, d)
        x = self.dec_spatial_transformer(x, shape, is_spatial=True).reshape(b, t, h, w, d)
        video = self.to_pixels_first_frame(x[:, :1])
        if t > 1:
            video = torch.cat([video, self.to_pixels(x[:, 1:])], dim=2)
        return video


class Codebook(nn.Module):
    """EMA codebook: only ``embeddings`` is used at inference; the EMA statistics are kept because they
    are in the checkpoint (strict loading)."""

    def __init__(self, n_codes: int, dim: int):
        super().__init__()
        self.register_buffer("embeddings", torch.randn(n_codes, dim))
        self.register_buffer("N", torch.zeros(n_codes))
        self.register_buffer("z_avg", self.embeddings.clone())
        self.register_buffer("codebook_usage", torch.zeros(n_codes))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``(B, t, h, w)`` of the nearest code (squared L2, codes *not* re-normalised) to each
        ``(B, c, t, h, w)`` vector, computed as upstream: |z|^2 - 2 z.e + |e|^2 in float32."""
        flat = z.movedim(1, -1).reshape(-1, z.shape[1]).float()
        codes = self.embeddings.float()
        distances = ((flat ** 2).sum(dim=1, keepdim=True) - 2 * flat @ codes.t()
                     + (codes.t() ** 2).sum(dim=0, keepdim=True))
        return distances.argmin(dim=1).view(z.shape[0], *z.shape[2:])


class OmniTokenizer(nn.Module):
    """OmniTokenizer VQ or VAE with the upstream ``VQGAN`` module names (minus training-only parts)."""

    def __init__(self, config: Optional[OmniTokenizerConfig] = None):
        super().__init__()
        cfg = self.config = config or OmniTokenizerConfig()
        self.encoder = OmniEncoder(cfg)
        self.decoder = OmniDecoder(cfg)
        out = cfg.codebook_dim * (2 if cfg.use_vae else 1)
        self.codebook = Codebook(cfg.n_codes, cfg.codebook_dim)  # VAE files carry an unused codebook too
        self.pre_vq_conv = nn.Sequential(ChannelsLast(), nn.Linear(cfg.dim, out), ChannelsFirst())
        self.post_vq_conv = nn.Sequential(ChannelsLast(), nn.Linear(cfg.codebook_dim, cfg.dim), ChannelsFirst())

    # -- geometry ---------------------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` as (B, C, T, H, W) (4-D images get T = 1) or raise ValueError saying what is wrong."""
        cfg = self.config
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, T, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
        _, c, t, h, w = x.shape
        if c != cfg.image_channels:
            raise ValueError(f"expected {cfg.image_channels} channels, got {c}")
        if (t - 1) % cfg.temporal_patch_size:
            raise ValueError(f"{t} frames: need T = 1 + k * {cfg.temporal_patch_size} (1, "
                             f"{1 + cfg.temporal_patch_size}, {1 + 2 * cfg.temporal_patch_size}, ...)")
        m = cfg.spatial_multiple
        if h != w or h % m:
            raise ValueError(f"frame size {h}x{w}: need square sides that are multiples of {m}")
        return x

    def latent_grid(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        cfg = self.config
        return 1 + (t - 1) // cfg.temporal_patch_size, h // cfg.patch_size, w // cfg.patch_size

    def set_attn_impl(self, attn_impl: str) -> None:
        self.config = replace(self.config, attn_impl=attn_impl)  # validates the name
        set_attention_impl(self, attn_impl)

    # -- encode -----------------------------------------------------------------------------------------
    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """``pre_vq_conv(encoder(x))``: (B, c, t', h, w) for VQ, (B, 2c, t', h, w) = mean ‖ logvar for VAE."""
        return self.pre_vq_conv(self.encoder(self.check_input(x)))

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """VQ token indices (B, t', h, w), int64."""
        if self.config.use_vae:
            raise ValueError("this is a VAE checkpoint: it has latents, not token indices")
        z = self.encode_moments(x)
        if self.config.l2_code:
            z = F.normalize(z, p=2, dim=1)
        return self.codebook.nearest(z)

    def encode_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VAE posterior ``(mean, logvar)``, each (B, c, t', h, w); logvar clamped to [-30, 20]."""
        if not self.config.use_vae:
            raise ValueError("this is a VQ checkpoint: it has token indices, not a posterior")
        mean, logvar = self.encode_moments(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode_latents(self, x: torch.Tensor, sample: bool = False,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """VAE latents: the posterior mean, or ``mean + std * noise`` (what upstream's encode returns)."""
        mean, logvar = self.encode_posterior(x)
        if not sample:
            return mean
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype,
                            device=generator.device if generator is not None else mean.device).to(mean.device)
        return mean + torch.exp(0.5 * logvar) * noise

    # -- decode -----------------------------------------------------------------------------------------
    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """(B, c, t', h, w) latents (VAE latents or looked-up code vectors) -> (B, C, T, H, W)."""
        return self.decoder(self.post_vq_conv(z))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, t', h, w) token indices -> (B, C, T, H, W)."""
        codes = F.embedding(indices, self.codebook.embeddings)  # B t h w c
        return self.decode_latents(codes.permute(0, 4, 1, 2, 3))

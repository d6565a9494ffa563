"""TokenFlow's dual-codebook tokenizer (ByteFlow-AI/TokenFlow, ``tokenflow/tokenizer/vq_model.py``), re-implemented
from shared/reference/tokenizer-zoo/tokenflow.md after reading upstream.

Two branches see the same image: a semantic one (a pretrained ViT teacher, fine-tuned, + ``encode_task_layer``
to 32 channels) and a pixel one (LlamaGen's VQGAN CNN + ``quant_conv`` to 8 channels). Their latents are
concatenated [semantic | pixel] and quantised VAR-style over several scales with **one** index per token into a
codebook of (32-d semantic, 8-d pixel) pairs. The image comes back through the pixel half only; the semantic
half reconstructs teacher features (``decode_semantic``), which tokbench does not score.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.tokenflow.semantic import (ClipVisionTower, SemanticDecoder, SiglipScaling, siglip_features,
                                                siglip_tower)
from tokbench.models.vqgan.model import Decoder, Encoder, VQGANConfig

TEACHERS = ("clipb", "siglip")
DISTANCE_ELEMENTS = 1 << 26  # rows x codes of one distance block (256 MiB in float32)


@dataclass(frozen=True)
class TokenFlowConfig:
    """Defaults: the released ``tokenflow_clipb_32k_enhanced.pt`` (use ``SIGLIP`` for the other file)."""

    teacher: str = "clipb"
    scales: tuple[int, ...] = (1, 2, 4, 6, 8, 10, 12, 14, 16)  # clipb with infer_interpolate (256 px)
    input_size: int = 256  # the one square side the scale schedule fits
    codebook_size: int = 32768
    semantic_dim: int = 32
    pixel_dim: int = 8
    usage_buffer: int = 131072  # training-only ``quantize.codebook_used``
    # pixel branch (LlamaGen VQ-16 CNN)
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    z_channels: int = 256
    encoder_ch: int = 128
    encoder_res_blocks: int = 2
    decoder_ch: int = 256  # enhanced decoder; 128 otherwise
    decoder_res_blocks: int = 4  # enhanced decoder; 2 otherwise
    # semantic teacher
    tower_width: int = 768
    tower_layers: int = 12
    tower_heads: int = 12
    tower_mlp: int = 3072  # SigLIP's intermediate size (CLIP: 4 x width, fixed)
    tower_patch: int = 16
    tower_grid: int = 14  # trained position grid (CLIP 224/16; SigLIP 384/14 = 27)
    # semantic decoder
    sem_depth: int = 3
    sem_heads: int = 12
    sem_mlp_ratio: float = 4.0
    semantic_out: int = 512  # teacher feature width reconstructed (CLIP-B/16 embed dim; SigLIP 1152)

    def __post_init__(self):
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}, not {self.teacher!r}")

    @property
    def pixel_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid(self) -> int:
        """Latent side at ``input_size``: the semantic tower's patch grid, which the last scale must equal."""
        return self.input_size // self.tower_patch

    @property
    def tokens(self) -> int:
        return sum(s * s for s in self.scales)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


CLIPB_ENHANCED = TokenFlowConfig()
SIGLIP = TokenFlowConfig(
    teacher="siglip", scales=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 22, 27), input_size=384,
    decoder_ch=128, decoder_res_blocks=2, tower_width=1152, tower_layers=27, tower_heads=16, tower_mlp=4304,
    tower_patch=14, tower_grid=27, semantic_out=1152)


class DualCodebookQuantizer(nn.Module):
    """Nearest (semantic, pixel) code pair under the summed squared distance of both l2-normalised halves.

    Each half of a latent vector and each codebook row is unit-normalised (rows at every use: the stored ones
    are not unit length); ``d = |a - e_sem|^2 + |b - e_pix|^2`` in upstream's ``|x|^2 + |e|^2 - 2 x.e`` form,
    ``argmin`` (first index on ties). Returns the straight-through ``z + (e - z)`` upstream decodes. Runs in
    float32 with autocast off, in row blocks of ``DISTANCE_ELEMENTS`` (rows x codes).
    """

    def __init__(self, codebook_size: int, semantic_dim: int, pixel_dim: int, usage_buffer: int = 0):
        super().__init__()
        self.split = (semantic_dim, pixel_dim)
        # upstream's uniform init (normal_ would take seconds on the meta device)
        self.embedding_vqkd = nn.Embedding(codebook_size, semantic_dim, _weight=_uniform(codebook_size, semantic_dim))
        self.embedding_vqgan = nn.Embedding(codebook_size, pixel_dim, _weight=_uniform(codebook_size, pixel_dim))
        if usage_buffer:  # training statistics only; kept so the released state_dict loads strictly
            self.register_buffer("codebook_used", torch.zeros(usage_buffer))

    def codebooks(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (F.normalize(self.embedding_vqkd.weight.float(), p=2, dim=-1),
                F.normalize(self.embedding_vqgan.weight.float(), p=2, dim=-1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 40, h, w) -> (indices (B, h*w) int64 row-major, straight-through quant (B, 40, h, w))."""
        b, c, h, w = z.shape
        autocast = torch.autocast(z.device.type, enabled=False) if z.device.type in ("cuda", "cpu") else nullcontext()
        with autocast:
            zl = z.float().permute(0, 2, 3, 1).contiguous()
            sem, pix = (F.normalize(part, p=2, dim=-1) for part in torch.split(zl, self.split, dim=-1))
            e_sem, e_pix = self.codebooks()
            sem_sq, pix_sq = torch.sum(e_sem ** 2, dim=1), torch.sum(e_pix ** 2, dim=1)
            flat_sem, flat_pix = sem.reshape(-1, self.split[0]), pix.reshape(-1, self.split[1])
            step = max(1, DISTANCE_ELEMENTS // e_sem.shape[0])
            indices = torch.cat([
                torch.argmin(_sq_dist(a, e_sem, sem_sq) + 1.0 * _sq_dist(p, e_pix, pix_sq), dim=1)
                for a, p in zip(flat_sem.split(step), flat_pix.split(step))])
            zn = torch.cat([sem, pix], dim=-1)
            chosen = torch.cat([e_sem, e_pix], dim=-1)[indices].view(zn.shape)
            quant = (zn + (chosen - zn)).permute(0, 3, 1, 2)  # left channels-last strided, as upstream's einsum
        return indices.view(b, h * w), quant.to(z.dtype)

    def lookup(self, indices: torch.Tensor, side: int) -> torch.Tensor:
        """(B, side*side) indices -> (B, 40, side, side) normalised code pairs (upstream ``get_codebook_entry``)."""
        e_sem, e_pix = self.codebooks()
        codes = torch.cat([e_sem, e_pix], dim=-1)[indices]
        return codes.view(indices.shape[0], side, side, -1).permute(0, 3, 1, 2)


def _uniform(rows: int, dim: int) -> torch.Tensor:
    return torch.empty(rows, dim).uniform_(-1.0 / rows, 1.0 / rows)


def _sq_dist(x: torch.Tensor, codes: torch.Tensor, codes_sq: torch.Tensor) -> torch.Tensor:
    return torch.sum(x ** 2, dim=1, keepdim=True) + codes_sq - 2 * torch.einsum("bd,dn->bn", x, codes.t())


def _pixel_config(cfg: TokenFlowConfig, ch: int, res_blocks: int) -> VQGANConfig:
    return VQGANConfig("llamagen", n_embed=cfg.codebook_size, embed_dim=cfg.pixel_dim, ch=ch, ch_mult=cfg.ch_mult,
                       num_res_blocks=res_blocks, z_channels=cfg.z_channels, attn_levels=(len(cfg.ch_mult) - 1,))


class TokenFlow(nn.Module):
    """Keys as the released checkpoints (SigLIP's tower under transformers >= 5 names: see ``loading``)."""

    def __init__(self, cfg: TokenFlowConfig = CLIPB_ENHANCED):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(_pixel_config(cfg, cfg.encoder_ch, cfg.encoder_res_blocks))
        self.decoder = Decoder(_pixel_config(cfg, cfg.decoder_ch, cfg.decoder_res_blocks))
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.pixel_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.pixel_dim, cfg.z_channels, 1)
        if cfg.teacher == "clipb":
            self.encoder_vqkd = ClipVisionTower(cfg.tower_width, cfg.tower_layers, cfg.tower_heads, cfg.tower_patch,
                                                cfg.tower_grid)
            self.scaling_layer = None
        else:
            self.encoder_vqkd = siglip_tower(cfg.tower_width, cfg.tower_mlp, cfg.tower_layers, cfg.tower_heads,
                                             cfg.tower_patch, cfg.tower_grid * cfg.tower_patch)
            self.scaling_layer = SiglipScaling()
        self.decoder_vqkd = SemanticDecoder(cfg.semantic_dim, cfg.tower_width, cfg.sem_depth, cfg.sem_heads,
                                            cfg.sem_mlp_ratio, cfg.tower_grid)
        w = cfg.tower_width
        self.encode_task_layer = nn.Sequential(nn.Linear(w, w), nn.Tanh(), nn.Linear(w, cfg.semantic_dim))
        self.decode_task_layer = nn.Sequential(nn.Linear(w, w), nn.Tanh(), nn.Linear(w, cfg.semantic_out))
        self.quantize = DualCodebookQuantizer(cfg.codebook_size, cfg.semantic_dim, cfg.pixel_dim, cfg.usage_buffer)

    # ------------------------------------------------------------ encode

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 40, g, g): [semantic 32 | pixel 8] before quantisation."""
        if self.config.teacher == "clipb":
            feats = self.encoder_vqkd(x)
        else:
            feats = siglip_features(self.encoder_vqkd, self.scaling_layer(x))
        sem = self.encode_task_layer(feats.to(self.encode_task_layer[-1].weight.dtype))
        g = int(round(sem.shape[1] ** 0.5))
        sem = sem.transpose(1, 2).reshape(sem.shape[0], -1, g, g)
        if self.config.teacher == "siglip":  # the CNN sees the image bicubically resized to 16 x the patch grid
            side = self.config.pixel_factor * g
            x = F.interpolate(x, size=(side, side), mode="bicubic")
        pix = self.quant_conv(self.encoder(x))
        return torch.cat([sem, pix], dim=1)

    def quantize_scales(self, h: torch.Tensor, scales: Optional[tuple[int, ...]] = None
                        ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Residual quantisation coarse to fine: area-pool the residual to s x s, quantise, bicubic back to the
        last scale, accumulate. Returns per-scale indices (B, s*s) and the accumulated quant."""
        scales = tuple(scales or self.config.scales)
        side = scales[-1]
        if h.shape[-2:] != (side, side):
            raise ValueError(f"the scale schedule ends at {side} but the latent is {h.shape[-2]}x{h.shape[-1]}")
        residual, total, out = h, 0.0, []
        for s in scales:
            idx, q = self.quantize(F.interpolate(residual, size=(s, s), mode="area"))
            q = F.interpolate(q, size=(side, side), mode="bicubic")
            total = total + q
            residual = residual - q
            out.append(idx)
        return out, total

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (indices (B, sum s^2) coarse to fine, accumulated quant (B, 40, g, g))."""
        indices, quant = self.quantize_scales(self.latent(x))
        return torch.cat(indices, dim=1), quant

    def lookup_scales(self, indices: torch.Tensor, scales: Optional[tuple[int, ...]] = None) -> torch.Tensor:
        """Upstream ``decode_code``'s latent: each scale's codes bicubic-upsampled to the last scale, summed."""
        scales = tuple(scales or self.config.scales)
        if indices.shape[1] != sum(s * s for s in scales):
            raise ValueError(f"{indices.shape[1]} tokens do not fill the scales {scales}")
        total, at = 0.0, 0
        for s in scales:
            q = self.quantize.lookup(indices[:, at:at + s * s], s)
            total = total + F.interpolate(q, size=(scales[-1], scales[-1]), mode="bicubic")
            at += s * s
        return total

    # ------------------------------------------------------------ decode

    def decode(self, quant: torch.Tensor) -> torch.Tensor:
        """Pixel half -> image (B, 3, S, S), unclamped; SigLIP's output is bicubically resized to its input size."""
        pix = quant[:, self.config.semantic_dim:]
        y = self.decoder(self.post_quant_conv(pix))
        if self.config.teacher == "siglip":
            y = F.interpolate(y, size=(self.config.input_size, self.config.input_size), mode="bicubic")
        return y

    def decode_semantic(self, quant: torch.Tensor) -> torch.Tensor:
        """Semantic half -> reconstructed teacher features (B, g*g, semantic_out)."""
        return self.decode_task_layer(self.decoder_vqkd(quant[:, :self.config.semantic_dim]))

"""VAR's multi-scale residual VQVAE (FoundationVision/VAR ``vae_ch160v4096z32``), written from
shared/reference/tokenizer-zoo/var.md.

Encoding quantises the latent f coarse to fine: at scale k (side pn_k) the residual is area-downsampled
to pn_k x pn_k, each position takes its nearest code (squared L2 against the raw codebook), the code map is
bicubic-upsampled back to the latent size, passed through that scale's phi and subtracted from the residual.
The last scale uses the full-size residual and codes without resampling. Decoding rebuilds f_hat from the
indices with the same operations in the same order, so it equals the encoder's f_hat bit for bit, which is
what upstream's evaluation path ``img_to_reconstructed_img(last_one=True)`` decodes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tokbench.models.checkpoint_keys import load_exact
from tokbench.models.vavae.ldm import ConvStackConfig, Decoder, Encoder, infer_conv_stack

# Upstream's training presets (utils/arg_util.py, ``--pn 256/512/1024``), keyed by the latent side.
SCHEDULES: dict[int, tuple[int, ...]] = {
    16: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
    32: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32),
    64: (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64),
}

# Usage statistics the training loop keeps per scale; nothing at inference reads them.
TRAINING_ONLY_KEYS = ("quantize.ema_vocab_hit_SV",)


@dataclass(frozen=True)
class VARVQConfig:
    ch: int = 160
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    vocab_size: int = 4096
    z_channels: int = 32
    n_phi: int = 4  # upstream share_quant_resi: phi convs shared over the scales
    quant_resi: float = 0.5  # phi(h) = (1 - r) h + r conv(h)
    quant_conv_ks: int = 3

    def conv_stack(self) -> ConvStackConfig:
        return ConvStackConfig(ch=self.ch, ch_mult=self.ch_mult, num_res_blocks=self.num_res_blocks,
                               z_channels=self.z_channels, double_z=False, attn_levels=(len(self.ch_mult) - 1,),
                               fused_qkv=True, swish="silu")

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


def phi_ticks(n_phi: int) -> np.ndarray:
    """Where each shared phi sits on [0, 1] (upstream's ticks; 4 convs are spaced by thirds of a slot)."""
    k = n_phi
    return np.linspace(1 / 3 / k, 1 - 1 / 3 / k, k) if k == 4 else np.linspace(1 / 2 / k, 1 - 1 / 2 / k, k)


def phi_indices(n_phi: int, n_scales: int) -> list[int]:
    """The phi each scale uses: nearest tick to si / (S - 1), in float64 as upstream (ties go to the lower)."""
    ticks = phi_ticks(n_phi)
    if n_scales == 1:
        raise ValueError("a multi-scale schedule needs at least 2 scales")
    return [int(np.argmin(np.abs(ticks - si / (n_scales - 1)))) for si in range(n_scales)]


class Phi(nn.Conv2d):
    """The residual 3x3 conv applied to each scale's upsampled codes."""

    def __init__(self, channels: int, ratio: float):
        super().__init__(channels, channels, 3, padding=1)
        self.ratio = abs(ratio)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mul(1 - self.ratio) + super().forward(h).mul_(self.ratio)


class QuantResi(nn.Module):
    def __init__(self, n: int, channels: int, ratio: float):
        super().__init__()
        self.qresi_ls = nn.ModuleList(Phi(channels, ratio) for _ in range(n))


class MultiScaleQuantizer(nn.Module):
    def __init__(self, cfg: VARVQConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.z_channels)
        self.quant_resi = QuantResi(cfg.n_phi, cfg.z_channels, cfg.quant_resi)

    def _scale_codes(self, idx: torch.Tensor, last: bool, full: tuple[int, int], phi: Phi) -> torch.Tensor:
        """Codes of one scale (B, pn, pn) as their contribution to f_hat (B, C, H, W); the last scale is
        already full size and is not resampled."""
        h = self.embedding(idx).permute(0, 3, 1, 2)
        h = h.contiguous() if last else F.interpolate(h, size=full, mode="bicubic").contiguous()
        return phi(h)

    def quantize(self, f: torch.Tensor, patch_nums: Sequence[int]) -> list[torch.Tensor]:
        """Per-scale indices, each (B, pn * pn) row-major, of the latent ``f`` (B, C, H, W)."""
        b, c, hh, ww = f.shape
        phis = phi_indices(len(self.quant_resi.qresi_ls), len(patch_nums))
        codebook = self.embedding.weight
        rest = f.detach().clone()
        out = []
        for si, pn in enumerate(patch_nums):
            last = si == len(patch_nums) - 1
            z = rest if last else F.interpolate(rest, size=(pn, pn), mode="area")
            z = z.permute(0, 2, 3, 1).reshape(-1, c)
            dist = torch.sum(z.square(), dim=1, keepdim=True) + torch.sum(codebook.square(), dim=1)
            dist.addmm_(z, codebook.T, alpha=-2, beta=1)
            idx = torch.argmin(dist, dim=1).view(b, pn, pn)
            rest.sub_(self._scale_codes(idx, last, (hh, ww), self.quant_resi.qresi_ls[phis[si]]))
            out.append(idx.reshape(b, pn * pn))
        return out

    def f_hat(self, indices: Sequence[torch.Tensor], patch_nums: Sequence[int]) -> torch.Tensor:
        """The latent the indices stand for: the sum over scales of phi(upsampled codes)."""
        side = patch_nums[-1]
        phis = phi_indices(len(self.quant_resi.qresi_ls), len(patch_nums))
        out = None
        for si, (idx, pn) in enumerate(zip(indices, patch_nums)):
            last = si == len(patch_nums) - 1
            h = self._scale_codes(idx.view(idx.shape[0], pn, pn), last, (side, side),
                                  self.quant_resi.qresi_ls[phis[si]])
            out = torch.zeros_like(h) if out is None else out
            out.add_(h)
        return out


class VARVQVAE(nn.Module):
    def __init__(self, cfg: VARVQConfig = VARVQConfig()):
        super().__init__()
        self.config = cfg
        stack = cfg.conv_stack()
        self.encoder = Encoder(stack)
        self.decoder = Decoder(stack)
        self.quantize = MultiScaleQuantizer(cfg)
        k = cfg.quant_conv_ks
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, k, padding=k // 2)
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, k, padding=k // 2)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(x))

    def encode_indices(self, x: torch.Tensor, patch_nums: Sequence[int]) -> list[torch.Tensor]:
        """Per-scale token indices of images in [-1, 1]; the last scale must equal the latent side."""
        f = self.latent(x)
        if f.shape[-1] != patch_nums[-1] or f.shape[-2] != patch_nums[-1]:
            raise ValueError(f"scale schedule ends at {patch_nums[-1]} but the latent is "
                             f"{f.shape[-2]}x{f.shape[-1]} (input {x.shape[-2]}x{x.shape[-1]})")
        return self.quantize.quantize(f, patch_nums)

    def decode_indices(self, indices: Sequence[torch.Tensor], patch_nums: Sequence[int]) -> torch.Tensor:
        """Images in [-1, 1] (clamped, as every upstream inference path does)."""
        return self.decoder(self.post_quant_conv(self.quantize.f_hat(indices, patch_nums))).clamp_(-1, 1)


def split_flat(flat: torch.Tensor, patch_nums: Sequence[int]) -> list[torch.Tensor]:
    """(B, sum pn^2) -> one (B, pn^2) tensor per scale."""
    return list(torch.split(flat, [pn * pn for pn in patch_nums], dim=1))


@dataclass
class LoadedVAR:
    model: VARVQVAE
    config: VARVQConfig
    dropped_keys: list


def build_var(obj: Any, released: VARVQConfig = VARVQConfig()) -> LoadedVAR:
    """A ``VARVQVAE`` from the released bare state_dict, sized as the file says; strict keys and shapes.

    ``released`` supplies what the tensors cannot tell (phi ratio). Raises ValueError on any mismatch.
    """
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("expected a bare state_dict (a mapping of tensors), as upstream saves it")
    state = {k: v for k, v in obj.items() if k not in TRAINING_ONLY_KEYS}
    stack = infer_conv_stack(state, fused_qkv=True, swish="silu", double_z=False)
    if "quantize.embedding.weight" not in state:
        raise ValueError("no quantize.embedding.weight in the state_dict")
    vocab, cvae = state["quantize.embedding.weight"].shape
    n_phi = sum(1 for k in state if k.startswith("quantize.quant_resi.qresi_ls.") and k.endswith(".weight"))
    ks = state["quant_conv.weight"].shape[-1] if "quant_conv.weight" in state else released.quant_conv_ks
    cfg = replace(released, ch=stack.ch, ch_mult=stack.ch_mult, num_res_blocks=stack.num_res_blocks,
                  vocab_size=vocab, z_channels=cvae, n_phi=n_phi, quant_conv_ks=ks)
    if stack.attn_levels != (len(stack.ch_mult) - 1,):
        raise ValueError(f"attention at levels {stack.attn_levels}; VAR has it at the lowest resolution only")
    with torch.device("meta"):
        model = VARVQVAE(cfg)
    return LoadedVAR(load_exact(model, state), cfg, sorted(set(obj) - set(state)))

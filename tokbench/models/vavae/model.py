"""VA-VAE (LightningDiT's vision-foundation-aligned VAE): an LDM AutoencoderKL with f16, 32 latent channels.

Written from shared/reference/tokenizer-zoo/vavae.md. ``encode`` gives the diagonal-Gaussian posterior
(channels split [mean | logvar], logvar clamped to [-30, 20]); ``decode`` is post_quant_conv -> decoder with
no clamp (the caller clamps).

Why not diffusers' ``AutoencoderKL`` behind a key rename (it holds these weights, see tests/test_vavae.py): its
attention kernel and ``nn.SiLU`` differ from upstream's ``bmm``/softmax and ``x * sigmoid(x)`` in the last
bits (about 1e-6 on the posterior, 1e-5 on the image), while this stack is bit-identical to LightningDiT's
code and is the same stack VAR needs (with a fused qkv projection), so one implementation serves both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from torch import nn

from tokbench.models.checkpoint_keys import load_exact
from tokbench.models.vavae.ldm import ConvStackConfig, Decoder, Encoder, infer_conv_stack

RELEASED = ConvStackConfig(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z_channels=32, double_z=True,
                           attn_levels=(4,), fused_qkv=False, swish="x_sigmoid")

# Modules of the training checkpoint class that inference never runs: the LPIPS/discriminator loss, the frozen
# DINOv2 the latents were aligned to, and the projection into its feature space.
TRAINING_ONLY_PREFIXES = ("loss.", "foundation_model.", "linear_proj.")


class VAVAE(nn.Module):
    def __init__(self, cfg: ConvStackConfig = RELEASED):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.z_channels, 1)
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 1)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the latent posterior for images in [-1, 1]."""
        mean, logvar = torch.chunk(self.quant_conv(self.encoder(x)), 2, dim=1)
        return mean, torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))

    def encode_latents(self, x: torch.Tensor, sample: bool = False,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The posterior mean, or ``mean + std * noise`` (upstream's ``posterior.sample()``) when ``sample``;
        the noise is drawn on the CPU (as upstream does) from ``generator``, a CPU generator or None."""
        mean, std = self.posterior(x)
        if not sample:
            return mean
        noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32)
        return mean + std * noise.to(mean.device, mean.dtype)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z))


@dataclass
class LoadedVAVAE:
    model: VAVAE
    config: ConvStackConfig
    dropped_keys: int


def split_state(obj: Any) -> dict[str, torch.Tensor]:
    """The model's tensors from the released bare state_dict or a Lightning ``{"state_dict": ...}`` file,
    training-only modules dropped."""
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("expected a state_dict (a mapping of tensors), bare or under 'state_dict'")
    return {k: v for k, v in obj.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}


def build_vavae(obj: Any) -> LoadedVAVAE:
    """A ``VAVAE`` sized as the file says, loaded with strict keys and shapes (ValueError otherwise)."""
    state = split_state(obj)
    cfg = infer_conv_stack(state, fused_qkv=False, swish="x_sigmoid", double_z=True)
    with torch.device("meta"):
        model = VAVAE(cfg)
    total = len(obj["state_dict"] if isinstance(obj, Mapping) and "state_dict" in obj else obj)
    return LoadedVAVAE(load_exact(model, state), cfg, total - len(state))

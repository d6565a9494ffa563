"""VA-VAE (hustvl/LightningDiT, f16, 32 latent channels, KL) in the tokenizer registry.

Checkpoint: Hugging Face ``hustvl/vavae-imagenet256-f16d32-dinov2`` file ``vavae-imagenet256-f16d32-dinov2.pt``
when online, ``--checkpoint PATH`` or ``<weights dir>/vavae/<file>`` offline; a bare state_dict or a Lightning
``{"state_dict": ...}`` whose loss / DINOv2 / projection modules are dropped. The model is tokbench's own
re-implementation (``tokbench.models.vavae``).

Upstream (and TokBench's script) reconstruct from ``posterior.sample()``; tokbench decodes the posterior mean by
default (deterministic) and offers ``sample=true,seed=N`` (noise from a CPU generator seeded at every encode).
Rate: latent elements x 32 bits (LightningDiT stores its extracted latents as float32).
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Optional

import torch

from tokbench.checkpoints import load_checkpoint
from tokbench.errors import BadInputError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, continuous_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, register_weights, resolve

HUB_REPO = "hustvl/vavae-imagenet256-f16d32-dinov2"
FILE = "vavae-imagenet256-f16d32-dinov2.pt"
LATENT_BITS = 32

WEIGHTS = register_weights(WeightFile(
    name="vavae-imagenet256-f16d32-dinov2", filename=f"vavae/{FILE}", hub_repo=HUB_REPO, hub_filename=FILE,
    license="MIT", description="VA-VAE f16d32 aligned to DINOv2 (LightningDiT tokenizer)"))

SPEC = TokenizerSpec(
    name="vavae-f16d32", family="vavae", kind="continuous", input_range=(-1.0, 1.0), spatial_factor=16,
    spatial_multiple=16, latent_channels=32, latent_bits=LATENT_BITS, checkpoint=WEIGHTS, license="MIT",
    aliases=("va-vae", "vavae"), published="VA-VAE",
    description="VA-VAE (LightningDiT) KL autoencoder, f16, 32 float channels, DINOv2-aligned, ImageNet 256; "
                "posterior mean by default, sample=true,seed=N as upstream")

DECODE_PATH = "post_quant_conv -> decoder -> clamp(-1, 1) (the model has no output clamp; upstream clamps in uint8)"


class VAVAETokenizer(ModuleTokenizer):
    """(B, 3, T, H, W) in [-1, 1] -> posterior mean (or a seeded sample) -> images clamped to [-1, 1]."""

    image_convolutions = True

    def __init__(self, spec: TokenizerSpec, model, *, sample: bool = False, seed: int = 0,
                 checkpoint_path=None, checkpoint_sha256=None, notes: Optional[dict] = None):
        super().__init__(spec, channels_last=False, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.sample, self.seed = bool(sample), int(seed)
        self.notes = dict(notes or {})

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        inp = self.prepare(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        generator = torch.Generator("cpu").manual_seed(self.seed) if self.sample else None
        with torch.inference_mode(), self.precision():
            z = self.model.encode_latents(inp, sample=self.sample, generator=generator)
        z = z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)
        return Encoded(bits=continuous_bits(z, LATENT_BITS), latents=z)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        if encoded.latents is None:
            raise BadInputError(f"tokenizer {self.spec.name}: decode needs latents")
        z = encoded.latents
        b, c, t, h, w = z.shape
        z = self.prepare(z.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        with torch.inference_mode(), self.precision():
            y = self.model.decode_latents(z)
        y = y.float().clamp(-1, 1)
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model="tokbench.models.vavae", model_config=self.model.config.to_dict(), decode_path=DECODE_PATH,
                 posterior=f"sample(seed={self.seed})" if self.sample else "mean", **self.notes)
        return d


def load_vavae(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False, sample: bool = False,
               seed: int = 0) -> VAVAETokenizer:
    """Build the tokenizer of entry ``spec`` from an upstream VA-VAE checkpoint file."""
    from tokbench.data.dataset import sha256_file
    from tokbench.models.vavae import RELEASED, build_vavae

    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_vavae(obj)
    except ValueError as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    cfg = loaded.config
    if cfg.spatial_factor != spec.spatial_factor:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} downsamples by {cfg.spatial_factor}, "
                            f"not {spec.spatial_factor}")
    notes = {"dropped_training_keys": loaded.dropped_keys}
    deviations = {k: (getattr(cfg, k), getattr(RELEASED, k)) for k in ("ch", "ch_mult", "num_res_blocks",
                                                                       "z_channels", "attn_levels")
                  if getattr(cfg, k) != getattr(RELEASED, k)}
    if deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in deviations.items()}
        spec = dataclasses.replace(spec, latent_channels=cfg.z_channels)
    return VAVAETokenizer(spec, loaded.model, sample=sample, seed=seed, checkpoint_path=str(path),
                          checkpoint_sha256=sha256_file(path), notes=notes)


@register_tokenizer(SPEC)
def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             sample: bool = False, seed: int = 0) -> VAVAETokenizer:
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_vavae(spec, path, allow_unsafe=allow_unsafe, sample=sample, seed=seed)

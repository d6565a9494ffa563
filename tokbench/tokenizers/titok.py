"""TiTok 1-D tokenizers (bytedance/1d-tokenizer) in the registry: the nine released ImageNet-256 tokenizers.

Checkpoints: Hugging Face ``yucornetto/tokenizer_<name>_imagenet`` file ``model.safetensors`` when online,
``--checkpoint PATH`` or ``<weights dir>/titok/tokenizer_<name>_imagenet.safetensors`` offline. The legacy
two-stage models (L-32 / B-64 / S-128) were also released as ``fun-research/TiTok`` ``tokenizer_titok_<x>.bin``,
the same flat state_dict; either loads. Their MaskGIT-VQGAN pixel codebook and decoder are inside the released
tokenizer file (upstream builds them whenever ``finetune_decoder`` is set, as in these releases); the separate
``maskgit-vqgan-imagenet-f16-256.bin`` is only the stage-1 training target and is not needed here. The model is
tokbench's own re-implementation (``tokbench.models.titok``).

Input: 256x256 only (spec ``input_size``: the harness fits every image and frame into 256x256), range [0, 1];
output clamped to [0, 1] as upstream's demo and TokBench's script do. VQ entries encode to token indices and
decode the indices (``decode_tokens``, TokBench's ``titok_rec.py``); rate = tokens x log2(codebook). VAE entries
decode the posterior mean by default (upstream's README decodes a random sample: ``sample=true,seed=N``); rate =
latent elements x 32 bits (upstream computes the posterior in float32 with autocast off).
TokBench's "TiTok" row is ``tokenizer_titok_l32_imagenet`` (its ``titok_rec.py`` loads that folder).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from tokbench.checkpoints import load_checkpoint
from tokbench.errors import BadInputError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, continuous_bits, discrete_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, register_weights, resolve

LICENSE = "Apache-2.0 (code and Hub model cards; README: research use, ImageNet-trained)"
INPUT_SIZE = 256
LATENT_BITS = 32
PUBLISHED = "titok_l32"


@dataclass(frozen=True)
class Release:
    name: str  # upstream's name, hub repo yucornetto/tokenizer_<name>_imagenet
    encoder: str  # ViT size
    decoder: str
    tokens: int
    channels: int  # per token (VAE: of the mean)
    codebook: Optional[int]  # None: VAE
    rfid: float  # README model zoo, ImageNet 256 reconstruction FID

    @property
    def legacy(self) -> bool:
        return self.codebook == 4096

    @property
    def hub_repo(self) -> str:
        return f"yucornetto/tokenizer_{self.name}_imagenet"

    def config(self):
        from tokbench.models.titok import VIT_SIZES, TiTokConfig

        return TiTokConfig(encoder=VIT_SIZES[self.encoder], decoder=VIT_SIZES[self.decoder], num_tokens=self.tokens,
                           token_channels=self.channels, quantizer="vq" if self.codebook else "vae",
                           codebook_size=self.codebook, l2_norm=self.legacy, legacy=self.legacy)


RELEASES = (
    Release("titok_l32", "large", "large", 32, 12, 4096, 2.21),
    Release("titok_b64", "base", "base", 64, 12, 4096, 1.70),
    Release("titok_s128", "small", "small", 128, 12, 4096, 1.71),
    Release("titok_bl64_vq8k", "base", "large", 64, 64, 8192, 2.06),
    Release("titok_bl128_vq8k", "base", "large", 128, 64, 8192, 1.49),
    Release("titok_sl256_vq8k", "small", "large", 256, 64, 8192, 1.03),
    Release("titok_ll32_vae_c16", "large", "large", 32, 16, None, 1.61),
    Release("titok_bl64_vae_c16", "base", "large", 64, 16, None, 1.25),
    Release("titok_bl128_vae_c16", "base", "large", 128, 16, None, 0.84),
)
BY_NAME = {r.name.replace("_", "-"): r for r in RELEASES}


def release_spec(r: Release) -> TokenizerSpec:
    weights = register_weights(WeightFile(
        name=f"titok-{r.name}", filename=f"titok/tokenizer_{r.name}_imagenet.safetensors", hub_repo=r.hub_repo,
        hub_filename="model.safetensors", license=LICENSE,
        description=f"TiTok tokenizer {r.name} (ImageNet 256)"
                    + (f"; also fun-research/TiTok tokenizer_{r.name}.bin" if r.legacy else "")))
    size = f"{r.encoder[0].upper()}{r.decoder[0].upper()}" if r.encoder != r.decoder else r.encoder[0].upper()
    if r.legacy:
        what = (f"TiTok-{size}-{r.tokens}, {r.tokens} tokens x {r.codebook} codes (l2-normalised), two-stage: "
                f"decodes through the MaskGIT-VQGAN pixel decoder in the file")
    elif r.codebook:
        what = f"TiTok-{size}-{r.tokens} VQ, {r.tokens} tokens x {r.codebook} codes, single-stage pixel decoder"
    else:
        what = (f"TiTok-{size}-{r.tokens} VAE, {r.tokens} tokens x {r.channels} float channels; posterior mean "
                f"by default, sample=true,seed=N as upstream's README")
    published = r.name == PUBLISHED
    return TokenizerSpec(
        name=r.name.replace("_", "-"), family="titok",
        kind="discrete" if r.codebook else "continuous", input_range=(0.0, 1.0), spatial_factor=1,
        spatial_multiple=1, square_only=True, input_size=INPUT_SIZE, latent_channels=r.channels,
        codebook_size=r.codebook, latent_bits=None if r.codebook else LATENT_BITS, checkpoint=weights,
        license=LICENSE, published="TiTok" if published else None,
        description=f"{what}; 256x256 input only (fitted by the harness); README rFID {r.rfid}"
                    + ("; TokBench's 'TiTok' row (its titok_rec.py loads tokenizer_titok_l32_imagenet)"
                       if published else ""))


DECODE_PATHS = {"vq": "token indices -> codebook rows (l2-normalised for legacy models) -> decoder, as "
                      "upstream's decode_tokens and TokBench's titok_rec.py",
                "vae": "posterior (mean or seeded sample) -> decoder"}


class TiTokTokenizer(ModuleTokenizer):
    """(B, 3, T, 256, 256) in [0, 1] -> (B, T, N) token indices or (B, 16, T, N) latents -> images in [0, 1]."""

    def __init__(self, spec: TokenizerSpec, model, *, sample: bool = False, seed: int = 0,
                 checkpoint_path: Optional[str] = None, checkpoint_sha256: Optional[str] = None,
                 notes: Optional[dict] = None):
        super().__init__(spec, channels_last=False, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.vq = model.config.quantizer == "vq"
        self.sample, self.seed = bool(sample), int(seed)
        self.notes = dict(notes or {})

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        side = self.model.config.image_size
        if (h, w) != (side, side):
            raise BadInputError(f"tokenizer {self.spec.name}: {h}x{w} input; TiTok takes {side}x{side} only")
        return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    def encode(self, x: torch.Tensor) -> Encoded:
        b, t = x.shape[0], x.shape[2]
        frames = self.prepare(self._frames(x))
        with torch.inference_mode(), self.precision():
            if self.vq:
                indices = self.model.encode_indices(frames)
                indices = indices.reshape(b, t, -1)
                return Encoded(bits=discrete_bits(indices, self.model.config.codebook_size), indices=indices)
            mean, std = self.model.posterior(frames)
        if self.sample:
            noise = torch.randn(mean.shape, generator=torch.Generator("cpu").manual_seed(self.seed))
            mean = mean + std * noise.to(mean.device)
        z = mean.reshape(b, t, mean.shape[1], -1).permute(0, 2, 1, 3)  # (B, C, T, N)
        return Encoded(bits=continuous_bits(z, LATENT_BITS), latents=z)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        with torch.inference_mode(), self.precision():
            if self.vq:
                if encoded.indices is None:
                    raise BadInputError(f"tokenizer {self.spec.name}: decode needs token indices")
                b, t, n = encoded.indices.shape
                y = self.model.decode_indices(encoded.indices.reshape(b * t, n).to(self.device))
            else:
                if encoded.latents is None:
                    raise BadInputError(f"tokenizer {self.spec.name}: decode needs latents")
                b, c, t, n = encoded.latents.shape
                z = encoded.latents.permute(0, 2, 1, 3).reshape(b * t, c, 1, n)
                y = self.model.decode(self.prepare(z))
        y = y.float().clamp(0.0, 1.0)
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model="tokbench.models.titok", model_config=self.model.config.to_dict(),
                 decode_path=DECODE_PATHS[self.model.config.quantizer], output_clamp=[0.0, 1.0], **self.notes)
        if not self.vq:
            d["posterior"] = f"sample(seed={self.seed})" if self.sample else "mean"
        return d


def load_titok(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False, sample: bool = False,
               seed: int = 0) -> TiTokTokenizer:
    """Build the tokenizer of entry ``spec`` from a TiTok state_dict file (safetensors or .bin)."""
    from tokbench.data.dataset import sha256_file
    from tokbench.models.checkpoint_keys import CheckpointMismatch
    from tokbench.models.titok import build_model

    release = BY_NAME[spec.name]
    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_model(obj, release.config())
    except CheckpointMismatch as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    notes = {}
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: [list(v) if isinstance(v, tuple) else v for v in pair]
                                    for k, pair in loaded.size_deviations.items()}
    return TiTokTokenizer(spec, loaded.model, sample=sample, seed=seed, checkpoint_path=str(path),
                          checkpoint_sha256=sha256_file(path), notes=notes)


def _vq_factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False):
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_titok(spec, path, allow_unsafe=allow_unsafe)


def _vae_factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
                 sample: bool = False, seed: int = 0):
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_titok(spec, path, allow_unsafe=allow_unsafe, sample=sample, seed=seed)


for _r in RELEASES:
    register_tokenizer(release_spec(_r))(_vq_factory if _r.codebook else _vae_factory)

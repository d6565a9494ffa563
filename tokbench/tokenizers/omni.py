"""OmniTokenizer (VQ and VAE) in the tokenizer registry, one entry per released checkpoint.

Checkpoints: Hugging Face ``Daniel0724/OmniTokenizer`` when online, ``--checkpoint PATH`` or
``<weights dir>/omnitokenizer/<file>`` offline. The model is tokbench's own re-implementation
(``tokbench.models.omnitokenizer``); the file's flags build it and are checked against the entry here.
VAE entries decode the posterior *mean* by default (deterministic); ``sample=true`` with ``seed`` draws
``mean + std * noise`` as upstream's published numbers did.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from tokbench.checkpoints import load_checkpoint
from tokbench.data.dataset import sha256_file
from tokbench.errors import BadInputError
from tokbench.models.omnitokenizer import CheckpointMismatch, OmniTokenizerConfig, build_model
from tokbench.models.omnitokenizer.config import ATTN_IMPLS
from tokbench.tokenizers.base import Encoded, Tokenizer, TokenizerSpec, continuous_bits, discrete_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.weights import WeightFile, register_weights, resolve

HUB_REPO = "Daniel0724/OmniTokenizer"
LATENT_BITS = 32  # VAE latents are float32 (nothing upstream stores or casts them lower)


@dataclass(frozen=True)
class Release:
    name: str
    file: str
    vae: bool
    stage1: bool  # image-only stage: temporal patch 2, "rel" position bias, trained without SDPA
    data: str
    rfid: float
    rfvd: Optional[float] = None
    aliases: tuple[str, ...] = ()
    attn_note: str = ""


_STAGE1_GUESS = ("attention path unverified; einsum assumed like imagenet_only.ckpt, the other stage-1 file "
                 "(option attn_impl=sdpa to switch)")

# omnitokenizer.md §2 (README model zoo numbers: rFID on the image set, rFVD on the video set).
RELEASES = (
    Release("omni", "imagenet_k600.ckpt", False, False, "ImageNet + K600", 1.23, 25.97,
            aliases=("omni-vq-imagenet-k600",)),
    Release("omni-vq-imagenet-ucf", "imagenet_ucf.ckpt", False, False, "ImageNet + UCF-101", 1.11, 42.35),
    Release("omni-vq-imagenet-mit", "imagenet_mit.ckpt", False, False, "ImageNet + Moments-in-Time", 1.26, 19.87),
    Release("omni-vq-imagenet-sthv2", "imagenet_sthv2.ckpt", False, False, "ImageNet + SSv2", 1.21, 20.30),
    Release("omni-vq-celebahq-ucf", "celebahq_ucf.ckpt", False, False, "CelebA-HQ + UCF-101", 1.93, 45.59),
    Release("omni-vq-celebahq-k600", "celebahq_k600.ckpt", False, False, "CelebA-HQ + K600", 1.82, 89.13),
    Release("omni-vq-ffhq-ucf", "ffhq_ucf.ckpt", False, False, "FFHQ + UCF-101", 1.91, 57.93),
    Release("omni-vq-ffhq-k600", "ffhq_k600.ckpt", False, False, "FFHQ + K600", 2.69, 87.58),
    Release("omni-vae-imagenet-ucf", "imagenet_ucf_vae.ckpt", True, False, "ImageNet + UCF-101", 0.69, 23.44),
    Release("omni-vae-imagenet-k600", "imagenet_k600_vae.ckpt", True, False, "ImageNet + K600", 0.78, 13.02),
    Release("omni-vq-imagenet-only", "imagenet_only.ckpt", False, True, "ImageNet", 1.28,
            attn_note="README: trained without SDPA (einsum path needed to reproduce rFID 1.28)"),
    Release("omni-vq-celebahq", "celebahq.ckpt", False, True, "CelebA-HQ", 1.85, attn_note=_STAGE1_GUESS),
    Release("omni-vq-ffhq", "ffhq.ckpt", False, True, "FFHQ", 2.58, attn_note=_STAGE1_GUESS),
)


def release_config(r: Release) -> OmniTokenizerConfig:
    """The flags of ``scripts/recons/*.sh`` for this file (omnitokenizer.md §3)."""
    if r.stage1:
        return OmniTokenizerConfig(temporal_patch_size=2, spatial_pos="rel", attn_impl="einsum", use_vae=r.vae)
    return OmniTokenizerConfig(temporal_patch_size=4, spatial_pos="rope", attn_impl="sdpa", use_vae=r.vae)


def release_spec(r: Release) -> TokenizerSpec:
    cfg = release_config(r)
    weights = register_weights(WeightFile(
        name=f"omnitokenizer-{Path(r.file).stem}", filename=f"omnitokenizer/{r.file}", hub_repo=HUB_REPO,
        hub_filename=r.file, license="MIT", description=f"OmniTokenizer {'VAE' if r.vae else 'VQ'} ({r.data})"))
    scores = f"rFID {r.rfid}" + (f", rFVD {r.rfvd}" if r.rfvd is not None else "")
    what = (f"OmniTokenizer {'VAE, 8-channel float latents' if r.vae else 'VQ, 8192 codes'}, trained on {r.data} "
            f"({'stage 1, image-only' if r.stage1 else 'joint image-video'}; README {scores})")
    return TokenizerSpec(
        name=r.name, family="omnitokenizer", kind="continuous" if r.vae else "discrete",
        modalities=frozenset({"image"}) if r.stage1 else frozenset({"image", "video"}),
        input_range=(-0.5, 0.5), spatial_factor=cfg.patch_size, temporal_factor=cfg.temporal_patch_size,
        causal_first_frame=True, spatial_multiple=cfg.spatial_multiple, square_only=True,
        latent_channels=cfg.latent_channels, codebook_size=None if r.vae else cfg.n_codes,
        latent_bits=LATENT_BITS if r.vae else None, default_clip_frames=17, checkpoint=weights, license="MIT",
        aliases=r.aliases, published="OmniTokenizer" if r.name == "omni-vq-imagenet-k600" else None,
        description=what + (f"; {r.attn_note}" if r.attn_note else ""))


class OmniTokenizerAdapter(Tokenizer):
    """Feeds (B, 3, T, H, W) clips in [-0.5, 0.5] through an ``OmniTokenizer`` and back.

    Outputs are clamped to [-0.5, 0.5] (the model has no output activation). VAE latents are the
    posterior mean unless ``sample`` is set; sampling draws from one generator seeded once, so a run in
    the same order is reproducible.
    """

    def __init__(self, spec: TokenizerSpec, model, config: OmniTokenizerConfig, *, sample: bool = False,
                 seed: int = 0, checkpoint_path: Optional[str] = None, checkpoint_sha256: Optional[str] = None,
                 notes: Optional[dict] = None):
        super().__init__(spec, checkpoint_path=checkpoint_path, checkpoint_sha256=checkpoint_sha256)
        if sample and not config.use_vae:
            raise BadInputError(f"tokenizer {spec.name}: option sample applies to the VAE checkpoints only")
        self.model, self.config = model, config
        self.sample, self.seed = bool(sample), int(seed)
        self.notes = dict(notes or {})
        self._generator = torch.Generator().manual_seed(self.seed)

    def to(self, device="cpu", dtype=torch.float32) -> "OmniTokenizerAdapter":
        super().to(device, dtype)
        self.model.to(self.device, self.dtype)
        if self.sample:
            self._generator = torch.Generator(self.device).manual_seed(self.seed)
        return self

    def _checked(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.model.check_input(x)
        except ValueError as e:
            raise BadInputError(f"tokenizer {self.spec.name}: {e}") from None

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> Encoded:
        x = self._checked(x).to(self.device, self.dtype)
        if self.config.use_vae:
            generator = self._generator if self.sample else None
            latents = self.model.encode_latents(x, sample=self.sample, generator=generator)
            return Encoded(bits=continuous_bits(latents, LATENT_BITS), latents=latents)
        indices = self.model.encode_indices(x)
        return Encoded(bits=discrete_bits(indices, self.config.n_codes), indices=indices)

    @torch.inference_mode()
    def decode(self, encoded: Encoded) -> torch.Tensor:
        if self.config.use_vae:
            if encoded.latents is None:
                raise BadInputError(f"tokenizer {self.spec.name}: decode needs latents")
            y = self.model.decode_latents(encoded.latents.to(self.device, self.dtype))
        else:
            if encoded.indices is None:
                raise BadInputError(f"tokenizer {self.spec.name}: decode needs token indices")
            y = self.model.decode_indices(encoded.indices.to(self.device))
        return y.float().clamp_(-0.5, 0.5)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model="tokbench.models.omnitokenizer", model_config=self.config.to_dict(),
                 latent_mode=("sample(seed=%d)" % self.seed if self.sample else "mean") if self.config.use_vae
                 else "vq-indices", **self.notes)
        return d


def load_omni(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False, sample: bool = False,
              seed: int = 0, attn_impl: Optional[str] = None) -> OmniTokenizerAdapter:
    """Build the tokenizer of registry entry ``spec`` from a checkpoint file."""
    release = next(r for r in RELEASES if r.name == spec.name)
    if sample and not release.vae:
        raise BadInputError(f"tokenizer {spec.name}: option sample applies to the VAE checkpoints only")
    if attn_impl is not None and attn_impl not in ATTN_IMPLS:
        raise BadInputError(f"tokenizer {spec.name}: option attn_impl must be one of {', '.join(ATTN_IMPLS)}, "
                            f"not {attn_impl!r}")
    expected = release_config(release)
    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_model(obj, expected, attn_impl=attn_impl)
    except CheckpointMismatch as e:
        hint = ""
        if e.identity:
            vae = e.identity.get("use_vae", (release.vae,))[0]
            stage1 = e.identity.get("temporal_patch_size", (2 if release.stage1 else 4,))[0] == 2
            names = [r.name for r in RELEASES if r.vae == vae and r.stage1 == stage1 and r.name != spec.name]
            hint = f"; it looks like a checkpoint for {' / '.join(names)}" if names else ""
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}{hint}") from None
    except ValueError as e:  # unsupported upstream option in the file's flags
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path}: {e}") from None
    notes = {"attn_impl": loaded.config.attn_impl, "hparams_from_checkpoint": loaded.hparams_found,
             "dropped_training_keys": loaded.dropped_keys}
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in loaded.size_deviations.items()}
        spec = dataclasses.replace(spec, latent_channels=loaded.config.latent_channels,
                                   codebook_size=None if loaded.config.use_vae else loaded.config.n_codes)
    return OmniTokenizerAdapter(spec, loaded.model, loaded.config, sample=sample, seed=seed,
                                checkpoint_path=str(path), checkpoint_sha256=sha256_file(path), notes=notes)


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             sample: bool = False, seed: int = 0, attn_impl: Optional[str] = None) -> OmniTokenizerAdapter:
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_omni(spec, path, allow_unsafe=allow_unsafe, sample=sample, seed=seed, attn_impl=attn_impl)


for _release in RELEASES:
    register_tokenizer(release_spec(_release))(_factory)

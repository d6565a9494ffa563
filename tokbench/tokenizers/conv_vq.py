"""The adapter and registration shared by the taming-style convolutional VQ families (``llamagen.py``,
``taming.py``, ``chameleon.py``): tokbench's own ``tokbench.models.vqgan`` behind the Tokenizer interface.

* Input [-1, 1]; images are coded one frame at a time (clips (B, 3, T, H, W) become B*T images).
* Rate: tokens x log2(codebook size), from the indices actually produced.
* Decode path: upstream has two (decode the straight-through ``z + (e - z)`` that ``encode`` returns, or decode
  the codebook rows of the indices). Each release names the one its TokBench evaluation script used; the
  option ``decode_from=quant|indices`` switches, and ``describe()`` records which ran.
* Output is returned unclamped, as the models produce it; the harness clamps to [-1, 1] and rounds to uint8.
* Files load with ``torch.load(weights_only=True)``. Lightning 1.0 checkpoints (taming's ``last.ckpt``) key their
  callback states by the ``ModelCheckpoint`` *class*; that one name is resolved to an inert placeholder
  class, so the file loads without the opt-in and without pytorch_lightning.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch

from tokbench.checkpoints import SAFE_GLOBALS, load_checkpoint
from tokbench.data.dataset import sha256_file
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, discrete_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, register_weights, resolve

if TYPE_CHECKING:
    from tokbench.models.vqgan import VQGANConfig

DECODE_PATHS = ("quant", "indices")


class LightningCallbackKey:
    """Stands in for ``pytorch_lightning...ModelCheckpoint`` when unpickling: used only as a dict key, never
    instantiated or called."""


LIGHTNING_GLOBALS = tuple((LightningCallbackKey, f"{pkg}.callbacks.model_checkpoint.ModelCheckpoint")
                          for pkg in ("pytorch_lightning", "lightning.pytorch"))


@dataclass(frozen=True)
class Release:
    """One released checkpoint: registry entry, where the file comes from, and how upstream reads it."""

    name: str
    family: str
    file: str  # local path under the weights dir
    config: "VQGANConfig"  # the released architecture
    decode_from: str  # the path upstream's (TokBench's) evaluation decodes: "quant" or "indices"
    decode_note: str  # which upstream script does that
    containers: tuple[str, ...] = ("state_dict",)  # where the weights sit in the file, upstream's order
    training_prefixes: tuple[str, ...] = ()  # keys dropped as training-only
    hub_repo: Optional[str] = None
    hub_filename: Optional[str] = None
    page: str = ""  # download page for files not on the hub
    license: str = ""
    description: str = ""
    published: Optional[str] = None
    aliases: tuple[str, ...] = ()


RELEASES: dict[str, Release] = {}


def release_spec(r: Release) -> TokenizerSpec:
    cfg = r.config
    weights = register_weights(WeightFile(
        name=r.name, filename=r.file, hub_repo=r.hub_repo, hub_filename=r.hub_filename, license=r.license,
        description=r.description + (f"; download page {r.page}" if r.page else "")))
    return TokenizerSpec(
        name=r.name, family=r.family, kind="discrete", modalities=frozenset({"image"}), input_range=(-1.0, 1.0),
        spatial_factor=cfg.downsampling, spatial_multiple=cfg.downsampling, latent_channels=cfg.embed_dim,
        codebook_size=cfg.n_embed, checkpoint=weights, license=r.license, aliases=r.aliases,
        published=r.published, description=r.description)


def register_release(r: Release) -> None:
    RELEASES[r.name] = r
    register_tokenizer(release_spec(r))(_factory)


class ConvVQTokenizer(ModuleTokenizer):
    """(B, 3, T, H, W) in [-1, 1] -> token indices (B, T, H/f, W/f) and back."""

    image_convolutions = True

    def __init__(self, spec: TokenizerSpec, model, release: Release, *, decode_from: str,
                 channels_last: Optional[bool] = None, checkpoint_path=None, checkpoint_sha256=None,
                 notes: Optional[dict] = None):
        super().__init__(spec, channels_last=channels_last, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model, self.release, self.decode_from = model, release, decode_from
        self.modules = [model]
        self.notes = dict(notes or {})

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        inp = self.prepare(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        with torch.inference_mode(), self.precision():
            indices, quant = self.model.encode(inp)
        indices = indices.reshape(b, t, *indices.shape[1:])
        return Encoded(bits=discrete_bits(indices, self.model.config.n_embed), indices=indices,
                       latents=quant if self.decode_from == "quant" else None, payload={"frames": t})

    def decode(self, encoded: Encoded) -> torch.Tensor:
        b, t = encoded.indices.shape[:2]
        with torch.inference_mode(), self.precision():
            if self.decode_from == "quant":
                if encoded.latents is None:
                    raise BadInputError(f"tokenizer {self.spec.name}: decode_from=quant needs the encoder's latents")
                y = self.model.decode(encoded.latents.to(self.device))
            else:
                indices = encoded.indices.to(self.device)
                y = self.model.decode_indices(indices.reshape(b * t, *indices.shape[2:]))
        y = y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        return y.float()

    def describe(self) -> dict:
        d = super().describe()
        path = ("straight-through quant z + (e - z) from encode (upstream forward())" if self.decode_from == "quant"
                else "codebook rows of the indices (upstream get_codebook_entry -> decode)")
        d.update(model="tokbench.models.vqgan", model_config=self.model.config.to_dict(), decode_from=self.decode_from,
                 decode_path=path, upstream_eval_decode=f"{self.release.decode_from} ({self.release.decode_note})",
                 output="unclamped model output; the harness clamps to [-1, 1] and rounds to uint8", **self.notes)
        return d


def _other_releases(r: Release, identity: dict) -> list[str]:
    """Entries of the same family the file would fit, judged by the identity fields it disagreed on."""
    names = []
    for other in RELEASES.values():
        if other.family != r.family or other.name == r.name:
            continue
        if all(getattr(other.config, k) == got for k, (got, _) in identity.items()):
            names.append(other.name)
    return names


def load_release(spec: TokenizerSpec, path, *, allow_unsafe: bool = False, decode_from: Optional[str] = None,
                 channels_last: Optional[bool] = None) -> ConvVQTokenizer:
    """Build the tokenizer of registry entry ``spec`` from checkpoint file ``path``."""
    from tokbench.models.vqgan import CheckpointMismatch, build_model

    release = RELEASES[spec.name]
    decode_from = decode_from or release.decode_from
    if decode_from not in DECODE_PATHS:
        raise BadInputError(f"tokenizer {spec.name}: option decode_from must be one of {', '.join(DECODE_PATHS)}, "
                            f"not {decode_from!r}")
    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, allowed_globals=SAFE_GLOBALS + LIGHTNING_GLOBALS,
                          what=spec.name)
    try:
        loaded = build_model(obj, release.config, containers=release.containers,
                             training_prefixes=release.training_prefixes)
    except CheckpointMismatch as e:
        others = _other_releases(release, e.identity) if e.identity else []
        hint = f"; it looks like a checkpoint for {' / '.join(others)}" if others else ""
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}{hint}") from None
    notes = {"weights_from": loaded.source, "dropped_training_keys": loaded.dropped_keys}
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in loaded.size_deviations.items()}
        spec = dataclasses.replace(spec, latent_channels=loaded.config.embed_dim)
    return ConvVQTokenizer(spec, loaded.model, release, decode_from=decode_from, channels_last=channels_last,
                           checkpoint_path=str(path), checkpoint_sha256=sha256_file(path), notes=notes)


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             decode_from: Optional[str] = None, channels_last: Optional[bool] = None) -> ConvVQTokenizer:
    release = RELEASES[spec.name]
    try:
        path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    except MissingWeightsError as e:
        if release.page and checkpoint is None:
            raise MissingWeightsError(f"{e}; download page: {release.page}") from None
        raise
    return load_release(spec, path, allow_unsafe=allow_unsafe, decode_from=decode_from, channels_last=channels_last)

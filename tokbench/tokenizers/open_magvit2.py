"""Open-MAGVIT2 LFQ image tokenizers (TencentARC SEED-Voken) in the tokenizer registry, one entry per release.

Checkpoints: the Hugging Face repos below when online, ``--checkpoint PATH`` or
``<weights dir>/open-magvit2/<file>`` offline. The model is tokbench's own re-implementation
(``tokbench.models.open_magvit2``), run with the EMA weights as upstream's evaluation does (``ema_scope()``).
Which files TokBench's "O-MAGVIT2" rows used is not documented; the mapping below is by elimination
(open-magvit2.md), and the pretrain row's choice of the 2^18 file is unconfirmed.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tokbench.checkpoints import load_checkpoint
from tokbench.data.dataset import sha256_file
from tokbench.errors import BadInputError
from tokbench.tokenizers.base import TokenizerSpec
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.weights import WeightFile, register_weights, resolve

LICENSE = "Apache-2.0"


@dataclass(frozen=True)
class Release:
    name: str
    hub_repo: str
    file: str
    ch_mult: tuple[int, ...]
    bits: int
    what: str
    published: Optional[str] = None
    note: str = ""


RELEASES = (
    Release("open-magvit2-imagenet-256-l", "TencentARC/Open-MAGVIT2-Tokenizer-256-resolution", "imagenet_256_L.ckpt",
            (1, 1, 2, 2, 4), 18, "ImageNet 256x256, f16", "O-MAGVIT2"),
    Release("open-magvit2-imagenet-128-l", "TencentARC/Open-MAGVIT2-Tokenizer-128-resolution", "imagenet_128_L.ckpt",
            (1, 2, 2, 4), 18, "ImageNet 128x128, f8", "O-MAGVIT2 (F8)"),
    Release("open-magvit2-pretrain-262144", "TencentARC/Open-MAGVIT2-Tokenizer-262144-Pretrain",
            "pretrain256_262144.ckpt", (1, 1, 2, 2, 4), 18, "large-scale pretraining, 256x256, f16",
            "O-MAGVIT2 (Pretrain)", note="leaderboard row assumed (the 2^14 pretrain file is the alternative)"),
    Release("open-magvit2-pretrain-16384", "TencentARC/Open-MAGVIT2-Tokenizer-16384-Pretrain",
            "pretrain256_16384.ckpt", (1, 1, 2, 2, 4), 14, "large-scale pretraining, 256x256, f16"),
)


def release_config(r: Release):
    from tokbench.models.open_magvit2 import OpenMagvit2Config

    return OpenMagvit2Config(ch_mult=r.ch_mult, z_channels=r.bits)


def release_spec(r: Release) -> TokenizerSpec:
    factor = 2 ** (len(r.ch_mult) - 1)
    weights = register_weights(WeightFile(
        name=f"open-magvit2-{Path(r.file).stem}", filename=f"open-magvit2/{r.file}", hub_repo=r.hub_repo,
        hub_filename=r.file, license=LICENSE, description=f"Open-MAGVIT2 LFQ tokenizer ({r.what}, 2^{r.bits} codes)"))
    return TokenizerSpec(
        name=r.name, family="open-magvit2", kind="discrete", input_range=(-1.0, 1.0), spatial_factor=factor,
        spatial_multiple=factor, latent_channels=r.bits, codebook_size=2 ** r.bits, checkpoint=weights,
        license=LICENSE, published=r.published,
        description=(f"Open-MAGVIT2 LFQ ({r.what}; {r.bits} bits/token, EMA weights, decodes the straight-through "
                     f"latent)" + (f"; {r.note}" if r.note else "")))


def load_open_magvit2(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False,
                      from_indices: bool = False):
    """Build the tokenizer of registry entry ``spec`` from an upstream checkpoint file."""
    from tokbench.models.checkpoint_keys import CheckpointMismatch
    from tokbench.models.open_magvit2 import build_model
    from tokbench.tokenizers.lfq import BitTokenTokenizer

    release = next(r for r in RELEASES if r.name == spec.name)
    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_model(obj, release_config(release))
    except CheckpointMismatch as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    notes = {"weights_used": loaded.weights, "dropped_training_keys": loaded.dropped_keys,
             "superseded_training_weights": loaded.superseded_keys}
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in loaded.size_deviations.items()}
        spec = dataclasses.replace(spec, latent_channels=loaded.config.z_channels)
    return BitTokenTokenizer(spec, loaded.model, bits=loaded.config.z_channels, from_indices=from_indices,
                             min_latent_positions=2, checkpoint_path=str(path), checkpoint_sha256=sha256_file(path),
                             notes=notes)


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             from_indices: bool = False):
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_open_magvit2(spec, path, allow_unsafe=allow_unsafe, from_indices=from_indices)


for _release in RELEASES:
    register_tokenizer(release_spec(_release))(_factory)

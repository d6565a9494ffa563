"""MaskBit bit-token tokenizers (markweberdev/maskbit, "MaskBit-Tokenizer" 10/12/14/16/18 bits) in the registry.

Checkpoints: ``markweber/maskbit_tokenizer_<N>bit`` on Hugging Face when online, ``--checkpoint PATH`` or
``<weights dir>/maskbit/maskbit_tokenizer_<N>bit.bin`` offline. The model is tokbench's own re-implementation
(``tokbench.models.maskbit``). Which bit width TokBench's "MaskBit" row used is not documented; it is put on
the 12-bit entry, the file upstream's README evaluates the tokenizer with (unconfirmed).
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Optional

from tokbench.checkpoints import load_checkpoint
from tokbench.data.dataset import sha256_file
from tokbench.errors import BadInputError
from tokbench.tokenizers.base import TokenizerSpec
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.weights import WeightFile, register_weights, resolve

LICENSE = "Apache-2.0 (code; weights: research use, README)"
BIT_WIDTHS = (10, 12, 14, 16, 18)
RFID = {10: 1.76, 12: 1.52, 14: 1.37, 16: 1.29, 18: 1.16}  # README model zoo, ImageNet 256
PUBLISHED_BITS = 12


def release_spec(bits: int) -> TokenizerSpec:
    file = f"maskbit_tokenizer_{bits}bit.bin"
    weights = register_weights(WeightFile(
        name=f"maskbit-tokenizer-{bits}bit", filename=f"maskbit/{file}",
        hub_repo=f"markweber/maskbit_tokenizer_{bits}bit", hub_filename=file, license=LICENSE,
        description=f"MaskBit VQGAN+ tokenizer, {bits}-bit LFQ tokens"))
    note = "; 18-bit file: one bit is constant (README), 17 used" if bits == 18 else ""
    if bits == PUBLISHED_BITS:
        note += "; TokBench 'MaskBit' row assumed to be this file (unconfirmed)"
    return TokenizerSpec(
        name=f"maskbit-{bits}bit", family="maskbit", kind="discrete", input_range=(0.0, 1.0), spatial_factor=16,
        spatial_multiple=16, latent_channels=bits, codebook_size=2 ** bits, checkpoint=weights, license=LICENSE,
        published="MaskBit" if bits == PUBLISHED_BITS else None,
        description=f"MaskBit-Tokenizer, {bits} bits/token, f16 (README rFID {RFID[bits]}; decodes the "
                    f"straight-through latent){note}")


def load_maskbit(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False, from_indices: bool = False):
    from tokbench.models.checkpoint_keys import CheckpointMismatch
    from tokbench.models.maskbit import MaskBitConfig, build_model
    from tokbench.tokenizers.lfq import BitTokenTokenizer

    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_model(obj, MaskBitConfig(token_size=spec.latent_channels))
    except CheckpointMismatch as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    notes = {}
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in loaded.size_deviations.items()}
    return BitTokenTokenizer(spec, loaded.model, bits=loaded.config.token_size, from_indices=from_indices,
                             checkpoint_path=str(path), checkpoint_sha256=sha256_file(path), notes=notes)


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             from_indices: bool = False):
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_maskbit(spec, path, allow_unsafe=allow_unsafe, from_indices=from_indices)


for _bits in BIT_WIDTHS:
    register_tokenizer(release_spec(_bits))(_factory)

"""UniTok's multi-codebook tokenizer (FoundationVision/UniTok, UniTok-Large) in the tokenizer registry.

Checkpoint: Hugging Face ``FoundationVision/unitok_tokenizer`` file ``unitok_tokenizer.pth`` (upstream's training
checkpoint: ``{'args': flags, 'trainer': {'unitok': state_dict}}``) when online, ``--checkpoint PATH`` or
``<weights dir>/unitok/unitok_tokenizer.pth`` offline. The model is tokbench's own re-implementation
(``tokbench.models.unitok``); the CLIP half of the file is checked and not kept.

Geometry: upstream's inference resizes the short side to 288 and centre-crops 256; here the harness does the
geometry instead (the protocol's fit + pad onto an S x S canvas), so that crop is not applied. The model has no
position table (one broadcast vector), so any square multiple of 16 works; its decoder assumes a square grid.
Values: upstream feeds ``2x - 1`` (no mean/std normalisation), which is the spec's [-1, 1] range.
Rate: 8 codebooks per token position: H/16 x W/16 x 8 x log2(4096) bits (24,576 at 256).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Optional

import torch

from tokbench.checkpoints import load_checkpoint
from tokbench.errors import BadInputError
from tokbench.tokenizers.base import Encoded, TokenizerSpec
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, register_weights, resolve

HUB_REPO = "FoundationVision/unitok_tokenizer"
FILE = "unitok_tokenizer.pth"
LICENSE = "MIT (code); weights: see the hub model card"

WEIGHTS = register_weights(WeightFile(
    name="unitok-tokenizer", filename=f"unitok/{FILE}", hub_repo=HUB_REPO, hub_filename=FILE, license=LICENSE,
    description="UniTok-Large tokenizer, 8 codebooks x 4096, training checkpoint {'args', 'trainer': {'unitok'}}"))

SPEC = TokenizerSpec(
    name="unitok", family="unitok", kind="discrete", input_range=(-1.0, 1.0), spatial_factor=16,
    spatial_multiple=16, square_only=True, latent_channels=64, codebook_size=4096, codebooks=8,
    checkpoint=WEIGHTS,
    license=LICENSE, aliases=("unitok-tokenizer", "unitok-large"), published="UniTok",
    description="UniTok-Large multi-codebook VQ, f16, 8 codebooks x 4096 codes per token position "
                "(rate 8 x 12 bits per position); square inputs, multiple of 16; upstream's resize-288 + "
                "centre-crop-256 preprocessing is replaced by the harness geometry")

PREPROCESSING = ("harness geometry (fit + pad to a square canvas) instead of upstream's resize short side to 288 "
                 "+ centre crop 256; values 2x - 1 as upstream's normalize_01_into_pm1, no mean/std")
DECODE_PATH = ("upstream inference path: img_to_idx (encoder -> quant_proj -> per-codebook cosine argmax) then "
               "idx_to_img (normalised code rows -> post_quant_proj -> decoder -> clamp(-1, 1)); projections and "
               "codebook search in float32")


class UniTokTokenizer(ModuleTokenizer):
    """(B, 3, T, S, S) frames in [-1, 1] -> indices (B, T, 8, (S/16)^2) -> frames."""

    image_convolutions = True

    def __init__(self, spec: TokenizerSpec, model, *, checkpoint_path=None, checkpoint_sha256=None,
                 notes: Optional[dict] = None):
        super().__init__(spec, channels_last=False, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.notes = dict(notes or {})

    def to(self, device="cpu", dtype=torch.float32) -> "UniTokTokenizer":
        super().to(device, dtype)
        for part in (self.model.quant_proj, self.model.quantizer, self.model.post_quant_proj):
            part.float()  # upstream runs these with autocast off
        return self

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        f = self.spec.spatial_factor
        if h != w or h % f:
            raise BadInputError(f"tokenizer {self.spec.name}: needs square inputs with sides a multiple of {f}, "
                                f"got {h}x{w}")
        inp = self.prepare(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        with torch.inference_mode():
            with self.precision():
                tokens = self.model.features(inp)
            with torch.autocast(self.device.type, enabled=False):
                indices = self.model.quantizer.indices(self.model.project(tokens.float()))
        per = indices[0].numel() * math.log2(self.spec.codebook_size)
        bits = torch.full((b,), t * per, dtype=torch.float64)
        return Encoded(bits=bits, indices=indices.reshape(b, t, *indices.shape[1:]), payload={"grid": (h // f, w // f)})

    def decode(self, encoded: Encoded) -> torch.Tensor:
        if encoded.indices is None:
            raise BadInputError(f"tokenizer {self.spec.name}: decode needs token indices")
        b, t = encoded.indices.shape[:2]
        idx = encoded.indices.reshape(b * t, *encoded.indices.shape[2:]).to(self.device)
        with torch.inference_mode():
            with torch.autocast(self.device.type, enabled=False):
                tokens = self.model.idx_to_tokens(idx)
            with self.precision():
                # in the weights' dtype: CPU autocast leaves layer_norm's input dtype as it is
                y = self.model.decoder(tokens.to(self.dtype), encoded.payload["grid"])
        y = y.float().clamp(-1, 1)
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model="tokbench.models.unitok", model_config=self.model.config.to_dict(),
                 preprocessing=PREPROCESSING, normalisation="2x - 1 (input range [-1, 1]); no mean/std",
                 decode_path=DECODE_PATH, codebooks=self.model.config.num_codebooks,
                 rate="tokens x codebooks x log2(codebook_size)", **self.notes)
        return d


def load_unitok(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False) -> UniTokTokenizer:
    """Build the tokenizer of entry ``spec`` from an upstream UniTok checkpoint."""
    from tokbench.data.dataset import sha256_file
    from tokbench.models.checkpoint_keys import CheckpointMismatch
    from tokbench.models.unitok import build_unitok

    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_unitok(obj)
    except CheckpointMismatch as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    del obj
    cfg = loaded.config
    notes = {"checkpoint_nesting": loaded.nesting, "dropped_clip_keys": loaded.dropped_clip_keys,
             "dropped_training_keys": loaded.dropped_training_keys, "checkpoint_flags": loaded.flags}
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in loaded.size_deviations.items()}
        spec = dataclasses.replace(spec, latent_channels=cfg.vocab_width, codebook_size=cfg.codebook_size)
    return UniTokTokenizer(spec, loaded.model, checkpoint_path=str(path), checkpoint_sha256=sha256_file(path),
                           notes=notes)


@register_tokenizer(SPEC)
def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False) -> UniTokTokenizer:
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_unitok(spec, path, allow_unsafe=allow_unsafe)

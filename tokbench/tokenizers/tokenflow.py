"""TokenFlow's dual-codebook image tokenizers (ByteFlow-AI/TokenFlow) in the registry, one entry per released file.

Checkpoints: Hugging Face ``ByteFlow-AI/TokenFlow`` when online, ``--checkpoint PATH`` or
``<weights dir>/tokenflow/<file>`` offline. The model is tokbench's own re-implementation
(``tokbench.models.tokenflow``); facts: shared/reference/tokenizer-zoo/tokenflow.md.

* ``tokenflow-clipb-32k-enhanced``: the "TokenFlow" tokenizer TokBench evaluates; CLIP ViT-B/16 teacher,
  enhanced pixel decoder, 256x256 with the interpolated position table (upstream's ``infer_interpolate``),
  scales 1,2,4,...,16 = 817 tokens.
* ``tokenflow-siglip-32k``: TokenFlow-XL's tokenizer; SigLIP so400m/14 teacher (transformers'
  ``SiglipVisionModel``), 384x384, 15 scales to 27 = 2227 tokens.

Geometry: the scale schedule ends at the latent side, so upstream takes one input side per file; the spec's
``input_size`` makes the harness fit every image into it whatever the evaluation size (the manifest says so).
TokBench's own runs at 512 and 1024 used a locally modified copy whose changes are not published; they are not
reproduced. Rate: one index per token into 32768 (semantic, pixel) pairs, tokens x 15 bits.
Output: upstream's evaluation decodes ``encode``'s accumulated quant (default); ``from_indices=true`` rebuilds
it from the indices first (upstream ``decode_code``), which differs by float rounding only. The model does not
clamp; the harness clamps when it rounds to uint8 (upstream's script truncates ``127.5 x + 128`` instead).

Checked against upstream's own modules (commit 9812da0; SigLIP under its pinned transformers 4.43.4, tokbench's
under 5.x) on random full-size weights in the released layouts, loaded through ``--checkpoint``, CPU float32:
identical indices, and reconstructions, ``decode_code`` images and semantic features bit-identical (clipb at
256, batch 1 and 2; siglip at 384, batch 1).
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

HUB_REPO = "ByteFlow-AI/TokenFlow"
LICENSE = "Apache-2.0"
DECODE_PATHS = {False: "encode's accumulated straight-through quant -> pixel half -> post_quant_conv -> CNN decoder "
                       "(upstream reconstruction_vq_ddp.py)",
                True: "per-scale indices -> normalised code pairs, bicubic to the last scale, summed (upstream "
                      "decode_code) -> pixel half -> post_quant_conv -> CNN decoder"}


SIDE_AND_TOKENS = {"clipb": (256, 817), "siglip": (384, 2227)}  # the released configs' (input side, tokens)


def _release(name: str, file: str, teacher: str, what: str, **spec_kw) -> TokenizerSpec:
    weights = register_weights(WeightFile(
        name=name, filename=f"tokenflow/{file}", hub_repo=HUB_REPO, hub_filename=file, license=LICENSE,
        description=f"TokenFlow dual-codebook tokenizer ({what}); weights under 'ema'/'model'/'state_dict'"))
    size, tokens = SIDE_AND_TOKENS[teacher]
    return TokenizerSpec(
        name=name, family="tokenflow", kind="discrete", input_range=(-1.0, 1.0), spatial_factor=16,
        spatial_multiple=16, square_only=True, input_size=size, latent_channels=40, codebook_size=32768,
        checkpoint=weights, license=LICENSE,
        description=f"TokenFlow {what}: one index per token into 32768 (32-d semantic, 8-d pixel) code pairs, "
                    f"{tokens} tokens over multiple scales at its fixed {size}x{size} input", **spec_kw)


SPECS = {
    "clipb": _release("tokenflow-clipb-32k-enhanced", "tokenflow_clipb_32k_enhanced.pt", "clipb",
                      "CLIP ViT-B/16 teacher, enhanced decoder", aliases=("tokenflow",), published="TokenFlow"),
    "siglip": _release("tokenflow-siglip-32k", "tokenflow_siglip_32k.pt", "siglip",
                       "SigLIP so400m/14 teacher, TokenFlow-XL", aliases=("tokenflow-xl",)),
}


class TokenFlowTokenizer(ModuleTokenizer):
    """(B, 3, 1, S, S) images in [-1, 1] at the file's fixed S -> shared indices, coarse to fine -> images."""

    image_convolutions = True

    def __init__(self, spec: TokenizerSpec, model, *, from_indices: bool = False, checkpoint_path=None,
                 checkpoint_sha256=None, notes: Optional[dict] = None):
        super().__init__(spec, channels_last=False, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.from_indices = bool(from_indices)
        self.options = {"from_indices": self.from_indices} if self.from_indices else {}
        self.notes = dict(notes or {})

    def to(self, device="cpu", dtype=torch.float32) -> "TokenFlowTokenizer":
        super().to(device, dtype)
        self.model.quantize.float()  # the nearest-pair search stays float32, as upstream's quantiser
        return self

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        side = self.model.config.input_size
        if (h, w) != (side, side):
            raise BadInputError(f"tokenizer {self.spec.name}: takes {side}x{side} inputs only, got {h}x{w}")
        inp = self.prepare(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        with torch.inference_mode(), self.precision():
            h_lat = self.model.latent(inp)
            with torch.autocast(self.device.type, enabled=False):
                indices, quant = self.model.quantize_scales(h_lat.float())
        indices = torch.cat(indices, dim=1)
        bits = torch.full((b,), t * indices.shape[1] * math.log2(self.spec.codebook_size), dtype=torch.float64)
        return Encoded(bits=bits, indices=indices.reshape(b, t, -1), latents=quant)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        if encoded.indices is None:
            raise BadInputError(f"tokenizer {self.spec.name}: decode needs token indices")
        b, t, _ = encoded.indices.shape
        with torch.inference_mode():
            if self.from_indices or encoded.latents is None:
                with torch.autocast(self.device.type, enabled=False):
                    quant = self.model.lookup_scales(encoded.indices.reshape(b * t, -1).to(self.device))
            else:
                quant = encoded.latents
            with self.precision():
                y = self.model.decode(quant.to(self.dtype) if self.dtype != torch.float32 else quant)
        y = y.float()
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model="tokbench.models.tokenflow", model_config=self.model.config.to_dict(),
                 decode_path=DECODE_PATHS[self.from_indices], tokens=self.model.config.tokens, **self.notes)
        return d


def load_tokenflow(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False,
                   from_indices: bool = False) -> TokenFlowTokenizer:
    """Build the tokenizer of entry ``spec`` from an upstream TokenFlow checkpoint file."""
    from tokbench.data.dataset import sha256_file
    from tokbench.models.checkpoint_keys import CheckpointMismatch
    from tokbench.models.tokenflow import CLIPB_ENHANCED, SIGLIP, build_model

    released = CLIPB_ENHANCED if spec.name == SPECS["clipb"].name else SIGLIP
    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_model(obj, released)
    except CheckpointMismatch as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    notes = {"weights_from": loaded.container}
    if loaded.renamed_keys:
        notes["renamed_keys"] = (f"{loaded.renamed_keys} x encoder_vqkd.vision_model. <-> encoder_vqkd. (the "
                                 f"installed transformers' SiglipVisionModel layout)")
    if loaded.size_deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in loaded.size_deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in loaded.size_deviations.items()}
        spec = dataclasses.replace(spec, codebook_size=loaded.config.codebook_size,
                                   latent_channels=loaded.config.semantic_dim + loaded.config.pixel_dim)
    return TokenFlowTokenizer(spec, loaded.model, from_indices=from_indices, checkpoint_path=str(path),
                              checkpoint_sha256=sha256_file(path), notes=notes)


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             from_indices: bool = False) -> TokenFlowTokenizer:
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_tokenflow(spec, path, allow_unsafe=allow_unsafe, from_indices=from_indices)


for _spec in SPECS.values():
    register_tokenizer(_spec)(_factory)

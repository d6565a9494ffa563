"""The adapter shared by tokbench's lookup-free (bit-token) image tokenizers: Open-MAGVIT2 and MaskBit.

Both upstream evaluations reconstruct with ``decode(encode(x)[0])``, the straight-through latent
``z + (sign(z) - z)``, and clamp the output to the input range; that is the default here. ``from_indices=true``
decodes the token indices instead (the exact +-1 code vectors; the two can differ by float rounding).
Rates are tokens x bits per token.
"""
from __future__ import annotations

from typing import Optional

import torch

from tokbench.errors import BadInputError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, discrete_bits
from tokbench.tokenizers.torch_module import ModuleTokenizer

DECODE_PATHS = {False: "straight-through latent z + (sign(z) - z), as upstream's evaluation",
                True: "token indices -> +-1 code vectors (from_indices=true)"}


class BitTokenTokenizer(ModuleTokenizer):
    image_convolutions = True

    def __init__(self, spec: TokenizerSpec, model, *, bits: int, from_indices: bool = False,
                 min_latent_positions: int = 1, checkpoint_path: Optional[str] = None,
                 checkpoint_sha256: Optional[str] = None, notes: Optional[dict] = None):
        super().__init__(spec, checkpoint_path=checkpoint_path, checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.bits = int(bits)
        self.from_indices = bool(from_indices)
        self.min_latent_positions = min_latent_positions
        self.notes = dict(notes or {})

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        f = self.spec.spatial_factor
        if h % f or w % f:
            raise BadInputError(f"tokenizer {self.spec.name}: {h}x{w} input; sides must be multiples of {f}")
        if (h // f) * (w // f) < self.min_latent_positions:
            raise BadInputError(f"tokenizer {self.spec.name}: {h}x{w} input gives a {h // f}x{w // f} latent; "
                                f"the decoder's adaptive norms need at least 2 latent positions")
        return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    def encode(self, x: torch.Tensor) -> Encoded:
        b, t = x.shape[0], x.shape[2]
        frames = self.prepare(self._frames(x))
        with torch.inference_mode(), self.precision():
            latent, indices = self.model.encode(frames)
        indices = indices.reshape(b, t, *indices.shape[1:])
        latent = latent.reshape(b, t, *latent.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, bits, T, h, w)
        return Encoded(bits=discrete_bits(indices, 2 ** self.bits), indices=indices, latents=latent)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        if encoded.indices is None:
            raise BadInputError(f"tokenizer {self.spec.name}: decode needs token indices")
        b, t = encoded.indices.shape[:2]
        with torch.inference_mode(), self.precision():
            if self.from_indices or encoded.latents is None:
                y = self.model.decode_indices(encoded.indices.reshape(b * t, *encoded.indices.shape[2:])
                                              .to(self.device))
            else:
                z = encoded.latents.permute(0, 2, 1, 3, 4)
                y = self.model.decode(z.reshape(b * t, *z.shape[2:]).to(self.device))
        lo, hi = self.spec.input_range
        y = y.float().clamp(lo, hi)
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model=type(self.model).__module__, model_config=self.model.config.to_dict(),
                 decode_path=DECODE_PATHS[self.from_indices or False],
                 token_index="sum_c bit_c * 2**c, channel 0 least significant; bit = value > 0",
                 output_clamp=list(self.spec.input_range), **self.notes)
        return d

"""VAR's multi-scale residual VQVAE (FoundationVision/VAR) in the tokenizer registry.

Checkpoint: Hugging Face ``FoundationVision/var`` file ``vae_ch160v4096z32.pth`` (a bare state_dict) when
online, ``--checkpoint PATH`` or ``<weights dir>/var/vae_ch160v4096z32.pth`` offline. The model is tokbench's
own re-implementation (``tokbench.models.var``).

Geometry: the scale schedule must end at the latent side, so inputs are square multiples of 16 (the spec says
``square_only`` and ``spatial_multiple=16``; at evaluation size S the harness hands over an S x S canvas). The
schedule is upstream's training preset for that size (256: 1..16 in 10 scales, 512: 10 scales to 32,
1024: 14 scales to 64); any other size needs the option ``patch_nums=1-2-3-4`` (scale sides, '-'-separated).
Rate: every scale's tokens count, sum(pn^2) x log2(4096) bits (680 tokens at 256).
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

HUB_REPO = "FoundationVision/var"
FILE = "vae_ch160v4096z32.pth"

WEIGHTS = register_weights(WeightFile(
    name="var-vae-ch160v4096z32", filename=f"var/{FILE}", hub_repo=HUB_REPO, hub_filename=FILE, license="MIT",
    description="VAR multi-scale VQVAE (ch 160, 4096 codes x 32-d), bare state_dict"))

SPEC = TokenizerSpec(
    name="var-ch160v4096z32", family="var", kind="discrete", input_range=(-1.0, 1.0), spatial_factor=16,
    spatial_multiple=16, square_only=True, latent_channels=32, codebook_size=4096, checkpoint=WEIGHTS,
    license="MIT", aliases=("var",), published="VAR",
    description="VAR multi-scale residual VQVAE, f16, 4096 codes, tokens of every scale (680 at 256: schedule "
                "1,2,3,4,5,6,8,10,13,16); square inputs, schedule by size (256/512/1024 presets, option patch_nums)")

DECODE_PATH = ("f_hat rebuilt from the per-scale indices with the encoder's operations (bicubic up, shared phi), "
               "= img_to_reconstructed_img(last_one=True); post_quant_conv -> decoder -> clamp(-1, 1)")


def parse_patch_nums(value) -> Optional[tuple[int, ...]]:
    """``"1-2-3-4"`` (or one int) -> (1, 2, 3, 4); None stays None."""
    if value is None:
        return None
    try:
        nums = (int(value),) if isinstance(value, int) else tuple(int(p) for p in str(value).split("-"))
    except ValueError:
        nums = ()
    if len(nums) < 2 or any(n < 1 for n in nums) or list(nums) != sorted(set(nums)):
        raise BadInputError(f"tokenizer var: option patch_nums={value!r} must be at least 2 increasing scale "
                            f"sides joined by '-', e.g. 1-2-3-4")
    return nums


class VARTokenizer(ModuleTokenizer):
    """(B, 3, 1, S, S) images in [-1, 1] -> per-scale indices, concatenated coarse to fine -> images."""

    image_convolutions = True

    def __init__(self, spec: TokenizerSpec, model, *, patch_nums: Optional[tuple[int, ...]] = None,
                 checkpoint_path=None, checkpoint_sha256=None, notes: Optional[dict] = None):
        super().__init__(spec, channels_last=False, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.patch_nums = patch_nums
        self.notes = dict(notes or {})

    def to(self, device="cpu", dtype=torch.float32) -> "VARTokenizer":
        super().to(device, dtype)
        self.model.quantize.float()  # nearest-code search and f_hat stay float32, as upstream's quantiser
        return self

    def schedule(self, side: int) -> tuple[int, ...]:
        from tokbench.models.var import SCHEDULES

        if self.patch_nums is not None:
            if self.patch_nums[-1] != side:
                raise BadInputError(f"tokenizer {self.spec.name}: patch_nums ends at {self.patch_nums[-1]} but the "
                                    f"latent is {side}x{side} (input {side * self.spec.spatial_factor} px)")
            return self.patch_nums
        if side not in SCHEDULES:
            sizes = ", ".join(str(s * self.spec.spatial_factor) for s in SCHEDULES)
            raise BadInputError(f"tokenizer {self.spec.name}: no upstream scale schedule for "
                                f"{side * self.spec.spatial_factor} px inputs (presets: {sizes}); pass the option "
                                f"patch_nums=1-2-...-{side}")
        return SCHEDULES[side]

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        if h != w:
            raise BadInputError(f"tokenizer {self.spec.name}: needs square inputs, got {h}x{w}")
        pn = self.schedule(h // self.spec.spatial_factor)
        inp = self.prepare(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        with torch.inference_mode():
            with self.precision():
                f = self.model.latent(inp)
            with torch.autocast(self.device.type, enabled=False):
                indices = torch.cat(self.model.quantize.quantize(f.float(), pn), dim=1)
        bits = torch.full((b,), t * indices.shape[1] * math.log2(self.spec.codebook_size), dtype=torch.float64)
        return Encoded(bits=bits, indices=indices.reshape(b, t, -1), payload={"patch_nums": pn})

    def decode(self, encoded: Encoded) -> torch.Tensor:
        from tokbench.models.var import split_flat

        if encoded.indices is None:
            raise BadInputError(f"tokenizer {self.spec.name}: decode needs token indices")
        b, t, _ = encoded.indices.shape
        pn = encoded.payload["patch_nums"]
        flat = encoded.indices.reshape(b * t, -1).to(self.device)
        with torch.inference_mode():
            with torch.autocast(self.device.type, enabled=False):
                f_hat = self.model.quantize.f_hat(split_flat(flat, pn), pn)
            with self.precision():
                y = self.model.decoder(self.model.post_quant_conv(f_hat))
        y = y.float().clamp(-1, 1)
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def describe(self) -> dict:
        d = super().describe()
        d.update(model="tokbench.models.var", model_config=self.model.config.to_dict(), decode_path=DECODE_PATH,
                 patch_nums="-".join(map(str, self.patch_nums)) if self.patch_nums else "upstream preset by size",
                 **self.notes)
        return d


def load_var(spec: TokenizerSpec, path: str | Path, *, allow_unsafe: bool = False,
             patch_nums: Optional[tuple[int, ...]] = None) -> VARTokenizer:
    """Build the tokenizer of entry ``spec`` from an upstream VQVAE state_dict file."""
    from tokbench.data.dataset import sha256_file
    from tokbench.models.var import VARVQConfig, build_var

    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    try:
        loaded = build_var(obj)
    except ValueError as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: {e}") from None
    cfg, released = loaded.config, VARVQConfig()
    if cfg.spatial_factor != spec.spatial_factor:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} downsamples by {cfg.spatial_factor}, "
                            f"not {spec.spatial_factor}")
    notes = {"dropped_training_keys": loaded.dropped_keys}
    deviations = {k: (getattr(cfg, k), getattr(released, k)) for k in ("ch", "ch_mult", "num_res_blocks",
                                                                       "vocab_size", "z_channels", "n_phi")
                  if getattr(cfg, k) != getattr(released, k)}
    if deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in deviations.items()}
        spec = dataclasses.replace(spec, latent_channels=cfg.z_channels, codebook_size=cfg.vocab_size)
    return VARTokenizer(spec, loaded.model, patch_nums=patch_nums, checkpoint_path=str(path),
                        checkpoint_sha256=sha256_file(path), notes=notes)


@register_tokenizer(SPEC)
def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             patch_nums: Optional[str] = None) -> VARTokenizer:
    nums = parse_patch_nums(patch_nums)  # option errors before any file is looked for
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_var(spec, path, allow_unsafe=allow_unsafe, patch_nums=nums)

"""Built-in tokenizers that run anywhere: the identity upper bound, TokBench's Resize baseline, and image
codecs (JPEG, WebP) whose rate is the real bitstream size."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from tokbench.errors import BadInputError
from tokbench.tokenizers.base import Encoded, Tokenizer, TokenizerSpec
from tokbench.tokenizers.registry import register_tokenizer

RAW_BITS_PER_PIXEL = 24  # uint8 RGB


def frames_u8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) float in [0, 1] -> (B, T, H, W, 3) uint8 (exact for inputs that came from uint8)."""
    return torch.round(x.detach().float().cpu() * 255).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()


def frames_float(frames: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 4, 1, 2, 3).float() / 255.0
    return t.to(device=like.device, dtype=like.dtype)


class PassThrough(Tokenizer):
    """Returns its input; rate is the raw 24 bits per pixel."""

    def encode(self, x):
        per = RAW_BITS_PER_PIXEL * x[0, 0].numel()
        return Encoded(bits=torch.full((x.shape[0],), float(per), dtype=torch.float64), payload=x)

    def decode(self, encoded):
        return encoded.payload


@register_tokenizer(TokenizerSpec(
    name="identity", family="baseline", kind="baseline", modalities=frozenset({"image", "video"}),
    native_resolution=True, aliases=("original", "ori"),
    description="Upper bound: the original pixels, no resize and no coding (TokBench's hidden 'ori' row)"))
def identity(spec):
    return PassThrough(spec)


@register_tokenizer(TokenizerSpec(
    name="resize", family="baseline", kind="baseline", published="Resize", modalities=frozenset({"image", "video"}),
    description="TokBench's Resize baseline: the smart-padding / restore round trip alone"))
def resize(spec):
    return PassThrough(spec)


class ImageCodec(Tokenizer):
    """Codes every frame independently with PIL; the rate is the encoded file size."""

    def __init__(self, spec, fmt: str, save_kwargs: dict):
        super().__init__(spec)
        self.fmt, self.save_kwargs = fmt, save_kwargs

    def encode(self, x):
        frames = frames_u8(x)
        streams = [[self._code(f) for f in clip] for clip in frames]
        bits = torch.tensor([8.0 * sum(len(s) for s in clip) for clip in streams], dtype=torch.float64)
        return Encoded(bits=bits, payload=(streams, x))

    def decode(self, encoded):
        streams, like = encoded.payload
        frames = np.stack([np.stack([np.asarray(Image.open(io.BytesIO(s)).convert("RGB")) for s in clip])
                           for clip in streams])
        return frames_float(frames, like)

    def _code(self, frame: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format=self.fmt, **self.save_kwargs)
        return buf.getvalue()


@register_tokenizer(TokenizerSpec(
    name="jpeg", family="codec", kind="codec", modalities=frozenset({"image"}), label_options=("quality",),
    description="JPEG (libjpeg via Pillow), 4:2:0 chroma subsampling; option quality=1..100 (default 75)"))
def jpeg(spec, *, quality: int = 75):
    _in_range("jpeg", "quality", quality, 1, 100)
    return ImageCodec(spec, "JPEG", {"quality": int(quality), "subsampling": 2, "optimize": False})


@register_tokenizer(TokenizerSpec(
    name="webp", family="codec", kind="codec", modalities=frozenset({"image"}), label_options=("quality",),
    description="WebP (libwebp via Pillow); options quality=0..100 (default 75), lossless=false"))
def webp(spec, *, quality: int = 75, lossless: bool = False):
    _in_range("webp", "quality", quality, 0, 100)
    return ImageCodec(spec, "WEBP", {"quality": int(quality), "lossless": bool(lossless), "method": 4})


def _in_range(tokenizer: str, option: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise BadInputError(f"tokenizer {tokenizer}: option {option} must be an integer in {lo}..{hi}, got {value}")

"""Everything between a dataset item and a tokenizer: geometry, value range, frame-rule clips.

Image protocol (TokBench smart padding): fit the image into S x S keeping its aspect with LANCZOS, paste it
centred on black, reconstruct, crop the pasted region, LANCZOS back to the original size. Tokenizers that
declare ``native_resolution`` (the ``identity`` upper bound) skip the fit and only get padded to their
multiple. Video protocol: short side to S (bilinear), pad to a multiple of 32 (and of the tokenizer's
multiple; square if required), split into clips that satisfy the frame rule, reconstruct, crop, restore.
Reconstructions are rounded to uint8 once, here. Under the official rules only, ``resave`` then writes
and re-reads an image reconstruction in the format PIL picks from the original's file name at PIL's default
settings (JPEG: quality 75, 4:2:0), because the official image scripts save every reconstruction under the
original file name before the evaluators read it back.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from tokbench.errors import TokbenchError, TokenizerFailedError, TokenizerOutputError
from tokbench.timing import NULL_TIMER, StageTimer
from tokbench.tokenizers.base import Tokenizer, TokenizerSpec

RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Geometry:
    """How an original (h, w) frame was placed on the tokenizer canvas."""

    orig_h: int
    orig_w: int
    fit_h: int  # size after the fit-resize (== orig when not resized)
    fit_w: int
    canvas_h: int
    canvas_w: int
    top: int
    left: int
    resample: str

    @property
    def resized(self) -> bool:
        return (self.fit_h, self.fit_w) != (self.orig_h, self.orig_w)


def _round_up(x: int, m: int) -> int:
    return int(math.ceil(x / m) * m)


def plan_image(h: int, w: int, size: Optional[int], spec: TokenizerSpec, resample: str = "lanczos") -> Geometry:
    """Smart-padding geometry for one image at evaluation size ``size`` (None or native: no fit-resize).
    A tokenizer with a fixed ``input_size`` is fitted into that square whatever the evaluation size."""
    size = spec.input_size or size
    if size is None or spec.native_resolution:
        fit_h, fit_w = h, w
        side_h, side_w = h, w
    else:
        r = min(size / w, size / h)
        fit_w, fit_h = min(size, math.ceil(w * r)), min(size, math.ceil(h * r))
        side_h = side_w = size
    m = max(1, spec.spatial_multiple)
    canvas_h, canvas_w = _round_up(side_h, m), _round_up(side_w, m)
    if spec.square_only:
        canvas_h = canvas_w = max(canvas_h, canvas_w)
    return Geometry(h, w, fit_h, fit_w, canvas_h, canvas_w, (canvas_h - fit_h) // 2, (canvas_w - fit_w) // 2,
                    resample)


def scaled_side(long: int, short: int, target: int, rounding: str = "exact") -> int:
    """The long side when the short side goes to ``target``: ``round(long * target / short)`` ("exact"), or
    the official video script's ``int(round(long * (target / short)))`` ("official"), whose inner division
    rounds first and can land on the other side of .5."""
    value = long * (target / short) if rounding == "official" else long * target / short
    return max(1, int(round(value)))


def plan_video(h: int, w: int, short_side: Optional[int], spec: TokenizerSpec, pad_multiple: int = 32,
               resample: str = "bilinear", rounding: str = "exact") -> Geometry:
    """TokBench video geometry: short side to ``short_side`` (bilinear), pad to a multiple of 32. A tokenizer
    with a fixed ``input_size`` gets each frame fitted into that square instead, as images are."""
    if spec.input_size:
        return plan_image(h, w, spec.input_size, spec, resample)
    if short_side is None or spec.native_resolution:
        fit_h, fit_w = h, w
    elif h <= w:
        fit_h, fit_w = short_side, scaled_side(w, h, short_side, rounding)
    else:
        fit_h, fit_w = scaled_side(h, w, short_side, rounding), short_side
    m = math.lcm(pad_multiple if short_side is not None else 1, max(1, spec.spatial_multiple))
    canvas_h, canvas_w = _round_up(fit_h, m), _round_up(fit_w, m)
    if spec.square_only:
        canvas_h = canvas_w = max(canvas_h, canvas_w)
    return Geometry(h, w, fit_h, fit_w, canvas_h, canvas_w, (canvas_h - fit_h) // 2, (canvas_w - fit_w) // 2,
                    resample)


def _resize(frame: np.ndarray, h: int, w: int, resample: str) -> np.ndarray:
    if frame.shape[:2] == (h, w):
        return frame
    return np.asarray(Image.fromarray(frame).resize((w, h), RESAMPLE[resample]))


def to_canvas(frames: np.ndarray, g: Geometry) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, canvas_h, canvas_w, 3) uint8: fit-resize and paste centred on black."""
    out = np.zeros((frames.shape[0], g.canvas_h, g.canvas_w, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        out[t, g.top:g.top + g.fit_h, g.left:g.left + g.fit_w] = _resize(frame, g.fit_h, g.fit_w, g.resample)
    return out


def from_canvas(canvas: np.ndarray, g: Geometry) -> np.ndarray:
    """Inverse of ``to_canvas``: crop the pasted region and resize back to the original size."""
    crop = canvas[:, g.top:g.top + g.fit_h, g.left:g.left + g.fit_w]
    return np.stack([_resize(np.ascontiguousarray(f), g.orig_h, g.orig_w, g.resample) for f in crop])


# ---------------------------------------------------------------- frames


def valid_length(t: int, spec: TokenizerSpec) -> int:
    """Smallest clip length >= t that satisfies the spec's frame rule."""
    n = t
    while not spec.valid_frames(n):
        n += 1
    return n


def plan_clips(num_frames: int, spec: TokenizerSpec, clip_frames: Optional[int] = None) -> list[tuple[int, int, int]]:
    """Split ``num_frames`` into clips ``(start, stop, padded_length)``.

    Clips are independent (each restarts causality, as OmniTokenizer and Cosmos do upstream). A short last
    clip is padded by repeating its last frame up to the next valid length; the padding is cropped after.
    """
    size = clip_frames or spec.default_clip_frames
    if size is None:  # the whole video as one clip
        return [(0, num_frames, valid_length(num_frames, spec))]
    if not spec.valid_frames(size):
        raise ValueError(f"tokenizer {spec.name}: clip length {size} breaks its frame rule")
    clips = []
    for start in range(0, num_frames, size):
        stop = min(start + size, num_frames)
        clips.append((start, stop, valid_length(stop - start, spec)))
    return clips


def pad_frames(frames: np.ndarray, length: int) -> np.ndarray:
    if frames.shape[0] == length:
        return frames
    reps = np.repeat(frames[-1:], length - frames.shape[0], axis=0)
    return np.concatenate([frames, reps], axis=0)


# ---------------------------------------------------------------- value range


def to_input(batch: np.ndarray, spec: TokenizerSpec, device, dtype) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float in ``spec.input_range``."""
    lo, hi = spec.input_range
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device=device)
    x = x.permute(0, 4, 1, 2, 3).to(torch.float32) / 255.0
    if (lo, hi) != (0.0, 1.0):
        x = x * (hi - lo) + lo
    return x.to(dtype)


def to_uint8(y: torch.Tensor, spec: TokenizerSpec, expected_shape: tuple, tokenizer: str, item: str) -> np.ndarray:
    """Tokenizer output (B, 3, T, H, W) -> (B, T, H, W, 3) uint8, rounded once and clamped to the range.

    Values outside the input range are clamped (documented); NaN/Inf, a wrong shape or a non-float dtype
    are errors naming tokenizer and item.
    """
    if not isinstance(y, torch.Tensor):
        raise TokenizerOutputError(f"tokenizer {tokenizer} returned {type(y).__name__}, not a tensor, for {item}")
    if tuple(y.shape) != tuple(expected_shape):
        raise TokenizerOutputError(
            f"tokenizer {tokenizer} returned shape {tuple(y.shape)}, expected {tuple(expected_shape)}, for {item}")
    if not y.is_floating_point():
        raise TokenizerOutputError(f"tokenizer {tokenizer} returned dtype {y.dtype}, expected float, for {item}")
    y = y.detach().to("cpu", torch.float32)
    if not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).sum())
        raise TokenizerOutputError(f"tokenizer {tokenizer} returned {bad} NaN/Inf values for {item}")
    lo, hi = spec.input_range
    u = (y - lo) * (255.0 / (hi - lo))
    u = torch.round(u).clamp_(0, 255).to(torch.uint8)
    return u.permute(0, 2, 3, 4, 1).numpy()


# ---------------------------------------------------------------- reconstruction


@dataclass
class Reconstruction:
    pixels: np.ndarray  # (T, H, W, 3) uint8 at the original size
    bits: float  # rate of the whole item
    coded_pixels: int  # pixels the tokenizer coded (T x canvas_h x canvas_w), padding included
    geometry: Geometry

    @property
    def bpp(self) -> float:
        return self.bits / self.coded_pixels


def _run_tokenizer(tok: Tokenizer, batch: np.ndarray, label: str,
                   timer: StageTimer = NULL_TIMER) -> tuple[np.ndarray, np.ndarray]:
    """Run one batch (B, T, H, W, 3) uint8 through the tokenizer; returns uint8 output and bits per element."""
    spec = tok.spec
    x = to_input(batch, spec, tok.device, tok.dtype)
    with timer.stage("tokenizer"), torch.inference_mode():
        try:
            y, bits = tok.reconstruct(x)
            if isinstance(y, torch.Tensor) and y.device.type == "cuda":
                torch.cuda.synchronize(y.device)
        except TokbenchError:
            raise
        except Exception as e:
            raise tokenizer_failure(tok.label, label, e, batch.shape[0]) from None
    out = to_uint8(y, spec, tuple(x.shape), tok.label, label)
    bits = np.asarray(bits.detach().cpu().double().numpy() if isinstance(bits, torch.Tensor) else bits, dtype=np.float64)
    if bits.shape != (batch.shape[0],) or not np.isfinite(bits).all() or (bits < 0).any():
        raise TokenizerOutputError(f"tokenizer {tok.label} returned an invalid rate {bits!r} for {label}")
    return out, bits


def tokenizer_failure(tokenizer: str, item: str, e: BaseException, batch: int) -> TokenizerFailedError:
    """One line naming tokenizer, item and the original message; out-of-memory suggests a smaller batch."""
    first = (str(e).strip().splitlines() or [""])[0][:300]
    oom = isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)) or "out of memory" in first.lower()
    hint = f"; try a smaller --batch-size (this call had {batch})" if oom and batch > 1 else (
        "; try a smaller resolution or --clip-frames" if oom else "")
    return TokenizerFailedError(f"tokenizer {tokenizer} failed on {item}: {type(e).__name__}: {first}{hint}")


def fit_images(images: list[np.ndarray], size: Optional[int], spec: TokenizerSpec,
               resample: str = "lanczos") -> list[tuple[Geometry, np.ndarray]]:
    """Each single-frame item's geometry and canvas: the input side of ``reconstruct_images``, separate so a
    pipeline can prepare the next batch while the current one is scored."""
    geoms = [plan_image(im.shape[1], im.shape[2], size, spec, resample) for im in images]
    return [(g, to_canvas(im, g)) for im, g in zip(images, geoms)]


def reconstruct_images(tok: Tokenizer, images: list[np.ndarray], size: Optional[int], labels: list[str],
                       resample: str = "lanczos", timer: StageTimer = NULL_TIMER,
                       fitted: Optional[list[tuple[Geometry, np.ndarray]]] = None) -> list[Reconstruction]:
    """Reconstruct single-frame items (each (1, H, W, 3)) as one batch when their canvases agree.
    ``fitted``: ``fit_images``' result for these images with this tokenizer, size and resample, if done already."""
    spec = tok.spec
    geoms, canvases = zip(*(fitted or fit_images(images, size, spec, resample))) if images else ((), ())
    results: list[Optional[Reconstruction]] = [None] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(canvases):
        groups.setdefault(c.shape, []).append(i)
    for shape, idx in groups.items():
        batch = np.stack([canvases[i] for i in idx])  # (B, 1, H, W, 3)
        label = labels[idx[0]] if len(idx) == 1 else f"batch {', '.join(labels[i] for i in idx[:4])}…"
        frames_needed = valid_length(1, spec)
        if frames_needed > 1:  # non-causal video tokenizers: repeat the image, keep the first frame
            batch = np.repeat(batch, frames_needed, axis=1)
        out, bits = _run_tokenizer(tok, batch, label, timer)
        for j, i in enumerate(idx):
            g = geoms[i]
            results[i] = Reconstruction(from_canvas(out[j, :1], g), float(bits[j]),
                                        batch.shape[1] * g.canvas_h * g.canvas_w, g)
    return results  # type: ignore[return-value]


def reconstruct_video(tok: Tokenizer, video: np.ndarray, short_side: Optional[int], label: str,
                      clip_frames: Optional[int] = None, pad_multiple: int = 32,
                      resample: str = "bilinear", timer: StageTimer = NULL_TIMER,
                      rounding: str = "exact") -> Reconstruction:
    """Reconstruct a (T, H, W, 3) video clip by clip; image-only tokenizers get frames as a batch."""
    spec = tok.spec
    g = plan_video(video.shape[1], video.shape[2], short_side, spec, pad_multiple, resample, rounding)
    canvas = to_canvas(video, g)
    if "video" not in spec.modalities:
        out, bits = _run_tokenizer(tok, canvas[:, None], label, timer)  # (T, 1, H, W, 3)
        return Reconstruction(from_canvas(out[:, 0], g), float(bits.sum()),
                              canvas.shape[0] * g.canvas_h * g.canvas_w, g)
    pieces, total_bits, coded = [], 0.0, 0
    for start, stop, length in plan_clips(video.shape[0], spec, clip_frames):
        clip = pad_frames(canvas[start:stop], length)[None]
        out, bits = _run_tokenizer(tok, clip, f"{label} frames {start}-{stop - 1}", timer)
        pieces.append(out[0, : stop - start])
        total_bits += float(bits[0])
        coded += length * g.canvas_h * g.canvas_w
    return Reconstruction(from_canvas(np.concatenate(pieces), g), total_bits, coded, g)


# ---------------------------------------------------------------- official re-save


def resave_format(file_name: str | None, mode: str) -> Optional[str]:
    """The PIL format a reconstruction is re-saved in under rule ``mode``, or None when it stays lossless.
    "jpg-names": the format PIL picks from the original's file name (as the official scripts save), skipped
    when that format is PNG (lossless); "all": JPEG for every image; "none": never."""
    if mode == "none" or file_name is None:
        return None
    if mode == "all":
        return "JPEG"
    ext = Path(file_name).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    return None if fmt in (None, "PNG") else fmt


def resave(pixels: np.ndarray, fmt: Optional[str]) -> np.ndarray:
    """(T, H, W, 3) uint8 written in ``fmt`` at PIL's default settings and read back as RGB (as the official
    evaluators read reconstructions); ``fmt`` None returns the pixels untouched."""
    if fmt is None:
        return pixels
    out = []
    for frame in pixels:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame)).save(buf, format=fmt)
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("RGB")))
    return np.stack(out)

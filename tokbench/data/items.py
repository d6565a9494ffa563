"""The unit of evaluation: one image or video with its annotations.

Items are what every dataset loader produces and what the harness consumes; tokenizers never see them
and metrics see only the pixels plus the annotations.
"""
from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tokbench.errors import BadInputError


@dataclass(frozen=True)
class Word:
    """A ground-truth word. ``box`` is axis-aligned ``(x0, y0, x1, y1)`` in original pixels; ``quad`` (optional)
    the 4 corner points ``((x, y), ...)`` clockwise from top-left; ``ratio`` the TokBench scale
    (mean character width / longer image side); ``frame`` the frame index for videos."""

    text: str
    box: tuple[float, float, float, float]
    ratio: float
    quad: Optional[tuple[tuple[float, float], ...]] = None
    frame: int = 0


@dataclass(frozen=True)
class Face:
    """A ground-truth face: 5-point landmarks (left eye, right eye, nose, left and right mouth corner, in
    image coordinates), box ``(x0, y0, x1, y1)``, TokBench ``ratio`` and an optional person id."""

    kps: tuple[tuple[float, float], ...]
    box: tuple[float, float, float, float]
    ratio: float
    person: Optional[str] = None
    frame: int = 0


@dataclass(frozen=True)
class Item:
    """One image or video. ``loader`` returns uint8 RGB pixels, (H, W, 3) for images or (T, H, W, 3) for
    videos; it is called lazily so that datasets can be listed without decoding anything."""

    id: str
    modality: str  # "image" | "video"
    path: Path
    words: tuple[Word, ...] = ()
    faces: tuple[Face, ...] = ()
    source: str = ""
    license: str = ""
    fps: Optional[float] = None
    loader: Optional[Callable[[], np.ndarray]] = field(default=None, compare=False, repr=False)

    def load(self) -> np.ndarray:
        """Pixels as (T, H, W, 3) uint8 (T = 1 for images)."""
        if self.loader is not None:
            pixels = self.loader()
        elif self.modality == "video":
            pixels = read_video(self.path)
        else:
            pixels = read_image(self.path)
        if pixels.ndim == 3:
            pixels = pixels[None]
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise BadInputError(f"{self.path}: expected uint8 RGB pixels, got {pixels.dtype} {pixels.shape}")
        return pixels


MAX_PIXELS_ENV = "TOKBENCH_MAX_IMAGE_PIXELS"
_PIL_DEFAULT_MAX_PIXELS: list[int] = []


def max_image_pixels() -> int:
    """The largest image (width x height) any loader decodes: PIL's decompression-bomb limit unless
    $TOKBENCH_MAX_IMAGE_PIXELS raises (or lowers) it for trusted data."""
    from PIL import Image

    if not _PIL_DEFAULT_MAX_PIXELS:
        _PIL_DEFAULT_MAX_PIXELS.append(int(Image.MAX_IMAGE_PIXELS or 0) or 89478485)
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return _PIL_DEFAULT_MAX_PIXELS[0]
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise BadInputError(f"{MAX_PIXELS_ENV}={text!r} must be a positive number of pixels")
    return value


@contextmanager
def open_image(path: Path | str):
    """``PIL.Image.open`` for every loader: an unreadable file or one over the pixel limit (a decompression
    bomb: a tiny file declaring a huge image) is a BadInputError naming it, so --skip-bad can skip it."""
    from PIL import Image, UnidentifiedImageError

    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # PIL refuses at twice this and warns above it; we refuse above it
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    hint = (f"the limit is {limit} pixels (decompression-bomb guard); if the file is trusted, raise it with "
            f"{MAX_PIXELS_ENV}=N")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > limit:
                raise BadInputError(f"{path}: image declares {w}x{h} = {w * h} pixels; {hint}")
            yield im
    except Image.DecompressionBombError as e:  # PIL's own guard (twice its limit) fires before ours
        n = re.search(r"\((\d+) pixels\)", str(e))
        raise BadInputError(f"{path}: image declares {n.group(1) if n else 'too many'} pixels; {hint}") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise BadInputError(f"{path}: cannot read image ({e})") from None


def read_image(path: Path | str) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; a broken file raises an error naming it."""
    with open_image(path) as im:
        im.load()
        return np.asarray(im.convert("RGB"))


def read_video(path: Path | str, max_frames: Optional[int] = None) -> np.ndarray:
    """Decode a video to (T, H, W, 3) uint8 RGB with PyAV (which bundles ffmpeg)."""
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            declared = int(container.streams.video[0].frames or 0) if container.streams.video else 0
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, OSError, IndexError) as e:
        raise BadInputError(f"{path}: cannot decode video ({e})") from None
    if not frames:
        raise BadInputError(f"{path}: video has no decodable frames")
    if max_frames is None and declared and len(frames) < declared:
        raise BadInputError(f"{path}: truncated video: decoded {len(frames)} of {declared} frames")
    return np.stack(frames)

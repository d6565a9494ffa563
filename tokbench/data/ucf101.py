"""UCF-101 from a user's folder (class folders of .avi plus the official ``ucfTrainTestlist`` split files),
sampled into fixed clips for rFVD / video PSNR.

Papers disagree on the UCF-101 rFVD protocol (shared reference metric-conventions.md §2.4), so a preset names
every choice: which split list, how many frames, the spatial size, the resize rule and kernel, and how the
clip start is drawn. Starts are drawn per video from (seed, video path), so they do not depend on the order
or on which other videos are present.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from tokbench.data.external import OnDiskDataset, safe_join
from tokbench.data.items import Item
from tokbench.errors import BadInputError

LICENSE = "UCF101 (CRCV, University of Central Florida): research use; not redistributed by tokbench"


@dataclass(frozen=True)
class ClipPreset:
    name: str
    split_list: str  # "train" -> trainlist0N.txt, "test" -> testlist0N.txt
    frames: int
    size: int
    follows: str
    resize: str = "short side to `size`, long side ceil(w * size / short); centre crop size x size (offsets floor)"
    kernel: str = "torch.nn.functional.interpolate bilinear, align_corners=False, antialias=False (VideoGPT/TATS)"
    temporal: str = ("one window of `frames` consecutive frames at the native frame rate; start uniform in "
                     "[0, n - frames] from numpy default_rng([seed, crc32(relative path)])")

    def describe(self) -> dict:
        return asdict(self)


PRESETS: dict[str, ClipPreset] = {p.name: p for p in (
    ClipPreset("ucf101-train-16x128", "train", 16, 128,
               follows="TATS / LARP rFVD: one 16-frame 128x128 clip per video of the train list"),
    ClipPreset("ucf101-test-17x256", "test", 17, 256,
               follows="OmniTokenizer: 17 frames at 256x256 on the evaluation list (upstream squashes frames to "
                       "256x256 and samples the centre at 16 fps with decord; this preset keeps the aspect ratio "
                       "by centre-cropping and uses consecutive native-rate frames)"),
)}


def get_preset(preset: str | ClipPreset) -> ClipPreset:
    if isinstance(preset, ClipPreset):
        return preset
    if preset not in PRESETS:
        raise BadInputError(f"unknown UCF-101 preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[preset]


def clip_start(seed: int, rel_path: str, n_frames: int, clip_frames: int) -> int:
    """Seed-fixed start of the clip inside a video of ``n_frames`` frames."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(rel_path.encode())])
    return int(rng.integers(0, n_frames - clip_frames + 1))


def short_side_resize_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8: VideoGPT/TATS ``preprocess`` (short side to ``size``
    with torch bilinear, no antialias, then the centre crop), rounded back to uint8."""
    import torch
    import torch.nn.functional as F

    t, h, w, _ = frames.shape
    scale = size / min(h, w)
    target = (size, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), size)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def probe_clip_source(path: Path) -> tuple[int, Optional[float]]:
    """(frames, fps) of the first video stream: the header count, else the number of demuxed packets."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            if stream.frames:
                return int(stream.frames), fps
            return sum(1 for packet in container.demux(stream) if packet.size), fps
    except (av.error.FFmpegError, OSError) as e:
        raise BadInputError(f"{path}: cannot open video ({e})") from None


def read_clip(path: Path, start: int, frames: int, size: int) -> np.ndarray:
    """Decode frames [start, start + frames) and resize them; a short decode raises an error naming the file."""
    import av

    out = []
    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= start:
                    out.append(frame.to_ndarray(format="rgb24"))
                    if len(out) == frames:
                        break
    except (av.error.FFmpegError, OSError) as e:
        raise BadInputError(f"{path}: cannot decode video ({e})") from None
    if len(out) < frames:
        raise BadInputError(f"{path}: decoded only {start + len(out)} frames, the clip needs frames "
                            f"{start}..{start + frames - 1}")
    return short_side_resize_crop(np.stack(out), size)


class UCF101(OnDiskDataset):
    """One seed-fixed clip per video of a split list. ``root`` holds the class folders (or ``UCF-101/``);
    the split files are looked for in ``ucfTrainTestlist/`` beside or inside it unless ``splits_dir`` is given."""

    name = "ucf101"
    modality = "video"
    license = LICENSE
    description = "UCF-101 clips from the official train/test split lists"

    def __init__(self, root: str | Path, preset: str | ClipPreset = "ucf101-train-16x128", split: int = 1,
                 seed: int = 0, splits_dir: Optional[str | Path] = None, skip_bad: bool = False):
        super().__init__(root, skip_bad)
        if not self.root.is_dir():
            raise BadInputError(f"UCF-101 folder {self.root} does not exist")
        self.preset = get_preset(preset)
        if split not in (1, 2, 3):
            raise BadInputError(f"UCF-101 split must be 1, 2 or 3, got {split!r}")
        self.split, self.seed = int(split), int(seed)
        self.video_root = self.root / "UCF-101" if (self.root / "UCF-101").is_dir() else self.root
        self.splits_dir = Path(splits_dir).expanduser() if splits_dir is not None else self._find_splits()
        self._case_index: Optional[dict[str, Path]] = None

    def _find_splits(self) -> Path:
        candidates = [self.root / "ucfTrainTestlist", self.video_root / "ucfTrainTestlist",
                      self.root.parent / "ucfTrainTestlist"]
        for cand in candidates:
            if cand.is_dir():
                return cand
        raise BadInputError(f"UCF-101 split files not found: expected {candidates[0]}/trainlist01.txt "
                            f"(from UCF101TrainTestSplits-RecognitionTask.zip) or pass splits_dir")

    def list_path(self) -> Path:
        return self.splits_dir / f"{self.preset.split_list}list0{self.split}.txt"

    def pixel_settings(self) -> dict:
        return {"preset": self.preset.describe()}

    def settings(self) -> dict:
        return {"preset": self.preset.describe(), "split": self.split, "seed": self.seed,
                "list": self.list_path().name}

    def _class_index(self) -> Optional[dict[str, int]]:
        path = self.splits_dir / "classInd.txt"
        if not path.is_file():
            return None
        index = {}
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[0].isdigit():
                raise BadInputError(f"{path} line {n}: expected '<index> <ClassName>', got {line!r}")
            index[parts[1].lower()] = int(parts[0])
        if not index:
            raise BadInputError(f"{path} is empty")
        return index

    def _video_file(self, rel: str, what: str) -> Path:
        """The listed file; the official lists and folders disagree in case for one class
        (HandStandPushups vs HandstandPushups), so a case-insensitive match is accepted."""
        path = safe_join(self.video_root, rel, what)
        if path.is_file():
            return path
        if self._case_index is None:
            self._case_index = {p.relative_to(self.video_root).as_posix().lower(): p
                                for p in self.video_root.rglob("*.[aA][vV][iI]")}
        hit = self._case_index.get(Path(rel).as_posix().lower())
        if hit is None:
            raise BadInputError(f"{what}: video file {path} does not exist")
        return hit

    def load_items(self) -> list[Item]:
        list_path = self.list_path()
        if not list_path.is_file():
            raise BadInputError(f"UCF-101 split list {list_path} does not exist")
        lines = [(n, line.strip()) for n, line in enumerate(list_path.read_text(errors="replace").splitlines(), 1)
                 if line.strip()]
        if not lines:
            raise BadInputError(f"UCF-101 split list {list_path} is empty")
        classes = self._class_index()
        p, items = self.preset, []
        for n, line in lines:
            what = f"{list_path.name} line {n}"
            parts = line.split()
            rel = parts[0].replace("\\", "/")
            item_id = rel.rsplit(".", 1)[0]
            try:
                if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
                    raise BadInputError(f"{what}: expected '<Class>/<video>.avi [label]', got {line!r}")
                safe_join(self.video_root, rel, what)  # an escaping path is refused before anything else
                cls = rel.split("/", 1)[0].lower() if "/" in rel else None
                if classes is not None:
                    if cls not in classes:
                        raise BadInputError(f"{what}: class folder of {rel!r} is not in classInd.txt")
                    if len(parts) == 2 and int(parts[1]) != classes[cls]:
                        raise BadInputError(f"{what}: label {parts[1]} of {rel!r} disagrees with classInd.txt "
                                            f"({classes[cls]})")
                path = self._video_file(rel, what)
                n_frames, fps = probe_clip_source(path)
                if n_frames < p.frames:
                    raise BadInputError(f"{path}: {n_frames} frames, shorter than the {p.frames}-frame clip of "
                                        f"preset {p.name}")
                start = clip_start(self.seed, rel, n_frames, p.frames)
            except BadInputError as e:
                self.bad(item_id, str(e))
                continue
            items.append(Item(id=f"{item_id}@{start}", modality="video", path=path, source="ucf101",
                              license=self.license, fps=fps, loader=_clip_loader(path, start, p.frames, p.size)))
        return items


def _clip_loader(path: Path, start: int, frames: int, size: int):
    return lambda: read_clip(path, start, frames, size)


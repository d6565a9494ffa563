"""The official TokBench release (hf://datasets/Junfeng5/TokBench) read from a user's folder.

Layout and JSON formats follow the official evaluation scripts (wjf5203/TokBench, eval_text.py /
eval_face.py / doctr ``OCRJSONForTokBench``); see docs in shared reference tokbench-protocol.md §1:

    images/text_data/<subset>/<file_name>        annotations/text_<subset>.json
    images/face_data/wflw/<image_name>           annotations/face_meta.json
    videos/text_data/{ch3,ds}/<video_name>.mp4   video_annotations/text_{ch3,ds}.json  (one entry per frame)
    videos/face_data/face_clip_3s/<video_name>   video_annotations/videoface_meta.json (per-frame face lists)

Ratios are kept exactly as the files give them: they define the TokBench bins, and recomputing them would
silently move instances between bins.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tokbench.data.external import (OnDiskDataset, image_size_of, number, read_image_oriented, read_json,
                                    safe_join)
from tokbench.protocols import CLEAN_RULES, Rules
from tokbench.data.items import Face, Item, Word
from tokbench.errors import BadInputError

TEXT_SUBSETS = ("ic13", "ic15", "tt", "textocr", "cord", "sroie", "infograph", "docvqa")
FACE_SUBSETS = ("wflw",)
IMAGE_SUBSETS = TEXT_SUBSETS + FACE_SUBSETS
VIDEO_TEXT_SUBSETS = ("ch3", "ds")
VIDEO_FACE_SUBSETS = ("face_clip_3s",)
VIDEO_SUBSETS = VIDEO_TEXT_SUBSETS + VIDEO_FACE_SUBSETS

PUBLIC_SOURCES = {
    "ic13": "ICDAR 2013 Focused Scene Text", "ic15": "ICDAR 2015 Incidental Scene Text", "tt": "Total-Text",
    "textocr": "TextOCR", "cord": "CORD", "sroie": "SROIE", "infograph": "InfographicVQA", "docvqa": "DocVQA",
    "wflw": "WFLW", "ch3": "ICDAR Text in Videos (inferred)", "ds": "DSText (inferred)",
    "face_clip_3s": "TokBench face clips",
}
LICENSE = "CC-BY-4.0 (TokBench release, hf://datasets/Junfeng5/TokBench); source images keep their datasets' terms"

EDGE_TOLERANCE_PX = 1.0
"""Boxes and landmarks may poke this far outside the image (annotation rounding); they are clamped to it.
Anything farther out is an annotation error. Under the official rules (``clamp=False``) nothing is clamped
or refused: the official scripts use the numbers as they are."""

_FRAME_NAME = re.compile(r"-frame(\d+)$")


# ----------------------------------------------------------------------------------------------- parsers

def _mapping(raw: Any, what: str) -> dict:
    if not isinstance(raw, dict):
        raise BadInputError(f"{what}: expected a JSON object, got {type(raw).__name__}")
    return raw


def _field(raw: dict, key: str, what: str) -> Any:
    if key not in raw:
        raise BadInputError(f"{what}: missing field {key!r}")
    return raw[key]


def _text(raw: dict, key: str, what: str) -> str:
    value = _field(raw, key, what)
    if not isinstance(value, str) or not value or value.encode("utf-8", "replace").decode() != value:
        raise BadInputError(f"{what}: field {key!r} must be a non-empty valid Unicode string, got {value!r}")
    return value


def _size(raw: dict, wkey: str, hkey: str, what: str) -> Optional[tuple[int, int]]:
    """(width, height) when the entry gives both; both must be positive integers."""
    if wkey not in raw and hkey not in raw:
        return None
    w, h = number(_field(raw, wkey, what), f"{what} {wkey}"), number(_field(raw, hkey, what), f"{what} {hkey}")
    if w <= 0 or h <= 0 or w != int(w) or h != int(h):
        raise BadInputError(f"{what}: image size {wkey}={raw[wkey]!r} {hkey}={raw[hkey]!r} must be positive integers")
    return int(w), int(h)


def _points(value: Any, n: int, what: str) -> tuple[tuple[float, float], ...]:
    """``n`` (x, y) points from a list of pairs or a flat list of 2n numbers."""
    if not isinstance(value, (list, tuple)):
        raise BadInputError(f"{what}: expected {n} points, got {value!r}")
    if len(value) == 2 * n and all(not isinstance(v, (list, tuple)) for v in value):
        value = [value[i:i + 2] for i in range(0, 2 * n, 2)]
    if len(value) != n or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        raise BadInputError(f"{what}: expected {n} (x, y) points, got {value!r}")
    return tuple((number(p[0], what), number(p[1], what)) for p in value)


def _check_inside(points: Sequence[tuple[float, float]], size: Optional[tuple[int, int]], what: str,
                  thing: str, clamp: bool = True) -> tuple[tuple[float, float], ...]:
    """Refuse points outside the image (beyond the tolerance); clamp the rest onto it."""
    if size is None or not clamp:
        return tuple(points)
    w, h = size
    t = EDGE_TOLERANCE_PX
    for x, y in points:
        if not (-t <= x <= w + t and -t <= y <= h + t):
            raise BadInputError(f"{what}: {thing} point ({x:g}, {y:g}) lies outside the {w}x{h} image")
    return tuple((min(max(x, 0.0), float(w)), min(max(y, 0.0), float(h))) for x, y in points)


def parse_text_box(value: Any, size: Optional[tuple[int, int]], what: str, clamp: bool = True
                   ) -> tuple[tuple[float, float, float, float], Optional[tuple[tuple[float, float], ...]]]:
    """A word's ``bbox``: axis-aligned ``[x0, y0, x1, y1]`` or a quadrilateral (4x2, or 8 numbers).

    Returns the axis-aligned box (the quad's bounds when a quad is given) and the quad or None.
    """
    if not isinstance(value, (list, tuple)) or len(value) not in (4, 8):
        raise BadInputError(f"{what}: bbox must be [x0, y0, x1, y1] or 4 (x, y) points, got {value!r}")
    quad = None
    if len(value) == 4 and all(not isinstance(v, (list, tuple)) for v in value):
        x0, y0, x1, y1 = (number(v, f"{what} bbox") for v in value)
        if x1 <= x0 or y1 <= y0:
            raise BadInputError(f"{what}: bbox {list(value)} is empty (needs x0 < x1 and y0 < y1)")
        (x0, y0), (x1, y1) = _check_inside([(x0, y0), (x1, y1)], size, what, "bbox", clamp)
    else:
        quad = _check_inside(_points(value, 4, f"{what} bbox"), size, what, "bbox", clamp)
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        if x1 <= x0 or y1 <= y0:
            raise BadInputError(f"{what}: bbox quadrilateral {list(value)} has no area")
    return (x0, y0, x1, y1), quad


def parse_word(raw: Any, size: Optional[tuple[int, int]], what: str, frame: int = 0, clamp: bool = True) -> Word:
    """One ``{"rec", "bbox", "ratio"}`` word. ``ratio`` is the file's; only when the file has none is it
    derived with TokBench's formula (box width / characters / longer image side)."""
    raw = _mapping(raw, what)
    text = _text(raw, "rec", what)
    what = f"{what} {text!r}"
    box, quad = parse_text_box(_field(raw, "bbox", what), size, what, clamp)
    if raw.get("ratio") is not None:
        ratio = number(raw["ratio"], f"{what} ratio")
        if ratio < 0:
            raise BadInputError(f"{what}: ratio {ratio:g} is negative")
    elif size is not None:
        ratio = (box[2] - box[0]) / len(text) / max(size)
    else:
        raise BadInputError(f"{what}: no ratio and no image size to derive it from")
    return Word(text=text, box=box, ratio=ratio, quad=quad, frame=frame)


def parse_face(raw: Any, size: Optional[tuple[int, int]], what: str, frame: int = 0, clamp: bool = True) -> Face:
    """One ``{"kps", "ratio", "box", "gt"}`` face. Video faces carry no box: the landmarks' extent stands in
    for it (it is only used to locate the face, never to score it). A scalar ``gt`` becomes ``person``."""
    raw = _mapping(raw, what)
    kps = _check_inside(_points(_field(raw, "kps", what), 5, f"{what} kps"), size, what, "kps", clamp)
    ratio = number(_field(raw, "ratio", what), f"{what} ratio")
    if ratio < 0:
        raise BadInputError(f"{what}: ratio {ratio:g} is negative")
    if raw.get("box") is not None:
        value = raw["box"]
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise BadInputError(f"{what}: box must be [x0, y0, x1, y1], got {value!r}")
        x0, y0, x1, y1 = (number(v, f"{what} box") for v in value)
        if x1 <= x0 or y1 <= y0:
            raise BadInputError(f"{what}: box {list(value)} is empty (needs x0 < x1 and y0 < y1)")
        if size is not None and clamp:
            w, h = size
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                raise BadInputError(f"{what}: box {list(value)} lies outside the {w}x{h} image")
            x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
        box = (x0, y0, x1, y1)
    else:
        xs, ys = [p[0] for p in kps], [p[1] for p in kps]
        box = (min(xs), min(ys), max(xs), max(ys))
    gt = raw.get("gt")
    person = str(gt) if isinstance(gt, (str, int)) and not isinstance(gt, bool) else None
    return Face(kps=kps, box=box, ratio=ratio, person=person, frame=frame)


def _list(raw: dict, key: str, what: str) -> list:
    value = _field(raw, key, what)
    if not isinstance(value, list):
        raise BadInputError(f"{what}: field {key!r} must be a list, got {type(value).__name__}")
    return value


def _resolve_size(given: Optional[tuple[int, int]], name: str,
                  size_of: Optional[Callable[[str], tuple[int, int]]]) -> Optional[tuple[int, int]]:
    return given if given is not None or size_of is None else size_of(name)


@dataclass(frozen=True)
class ImageEntry:
    name: str
    size: Optional[tuple[int, int]]
    words: tuple[Word, ...] = ()
    faces: tuple[Face, ...] = ()


@dataclass(frozen=True)
class FrameEntry:
    name: str  # the entry's file_name, "<video>-frame<N>.<ext>"
    video: str
    frame: int  # 0-based: N - 1
    size: Optional[tuple[int, int]]
    words: tuple[Word, ...]


@dataclass(frozen=True)
class VideoFaceEntry:
    video: str
    size: Optional[tuple[int, int]]
    faces: tuple[Face, ...]
    frames_annotated: int


def parse_text_entry(raw: Any, what: str, size_of: Optional[Callable[[str], tuple[int, int]]] = None,
                     clamp: bool = True) -> ImageEntry:
    """An image entry of ``text_<subset>.json``; ``size_of(file_name)`` supplies the size when absent."""
    raw = _mapping(raw, what)
    name = _text(raw, "file_name", what)
    what = f"{what} ({name})"
    size = _resolve_size(_size(raw, "width", "height", what), name, size_of)
    words = tuple(parse_word(w, size, f"{what} word {i}", clamp=clamp)
                  for i, w in enumerate(_list(raw, "annotations", what)))
    return ImageEntry(name=name, size=size, words=words)


def parse_face_entry(raw: Any, what: str, size_of: Optional[Callable[[str], tuple[int, int]]] = None,
                     clamp: bool = True) -> ImageEntry:
    """An image entry of ``face_meta.json``."""
    raw = _mapping(raw, what)
    name = _text(raw, "image_name", what)
    what = f"{what} ({name})"
    size = _resolve_size(_size(raw, "img_width", "img_height", what), name, size_of)
    faces = tuple(parse_face(f, size, f"{what} face {i}", clamp=clamp) for i, f in enumerate(_list(raw, "faces", what)))
    return ImageEntry(name=name, size=size, faces=faces)


def frame_index(file_name: str, what: str) -> int:
    """0-based frame index from ``<video>-frame<N>.<ext>`` (N is 1-based, as in the official scripts)."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name.rsplit("/", 1)[-1] else file_name
    m = _FRAME_NAME.search(stem)
    if m is None:
        raise BadInputError(f"{what}: file_name {file_name!r} is not '<video>-frame<N>.<ext>'")
    n = int(m.group(1))
    if n < 1:
        raise BadInputError(f"{what}: frame number {n} in {file_name!r} must start at 1")
    return n - 1


def parse_video_text_entry(raw: Any, what: str, size_of: Optional[Callable[[str], tuple[int, int]]] = None,
                           clamp: bool = True) -> FrameEntry:
    """A per-frame entry of ``text_{ch3,ds}.json``; ``size_of(video_name)`` supplies the size when absent."""
    raw = _mapping(raw, what)
    name = _text(raw, "file_name", what)
    what = f"{what} ({name})"
    video = _text(raw, "video_name", what)
    frame = frame_index(name, what)
    size = _resolve_size(_size(raw, "width", "height", what), video, size_of)
    words = tuple(parse_word(w, size, f"{what} word {i}", frame=frame, clamp=clamp)
                  for i, w in enumerate(_list(raw, "annotations", what)))
    return FrameEntry(name=name, video=video, frame=frame, size=size, words=words)


def parse_video_face_entry(raw: Any, what: str, size_of: Optional[Callable[[str], tuple[int, int]]] = None,
                           clamp: bool = True) -> VideoFaceEntry:
    """A video entry of ``videoface_meta.json``: ``frame_anns[i]`` lists the faces on frame i."""
    raw = _mapping(raw, what)
    video = _text(raw, "video_name", what)
    what = f"{what} ({video})"
    size = _resolve_size(_size(raw, "video_width", "video_height", what), video, size_of)
    faces = []
    frames = _list(raw, "frame_anns", what)
    for t, per_frame in enumerate(frames):
        if not isinstance(per_frame, list):
            raise BadInputError(f"{what} frame {t}: expected a list of faces, got {type(per_frame).__name__}")
        faces.extend(parse_face(f, size, f"{what} frame {t} face {i}", frame=t, clamp=clamp)
                     for i, f in enumerate(per_frame))
    return VideoFaceEntry(video=video, size=size, faces=tuple(faces), frames_annotated=len(frames))


def entry_list(data: Any, path: Path) -> list:
    """The top-level list of an annotation file; an empty one is an error (a truncated download looks so)."""
    if not isinstance(data, list):
        raise BadInputError(f"annotation file {path}: expected a JSON list of entries, got {type(data).__name__}")
    if not data:
        raise BadInputError(f"annotation file {path} has no entries")
    return data


# ----------------------------------------------------------------------------------------------- datasets

def find_release_root(root: str | Path) -> Path:
    """The folder holding ``annotations/`` or ``video_annotations/``: ``root`` itself or ``root/TokBench``."""
    root = Path(root).expanduser()
    for cand in (root, root / "TokBench"):
        if (cand / "annotations").is_dir() or (cand / "video_annotations").is_dir():
            return cand
    if not root.is_dir():
        raise BadInputError(f"TokBench release folder {root} does not exist")
    raise BadInputError(f"{root} is not a TokBench release: no annotations/ or video_annotations/ folder "
                        f"(get it with `tokbench datasets download tokbench`)")


def select_subsets(subsets: Optional[Sequence[str] | str], valid: Sequence[str], kind: str) -> Optional[list[str]]:
    if subsets is None:
        return None
    if isinstance(subsets, str):
        subsets = [s for s in subsets.split(",") if s.strip()]
    chosen = []
    for s in subsets:
        s = s.strip()
        if s not in valid:
            raise BadInputError(f"unknown TokBench {kind} subset {s!r}; valid subsets: {' '.join(valid)}")
        if s not in chosen:
            chosen.append(s)
    if not chosen:
        raise BadInputError(f"no TokBench {kind} subset selected; valid subsets: {' '.join(valid)}")
    return chosen


def _missing_folder(folder: Path, root: Path) -> str:
    near = [*root.glob("*"), *root.glob("*/*")]  # shallow: the release's archives sit at the top
    archives = sorted(str(p.relative_to(root)) for p in near if p.suffix in (".zip", ".tar", ".gz", ".tgz", ".7z"))[:5]
    hint = f" (archives found under {root}: {', '.join(archives)}; extract them first)" if archives else ""
    return f"TokBench folder {folder} does not exist{hint}"


class _Release(OnDiskDataset):
    """Shared subset bookkeeping for the image and video halves of the release."""

    all_subsets: tuple[str, ...] = ()
    kind = ""

    def __init__(self, root: str | Path, subsets: Optional[Sequence[str] | str] = None, skip_bad: bool = False,
                 rules: Rules = CLEAN_RULES):
        super().__init__(find_release_root(root), skip_bad)
        self.rules = rules  # how originals are read and annotations taken (official scripts or fixed)
        self.requested = select_subsets(subsets, self.all_subsets, self.kind)
        self.absent_subsets: list[str] = []

    def annotation_path(self, subset: str) -> Path:
        raise NotImplementedError

    def data_dir(self, subset: str) -> Path:
        raise NotImplementedError

    def subsets(self) -> list[str]:
        """Requested subsets, or every subset whose annotation file is present (absent ones are listed in
        ``absent_subsets`` and in ``describe()``)."""
        if self.requested is not None:
            return list(self.requested)
        present = [s for s in self.all_subsets if self.annotation_path(s).is_file()]
        self.absent_subsets = [s for s in self.all_subsets if s not in present]
        if not present:
            expected = ", ".join(str(self.annotation_path(s).relative_to(self.root)) for s in self.all_subsets)
            raise BadInputError(f"no TokBench {self.kind} annotations under {self.root} (expected one of {expected})")
        return present

    def entries(self, subset: str) -> list:
        path = self.annotation_path(subset)
        if not path.is_file():
            raise BadInputError(f"TokBench {self.kind} subset {subset!r}: annotation file {path} does not exist")
        folder = self.data_dir(subset)
        if not folder.is_dir():
            raise BadInputError(_missing_folder(folder, self.root))
        try:
            return entry_list(read_json(path), path)
        except BadInputError as e:  # an unreadable annotation file: with skip_bad the whole subset is listed
            self.bad(f"{subset}/*", str(e))
            return []

    def label(self, subset: str) -> str:
        return str(self.annotation_path(subset).relative_to(self.root))

    def settings(self) -> dict:
        return {"subsets": self.requested or "present", "absent_subsets": self.absent_subsets,
                "reading": {"rules": self.rules.name, "exif_text": self.rules.exif_text,
                            "exif_face": self.rules.exif_face, "clamp_geometry": self.rules.clamp_geometry}}


class TokBenchImages(_Release):
    """Text subsets and WFLW faces of the TokBench image set."""

    name = "tokbench"
    modality = "image"
    license = LICENSE
    description = "official TokBench image release (text: 8 subsets; faces: WFLW)"
    all_subsets = IMAGE_SUBSETS
    kind = "image"

    def annotation_path(self, subset: str) -> Path:
        name = "face_meta.json" if subset in FACE_SUBSETS else f"text_{subset}.json"
        return self.root / "annotations" / name

    def data_dir(self, subset: str) -> Path:
        return self.root / "images" / ("face_data" if subset in FACE_SUBSETS else "text_data") / subset

    def load_items(self) -> list[Item]:
        items = []
        for subset in self.subsets():
            folder, label = self.data_dir(subset), self.label(subset)
            face = subset in FACE_SUBSETS
            parse = parse_face_entry if face else parse_text_entry
            key = "image_name" if face else "file_name"
            exif = self.rules.exif_face if face else self.rules.exif_text
            clamp = self.rules.clamp_geometry
            seen = set()
            for i, raw in enumerate(self.entries(subset)):
                name = raw.get(key) if isinstance(raw, dict) and isinstance(raw.get(key), str) else f"entry {i}"
                item_id = f"{subset}/{name}"
                what = f"{label} entry {i}"
                try:
                    path = safe_join(folder, name, f"{what} ({name})") if name != f"entry {i}" else None
                    if path is not None and not path.is_file():
                        raise BadInputError(f"{what}: image file {path} does not exist")
                    entry = parse(raw, what, size_of=lambda _n, p=path: image_size_of(p, exif), clamp=clamp)
                    if item_id in seen:
                        raise BadInputError(f"{what}: {name} is annotated twice in {label}")
                except BadInputError as e:
                    self.bad(item_id, str(e))
                    continue
                seen.add(item_id)
                items.append(Item(id=item_id, modality="image", path=path, words=entry.words, faces=entry.faces,
                                  source=f"tokbench/{subset}", license=self.license,
                                  loader=_image_loader(path, entry.size if clamp else None, exif)))
        return items


def _image_loader(path: Path, size: Optional[tuple[int, int]], exif: bool = True):
    """``size`` None: no check against the annotation (the official scripts make none)."""
    return lambda: read_image_oriented(path, size, exif)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int  # 0 when the container does not say
    width: int
    height: int
    fps: Optional[float]


def probe_video(path: Path) -> VideoInfo:
    """Frame count, size and rate from the container header, without decoding."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            if stream.codec_context is None or not stream.codec_context.width:
                raise BadInputError(f"{path}: unreadable video stream (truncated or corrupt file)")
            rate = stream.average_rate or stream.guessed_rate
            return VideoInfo(path=path, frames=int(stream.frames or 0), width=int(stream.codec_context.width),
                             height=int(stream.codec_context.height), fps=float(rate) if rate else None)
    except (av.error.FFmpegError, OSError) as e:
        raise BadInputError(f"{path}: cannot open video ({e})") from None


class TokBenchVideos(_Release):
    """Video text (ch3, ds; words on annotated frames) and face clips (faces on every frame) of TokBench.
    One item per video; each Word/Face carries its 0-based ``frame``."""

    name = "tokbench-video"
    modality = "video"
    license = LICENSE
    description = "official TokBench video release (text: ch3, ds; faces: face_clip_3s)"
    all_subsets = VIDEO_SUBSETS
    kind = "video"

    def annotation_path(self, subset: str) -> Path:
        name = "videoface_meta.json" if subset in VIDEO_FACE_SUBSETS else f"text_{subset}.json"
        return self.root / "video_annotations" / name

    def data_dir(self, subset: str) -> Path:
        return self.root / "videos" / ("face_data" if subset in VIDEO_FACE_SUBSETS else "text_data") / subset

    def video_path(self, subset: str, video: str, what: str) -> Path:
        """Text annotations name videos without extension (the scripts append .mp4); face annotations
        name the file. Either form is accepted."""
        path = safe_join(self.data_dir(subset), video, what)
        candidates = [path] if subset in VIDEO_FACE_SUBSETS else []
        candidates += [path.with_name(path.name + ".mp4"), path]
        for cand in candidates:
            if cand.is_file():
                return cand
        raise BadInputError(f"{what}: video file {candidates[0]} does not exist")

    def load_items(self) -> list[Item]:
        items = []
        for subset in self.subsets():
            if subset in VIDEO_FACE_SUBSETS:
                items += self._face_items(subset)
            else:
                items += self._text_items(subset)
        return items

    def _probe(self, cache: dict, subset: str, video: str, what: str) -> VideoInfo:
        """Each video is opened once; a failure is reported for every entry that names it."""
        if video not in cache:
            try:
                cache[video] = probe_video(self.video_path(subset, video, f"video_name {video!r}"))
            except BadInputError as e:
                cache[video] = str(e)
        if isinstance(cache[video], str):
            raise BadInputError(f"{what}: {cache[video]}")
        return cache[video]

    def _video_info(self, cache: dict, subset: str, raw: Any, what: str) -> Optional[VideoInfo]:
        """The entry's video, probed; None when the entry names none (its parser then says so)."""
        video = raw.get("video_name") if isinstance(raw, dict) else None
        return self._probe(cache, subset, video, what) if isinstance(video, str) and video else None

    @staticmethod
    def _require(info: Optional[VideoInfo], what: str) -> VideoInfo:
        if info is None:
            raise BadInputError(f"{what}: no video_name")
        return info

    def _check_size(self, given: Optional[tuple[int, int]], info: VideoInfo, what: str) -> None:
        if given is not None and given != (info.width, info.height):
            raise BadInputError(f"{what}: annotation says {given[0]}x{given[1]} but {info.path} is "
                                f"{info.width}x{info.height}")

    def _text_items(self, subset: str) -> list[Item]:
        label, cache = self.label(subset), {}
        per_video: dict[str, list[Word]] = {}
        seen_frames: set[tuple[str, int]] = set()
        for i, raw in enumerate(self.entries(subset)):
            what = f"{label} entry {i}"
            name = raw.get("file_name") if isinstance(raw, dict) else None
            entry_id = f"{subset}/{name if isinstance(name, str) else f'entry {i}'}"
            try:
                info = self._video_info(cache, subset, raw, what)
                entry = parse_video_text_entry(raw, what, size_of=info and (lambda _v: (info.width, info.height)),
                                               clamp=self.rules.clamp_geometry)
                info = self._require(info, what)
                self._check_size(entry.size, info, f"{what} ({entry.name})")
                if info.frames and entry.frame >= info.frames:
                    raise BadInputError(f"{what}: frame {entry.frame + 1} of {entry.name} is past the end of "
                                        f"{info.path} ({info.frames} frames)")
                if (entry.video, entry.frame) in seen_frames:
                    raise BadInputError(f"{what}: frame {entry.frame + 1} of {entry.video} is annotated twice")
            except BadInputError as e:
                self.bad(entry_id, str(e))
                continue
            seen_frames.add((entry.video, entry.frame))
            per_video.setdefault(entry.video, []).extend(entry.words)
        return [Item(id=f"{subset}/{video}", modality="video", path=cache[video].path,
                     words=tuple(sorted(words, key=lambda w: w.frame)), source=f"tokbench/{subset}",
                     license=self.license, fps=cache[video].fps)
                for video, words in per_video.items()]

    def _face_items(self, subset: str) -> list[Item]:
        label, cache, items, seen = self.label(subset), {}, [], set()
        for i, raw in enumerate(self.entries(subset)):
            what = f"{label} entry {i}"
            video = raw.get("video_name") if isinstance(raw, dict) else None
            item_id = f"{subset}/{video if isinstance(video, str) else f'entry {i}'}"
            try:
                info = self._video_info(cache, subset, raw, what)
                entry = parse_video_face_entry(raw, what, size_of=info and (lambda _v: (info.width, info.height)),
                                               clamp=self.rules.clamp_geometry)
                info = self._require(info, what)
                self._check_size(entry.size, info, f"{what} ({entry.video})")
                if info.frames and entry.frames_annotated > info.frames:
                    raise BadInputError(f"{what}: frame_anns covers {entry.frames_annotated} frames but {info.path} "
                                        f"has {info.frames}")
                if item_id in seen:
                    raise BadInputError(f"{what}: {entry.video} is annotated twice in {label}")
            except BadInputError as e:
                self.bad(item_id, str(e))
                continue
            seen.add(item_id)
            items.append(Item(id=item_id, modality="video", path=info.path, faces=entry.faces,
                              source=f"tokbench/{subset}", license=self.license, fps=info.fps))
        return items

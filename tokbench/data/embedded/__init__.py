"""Embedded curated datasets: real and rendered text, real and composed faces, sample-video clips, assembled
on first use from installed packages (nothing copyrighted is committed; datasets/manifest.json pins every
source). ``EMBEDDED_SUITES`` says which datasets make up the default suites."""
from tokbench.data.dataset import register_dataset
from tokbench.data.embedded.faces import FaceComposed, FaceReal
from tokbench.data.embedded.text_real import TextReal
from tokbench.data.embedded.text_rendered import TextRendered
from tokbench.data.embedded.video import VideoClips

EMBEDDED = {cls.name: cls for cls in (TextReal, TextRendered, FaceReal, FaceComposed, VideoClips)}
for _name, _cls in EMBEDDED.items():
    register_dataset(_name)(_cls)

EMBEDDED_SUITES = {
    "text": ("text-real", "text-rendered"),
    "face": ("face-real", "face-composed"),
    "text-face": ("text-real", "text-rendered", "face-real", "face-composed"),
    "video": ("video-clips",),
}

__all__ = ["EMBEDDED", "EMBEDDED_SUITES", "TextReal", "TextRendered", "FaceReal", "FaceComposed", "VideoClips"]

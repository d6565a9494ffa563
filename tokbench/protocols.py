"""Named evaluation protocols: which evaluators, bins and resize rules produce a number.

A report always names its protocol; rankings never mix protocols.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from tokbench import bins as B
from tokbench.registry import Registry


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    ocr_engine: str
    face_backend: str
    face_bins: str = "new"  # "new" (June 2025 TokBench) or "old" (first release)
    image_resample: str = "lanczos"  # smart padding and restore kernel
    video_resample: str = "bilinear"
    video_pad_multiple: int = 32
    comparable_with: str = ""

    def bounds(self, level: str, resolution: int, modality: str = "image") -> Optional[tuple]:
        """Bin bounds for a row level at a resolution, or None when the level is not binned."""
        table = self._bin_table(level, modality)
        return None if table is None else table.get(resolution)

    def binned_resolutions(self, level: str, modality: str = "image") -> list[int]:
        """The sizes with bins for a row level (empty when the level is never binned)."""
        return sorted(self._bin_table(level, modality) or {})

    def _bin_table(self, level: str, modality: str) -> Optional[dict]:
        if modality == "video":
            table = {"word": B.VIDEO_TEXT_BINS, "face": B.VIDEO_FACE_BINS}.get(level)
        elif level == "word":
            table = B.TEXT_BINS
        elif level == "face":
            table = B.FACE_BINS_NEW if self.face_bins == "new" else B.FACE_BINS_OLD
        else:
            table = None
        return table

    def describe(self) -> dict:
        return asdict(self)


PROTOCOLS: Registry[Protocol] = Registry("protocol")

PROTOCOLS.add("offline", Protocol(
    name="offline",
    description="Evaluators whose weights ship in packages (rapidocr, dlib) with TokBench bins and smart padding;"
                " runs anywhere, not numerically comparable with the published leaderboard",
    ocr_engine="rapidocr", face_backend="dlib"), aliases=("default",))
PROTOCOLS.add("tokbench", Protocol(
    name="tokbench",
    description="The published TokBench protocol: docTR PARSeq (french vocab, 32x128), insightface antelopev2 on"
                " ground-truth landmarks, TokBench bins (new face bins), LANCZOS smart padding",
    ocr_engine="parseq", face_backend="insightface", comparable_with="TokBench leaderboard"))

DEFAULT_PROTOCOL = "offline"

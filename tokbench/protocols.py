"""Named evaluation protocols: which evaluators, bins and input rules produce a number.

A protocol is two independent choices: its evaluators (OCR engine, face backend, bins) and its rules, i.e.
how originals are read, how reconstructions reach the evaluators and how words are cut and decoded.
``official`` rules replicate the official TokBench scripts, defects included (needed to compare with the
published rows); ``clean`` rules fix those defects. ``tokbench`` = published evaluators + official rules,
``tokbench-clean`` = published evaluators + clean rules, ``offline`` = packaged evaluators + clean rules.
Any protocol can take the other rule set or single overrides (``offline:official``,
``offline:official,resave=all``) so that a rule's effect can be measured with the offline evaluators; the
resolved name is what reports record. A report always names its protocol; rankings never mix protocols.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional

from tokbench import bins as B
from tokbench.errors import BadInputError
from tokbench.registry import Registry


@dataclass(frozen=True)
class Rules:
    """Input and scoring rules. Each field says what the official scripts do and what the fix is."""

    name: str
    # reconstructions of .jpg/.jpeg originals re-saved and re-read as JPEG at PIL's defaults (quality 75,
    # 4:2:0), as the official image scripts save under the original file name; "none" keeps them lossless,
    # "all" re-saves every image (to measure the rule on a suite of PNG originals)
    resave: str = "none"  # "none" | "jpg-names" | "all"
    # video reconstructions written as mp4 and read back as the official video scripts do (imageio's ffmpeg
    # writer at the source fps with its effective defaults: libx264 at x264's default CRF 23, yuv420p, frames
    # scaled up to a multiple of 16); "none" keeps them lossless
    video_reencode: str = "none"  # "none" | "imageio-mp4"
    exif_text: bool = True  # text originals with their EXIF orientation (official: PIL without it)
    exif_face: bool = True  # face originals with their EXIF orientation (official: cv2.imread applies it)
    clamp_geometry: bool = True  # boxes/landmarks clamped onto the image, > 1 px outside rejected
    box_cut: str = "clamped"  # "clamped" | "numpy" (official: int-cast boxes sliced as numpy slices them)
    min_crop_px_image: int = 2  # crops with a smaller side below this are excluded (official images: none)
    min_crop_px_video: int = 2  # the official video loader skips crops whose smaller side is <= 1 px
    quad_cut: str = "perspective"  # "perspective" | "doctr-rcrops" (affine from the first 3 int corners)
    video_rounding: str = "exact"  # "exact" round(w*S/h) | "official" int(round(W0*(S/H0)))
    ocr_batches: str = "independent"  # "independent" | "official-64" (GT-bounded decoding, OOV batches skipped)

    def describe(self) -> dict:
        return asdict(self)


CLEAN_RULES = Rules(name="clean")
OFFICIAL_RULES = Rules(name="official", resave="jpg-names", video_reencode="imageio-mp4", exif_text=False,
                       exif_face=True, clamp_geometry=False, box_cut="numpy", min_crop_px_image=0,
                       min_crop_px_video=2, quad_cut="doctr-rcrops", video_rounding="official",
                       ocr_batches="official-64")
RULE_SETS = {"clean": CLEAN_RULES, "official": OFFICIAL_RULES}


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
    rules: Rules = field(default=CLEAN_RULES)
    published_evaluators: bool = False  # every evaluator weight must be present unless the user opts out

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
    description="Evaluators whose weights ship in packages (rapidocr, dlib) with TokBench bins, smart padding and"
                " clean rules; runs anywhere, not numerically comparable with the published leaderboard",
    ocr_engine="rapidocr", face_backend="dlib"), aliases=("default",))
PROTOCOLS.add("tokbench", Protocol(
    name="tokbench",
    description="Replica of the official TokBench pipeline for comparison with the published rows: docTR PARSeq"
                " (french vocab, 32x128, GT-bounded decoding in batches of 64), insightface antelopev2 on"
                " ground-truth landmarks, TokBench bins (new face bins), LANCZOS smart padding, official rules"
                " (JPEG re-save of .jpg reconstructions, mp4 re-encode of video reconstructions, official"
                " reading and cutting, defects included)",
    ocr_engine="parseq", face_backend="insightface", comparable_with="TokBench leaderboard",
    rules=OFFICIAL_RULES, published_evaluators=True))
PROTOCOLS.add("tokbench-clean", Protocol(
    name="tokbench-clean",
    description="TokBench's evaluators and bins with the official scripts' defects fixed (lossless"
                " reconstructions, free decoding, EXIF applied consistently, clamped landmarks, tiny crops"
                " excluded and listed); not numerically comparable with the published rows",
    ocr_engine="parseq", face_backend="insightface", rules=CLEAN_RULES, published_evaluators=True))

DEFAULT_PROTOCOL = "offline"

_RULE_CHOICES = {"resave": ("none", "jpg-names", "all"), "video_reencode": ("none", "imageio-mp4"),
                 "box_cut": ("clamped", "numpy"),
                 "quad_cut": ("perspective", "doctr-rcrops"), "video_rounding": ("exact", "official"),
                 "ocr_batches": ("independent", "official-64")}


def get_protocol(spec: str) -> Protocol:
    """A registered protocol, optionally with another rule set and overrides: ``name[:rules][,key=value...]``.

    A protocol whose rules differ from its registered ones gets a new name (the spec itself) and no claim of
    comparability, so a report can never pass for one produced under the registered protocol.
    """
    name, _, rest = spec.partition(":")
    base = PROTOCOLS.get(name)
    if not rest:
        return base
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    rules = base.rules
    if parts and "=" not in parts[0]:
        if parts[0] not in RULE_SETS:
            raise BadInputError(f"protocol {spec!r}: unknown rule set {parts[0]!r}; valid: {', '.join(RULE_SETS)}")
        rules = RULE_SETS[parts.pop(0)]
    overrides: dict = {}
    kinds = {f.name: f.type for f in fields(Rules) if f.name != "name"}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or key not in kinds:
            raise BadInputError(f"protocol {spec!r}: expected rule=value with a rule among {', '.join(kinds)}, "
                                f"got {part!r}")
        if kinds[key] == "bool":
            if value not in ("true", "false"):
                raise BadInputError(f"protocol {spec!r}: {key} takes true or false, got {value!r}")
            overrides[key] = value == "true"
        elif kinds[key] == "int":
            try:
                overrides[key] = int(value)
            except ValueError:
                raise BadInputError(f"protocol {spec!r}: {key} takes an integer, got {value!r}") from None
        else:
            if value not in _RULE_CHOICES.get(key, ()):
                raise BadInputError(f"protocol {spec!r}: {key} takes one of {', '.join(_RULE_CHOICES[key])}, "
                                    f"got {value!r}")
            overrides[key] = value
    label = rules.name + "".join(f",{k}={v}" for k, v in overrides.items())
    rules = replace(rules, name=label, **overrides)
    if replace(rules, name=base.rules.name) == base.rules:
        return base
    return replace(base, name=f"{base.name}:{label}", rules=rules, comparable_with="",
                   description=f"{base.description} [rules replaced: {label}]")

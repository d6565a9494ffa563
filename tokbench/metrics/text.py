"""Text fidelity (TokBench T-ACC / T-NED): can an OCR engine still read each ground-truth word?

Per word: crop the reconstruction with the original's box at the original resolution, recognise it, and
compare with the ground truth. T-ACC is the case-sensitive exact match (1.0 or 0.0; summaries multiply by
100 for %); T-NED is 1 - Levenshtein(gt, pred) / max(len(gt), len(pred)) with unit costs (the ICDAR 2019
normalised edit distance TokBench uses; 1.0 when both strings are empty). The original's own prediction is
computed once in ``reference`` (cached and reused for every tokenizer) and kept in ``pred_original`` so a
"readable on the original" diagnostic needs no extra OCR pass. Words whose crop is <= 1 px on a side get
NaN scores and the reason in ``excluded`` (aggregation skips NaN), rather than silently vanishing.

The protocol's rules choose how words are cut (``tokbench.evaluators.crops``) and, under the official rules,
replay the official 64-word batches: each word is decoded with its batch's cap (engines that can bound
their decoding) and words of a batch the official script skips get NaN with the reason.
"""
from __future__ import annotations

import math

from rapidfuzz.distance import Levenshtein

from tokbench.errors import BadInputError
from tokbench.evaluators.crops import crop_words
from tokbench.evaluators.ocr import OCREngine, create_ocr_engine
from tokbench.evaluators.versions import package_version
from tokbench.metrics.base import InstanceMetric, Sample, register_metric
from tokbench.protocols import CLEAN_RULES, Rules


def exact_match(gt: str, pred: str) -> float:
    return 1.0 if gt == pred else 0.0


def normalized_edit_similarity(gt: str, pred: str) -> float:
    """1 - Levenshtein / max(len): rapidfuzz's normalized_similarity with unit costs."""
    return float(Levenshtein.normalized_similarity(gt, pred))


class TextFidelity(InstanceMetric):
    name = "text"
    level = "word"
    columns = ("T-ACC", "T-NED")
    higher_is_better = (True, True)
    version = "1"

    def __init__(self, engine: OCREngine, rules: Rules = CLEAN_RULES):
        self.engine = engine
        self.rules = rules

    @property
    def official_batches(self) -> bool:
        return self.rules.ocr_batches == "official-64"

    def _cut(self, pixels, item):
        r = self.rules
        min_side = r.min_crop_px_video if item.modality == "video" else r.min_crop_px_image
        return crop_words(pixels, item.words, item.id, box_cut=r.box_cut, quad_cut=r.quad_cut, min_side=min_side)

    def _read(self, sample: Sample, crops) -> tuple[dict, dict]:
        """Predictions by word index, and words excluded by the official batching (index -> reason)."""
        if not self.official_batches:
            return dict(zip(crops.kept, self.engine.recognize(crops.crops))), {}
        batches = sample.context.get("ocr_batches")
        if batches is None or len(batches) != len(sample.item.words):
            raise BadInputError(f"{sample.item.id}: the official OCR batching rule needs every word's batch "
                                f"({None if batches is None else len(batches)} given for {len(sample.item.words)})")
        skipped = {i: f"official batch {batches[i].batch} skipped: character(s) {batches[i].skipped_for!r} outside"
                      f" the french vocabulary" for i in range(len(batches)) if batches[i].skipped_for}
        keep = [(i, c) for i, c in zip(crops.kept, crops.crops) if i not in skipped]
        caps = [batches[i].cap for i, _ in keep] if self.engine.bounded_decoding else None
        preds = self.engine.recognize([c for _, c in keep], max_lengths=caps)
        return dict(zip((i for i, _ in keep), preds)), skipped

    def describe(self) -> dict:
        return {**super().describe(), "ocr": self.engine.describe(),
                "T-ACC": "case-sensitive exact match per word, stored as 1.0/0.0 (x100 for %)",
                "T-NED": f"1 - Levenshtein/max(len), unit costs, case-sensitive (rapidfuzz "
                         f"{package_version('rapidfuzz')}); stored 0..1",
                "crops": "reconstruction at original resolution cut with the original's ground-truth box or quad",
                "rules": {k: getattr(self.rules, k) for k in ("name", "box_cut", "quad_cut", "min_crop_px_image",
                                                              "min_crop_px_video", "ocr_batches")},
                "decoding": ("capped at the official 64-word batch's longest GT word" if self.official_batches
                             and self.engine.bounded_decoding else "free (the engine cannot be capped)"
                             if self.official_batches else "free"),
                "extras": "gt, pred, pred_original (engine output on the original), excluded (reason)"}

    def reference(self, sample: Sample) -> dict:
        words = sample.item.words
        by_word, _ = self._read(sample, self._cut(sample.original, sample.item))
        return {"pred": [by_word.get(i) for i in range(len(words))]}

    def score(self, sample: Sample, reference) -> list[dict]:
        item = sample.item
        words = item.words
        if not words:
            return []
        if sample.reconstruction.shape != sample.original.shape:
            raise BadInputError(f"{item.id}: reconstruction {sample.reconstruction.shape} does not match the "
                                f"original {sample.original.shape}; word boxes need the original resolution")
        ref_preds = (reference or {}).get("pred")
        if ref_preds is None or len(ref_preds) != len(words):
            raise BadInputError(f"{item.id}: cached OCR reference has {None if ref_preds is None else len(ref_preds)}"
                                f" entries for {len(words)} words (stale cache?)")
        crops = self._cut(sample.reconstruction, item)
        preds, skipped = self._read(sample, crops)
        excluded = {**crops.excluded, **skipped}
        rows = []
        for i, word in enumerate(words):
            row = {"instance": i, "frame": int(word.frame), "ratio": float(word.ratio), "gt": word.text,
                   "pred_original": ref_preds[i] if ref_preds[i] is not None else ""}
            if i in excluded:
                row.update({"T-ACC": math.nan, "T-NED": math.nan, "pred": "", "excluded": excluded[i]})
            else:
                pred = preds[i]
                row.update({"T-ACC": exact_match(word.text, pred),
                            "T-NED": normalized_edit_similarity(word.text, pred), "pred": pred, "excluded": ""})
            rows.append(row)
        return rows


@register_metric("text", "ocr")
def _text(protocol, device="cpu"):
    return TextFidelity(create_ocr_engine(protocol.ocr_engine, device=device), rules=protocol.rules)

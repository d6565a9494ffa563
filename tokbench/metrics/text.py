"""Text fidelity (TokBench T-ACC / T-NED): can an OCR engine still read each ground-truth word?

Per word: crop the reconstruction with the original's box at the original resolution, recognise it, and
compare with the ground truth. T-ACC is the case-sensitive exact match (1.0 or 0.0; summaries multiply by
100 for %); T-NED is 1 - Levenshtein(gt, pred) / max(len(gt), len(pred)) with unit costs (the ICDAR 2019
normalised edit distance TokBench uses; 1.0 when both strings are empty). The original's own prediction is
computed once in ``reference`` (cached and reused for every tokenizer) and kept in ``pred_original`` so a
"readable on the original" diagnostic needs no extra OCR pass. Words whose crop is <= 1 px on a side get
NaN scores and the reason in ``excluded`` (aggregation skips NaN), rather than silently vanishing.
"""
from __future__ import annotations

import math

from rapidfuzz.distance import Levenshtein

from tokbench.errors import BadInputError
from tokbench.evaluators.crops import crop_words
from tokbench.evaluators.ocr import OCREngine, create_ocr_engine
from tokbench.evaluators.versions import package_version
from tokbench.metrics.base import InstanceMetric, Sample, register_metric


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

    def __init__(self, engine: OCREngine):
        self.engine = engine

    def describe(self) -> dict:
        return {**super().describe(), "ocr": self.engine.describe(),
                "T-ACC": "case-sensitive exact match per word, stored as 1.0/0.0 (x100 for %)",
                "T-NED": f"1 - Levenshtein/max(len), unit costs, case-sensitive (rapidfuzz "
                         f"{package_version('rapidfuzz')}); stored 0..1",
                "crops": "reconstruction at original resolution cut with the original's ground-truth box "
                         "(int-truncated, as docTR) or quad (perspective warp); smaller side <= 1 px excluded (NaN)",
                "extras": "gt, pred, pred_original (engine output on the original), excluded (reason)"}

    def reference(self, sample: Sample) -> dict:
        words = sample.item.words
        crops = crop_words(sample.original, words, sample.item.id)
        preds = self.engine.recognize(crops.crops)
        by_word = dict(zip(crops.kept, preds))
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
        crops = crop_words(sample.reconstruction, words, item.id)
        preds = dict(zip(crops.kept, self.engine.recognize(crops.crops)))
        rows = []
        for i, word in enumerate(words):
            row = {"instance": i, "frame": int(word.frame), "ratio": float(word.ratio), "gt": word.text,
                   "pred_original": ref_preds[i] if ref_preds[i] is not None else ""}
            if i in crops.excluded:
                row.update({"T-ACC": math.nan, "T-NED": math.nan, "pred": "", "excluded": crops.excluded[i]})
            else:
                pred = preds[i]
                row.update({"T-ACC": exact_match(word.text, pred),
                            "T-NED": normalized_edit_similarity(word.text, pred), "pred": pred, "excluded": ""})
            rows.append(row)
        return rows


@register_metric("text", "ocr")
def _text(protocol, device="cpu"):
    return TextFidelity(create_ocr_engine(protocol.ocr_engine, device=device))

"""The official text evaluator's batches, replayed per word.

The official ``eval_text.py`` reads every word crop of a subset in annotation order (images in file order,
words in entry order), in batches of 64, and passes the batch's ground-truth words to docTR's PARSeq. That
has two effects on a word's score that depend on its neighbours: decoding is capped at the longest
ground-truth word of the batch, and a batch holding a character outside the model's vocabulary raises in
docTR's target encoding and is skipped whole. Both follow from the annotations alone, so each word's batch
cap and skip flag are computed here once per dataset, and each item is then scored on its own with them
(a PARSeq prediction depends on its own crop and the cap only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from tokbench.data.items import Item
from tokbench.errors import MissingWeightsError

OFFICIAL_BATCH_SIZE = 64


@dataclass(frozen=True)
class WordBatch:
    """Where the official evaluator puts one word: its batch, the batch's longest GT word, and whether the
    batch is skipped (and for which characters)."""

    batch: int
    cap: int
    skipped_for: str = ""  # characters outside the vocabulary that make the batch raise; "" = scored


def french_vocab() -> str:
    try:
        from doctr.datasets import VOCABS
    except ImportError as e:
        raise MissingWeightsError(f"the official OCR batching rule needs python-doctr's french vocabulary ({e})"
                                  ) from None
    return VOCABS["french"]


def official_batches(items: Iterable[Item], vocab: str, batch_size: int = OFFICIAL_BATCH_SIZE
                     ) -> dict[str, list[WordBatch]]:
    """Item id -> one WordBatch per word. Words are batched per ``item.source`` (one official run per subset),
    in item order then word order."""
    by_source: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        by_source.setdefault(item.source, []).extend((item.id, w.text) for w in item.words)
    allowed = set(vocab)
    out: dict[str, list[WordBatch]] = {}
    for words in by_source.values():
        for b, start in enumerate(range(0, len(words), batch_size)):
            chunk = words[start:start + batch_size]
            cap = max(len(text) for _, text in chunk)
            bad = "".join(sorted({c for _, text in chunk for c in text if c not in allowed}))
            for item_id, _ in chunk:
                out.setdefault(item_id, []).append(WordBatch(b, cap, bad))
    return out

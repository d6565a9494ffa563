"""The published TokBench leaderboard (package data, see README.md here) as leaderboard rows.

Published rows carry protocol ``tokbench``: the app ranks them only beside runs made under that protocol.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from tokbench.leaderboard.catalog import BINNED_COLUMNS, PUBLISHED

PUBLISHED_CSV = Path(__file__).with_name("published_tokbench.csv")
PUBLISHED_SUITE = "TokBench leaderboard"
PUBLISHED_EVALUATORS = "docTR PARSeq + insightface antelopev2 (published)"
_COLUMNS = {"t_acc": "T-ACC", "t_ned": "T-NED", "f_sim": "F-Sim"}


@lru_cache(maxsize=1)
def published_rows() -> pd.DataFrame:
    """All published rows in the leaderboard's column layout (T-ACC / T-NED in %, F-Sim 0-1, as published)."""
    raw = pd.read_csv(PUBLISHED_CSV, dtype={"factor": str, "type": str})
    records = []
    for _, r in raw.iterrows():
        row = {"source": PUBLISHED, "tokenizer": str(r["method"]), "type": str(r["type"]),
               "factor": str(r["factor"]), "name": str(r["method"]), "kind": "published", "run": "",
               "suite": PUBLISHED_SUITE, "protocol": "tokbench", "modality": str(r["setting"]),
               "resolution": int(r["resolution"]), "evaluators": PUBLISHED_EVALUATORS,
               "evaluators_short": PUBLISHED_EVALUATORS, "date": "", "reference": str(r["source"])}
        for prefix, metric in _COLUMNS.items():
            for b in BINNED_COLUMNS:
                row[f"{metric} {b}"] = float(r[f"{prefix}_{b.lower()}"])
        records.append(row)
    return pd.DataFrame.from_records(records)

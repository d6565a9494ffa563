"""Rankings: which rows may be compared, in what order.

A ranking holds one suite, one protocol, one resolution and one evaluator set. Published TokBench rows join
every ranking of the ``tokbench`` protocol with their modality and resolution (that protocol fixes the
evaluators), and form rankings of their own where no such run exists; they never join another protocol.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tokbench.leaderboard.catalog import (BINNED_COLUMNS, FIDELITY_METRICS, INFO_COLUMNS, N_SUFFIX, OWN, PUBLISHED,
                                          lower_is_better, metric_of)

RANK_PREFERENCE = ("T-ACC Mean", "T-NED Mean", "F-Sim Mean", "PSNR", "SSIM")
PUBLISHED_PROTOCOL = "tokbench"


@dataclass(frozen=True)
class Ranking:
    suite: str
    protocol: str
    modality: str
    resolution: int
    evaluators: str
    evaluators_short: str
    own: int
    published: int

    @property
    def key(self) -> str:
        return "|".join(map(str, (self.suite, self.protocol, self.modality, self.resolution, self.evaluators)))

    @property
    def label(self) -> str:
        return f"{self.suite} · protocol {self.protocol} · {self.modality} {self.resolution} · {self.evaluators_short}"


def rankings(board: pd.DataFrame) -> list[Ranking]:
    """Every ranking the rows allow: own groups first (most runs first), then published-only ones."""
    out: list[Ranking] = []
    if board.empty:
        return out
    own = board[board["source"] == OWN]
    pub = board[board["source"] == PUBLISHED]
    covered = set()
    if not own.empty:
        keys = ["suite", "protocol", "modality", "resolution", "evaluators", "evaluators_short"]
        for vals, g in own.groupby(keys, sort=True, dropna=False):
            suite, protocol, modality, res, ev, short = vals
            n_pub = 0
            if protocol == PUBLISHED_PROTOCOL:
                n_pub = int(((pub["modality"] == modality) & (pub["resolution"] == res)).sum())
                covered.add((modality, int(res)))
            out.append(Ranking(suite, protocol, modality, int(res), ev, short, len(g), n_pub))
        out.sort(key=lambda r: (-r.own, r.protocol, r.suite, r.resolution, r.evaluators))
    if not pub.empty:
        for (modality, res, suite, ev), g in pub.groupby(["modality", "resolution", "suite", "evaluators"], sort=True):
            if (modality, int(res)) not in covered:
                out.append(Ranking(suite, PUBLISHED_PROTOCOL, modality, int(res), ev, ev, 0, len(g)))
    return out


def ranking_rows(board: pd.DataFrame, ranking: Ranking, include_published: bool = True) -> pd.DataFrame:
    """The rows of one ranking; numeric columns no row fills are dropped."""
    own = board[(board["source"] == OWN) & (board["suite"] == ranking.suite)
                & (board["protocol"] == ranking.protocol) & (board["modality"] == ranking.modality)
                & (board["resolution"] == ranking.resolution) & (board["evaluators"] == ranking.evaluators)]
    own = own.iloc[sorted(range(len(own)), key=lambda i: natural_key(str(own["tokenizer"].iloc[i])))]
    parts = [own]
    if include_published and ranking.protocol == PUBLISHED_PROTOCOL:
        parts.append(board[(board["source"] == PUBLISHED) & (board["modality"] == ranking.modality)
                           & (board["resolution"] == ranking.resolution)])
    rows = pd.concat(parts, ignore_index=True) if any(not p.empty for p in parts) else own.iloc[:0]
    keep = [c for c in rows.columns if c in INFO_COLUMNS or c == "reference" or rows[c].notna().any()]
    rows = rows[keep].reset_index(drop=True)
    rows["display"] = distinct_names(rows)
    return rows


def distinct_names(rows: pd.DataFrame) -> list[str]:
    """One name per row: the tokenizer label, plus the run folder when two own runs share a label (runs are
    never merged), and "(published)" on published rows."""
    own = rows["source"] == OWN
    counts = rows.loc[own, "tokenizer"].value_counts()
    names = []
    for _, r in rows.iterrows():
        name = str(r["tokenizer"])
        if r["source"] == PUBLISHED:
            names.append(f"{name} (published)")
        elif counts.get(name, 0) > 1:
            names.append(f"{name} · {r['run']}")
        else:
            names.append(name)
    return names


PIXEL_ORDER = ("bpp", "PSNR", "SSIM", "LPIPS")


def metric_columns(rows: pd.DataFrame, every_bin: bool = True) -> list[str]:
    """Numeric score columns in display order: T-ACC, T-NED, F-Sim per bin, the rate and pixel metrics, then
    the rest by name. ``every_bin=False`` keeps only the Mean of binned metrics other than those three."""
    numeric = [c for c in rows.columns if c not in INFO_COLUMNS and c != "reference" and not c.endswith(N_SUFFIX)
               and pd.api.types.is_numeric_dtype(rows[c])]
    first = [f"{m} {b}" for m in FIDELITY_METRICS for b in BINNED_COLUMNS if f"{m} {b}" in numeric]
    pixel = [c for c in PIXEL_ORDER if c in numeric]
    bin_order = {b: i for i, b in enumerate(BINNED_COLUMNS)}
    rest = sorted((c for c in numeric if c not in first and c not in pixel),  # S, M, L, Mean within a metric
                  key=lambda c: (metric_of(c), bin_order.get(c[len(metric_of(c)) + 1:], -1)))
    if not every_bin:
        rest = [c for c in rest if metric_of(c) == c or c.endswith(f" {BINNED_COLUMNS[-1]}")]
    return first + pixel + rest


def default_rank_column(rows: pd.DataFrame) -> Optional[str]:
    cols = metric_columns(rows)
    for c in RANK_PREFERENCE:
        if c in cols and rows[c].notna().any():
            return c
    return cols[0] if cols else None


def rank(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sort by ``by`` (its metric's direction) and number the rows 1..n; rows without a value come last, unranked."""
    if by not in rows.columns:
        raise KeyError(f"no column {by!r} in this ranking; columns: {', '.join(metric_columns(rows))}")
    asc = lower_is_better(by)
    out = rows.sort_values(by, ascending=asc, na_position="last", kind="stable").reset_index(drop=True)
    has = out[by].notna().to_numpy()
    ranks = np.where(has, np.cumsum(has), np.nan)
    out.insert(0, "rank", pd.array([int(r) if not math.isnan(r) else None for r in ranks], dtype="Int64"))
    return out


def filter_rows(rows: pd.DataFrame, text: str = "", types: Optional[Sequence[str]] = None,
                show_published: bool = True) -> pd.DataFrame:
    """Case-insensitive substring filter on tokenizer names, a type filter and the published switch."""
    keep = pd.Series(True, index=rows.index)
    if text.strip():
        needle = text.strip().lower()
        keep &= rows["tokenizer"].str.lower().str.contains(needle, regex=False) | \
            rows["run"].fillna("").str.lower().str.contains(needle, regex=False)
    if types:
        keep &= rows["type"].isin(list(types))
    if not show_published:
        keep &= rows["source"] != PUBLISHED
    return rows[keep].reset_index(drop=True)


def natural_key(text: str) -> tuple:
    """Sort key that orders ``jpeg:quality=5`` before ``jpeg:quality=10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))


def display_name(row: pd.Series | dict) -> str:
    """Tokenizer name as charts show it: published rows say so."""
    shown = row.get("display") if hasattr(row, "get") else None
    if isinstance(shown, str) and shown:
        return shown
    name = str(row["tokenizer"])
    return f"{name} (published)" if row["source"] == PUBLISHED else name

"""Finding report folders and turning their summaries into leaderboard rows (one per run and resolution).

Reading is the slow part with hundreds of runs, so every folder is read once per manifest modification time
(``read_run`` is memoised on ``(path, mtime_ns)``): a new or re-written run costs one read, the others none.
The app wraps ``build_catalog`` in ``st.cache_data`` keyed on the same signature, so an interaction that
changes no report reads nothing at all.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

import pandas as pd

from tokbench.bins import BIN_NAMES

OWN = "own run"
PUBLISHED = "published"
MEAN = "Mean"
BINNED_COLUMNS = (*BIN_NAMES, MEAN)

# TokBench shows these in %; reports store fractions 0..1 (manifest "units": "fraction 0..1")
PERCENT_METRICS = ("T-ACC", "T-NED")
FIDELITY_METRICS = ("T-ACC", "T-NED", "F-Sim")
_LOWER_IS_BETTER = ("bpp", "LPIPS", "F-L2", "rFID", "rFVD", "FID", "FVD")
KIND_TYPE = {"discrete": "D", "continuous": "C", "codec": "codec", "baseline": "-"}
GROUP_KEYS = ["suite", "protocol", "modality", "resolution", "evaluators"]
INFO_COLUMNS = ["source", "tokenizer", "type", "factor", "name", "kind", "run", "suite", "protocol", "modality",
                "resolution", "evaluators", "evaluators_short", "date", "display"]
N_SUFFIX = " n"  # "T-ACC S n": instances behind "T-ACC S" (shown beside it, never ranked)
# the metrics each evaluator-carrying metric produces and the row level they need: a run whose rows hold no
# word (face) scored nothing with the OCR engine (face backend), so its label does not name them
METRIC_LEVELS = {"text": "word", "face": "face"}
UNITS = {"T-ACC": "% of words read exactly", "T-NED": "% normalised edit similarity",
         "F-Sim": "cosine similarity of the original's and the reconstruction's face embeddings",
         "F-L2": "L2 distance of the two face embeddings (raw dlib descriptors / unit ArcFace embeddings)",
         "ID-kept": "share of faces for which the backend's same-person rule still holds (dlib: L2 < 0.6), 0-1",
         "PSNR": "dB", "SSIM": "0-1", "LPIPS": "perceptual distance", "bpp": "bits per coded pixel",
         "rFID": "Frechet distance", "rFVD": "Frechet distance"}
MAX_DEPTH = 2  # reports/<run>/ and reports/<group>/<run>/


def lower_is_better(column: str) -> bool:
    """Direction of a leaderboard column (``"T-ACC Mean"`` -> the metric's)."""
    metric = column.rsplit(" ", 1)[0] if column.endswith(tuple(f" {b}" for b in BINNED_COLUMNS)) else column
    return metric.startswith(_LOWER_IS_BETTER)


def metric_of(column: str) -> str:
    for b in BINNED_COLUMNS:
        if column.endswith(f" {b}"):
            return column[: -len(b) - 1]
    return column


def report_signature(root: str | Path) -> tuple[tuple[str, int], ...]:
    """``(folder, manifest mtime_ns)`` for every finished report under ``root`` (cheap: stats only)."""
    root = Path(root)
    found: list[tuple[str, int]] = []

    def visit(folder: Path, depth: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        names = {e.name for e in entries}
        if "manifest.json" in names:
            try:
                found.append((str(folder), os.stat(folder / "manifest.json").st_mtime_ns))
            except OSError:
                pass
            return
        if depth >= MAX_DEPTH:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=True) and not e.name.startswith("."):
                visit(Path(e.path), depth + 1)

    if root.is_dir():
        visit(root, 0)
    return tuple(sorted(found))


def unfinished_folders(root: str | Path) -> list[str]:
    """Run folders with rows but no manifest yet (running, or killed before the end)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/rows.parquet") if not (p.parent / "manifest.json").exists())


READS = {"count": 0}  # folders actually read from disk (the tests check that the cache holds)


@lru_cache(maxsize=8192)
def read_run(path: str, mtime_ns: int) -> dict:
    """One report folder's manifest, summary and set-level metrics; ``error`` instead when unreadable."""
    READS["count"] += 1
    folder = Path(path)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        summary = pd.read_csv(folder / "summary.csv")
        extra = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError) as e:
        return {"path": path, "error": f"{type(e).__name__}: {e}"}
    if not isinstance(manifest, dict):
        return {"path": path, "error": "manifest.json is not a JSON object"}
    try:  # the footer only: a truncated or overwritten rows.parquet is caught without reading the rows
        import pyarrow.parquet as pq

        pq.read_metadata(folder / "rows.parquet")
    except Exception as e:  # noqa: BLE001 - any failure means the gallery and comparisons cannot use it
        return {"path": path, "error": f"rows.parquet unreadable: {type(e).__name__}: {str(e)[:200]}"}
    return {"path": path, "manifest": manifest, "summary": summary, "sets": extra.get("sets") or {},
            "unavailable": extra.get("unavailable") or manifest.get("unavailable") or {}}


def evaluator_set(manifest: dict, levels: Optional[set] = None) -> tuple[str, str]:
    """(full, short) description of the evaluators behind a run's numbers: OCR engine, face backend, ...

    Every nested description that carries a ``version`` counts (``ocr``, ``face_backend``, feature nets);
    runs are ranked together only when these agree exactly.
    """
    full, short = [], []
    for name, desc in sorted((manifest.get("metrics") or {}).items()):
        if not isinstance(desc, dict):
            continue
        if levels is not None and name in METRIC_LEVELS and METRIC_LEVELS[name] not in levels:
            continue  # e.g. a video run that scored pixels only: its OCR / face evaluators produced nothing
        for key, sub in sorted(desc.items()):
            if isinstance(sub, dict) and "version" in sub:
                who = str(sub.get("engine") or sub.get("backend") or sub.get("name") or key)
                version = str(sub["version"])
                full.append(f"{who} ({version})")
                first = version.split(";")[0].split("(")[0].strip()
                short.append(first if first.lower().startswith(who.lower()) else f"{who} {first}".strip())
    if not full:
        return "pixel metrics only", "pixel metrics only"
    return " + ".join(dict.fromkeys(full)), " + ".join(dict.fromkeys(short))


def _factor(spec: dict, modality: str) -> str:
    sf, tf = int(spec.get("spatial_factor") or 1), int(spec.get("temporal_factor") or 1)
    if (sf, tf) == (1, 1) and spec.get("kind") in ("discrete", "continuous"):
        return "1D"  # a learned tokenizer without a spatial grid (TiTok), as TokBench's Factor column says
    if modality == "video":
        return f"{tf}x{sf}x{sf}" if (sf, tf) != (1, 1) else "-"
    return f"{sf}x" if sf > 1 else "-"


def _modality(manifest: dict) -> str:
    suite = manifest.get("suite_spec") or {}
    if suite.get("modality"):
        return str(suite["modality"])
    mods = {d.get("modality") for d in manifest.get("datasets") or [] if isinstance(d, dict)}
    return "video" if "video" in mods else "image"


def _percent_metrics(manifest: dict) -> set[str]:
    units = manifest.get("units") or {}
    marked = {m for m, u in units.items() if isinstance(u, str) and u.startswith("fraction")}
    return marked | set(PERCENT_METRICS) if not units else marked


def metric_values(summary: pd.DataFrame, resolution: int, percent: set[str]) -> dict:
    """Leaderboard columns of one resolution: ``"<metric> S|M|L|Mean"`` for binned metrics, ``"<metric>"``
    (over all instances) otherwise; fractions shown in % where TokBench does."""
    out: dict = {}
    if summary.empty:
        return out
    part = summary[summary["resolution"] == resolution]
    for _, r in part.iterrows():
        metric = str(r["metric"])
        scale = 100.0 if metric in percent else 1.0
        # binned when any bin holds instances (n_binned also counts image rows, whose bin is empty)
        counts = [_num(r.get(f"n_{b}")) for b in BIN_NAMES]
        if any(c > 0 for c in counts if not math.isnan(c)):
            for b in BINNED_COLUMNS:
                out[f"{metric} {b}"] = _num(r.get(b)) * scale
                out[f"{metric} {b}{N_SUFFIX}"] = _num(r.get("n_binned" if b == MEAN else f"n_{b}"))
        else:
            out[metric] = _num(r.get("all")) * scale
    return out


def _num(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def protocol_of(manifest: dict) -> str:
    """The run's protocol name. Runs named ``tokbench`` before protocols recorded their rules used what is now
    ``tokbench-clean`` (lossless, free decoding), so they never rank beside the published rows; video runs
    named ``tokbench`` before the rules had the mp4 re-encode kept their reconstructions lossless."""
    protocol = manifest.get("protocol") or {}
    name = str(protocol.get("name") or "?")
    if name == "tokbench" and "rules" not in protocol:
        return "tokbench-clean"
    if name == "tokbench" and _modality(manifest) == "video" and "video_reencode" not in protocol["rules"]:
        return "tokbench:official,video_reencode=none"
    return name


def board_rows(run_id: str, record: dict) -> list[dict]:
    """Leaderboard rows of one report: one per resolution it scored."""
    m = record["manifest"]
    tok = m.get("tokenizer") or {}
    spec = tok.get("spec") or {}
    modality = _modality(m)
    summary = record["summary"]
    full, short = evaluator_set(m, set(summary["level"]) if "level" in summary else None)
    percent = _percent_metrics(m)
    resolutions = sorted({int(r) for r in summary["resolution"].unique()}) if not summary.empty else \
        [int(r) for r in m.get("resolutions") or []]
    rows = []
    for res in resolutions:
        row = {"source": OWN, "tokenizer": str(tok.get("label") or tok.get("name") or "?"),
               "type": KIND_TYPE.get(spec.get("kind"), spec.get("kind") or "?"), "factor": _factor(spec, modality),
               "name": str(tok.get("name") or tok.get("label") or "?"), "kind": str(spec.get("kind") or "?"),
               "run": run_id, "suite": str(m.get("suite") or "?"),
               "protocol": protocol_of(m), "modality": modality,
               "resolution": res, "evaluators": full, "evaluators_short": short, "date": str(m.get("date") or "")}
        row.update(metric_values(summary, res, percent))
        for name, value in (record.get("sets") or {}).get(str(res), {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not name.endswith("_N"):
                row[name] = float(value)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RunRef:
    """A finished run, light enough to copy on every interaction; ``record()`` reads (memoised) the rest."""

    path: str
    mtime_ns: int
    label: str
    date: str
    has_instances: bool  # scored words or faces (the gallery has something to show)

    def record(self) -> dict:
        return read_run(self.path, self.mtime_ns)


@dataclass
class Catalog:
    """Everything the pages need: leaderboard rows (own and published) and the runs behind them."""

    root: str
    board: pd.DataFrame
    runs: dict[str, RunRef] = field(default_factory=dict)  # run id -> run
    problems: dict[str, str] = field(default_factory=dict)  # run id -> why it could not be read

    @property
    def own(self) -> pd.DataFrame:
        return self.board[self.board["source"] == OWN]


def run_id(root: str | Path, path: str | Path) -> str:
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
        return str(rel) if str(rel) != "." else Path(path).name
    except ValueError:
        return Path(path).name


def build_catalog(root: str | Path, signature: tuple[tuple[str, int], ...],
                  published: Optional[pd.DataFrame] = None) -> Catalog:
    """Leaderboard rows for every report in ``signature`` plus the published ones."""
    runs, problems, rows = {}, {}, []
    for path, mtime in signature:
        rid = run_id(root, path)
        record = read_run(path, mtime)
        if "error" in record:
            problems[rid] = record["error"]
            continue
        try:
            rows.extend(board_rows(rid, record))
        except (KeyError, TypeError, ValueError) as e:
            problems[rid] = f"unexpected report layout: {type(e).__name__}: {e}"
            continue
        summary = record["summary"]
        runs[rid] = RunRef(path, mtime, str((record["manifest"].get("tokenizer") or {}).get("label") or "?"),
                           str(record["manifest"].get("date") or ""),
                           bool(not summary.empty and summary["level"].isin(["word", "face"]).any()))
    own = pd.DataFrame.from_records(rows)
    frames = [f for f in (own, published) if f is not None and not f.empty]
    board = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame(columns=INFO_COLUMNS)
    for c in INFO_COLUMNS:
        if c not in board.columns:
            board[c] = None
    board["resolution"] = board["resolution"].astype("int64") if not board.empty else board["resolution"]
    return Catalog(str(root), board, runs, problems)

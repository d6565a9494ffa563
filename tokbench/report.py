"""Reports: per-instance rows (parquet), a binned summary (CSV + JSON) and a provenance manifest.

Layout of a run folder::

    rows.parquet    one row per scored instance (image / video / word / face)
    summary.csv     per resolution x level x metric: S, M, L, Mean (macro over bins), micro, all, counts
    summary.json    the same records plus set-level metrics (rFID ...) and unavailable metrics
    manifest.json   what produced the numbers: tokenizer, checkpoint sha256, evaluators, data hashes, ...
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tokbench.bins import BIN_NAMES, aggregate
from tokbench.cache import _UMASK, make_temp_dir, replace_dir
from tokbench.errors import BadInputError

KEY_COLUMNS = ["resolution", "dataset", "item", "level", "instance"]
META_COLUMNS = KEY_COLUMNS + ["source", "frame", "ratio", "bin"]
SUMMARY_COLUMNS = ["resolution", "level", "metric", *BIN_NAMES, "Mean", "micro", "all",
                   *(f"n_{b}" for b in BIN_NAMES), "n_binned", "n_all"]


def metric_columns(rows: pd.DataFrame) -> list[str]:
    """Numeric columns that hold metric values (everything that is not a key or annotation)."""
    return [c for c in rows.columns if c not in META_COLUMNS and pd.api.types.is_numeric_dtype(rows[c])]


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Aggregate rows per resolution, level and metric with the rows' bins (TokBench Mean = macro)."""
    records = []
    if rows.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    for (res, level), group in rows.groupby(["resolution", "level"], sort=True):
        bins = np.array([b if isinstance(b, str) and b else None for b in group["bin"]], dtype=object)
        for col in metric_columns(group):
            values = group[col].to_numpy(dtype=np.float64)
            if np.isnan(values).all():
                continue
            records.append({"resolution": int(res), "level": level, "metric": col, **aggregate(values, bins)})
    return pd.DataFrame.from_records(records, columns=SUMMARY_COLUMNS)


def _jsonable(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return _jsonable(float(obj))
    return obj


def _portable(obj):
    """summary.json is compared across machines: the home folder is written as ``~`` (the manifest keeps
    the full paths, recorded once)."""
    home = str(Path.home())
    if isinstance(obj, str):
        return obj.replace(home + os.sep, "~" + os.sep) if len(home) > 1 else obj
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_portable(v) for v in obj]
    return obj


def dumps(obj) -> bytes:
    return (json.dumps(_jsonable(obj), indent=2, sort_keys=True, default=str) + "\n").encode()


@dataclass
class Report:
    path: Path
    rows: pd.DataFrame
    summary: pd.DataFrame
    sets: dict  # set-level metric values, e.g. {"256": {"rFID": 1.2, "rFID_N": 300}}
    manifest: dict

    def write(self) -> Path:
        """Every file is written into a hidden temporary sibling folder, which then replaces the run folder
        in one rename: a reader, or a run killed half-way, never sees rows of one run with another's manifest."""
        final = self.path
        tmp = make_temp_dir(final.parent, final.name)
        try:
            files = {
                "rows.parquet": self.rows.to_parquet(index=False, engine="pyarrow"),
                "summary.csv": self.summary.to_csv(index=False, float_format="%.6g").encode(),
                "summary.json": dumps(_portable({"summary": self.summary.to_dict(orient="records"),
                                                 "sets": self.sets,
                                                 "unavailable": self.manifest.get("unavailable", {})})),
                "manifest.json": dumps(self.manifest),
            }
            for name, data in files.items():
                with open(tmp / name, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp / name, 0o666 & ~_UMASK)
                if os.environ.get("TOKBENCH_TEST_KILL_AFTER") == name:  # fault-injection hook for the tests
                    os.kill(os.getpid(), signal.SIGKILL)
            replace_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # after a swap: the previous report
        return final

    def format(self, metrics: Optional[list[str]] = None) -> str:
        """Human-readable summary: one block per resolution, TokBench-style S/M/L/Mean."""
        lines = [f"{self.manifest.get('tokenizer', {}).get('label', '?')} on {self.manifest.get('suite', '?')}"
                 f" (protocol {self.manifest.get('protocol', {}).get('name', '?')})"]
        s = self.summary
        for res in sorted(s["resolution"].unique()) if not s.empty else []:
            lines.append(f"  resolution {res}")
            for _, r in s[s["resolution"] == res].iterrows():
                if metrics and r["metric"] not in metrics:
                    continue
                if r["n_binned"] > 0:
                    bins = "  ".join(f"{b} {_fmt(r[b])} (n={r['n_' + b]})" for b in BIN_NAMES)
                    lines.append(f"    {r['level']:<6} {r['metric']:<8} {bins}  Mean {_fmt(r['Mean'])}"
                                 f"  all {_fmt(r['all'])} (n={r['n_all']})")
                else:
                    lines.append(f"    {r['level']:<6} {r['metric']:<8} all {_fmt(r['all'])} (n={r['n_all']})")
            for name, value in sorted(self.sets.get(str(res), {}).items()):
                lines.append(f"    set    {name:<8} {_fmt(value)}")
        for name, why in sorted(self.manifest.get("unavailable", {}).items()):
            lines.append(f"  unavailable: {name}: {why}")
        for item, why in self.manifest.get("skipped", []):
            lines.append(f"  skipped: {item}: {why}")
        return "\n".join(lines)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def load_report(path: str | Path) -> Report:
    """Read a run folder. A missing manifest is FileNotFoundError (not a report at all); any damaged file is
    a BadInputError naming the file and what is wrong, so callers (check, report) never confuse it with a
    regression."""
    path = Path(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{path} is not a tokbench report (no manifest.json)")
    manifest = _read_json(manifest_file)
    rows = _read_table(path / "rows.parquet", KEY_COLUMNS + ["bin"], lambda f: pd.read_parquet(f))
    summary = _read_table(path / "summary.csv", ["resolution", "level", "metric"], pd.read_csv)
    sets = _read_json(path / "summary.json").get("sets", {})
    if not isinstance(sets, dict):
        raise BadInputError(f"{path / 'summary.json'}: damaged report file: \"sets\" is {type(sets).__name__}, "
                            "expected an object")
    return Report(path, rows, summary, sets, manifest)


def _read_json(f: Path) -> dict:
    try:
        doc = json.loads(f.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{f}: damaged report: the file is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInputError(f"{f}: damaged report file: not valid UTF-8 JSON ({_first_line(e)})") from None
    if not isinstance(doc, dict):
        raise BadInputError(f"{f}: damaged report file: expected a JSON object, got {type(doc).__name__}")
    return doc


def _read_table(f: Path, required: list[str], reader) -> pd.DataFrame:
    if not f.is_file():
        raise BadInputError(f"{f}: damaged report: the file is missing")
    try:
        table = reader(f)
    except Exception as e:  # pyarrow/pandas raise many types for torn or foreign files
        raise BadInputError(f"{f}: damaged report file: cannot be read ({type(e).__name__}: {_first_line(e)})"
                            ) from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise BadInputError(f"{f}: damaged report file: no column(s) {', '.join(missing)}")
    return table


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__

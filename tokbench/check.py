"""Regression gate: is a candidate checkpoint worse than a baseline on the same instances?

Both runs score the same instances (same suite, protocol, resolutions, data and evaluators, or the check
refuses), so each instance gives a paired difference ``candidate - baseline``. Per metric, resolution and
TokBench bin the gate reports the mean difference with a seeded percentile bootstrap interval (instances
resampled with replacement; for the TokBench Mean each bin is resampled separately and the three bin means
averaged, exactly as the Mean is defined). Pairing removes the between-image variance that dominates a
comparison of two means, so real losses show up on small CI subsets while noise does not.

Verdicts, with ``max_drop`` >= 0 in the metric's display units (percentage points for T-ACC, T-NED and
ID-kept, which rows store as fractions; dB for PSNR; raw units otherwise):

* higher-is-better: ``regress`` when the whole interval lies below ``-max_drop``, ``improve`` when it lies
  wholly above ``+max_drop``, else ``pass``;
* lower-is-better (LPIPS, F-L2, bpp ...): mirrored, ``regress`` when wholly above ``+max_drop`` and
  ``improve`` when wholly below ``-max_drop``.

Exit codes: 0 no regression (improvements pass), 1 at least one regression, 2 usage error or runs that
cannot be compared. Outputs (markdown, JUnit XML) carry no timestamps or absolute paths and use fixed
float formats, so the same inputs and seed give byte-identical files.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from tokbench.bins import BIN_NAMES
from tokbench.cache import atomic_write_bytes
from tokbench.errors import BadInputError, TokbenchError
from tokbench.report import KEY_COLUMNS, Report, dumps, load_report, metric_columns

BASELINE_FORMAT = "tokbench-baseline"
BASELINE_FORMAT_VERSION = 1
BASELINE_SUFFIX = ".tokbench.json"

EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2

# manifest fields a committed baseline keeps: what the compatibility check needs, plus provenance
BASELINE_MANIFEST_FIELDS = ("suite", "protocol", "resolutions", "limit", "datasets", "metrics", "unavailable",
                            "skipped", "tokbench_version", "git_commit", "dtype")


class CheckMismatchError(TokbenchError):
    """The two runs were not produced under the same conditions; the message lists every difference."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__("runs are not comparable:\n" + "\n".join(f"  - {d}" for d in differences))


# ------------------------------------------------------------------------------------------ metric units

@dataclass(frozen=True)
class MetricUnit:
    """How a metric column is judged and shown: direction, display scale and default allowed drop."""

    higher_is_better: bool
    scale: float = 1.0  # display value = stored value * scale
    unit: str = ""
    default_max_drop: float = 0.0  # in display units
    decimals: int = 4


# Directions agree with the metric classes' ``higher_is_better`` (tests check it). Default drops are small
# tolerances, not significance levels: the interval already accounts for noise.
KNOWN_METRICS: dict[str, MetricUnit] = {
    "T-ACC": MetricUnit(True, 100.0, "%", 1.0, 2),
    "T-NED": MetricUnit(True, 100.0, "%", 1.0, 2),
    "F-Sim": MetricUnit(True, 1.0, "", 0.01, 4),
    "F-L2": MetricUnit(False, 1.0, "", 0.01, 4),
    "ID-kept": MetricUnit(True, 100.0, "%", 1.0, 2),
    "PSNR": MetricUnit(True, 1.0, "dB", 0.1, 3),
    "SSIM": MetricUnit(True, 1.0, "", 0.002, 4),
    "LPIPS": MetricUnit(False, 1.0, "", 0.002, 4),
    "LPIPS-VGG": MetricUnit(False, 1.0, "", 0.002, 4),
    "LPIPS-SQUEEZE": MetricUnit(False, 1.0, "", 0.002, 4),
    "TC-RMSE": MetricUnit(False, 1.0, "", 0.1, 3),
    "bpp": MetricUnit(False, 1.0, "", 0.0, 4),
}
TEXT_FACE_DEFAULTS = ("T-ACC", "T-NED", "F-Sim")  # the TokBench headline metrics
PIXEL_DEFAULTS = ("PSNR", "SSIM")


@dataclass(frozen=True)
class MetricSpec:
    column: str
    max_drop: float
    unit: MetricUnit

    @property
    def label(self) -> str:
        return f"{self.column} ({self.unit.unit})" if self.unit.unit else self.column


def parse_metric_spec(text: str) -> MetricSpec:
    """``NAME[:max_drop=X][,direction=higher|lower]`` (options separated by ``,`` or ``:``)."""
    column, _, rest = text.partition(":")
    column = column.strip()
    if not column:
        raise BadInputError(f"--metric {text!r}: empty metric name")
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.replace(":", ",").split(","))):
        key, eq, value = part.partition("=")
        if not eq or key not in ("max_drop", "direction"):
            raise BadInputError(f"--metric {text!r}: option {part!r} is not max_drop=X or direction=higher|lower")
        options[key] = value.strip()
    unit = KNOWN_METRICS.get(column)
    if "direction" in options:
        if options["direction"] not in ("higher", "lower"):
            raise BadInputError(f"--metric {text!r}: direction must be 'higher' or 'lower'")
        higher = options["direction"] == "higher"
        unit = (MetricUnit(higher, unit.scale, unit.unit, unit.default_max_drop, unit.decimals) if unit
                else MetricUnit(higher))
    if unit is None:
        raise BadInputError(f"--metric {text!r}: unknown direction for column {column!r}; add direction=higher or "
                            f"direction=lower (known: {', '.join(KNOWN_METRICS)})")
    max_drop = unit.default_max_drop
    if "max_drop" in options:
        try:
            max_drop = float(options["max_drop"])
        except ValueError:
            raise BadInputError(f"--metric {text!r}: max_drop {options['max_drop']!r} is not a number") from None
        if not math.isfinite(max_drop) or max_drop < 0:
            raise BadInputError(f"--metric {text!r}: max_drop must be a finite number >= 0")
    return MetricSpec(column, max_drop, unit)


# ------------------------------------------------------------------------------------------ run sides

@dataclass
class RunSide:
    """What the check needs from one run: provenance for the compatibility check and per-instance values."""

    source: str  # file or folder name (no absolute path: outputs must not depend on where files live)
    manifest: dict
    rows: pd.DataFrame  # KEY_COLUMNS + "bin" + numeric metric columns
    summary: list = field(default_factory=list)

    @property
    def label(self) -> str:
        tok = self.manifest.get("tokenizer") or {}
        label = tok.get("label") or "?"
        sha = tok.get("checkpoint_sha256")
        return f"{label} (checkpoint sha256 {sha[:12]})" if sha else label


def _tokenizer_subset(tok: dict) -> dict:
    path = tok.get("checkpoint_path")
    return {"name": tok.get("name"), "label": tok.get("label"), "options": tok.get("options"),
            "checkpoint": Path(path).name if path else None, "checkpoint_sha256": tok.get("checkpoint_sha256")}


def _instance_table(rows: pd.DataFrame) -> pd.DataFrame:
    cols = metric_columns(rows)
    out = rows[KEY_COLUMNS + ["bin"] + cols].copy()
    out["bin"] = out["bin"].fillna("").astype(str)
    return out


def side_from_report(report: Report) -> RunSide:
    manifest = {k: report.manifest.get(k) for k in BASELINE_MANIFEST_FIELDS}
    manifest["tokenizer"] = _tokenizer_subset(report.manifest.get("tokenizer") or {})
    summary = json.loads(dumps(report.summary.to_dict(orient="records")))
    return RunSide(Path(report.path).name, manifest, _instance_table(report.rows), summary)


def load_side(source: Union[str, Path, Report, RunSide]) -> RunSide:
    """A report folder, a Report, or a committed baseline file (``*.tokbench.json``)."""
    if isinstance(source, RunSide):
        return source
    if isinstance(source, Report):
        return side_from_report(source)
    path = Path(source)
    if path.is_dir():
        try:
            return side_from_report(load_report(path))
        except FileNotFoundError as e:
            raise BadInputError(str(e)) from None
    if path.is_file():
        return load_baseline(path)
    raise BadInputError(f"{path}: neither a report folder nor a baseline file")


def baseline_document(side: RunSide) -> bytes:
    """The committed baseline: manifest subset and summary (pretty JSON), then one instance per line."""
    head = {"format": BASELINE_FORMAT, "format_version": BASELINE_FORMAT_VERSION, "source": side.source,
            "manifest": side.manifest, "summary": side.summary}
    columns = list(side.rows.columns)
    lines = []
    for rec in side.rows.itertuples(index=False, name=None):
        vals = []
        for v in rec:
            if isinstance(v, (np.integer,)):
                v = int(v)
            elif isinstance(v, (float, np.floating)):
                v = None if math.isnan(v) else float(v)
            vals.append(v)
        lines.append("      " + json.dumps(vals, ensure_ascii=False))
    text = dumps(head).decode().rstrip()  # a JSON object: ends with "}", reopened below to append the rows
    rows_json = (',\n  "rows": {\n    "columns": ' + json.dumps(columns) + ',\n    "values": [\n'
                 + ",\n".join(lines) + ("\n" if lines else "") + "    ]\n  }\n}\n")
    return (text[:-1].rstrip() + rows_json).encode()


def save_baseline(report: Union[str, Path, Report], out: Union[str, Path]) -> Path:
    """Write a small committable baseline (no images, no OCR strings): keys, bins and metric values."""
    if not isinstance(report, Report) and not Path(report).is_dir():
        raise BadInputError(f"{report}: --save-baseline needs a report folder")
    side = load_side(report)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, baseline_document(side))
    return out


def load_baseline(path: Union[str, Path]) -> RunSide:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"{path}: not a readable baseline file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise BadInputError(f"{path}: not a tokbench baseline (expected \"format\": \"{BASELINE_FORMAT}\"); "
                            f"write one with `tokbench check --save-baseline REPORT --out FILE`")
    if doc.get("format_version") != BASELINE_FORMAT_VERSION:
        raise BadInputError(f"{path}: baseline format version {doc.get('format_version')} is not supported "
                            f"(this tokbench reads version {BASELINE_FORMAT_VERSION}); regenerate it")
    try:
        columns = doc["rows"]["columns"]
        rows = pd.DataFrame(doc["rows"]["values"], columns=columns)
        missing = [c for c in KEY_COLUMNS + ["bin"] if c not in columns]
        if missing:
            raise KeyError(", ".join(missing))
        for c in ("resolution", "instance"):
            rows[c] = rows[c].astype("int64")
        for c in ("dataset", "item", "level", "bin"):
            rows[c] = rows[c].fillna("").astype(str)
        for c in columns:
            if c not in KEY_COLUMNS and c != "bin":
                rows[c] = pd.to_numeric(rows[c]).astype("float64")
    except (KeyError, TypeError, ValueError) as e:
        raise BadInputError(f"{path}: malformed baseline rows ({e})") from None
    return RunSide(path.name, doc.get("manifest") or {}, rows, doc.get("summary") or [])


# ------------------------------------------------------------------------------------------ compatibility

def _diff(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            sub = f"{where}.{k}" if where else str(k)
            if k not in a:
                out.append(f"{sub}: only the candidate has it ({_short(b[k])})")
            elif k not in b:
                out.append(f"{sub}: only the baseline has it ({_short(a[k])})")
            else:
                _diff(a[k], b[k], sub, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: baseline {_short(a)} != candidate {_short(b)}")


def _short(v, limit: int = 160) -> str:
    text = json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compatibility_differences(baseline: RunSide, candidate: RunSide) -> list[str]:
    """Every difference that makes paired numbers meaningless (empty when the runs are comparable)."""
    b, c = baseline.manifest, candidate.manifest
    out: list[str] = []
    for key in ("suite", "resolutions", "limit"):
        _diff(b.get(key), c.get(key), key, out)
    _diff(b.get("protocol"), c.get("protocol"), "protocol", out)
    bd = {d.get("name"): d for d in b.get("datasets") or []}
    cd = {d.get("name"): d for d in c.get("datasets") or []}
    _diff({n: {"content_sha256": d.get("content_sha256"), "items": d.get("items")} for n, d in bd.items()},
          {n: {"content_sha256": d.get("content_sha256"), "items": d.get("items")} for n, d in cd.items()},
          "datasets", out)
    bm, cm = b.get("metrics") or {}, c.get("metrics") or {}
    for name in sorted(set(bm) | set(cm)):
        if name not in cm:
            why = (c.get("unavailable") or {}).get(name, "not in the candidate's suite")
            out.append(f"metrics.{name}: the baseline has it, the candidate does not ({why})")
        elif name not in bm:
            why = (b.get("unavailable") or {}).get(name, "not in the baseline's suite")
            out.append(f"metrics.{name}: the candidate has it, the baseline does not ({why})")
        else:
            _diff(bm[name], cm[name], f"metrics.{name}", out)
    return out


# ------------------------------------------------------------------------------------------ statistics

def _mean_of_means(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean([s.mean(axis=axis) for s in samples], axis=0)


def bootstrap_interval(samples: Sequence[np.ndarray], confidence: float, n_resamples: int,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the mean of per-sample means, each sample resampled on its own."""
    import inspect

    from scipy.stats import bootstrap

    # scipy >= 1.15 names the generator ``rng``; older releases ``random_state`` (same resampling)
    rng_arg = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    res = bootstrap(tuple(np.asarray(s, dtype=np.float64) for s in samples), _mean_of_means,
                    n_resamples=n_resamples, confidence_level=confidence, method="percentile", vectorized=True,
                    batch=max(1, min(n_resamples, 4_000_000 // max(1, max(len(s) for s in samples)))),
                    **{rng_arg: rng})
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def cell_rng(seed: int, cell_id: str) -> np.random.Generator:
    """One stream per cell, so adding or removing a metric leaves every other interval unchanged."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(cell_id.encode())]))


@dataclass
class Cell:
    """One gate decision: a metric at one resolution, level and bin (``Mean`` = TokBench Mean over bins)."""

    metric: MetricSpec
    resolution: int
    level: str
    bin: str  # "S" | "M" | "L" | "Mean" | "all"
    n: int
    baseline: float  # display units; NaN when there is no data
    candidate: float
    diff: float
    ci_low: float
    ci_high: float
    verdict: str  # "pass" | "regress" | "improve" | "n/a"
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.metric.column} r{self.resolution} {self.level} {self.bin}"


def judge(diff_low: float, diff_high: float, spec: MetricSpec) -> str:
    d = spec.max_drop
    if spec.unit.higher_is_better:
        return "regress" if diff_high < -d else ("improve" if diff_low > d else "pass")
    return "regress" if diff_low > d else ("improve" if diff_high < -d else "pass")


def _cell(spec: MetricSpec, res: int, level: str, bin_name: str, groups: list[pd.DataFrame], confidence: float,
          n_resamples: int, seed: int) -> Cell:
    n = int(sum(len(g) for g in groups))
    scale = spec.unit.scale
    if any(len(g) < 2 for g in groups):
        if len(groups) > 1:
            note = "TokBench Mean needs >= 2 instances in every bin"
        else:
            note = "no instances" if n == 0 else f"{n} instance, needs >= 2"
        base = cand = diff = math.nan
        if all(len(g) for g in groups):
            base = float(np.mean([g["b"].mean() for g in groups])) * scale
            cand = float(np.mean([g["c"].mean() for g in groups])) * scale
            diff = cand - base
        return Cell(spec, res, level, bin_name, n, base, cand, diff, math.nan, math.nan, "n/a", note)
    base = float(np.mean([g["b"].to_numpy().mean() for g in groups])) * scale
    cand = float(np.mean([g["c"].to_numpy().mean() for g in groups])) * scale
    diffs = [(g["c"].to_numpy(np.float64) - g["b"].to_numpy(np.float64)) * scale for g in groups]
    diff = float(np.mean([d.mean() for d in diffs]))
    rng = cell_rng(seed, f"{spec.column}|{res}|{level}|{bin_name}")
    lo, hi = bootstrap_interval(diffs, confidence, n_resamples, rng)
    return Cell(spec, res, level, bin_name, n, base, cand, diff, lo, hi, judge(lo, hi, spec))


def _paired(baseline: RunSide, candidate: RunSide, column: str) -> tuple[pd.DataFrame, int, int]:
    b = baseline.rows[KEY_COLUMNS + ["bin", column]].dropna(subset=[column])
    c = candidate.rows[KEY_COLUMNS + ["bin", column]].dropna(subset=[column])
    for side, df in ((baseline, b), (candidate, c)):
        dup = df.duplicated(KEY_COLUMNS)
        if dup.any():
            key = tuple(df.loc[dup, KEY_COLUMNS].iloc[0])
            raise BadInputError(f"{side.source}: duplicate row key {key} for {column}")
    m = b.merge(c, on=KEY_COLUMNS, how="inner", suffixes=("_b", "_c"))
    m = m.rename(columns={f"{column}_b": "b", f"{column}_c": "c"})
    differ = m["bin_b"] != m["bin_c"]
    if differ.any():
        r = m[differ].iloc[0]
        raise CheckMismatchError([f"bins differ for {column} at {tuple(r[k] for k in KEY_COLUMNS)}: baseline "
                                  f"{r['bin_b']!r}, candidate {r['bin_c']!r} (different binning code?)"])
    m = m.rename(columns={"bin_b": "bin"}).drop(columns=["bin_c"])
    m = m.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)
    return m, len(b) - len(m), len(c) - len(m)


# ------------------------------------------------------------------------------------------ the check

@dataclass
class CheckResult:
    baseline: RunSide
    candidate: RunSide
    cells: list[Cell]
    confidence: float
    seed: int
    n_resamples: int
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Cell]:
        return [c for c in self.cells if c.verdict == "regress"]

    @property
    def improvements(self) -> list[Cell]:
        return [c for c in self.cells if c.verdict == "improve"]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.regressions else EXIT_PASS

    @property
    def status(self) -> str:
        return "regression" if self.regressions else "pass"

    def markdown(self) -> str:
        return format_markdown(self)

    def junit(self) -> str:
        return format_junit(self)


def default_metrics(baseline: RunSide, candidate: RunSide) -> list[str]:
    """The TokBench text/face metrics both runs have, else PSNR/SSIM."""
    both = set(metric_columns(baseline.rows)) & set(metric_columns(candidate.rows))
    chosen = [m for m in TEXT_FACE_DEFAULTS if m in both and _has_values(baseline, m)]
    if not chosen:
        chosen = [m for m in PIXEL_DEFAULTS if m in both and _has_values(baseline, m)]
    if not chosen:
        raise BadInputError(f"no default metric ({', '.join(TEXT_FACE_DEFAULTS + PIXEL_DEFAULTS)}) has values in "
                            f"both runs; name metrics with --metric (columns: {', '.join(sorted(both)) or 'none'})")
    return chosen


def _has_values(side: RunSide, column: str) -> bool:
    return bool(side.rows[column].notna().any())


def check_reports(baseline, candidate, metrics: Optional[Sequence[Union[str, MetricSpec]]] = None,
                  confidence: float = 0.95, seed: int = 0, n_resamples: int = 2000) -> CheckResult:
    """Compare ``candidate`` with ``baseline`` (report folders, Reports or baseline files).

    Raises CheckMismatchError when the runs are not comparable and BadInputError for bad options.
    """
    if not 0.0 < confidence < 1.0:
        raise BadInputError(f"--confidence {confidence}: must lie strictly between 0 and 1")
    if n_resamples < 100:
        raise BadInputError(f"--bootstrap {n_resamples}: use at least 100 resamples")
    base, cand = load_side(baseline), load_side(candidate)
    differences = compatibility_differences(base, cand)
    if differences:
        raise CheckMismatchError(differences)
    specs = [m if isinstance(m, MetricSpec) else parse_metric_spec(m)
             for m in (metrics or default_metrics(base, cand))]
    seen = set()
    for s in specs:
        if s.column in seen:
            raise BadInputError(f"--metric {s.column} given twice")
        seen.add(s.column)
        for side, who in ((base, "baseline"), (cand, "candidate")):
            if s.column not in side.rows.columns or not _has_values(side, s.column):
                have = ", ".join(metric_columns(side.rows)) or "none"
                raise BadInputError(f"metric {s.column} has no values in the {who} {side.source} (columns: {have})")
    cells: list[Cell] = []
    notes: list[str] = []
    for spec in specs:
        pairs, only_b, only_c = _paired(base, cand, spec.column)
        if only_b or only_c:
            notes.append(f"{spec.column}: {only_b} baseline-only and {only_c} candidate-only instances have no "
                         f"partner and are left out (skipped items or missing values)")
        if pairs.empty:
            raise BadInputError(f"metric {spec.column}: no instance is present in both runs")
        for (res, level), grp in pairs.groupby(["resolution", "level"], sort=True):
            binned = bool((grp["bin"] != "").any())
            if binned:
                per_bin = [grp[grp["bin"] == b] for b in BIN_NAMES]
                for b, g in zip(BIN_NAMES, per_bin):
                    cells.append(_cell(spec, int(res), level, b, [g], confidence, n_resamples, seed))
                cells.append(_cell(spec, int(res), level, "Mean", per_bin, confidence, n_resamples, seed))
                outside = int((grp["bin"] == "").sum())
                if outside:
                    notes.append(f"{spec.column} r{res} {level}: {outside} instances outside every bin are not "
                                 f"scored (TokBench bins)")
            else:
                cells.append(_cell(spec, int(res), level, "all", [grp], confidence, n_resamples, seed))
    return CheckResult(base, cand, cells, confidence, seed, n_resamples, notes)


# ------------------------------------------------------------------------------------------ outputs

VERDICT_MARK = {"pass": "pass", "improve": "improve", "regress": "**REGRESS**", "n/a": "n/a"}


def _num(v: float, decimals: int, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    v = 0.0 if round(v, decimals) == 0 else v  # no "-0.00"
    return f"{v:+.{decimals}f}" if sign else f"{v:.{decimals}f}"


def _ci(c: Cell) -> str:
    if math.isnan(c.ci_low):
        return "-"
    d = c.metric.unit.decimals
    return f"[{_num(c.ci_low, d, True)}, {_num(c.ci_high, d, True)}]"


def _run_line(side: RunSide) -> str:
    return f"`{side.label}` ({side.source})"


def _conditions(side: RunSide) -> str:
    m = side.manifest
    res = ", ".join(str(r) for r in m.get("resolutions") or [])
    data = ", ".join(f"{d.get('name')} ({str(d.get('content_sha256'))[:12]})" for d in m.get("datasets") or [])
    limit = f", first {m['limit']} items per dataset" if m.get("limit") else ""
    return (f"suite `{m.get('suite')}`, protocol `{(m.get('protocol') or {}).get('name')}`, resolution {res}{limit}; "
            f"data {data}")


def format_markdown(result: CheckResult) -> str:
    """A PR comment / job summary: verdict first, then one table row per gate cell."""
    pct = f"{result.confidence * 100:g}"
    regress, improve = result.regressions, result.improvements
    if regress:
        head = f"## tokbench check: REGRESSION ({len(regress)} of {len(result.cells)} cells)"
    else:
        head = "## tokbench check: pass" + (f" ({len(improve)} improved)" if improve else "")
    lines = [head, "",
             f"- candidate: {_run_line(result.candidate)}",
             f"- baseline: {_run_line(result.baseline)}",
             f"- {_conditions(result.baseline)}",
             f"- paired difference candidate - baseline over matched instances; {pct}% percentile bootstrap "
             f"interval ({result.n_resamples} resamples, seed {result.seed})"
             + ("; the TokBench Mean resamples each bin and averages the bin means"
                if any(c.bin == "Mean" for c in result.cells) else ""),
             "- verdict: **regress** when the whole interval lies beyond the allowed drop in the worse direction, "
             "improve when it lies wholly beyond it in the better direction, else pass", "",
             f"| metric | res | level | bin | n | baseline | candidate | diff | {pct}% CI | max drop | verdict |",
             "|---|---:|---|---|---:|---:|---:|---:|---|---:|---|"]
    for c in result.cells:
        d = c.metric.unit.decimals
        arrow = "↑" if c.metric.unit.higher_is_better else "↓"
        verdict = VERDICT_MARK[c.verdict] + (f" ({c.note})" if c.note else "")
        lines.append(f"| {c.metric.label} {arrow} | {c.resolution} | {c.level} | {c.bin} | {c.n} | "
                     f"{_num(c.baseline, d)} | {_num(c.candidate, d)} | {_num(c.diff, d, True)} | {_ci(c)} | "
                     f"{_num(c.metric.max_drop, d)} | {verdict} |")
    units = sorted({s.column for s in (c.metric for c in result.cells) if s.unit.unit == "%"})
    lines.append("")
    if units:
        lines.append(f"{', '.join(units)} are shown in % (rows store fractions 0..1); their diff, interval and max "
                     f"drop are in percentage points.")
    for note in result.notes:
        lines.append(f"- note: {note}")
    return "\n".join(lines).rstrip() + "\n"


def format_refusal_markdown(error: CheckMismatchError, baseline: str, candidate: str) -> str:
    lines = ["## tokbench check: refused (runs are not comparable)", "",
             f"- baseline: {Path(str(baseline)).name}", f"- candidate: {Path(str(candidate)).name}", "",
             "What differs:", ""]
    lines += [f"- `{d}`" for d in error.differences]
    return "\n".join(lines) + "\n"


def _xml(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + ET.tostring(root, encoding="unicode") + "\n"


def format_junit(result: CheckResult) -> str:
    """One testcase per metric x resolution x bin; regressions are failures, cells without data skipped."""
    failures = len(result.regressions)
    skipped = sum(c.verdict == "n/a" for c in result.cells)
    attrs = {"name": "tokbench check", "tests": str(len(result.cells)), "failures": str(failures), "errors": "0",
             "skipped": str(skipped)}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    for k, v in (("baseline", result.baseline.label), ("candidate", result.candidate.label),
                 ("suite", str(result.baseline.manifest.get("suite"))),
                 ("protocol", str((result.baseline.manifest.get("protocol") or {}).get("name"))),
                 ("confidence", f"{result.confidence:g}"), ("bootstrap", str(result.n_resamples)),
                 ("seed", str(result.seed))):
        ET.SubElement(props, "property", {"name": k, "value": v})
    for c in result.cells:
        d = c.metric.unit.decimals
        case = ET.SubElement(suite, "testcase", {"classname": f"tokbench.check.{c.metric.column}", "name": c.name,
                                                 "time": "0"})
        detail = (f"{c.metric.label}: baseline {_num(c.baseline, d)}, candidate {_num(c.candidate, d)}, diff "
                  f"{_num(c.diff, d, True)}, CI {_ci(c)}, max drop {_num(c.metric.max_drop, d)}, n {c.n}")
        if c.verdict == "regress":
            ET.SubElement(case, "failure", {"message": f"regression: {detail}", "type": "regression"}).text = detail
        elif c.verdict == "n/a":
            ET.SubElement(case, "skipped", {"message": c.note or "no data"})
        else:
            ET.SubElement(case, "system-out").text = f"{c.verdict}: {detail}"
    return _xml(root)


def format_refusal_junit(error: CheckMismatchError) -> str:
    attrs = {"name": "tokbench check", "tests": "1", "failures": "0", "errors": "1", "skipped": "0"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    case = ET.SubElement(suite, "testcase", {"classname": "tokbench.check", "name": "compatibility", "time": "0"})
    ET.SubElement(case, "error", {"message": "runs are not comparable", "type": "mismatch"}).text = \
        "\n".join(error.differences)
    return _xml(root)


# ------------------------------------------------------------------------------------------ command line

def add_gate_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Gate options shared by ``tokbench check`` (no prefix) and ``tokbench run --check`` (prefix "check-")."""
    flags = [f"--{prefix}metric"] + ([] if prefix else ["-m"])
    parser.add_argument(*flags, dest="gate_metrics", action="append", metavar="NAME[:max_drop=X]",
                        help="metric column to gate, with its allowed drop in display units (percentage points for "
                             "T-ACC/T-NED/ID-kept, dB for PSNR); add direction=higher|lower for unknown columns. "
                             "Default: T-ACC, T-NED, F-Sim present in both runs, else PSNR, SSIM")
    parser.add_argument(f"--{prefix}confidence", dest="gate_confidence", type=float, default=0.95, metavar="P",
                        help="bootstrap interval level (default 0.95)")
    parser.add_argument(f"--{prefix}seed", dest="gate_seed", type=int, default=0, metavar="N",
                        help="bootstrap seed (default 0)")
    parser.add_argument(f"--{prefix}bootstrap", dest="gate_bootstrap", type=int, default=2000, metavar="N",
                        help="bootstrap resamples (default 2000)")
    parser.add_argument(f"--{prefix}markdown", dest="gate_markdown", metavar="FILE",
                        help="also write the markdown summary here (PR comment, $GITHUB_STEP_SUMMARY)")
    parser.add_argument(f"--{prefix}junit", dest="gate_junit", metavar="FILE", help="write JUnit XML here")


def add_check_parser(subparsers) -> argparse.ArgumentParser:
    sp = subparsers.add_parser(
        "check", help="gate a candidate run against a baseline (paired bootstrap; exit 1 on regression)",
        description="Compare a candidate run with a baseline on matched instances. Exit 0: no regression, "
                    "1: regression, 2: usage error or runs that are not comparable.")
    sp.add_argument("--baseline", "-b", metavar="BASE", help="report folder or baseline file (*.tokbench.json)")
    sp.add_argument("--candidate", "-c", metavar="CAND", help="report folder or baseline file")
    add_gate_options(sp)
    sp.add_argument("--save-baseline", metavar="REPORT", help="write REPORT as a small committable baseline file")
    sp.add_argument("--out", metavar="FILE",
                    help="with --save-baseline: the file to write (e.g. baseline.tokbench.json)")
    sp.set_defaults(func=cmd_check)
    return sp


def _write_text(path: Optional[str], text: str) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(path), text.encode())


def gate(baseline, candidate, args, out=None) -> int:
    """Run the check from parsed gate options, print the markdown, write files; returns the exit code."""
    out = out or sys.stdout
    try:
        result = check_reports(baseline, candidate, metrics=args.gate_metrics, confidence=args.gate_confidence,
                               seed=args.gate_seed, n_resamples=args.gate_bootstrap)
    except CheckMismatchError as e:
        print(f"error: {e}", file=sys.stderr)
        base_name = baseline.path if isinstance(baseline, Report) else baseline
        cand_name = candidate.path if isinstance(candidate, Report) else candidate
        _write_text(args.gate_markdown, format_refusal_markdown(e, base_name, cand_name))
        _write_text(args.gate_junit, format_refusal_junit(e))
        return EXIT_ERROR
    except BadInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    text = result.markdown()
    print(text, end="", file=out)
    _write_text(args.gate_markdown, text)
    _write_text(args.gate_junit, result.junit())
    return result.exit_code


def cmd_check(args) -> int:
    if args.save_baseline:
        if args.baseline or args.candidate:
            print("error: --save-baseline writes a baseline; do not combine it with --baseline/--candidate",
                  file=sys.stderr)
            return EXIT_ERROR
        if not args.out:
            print("error: --save-baseline needs --out FILE (e.g. baseline.tokbench.json)", file=sys.stderr)
            return EXIT_ERROR
        try:
            path = save_baseline(args.save_baseline, args.out)
        except BadInputError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_ERROR
        side = load_baseline(path)
        print(f"baseline written to {path} ({len(side.rows)} instances, columns "
              f"{', '.join(metric_columns(side.rows))}; {path.stat().st_size} bytes)")
        return EXIT_PASS
    if not args.baseline or not args.candidate:
        print("error: tokbench check needs --baseline BASE and --candidate CAND (or --save-baseline REPORT --out FILE)",
              file=sys.stderr)
        return EXIT_ERROR
    if args.out:
        print("error: --out is only for --save-baseline", file=sys.stderr)
        return EXIT_ERROR
    return gate(args.baseline, args.candidate, args)

"""Run a suite through a tokenizer: items -> harness -> tokenizer -> metrics -> rows -> report.

Every finished item is written to the content-addressed cache before the next one starts, so a killed
run resumes without recomputing it; original-only metric work is cached across tokenizers.
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import torch

import tokbench
from tokbench import harness
from tokbench.bins import assign_bin
from tokbench.cache import Cache, digest, writable_dir
from tokbench.checkpoints import UNSAFE_ALLOWED
from tokbench.data.dataset import Dataset, get_dataset
from tokbench.data.items import Item
from tokbench.errors import BadInputError, MissingWeightsError, TokbenchError
from tokbench.metrics.base import METRICS, DistributionMetric, InstanceMetric, Sample
from tokbench.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from tokbench.provenance import git_commit, machine, package_versions
from tokbench.report import META_COLUMNS, Report, summarize
from tokbench.suites import Suite, get_suite
from tokbench.timing import StageTimer
from tokbench.tokenizers.base import Tokenizer
from tokbench.tokenizers.registry import create_tokenizer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class RunConfig:
    tokenizer: str
    suite: str = "text-face"
    resolutions: Optional[list[int]] = None  # default: the suite's
    protocol: str = DEFAULT_PROTOCOL
    device: str = "cpu"
    dtype: str = "fp32"
    checkpoint: Optional[str] = None
    out: str = "reports"
    limit: Optional[int] = None  # first N items of each dataset
    batch_size: int = 8
    clip_frames: Optional[int] = None  # video clip length; default: the tokenizer's
    quiet: bool = False
    skip_bad: bool = False  # skip unreadable items (listed in the report) instead of stopping
    allow_unsafe_checkpoint: bool = False
    cache_dir: Optional[str] = None
    datasets: Optional[list[str]] = None  # replace the suite's datasets
    metrics: Optional[list[str]] = None  # a subset of the suite's metrics (default: all of them)
    name: Optional[str] = None  # run folder name; default derived from the configuration
    allow_unbinned_resolution: bool = False  # run text/face at a size without TokBench bins (no S/M/L/Mean)
    allow_missing_evaluators: bool = False  # score what is available when a published evaluator's weights are missing


@dataclass
class ItemResult:
    rows: list[dict]
    states: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Prepared:
    """One batch, read ahead: cached results, decoded items (j, item, key, pixels), their canvases."""

    cached: list[Optional[ItemResult]]
    loaded: list[tuple] = field(default_factory=list)
    fitted: Optional[list] = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    error: Optional[BadInputError] = None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-")


def run_name(cfg: RunConfig, tok_label: str, resolutions: Iterable[int], checkpoint_sha256: Optional[str] = None
             ) -> str:
    """Everything that changes the numbers is in the name (two checkpoints never share a folder)."""
    parts = [slug(tok_label), cfg.suite, cfg.protocol, "r" + "-".join(str(r) for r in resolutions)]
    if cfg.checkpoint:
        sha = checkpoint_sha256 or ""
        parts.append("ckpt-" + (sha if re.fullmatch(r"[0-9a-f]{64}", sha) else
                                digest(sha or str(Path(cfg.checkpoint).resolve())))[:12])
    if not cfg.device.startswith("cpu"):
        parts.append(cfg.device.split(":")[0])
    if cfg.dtype != "fp32":
        parts.append(cfg.dtype)
    if cfg.clip_frames:
        parts.append(f"clip{cfg.clip_frames}")
    if cfg.limit:
        parts.append(f"limit{cfg.limit}")
    if cfg.datasets:
        parts.append("data-" + digest(cfg.datasets)[:8])
    if cfg.metrics:
        parts.append("m-" + "-".join(sorted(cfg.metrics)))
    return "__".join(parts)


class Runner:
    def __init__(self, cfg: RunConfig, log=None):
        self.cfg = cfg
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.timer = StageTimer()
        self.suite: Suite = get_suite(cfg.suite)
        self.protocol: Protocol = get_protocol(cfg.protocol)
        if cfg.dtype not in DTYPES:
            raise BadInputError(f"unknown dtype {cfg.dtype!r}; valid: {', '.join(DTYPES)}")
        if cfg.limit is not None and cfg.limit < 1:
            raise BadInputError(f"--limit {cfg.limit}: must be a positive number of items per dataset "
                                f"(leave it out to run every item)")
        self.resolutions = list(cfg.resolutions or self.suite.resolutions)
        self.cache = Cache(Path(cfg.cache_dir) if cfg.cache_dir else None)
        from tokbench.data.commands import build_in_child

        build_in_child(cfg.datasets or self.suite.datasets)  # embedded, not built yet: the build heap stays in a child
        self.datasets: list[Dataset] = [self._open_dataset(n, cfg.skip_bad, self.protocol.rules)
                                        for n in (cfg.datasets or self.suite.datasets)]
        self.metrics: dict[str, InstanceMetric | DistributionMetric] = {}
        self.unavailable: dict[str, str] = {}
        wanted = list(self.suite.metrics)
        if cfg.metrics:
            unknown = sorted(set(cfg.metrics) - set(wanted))
            if unknown:
                raise BadInputError(f"suite {self.suite.name} has no metric(s) {', '.join(unknown)}; "
                                    f"its metrics: {', '.join(wanted)}")
            wanted = [m for m in wanted if m in cfg.metrics]
        self._check_bins(wanted)  # before the tokenizer and evaluators load: a mistake costs no waiting
        self.tokenizer: Tokenizer = create_tokenizer(cfg.tokenizer, checkpoint=cfg.checkpoint, device=cfg.device,
                                                     dtype=DTYPES[cfg.dtype],
                                                     allow_unsafe=cfg.allow_unsafe_checkpoint)
        opt_in = UNSAFE_ALLOWED.set(cfg.allow_unsafe_checkpoint)  # evaluators' TorchScript (I3D) follows the flag
        for name in wanted:
            try:
                self.metrics[name] = METRICS.get(name)(self.protocol, device=cfg.device)
            except MissingWeightsError as e:
                self.unavailable[name] = str(e)
        UNSAFE_ALLOWED.reset(opt_in)
        published = {n: why for n, why in self.unavailable.items() if n in ("text", "face")}
        if self.protocol.published_evaluators and published and not cfg.allow_missing_evaluators:
            raise MissingWeightsError(
                f"protocol {self.protocol.name} needs the published evaluators: " + " | ".join(published.values())
                + " | or pass --allow-missing-evaluators to score only what is available")
        for name, why in self.unavailable.items():
            self.log(f"warning: metric {name} unavailable: {why}")
        # entries a loader left out under --skip-bad (bad annotations, missing files) are listed too
        self.skipped: list[tuple[str, str]] = [(f"{ds.name}/{i}", why) for ds in self.datasets
                                               for i, why in getattr(ds, "skipped", [])]
        for entry, why in self.skipped:
            self.log(f"skipped {entry}: {why}")
        self.items_computed = 0
        self.items_cached = 0
        from concurrent.futures import ThreadPoolExecutor

        self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokbench-side")
        self.ocr_batches = self._official_ocr_batches()
        for ds_name, skip in self.ocr_batch_skips().items():
            self.log(f"official OCR batching skips {skip['words']} word(s) of {ds_name} in {skip['batches']} batch(es)"
                     f" of 64 (character(s) {skip['characters']!r} outside the french vocabulary)")

    def _check_bins(self, metrics: list[str]) -> None:
        """Text and face scores are ranked per TokBench bin, which exist at a few sizes only: refuse others."""
        if self.cfg.allow_unbinned_resolution:
            return
        levels = [lv for metric, lv in (("text", "word"), ("face", "face")) if metric in metrics]
        for ds in self.datasets:
            for level in levels:
                bad = [r for r in self.resolutions if self.protocol.bounds(level, r, ds.modality) is None]
                if bad:
                    sizes = self.protocol.binned_resolutions(level, ds.modality)
                    raise BadInputError(
                        f"--resolution {', '.join(map(str, bad))}: TokBench bins for {ds.modality} {level}s exist "
                        f"for {', '.join(map(str, sizes))} only, so text/face scores would have no S/M/L/Mean; "
                        f"pick one of those or pass --allow-unbinned-resolution")

    def _official_ocr_batches(self) -> dict:
        """Dataset name -> item id -> each word's official 64-word batch (official rules with a text metric);
        computed over the whole dataset, as the official script runs every subset whole, even under --limit."""
        if self.protocol.rules.ocr_batches != "official-64" or "text" not in self.metrics:
            return {}
        from tokbench.evaluators.ocr_batches import french_vocab, official_batches

        vocab = french_vocab()
        return {ds.name: official_batches(ds.items, vocab) for ds in self.datasets}

    def ocr_batch_skips(self) -> dict:
        """Words the official batching skips (character outside the french vocabulary), per dataset."""
        out = {}
        for ds_name, per_item in self.ocr_batches.items():
            batches = {(b.batch, b.skipped_for) for words in per_item.values() for b in words if b.skipped_for}
            words = sum(1 for words in per_item.values() for b in words if b.skipped_for)
            if words:
                out[ds_name] = {"words": words, "batches": len(batches),
                                "characters": "".join(sorted(set("".join(c for _, c in batches))))}
        return out

    @staticmethod
    def _open_dataset(name: str, skip_bad: bool, rules=None) -> Dataset:
        if ":" in name:  # users' data in a known format, e.g. tokbench:/data/TokBench
            from tokbench.data.external import open_dataset

            dataset = open_dataset(name, skip_bad=skip_bad, rules=rules)
            dataset.items  # parse annotations now: bad entries fail (or are skipped) before any work
            return dataset
        return get_dataset(name)

    # ------------------------------------------------------------ keys

    def _item_key(self, ds: Dataset, item: Item, resolution: int) -> str:
        tok = self.tokenizer.describe()
        return digest("item", tokbench.__version__, tok, ds.item_hashes[item.id], resolution,
                      self.protocol.describe(), sorted((n, m.describe()) for n, m in self.metrics.items()),
                      self.cfg.clip_frames, *self._batch_facts(ds, item))

    def _batch_facts(self, ds: Dataset, item: Item) -> list:
        """The item's official OCR batches (they depend on its neighbours), for cache keys."""
        batches = self.ocr_batches.get(ds.name, {}).get(item.id)
        return [("ocr_batches", [(b.cap, b.skipped_for) for b in batches])] if batches else []

    def _ref_key(self, ds: Dataset, item: Item, metric) -> str:
        facts = self._batch_facts(ds, item) if getattr(metric, "name", "") == "text" else []
        return digest("ref", ds.item_hashes[item.id], metric.describe(), *facts)

    # ------------------------------------------------------------ work

    def work(self) -> list[tuple[int, Dataset, Item]]:
        units = []
        for res in self.resolutions:
            for ds in self.datasets:
                items = ds.items[: self.cfg.limit] if self.cfg.limit else ds.items
                units.extend((res, ds, it) for it in items)
        return units

    def batches(self, units: list[tuple[int, Dataset, Item]]) -> list[list[tuple[int, Dataset, Item]]]:
        """Consecutive images of one dataset and resolution share a tokenizer call; videos go alone."""
        out: list[list] = []
        for unit in units:
            last = out[-1] if out else None
            if (last and len(last) < self.cfg.batch_size and last[0][0] == unit[0] and last[0][1] is unit[1]
                    and last[0][2].modality == "image" and unit[2].modality == "image"):
                last.append(unit)
            else:
                out.append([unit])
        return out

    def run_units(self, batches: list[list[tuple[int, Dataset, Item]]]) -> dict[tuple, ItemResult]:
        """Batches in order; the next batch's cache lookups, decoding and canvas fitting run in a background
        thread meanwhile (PIL, onnxruntime, torch and dlib release the GIL for most of their work)."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        results: dict[tuple, ItemResult] = {}
        bar = tqdm(total=sum(map(len, batches)), desc=f"{self.tokenizer.label} {self.suite.name}", unit="item",
                   disable=self.cfg.quiet, file=sys.stderr)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokbench-prefetch") as prefetch:
            ahead = prefetch.submit(self._prepare, batches[0]) if batches else None
            for k, batch in enumerate(batches):
                prepared = ahead.result()
                ahead = prefetch.submit(self._prepare, batches[k + 1]) if k + 1 < len(batches) else None
                for unit, result in zip(batch, self._run_batch(batch, prepared)):
                    if result is not None:
                        results[(unit[0], unit[1].name, unit[2].id)] = result
                bar.update(len(batch))
        bar.close()
        return results

    def _prepare(self, batch: list[tuple[int, Dataset, Item]]) -> "_Prepared":
        """The part of a batch that needs only its items: finished items from the cache, pixels, canvases.
        Errors are kept, not raised, so the batches before one with a bad item still finish."""
        res, ds = batch[0][0], batch[0][1]
        prepared = _Prepared(cached=[None] * len(batch))
        pending = []
        for j, (_, _, item) in enumerate(batch):
            key = self._item_key(ds, item, res)
            with self.timer.stage("cache"):
                hit = self.cache.get_json("items", key)
                states = self.cache.get_arrays("items", key) if hit is not None and hit.get("has_states") else {}
            if hit is not None and states is not None:
                prepared.cached[j] = ItemResult(hit["rows"], states or {})
            else:
                pending.append((j, item, key))
        for j, item, key in pending:
            try:
                with self.timer.stage("load"):
                    prepared.loaded.append((j, item, key, item.load()))
            except BadInputError as e:
                if not self.cfg.skip_bad:
                    prepared.error = e  # finish (and cache) the items before it, then stop
                    break
                prepared.skipped.append((f"{ds.name}/{item.id}", str(e)))
        images = [x[3] for x in prepared.loaded if x[1].modality == "image"]
        if images:
            with self.timer.stage("fit"):
                prepared.fitted = harness.fit_images(images, res, self.tokenizer.spec, self.protocol.image_resample)
        return prepared

    def _run_batch(self, batch: list[tuple[int, Dataset, Item]], prepared: "_Prepared") -> list[Optional[ItemResult]]:
        res, ds = batch[0][0], batch[0][1]
        out = list(prepared.cached)
        self.items_cached += sum(r is not None for r in out)
        for entry, why in prepared.skipped:
            self.skipped.append((entry, why))
            self.log(f"skipped {entry}: {why}")
        loaded = prepared.loaded
        images = [x for x in loaded if x[1].modality == "image"]
        recons = {}
        if images:
            rec = harness.reconstruct_images(self.tokenizer, [x[3] for x in images], res,
                                             [f"{ds.name}/{x[1].id}" for x in images],
                                             resample=self.protocol.image_resample, timer=self.timer,
                                             fitted=prepared.fitted)
            for x, r in zip(images, rec):  # the official scripts' save under the original file name
                fmt = harness.resave_format(x[1].path.name if x[1].path else None, self.protocol.rules.resave)
                if fmt is not None:
                    with self.timer.stage("resave"):
                        r = replace(r, pixels=harness.resave(r.pixels, fmt))
                recons[x[0]] = r
        for j, item, key, pixels in loaded:
            if item.modality == "video":
                recons[j] = harness.reconstruct_video(
                    self.tokenizer, pixels, res, f"{ds.name}/{item.id}", clip_frames=self.cfg.clip_frames,
                    pad_multiple=self.protocol.video_pad_multiple, resample=self.protocol.video_resample,
                    timer=self.timer, rounding=self.protocol.rules.video_rounding)
        for j, item, key, pixels in loaded:
            r = recons[j]
            context = {"ocr_batches": self.ocr_batches[ds.name].get(item.id, [])} if ds.name in self.ocr_batches else {}
            result = self._score(ds, item, Sample(item, pixels, r.pixels, context), r)
            with self.timer.stage("cache"):
                if result.states:
                    self.cache.put_arrays("items", key, result.states)
                self.cache.put_json("items", key, {"rows": result.rows, "has_states": bool(result.states)})
            self.items_computed += 1
            out[j] = result
        if prepared.error is not None:
            raise prepared.error
        return out

    def _score(self, ds: Dataset, item: Item, sample: Sample, recon: harness.Reconstruction) -> ItemResult:
        level = "video" if item.modality == "video" else "image"
        merged: dict[tuple, dict] = {(level, 0): {"level": level, "instance": 0, "bpp": recon.bpp}}
        states: dict[str, np.ndarray] = {}
        # a metric whose work runs in its own processes (dlib's workers) waits in a thread meanwhile
        aside = {name: self._side.submit(self._score_one, ds, item, sample, name, metric)
                 for name, metric in self.metrics.items() if getattr(metric, "runs_in_workers", False)}
        done = {name: self._score_one(ds, item, sample, name, metric)
                for name, metric in self.metrics.items() if name not in aside}
        for name, metric in self.metrics.items():
            kind, value = aside[name].result() if name in aside else done[name]
            if kind == "states":
                states.update(value)
                continue
            for row in value:
                lvl = row.get("level", metric.level)
                if lvl == "image" and level == "video":
                    lvl = "video"
                merged.setdefault((lvl, int(row["instance"])), {"level": lvl}).update({**row, "level": lvl})
        return ItemResult(list(merged.values()), states)

    def _score_one(self, ds: Dataset, item: Item, sample: Sample, name: str, metric) -> tuple[str, object]:
        ref_key = self._ref_key(ds, item, metric)
        if isinstance(metric, DistributionMetric):
            with self.timer.stage("reference"):
                ref_state = self.cache.get_arrays("ref", ref_key)
                if ref_state is None:
                    ref_state = metric.reference_state(sample)
                    self.cache.put_arrays("ref", ref_key, ref_state)
            with self.timer.stage(f"metric:{name}"):
                item_state = metric.item_state(sample)
            return "states", {**{f"{name}/ref/{k}": v for k, v in ref_state.items()},
                              **{f"{name}/rec/{k}": v for k, v in item_state.items()}}
        cached = {"v": None}
        if metric.has_reference:
            with self.timer.stage("reference"):
                cached = self.cache.get_json("ref", ref_key)
                if cached is None:
                    cached = {"v": metric.reference(sample)}
                    self.cache.put_json("ref", ref_key, cached)
        with self.timer.stage(f"metric:{name}"):
            return "rows", metric.score(sample, cached["v"])

    # ------------------------------------------------------------ assembly

    def assemble(self, results: dict[tuple, ItemResult], units) -> tuple[pd.DataFrame, dict]:
        records = []
        modality = {ds.name: ds.modality for ds in self.datasets}
        for res, ds, item in units:
            result = results.get((res, ds.name, item.id))
            if result is None:
                continue
            for row in result.rows:
                rec = {"resolution": res, "dataset": ds.name, "item": item.id, "source": item.source, **row}
                rec.setdefault("frame", 0)
                rec.setdefault("ratio", float("nan"))
                bounds = self.protocol.bounds(rec["level"], res, modality[ds.name])
                b = assign_bin(rec["ratio"], bounds) if bounds else None
                rec["bin"] = b or ""
                records.append(rec)
        rows = pd.DataFrame.from_records(records)
        if rows.empty:
            rows = pd.DataFrame(columns=META_COLUMNS)
        extra = sorted(c for c in rows.columns if c not in META_COLUMNS)
        rows = rows[META_COLUMNS + extra]
        rows["frame"] = rows["frame"].astype("int64")
        rows["instance"] = rows["instance"].astype("int64")
        rows["resolution"] = rows["resolution"].astype("int64")
        rows["ratio"] = rows["ratio"].astype("float64")
        rows = rows.sort_values(["resolution", "dataset", "item", "level", "instance"], kind="stable")
        rows = rows.reset_index(drop=True)
        sets: dict = {}
        for name, metric in self.metrics.items():
            if not isinstance(metric, DistributionMetric):
                continue
            for res in self.resolutions:
                keyed = [results[(r, d.name, it.id)] for r, d, it in units
                         if r == res and (r, d.name, it.id) in results]
                ref = [_strip(x.states, f"{name}/ref/") for x in keyed]
                rec = [_strip(x.states, f"{name}/rec/") for x in keyed]
                with self.timer.stage(f"metric:{name}"):
                    sets.setdefault(str(res), {}).update(metric.compute(ref, rec))
        return rows, sets

    def manifest(self, wall: float, started: str) -> dict:
        return {
            "tokbench_version": tokbench.__version__,
            "git_commit": git_commit(),
            "date": started,
            "wall_seconds": round(wall, 3),
            "suite": self.suite.name,
            "suite_spec": self.suite.describe(),
            "protocol": self.protocol.describe(),
            "resolutions": self.resolutions,
            "limit": self.cfg.limit,
            "tokenizer": self.tokenizer.describe(),
            "metrics": {n: m.describe() for n, m in self.metrics.items()},
            "unavailable": self.unavailable,
            "datasets": [ds.describe() for ds in self.datasets],
            "harness": {
                "image": f"smart padding: fit into SxS keeping aspect ({self.protocol.image_resample}), pad black,"
                         " crop, resize back to the original size; native-resolution tokenizers skip the fit",
                "video": f"short side to S ({self.protocol.video_resample}), pad to a multiple of "
                         f"{self.protocol.video_pad_multiple} and the tokenizer's multiple; independent clips"
                         " padded by repeating the last frame",
                "quantisation": "reconstructions rounded to uint8 once; out-of-range values clamped",
                "reencode": {"none": "none (reconstructions are never re-encoded with a lossy codec)",
                             "jpg-names": "image reconstructions re-saved and re-read in the format PIL picks from"
                                          " the original's file name, PIL defaults (JPEG quality 75, 4:2:0); PNG"
                                          " lossless; videos not re-encoded",
                             "all": "every image reconstruction re-saved and re-read as JPEG at PIL defaults"
                                    " (quality 75, 4:2:0); videos not re-encoded"}[self.protocol.rules.resave],
                "video_rounding": self.protocol.rules.video_rounding,
                "rate": "bpp = bits / pixels coded by the tokenizer (canvas incl. padding, all frames)",
                "clip_frames": self.cfg.clip_frames or self.tokenizer.spec.default_clip_frames,
                "fixed_input": (f"the tokenizer accepts {n}x{n} only: every image and frame fitted into {n}x{n} "
                                "(keeping aspect, padded black) whatever the evaluation size, reconstructed, "
                                "cropped and resized back" if (n := self.tokenizer.spec.input_size) else None),
            },
            "units": {"T-ACC": "fraction 0..1", "T-NED": "fraction 0..1", "F-Sim": "cosine",
                      "PSNR": "dB", "bpp": "bits per coded pixel"},
            "device": str(self.tokenizer.device),
            "dtype": self.cfg.dtype,
            "machine": machine(),
            "packages": package_versions(),
            "items_computed": self.items_computed,
            "items_cached": self.items_cached,
            "skipped": self.skipped,
            "ocr_batch_skips": self.ocr_batch_skips(),
            "timings": self.timer.as_dict(),
        }


def check_device(device: str) -> None:
    """A device torch cannot use is one line naming the option and what this machine offers."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        dev = None
    have = ["cpu"] + ([f"cuda (cuda:0..cuda:{torch.cuda.device_count() - 1})"] if torch.cuda.is_available() else [])
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise BadInputError(f"--device {device}: unknown device; valid here: {', '.join(have)}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BadInputError(f"--device {device}: no CUDA GPU is visible to torch "
                                f"(torch {torch.__version__}, cuda {torch.version.cuda}); valid here: cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BadInputError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s); "
                                f"valid here: {', '.join(have)}")


def _strip(states: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in states.items() if k.startswith(prefix)}


def run(cfg: RunConfig | None = None, **kwargs) -> Report:
    """Run a suite and write its report; returns the Report (``report.path`` is the folder).

    Under torchrun every rank returns the same Report object contents; only rank 0 writes it.
    """
    from tokbench import distributed

    cfg = cfg or RunConfig(**kwargs)
    check_device(cfg.device)
    writable_dir(Path(cfg.out), "--out")  # before any work: a bad folder must not waste an hour of compute
    writable_dir(Cache(Path(cfg.cache_dir) if cfg.cache_dir else None).root, "cache folder")
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ctx = distributed.setup(cfg.device)
    runner = Runner(replace(cfg, device=distributed.rank_device(cfg.device, ctx)),
                    log=(lambda m: print(m, file=sys.stderr)))
    units = runner.work()
    batches = runner.batches(units)
    results = runner.run_units(batches[ctx.rank::ctx.world_size])
    gathered = distributed.gather((results, runner.skipped, runner.items_computed, runner.items_cached,
                                   dict(runner.timer.seconds)), ctx)
    report = None
    if ctx.is_main:
        results, skipped, computed, cached = {}, [], 0, 0
        for part_results, part_skipped, part_computed, part_cached, _ in gathered:
            results.update(part_results)
            skipped += part_skipped
            computed += part_computed
            cached += part_cached
        # annotation-level skips are found by every rank: listed once
        runner.skipped, runner.items_computed, runner.items_cached = sorted(set(map(tuple, skipped))), computed, cached
        rows, sets = runner.assemble(results, units)
        with runner.timer.stage("report"):
            summary = summarize(rows)
        path = Path(cfg.out) / (cfg.name or run_name(cfg, runner.tokenizer.label, runner.resolutions,
                                                 runner.tokenizer.checkpoint_sha256))
        report = Report(path, rows, summary, sets, {})
        report.manifest = runner.manifest(time.perf_counter() - t0, started)
        report.manifest["config"] = asdict(cfg)
        report.manifest["world_size"] = ctx.world_size
        if ctx.active:
            report.manifest["rank_timings"] = [
                {k: round(v, 6) for k, v in sorted(part[4].items())} for part in gathered]
        try:
            report.write()
        except OSError as e:
            raise TokbenchError(f"cannot write the report {path} ({e.strerror or e}); finished items are cached: "
                                "rerun with a writable --out to write it without recomputing") from None
    report = distributed.broadcast(report, ctx)
    distributed.barrier(ctx)
    distributed.teardown(ctx)
    if report.rows.empty:
        first = f"; first: {report.manifest['skipped'][0][0]}: {report.manifest['skipped'][0][1]}" \
            if report.manifest.get("skipped") else ""
        raise BadInputError(f"nothing was scored: {len(report.manifest.get('skipped', []))} item(s) skipped, none "
                            f"left (listed in {report.path / 'manifest.json'}){first}")
    return report

"""End-to-end pipeline costs on one suite, from one invocation: items per second per stage, the harness
overhead ratio, the cost of a second tokenizer once the reference side is cached, peak RSS of a run, and
the projected time of the full TokBench set from the measured per-instance costs.

    python benchmarks/bench_pipeline.py [--tokenizer jpeg:quality=50] [--second jpeg:quality=30]
                                        [--suite text-face] [--resolution 256] [--limit N] [--no-direct]

Order of work (one fresh temporary TOKBENCH_CACHE for the whole script; the embedded datasets are built
first, outside every clock):
  1. ``python -m tokbench run --tokenizer T1`` in a subprocess with an empty result cache: stage timings
     from its manifest, process wall time, peak RSS;
  2. the same with ``--tokenizer T2`` on the same cache (reference side = evaluators on the originals,
     cached by run 1): wall2 / wall1;
  3. in this process, the tokenizer and every metric called directly on the same inputs (as in
     benchmarks/bench_overhead.py): the harness overhead ratio and the per-metric split of the reference
     side used by the projection.
The machine may be shared: the load average is printed at every step; compare ratios, not seconds.

Peak RSS is read by a stdlib-only wrapper process around the run (RUSAGE_CHILDREN of the wrapper): taking
RUSAGE_CHILDREN in this process would report this process's own high-water mark, because Python starts
children with vfork and Linux charges the parent's memory to the child's maxrss at exec.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tokbench from this checkout, also when not installed

# TokBench counts (tokbench-protocol.md §1.1: images with >= 1 word and word instances, 8 subsets without
# textocr) and the README's "12,000 images" for text + face together (§1.1, page; face split unverified).
TOKBENCH_TEXT_IMAGES = 3306
TOKBENCH_WORDS = 36087
TOKBENCH_ALL_IMAGES = 12000
PREFETCH_STAGES = ("load", "fit")  # timed in the pipeline's read-ahead thread

RSS_WRAPPER = ("import json,resource,subprocess,sys\n"
               "rc = subprocess.call(sys.argv[2:])\n"
               "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "json.dump({'rc': rc, 'maxrss_kb': u.ru_maxrss, 'cpu_s': u.ru_utime + u.ru_stime},"
               " open(sys.argv[1], 'w'))\n"
               "sys.exit(rc)\n")


def child_env() -> dict:
    """This process's environment with the checkout on PYTHONPATH, so ``python -m tokbench`` finds it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def load_average() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def run_measured(cmd: list[str], workdir: Path, tag: str, env: dict | None = None) -> dict:
    """Run ``cmd`` under the RSS wrapper; returns wall seconds, CPU seconds (all its processes), peak RSS
    (MiB, the largest single process) and the output files."""
    stats = workdir / f"{tag}.rss.json"
    out, err = workdir / f"{tag}.stdout", workdir / f"{tag}.stderr"
    t0 = time.perf_counter()
    with open(out, "w") as fo, open(err, "w") as fe:
        rc = subprocess.call([sys.executable, "-c", RSS_WRAPPER, str(stats), *cmd], stdout=fo, stderr=fe,
                             env=env)
    wall = time.perf_counter() - t0
    if rc != 0:
        sys.stderr.write(err.read_text()[-4000:])
        raise SystemExit(f"{tag}: command failed (exit {rc}): {' '.join(cmd)}")
    usage = json.loads(stats.read_text())
    return {"wall": wall, "cpu": usage["cpu_s"], "peak_rss_mib": usage["maxrss_kb"] / 1024, "stdout": out,
            "stderr": err}


def tokbench_run_cmd(tokenizer: str, suite: str, resolution: int, limit: int | None, out: Path, name: str,
                     cache_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "tokbench", "run", "--tokenizer", tokenizer, "--suite", suite,
           "--resolution", str(resolution), "--out", str(out), "--name", name, "--cache-dir", str(cache_dir),
           "--quiet", *extra]
    if limit:
        cmd += ["--limit", str(limit)]
    return cmd


def read_report(path: Path) -> tuple[dict, "object"]:
    import pandas as pd

    return json.loads((path / "manifest.json").read_text()), pd.read_parquet(path / "rows.parquet")


def direct_costs(tokenizer: str, suite: str, resolution: int, limit: int | None, tmp: Path) -> dict:
    """bench_overhead.py's measurement, split by part: the tokenizer and each metric's reference side and
    reconstruction side called directly on preloaded, pre-padded inputs (one warm-up item untimed)."""
    import torch

    from tokbench import harness
    from tokbench.metrics.base import DistributionMetric, Sample
    from tokbench.pipeline import RunConfig, Runner

    runner = Runner(RunConfig(tokenizer=tokenizer, suite=suite, resolutions=[resolution], limit=limit,
                              quiet=True, out=str(tmp / "direct-reports"), cache_dir=str(tmp / "direct-cache")))
    prepared = []
    for res, ds, item in runner.work():
        pixels = item.load()
        if item.modality != "image":
            continue
        g = harness.plan_image(pixels.shape[1], pixels.shape[2], res, runner.tokenizer.spec,
                               runner.protocol.image_resample)
        prepared.append((item, pixels, harness.to_canvas(pixels, g)[None], g))
    seconds: dict[str, float] = {}

    def clock(key: str, fn, *a):
        t = time.perf_counter()
        value = fn(*a)
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t
        return value

    for k, (item, pixels, canvas, g) in enumerate([prepared[0]] + prepared):
        if k == 1:
            seconds.clear()  # the first pass was the warm-up (lazy imports, evaluator sessions)
        x = harness.to_input(canvas, runner.tokenizer.spec, runner.tokenizer.device, runner.tokenizer.dtype)
        with torch.inference_mode():
            y, _ = clock("tokenizer", runner.tokenizer.reconstruct, x)
        out = harness.to_uint8(y, runner.tokenizer.spec, tuple(x.shape), "bench", item.id)
        sample = Sample(item, pixels, harness.from_canvas(out[0], g))
        for name, metric in runner.metrics.items():
            if isinstance(metric, DistributionMetric):
                clock(f"ref:{name}", metric.reference_state, sample)
                clock(f"rec:{name}", metric.item_state, sample)
            else:
                ref = clock(f"ref:{name}", metric.reference, sample)
                clock(f"rec:{name}", metric.score, sample, ref)
    return {"seconds": seconds, "images": len(prepared),
            "megapixels": sum(p.shape[1] * p.shape[2] for _, p, _, _ in prepared) / 1e6}


def fmt_s(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def stage_table(manifest: dict, images: int, words: int, faces: int) -> list[str]:
    timings = manifest["timings"]
    lines = [f"  {'stage':<14}{'seconds':>9}{'items/s':>10}   per instance"]
    for stage, sec in timings.items():
        extra = ""
        if stage == "metric:text" and words:
            extra = f"{words / sec:8.1f} words/s ({words} words)" if sec else ""
        elif stage == "metric:face" and faces:
            extra = f"{faces / sec:8.1f} faces/s ({faces} faces)" if sec else ""
        if stage in PREFETCH_STAGES:
            extra = "read-ahead thread, overlaps the stages below"
        rate = f"{images / sec:10.2f}" if sec > 0 else f"{'inf':>10}"
        lines.append(f"  {stage:<14}{sec:9.2f}{rate}   {extra}".rstrip())
    untimed = manifest["wall_seconds"] - sum(v for k, v in timings.items() if k not in PREFETCH_STAGES)
    lines.append(f"  {'(untimed)':<14}{untimed:9.2f}{'':>10}   setup (evaluator loading), crop-back, assembly,"
                 " waiting for the read-ahead")
    lines.append(f"  {'run wall':<14}{manifest['wall_seconds']:9.2f}{images / manifest['wall_seconds']:10.2f}"
                 f"   ({images} items computed, {manifest['items_cached']} from cache)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", default="jpeg:quality=50", help="first tokenizer (fresh cache)")
    ap.add_argument("--second", default="jpeg:quality=30", help="second tokenizer (same cache)")
    ap.add_argument("--suite", default="text-face")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--limit", type=int, help="first N items of each dataset (default: the full suite)")
    ap.add_argument("--no-direct", action="store_true",
                    help="skip the direct re-measurement (overhead then only from the run's own stage times)")
    ap.add_argument("--face-images", type=int, default=TOKBENCH_ALL_IMAGES - TOKBENCH_TEXT_IMAGES,
                    help="TokBench face images assumed for the projection (default: 12,000 - 3,306)")
    ap.add_argument("--faces-per-image", type=float, default=1.0,
                    help="faces per TokBench face image assumed for the projection")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tokbench-bench-pipeline-"))
    os.environ["TOKBENCH_CACHE"] = str(tmp / "cache")
    env = child_env()
    results = tmp / "results"  # the run cache shared by runs 1 and 2

    print(f"bench_pipeline: suite {args.suite}, resolution {args.resolution}, "
          f"limit {args.limit or 'none (full suite)'}; TOKBENCH_CACHE={tmp / 'cache'}")
    print(f"machine: {os.cpu_count()} CPUs; start: {load_average()}")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tokbench", "datasets", "build", args.suite], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"datasets built in {time.perf_counter() - t:.1f} s (not counted)")

    first = run_measured(tokbench_run_cmd(args.tokenizer, args.suite, args.resolution, args.limit, tmp / "reports",
                                          "run1", results), tmp, "run1", env)
    print(f"run 1 done ({args.tokenizer}): {load_average()}")
    second = run_measured(tokbench_run_cmd(args.second, args.suite, args.resolution, args.limit, tmp / "reports",
                                           "run2", results), tmp, "run2", env)
    print(f"run 2 done ({args.second}): {load_average()}")
    m1, rows1 = read_report(tmp / "reports" / "run1")
    m2, _ = read_report(tmp / "reports" / "run2")
    images = m1["items_computed"]
    words = int((rows1["level"] == "word").sum())
    faces = int((rows1["level"] == "face").sum())
    text_images = int(rows1.loc[rows1["level"] == "word", "item"].nunique())
    face_images = int(rows1.loc[rows1["level"] == "face", "item"].nunique())

    direct = None
    if not args.no_direct:
        direct = direct_costs(args.tokenizer, args.suite, args.resolution, args.limit, tmp)
        print(f"direct measurement done: {load_average()}")

    # ---------------------------------------------------------------- stages
    print()
    print(f"== stages of run 1: {args.tokenizer}, fresh cache ({images} images: {text_images} with words, "
          f"{face_images} with faces; {words} words, {faces} faces"
          + (f"; mean {direct['megapixels'] / direct['images']:.2f} MP per image" if direct else "") + ")")
    print("\n".join(stage_table(m1, images, words, faces)))
    print(f"== stages of run 2: {args.second}, reference side cached")
    print("\n".join(stage_table(m2, m2["items_computed"], words, faces)))
    if m1["unavailable"]:
        print("metrics unavailable (not run): " + ", ".join(sorted(m1["unavailable"])))

    # ---------------------------------------------------------------- overhead
    stages = m1["timings"]
    compute_in_run = sum(v for k, v in stages.items() if k in ("tokenizer", "reference") or k.startswith("metric:"))
    print()
    print("== harness overhead (run 1)")
    print(f"  run wall (manifest, from run() entry):          {m1['wall_seconds']:8.2f} s")
    print(f"  process wall (interpreter start to exit):       {first['wall']:8.2f} s")
    if direct:
        d = sum(direct["seconds"].values())
        print(f"  tokenizer + metrics called directly:            {d:8.2f} s  "
              f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(direct['seconds'].items()))})")
        print(f"  harness overhead ratio (run wall / direct):     {m1['wall_seconds'] / d:8.3f}  (target <= 1.10)")
    print(f"  in-run ratio (run wall / its tokenizer+reference+metric stages): "
          f"{m1['wall_seconds'] / compute_in_run:.3f}")

    # ---------------------------------------------------------------- second tokenizer
    print()
    print("== second tokenizer on the same suite, reference side cached")
    print(f"  run 1 {args.tokenizer:<18} manifest wall {m1['wall_seconds']:8.2f} s   process wall {first['wall']:8.2f} s")
    print(f"  run 2 {args.second:<18} manifest wall {m2['wall_seconds']:8.2f} s   process wall {second['wall']:8.2f} s")
    print(f"  wall2 / wall1: {m2['wall_seconds'] / m1['wall_seconds']:.3f} (manifest), "
          f"{second['wall'] / first['wall']:.3f} (process)  (target <= 0.55)")
    print(f"  CPU time (user + sys): run 1 {first['cpu']:.1f} s, run 2 {second['cpu']:.1f} s; ratio "
          f"{second['cpu'] / first['cpu']:.3f} (less sensitive to other load on a shared machine)")
    print(f"  reference stage: run 1 {stages.get('reference', 0):.2f} s, run 2 {m2['timings'].get('reference', 0):.2f} s")

    # ---------------------------------------------------------------- memory
    print()
    print("== peak RSS (whole `python -m tokbench run` process)")
    print(f"  run 1: {first['peak_rss_mib']:.0f} MiB   run 2: {second['peak_rss_mib']:.0f} MiB  (target <= 2048 MiB)")

    # ---------------------------------------------------------------- projection
    print()
    print("== projected time for the full TokBench image set (this machine, this tokenizer)")
    ref = stages.get("reference", 0.0)
    if direct:  # split the run's reference stage between metrics in the proportions measured directly
        refs = {k[4:]: v for k, v in direct["seconds"].items() if k.startswith("ref:")}
        total = sum(refs.values()) or 1.0
        ref_share = {k: ref * v / total for k, v in refs.items()}
        split_note = "split of the run's reference stage by the direct measurement's proportions"
    else:
        ref_share = {"text": ref * words / max(words + faces, 1), "face": ref * faces / max(words + faces, 1)}
        split_note = "reference stage split by instance count (no direct measurement)"
    per_word_rec = stages.get("metric:text", 0.0) / words if words else 0.0
    per_word_ref = ref_share.get("text", 0.0) / words if words else 0.0
    per_face_rec = stages.get("metric:face", 0.0) / faces if faces else 0.0
    per_face_ref = ref_share.get("face", 0.0) / faces if faces else 0.0
    per_image_parts = {k: v for k, v in stages.items() if k not in ("reference", "metric:text", "metric:face")}
    per_image_other_ref = sum(v for k, v in ref_share.items() if k not in ("text", "face"))
    untimed = m1["wall_seconds"] - sum(stages.values())
    per_image = (sum(per_image_parts.values()) + per_image_other_ref + untimed) / images
    n_faces = round(args.face_images * args.faces_per_image)
    n_images = TOKBENCH_TEXT_IMAGES + args.face_images
    print(f"  per image:  {per_image * 1e3:8.1f} ms  (load, tokenizer, "
          f"{', '.join(k for k in per_image_parts if k not in ('load', 'tokenizer'))}, untimed harness/setup;"
          " the one-off setup is spread over the items run, so --limit overstates it)")
    print(f"  per word:   {per_word_rec * 1e3:8.1f} ms OCR on the reconstruction + {per_word_ref * 1e3:.1f} ms on the"
          " original (once per dataset)")
    print(f"  per face:   {per_face_rec * 1e3:8.1f} ms embedding the reconstruction + {per_face_ref * 1e3:.1f} ms the"
          " original (once per dataset)")
    print(f"  ({split_note})")
    print(f"  counts: {TOKBENCH_TEXT_IMAGES:,} text images and {TOKBENCH_WORDS:,} words (tokbench-protocol.md §1.1,"
          " 8 subsets without textocr);")
    print(f"          {args.face_images:,} face images (ASSUMED: README's ~12,000 images for text + face minus the"
          f" text images) with {args.faces_per_image:g} face each (ASSUMED) = {n_faces:,} faces")
    further = n_images * per_image + TOKBENCH_WORDS * per_word_rec + n_faces * per_face_rec
    first_res = further + TOKBENCH_WORDS * per_word_ref + n_faces * per_face_ref
    print(f"  first tokenizer, one resolution ({args.resolution}):              {fmt_s(first_res)}")
    print(f"  each further tokenizer or resolution (reference cached): {fmt_s(further)}")
    print(f"  first tokenizer at 256 + 512 + 1024:                     {fmt_s(first_res + 2 * further)}"
          f"  (tokenizer cost measured at {args.resolution} only)")
    if direct:
        print(f"  caveat: per-image costs measured on embedded images of {direct['megapixels'] / direct['images']:.2f}"
              " MP mean; TokBench's document subsets (DocVQA, InfographicVQA) are larger, so load and PSNR/SSIM"
              " per image will be higher there")
    print(f"end: {load_average()}")


if __name__ == "__main__":
    main()

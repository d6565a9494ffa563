"""Harness overhead: wall time of a full ``tokbench.run`` divided by the time the tokenizer and the metrics
need on the same inputs when called directly (no loading, padding, caching or report writing).

    python benchmarks/bench_overhead.py [--tokenizer jpeg] [--suite text-face] [--resolution 256] [--limit N]

Both measurements happen in this one process, one after the other, with a fresh cache each (noisy
machines: compare the ratio, not the seconds). Target: ratio <= 1.10.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="jpeg")
    ap.add_argument("--suite", default="text-face")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="tokbench-bench-")
    os.environ["TOKBENCH_CACHE"] = os.path.join(tmp, "cache")

    import torch

    from tokbench import harness
    from tokbench.metrics.base import DistributionMetric, Sample
    from tokbench.pipeline import RunConfig, Runner, run

    cfg = RunConfig(tokenizer=args.tokenizer, suite=args.suite, resolutions=[args.resolution], limit=args.limit,
                    out=os.path.join(tmp, "reports"), quiet=True)
    # warm-up: import every lazy module and evaluator once so neither measurement pays for it
    run(RunConfig(**{**cfg.__dict__, "limit": 1, "out": os.path.join(tmp, "warm"),
                     "cache_dir": os.path.join(tmp, "warm-cache")}))

    t0 = time.perf_counter()
    report = run(cfg)
    wall = time.perf_counter() - t0

    # the same work, called directly: pixels preloaded, canvases prepared outside the clock
    runner = Runner(RunConfig(**{**cfg.__dict__, "cache_dir": os.path.join(tmp, "direct-cache")}))
    units = runner.work()
    prepared = []
    for res, ds, item in units:
        pixels = item.load()
        if item.modality == "image":
            g = harness.plan_image(pixels.shape[1], pixels.shape[2], res, runner.tokenizer.spec,
                                   runner.protocol.image_resample)
            prepared.append((item, pixels, harness.to_canvas(pixels, g)[None], g))
    direct = 0.0
    for item, pixels, canvas, g in prepared:
        x = harness.to_input(canvas, runner.tokenizer.spec, runner.tokenizer.device, runner.tokenizer.dtype)
        t = time.perf_counter()
        with torch.inference_mode():
            y, _ = runner.tokenizer.reconstruct(x)
        direct += time.perf_counter() - t
        out = harness.to_uint8(y, runner.tokenizer.spec, tuple(x.shape), "bench", item.id)
        recon = harness.from_canvas(out[0], g)
        sample = Sample(item, pixels, recon)
        t = time.perf_counter()
        for metric in runner.metrics.values():
            if isinstance(metric, DistributionMetric):
                metric.reference_state(sample)
                metric.item_state(sample)
            else:
                metric.score(sample, metric.reference(sample))
        direct += time.perf_counter() - t

    stages = report.manifest["timings"]
    compute = sum(v for k, v in stages.items() if k == "tokenizer" or k.startswith("metric:") or k == "reference")
    print(f"items: {len(units)}  tokenizer: {args.tokenizer}  suite: {args.suite}  resolution: {args.resolution}")
    print(f"run wall time:                 {wall:8.2f} s")
    print(f"tokenizer + metrics, direct:   {direct:8.2f} s")
    print(f"stages inside the run:         {', '.join(f'{k} {v:.2f}' for k, v in stages.items())}")
    print(f"harness overhead ratio (run / direct):          {wall / direct:.3f}  (target <= 1.10)")
    print(f"in-run ratio (run / its tokenizer+metric time): {wall / compute:.3f}")


if __name__ == "__main__":
    main()

"""2-rank speedup of ``tokbench run`` under torchrun (gloo, CPU) with a CPU-heavy tokenizer, from one
invocation: the same run single-process and as ``python -m torch.distributed.run --standalone
--nproc-per-node 2 -m tokbench run ...``.

    python benchmarks/bench_scaleout.py [--tokenizer omni] [--resolution 512] [--limit 4] [--batch-size 1]

The default tokenizer is OmniTokenizer at its released size (dim 512, 8 heads, ttww/tttt blocks, 8192
codes) with random weights written by tests/omni_fixtures.py (no real checkpoint needed: the cost per
image is the architecture's, not the weights'); ``--tokenizer webp:quality=50`` (single-threaded libwebp)
or any registry name with ``--checkpoint`` works too. The default resolution is 512, where that model costs
~8 s per image on one thread (256: ~1.4 s, about as much as the metrics of an item), so the tokenizer
dominates as intended; evaluators and fixed start-up costs (imports, model loading: paid by every rank)
are the part that does not shrink.

Three runs, each with its own fresh result cache, one after the other:
  A. one process, OMP_NUM_THREADS=1 (torch, and the BLAS/OpenMP pools of the evaluators);
  B. two ranks under torchrun, OMP_NUM_THREADS=1 in each (torchrun's own default too);
  C. one process, OMP_NUM_THREADS=2 (what a user of a 2-core machine gets by default).
Printed: A/B (like-for-like speedup) and C/B (against one process already using both cores), on process
wall time (interpreter start to exit: imports and model loading are paid once per rank, in parallel) and
on the manifest's run wall time; CPU seconds of all processes; peak RSS of the largest process; each
rank's busy time (load balance); whether B's rows equal A's. Before the runs, the tokenizer alone in one
vs two concurrent 1-thread processes gives the machine's own ceiling at that moment (other load, memory
bandwidth), so the pipeline's share of any shortfall can be told apart from the machine's.
rapidocr runs single-threaded onnxruntime calls, as many at once as torch has threads (1 per rank here;
onnxruntime itself ignores OMP_NUM_THREADS).
The machine may be shared: the load average is printed at every step.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import REPO, child_env, load_average, read_report, run_measured, tokbench_run_cmd

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# One worker of the ceiling measurement: the tokenizer alone on random canvases, timed after a file barrier
# so that concurrent workers overlap exactly (argv: tokenizer, checkpoint or "", resolution, images, barrier
# folder, number of workers, worker id).
CEILING_WORKER = """
import os, sys, time, torch
from tokbench.tokenizers.registry import create_tokenizer
name, ckpt, res, n, folder, workers, me = sys.argv[1:8]
tok = create_tokenizer(name, checkpoint=ckpt or None)
lo, hi = tok.spec.input_range
x = lo + (hi - lo) * torch.rand(1, 3, 1, int(res), int(res), generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    tok.reconstruct(x)  # warm-up
    open(os.path.join(folder, me), "w").close()
    while len(os.listdir(folder)) < int(workers):
        time.sleep(0.01)
    t0 = time.time()
    for _ in range(int(n)):
        tok.reconstruct(x)
print(t0, time.time())
"""


def random_omni_checkpoint(path: Path) -> Path:
    """A released-size OmniTokenizer (registry entry ``omni``) with random weights."""
    sys.path.insert(0, str(REPO / "tests"))
    from omni_fixtures import write_random_omni_checkpoint

    from tokbench.tokenizers.omni import RELEASES, release_config

    release = next(r for r in RELEASES if r.name == "omni")
    return write_random_omni_checkpoint(path, release_config(release))


def threads_env(base: dict, n: int) -> dict:
    return {**base, **{v: str(n) for v in THREAD_VARS}}


def busy(manifest: dict) -> list[float]:
    """Seconds each rank spent in timed stages (one entry for a single process)."""
    ranks = manifest.get("rank_timings") or [manifest["timings"]]
    return [sum(t.values()) for t in ranks]


def ceiling(tokenizer: str, checkpoint: str | None, resolution: int, images: int, env: dict, tmp: Path) -> float:
    """What this machine gives right now: the tokenizer alone, ``images`` reconstructions in one 1-thread
    process vs half as many in each of two concurrent 1-thread processes (no tokbench pipeline)."""
    spans = {}
    for workers in (1, 2):
        folder = tmp / f"barrier-{workers}"
        folder.mkdir()
        procs = [subprocess.Popen([sys.executable, "-c", CEILING_WORKER, tokenizer, checkpoint or "", str(resolution),
                                   str(images // workers), str(folder), str(workers), str(w)],
                                  env=threads_env(env, 1), stdout=subprocess.PIPE, text=True)
                 for w in range(workers)]
        times = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode:
                raise SystemExit(f"ceiling worker failed (exit {p.returncode})")
            times.append(tuple(map(float, out.split()[-2:])))
        spans[workers] = max(t[1] for t in times) - min(t[0] for t in times)
    print(f"ceiling: {images} reconstructions at {resolution}: 1 process {spans[1]:.1f} s, 2 concurrent processes "
          f"{spans[2]:.1f} s; {load_average()}")
    return spans[1] / spans[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", default="omni",
                    help="registry name; 'omni' without --checkpoint uses a random released-size checkpoint")
    ap.add_argument("--checkpoint")
    ap.add_argument("--suite", default="text-face")
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--limit", type=int, default=4,
                    help="first N items of each dataset (4: 16 items, ~6 min; at 2 start-up is a larger share)")
    ap.add_argument("--ceiling-images", type=int, default=4,
                    help="reconstructions for the machine's own 2-process ceiling (0: skip)")
    ap.add_argument("--batch-size", type=int, default=1,
                    help="items per tokenizer call; ranks take whole batches round-robin, so small batches"
                         " balance a small subset (default 1)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tokbench-bench-scaleout-"))
    os.environ["TOKBENCH_CACHE"] = str(tmp / "cache")
    env = child_env()
    print(f"bench_scaleout: tokenizer {args.tokenizer}, suite {args.suite}, resolution {args.resolution}, "
          f"limit {args.limit}, batch size {args.batch_size}; TOKBENCH_CACHE={tmp / 'cache'}")
    print(f"machine: {os.cpu_count()} CPUs; start: {load_average()}")
    subprocess.run([sys.executable, "-m", "tokbench", "datasets", "build", args.suite], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    extra = ["--batch-size", str(args.batch_size)]
    checkpoint = args.checkpoint
    if args.tokenizer == "omni" and not checkpoint:
        checkpoint = str(random_omni_checkpoint(tmp / "omni-random-released-size.ckpt"))
        print(f"random released-size OmniTokenizer checkpoint: {checkpoint} "
              f"({Path(checkpoint).stat().st_size / 1e6:.0f} MB)")
    if checkpoint:
        extra += ["--checkpoint", checkpoint]

    ceil = ceiling(args.tokenizer, checkpoint, args.resolution, args.ceiling_images, env, tmp) \
        if args.ceiling_images else None

    def cmd(tag: str) -> list[str]:
        return tokbench_run_cmd(args.tokenizer, args.suite, args.resolution, args.limit, tmp / "reports", tag,
                                tmp / f"results-{tag}", tuple(extra))

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    plan = [
        ("A", "1 process, 1 thread", cmd("A"), threads_env(env, 1)),
        ("B", "2 ranks (torchrun, gloo), 1 thread each", torchrun + cmd("B")[1:], threads_env(env, 1)),
        ("C", "1 process, 2 threads", cmd("C"), threads_env(env, 2)),
    ]
    runs = {}
    for tag, what, command, run_env in plan:
        runs[tag] = run_measured(command, tmp, tag, run_env)
        runs[tag]["manifest"], runs[tag]["rows"] = read_report(tmp / "reports" / tag)
        print(f"run {tag} done ({what}): process wall {runs[tag]['wall']:.1f} s; {load_average()}")
        if tag == "B":
            print("  command: " + " ".join(command[:9]) + " ...")

    a, b, c = (runs[t] for t in "ABC")
    items = a["manifest"]["items_computed"]
    print()
    print(f"== {items} items ({args.suite}, first {args.limit} of each dataset, resolution {args.resolution}); "
          f"tokenizer stage {a['manifest']['timings'].get('tokenizer', 0):.1f} s of "
          f"{sum(a['manifest']['timings'].values()):.1f} s timed in run A")
    print(f"  {'run':<44}{'process wall':>13}{'run wall':>10}{'CPU':>8}{'peak RSS':>10}   busy s per rank")
    for tag, what, _, _ in plan:
        r = runs[tag]
        print(f"  {tag} {what:<42}{r['wall']:12.1f}s{r['manifest']['wall_seconds']:9.1f}s{r['cpu']:7.1f}s"
              f"{r['peak_rss_mib']:7.0f} MiB   {' / '.join(f'{s:.1f}' for s in busy(r['manifest']))}")
    print(f"  2-rank speedup, like for like (A / B):          process wall {a['wall'] / b['wall']:.2f}x, "
          f"run wall {a['manifest']['wall_seconds'] / b['manifest']['wall_seconds']:.2f}x  (target >= 1.7x)")
    print(f"  2-rank speedup vs 1 process on 2 threads (C / B): process wall {c['wall'] / b['wall']:.2f}x, "
          f"run wall {c['manifest']['wall_seconds'] / b['manifest']['wall_seconds']:.2f}x")
    if ceil:
        print(f"  machine ceiling now (tokenizer alone, 2 concurrent 1-thread processes vs 1): {ceil:.2f}x; "
              f"pipeline efficiency (A / B run wall over the ceiling): "
              f"{a['manifest']['wall_seconds'] / b['manifest']['wall_seconds'] / ceil:.2f}")
    ranks = busy(b["manifest"])
    print(f"  load balance of B: busiest rank {max(ranks):.1f} s, mean {sum(ranks) / len(ranks):.1f} s "
          f"(ideal speedup with this split: {sum(busy(a['manifest'])) / max(ranks):.2f}x of the timed work)")
    same = a["rows"].equals(b["rows"])
    print(f"  rows of B identical to A: {same}; world_size of B: {b['manifest'].get('world_size')}")
    print(f"end: {load_average()}")


if __name__ == "__main__":
    main()

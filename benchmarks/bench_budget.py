"""Issue 18's budget, from one invocation: peak RSS and CPU seconds per item of the README's main job
(`tokbench run --tokenizer jpeg --suite text-face`, 3 resolutions, fresh cache, dataset build included)
for this checkout and, side by side, for a baseline checkout (the commit before the change); whether their
rows agree; SSIM's CPU time against torchmetrics' whole-image call; dlib's face network: faces/s and CPU
per face with dlib (1 and 2 workers) and with the torch port (the default), descriptor differences.

    python benchmarks/bench_budget.py [--baseline /path/to/old/checkout] [--same-rows /path/to/prev/checkout]
                                      [--limit N] [--skip-job] [--data-cache DIR]

CPU seconds (user + sys of the job and all its processes, dlib workers and the dataset-build child
included) are the comparable figure on a shared machine; wall seconds are printed but depend on the load.
Memory: the peak RSS of the run process (RUSAGE_CHILDREN of a wrapper; see bench_pipeline.py) and, sampled
every 0.5 s, the peak over time of the whole process tree's summed RSS (the run, its dlib workers, a
dataset-build child) and summed PSS (pages shared between the processes counted once).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import RSS_WRAPPER, load_average  # noqa: E402


def _tree(root: int) -> list[int]:
    """``root``'s descendants (not ``root``: the RSS wrapper), from /proc."""
    parent = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                parent[int(pid)] = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, grew = {root}, True
    while grew:
        new = {p for p, pp in parent.items() if pp in tree and p not in tree}
        tree |= new
        grew = bool(new)
    return sorted(tree - {root})


def _kib(path: str, field: str) -> int:
    try:
        with open(path) as f:
            return next((int(line.split()[1]) for line in f if line.startswith(field)), 0)
    except OSError:
        return 0


class TreeMemory:
    """Samples the summed RSS and PSS of every process under the wrapper started with ``cmd``."""

    def __init__(self):
        self.peak_rss = self.peak_pss = 0
        self.processes = 0
        self._stop = False

    def watch(self, pid: int) -> None:
        import threading

        def loop():
            while not self._stop:
                pids = _tree(pid)
                self.processes = max(self.processes, len(pids))
                self.peak_rss = max(self.peak_rss, sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in pids))
                self.peak_pss = max(self.peak_pss, sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids))
                time.sleep(0.5)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._thread.join()


def run_watched(cmd: list[str], workdir: Path, tag: str, env: dict) -> dict:
    """bench_pipeline.run_measured with the process tree sampled: wall, CPU seconds of the job and every
    process it waited for, peak RSS of the run process, peak summed RSS / PSS of the tree."""
    import json

    stats = workdir / f"{tag}.rss.json"
    tree = TreeMemory()
    t0 = time.perf_counter()
    with open(workdir / f"{tag}.stdout", "w") as fo, open(workdir / f"{tag}.stderr", "w") as fe:
        proc = subprocess.Popen([sys.executable, "-c", RSS_WRAPPER, str(stats), *cmd], stdout=fo, stderr=fe,
                                env=env)
        tree.watch(proc.pid)
        rc = proc.wait()
    wall = time.perf_counter() - t0
    tree.stop()
    if rc != 0:
        sys.stderr.write((workdir / f"{tag}.stderr").read_text()[-4000:])
        raise SystemExit(f"{tag}: command failed (exit {rc}): {' '.join(cmd)}")
    usage = json.loads(stats.read_text())
    return {"wall": wall, "cpu": usage["cpu_s"], "peak_rss_mib": usage["maxrss_kb"] / 1024,
            "tree_rss_mib": tree.peak_rss / 1024, "tree_pss_mib": tree.peak_pss / 1024,
            "processes": tree.processes}


def main_job(checkout: Path, tmp: Path, tag: str, limit: int | None, data_cache: Path | None) -> dict:
    """The main job from ``checkout`` with its own fresh TOKBENCH_CACHE (the embedded datasets are built
    by the measured job, as on a fresh clone, unless ``data_cache`` holds them built already)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)  # with -P below: the checkout, not the working directory, is imported
    env["TOKBENCH_CACHE"] = str(tmp / f"{tag}-cache")
    if data_cache:
        env["TOKBENCH_DATA_CACHE"] = str(data_cache)
    cmd = [sys.executable, "-P", "-m", "tokbench", "run", "--tokenizer", "jpeg", "--suite", "text-face",
           "--out", str(tmp / f"{tag}-reports"), "--name", "job", "--quiet"]
    if limit:
        cmd += ["--limit", str(limit)]
    m = run_watched(cmd, tmp, tag, env)
    import json

    import pandas as pd

    manifest = json.loads((tmp / f"{tag}-reports" / "job" / "manifest.json").read_text())
    m["items"] = manifest["items_computed"] + manifest["items_cached"]
    m["rows"] = pd.read_parquet(tmp / f"{tag}-reports" / "job" / "rows.parquet")
    m["timings"] = manifest["timings"]
    m["unavailable"] = sorted(manifest["unavailable"])
    return m


def identical_rows(a, b) -> str:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        return f"identical ({len(a)} rows, {a.shape[1]} columns, exact)"
    except AssertionError as e:
        return "DIFFERENT: " + str(e).splitlines()[0]


# columns whose values may move by float rounding between the compared commits: SSIM (torchmetrics float32 ->
# float64 blurs) and the face columns (dlib's network by dlib -> the torch port of it, ~1e-7)
ROUNDING_COLUMNS = {"SSIM": "old: torchmetrics float32", "F-Sim": "dlib's forward pass vs its torch port",
                    "F-L2": "dlib's forward pass vs its torch port"}


def compare_rows(a, b) -> str:
    import numpy as np
    import pandas as pd

    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return f"DIFFERENT shapes/columns {a.shape} vs {b.shape}"
    moved = [c for c in ROUNDING_COLUMNS if c in a.columns]
    other = [c for c in a.columns if c not in moved]
    try:
        pd.testing.assert_frame_equal(a[other], b[other], check_exact=True)
        same = f"all columns but {', '.join(moved)} identical"
    except AssertionError as e:
        same = f"columns other than {', '.join(moved)} DIFFER: " + str(e).splitlines()[0]
    diffs = [f"{c} max |new - old| {np.nanmax(np.abs(a[c].to_numpy(float) - b[c].to_numpy(float))):.2e} "
             f"({ROUNDING_COLUMNS[c]})" for c in moved]
    return "; ".join([same, *diffs])


def ssim_speed(dataset_cache: Path, n: int) -> list[str]:
    """CPU seconds of SSIM on the embedded images (JPEG q=30 reconstructions) at original resolution."""
    import io

    import numpy as np
    import torch
    from PIL import Image
    from torchmetrics.functional.image import structural_similarity_index_measure

    from tokbench.metrics.pixel import ssim_per_frame

    files = sorted(dataset_cache.glob("*/*.png"))[:n]
    pairs = []
    for f in files:
        o = np.asarray(Image.open(f).convert("RGB"))
        buf = io.BytesIO()
        Image.fromarray(o).save(buf, "JPEG", quality=30)
        pairs.append((o, np.asarray(Image.open(buf).convert("RGB"))))
    to = lambda x: torch.from_numpy(x.copy()).permute(2, 0, 1)[None].float()  # noqa: E731
    t = time.process_time()
    ours = [ssim_per_frame(o[None], r[None])[0] for o, r in pairs]
    t_ours = time.process_time() - t
    t = time.process_time()
    ref = [structural_similarity_index_measure(to(r), to(o), gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                               data_range=255.0).item() for o, r in pairs]
    t_ref = time.process_time() - t
    mp = sum(o.shape[0] * o.shape[1] for o, _ in pairs) / 1e6
    diff = max(abs(a - b) for a, b in zip(ours, ref))
    return [f"  {len(pairs)} embedded images, {mp:.1f} MP: separable float64 {t_ours:.2f} CPU s, torchmetrics "
            f"whole-image float32 {t_ref:.2f} CPU s (torch threads {torch.get_num_threads()})",
            f"  SSIM speed ratio (torchmetrics CPU / separable CPU): {t_ref / t_ours:.2f}x;"
            f" max |difference| {diff:.1e} (torchmetrics float32 rounding)"]


def face_speed(dataset_cache: Path) -> list[str]:
    """dlib's network by dlib (1, 2 workers) and by torch on the face originals (bench_face_network.py)."""
    from bench_face_network import compare_networks

    return compare_networks()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, help="checkout of the commit to compare with (e.g. a git worktree)")
    ap.add_argument("--same-rows", type=Path, help="checkout whose rows this one must equal exactly (e.g. the"
                                                   " commit before a speed-up); run alongside, CPU printed too")
    ap.add_argument("--limit", type=int, help="first N items of each dataset (default: the full main job)")
    ap.add_argument("--skip-job", action="store_true", help="only the SSIM and face figures")
    ap.add_argument("--data-cache", type=Path, help="embedded datasets built already (the build is then not"
                                                    " part of the measured jobs)")
    ap.add_argument("--ssim-images", type=int, default=40)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tokbench-bench-budget-"))
    print(f"bench_budget: limit {args.limit or 'none (full main job)'}; machine {os.cpu_count()} CPUs; "
          f"{load_average()}")
    dataset_cache = args.data_cache
    if not args.skip_job:
        from concurrent.futures import ThreadPoolExecutor

        # both jobs at once (CPU seconds and peak RSS are per job; wall is not comparable then)
        checkouts = {"new": REPO, **({"old": args.baseline.resolve()} if args.baseline else {}),
                     **({"prev": args.same_rows.resolve()} if args.same_rows else {})}
        with ThreadPoolExecutor(len(checkouts)) as pool:
            futures = {tag: pool.submit(main_job, path, tmp, tag, args.limit, args.data_cache)
                       for tag, path in checkouts.items()}
            jobs = {tag: f.result() for tag, f in futures.items()}
        print(f"jobs done: {load_average()}")
        print("\n== main job: tokbench run --tokenizer jpeg --suite text-face (256/512/1024, fresh cache, "
              + ("datasets built beforehand)" if args.data_cache else "dataset build included)"))
        for tag, m in jobs.items():
            print(f"  {tag:<4} peak RSS: run process {m['peak_rss_mib']:6.0f} MiB, process tree {m['tree_rss_mib']:6.0f}"
                  f" MiB (summed PSS {m['tree_pss_mib']:.0f} MiB; up to {m['processes']} processes)")
            print(f"       CPU {m['cpu']:7.1f} s   "
                  f"CPU/item {m['cpu'] / m['items']:.3f} s ({m['items']} items)   wall {m['wall']:.1f} s"
                  f"   unavailable: {', '.join(m['unavailable']) or 'none'}")
            print("       stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings"].items()))
        tree_rss = jobs["new"]["tree_rss_mib"]
        print(f"  target: peak RSS of the whole job (process tree) <= 2.0 GB: {tree_rss:.0f} MiB ="
              f" {tree_rss * 2**20 / 1e9:.2f} GB: {'met' if tree_rss * 2**20 <= 2e9 else 'MISSED'}")
        if "old" in jobs:
            ratio = (jobs["new"]["cpu"] / jobs["new"]["items"]) / (jobs["old"]["cpu"] / jobs["old"]["items"])
            print(f"  CPU per item new / old: {ratio:.3f} (target <= 0.67: {'met' if ratio <= 0.67 else 'MISSED'})")
            print("  rows new vs old: " + compare_rows(jobs["new"]["rows"], jobs["old"]["rows"]))
        if "prev" in jobs:
            ratio = (jobs["new"]["cpu"] / jobs["new"]["items"]) / (jobs["prev"]["cpu"] / jobs["prev"]["items"])
            print(f"  CPU per item new / prev: {ratio:.3f}")
            print("  rows new vs prev: " + identical_rows(jobs["new"]["rows"], jobs["prev"]["rows"]))
        dataset_cache = args.data_cache or tmp / "new-cache" / "datasets"
    if dataset_cache is None or not dataset_cache.is_dir():
        subprocess.run([sys.executable, "-m", "tokbench", "datasets", "build", "text-face"], check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO), "TOKBENCH_CACHE": str(tmp / "new-cache")},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dataset_cache = tmp / "new-cache" / "datasets"
    os.environ["TOKBENCH_CACHE"] = str(tmp / "new-cache")
    os.environ["TOKBENCH_DATA_CACHE"] = str(dataset_cache)
    print("\n== SSIM at original resolution")
    print("\n".join(ssim_speed(dataset_cache, args.ssim_images)))
    print("\n== dlib face network: dlib's forward pass vs the torch port (face-real + face-composed originals)")
    print("\n".join(face_speed(dataset_cache)))
    print(f"end: {load_average()}")


if __name__ == "__main__":
    main()

"""dlib's face-recognition network run by dlib (1 and 2 worker processes) vs its torch port (in-process,
``network="torch"``) on the same faces: the embedded face-real + face-composed originals, chips cut by dlib.

    python benchmarks/bench_face_network.py [--data-cache DIR] [--quality 50] [--threads N] [--pipeline]

Prints per mode: faces/s (wall) and CPU seconds per face (this process plus the dlib worker processes, read
from /proc; chip cutting included in every mode), the CPU ratio against dlib in-process; then the largest
descriptor difference torch vs dlib, and on JPEG reconstructions of every image (quality ``--quality``) the
largest difference of the face metric's F-Sim (cosine) and F-L2 and the number of changed ID-kept decisions.
``--pipeline`` adds the face part of the README's main job (``jpeg`` on face-real + face-composed at
256/512/1024, metric ``face`` only, fresh result cache) run twice in child processes, dlib's network (its
default 2 workers, the previous default) and the torch port: CPU seconds of each (workers included) and how
far their rows differ.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _worker_cpu(backend) -> float:
    """user + sys seconds of the backend's worker processes so far (0 without workers)."""
    total = 0
    for w in getattr(backend, "_pool", None) or []:
        fields = open(f"/proc/{w.pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def jpeg(image, quality: int):
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def compare_networks(quality: int = 50) -> list[str]:
    """The measurement; needs TOKBENCH_DATA_CACHE (or the default cache) to hold the built face datasets."""
    import numpy as np
    import torch

    import tokbench.data.embedded  # noqa: F401  (registers the embedded datasets)
    from tokbench.data.dataset import get_dataset
    from tokbench.evaluators.dlib_backend import DLIB_RULE, DlibEmbedder
    from tokbench.evaluators.face import cosine

    items = [it for name in ("face-real", "face-composed") for it in get_dataset(name).items if it.faces]
    images = [(it, it.load()[0]) for it in items]
    recons = [jpeg(im, quality) for _, im in images]
    faces = sum(len(it.faces) for it, _ in images)
    lines = [f"  {faces} faces in {len(images)} images; torch {torch.__version__}, {torch.get_num_threads()} "
             f"threads; {os.cpu_count()} CPUs"]
    desc, rec, cpu = {}, {}, {}
    modes = (("dlib, 1 worker (in-process)", "dlib", 1), ("dlib, 2 worker processes", "dlib", 2),
             ("torch, in-process", "torch", 1))
    for mode, network, workers in modes:
        backend = DlibEmbedder(network=network, workers=workers)
        backend.embed(images[0][1], images[0][0].faces[:2], "warm-up")  # start the workers, load the model
        c0, w0, t0 = time.process_time(), _worker_cpu(backend), time.perf_counter()
        desc[mode] = np.concatenate([backend.embed(im, it.faces, it.id) for it, im in images])
        wall = time.perf_counter() - t0
        cpu[mode] = time.process_time() - c0 + _worker_cpu(backend) - w0
        if workers == 2 or network == "torch":  # the reconstruction side for the metric comparison, not timed
            rec[network] = np.concatenate([backend.embed(r, it.faces, it.id)
                                           for (it, _), r in zip(images, recons)])
        backend.close()
        lines.append(f"  {mode:28s} {faces / wall:6.1f} faces/s wall, {1000 * cpu[mode] / faces:6.1f} ms CPU per "
                     f"face ({cpu[mode]:.1f} CPU s, {wall:.1f} s wall)")
    base = cpu["dlib, 1 worker (in-process)"]
    lines.append("  CPU ratio torch / dlib in-process: "
                 f"{cpu['torch, in-process'] / base:.3f} ({base / cpu['torch, in-process']:.1f}x less); "
                 f"dlib 2 workers / in-process: {cpu['dlib, 2 worker processes'] / base:.3f}")
    d_dlib, d_torch = desc["dlib, 1 worker (in-process)"], desc["torch, in-process"]
    same = bool(np.array_equal(d_dlib, desc["dlib, 2 worker processes"]))
    lines.append(f"  descriptors: dlib 1 vs 2 workers identical: {same};"
                 f" torch vs dlib max |diff| {np.abs(d_torch - d_dlib).max():.2e} (descriptor norms "
                 f"{np.linalg.norm(d_dlib, axis=1).min():.2f}-{np.linalg.norm(d_dlib, axis=1).max():.2f})")
    pairs = {"dlib": (d_dlib, rec["dlib"]), "torch": (d_torch, rec["torch"])}  # (original, reconstruction)
    sims = {n: np.array([cosine(a, b) for a, b in zip(*p)]) for n, p in pairs.items()}
    l2s = {n: np.array([DLIB_RULE.l2(a, b) for a, b in zip(*p)]) for n, p in pairs.items()}
    kept_changed = int(np.sum((l2s["dlib"] < DLIB_RULE.threshold) != (l2s["torch"] < DLIB_RULE.threshold)))
    lines.append(f"  face metric on JPEG q{quality} reconstructions: max |F-Sim torch - dlib| "
                 f"{np.abs(sims['torch'] - sims['dlib']).max():.2e} (F-Sim {sims['dlib'].min():.4f}-"
                 f"{sims['dlib'].max():.4f}), max |F-L2 diff| {np.abs(l2s['torch'] - l2s['dlib']).max():.2e},"
                 f" ID-kept decisions changed: {kept_changed} of {faces}")
    return lines


_PIPELINE_CHILD = """
import gc, json, resource, sys
import tokbench
from tokbench.evaluators import dlib_backend
dlib_backend.DEFAULT_NETWORK = sys.argv[1]
from tokbench.pipeline import RunConfig, run
run(RunConfig(tokenizer="jpeg", suite="text-face", resolutions=[256, 512, 1024], metrics=["face"], quiet=True,
              datasets=["face-real", "face-composed"], out=sys.argv[2], cache_dir=sys.argv[3], name="r"))
gc.collect()  # the backend's close(): dlib's workers are waited for, so their CPU counts below
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"cpu": me.ru_utime + me.ru_stime, "workers_cpu": kids.ru_utime + kids.ru_stime,
           "peak_rss_mib": me.ru_maxrss / 1024}, sys.stdout)
"""


def compare_in_pipeline() -> list[str]:
    """The face part of the main job with each network, each run in a child process that reports its own
    CPU and peak RSS and its dlib workers' CPU."""
    import json
    import shutil
    import subprocess
    import tempfile

    import numpy as np
    import pandas as pd

    tmp = Path(tempfile.mkdtemp(prefix="tokbench-bench-face-pipeline-"))
    rows, cpu, lines = {}, {}, []
    try:
        for network in ("dlib", "torch"):
            t0 = time.perf_counter()
            cmd = [sys.executable, "-c", _PIPELINE_CHILD, network, str(tmp / network), str(tmp / f"c-{network}")]
            done = subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
            usage = json.loads(done.stdout.decode().strip().splitlines()[-1])
            cpu[network] = usage["cpu"] + usage["workers_cpu"]
            rows[network] = pd.read_parquet(tmp / network / "r" / "rows.parquet")
            lines.append(f"  network {network:5s}: {cpu[network]:6.1f} CPU s (run process {usage['cpu']:.1f} + dlib "
                         f"workers {usage['workers_cpu']:.1f}), {time.perf_counter() - t0:6.1f} s wall, "
                         f"{len(rows[network])} rows; peak RSS run process {usage['peak_rss_mib']:.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    a, b = rows["dlib"], rows["torch"]
    face = (a["level"] == "face").to_numpy()
    same_rest = a.drop(columns=["F-Sim", "F-L2"]).equals(b.drop(columns=["F-Sim", "F-L2"]))
    lines.append(f"  CPU torch / dlib: {cpu['torch'] / cpu['dlib']:.3f} ({cpu['dlib'] - cpu['torch']:.1f} CPU s saved);"
                 f" {int(face.sum())} face rows: max |F-Sim diff| "
                 f"{np.abs(a['F-Sim'].to_numpy()[face] - b['F-Sim'].to_numpy()[face]).max():.2e}, max |F-L2 diff| "
                 f"{np.abs(a['F-L2'].to_numpy()[face] - b['F-L2'].to_numpy()[face]).max():.2e}; every other column "
                 f"(ID-kept included) identical: {same_rest}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-cache", type=Path, help="embedded datasets built already (else the default cache)")
    ap.add_argument("--quality", type=int, default=50)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--pipeline", action="store_true", help="also the face part of the main job, both networks")
    args = ap.parse_args()
    if args.data_cache:
        os.environ["TOKBENCH_DATA_CACHE"] = str(args.data_cache)
    import tokbench  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before torch loads, as a run does)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"bench_face_network: load average {os.getloadavg()[0]:.1f}")
    print("\n".join(compare_networks(args.quality)))
    if args.pipeline:
        print("face part of the main job (jpeg, face-real + face-composed, 256/512/1024, metric face):")
        print("\n".join(compare_in_pipeline()))
    print(f"end: load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

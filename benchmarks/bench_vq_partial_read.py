"""Reading only the VQ out of a full multimodal checkpoint (Janus-Pro keeps its image VQ inside a multi-GB file):
peak memory of ``tokbench.tokenizers.transformers_vq.read_vq_tensors`` against loading the whole file.

    python benchmarks/bench_vq_partial_read.py [--filler-mb 1024]

A file is written per format (``pytorch_model.bin``, ``model.safetensors``, and a two-shard index whose other
shard is absent) holding a tiny Janus VQ in upstream's layout plus ``--filler-mb`` of other weights. Each read
runs in a fresh interpreter and then touches every tensor it got; the figure is the growth of resident memory
(VmRSS, Linux) from after the imports to after the read, the tensors still held.
Target: the VQ-only read grows by a small fraction of the filler (ratio <= 0.1 of the whole-file load).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys, torch
from pathlib import Path
from tokbench.tokenizers.transformers_vq import read_vq_tensors

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

path, mode = Path(sys.argv[1]), sys.argv[2]
base = rss_mb()
if mode == "vq":
    state = read_vq_tensors("janus", path, "bench").state
elif path.suffix == ".safetensors":
    from safetensors.torch import load_file
    state = load_file(str(path))
else:
    state = torch.load(path, map_location="cpu", weights_only=True)
total = sum(float(t.float().sum()) for t in state.values())  # every tensor used: its pages are read
print(len(state), rss_mb() - base)
"""


def write_files(folder: Path, filler_mb: int) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT / "tests"))
    from transformers_vq_fixtures import tiny_model, upstream_names

    vq = {f"gen_vision_model.{k}": v.contiguous() for k, v in upstream_names("janus", tiny_model("janus")
                                                                            .state_dict()).items()}
    filler = {"language_model.model.embed_tokens.weight": torch.ones(filler_mb * 2 ** 18)}  # float32: 4 bytes
    files = {"bin": folder / "pytorch_model.bin", "safetensors": folder / "model.safetensors",
             "index": folder / "sharded" / "model.safetensors.index.json"}
    torch.save({**filler, **vq}, files["bin"])
    save_file({**filler, **vq}, str(files["safetensors"]))
    files["index"].parent.mkdir()
    save_file(vq, str(files["index"].parent / "model-00002-of-00002.safetensors"))
    weight_map = {k: "model-00002-of-00002.safetensors" for k in vq}
    weight_map.update({k: "model-00001-of-00002.safetensors" for k in filler})  # not written: never needed
    files["index"].write_text(json.dumps({"weight_map": weight_map}))
    return files


def peak_mb(path: Path, mode: str) -> tuple[int, float]:
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True, text=True, cwd=ROOT,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}, check=True)
    n, mb = r.stdout.split()
    return int(n), float(mb)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filler-mb", type=int, default=1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokbench-bench-") as tmp:
        files = write_files(Path(tmp), args.filler_mb)
        print(f"filler {args.filler_mb} MB; resident memory growth (MB) of the read")
        for fmt, path in files.items():
            n_vq, vq_mb = peak_mb(path, "vq")
            if fmt == "index":
                print(f"{fmt:12s} VQ only: {vq_mb:8.1f} MB ({n_vq} tensors; the filler's shard is absent)")
                continue
            n_all, all_mb = peak_mb(path, "all")
            print(f"{fmt:12s} VQ only: {vq_mb:8.1f} MB ({n_vq} tensors)   whole file: {all_mb:8.1f} MB "
                  f"({n_all} tensors)   ratio {vq_mb / max(all_mb, 1e-9):.3f}")


if __name__ == "__main__":
    main()

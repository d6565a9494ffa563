"""The GPU path, from one invocation: the embedded text-face suite at 256 through a full-size OmniTokenizer
and a full-size diffusers VAE (SD-VAE geometry) with random weights, then the tokbench-protocol evaluators
with random weights (PARSeq via docTR on the device, batched; the face backend), with per-stage
throughput, peak device and host memory, and the projection to TokBench's ~12k images.

    python benchmarks/bench_gpu.py [--device cuda] [--dtype bf16] [--limit N] [--batch-size 16]
    python benchmarks/bench_gpu.py --device cpu --limit 1        # smoke mode (fp32), minutes on 2 cores

Random weights: the cost of a forward pass is the architecture's, not the weights' (the numbers the models
produce are meaningless; no quality figure is printed). Stages run one after another, each timed alone
(device synchronised); the projection adds them (a pipeline that overlaps stages would be faster).
Nothing here needs the network: the embedded datasets are built from installed packages (or found in
$TOKBENCH_CACHE), the random checkpoints are written to a temporary folder.
Face backend: ``insightface`` (antelopev2 glintr100, TokBench's) needs an ONNX file (--antelopev2 PATH) and
onnxruntime-gpu for the device; without a file the offline default, dlib (CPU, worker processes), is timed.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # omni_fixtures: the random released-size OmniTokenizer

TOKBENCH_TEXT_IMAGES = 3306  # tokbench-protocol.md §1.1 (8 subsets without textocr)
TOKBENCH_WORDS = 36087
TOKBENCH_ALL_IMAGES = 12000  # README: text + face (face split unverified: faces assumed 1 per face image)


def host_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock:
    """Wall seconds of a stage with the device synchronised, and the device's peak memory in it."""

    def __init__(self, device):
        import torch

        self.torch, self.cuda = torch, torch.device(device).type == "cuda"

    def __enter__(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.t
        self.peak_gib = self.torch.cuda.max_memory_allocated() / 2**30 if self.cuda else float("nan")


def sd_vae_folder(root: Path, seed: int = 0) -> Path:
    """A diffusers AutoencoderKL with SD-VAE's geometry (128/256/512/512 channels, 2 layers per block,
    4 latent channels, f8; ~84M parameters) and random weights."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    model = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                          block_out_channels=(128, 256, 512, 512), norm_num_groups=32, sample_size=512,
                          down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    folder = root / "sd-vae-random"
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def omni_checkpoint(root: Path) -> Path:
    from omni_fixtures import write_random_omni_checkpoint

    from tokbench.tokenizers.omni import RELEASES, release_config

    release = next(r for r in RELEASES if r.name == "omni")
    return write_random_omni_checkpoint(root / "omni-random.ckpt", release_config(release))


def load_items(limit):
    from tokbench.data.dataset import get_dataset
    from tokbench.data.embedded import EMBEDDED_SUITES

    out = []
    for name in EMBEDDED_SUITES["text-face"]:
        items = get_dataset(name).items
        out += [(name, it, it.load()) for it in (items[:limit] if limit else items)]
    return out


def tokenizer_stage(name: str, checkpoint: str, items, args, lines: list) -> tuple[float, list]:
    """Reconstructions of every image through the tokenizer, batched by canvas shape."""
    import torch

    from tokbench import harness
    from tokbench.pipeline import DTYPES
    from tokbench.tokenizers.registry import create_tokenizer

    tok = create_tokenizer(name, checkpoint=checkpoint, device=args.device, dtype=DTYPES[args.dtype])
    params = sum(p.numel() for m in vars(tok).values() if isinstance(m, torch.nn.Module) for p in m.parameters())
    images = [px for _, _, px in items]
    recs = []
    with torch.inference_mode():
        warm = harness.fit_images(images[:1], args.resolution, tok.spec)
        harness.reconstruct_images(tok, images[:1], args.resolution, ["warm-up"], fitted=warm)
        with Clock(args.device) as c:
            for s in range(0, len(images), args.batch_size):
                chunk = images[s:s + args.batch_size]
                recs += harness.reconstruct_images(tok, chunk, args.resolution, [f"item {s + i}" for i in
                                                                                 range(len(chunk))])
    lines.append(f"  {name:<22}{len(images) / c.seconds:9.2f} items/s  ({len(images)} images in {c.seconds:.1f} s,"
                 f" batch {args.batch_size}, {args.dtype}; device peak {c.peak_gib:.2f} GiB"
                 + (f"; {params / 1e6:.0f}M parameters" if params else "") + ")")
    del tok
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return len(images) / c.seconds, recs


def parseq_random(root: Path) -> Path:
    import torch

    from tokbench.evaluators.parseq_engine import INPUT_SHAPE, _import_doctr

    recognition, vocabs = _import_doctr()
    torch.manual_seed(0)
    model = recognition.parseq(pretrained=False, vocab=vocabs["french"], input_shape=INPUT_SHAPE)
    path = root / "parseq-random.pt"
    torch.save(model.state_dict(), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=("bf16", "fp16", "fp32"),
                    help="default bf16 on a GPU, fp32 on CPU (bf16 convolutions are very slow on CPU)")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--limit", type=int, help="first N items of each dataset (default: all 255)")
    ap.add_argument("--batch-size", type=int, default=16, help="tokenizer batch (images of one canvas shape)")
    ap.add_argument("--ocr-batch", type=int, default=256)
    ap.add_argument("--antelopev2", help="glintr100.onnx (random or real) for the insightface face backend")
    ap.add_argument("--skip", nargs="*", default=(), choices=("omni", "vae", "ocr", "face", "pixel"))
    args = ap.parse_args()
    import torch

    args.dtype = args.dtype or ("fp32" if args.device == "cpu" else "bf16")
    from tokbench.evaluators.crops import crop_words
    from tokbench.evaluators.face import create_face_backend
    from tokbench.evaluators.ocr import create_ocr_engine
    from tokbench.metrics.pixel import psnr_per_frame, ssim_per_frame

    tmp = Path(tempfile.mkdtemp(prefix="tokbench-bench-gpu-"))
    dev = torch.device(args.device)
    print(f"bench_gpu: device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
          + f", torch {torch.__version__}, {os.cpu_count()} CPUs, dtype {args.dtype}, resolution {args.resolution},"
          f" limit {args.limit or 'none'}")
    t = time.perf_counter()
    items = load_items(args.limit)
    words = sum(len(it.words) for _, it, _ in items)
    faces = sum(len(it.faces) for _, it, _ in items)
    print(f"{len(items)} images ({words} words, {faces} faces) loaded in {time.perf_counter() - t:.1f} s"
          f" (dataset build included if it was not cached); host peak {host_peak_mib():.0f} MiB")
    rates: dict[str, tuple[float, str]] = {}
    lines: list[str] = []
    recs = None
    if "omni" not in args.skip:
        rate, recs = tokenizer_stage("omni", str(omni_checkpoint(tmp)), items, args, lines)
        rates["tokenizer omni"] = (rate, "items/s")
    if "vae" not in args.skip:
        rate, recs = tokenizer_stage("sd-vae-ft-mse", str(sd_vae_folder(tmp)), items, args, lines)
        rates["tokenizer sd-vae"] = (rate, "items/s")
    recon = [r.pixels for r in recs] if recs else [px for _, _, px in items]

    if "ocr" not in args.skip:
        engine = create_ocr_engine("parseq", device=args.device, weights=parseq_random(tmp),
                                   batch_size=args.ocr_batch)
        crops = [c for (_, it, _), px in zip(items, recon) if it.words
                 for c in crop_words(px, it.words, it.id).crops]
        engine.recognize(crops[:8])
        with Clock(args.device) as c:
            engine.recognize(crops)
        rates["OCR parseq"] = (len(crops) / c.seconds, "crops/s")
        lines.append(f"  {'OCR parseq (docTR)':<22}{len(crops) / c.seconds:9.1f} crops/s  ({len(crops)} crops in"
                     f" {c.seconds:.1f} s, batch {args.ocr_batch}; device peak {c.peak_gib:.2f} GiB)")
    if "face" not in args.skip:
        name = "insightface" if args.antelopev2 else "dlib"
        opts = {"model_path": args.antelopev2} if args.antelopev2 else {}
        backend = create_face_backend(name, device=args.device, **opts)
        with_faces = [(it, px) for (_, it, _), px in zip(items, recon) if it.faces]
        backend.embed(with_faces[0][1][0], with_faces[0][0].faces[:1], "warm-up")
        with Clock(args.device) as c:
            for it, px in with_faces:
                backend.embed(px[0], it.faces, it.id)
        n = sum(len(it.faces) for it, _ in with_faces)
        rates[f"face {name}"] = (n / c.seconds, "faces/s")
        extra = f", {backend.workers} worker processes" if hasattr(backend, "workers") else ""
        lines.append(f"  {'face ' + name:<22}{n / c.seconds:9.1f} faces/s  ({n} faces in {c.seconds:.1f} s"
                     f"{extra})")
        if hasattr(backend, "close"):
            backend.close()
    if "pixel" not in args.skip:
        with Clock("cpu") as c:
            for (_, it, px), rc in zip(items, recon):
                psnr_per_frame(px, rc)
                ssim_per_frame(px, rc)
        rates["PSNR+SSIM (CPU)"] = (len(items) / c.seconds, "items/s")
        lines.append(f"  {'PSNR+SSIM (CPU)':<22}{len(items) / c.seconds:9.2f} items/s  (original resolution)")

    print("\n== per stage (each alone, device synchronised)")
    print("\n".join(lines))
    gpu = (f"{torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB allocated at most over the run"
           if dev.type == "cuda" else "n/a (CPU)")
    print(f"\n== peak memory: device {gpu}; host {host_peak_mib():.0f} MiB (this process)")

    print(f"\n== projection to TokBench (~{TOKBENCH_ALL_IMAGES:,} images: {TOKBENCH_TEXT_IMAGES:,} text images with"
          f" {TOKBENCH_WORDS:,} words; {TOKBENCH_ALL_IMAGES - TOKBENCH_TEXT_IMAGES:,} face images, 1 face each"
          " ASSUMED), stages added, one tokenizer, one resolution; reference side counted once")
    counts = {"items/s": TOKBENCH_ALL_IMAGES, "crops/s": TOKBENCH_WORDS,
              "faces/s": TOKBENCH_ALL_IMAGES - TOKBENCH_TEXT_IMAGES}
    evaluators = 0.0
    for stage, (rate, unit) in rates.items():
        if stage.startswith("tokenizer"):
            continue
        seconds = counts[unit] / rate * (2 if unit != "items/s" else 1)  # original + reconstruction
        evaluators += seconds
        print(f"  {stage:<22}{seconds / 60:8.1f} min  ({counts[unit]:,} x{2 if unit != 'items/s' else 1})")
    for stage, (rate, unit) in rates.items():
        if stage.startswith("tokenizer"):
            total = counts[unit] / rate + evaluators
            print(f"  {stage:<22}{counts[unit] / rate / 60:8.1f} min; with the evaluators above:"
                  f" {total / 60:.1f} min (TokBench's claim: 4 min)")


if __name__ == "__main__":
    main()

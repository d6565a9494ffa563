"""OCR throughput: crops per second with all crops in one batched call vs one call per crop.

    python benchmarks/bench_ocr.py [--engine rapidocr|easyocr|parseq] [--crops 240] [--repeats 3]
    python benchmarks/bench_ocr.py --engine parseq --parseq-weights PATH   # or --parseq-random (timing only)
    python benchmarks/bench_ocr.py --engine parseq --parseq-random --device cuda   # torch engines on a GPU

Crops are real renderings (matplotlib's DejaVu fonts, 14-40 px, 1-14 characters) of the kind TokBench cuts
from its word boxes. Both modes run in this one process, interleaved, after a warm-up; the median of
``--repeats`` rounds is reported, with the ratio (target >= 2x; on a small CPU rapidocr is compute-bound and
gains little, see rapidocr_engine.py). For rapidocr the public per-image call
``RapidOCR()(crop, use_det=False, use_cls=False)`` is timed too, since that is what per-crop code uses.
On a shared machine compare the ratio, not the seconds. ``--parseq-random`` times docTR PARSeq with a
randomly initialised checkpoint (its accuracy is meaningless; random weights rarely emit <eos>, so every crop
decodes all 32 steps: a worst case for decoding cost).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def rendered_crops(n: int, seed: int = 0):
    import matplotlib
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    fonts_dir = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    fonts = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    crops, texts = [], []
    for _ in range(n):
        word = "".join(rng.choice(list(alphabet), size=int(rng.integers(1, 15))))
        font = ImageFont.truetype(os.path.join(fonts_dir, fonts[int(rng.integers(len(fonts)))]),
                                  int(rng.integers(14, 41)))
        left, top, right, bottom = font.getbbox(word)
        pad = int(rng.integers(2, 9))
        im = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), "white")
        ImageDraw.Draw(im).text((pad - left, pad - top), word, font=font, fill="black")
        crops.append(np.asarray(im))
        texts.append(word)
    return crops, texts


def random_parseq_checkpoint() -> str:
    import torch
    from doctr.datasets import VOCABS
    from doctr.models import recognition

    torch.manual_seed(0)
    model = recognition.parseq(pretrained=False, vocab=VOCABS["french"], input_shape=(3, 32, 128))
    path = os.path.join(tempfile.mkdtemp(prefix="tokbench-bench-"), "parseq-random.pt")
    torch.save(model.state_dict(), path)
    return path


def timed(fn) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="rapidocr")
    ap.add_argument("--crops", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, help="engine batch size (default: the engine's)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--parseq-weights")
    ap.add_argument("--parseq-random", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TOKBENCH_CACHE", tempfile.mkdtemp(prefix="tokbench-bench-"))

    import numpy as np

    from tokbench.evaluators import create_ocr_engine

    crops, texts = rendered_crops(args.crops)
    options = {"batch_size": args.batch_size} if args.batch_size else {}
    options["device"] = args.device
    if args.engine == "parseq":
        options["weights"] = args.parseq_weights or (random_parseq_checkpoint() if args.parseq_random else None)
    engine = create_ocr_engine(args.engine, **options)
    modes = {"batched": lambda: engine.recognize(crops),
             "one call per crop": lambda: [engine.recognize([c])[0] for c in crops]}
    if args.engine == "rapidocr":
        import cv2
        from rapidocr import RapidOCR

        public = RapidOCR(params={"Global.log_level": "error"})

        def per_crop_public():
            out = []
            for c in crops:
                res = public(cv2.cvtColor(c, cv2.COLOR_RGB2BGR), use_det=False, use_cls=False, use_rec=True)
                out.append(res.txts[0] if res.txts else "")
            return out

        modes["RapidOCR() per crop"] = per_crop_public
    for fn in modes.values():  # warm-up round (sessions, allocator arenas, lazy imports), not timed
        fn()
    times: dict[str, list[float]] = {m: [] for m in modes}
    preds: dict[str, list] = {}
    for _ in range(args.repeats):
        for mode, fn in modes.items():
            dt, out = timed(fn)
            times[mode].append(dt)
            preds[mode] = out
    print(f"engine: {engine.version}, batch size {engine.batch_size}, device {args.device}"
          + ("  [random weights: timing only]" if args.parseq_random else ""))
    print(f"{args.crops} rendered word crops, median of {args.repeats} rounds, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    base = statistics.median(times["batched"])
    for mode in modes:
        med = statistics.median(times[mode])
        acc = float(np.mean([p == t for p, t in zip(preds[mode], texts)]))
        agree = float(np.mean([p == q for p, q in zip(preds[mode], preds["batched"])]))
        print(f"  {mode:22s} {args.crops / med:8.1f} crops/s   batched is {med / base:5.2f}x faster   "
              f"accuracy {acc:.3f}   same text as batched {agree:.3f}")


if __name__ == "__main__":
    main()

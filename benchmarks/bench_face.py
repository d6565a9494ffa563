"""Face identity throughput: faces per second for a face backend, all faces of an image in one call vs
one call per face, plus the face metric end to end (reference side + reconstruction side).

    python benchmarks/bench_face.py [--backend dlib] [--faces 32] [--repeats 3] [--model-path glintr100.onnx]

The faces are the astronaut of scikit-image (landmarks from dlib's HOG detector and 68-point predictor),
repeated with small landmark jitter so every face is aligned and embedded separately. Both modes run in
this one process, interleaved, after a warm-up; medians of ``--repeats`` rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def astronaut_landmarks():
    import dlib
    import numpy as np
    from skimage import data

    from tokbench.evaluators.dlib_backend import face_recognition_models_dir

    image = data.astronaut()
    rects, scores, _ = dlib.get_frontal_face_detector().run(image, 1)
    rect = rects[int(np.argmax(scores))]
    sp68 = dlib.shape_predictor(str(face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"))
    p = np.array([(q.x, q.y) for q in sp68(image, rect).parts()], dtype=np.float64)
    return image, np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="dlib")
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model-path")
    args = ap.parse_args()
    os.environ.setdefault("TOKBENCH_CACHE", tempfile.mkdtemp(prefix="tokbench-bench-"))

    import numpy as np

    from tokbench.data.items import Face, Item
    from tokbench.evaluators import create_face_backend
    from tokbench.metrics.base import Sample
    from tokbench.metrics.face import FaceIdentity

    image, kps = astronaut_landmarks()
    rng = np.random.default_rng(0)
    faces = [Face(kps=tuple(map(tuple, kps + rng.normal(0, 1.0, kps.shape))), box=(175, 76, 265, 166), ratio=0.2)
             for _ in range(args.faces)]
    options = {"model_path": args.model_path} if args.model_path else {}
    backend = create_face_backend(args.backend, **options)
    metric = FaceIdentity(backend)
    item = Item(id="astronaut", modality="image", path="astronaut.png", faces=tuple(faces))
    sample = Sample(item, image[None], image[None].copy())

    modes = {
        "one call per image": lambda: backend.embed(image, faces),
        "one call per face": lambda: np.concatenate([backend.embed(image, [f]) for f in faces]),
        "metric (ref + recon)": lambda: metric.score(sample, metric.reference(sample)),
    }
    for fn in modes.values():  # warm-up round, not timed
        fn()
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode, fn in modes.items():
            t0 = time.perf_counter()
            fn()
            times[mode].append(time.perf_counter() - t0)
    print(f"backend: {backend.version}")
    print(f"{args.faces} faces on one 512x512 image, median of {args.repeats} rounds, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    base = statistics.median(times["one call per image"])
    for mode in modes:
        med = statistics.median(times[mode])
        per = "faces scored/s (each embedded twice)" if mode.startswith("metric") else "faces/s"
        print(f"  {mode:22s} {args.faces / med:7.1f} {per:36s} ({med / base:4.2f}x the batched time)")


if __name__ == "__main__":
    main()

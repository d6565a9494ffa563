"""Time tokbench's Frechet distance against pytorch-fid's calculate_frechet_distance (scipy sqrtm).

Both get the same float64 2048-d statistics of synthetic non-negative, correlated "pool3-like"
features; the script prints each time, the speed-up and the relative differences. With N < D it also
prints the exact low-rank value (nuclear norm of the centred cross-feature matrix), which needs no
matrix square root, to show which method is accurate there.

    python benchmarks/bench_frechet.py            # N = 10000 per side, D = 2048
    python benchmarks/bench_frechet.py --n 1000   # fewer samples than dimensions
"""
from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np


def features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(12345).standard_normal((d, d)) / np.sqrt(d)  # shared structure on both sides
    return np.maximum(rng.standard_normal((n, d)) @ mix + shift, 0.0)


def exact_low_rank(x: np.ndarray, y: np.ndarray) -> float:
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * np.linalg.svd(b @ a.T, compute_uv=False).sum())


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return float(out), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="samples per side")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--shift", type=float, default=0.05, help="mean shift of the second set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import scipy
    from pytorch_fid import __version__ as pfid_version
    from pytorch_fid.fid_score import calculate_frechet_distance

    from tokbench.features.frechet import frechet_distance

    x = features(args.n, args.dim, args.seed)
    y = features(args.n, args.dim, args.seed + 1, args.shift)
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    print(f"N={args.n} D={args.dim} | numpy {np.__version__} scipy {scipy.__version__} pytorch-fid {pfid_version} "
          f"| {platform.processor() or platform.machine()}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy >= 1.17 deprecates sqrtm(disp=False), as pytorch-fid calls it
        try:
            ref, t_ref = timed(calculate_frechet_distance, mu1, s1, mu2, s2)
        except ValueError as e:  # "Imaginary component" when N < D
            ref, t_ref = float("nan"), float("nan")
            print(f"pytorch-fid calculate_frechet_distance failed: {e}")
    sym, t_sym = timed(frechet_distance, mu1, s1, mu2, s2)
    eig, t_eig = timed(frechet_distance, mu1, s1, mu2, s2, method="eigvals")

    print(f"pytorch-fid sqrtm         {ref:.10f}  {t_ref:7.2f} s")
    print(f"tokbench symmetric (chol) {sym:.10f}  {t_sym:7.2f} s  speed-up x{t_ref / t_sym:.1f}  "
          f"rel diff {abs(sym - ref) / abs(ref):.2e}")
    print(f"tokbench eigvals(S1 S2)   {eig:.10f}  {t_eig:7.2f} s  speed-up x{t_ref / t_eig:.1f}  "
          f"rel diff {abs(eig - ref) / abs(ref):.2e}")
    if args.n <= args.dim:
        ex = exact_low_rank(x, y)
        print(f"exact low-rank value      {ex:.10f}  rel err: sqrtm {abs(ref - ex) / ex:.2e}, "
              f"symmetric {abs(sym - ex) / ex:.2e}, eigvals {abs(eig - ex) / ex:.2e}")


if __name__ == "__main__":
    main()

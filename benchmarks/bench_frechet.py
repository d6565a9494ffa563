"""Accuracy and CPU time of Frechet-distance methods, and of accumulating feature statistics, in one run.

Methods: tokbench's default (nuclear norm of Cholesky factors), tokbench ``eigvals`` (torchmetrics form),
pytorch-fid's ``calculate_frechet_distance`` (scipy sqrtm), and the default before issue 14 (eigenvalues
of L^T S2 L with a cut at D*eps*max, reimplemented here for comparison). Cases at D = 2048, each against
a value computed without a matrix square root:

* diagonal covariances with condition number 1e7 and 1e8, reconstruction-like (each variance within
  10 %): closed form sum (sqrt a - sqrt b)^2;
* power-law ("pool3-like" spectrum) features with a reconstruction, N = 3000 (full rank) and N = 500
  (rank 499): nuclear norm of R_a R_b^T, R the QR factors of the centred features;
* well-conditioned ReLU features, N = 3000, against the same feature-level value.

BLAS runs on one thread (set before numpy loads) and times are process CPU seconds, so the ratio to
pytorch-fid does not depend on the core count or on other processes. The last block times
``GaussianStats`` accumulation of 1,000 single-frame items (2048-d float32 features): one float64 update
per item (before) against ``from_states`` stacking them (after).

    python benchmarks/bench_frechet.py
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / scipy load their BLAS

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402


def previous_default(mu1, s1, mu2, s2) -> float:
    """tokbench's default before issue 14: eigvalsh of L^T S2 L, eigenvalues below D*eps*max dropped."""
    from scipy.linalg import lapack

    d = s1.shape[0]
    try:
        f = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError:
        c, piv, rank, _ = lapack.dpstrf(s1, lower=1)
        f = np.zeros((d, rank))
        f[piv - 1] = np.tril(c)[:, :rank]
    inner = f.T @ s2 @ f
    ev = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr = np.sqrt(ev[ev > ev.max(initial=0.0) * d * np.finfo(np.float64).eps]).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr)


def exact_from_features(x: np.ndarray, y: np.ndarray) -> float:
    """FD of the sample Gaussians from the features' own factors (QR when N > D), no covariance matrix."""
    def factor(f):
        a = (f - f.mean(0)) / np.sqrt(len(f) - 1)
        return np.linalg.qr(a, mode="r") if a.shape[0] > a.shape[1] else a

    a, b = factor(x), factor(y)
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * np.linalg.svd(a @ b.T, compute_uv=False).sum())


def power_law_features(n: int, d: int, noise: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(7).standard_normal((d, d)) / np.sqrt(d)
    scale = np.arange(1, d + 1) ** -1.5
    x = (rng.standard_normal((n, d)) * scale) @ mix + 1.0
    return x, x + noise * (rng.standard_normal((n, d)) * scale) @ mix


def relu_features(n: int, d: int, noise: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(8).standard_normal((d, d)) / np.sqrt(d)
    x = np.maximum(rng.standard_normal((n, d)) @ mix, 0.0)
    return x, x + noise * rng.standard_normal((n, d))


def cases(d: int):
    rng = np.random.default_rng(5)
    for cond in (1e7, 1e8):
        a = np.geomspace(1.0, 1.0 / cond, d)
        b = a * rng.uniform(0.9, 1.1, d)
        mu1, mu2 = 0.01 * rng.standard_normal(d), 0.01 * rng.standard_normal(d)
        exact = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
        yield f"diagonal, cond {cond:.0e}", (mu1, np.diag(a), mu2, np.diag(b)), exact
    for name, (x, y) in (("power-law features N=3000 (full rank)", power_law_features(3000, d, 0.05)),
                         ("power-law features N=500 (rank 499)", power_law_features(500, d, 0.05)),
                         ("ReLU features N=3000 (well-conditioned)", relu_features(3000, d, 0.05))):
        stats = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        yield name, stats, exact_from_features(x, y)


def cpu_timed(fn, *args):
    t = time.process_time()
    try:
        out = float(fn(*args))
    except ValueError as e:  # pytorch-fid: "Imaginary component" on singular covariances
        out = float("nan")
        print(f"    {getattr(fn, '__name__', fn)} failed: {e}")
    return out, time.process_time() - t


def bench_accumulation(d: int, items: int) -> None:
    from tokbench.features.gaussian import GaussianStats

    feats = np.random.default_rng(0).standard_normal((items, d)).astype(np.float32)
    states = [{"features": feats[i:i + 1]} for i in range(items)]
    t = time.process_time()
    per_item = GaussianStats(d)
    for st in states:
        per_item.add(st["features"])
    before = time.process_time() - t
    t = time.process_time()
    blocked = GaussianStats.from_states(states, d)
    after = time.process_time() - t
    rel = np.abs(blocked.outer - per_item.outer).max() / np.abs(per_item.outer).max()
    scale = 1000 / items
    print(f"\nstatistics accumulation, {items} single-frame items, D={d} (CPU s per 1,000 items):")
    print(f"  one float64 update per item (before): {before * scale:8.3f} s")
    print(f"  from_states, stacked blocks (after):  {after * scale:8.3f} s   x{before / after:.0f} faster, "
          f"max rel diff of sum x x^T {rel:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--items", type=int, default=1000, help="items for the accumulation timing")
    args = ap.parse_args()

    import scipy
    from pytorch_fid import __version__ as pfid_version
    from pytorch_fid.fid_score import calculate_frechet_distance

    from tokbench.features.frechet import frechet_distance

    def sqrtm_fd(*stats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy >= 1.17 deprecates sqrtm(disp=False), as pytorch-fid calls it
            return calculate_frechet_distance(*stats)

    methods = {"tokbench nuclear (default)": frechet_distance,
               "tokbench eigvals": lambda *s: frechet_distance(*s, method="eigvals"),
               "pytorch-fid scipy sqrtm": sqrtm_fd,
               "previous default (cut eigvals)": previous_default}
    print(f"D={args.dim} | numpy {np.__version__} scipy {scipy.__version__} pytorch-fid {pfid_version} | "
          f"{platform.processor() or platform.machine()} | BLAS threads: 1 | times: process CPU seconds")
    cpu = {m: 0.0 for m in methods}
    for name, stats, exact in cases(args.dim):
        print(f"\n{name}: exact FD {exact:.10g} (tr S1 {np.trace(stats[1]):.4g})")
        case = {}
        for m, fn in methods.items():
            value, case[m] = cpu_timed(fn, *stats)
            cpu[m] += case[m]
            print(f"  {m:32s} {value:.10g}  rel err {abs(value - exact) / exact:9.2e}  {case[m]:7.2f} s")
        print(f"  CPU-time ratio pytorch-fid / tokbench default: "
              f"x{case['pytorch-fid scipy sqrtm'] / case['tokbench nuclear (default)']:.1f}")
    ratio = cpu["pytorch-fid scipy sqrtm"] / cpu["tokbench nuclear (default)"]
    print("\ntotal CPU s over all cases: " + ", ".join(f"{m} {s:.1f}" for m, s in cpu.items()))
    print(f"CPU-time ratio pytorch-fid sqrtm / tokbench default over all cases: x{ratio:.1f}")
    bench_accumulation(args.dim, args.items)


if __name__ == "__main__":
    main()

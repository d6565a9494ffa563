"""Frechet distance between two Gaussians, in float64, without a matrix square root.

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

With covariance factors S1 = F1 F1^T and S2 = F2 F2^T, S1 S2 has the same non-zero eigenvalues as
(F1^T F2)(F1^T F2)^T, so tr sqrt(S1 S2) is the sum of the singular values of F1^T F2 (its nuclear norm).
The singular values come straight from an SVD, whose error is ~eps * largest for every one of them. Going
through the eigenvalues of a symmetric form of S1 S2 (F1^T S2 F1, TF-GAN's ``trace_sqrt_product``) squares
the spread first: eigenvalues of S1 S2 span cond(S1) * cond(S2), which passes 1/eps for real Inception
statistics, and the square root of an eigenvalue that is all round-off is ~1e-8 of the largest, not ~eps.

F is the Cholesky factor when S is numerically positive definite (every pivot above ``D * eps * max diag``,
numpy's ``matrix_rank`` tolerance) and otherwise LAPACK's pivoted Cholesky ``?pstrf`` stopped at that same
tolerance: with fewer samples than dimensions the covariance has D - r eigenvalues that are zero in exact
arithmetic, and a factor that kept them would add their round-off to the trace (scipy ``sqrtm`` and
``eigvals`` carry that bias, ~5e-8 relative at N = 1000). Nothing else is cut, so the full-rank result is
exact to float64 round-off of the traces whatever the conditioning (tests/test_frechet.py checks closed
forms and feature-level references; benchmarks/bench_frechet.py measures error and time).

``method="eigvals"`` keeps the torchmetrics / torch-fidelity 0.4 form (general ``eigvals`` of S1 S2, real
part of the complex square roots) for comparison.
"""
from __future__ import annotations

import numpy as np

from tokbench.errors import BadInputError

METHODS = ("nuclear", "eigvals")
DEFAULT_METHOD = "nuclear"
DESCRIPTION = {  # what metrics record in their manifest entry
    "nuclear": "float64 nuclear norm of F1^T F2, S = F F^T by Cholesky (pivoted Cholesky at numerical rank "
               "D*eps*max when singular); no matrix square root, no eigenvalue cut (tokbench.features.frechet)",
    "eigvals": "float64 real part of sqrt(eigvals(S1 S2)) (torchmetrics form; tokbench.features.frechet)",
}
_EPS = np.finfo(np.float64).eps


def _pivoted_cholesky(s: np.ndarray, tol: float) -> np.ndarray:
    """F (D x r) with s = F F^T up to round-off, r = numerical rank (LAPACK dpstrf stopped at pivot ``tol``)."""
    from scipy.linalg import lapack

    c, piv, rank, info = lapack.dpstrf(s, lower=1, tol=tol)
    if info < 0:
        raise BadInputError(f"pivoted Cholesky failed on the covariance (LAPACK info {info})")
    factor = np.zeros((s.shape[0], rank))
    factor[piv - 1] = np.tril(c)[:, :rank]  # undo the pivoting: s = P L L^T P^T
    return factor


def covariance_factor(s: np.ndarray) -> np.ndarray:
    """F (D x r), s = F F^T, r = numerical rank of s (pivots below ``D * eps * max diag`` are round-off)."""
    dim = s.shape[0]
    top = float(np.diag(s).max(initial=0.0))
    if top <= 0.0:  # constant features: a zero covariance
        return np.zeros((dim, 0))
    tol = dim * _EPS * top
    try:
        factor = np.linalg.cholesky(s)
        if float(np.diag(factor).min()) ** 2 > tol:  # Cholesky can also "succeed" on round-off pivots
            return factor
    except np.linalg.LinAlgError:
        pass
    return _pivoted_cholesky(s, tol)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = DEFAULT_METHOD) -> float:
    """tr sqrt(sigma1 @ sigma2) for covariance matrices, in float64."""
    s1 = np.asarray(sigma1, np.float64)
    s2 = np.asarray(sigma2, np.float64)
    if method == "eigvals":
        ev = np.linalg.eigvals(s1 @ s2)
        return float(np.sqrt(ev.astype(np.complex128)).real.sum())
    if method != "nuclear":
        raise BadInputError(f"unknown Frechet method {method!r}; use one of {', '.join(METHODS)}")
    from scipy.linalg import svdvals

    f1, f2 = covariance_factor(s1), covariance_factor(s2)
    if f1.shape[1] == 0 or f2.shape[1] == 0:
        return 0.0
    return float(svdvals(f1.T @ f2, overwrite_a=True, check_finite=False).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     method: str = DEFAULT_METHOD) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (what FID/FVD report)."""
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise BadInputError(f"Frechet distance needs means of shape (D,) and covariances (D, D); got "
                            f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise BadInputError(f"Frechet distance: {name} contains NaN or Inf")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2, method))

"""Frechet distance and streaming Gaussian statistics against numpy / scipy (pytorch-fid)."""
import warnings

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance

from tokbench.errors import BadInputError
from tokbench.features.frechet import frechet_distance
from tokbench.features.gaussian import GaussianStats


def pool3_like(n, d, seed, shift=0.0):
    """Non-negative, correlated features like Inception pool3 activations."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return np.maximum(rng.standard_normal((n, d)) @ mix + shift, 0.0)


def scipy_fd(mu1, s1, mu2, s2):
    with warnings.catch_warnings():  # scipy >= 1.17 deprecates sqrtm(disp=False), which pytorch-fid passes
        warnings.simplefilter("ignore")
        return float(calculate_frechet_distance(mu1, s1, mu2, s2))


def test_matches_scipy_sqrtm_on_2048d_statistics():
    d = 2048
    x = pool3_like(3000, d, seed=1)
    y = x + 0.3 * np.random.default_rng(2).standard_normal(x.shape)  # reconstruction-like, FD small
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    ref = scipy_fd(mu1, s1, mu2, s2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ref > 1.0
    assert abs(ours - ref) <= 1e-6 * ref, (ours, ref)


def test_eigvals_method_agrees_with_symmetric_method():
    x, y = pool3_like(1200, 512, seed=9), pool3_like(1200, 512, seed=10, shift=0.02)
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    sym = frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2, method="eigvals") == pytest.approx(sym, rel=1e-8)
    with pytest.raises(BadInputError, match="unknown Frechet method"):
        frechet_distance(mu1, s1, mu2, s2, method="sqrtm")


def exact_low_rank_fd(x, y):
    """FD from features when N < D, with no matrix square root: the non-zero eigenvalues of S1 S2 are the
    squared singular values of B A^T (A, B = centred features / sqrt(N - 1))."""
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * np.linalg.svd(b @ a.T, compute_uv=False).sum())


@pytest.mark.parametrize("n1,n2,d,scale", [(100, 100, 256, 1.0), (300, 200, 512, 10.0), (6, 4, 1024, 150.0)])
def test_rank_deficient_covariances_give_the_exact_low_rank_value(n1, n2, d, scale):
    x, y = pool3_like(n1, d, seed=3) * scale, pool3_like(n2, d, seed=4, shift=0.1) * scale
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(s1)  # so the pivoted-Cholesky (numerical range of S1) branch is the one exercised
    exact = exact_low_rank_fd(x, y)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-12)
    assert abs(frechet_distance(mu1, s1, mu1, s1)) <= 1e-12 * np.trace(s1)  # round-off does not leak in
    if d <= 256:  # scipy sqrtm agrees to its own accuracy (it sums sqrt of round-off eigenvalues)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(scipy_fd(mu1, s1, mu2, s2), rel=1e-6)


def test_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.1, 4, 64), rng.uniform(0.1, 4, 64)
    mu1, mu2 = rng.standard_normal(64), rng.standard_normal(64)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-10)
    zero = np.zeros((64, 64))  # constant features on one side (rank 0)
    assert frechet_distance(mu1, zero, mu2, np.diag(b)) == pytest.approx(np.sum((mu1 - mu2) ** 2) + b.sum(), rel=1e-12)


@pytest.mark.parametrize("cond", [1e7, 1e8])
def test_ill_conditioned_diagonal_covariances_match_the_closed_form(cond):
    """Full rank, spectra spanning `cond`, reconstruction-like (each variance within 10 %): every eigenvalue
    is real and must count; the former cut at D * eps * max of the inner product dropped ~250 of them."""
    d = 2048
    rng = np.random.default_rng(5)
    a = np.geomspace(1.0, 1.0 / cond, d)
    b = a * rng.uniform(0.9, 1.1, d)
    mu1, mu2 = 0.01 * rng.standard_normal(d), 0.01 * rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def power_law_features(n, d, seed, alpha=1.5, noise=None):
    """Features with a power-law spectrum (variance of component k ~ k^-2alpha, as real pool3 statistics
    decay), so the covariance is ill-conditioned; with ``noise`` a reconstruction of them (FD << tr S)."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(7).standard_normal((d, d)) / np.sqrt(d)
    scale = np.arange(1, d + 1) ** -alpha
    x = (rng.standard_normal((n, d)) * scale) @ mix + 1.0
    return x, x + noise * (rng.standard_normal((n, d)) * scale) @ mix


def exact_fd_from_features(x, y):
    """FD of the sample Gaussians of x and y with no matrix square root and no covariance matrix:
    S1 = A^T A = R_a^T R_a (A = centred x / sqrt(N - 1), R_a its QR factor when N > D), so
    tr sqrt(S1 S2) = nuclear norm of R_a R_b^T (or of A B^T), from an SVD of the features' own factors."""
    def factor(f):
        a = (f - f.mean(0)) / np.sqrt(len(f) - 1)
        return np.linalg.qr(a, mode="r") if a.shape[0] > a.shape[1] else a
    a, b = factor(x), factor(y)
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * np.linalg.svd(a @ b.T, compute_uv=False).sum())


@pytest.mark.parametrize("n", [3000, 500])
def test_sampled_ill_conditioned_features_match_the_exact_value(n):
    """D = 2048, full rank (N = 3000, cond ~1e10) and rank-deficient (N = 500): against the feature-level
    value. The former symmetric-eigenvalue method was off by 7.6x and 9.5x here."""
    x, y = power_law_features(n, 2048, seed=1, noise=0.05)
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    exact = exact_fd_from_features(x, y)
    assert 1e-7 < exact < 1e-5 * np.trace(s1)  # a reconstruction: FD is a small difference of large traces
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-8)


def test_rejects_bad_statistics():
    with pytest.raises(BadInputError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(BadInputError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))


def test_two_shards_combine_to_the_single_pass_result():
    x = pool3_like(700, 128, seed=6).astype(np.float32)
    y = pool3_like(650, 128, seed=7, shift=0.05).astype(np.float32)
    single = GaussianStats(128).add(x)
    shard_a, shard_b = GaussianStats(128).add(x[:300]), GaussianStats(128).add(x[300:])
    merged = GaussianStats.from_states([shard_a.to_state(), shard_b.to_state()], 128)
    assert merged.n == single.n == 700
    np.testing.assert_allclose(merged.total, single.total, rtol=1e-13)
    np.testing.assert_allclose(merged.outer, single.outer, rtol=1e-13)
    # and both equal numpy's two-pass mean / covariance
    np.testing.assert_allclose(single.mean, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(single.cov(), np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(single.cov(ddof=0), np.cov(x.astype(np.float64), rowvar=False, ddof=0),
                               rtol=1e-9, atol=1e-12)
    rec = GaussianStats(128).add(y)
    fd_single = frechet_distance(single.mean, single.cov(), rec.mean, rec.cov())
    fd_merged = frechet_distance(merged.mean, merged.cov(), rec.mean, rec.cov())
    assert fd_merged == pytest.approx(fd_single, rel=1e-10)


def test_per_item_feature_states_mix_with_summed_shards(tmp_path):
    x = pool3_like(40, 16, seed=8)
    items = [{"features": x[i:i + 2]} for i in range(0, 20, 2)]
    cached = GaussianStats(16).add(x[20:])
    cached.save(tmp_path / "s.npz", source="test")
    loaded, meta = GaussianStats.load(tmp_path / "s.npz")
    assert meta == {"source": "test"}
    combined = GaussianStats.from_states(items + [loaded.to_state()], 16)
    np.testing.assert_allclose(combined.cov(), np.cov(x, rowvar=False), rtol=1e-10)
    with pytest.raises(BadInputError, match="dimension"):
        GaussianStats(16).add(np.zeros((2, 8)))
    with pytest.raises(BadInputError, match="at least 2"):
        GaussianStats(16).add(np.zeros((1, 16))).cov()


def test_block_accumulation_equals_per_item_updates():
    """from_states stacks item features before each float64 update; the sums are those of one update per item."""
    rng = np.random.default_rng(11)
    # integer-valued features: every product and partial sum is exact in float64, so the bits must agree
    items = [{"features": rng.integers(0, 50, (k, 64)).astype(np.float32)} for k in rng.integers(1, 4, 200)]
    shard = GaussianStats(64).add(rng.integers(0, 50, (5, 64)).astype(np.float32))
    states = items[:100] + [shard.to_state()] + items[100:]
    per_item = GaussianStats(64).merge(shard)
    for st in items:
        per_item.add(st["features"])
    for block_rows in (1, 7, 1024):
        blocked = GaussianStats.from_states(states, 64, block_rows=block_rows)
        assert blocked.n == per_item.n == 5 + sum(len(st["features"]) for st in items)
        np.testing.assert_array_equal(blocked.total, per_item.total)
        np.testing.assert_array_equal(blocked.outer, per_item.outer)
    # real-valued features: equal up to float64 summation order
    x = pool3_like(300, 128, seed=12).astype(np.float32)
    one_by_one = GaussianStats(128)
    for row in x:
        one_by_one.add(row)
    blocked = GaussianStats.from_states([{"features": x[i]} for i in range(300)], 128, block_rows=64)
    np.testing.assert_allclose(blocked.outer, one_by_one.outer, rtol=1e-13)
    np.testing.assert_allclose(blocked.total, one_by_one.total, rtol=1e-13)
    with pytest.raises(BadInputError, match="dimension"):
        GaussianStats.from_states([{"features": x[:2]}, {"features": x[:2, :64]}], 128)

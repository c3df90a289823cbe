"""The solvers used directly (``gramfree.solvers``), against numpy/scikit-learn references:
exact solutions of the (Nystrom) kernel ridge normal equations, the reported objective,
and EigenPro's batch-size / step-size rules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import pairwise_kernels, rbf_kernel

from gramfree.kernels import Gaussian, Linear, Polynomial
from gramfree.solvers import (
    Problem,
    SolverResult,
    kernel_diagonal,
    objective,
    solve_direct,
    solve_eigenpro,
    solve_nystrom_pcg,
)
from gramfree.solvers.eigenpro import _step_size

GAMMA = 0.3


def _data(n=200, d=4, t=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = np.column_stack([np.sin(X[:, 0] + k) + 0.3 * X[:, 1] * X[:, 2] for k in range(t)])
    Y += 0.05 * rng.normal(size=Y.shape)
    w = rng.uniform(0.3, 2.5, size=n)
    return X, np.ascontiguousarray(Y), w


def _centres(X, m, seed=1):
    idx = np.sort(np.random.default_rng(seed).choice(len(X), size=m, replace=False))
    return np.ascontiguousarray(X[idx])


def _np_objective(X, Y, w, alpha, C, coef, gamma=GAMMA):
    """``(sum_i w_i |f(x_i) - y_i|^2 + alpha ||f||^2) / sum w`` with numpy."""
    w = np.ones(len(X)) if w is None else w
    F = rbf_kernel(X, C, gamma=gamma) @ coef
    penalty = np.sum(coef * (rbf_kernel(C, gamma=gamma) @ coef))
    return float((w @ np.sum((F - Y) ** 2, axis=1) + alpha * penalty) / w.sum())


def _np_nystrom(X, Y, w, alpha, C, gamma=GAMMA):
    """Nystrom KRR coefficients: (K_nM^T W K_nM + alpha K_MM) a = K_nM^T W y."""
    w = np.ones(len(X)) if w is None else w
    Knm = rbf_kernel(X, C, gamma=gamma)
    Kmm = rbf_kernel(C, gamma=gamma)
    H = Knm.T @ (w[:, None] * Knm) + alpha * Kmm
    return np.linalg.lstsq(H, Knm.T @ (w[:, None] * Y), rcond=1e-13)[0]


def rel_diff(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


# ---------------------------------------------------------------------------------------
# Problem, objective, kernel_diagonal


def test_problem_weights():
    X, Y, w = _data(n=30)
    p = Problem(X, Y, Gaussian(GAMMA), 0.5, None, None)
    np.testing.assert_array_equal(p.weights, np.ones(30))
    assert p.weight_sum == 30.0
    p = Problem(X, Y, Gaussian(GAMMA), 0.5, w, None)
    np.testing.assert_array_equal(p.weights, w)
    assert p.weight_sum == pytest.approx(w.sum(), rel=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_objective_matches_numpy(weighted):
    X, Y, w = _data(n=150, t=2)
    w = w if weighted else None
    C = _centres(X, 40)
    coef = np.random.default_rng(7).normal(size=(40, 2))
    p = Problem(X, Y, Gaussian(GAMMA), 0.7, w, None)
    assert objective(p, C, coef) == pytest.approx(_np_objective(X, Y, w, 0.7, C, coef), rel=1e-10)


@pytest.mark.parametrize(
    "kernel, metric, params",
    [
        (Gaussian(gamma=0.4), "rbf", dict(gamma=0.4)),
        (Polynomial(degree=3, gamma=0.2, coef0=0.5), "poly", dict(degree=3, gamma=0.2, coef0=0.5)),
        (Linear(), "linear", {}),
    ],
)
def test_kernel_diagonal(kernel, metric, params):
    X = np.random.default_rng(0).normal(size=(25, 3))
    expected = np.diag(pairwise_kernels(X, metric=metric, **params))
    np.testing.assert_allclose(kernel_diagonal(kernel, X), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# direct


@pytest.mark.parametrize("weighted", [False, True])
def test_direct_solves_normal_equations(weighted):
    X, Y, w = _data(t=2)
    w = w if weighted else None
    p = Problem(X, Y, Gaussian(GAMMA), 0.2, w, None)
    res = solve_direct(p)
    assert isinstance(res, SolverResult)
    W = np.ones(len(X)) if w is None else w
    K = rbf_kernel(X, gamma=GAMMA)
    expected = np.linalg.solve(W[:, None] * K + 0.2 * np.eye(len(X)), W[:, None] * Y)
    assert rel_diff(res.coef, expected) <= 1e-8
    assert res.converged and res.n_iter == 1
    assert res.loss_curve[-1] == pytest.approx(_np_objective(X, Y, w, 0.2, X, expected), rel=1e-8)
    # scikit-learn's dual coefficients are the same numbers
    ref = KernelRidge(kernel="rbf", gamma=GAMMA, alpha=0.2).fit(X, Y, sample_weight=w)
    assert rel_diff(res.coef, ref.dual_coef_) <= 1e-8


def test_direct_alpha_zero_interpolates():
    X, Y, _ = _data(n=60)
    res = solve_direct(Problem(X, Y, Gaussian(1.0), 0.0, None, None))
    fitted = rbf_kernel(X, gamma=1.0) @ res.coef
    np.testing.assert_allclose(fitted, Y, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Nystrom-PCG


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("t", [1, 3])
def test_nystrom_pcg_matches_normal_equations(weighted, t):
    X, Y, w = _data(n=300, t=t)
    w = w if weighted else None
    C = _centres(X, 60)
    p = Problem(X, Y, Gaussian(GAMMA), 1e-2, w, 1)
    res = solve_nystrom_pcg(p, C, max_iter=300, tol=1e-12)
    assert res.converged
    assert res.coef.shape == (60, t)
    np.testing.assert_array_equal(res.centers, C)
    a = _np_nystrom(X, Y, w, 1e-2, C)
    Xt = np.random.default_rng(9).normal(size=(50, 4))
    assert (
        rel_diff(rbf_kernel(Xt, C, gamma=GAMMA) @ res.coef, rbf_kernel(Xt, C, gamma=GAMMA) @ a)
        <= 1e-6
    )
    # the last reported objective is the objective of the returned coefficients
    assert len(res.loss_curve) == res.n_iter
    assert res.loss_curve[-1] == pytest.approx(objective(p, C, res.coef), rel=1e-8)
    assert res.loss_curve[-1] == pytest.approx(_np_objective(X, Y, w, 1e-2, C, res.coef), rel=1e-8)
    assert res.info["n_centers"] == 60
    assert res.info["relative_residual"] <= 1e-12


def test_nystrom_pcg_all_centres_is_kernel_ridge():
    X, Y, w = _data(t=2)
    p = Problem(X, Y, Gaussian(GAMMA), 0.1, w, 1)
    res = solve_nystrom_pcg(p, X, max_iter=500, tol=1e-13)
    ref = KernelRidge(kernel="rbf", gamma=GAMMA, alpha=0.1).fit(X, Y, sample_weight=w)
    Xt = np.random.default_rng(4).normal(size=(40, 4))
    assert rel_diff(rbf_kernel(Xt, X, gamma=GAMMA) @ res.coef, ref.predict(Xt)) <= 1e-6


def test_nystrom_pcg_objective_monotone_and_reported_per_iteration():
    X, Y, _ = _data(n=400)
    C = _centres(X, 100)
    p = Problem(X, Y, Gaussian(GAMMA), 1e-4, None, None)
    res = solve_nystrom_pcg(p, C, max_iter=8, tol=1e-14)
    assert res.n_iter == 8 and not res.converged
    curve = np.asarray(res.loss_curve)
    assert np.all(curve[1:] <= curve[:-1] + 1e-9 * np.abs(curve[:-1]))
    # each entry is the objective of the k-th iterate: rerun with max_iter=k
    for k in (1, 4):
        early = solve_nystrom_pcg(p, C, max_iter=k, tol=1e-14)
        assert curve[k - 1] == pytest.approx(objective(p, C, early.coef), rel=1e-8)


def test_nystrom_pcg_duplicate_centres_use_jitter():
    X, Y, _ = _data(n=100)
    C = np.vstack([X[:20], X[:5]])  # 5 duplicated centres: K_MM is singular
    p = Problem(X, Y, Gaussian(GAMMA), 1e-3, None, None)
    res = solve_nystrom_pcg(p, C, max_iter=200, tol=1e-10)
    assert res.info["jitter"] > 0
    assert np.all(np.isfinite(res.coef))
    f = rbf_kernel(X, C, gamma=GAMMA) @ res.coef
    ref = rbf_kernel(X, X[:20], gamma=GAMMA) @ _np_nystrom(X, Y, None, 1e-3, X[:20])
    assert rel_diff(f, ref) <= 1e-4


def test_nystrom_pcg_float32_preconditioner():
    """A float32 preconditioner (the default for float32 data) solves the same problem to
    float32 accuracy: the two Cholesky factors and the triangular solves with them (also
    the change of variables back to coefficients) are in float32, the CG in float64."""
    X, Y, w = _data(n=400, t=2)
    C = _centres(X, 100)
    p = Problem(X, Y, Gaussian(GAMMA), 1e-2, w, 1)
    r64 = solve_nystrom_pcg(p, C, max_iter=300, tol=1e-10)
    r32 = solve_nystrom_pcg(p, C, max_iter=300, tol=1e-10, precond_dtype=np.float32)
    assert r64.info["precond_dtype"] == "float64"
    assert r32.info["precond_dtype"] == "float32"
    assert r32.info["jitter"] == 0.0  # well conditioned: no jitter, the same objective
    assert r32.coef.dtype == np.float64
    a = _np_nystrom(X, Y, w, 1e-2, C)
    Xt = np.random.default_rng(9).normal(size=(50, 4))
    K = rbf_kernel(Xt, C, gamma=GAMMA)
    assert rel_diff(K @ r64.coef, K @ a) <= 1e-6
    assert rel_diff(K @ r32.coef, K @ a) <= 2e-3
    # the float64 solve is the optimum; the float32 one is within float32's reach of it
    true32 = objective(p, C, r32.coef)
    assert r64.loss_curve[-1] * (1 - 1e-9) <= true32 <= r64.loss_curve[-1] * (1 + 1e-3)
    assert r32.loss_curve[-1] == pytest.approx(true32, rel=1e-3)
    # float32 data: float32 preconditioner by default
    p32 = Problem(X.astype(np.float32), Y.astype(np.float32), Gaussian(GAMMA), 1e-2, None, 1)
    res = solve_nystrom_pcg(p32, C.astype(np.float32), max_iter=300, tol=1e-6)
    assert res.info["precond_dtype"] == "float32"
    assert res.coef.dtype == np.float32
    assert rel_diff(K @ res.coef, K @ _np_nystrom(X, Y, None, 1e-2, C)) <= 2e-3


def test_nystrom_pcg_bad_precond_dtype():
    X, Y, _ = _data(n=50)
    p = Problem(X, Y, Gaussian(GAMMA), 1e-2, None, 1)
    with pytest.raises(ValueError, match="precond_dtype"):
        solve_nystrom_pcg(p, X[:10], max_iter=5, tol=1e-6, precond_dtype=np.int32)


# ---------------------------------------------------------------------------------------
# EigenPro


def _eigenpro(p, centres=None, *, max_iter=30, tol=1e-4, seed=0, max_batch=8192):
    return solve_eigenpro(
        p,
        centres,
        max_iter=max_iter,
        tol=tol,
        random_state=np.random.default_rng(seed),
        max_batch=max_batch,
    )


@pytest.mark.parametrize("max_batch", [8192, 64])
@pytest.mark.parametrize("alpha", [1.0, 1e-3])
def test_eigenpro_batch_and_step_size(alpha, max_batch):
    X, Y, _ = _data(n=300)
    n = len(X)
    p = Problem(X, Y, Gaussian(GAMMA), alpha, None, 1)
    res = _eigenpro(p, max_iter=2, tol=0.0, max_batch=max_batch)
    info = res.info
    m, eta, q, lam, beta = (
        info[k] for k in ("batch_size", "step_size", "top_q", "lambda_q", "beta")
    )
    # beta bounds the diagonal of K + alpha I: 1 + alpha for the Gaussian kernel
    assert beta == pytest.approx(1.0 + alpha, rel=1e-12)
    assert info["n_subsample"] == n and info["n_measure"] == n
    K = rbf_kernel(X, gamma=GAMMA)
    vals, vecs = np.linalg.eigh(K / n)
    vals, vecs = np.maximum(vals[::-1], 0.0), vecs[:, ::-1]
    shift = alpha / n
    # The damped flattened top lam_1^(1-a) lam_q^a (EigenPro 2's code), q at most s/3 - 1,
    # its critical batch within min(max_batch, s), and lam_q not below the ridge alpha / n
    # (flattened under it, the top directions stopped moving: a review's large-alpha fits).
    flat = (vals[0] + shift) ** 0.05 * (vals + shift) ** 0.95
    assert info["lambda_flat"] == pytest.approx(flat[q - 1], rel=1e-8)
    cap = min(max_batch, n)
    assert q <= n // 3 - 1
    # Where the subsample is every row and one batch holds them all (max_batch >= n), the
    # batch rule bounds nothing (eigenpro._eigensystem's whole).
    whole = max_batch >= n
    assert ((whole or beta / flat[q - 1] + 1 <= cap) and vals[q - 1] >= shift) or q == 1
    assert q == n // 3 - 1 or (not whole and beta / flat[q] + 1 > cap) or vals[q] < shift
    # lambda_measured: top eigenvalue of the preconditioned kernel K - K E D E^T K over n
    E = vecs[:, : q - 1] / np.sqrt(n)
    D = (1 - (vals[q - 1] / vals[: q - 1]) ** 0.95) / vals[: q - 1]
    M = K - K @ E @ np.diag(D) @ E.T @ K
    assert info["lambda_measured"] == pytest.approx(np.linalg.eigvalsh(M)[-1] / n + shift, rel=1e-6)
    assert lam == max(info["lambda_flat"], info["lambda_measured"])
    # batch size m = min(n, beta / lam + 1, max_batch); then eta = m / beta
    assert m == min(n, int(np.floor(beta / lam + 1)), max_batch)
    assert eta == pytest.approx(m / beta, rel=1e-12)
    assert len(res.loss_curve) == res.n_iter == 2


def test_eigenpro_step_size_formula():
    beta, lam_q = 2.0, 0.01
    m_star = beta / lam_q + 1  # 201
    for m in (1, 50, 200):
        assert _step_size(m, beta, lam_q) == pytest.approx(m / beta)
    for m in (202, 1000, 10**6):
        assert _step_size(m, beta, lam_q) == pytest.approx(0.99 * 2 * m / (beta + (m - 1) * lam_q))
    # bounded by 2 / lambda_q beyond the critical batch size
    assert 2 * m_star / (beta + (m_star - 1) * lam_q) == pytest.approx(m_star / beta)
    assert _step_size(10**9, beta, lam_q) < 2 / lam_q


@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_eigenpro2_converges_to_kernel_ridge(alpha):
    X, Y, _ = _data(t=2)
    p = Problem(X, Y, Gaussian(GAMMA), alpha, None, 1)
    res = _eigenpro(p, max_iter=3000, tol=1e-14)
    assert res.info["variant"] == "eigenpro2"
    np.testing.assert_array_equal(res.centers, X)
    ref = KernelRidge(kernel="rbf", gamma=GAMMA, alpha=alpha).fit(X, Y)
    assert rel_diff(res.coef, ref.dual_coef_) <= 1e-6


@pytest.mark.parametrize("solve", ["direct", "nystrom-pcg", "eigenpro"])
def test_constant_weights_equal_scaled_ridge(solve):
    """``sum c (f - y)^2 + alpha ||f||^2`` has the minimiser of ``alpha / c`` unweighted."""
    X, Y, _ = _data()
    c = 2.0
    weighted = Problem(X, Y, Gaussian(GAMMA), 0.1, np.full(len(X), c), 1)
    scaled = Problem(X, Y, Gaussian(GAMMA), 0.1 / c, None, 1)
    if solve == "direct":
        a, b = solve_direct(weighted), solve_direct(scaled)
    elif solve == "nystrom-pcg":
        C = _centres(X, 80)
        a = solve_nystrom_pcg(weighted, C, max_iter=300, tol=1e-12)
        b = solve_nystrom_pcg(scaled, C, max_iter=300, tol=1e-12)
    else:
        a = _eigenpro(weighted, max_iter=1000, tol=1e-14)
        b = _eigenpro(scaled, max_iter=1000, tol=1e-14)
    assert np.all(np.isfinite(a.coef))
    assert rel_diff(a.coef, b.coef) <= 1e-6
    ref = KernelRidge(kernel="rbf", gamma=GAMMA, alpha=0.1 / c).fit(X, Y)
    if solve != "nystrom-pcg":
        assert rel_diff(a.coef, ref.dual_coef_) <= 1e-6


@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_eigenpro3_reaches_the_nystrom_solution(alpha):
    """With fixed centres EigenPro 3 approaches the Nystrom optimum of nystrom_pcg. It is
    stochastic gradient descent (halving its step when epochs stall), so it gets close, not
    to machine precision: within 2% of the optimal objective, predictions within 10%."""
    X, Y, _ = _data()
    C = _centres(X, 50)
    p = Problem(X, Y, Gaussian(GAMMA), alpha, None, 1)
    ep = _eigenpro(p, C, max_iter=300, tol=0.0)
    assert ep.info["variant"] == "eigenpro3"
    np.testing.assert_array_equal(ep.centers, C)
    pcg = solve_nystrom_pcg(p, C, max_iter=300, tol=1e-12)
    best = objective(p, C, pcg.coef)
    assert best <= objective(p, C, ep.coef) <= best * (1 + 2e-2)
    Xt = np.random.default_rng(3).normal(size=(50, 4))
    K = rbf_kernel(Xt, C, gamma=GAMMA)
    assert rel_diff(K @ ep.coef, K @ pcg.coef) <= 1e-1


def test_eigenpro_convergence_flag_and_curve():
    X, Y, _ = _data()
    p = Problem(X, Y, Gaussian(GAMMA), 1.0, None, 1)
    one = _eigenpro(p, max_iter=1, tol=1e-3)
    assert one.n_iter == 1 and not one.converged
    many = _eigenpro(p, max_iter=500, tol=1e-3)
    assert many.converged and many.n_iter < 500
    assert len(many.loss_curve) == many.n_iter
    # loss_curve holds the exact objective of the iterate kept after each epoch
    assert many.loss_curve[-1] == pytest.approx(objective(p, many.centers, many.coef), rel=1e-10)
    assert np.all(np.diff(many.loss_curve) <= 0)
    prev, last = many.loss_curve[-2:]
    assert prev - last <= 1e-3 * prev or last <= 1e-3 * np.mean(Y**2)
    assert many.loss_curve[-1] < many.info["objective_initial"]

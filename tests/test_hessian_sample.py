"""The logistic solver's sub-sampled CG Hessian (gramfree.solvers._hessian_sample):
the inclusion probabilities against a bisection for their threshold, the sample's
expectation against the exact Hessian's quadratic form, the check that grows it, and
fits with and without it reaching the same optimum on real data (digits, breast cancer;
narrow and wide kernels; the stored K_nM and the recomputing operator)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler

from gramfree import KernelClassifier
from gramfree.solvers import _hessian_sample
from gramfree.solvers._hessian_sample import HessianSample, inclusion_probabilities


def _tau_by_bisection(trace, size):
    """tau with sum(min(1, trace / tau)) = size, by bisection (an independent route)."""
    lo, hi = 0.0, float(trace.sum()) / size * 2 + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(trace / mid, 1.0).sum() > size:
            lo = mid
        else:
            hi = mid
    return hi


traces = st.lists(
    st.one_of(st.just(0.0), st.floats(1e-12, 1.0), st.floats(1e-6, 1e-3)), min_size=2, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(trace=traces, share=st.floats(0.01, 1.5))
def test_inclusion_probabilities_sum_to_the_size(trace, share):
    trace = np.array(trace)
    size = share * trace.size
    q = inclusion_probabilities(trace, size)
    positive = trace > 0
    assert np.all((q >= 0) & (q <= 1)) and np.all(q[~positive] == 0)
    if positive.sum() <= size:  # every row that has curvature, certainly
        np.testing.assert_array_equal(q, positive.astype(float))
        return
    assert q.sum() == pytest.approx(size, rel=1e-9)
    tau = _tau_by_bisection(trace, size)
    np.testing.assert_allclose(q, np.minimum(trace / tau, 1.0), rtol=1e-7, atol=1e-12)
    # The certain rows are the largest ones.
    assert trace[q == 1].min(initial=np.inf) >= trace[q < 1].max(initial=0.0)


def _digits_problem(n=600, M=60, gamma=0.02):
    """An rbf K_nM of digits and the multinomial curvature at a fitted model's
    probabilities (most rows nearly certain, a few not)."""
    X, y = load_digits(return_X_y=True)
    X = np.ascontiguousarray(StandardScaler().fit_transform(X)[:n])
    y = y[:n]
    fit = KernelClassifier(
        gamma=gamma, alpha=1e-3, loss="logistic", n_centers=M, random_state=0
    ).fit(X, y)
    return rbf_kernel(X, X[:M], gamma=gamma), fit.predict_proba(X)


def _quadratic_form_per_row(K, P, d):
    D = K @ d
    PD = P * D
    SD = PD - P * PD.sum(axis=1, keepdims=True)
    return np.sum(SD * D, axis=1)


def test_the_sample_is_the_exact_hessian_in_expectation():
    """Over independent draws, the sample's weighted quadratic form d^T H~ d averages to
    the exact d^T H d (the weights 1 / q make it unbiased: with unit weights the mean
    would be well below it), and rows above the threshold are
    in every draw."""
    K, P = _digits_problem()
    trace = np.sum(P * (1.0 - P), axis=1)
    d = np.random.default_rng(1).standard_normal((K.shape[1], 10))
    per_row = _quadratic_form_per_row(K, P, d)
    exact = per_row.sum()
    size = 0.15 * len(trace)
    q = inclusion_probabilities(trace, size)
    assert 0 < np.count_nonzero(q == 1) < size  # some certain rows, some sampled
    forms, certain = [], q == 1
    for seed in range(2000):
        kept = np.random.default_rng(seed).random(len(q)) < q
        assert kept[certain].all()
        forms.append(per_row[kept] @ (1.0 / q[kept]))
    forms = np.array(forms)
    standard_error = forms.std() / np.sqrt(len(forms))
    assert abs(forms.mean() - exact) < 4 * standard_error
    assert standard_error < 0.01 * exact  # and the test can tell a 5% bias apart


def test_draws_keep_their_rows_and_the_check_grows_the_sample(monkeypatch):
    """Common random numbers: the same curvature draws the same rows, and a row whose
    curvature rises stays in the sample. A step along which the sample's Hessian is off
    by more than MODEL_ERROR doubles the sample; from MAX_SHARE of the rows every row is
    used."""
    monkeypatch.setattr(_hessian_sample, "ROWS_PER_CENTRE", 2.0)
    n, M = 1000, 40
    trace = np.random.default_rng(0).exponential(size=n) ** 3
    sample = HessianSample(n, M)
    rows, weights = sample.draw(trace)
    again, _ = sample.draw(trace)
    np.testing.assert_array_equal(rows, again)
    raised = trace.copy()
    raised[rows[:5]] *= 10.0
    raised[::7] *= 10.0
    more, _ = sample.draw(raised)
    assert set(rows[:5]) <= set(more)
    # The check: per-row curvature along a step, the sampled rows' weighted sum against all.
    sample.draw(trace)
    per_row = np.ones(n)
    exact, sampled = n + 1.0, float(weights.sum()) + 1.0
    agreed = sample.check(per_row, penalty=1.0)
    assert sample.model_errors[-1] == pytest.approx(exact / sampled - 1.0)
    assert agreed == (abs(exact / sampled - 1.0) <= _hessian_sample.MODEL_ERROR)
    size = 2 * M * (1 if agreed else 2)
    assert sample.size == size
    while (drawn := sample.draw(trace)) is not None:
        per_row = np.zeros(n)
        per_row[np.setdiff1d(np.arange(n), drawn[0])] = 1.0  # all of it off the sample
        assert not sample.check(per_row, penalty=1.0)  # disagreed: doubled
        size *= 2
        assert sample.size == size
    assert size >= _hessian_sample.MAX_SHARE * n and sample.rows_used[-1] == n
    assert sample.check(per_row, penalty=1.0)  # after a step with every row: nothing to check


def test_no_sample_without_curvature_to_draw_by():
    """Every row where no row has curvature (saturated probabilities: an empty sample would
    leave the recomputing operator nothing to compute) or a trace is not finite."""
    sample = HessianSample(1000, 10)
    assert sample.draw(np.zeros(1000)) is None
    trace = np.random.default_rng(7).random(1000)  # (not the draws' own stream: SEED)
    trace[3] = np.nan
    assert sample.draw(trace) is None
    assert sample.rows_used == [1000, 1000]
    trace[3] = 0.5
    assert sample.draw(trace, max_rows=10) is None  # more rows than the caller can take
    assert sample.draw(trace) is not None and sample.rows_used[-1] < 1000
    for bad in (np.array([1.0, np.inf]), np.array([1.0, -1.0])):
        with pytest.raises(ValueError, match="trace"):
            inclusion_probabilities(bad, 1.0)
    with pytest.raises(ValueError, match="size"):
        inclusion_probabilities(np.ones(3), 0.0)


def _fit(X, y, *, gamma, alpha, centres, loss="logistic"):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return KernelClassifier(
            gamma=gamma,
            alpha=alpha,
            loss=loss,
            n_centers=centres,
            random_state=0,
            solver="nystrom-pcg",
            tol=1e-9,
            max_iter=200,
        ).fit(X, y)


@pytest.mark.parametrize(
    "loader, gamma, centres",
    [
        (load_digits, 0.002, 100),  # 10 classes, wide
        (load_digits, 0.1, 100),  # narrow
        (load_breast_cancer, 0.005, 40),  # two classes, wide
        (load_breast_cancer, 0.2, 40),  # narrow
    ],
)
@pytest.mark.parametrize("stored", [True, False])
def test_sampled_hessians_reach_the_same_optimum(monkeypatch, loader, gamma, centres, stored):
    """With CG's Hessian sampled and with every row, the fits reach the same objective and
    probabilities (the gradient and the steps are exact; only CG's products sample), with
    K_nM stored and recomputed on every pass. (Two classes: with the centres'
    preconditioner; beside the curvature's exact Gram every row is used, below.)"""
    import gramfree.solvers.logistic as solver

    X, y = loader(return_X_y=True)
    X = np.ascontiguousarray(StandardScaler().fit_transform(X))
    monkeypatch.setattr(solver, "_gram_pays", lambda *args: False)
    if not stored:
        monkeypatch.setattr(solver, "CACHE_BYTES", 0.0)
    fits, default = {}, _hessian_sample.MAX_SHARE
    for share in (default, 0.0):
        monkeypatch.setattr(_hessian_sample, "MAX_SHARE", share)
        fits[share] = _fit(X, y, gamma=gamma, alpha=1e-3, centres=centres)
        info = fits[share].solver_info_
        assert info["stored_kernel_columns"] == ("float64" if stored else False)
    sampled, exact = fits[default].solver_info_, fits[0.0].solver_info_
    assert min(sampled["hessian_rows"]) < 0.5 * len(y)
    assert sampled["hessian_sample_errors"]
    assert exact["hessian_rows"] == [len(y)] * len(exact["hessian_rows"])
    assert sampled["objective"] == pytest.approx(exact["objective"], rel=1e-8)
    np.testing.assert_allclose(
        fits[default].predict_proba(X), fits[0.0].predict_proba(X), atol=1e-4
    )


def test_every_row_beside_the_exact_gram_preconditioner():
    """The curvature's exact Gram as CG's preconditioner is the exact Hessian (CG takes an
    iteration or two): no sample there, whatever the data's size."""
    X, y = load_breast_cancer(return_X_y=True)
    X = np.ascontiguousarray(StandardScaler().fit_transform(X))
    fit = _fit(X, y, gamma=0.05, alpha=1e-3, centres=40)
    info = fit.solver_info_
    # 569 rows, 40 centres: a sample of 160 would be drawn with the centres' preconditioner.
    assert info["preconditioner"] == "gram"
    assert _hessian_sample.ROWS_PER_CENTRE * 40 < _hessian_sample.MAX_SHARE * len(y)
    assert info["hessian_rows"] == [len(y)] * len(info["hessian_rows"])
    assert info["hessian_sample_errors"] == []


@pytest.mark.parametrize(
    "case",
    [
        "one-pass",
        "two-pass",
        "recomputed",
        "float32",
        "weighted",
        "binary",
        "whitened",
        "whitened-binary",
    ],
)
def test_cg_products_are_the_sampled_hessians_schur_complement(monkeypatch, case):
    """CG's product in each sampled step equals, to rounding, the Schur complement of the
    sampled Hessian built densely in numpy from that step's probabilities, weights and
    drawn rows: ``K_s^T S~ (K_s V - 1 z^T) + alpha K_MM V`` with S~_i = w_i / q_i (diag p_i
    - p_i p_i^T) and ``z = B~^+ sum_i S~_i (K_s V)_i`` (two classes: the scalar curvature
    and the intercept's coupling c = K_s^T s). The same product without the 1 / q weights
    differs from it: the test tells a sampled Hessian built without them apart. Every route
    of CG's products: the native pass by index (one-pass), BLAS's two passes over copied
    rows, the recomputing operator over the drawn rows of X, float32 storage, sample
    weights, two classes; and in whitened coordinates (gramfree.solvers.logistic), where
    the product is the same with ``B = K L^-T`` for K and the identity for K_MM. The
    other cases run in K_nM's coefficients (``WHITEN = False``)."""
    import gramfree.solvers.logistic as solver

    whitened = case.startswith("whitened")
    monkeypatch.setattr(solver, "WHITEN", whitened)
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)  # whitened at this size where on
    X, y = load_digits(return_X_y=True)
    X = np.ascontiguousarray(StandardScaler().fit_transform(X))
    if case.endswith("binary"):
        y = (y < 5).astype(int)
    n, gamma, alpha = len(y), 0.02, 1e-3
    centres = np.arange(0, n, 18)
    monkeypatch.setattr(solver, "_gram_pays", lambda *args: False)
    if case == "two-pass":
        monkeypatch.setattr(solver, "ONE_PASS_CLASSES", 0)
    if case == "recomputed":
        monkeypatch.setattr(solver, "CACHE_BYTES", 0.0)
    if case == "float32":
        monkeypatch.setattr(solver, "_stored_dtype", lambda n, M: np.dtype(np.float32))
    weights = np.random.default_rng(0).uniform(0.2, 3.0, n) if case == "weighted" else None

    K = rbf_kernel(X, X[centres], gamma=gamma)
    if case == "float32":
        K = K.astype(np.float32).astype(np.float64)
    Kmm = rbf_kernel(X[centres], gamma=gamma)
    if whitened:  # B = K L^-T, and the penalty's K_MM the identity
        factor = np.linalg.cholesky(Kmm)
        K = np.linalg.solve(factor, K.T).T
        Kmm = np.eye(len(centres))
    seen = {}
    original_curvature, original_pcg = solver._curvature, solver._pcg
    original_draw = HessianSample.draw

    class recording_curvature(original_curvature):
        def __init__(self, P, w):
            super().__init__(P, w)
            if P.shape[0] == n:  # the step's curvature over all rows
                seen["P"], seen["w"] = P.copy(), w.copy()

    def recording_draw(self, *args, **kwargs):
        seen["drawn"] = original_draw(self, *args, **kwargs)
        return seen["drawn"]

    errors, unweighted = [], []

    def checking_pcg(hessian, rhs, *args, **kwargs):
        if seen["drawn"] is not None:
            rows, scale = seen["drawn"]
            V = np.random.default_rng(len(errors)).standard_normal(rhs.shape)
            got = hessian(V)
            for ws, out in ((seen["w"][rows] * scale, errors), (seen["w"][rows], unweighted)):
                want = _dense_schur_product(K[rows], seen["P"][rows], ws, V) + alpha * Kmm @ V
                out.append(np.abs(got - want).max() / np.abs(want).max())
        return original_pcg(hessian, rhs, *args, **kwargs)

    monkeypatch.setattr(solver, "_curvature", recording_curvature)
    monkeypatch.setattr(HessianSample, "draw", recording_draw)
    monkeypatch.setattr(solver, "_pcg", checking_pcg)
    fit = KernelClassifier(
        gamma=gamma, alpha=alpha, loss="logistic", centers=centres, random_state=0, tol=1e-6
    ).fit(X, y, sample_weight=weights)
    info = fit.solver_info_
    assert info["jitter"] == 0.0 and info["n_centers"] == len(centres)
    assert info["whitened"] is whitened
    assert info["stored_kernel_columns"] == {
        "recomputed": False,
        "float32": "float32",
    }.get(case, "float64")
    assert len(errors) >= 2  # sampled steps checked
    assert max(errors) < (1e-6 if case == "float32" else 1e-9)
    assert max(unweighted) > 1e-2


def _dense_schur_product(Ks, P, ws, V):
    """``K_s^T S (K_s V - 1 z^T)``, S_i = ws_i (diag p_i - p_i p_i^T) (one column of p for
    two classes: ws_i p_i (1 - p_i)), z the intercepts' shift ``B^+ sum_i S_i (K_s V)_i``,
    B = sum_i S_i; every S_i formed as a dense k x k matrix."""
    U = Ks @ V
    if P.shape[1] == 1:
        S = (ws * P[:, 0] * (1.0 - P[:, 0]))[:, None, None]
    else:
        S = ws[:, None, None] * (
            np.einsum("ic,cd->icd", P, np.eye(P.shape[1])) - P[:, :, None] * P[:, None, :]
        )
    B = S.sum(axis=0)
    z = np.linalg.pinv(B, rcond=1e-10, hermitian=True) @ np.einsum("icd,id->c", S, U)
    return Ks.T @ np.einsum("icd,id->ic", S, U - z)

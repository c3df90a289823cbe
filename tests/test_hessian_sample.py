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
    sample.check(per_row, penalty=1.0)
    assert sample.model_errors[-1] == pytest.approx(exact / sampled - 1.0)
    grown = []
    for _ in range(10):
        sample.draw(trace)
        per_row = np.zeros(n)
        per_row[np.setdiff1d(np.arange(n), sample._rows)] = 1.0  # all of it off the sample
        sample.check(per_row, penalty=1.0)
        grown.append(sample.size)
    assert grown[0] == 4 * 2 * M  # doubled at each check (twice: the first check above too)
    assert sample.draw(trace) is None and sample.rows_used[-1] == n


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
    assert info["preconditioner"] == "gram" and len(y) >= 8 * 40
    assert info["hessian_rows"] == [len(y)] * len(info["hessian_rows"])
    assert info["hessian_sample_errors"] == []

"""Kernel logistic regression in whitened coordinates (``beta = L^T a`` over ``B = K_nM
L^-T``, gramfree.solvers.logistic): the same model and objective as the fit in K_nM's
coefficients, on real data with wide and narrow kernels, binary (the Gram preconditioner
too) and multinomial; warm starts and the monitor in the kernel's coefficients; never
with K_nM in float32; the decision against its closed form."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import gramfree.solvers.logistic as solver
from gramfree import KernelClassifier
from gramfree.solvers._kept_preconditioner import (
    FLOPS_PER_BYTE,
    build_cost,
    iteration_cost,
    whitening_saves,
)


def _data(loader, n=None):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return (X, y) if n is None else (X[:n], y[:n])


def _fit(X, y, *, whiten, monkeypatch, **params):
    monkeypatch.setattr(solver, "WHITEN", whiten)
    # Whitening on at any size (the decision itself: test_the_decision_closed_form).
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)
    settings = dict(loss="logistic", tol=1e-8, max_iter=100, random_state=0)
    settings.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return KernelClassifier(**settings).fit(X, y)


@pytest.mark.parametrize(
    "loader, n, gamma, alpha, centers, preconditioner",
    [
        (load_breast_cancer, None, 0.003, 1e-3, None, "centres"),  # wide, every point a centre
        (load_breast_cancer, None, 0.3, 1e-3, 200, "auto"),  # narrow, 200 centres
        (load_breast_cancer, None, 0.03, 1e-2, 150, "gram"),  # the curvature's Gram
        (load_digits, 700, 0.002, 1e-3, 300, "auto"),  # 10 classes, wide
        (load_digits, 700, 0.05, 1e-3, 300, "auto"),  # 10 classes, narrow
        (load_wine, None, 0.1, 1e-2, None, "auto"),  # 3 classes
    ],
)
def test_whitened_fit_reaches_the_same_optimum(
    loader, n, gamma, alpha, centers, preconditioner, monkeypatch
):
    X, y = _data(loader, n)
    if preconditioner != "auto":  # the curvature's Gram on every step, or never
        monkeypatch.setattr(solver, "_gram_pays", lambda *args: preconditioner == "gram")
    fits = {
        whiten: _fit(
            X,
            y,
            whiten=whiten,
            monkeypatch=monkeypatch,
            gamma=gamma,
            alpha=alpha,
            n_centers=centers,
            solver="nystrom-pcg",
        )
        for whiten in (True, False)
    }
    on, off = fits[True].solver_info_, fits[False].solver_info_
    assert on["whitened"] is True and off["whitened"] is False
    assert on["stored_kernel_columns"] == "float64"
    assert on["preconditioner"] == off["preconditioner"]
    assert preconditioner == "auto" or on["preconditioner"] == preconditioner
    assert on["objective"] == pytest.approx(off["objective"], rel=1e-8)
    # The same preconditioner in other coordinates: as many CG iterations up to rounding
    # (a downdate whitened twice took 2.8x as many on the Gram's row).
    assert on["cg_iterations"] <= 1.35 * off["cg_iterations"] + 2
    np.testing.assert_allclose(fits[True].predict_proba(X), fits[False].predict_proba(X), atol=1e-5)
    # The kernel's coefficients (predictions use them with K(x, centres)).
    scale = np.abs(fits[False].dual_coef_).max()
    np.testing.assert_allclose(fits[True].dual_coef_, fits[False].dual_coef_, atol=1e-4 * scale)


def test_whitened_with_a_jittered_factor(monkeypatch):
    """Coinciding centres (duplicated rows, every point a centre): K_MM is singular, L
    carries a jitter, and B = K_nM L^-T is formed with it; the whitened fit reaches the
    unwhitened one's optimum."""
    X, y = _data(load_breast_cancer)
    X, y = np.vstack([X, X[:100]]), np.concatenate([y, y[:100]])
    fits = {
        whiten: _fit(X, y, whiten=whiten, monkeypatch=monkeypatch, gamma=0.05, alpha=1e-3)
        for whiten in (True, False)
    }
    on, off = fits[True].solver_info_, fits[False].solver_info_
    assert on["jitter"] > 0 and on["jitter"] == off["jitter"]
    assert on["whitened"] is True and off["whitened"] is False
    assert on["objective"] == pytest.approx(off["objective"], rel=1e-8)
    np.testing.assert_allclose(fits[True].predict_proba(X), fits[False].predict_proba(X), atol=1e-5)


def test_warm_start_and_monitor_in_the_kernels_coefficients(monkeypatch):
    """A warm start from a fit at another alpha (mapped forward to beta) and the per-step
    monitor (mapped back): the whitened fit's last monitor call sees its dual_coef_, and the
    warm-started fits agree with and without whitening."""
    import gramfree.estimators._logistic as logistic_estimator

    X, y = _data(load_digits, 600)
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)
    real_solve = logistic_estimator.solve_logistic
    fits = {}
    for whiten in (True, False):
        monkeypatch.setattr(solver, "WHITEN", whiten)
        seen = []

        def spy(*args, monitor=None, _seen=seen, **kwargs):
            def watch(step, coef, intercept):
                _seen.append(np.array(coef))
                return False if monitor is None else monitor(step, coef, intercept=intercept)

            return real_solve(*args, monitor=watch, **kwargs)

        monkeypatch.setattr(logistic_estimator, "solve_logistic", spy)
        clf = KernelClassifier(
            loss="logistic",
            alpha=1e-1,
            gamma=0.01,
            n_centers=250,
            solver="nystrom-pcg",
            warm_start=True,
            tol=1e-8,
            random_state=0,
        )
        clf.fit(X, y)
        clf.set_params(alpha=1e-3)
        seen.clear()
        clf.fit(X, y)
        assert clf.solver_info_["warm_start"] is True
        assert clf.solver_info_["whitened"] is whiten
        assert len(seen) == clf.n_iter_ > 0
        np.testing.assert_allclose(seen[-1], clf.dual_coef_, rtol=0, atol=1e-12)
        fits[whiten] = clf
    on, off = fits[True].solver_info_, fits[False].solver_info_
    # The warm start is the same point in both coordinates (each from its own previous
    # fit, which agree to the tolerance).
    assert on["objective_initial"] == pytest.approx(off["objective_initial"], rel=1e-6)
    assert on["objective"] == pytest.approx(off["objective"], rel=1e-8)
    np.testing.assert_allclose(fits[True].predict_proba(X), fits[False].predict_proba(X), atol=1e-5)


def test_not_with_float32_storage(monkeypatch):
    """K_nM kept in float32 (only that fits): the coefficients of K_nM, never whitened."""
    X, y = _data(load_breast_cancer)
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)
    monkeypatch.setattr(solver, "_stored_dtype", lambda n, M: np.dtype(np.float32))
    clf = KernelClassifier(loss="logistic", gamma=0.03, n_centers=200, random_state=0)
    clf.fit(X, y)
    assert clf.solver_info_["stored_kernel_columns"] == "float32"
    assert clf.solver_info_["whitened"] is False


def test_not_with_float32_kernel_values(monkeypatch):
    """kernel_precision="float32": K_nM stored in float64 holds float32-rounded values,
    which whitening would amplify: not whitened."""
    X, y = _data(load_breast_cancer)
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)
    clf = KernelClassifier(
        loss="logistic", gamma=0.03, n_centers=200, kernel_precision="float32", random_state=0
    )
    clf.fit(X, y)
    assert clf.solver_info_["stored_kernel_columns"] == "float64"
    assert clf.solver_info_["kernel_dtype"] == "float32"
    assert clf.solver_info_["whitened"] is False


def test_not_where_kernel_columns_are_recomputed(monkeypatch):
    X, y = _data(load_breast_cancer)
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)
    monkeypatch.setattr(solver, "_stored_dtype", lambda n, M: None)
    clf = KernelClassifier(loss="logistic", gamma=0.03, n_centers=200, random_state=0)
    clf.fit(X, y)
    assert clf.solver_info_["stored_kernel_columns"] is False
    assert clf.solver_info_["whitened"] is False


@pytest.mark.parametrize("rows, M, k", [(4826, 1000, 6), (3450, 3450, 1), (43500, 1000, 7)])
def test_the_decision_closed_form(rows, M, k):
    """Whitening pays where WHITEN_CG iterations' savings (the K_MM product and two
    triangular solves: 16 M^2 bytes and 4 M^2 k flops at half rate) exceed forming B
    (rows M^2 flops); the cost model's iteration and build costs drop by them."""
    saves = FLOPS_PER_BYTE * 16 * M**2 + 2 * 4 * M**2 * k
    assert whitening_saves(M, k) == pytest.approx(saves)
    assert solver._whitening_pays(rows, M, k) == (solver.WHITEN_CG * saves > rows * M**2)
    rates = {"dense": 1e11, "engine_float64": 5e10}
    plain = iteration_cost(rows, M, k, 30, stored_bytes=8, rates=rates)
    white = iteration_cost(rows, M, k, 30, stored_bytes=8, rates=rates, whitened=True)
    assert plain - white == pytest.approx(saves)
    gram = build_cost(rows, M, 30, gram=True, stored=True, rates=rates)
    assert gram - build_cost(
        rows, M, 30, gram=True, stored=True, rates=rates, whitened=True
    ) == pytest.approx(2 * M**3)


def test_zero_weight_rows_do_not_change_the_decision(monkeypatch):
    """The decision counts the rows of non-zero weight, as the rest of the cost model
    (tests/test_zero_weight_centres.py): with the bound between the weighted rows and all
    of them, a fit with zero-weight rows appended is whitened as the fit without them."""
    X, y = _data(load_breast_cancer)
    n, M = X.shape[0], 100
    bound = (n + n // 2) * M**2 / whitening_saves(M, 1)  # n rows pass, 2 n would not
    monkeypatch.setattr(solver, "WHITEN_CG", bound)
    params = dict(loss="logistic", gamma=0.03, n_centers=M, random_state=0)
    plain = KernelClassifier(**params).fit(X, y)
    X2, y2 = np.vstack([X, X]), np.concatenate([y, y])
    weights = np.concatenate([np.ones(n), np.zeros(n)])
    padded = KernelClassifier(**params).fit(X2, y2, sample_weight=weights)
    assert plain.solver_info_["whitened"] is True
    assert padded.solver_info_["whitened"] is True
    assert not solver._whitening_pays(2 * n, M, 1)

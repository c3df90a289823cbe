"""solver="pcg": exact kernel ridge on every training row by preconditioned CG (Nystrom +
diagonal preconditioner), on real data with narrow and wide kernels, against the exact
factorization (numpy/scipy in float64) and scikit-learn's KernelRidge."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel
from test_solvers_realdata import CASES, IDS, _load

from gramfree import KernelClassifier, KernelRegressor
from gramfree.kernels import Gaussian
from gramfree.solvers import Problem, objective, solve_direct, solve_kernel_pcg

SUBSAMPLE = 100  # far fewer rows than each set's, as 2000 is far fewer than Letter's 15000


def _problem(name, gamma, weights=None, alpha=0.1):
    X, Y = _load(name)
    return Problem(X, Y, Gaussian(gamma), alpha, weights, None)


def _fit(p, *, tol, max_iter=300, monitor=None, seed=0):
    return solve_kernel_pcg(
        p,
        max_iter=max_iter,
        tol=tol,
        random_state=np.random.default_rng(seed),
        n_subsample=SUBSAMPLE,
        monitor=monitor,
    )


@pytest.mark.parametrize("name,gamma", CASES, ids=IDS)
def test_pcg_reaches_the_exact_solution(name, gamma):
    """Converges to the float64 factorization's solution, and every iterate lowers CG's
    energy ``c^T A c / 2 - b^T c`` of the system it solves (computed here in numpy)."""
    p = _problem(name, gamma)
    K = rbf_kernel(p.X, gamma=gamma)
    A = K + p.alpha * np.eye(len(K))
    iterates = []
    res = _fit(p, tol=1e-10, monitor=lambda it, coef: iterates.append(coef.copy()) and False)
    assert res.converged and res.n_iter == len(iterates)
    energy = [0.5 * np.sum(c * (A @ c)) - np.sum(p.Y * c) for c in iterates]
    assert np.all(np.diff(energy) <= 1e-10 * abs(energy[0]))
    exact = sla.solve(A, p.Y, assume_a="pos")
    assert np.linalg.norm(res.coef - exact) <= 1e-7 * np.linalg.norm(exact)
    best = objective(p, p.X, solve_direct(p).coef)
    assert res.loss_curve[-1] == pytest.approx(best, rel=1e-8)
    assert objective(p, p.X, res.coef) == pytest.approx(res.loss_curve[-1], rel=1e-8)


@pytest.mark.parametrize("name,gamma", CASES, ids=IDS)
def test_pcg_at_the_default_tolerance_predicts_as_the_exact_solution(name, gamma):
    """At tol 1e-4 (the estimators' default) within the default budget of 100 iterations,
    the training predictions are those of the exact solution to 1e-3."""
    p = _problem(name, gamma)
    res = _fit(p, tol=1e-4, max_iter=100)
    assert res.converged
    K = rbf_kernel(p.X, gamma=gamma)
    exact = solve_direct(p).coef
    assert np.linalg.norm(K @ (res.coef - exact)) <= 1e-3 * np.linalg.norm(K @ exact)


def test_pcg_with_weights_matches_kernel_ridge_and_ignores_zero_weights():
    X, Y = _load("diabetes")
    w = np.random.default_rng(3).uniform(0.2, 3.0, len(X))
    w[::7] = 0.0
    ref = KernelRidge(kernel="rbf", gamma=0.5, alpha=0.1).fit(X, Y, sample_weight=w)
    model = KernelRegressor(gamma=0.5, alpha=0.1, solver="pcg", tol=1e-12, max_iter=500)
    w_given = w.copy()
    model.fit(X, Y, sample_weight=w)
    np.testing.assert_array_equal(w, w_given)
    assert model.solver_ == "pcg" and model.n_iter_ < 500
    np.testing.assert_allclose(model.predict(X), ref.predict(X), rtol=0, atol=1e-8)
    assert np.all(model.dual_coef_[::7] == 0.0)
    kept = w > 0
    alone = KernelRegressor(gamma=0.5, alpha=0.1, solver="pcg", tol=1e-12, max_iter=500)
    alone.fit(X[kept], Y[kept], sample_weight=w[kept])
    np.testing.assert_allclose(model.predict(X), alone.predict(X), rtol=0, atol=1e-8)


def test_pcg_float32_products_on_float64_data():
    """kernel_precision="float32": float32 kernel values, float64 CG; the model is the
    float64 one to float32's accuracy."""
    X, Y = _load("breast_cancer")
    ref = KernelRegressor(gamma=0.05, alpha=0.1, solver="direct").fit(X, Y)
    model = KernelRegressor(gamma=0.05, alpha=0.1, solver="pcg", kernel_precision="float32")
    model.fit(X, Y)
    assert model.dual_coef_.dtype == np.float64
    assert np.linalg.norm(model.predict(X) - ref.predict(X)) <= 1e-3 * np.linalg.norm(
        ref.predict(X)
    )


def test_pcg_classifier_matches_direct_on_digits():
    X, Y = _load("digits")
    y = Y.argmax(axis=1)
    direct = KernelClassifier(gamma=0.05, alpha=0.01, solver="direct").fit(X, y)
    pcg = KernelClassifier(gamma=0.05, alpha=0.01, solver="pcg", tol=1e-8).fit(X, y)
    np.testing.assert_allclose(pcg.decision_function(X), direct.decision_function(X), atol=1e-6)
    assert pcg.solver_info_["n_centers"] == len(X)


def test_pcg_warm_start_continues_the_previous_fit(monkeypatch):
    """A fit stopped at max_iter, continued with warm_start, starts from the previous
    coefficients (its initial objective is the previous fit's last) and ends where a cold
    fit ends, in fewer iterations than it (CG restarts its Krylov space, so the two fits
    together take about as many as the cold one)."""
    from gramfree.solvers import kernel_pcg

    monkeypatch.setattr(kernel_pcg, "SUBSAMPLE", 50)  # below the rows: CG takes iterations
    X, Y = _load("diabetes")
    params = dict(gamma=0.05, alpha=1e-3, solver="pcg", tol=1e-9, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KernelRegressor(max_iter=100, warm_start=True, **params).fit(X, Y)
    assert model.n_iter_ == 100 and not model.solver_info_["warm_start"]
    last = model.loss_curve_[-1]
    model.set_params(max_iter=300).fit(X, Y)
    assert model.solver_info_["objective_initial"] == pytest.approx(last, rel=1e-9)
    cold = KernelRegressor(max_iter=300, **params).fit(X, Y)
    assert model.solver_info_["warm_start"] and model.n_iter_ < cold.n_iter_
    np.testing.assert_allclose(model.predict(X), cold.predict(X), atol=1e-7)


def test_pcg_early_stopping_scores_its_iterations():
    X, Y = _load("digits")
    y = Y.argmax(axis=1)
    model = KernelClassifier(
        gamma=0.05,
        alpha=1e-4,
        solver="pcg",
        early_stopping=True,
        n_iter_no_change=2,
        random_state=0,
    ).fit(X, y)
    assert len(model.validation_scores_) >= 1
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_centers=50), "n_centers: solver='pcg' uses every training point"),
        (dict(centers=np.arange(10)), "centers: solver='pcg' uses every training point"),
        (dict(loss="logistic"), "solver='pcg' fits the square loss only"),
    ],
)
def test_pcg_refuses_what_it_cannot_do(params, message):
    X, Y = _load("digits")
    y = Y.argmax(axis=1)
    with pytest.raises(ValueError, match=message):
        KernelClassifier(solver="pcg", **params).fit(X, y)


def test_pcg_alpha_zero_on_distinct_points_interpolates():
    """alpha = 0: no ridge, the diagonal's floor keeps the preconditioner defined; with a
    narrow kernel K is well conditioned and CG interpolates the targets."""
    X, Y = _load("breast_cancer")
    p = Problem(X, Y, Gaussian(1.0), 0.0, None, None)
    res = _fit(p, tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(rbf_kernel(X, gamma=1.0) @ res.coef, Y, atol=1e-8)


def test_eigenpro_stopped_by_its_budget_names_pcg():
    """EigenPro on all points that runs out of epochs says which solver reaches the same
    model; EigenPro 3 (fixed centres, a different model) does not."""
    X, Y = _load("digits")
    y = Y.argmax(axis=1)
    with pytest.warns(ConvergenceWarning, match="solver='pcg'"):
        KernelClassifier(gamma=0.05, alpha=1e-4, solver="eigenpro", max_iter=2).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KernelClassifier(
            gamma=0.05, alpha=1e-4, solver="eigenpro", n_centers=100, max_iter=2, random_state=0
        ).fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert messages and not any("pcg" in m for m in messages)


@pytest.mark.parametrize("name,gamma", CASES[:2], ids=IDS[:2])
def test_pcg_recomputing_the_subsample_block_gives_the_stored_iterates(name, gamma, monkeypatch):
    """Beyond STORE_BYTES the two preconditioner products are recomputed by the fused
    operator each iteration: the same iterates as with K(X, S) stored."""
    from gramfree.solvers import kernel_pcg

    p = _problem(name, gamma)
    stored = _fit(p, tol=1e-10)
    monkeypatch.setattr(kernel_pcg, "STORE_BYTES", 0)
    recomputed = _fit(p, tol=1e-10)
    assert recomputed.n_iter == stored.n_iter
    np.testing.assert_allclose(recomputed.loss_curve, stored.loss_curve, rtol=1e-9)
    np.testing.assert_allclose(
        recomputed.coef, stored.coef, rtol=0, atol=1e-9 * np.abs(stored.coef).max()
    )

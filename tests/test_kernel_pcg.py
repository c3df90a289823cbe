"""solver="pcg": exact kernel ridge on every training row by preconditioned CG (Nystrom +
diagonal preconditioner), on real data with narrow and wide kernels, against the exact
factorization (numpy/scipy in float64) and scikit-learn's KernelRidge."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler
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
    coefficients (its initial objective is what the previous fit returned: its best
    iterate, which is the last one or, where CG's last steps raised the ridge objective,
    an earlier one, as rounding decides: the oldest supported numpy's did on this data)
    and ends where a cold fit ends, in fewer iterations than it (CG restarts its Krylov
    space, so the two fits together take about as many as the cold one)."""
    from gramfree.solvers import kernel_pcg

    monkeypatch.setattr(kernel_pcg, "SUBSAMPLE", 50)  # below the rows: CG takes iterations
    X, Y = _load("diabetes")
    params = dict(gamma=0.05, alpha=1e-3, solver="pcg", tol=1e-9, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KernelRegressor(max_iter=100, warm_start=True, **params).fit(X, Y)
    assert model.n_iter_ == 100 and not model.solver_info_["warm_start"]
    returned = model.solver_info_["objective"]
    assert returned == pytest.approx(min(model.loss_curve_), rel=1e-12)
    model.set_params(max_iter=300).fit(X, Y)
    assert model.solver_info_["objective_initial"] == pytest.approx(returned, rel=1e-9)
    cold = KernelRegressor(max_iter=300, **params).fit(X, Y)
    assert model.solver_info_["warm_start"] and model.n_iter_ < cold.n_iter_
    np.testing.assert_allclose(model.predict(X), cold.predict(X), atol=1e-7)


def test_pcg_early_stopping_scores_its_iterations(monkeypatch):
    from gramfree.solvers import kernel_pcg

    monkeypatch.setattr(kernel_pcg, "SUBSAMPLE", 50)  # below the rows: CG takes iterations
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
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ >= 3
    assert model.best_validation_score_ == max(scores)
    assert model.score(X, y) > 0.9


def test_pcg_float32_products_never_claim_a_residual_they_did_not_reach(monkeypatch):
    """The running residual drifts from the true one with float32 kernel values (by 80x
    before the check). The check takes float64 kernel values and sums where float32 ones
    could reach tol (before, its float32 sums stalled at 7.5e-5 where tol was 1e-6): a fit
    that says it converged has the true float64 residual (numpy) at tol, and every fit the
    float64 optimum's objective; one that cannot reach tol stops with a warning naming the
    precision instead of running on to max_iter."""
    from gramfree.solvers import kernel_pcg

    monkeypatch.setattr(kernel_pcg, "SUBSAMPLE", 100)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = 2.0 * y - 1.0
    K = rbf_kernel(X, gamma=0.01)

    def objective(c, alpha):
        f = K @ c
        return float(np.sum((f - y) ** 2) + alpha * c @ f)

    for alpha, tol in [(1e-1, 1e-4), (1e-2, 1e-4), (1e-2, 1e-6), (1e-3, 1e-7)]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = KernelRegressor(
                gamma=0.01,
                alpha=alpha,
                solver="pcg",
                tol=tol,
                max_iter=500,
                kernel_precision="float32",
                random_state=0,
            ).fit(X, y)
        c = model.dual_coef_[:, 0]
        info = model.solver_info_
        true = np.linalg.norm(y - K @ c - alpha * c) / np.linalg.norm(y)
        if info["stagnated"]:  # float32 products cannot refine further: said, truly
            assert any("rounding" in str(w.message) for w in caught)
            assert info["relative_residual"] == pytest.approx(true, rel=1e-3)
        else:  # the check's float64 kernel values and sums: the float64 system's residual
            assert not caught, [str(w.message) for w in caught]
            assert info["residual_checks"] >= 1 and true <= 2 * tol
        best = np.linalg.solve(K + alpha * np.eye(len(y)), y)
        assert objective(c, alpha) == pytest.approx(objective(best, alpha), rel=1e-5)
    stalls = KernelRegressor(
        gamma=0.01,
        alpha=1e-2,
        solver="pcg",
        tol=1e-15,
        max_iter=500,
        kernel_precision="float32",
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="rounding"):
        stalls.fit(X, y)
    assert stalls.solver_info_["stagnated"] and stalls.n_iter_ < 500


def test_pcg_stopped_short_returns_its_best_iterate():
    """CG lowers the system's energy, not the ridge objective: stopped after a few
    iterations with a tiny alpha, the model is the iterate of lowest objective (computed
    here in numpy), never worse than the zero model it starts from."""
    X, Y = _load("diabetes")
    p = Problem(X, Y, Gaussian(0.05), 1e-9, None, None)
    res = _fit(p, tol=1e-12, max_iter=15)
    assert not res.converged
    got = objective(p, p.X, res.coef)
    assert got == pytest.approx(res.info["objective"], rel=1e-8)
    assert got == pytest.approx(min([res.info["objective_initial"], *res.loss_curve]), rel=1e-8)
    assert res.info["returned_best_iterate"] and got < res.loss_curve[-1]


@pytest.mark.parametrize("name,gamma", CASES, ids=IDS)
@pytest.mark.parametrize("alpha", [1e-1, 1e-6])
def test_pcg_preconditioner_is_positive_definite(name, gamma, alpha):
    """The preconditioner, built densely from what the solver factors, is symmetric
    positive definite (CG needs it) even with a wide kernel's ill-conditioned K_SS and a
    tiny alpha, and it is the inverse of D + K_XS K_SS^-1 K_SX."""
    from gramfree.solvers.kernel_pcg import _preconditioner

    p = _problem(name, gamma, alpha=alpha)
    S = np.sort(np.random.default_rng(0).choice(len(p.X), SUBSAMPLE, replace=False))
    d, L, LG, _, F = _preconditioner(p, np.ascontiguousarray(p.X[S]), np.ones(len(p.X)))
    P = np.diag(1 / d) - (F / d[:, None]) @ np.linalg.solve(LG @ LG.T, (F / d[:, None]).T)
    assert np.allclose(P, P.T, atol=1e-12 * np.abs(P).max())
    assert np.linalg.eigvalsh(P).min() > 0
    C = rbf_kernel(p.X, p.X[S], gamma=gamma)
    approx = np.diag(d) + C @ np.linalg.solve(L @ L.T, C.T)
    assert np.linalg.norm(P @ approx - np.eye(len(d))) <= 1e-6 * np.sqrt(len(d))


def test_auto_after_a_pcg_fit_does_not_continue_it():
    """warm_start with solver="auto" continues an iterative Nystrom or EigenPro fit; after
    an exact solver (pcg) it chooses afresh, and takes the centres it is given."""
    X, Y = _load("digits")
    y = Y.argmax(axis=1)
    model = KernelClassifier(gamma=0.05, alpha=1e-3, solver="pcg", warm_start=True).fit(X, y)
    model.set_params(solver="auto", centers=np.arange(100)).fit(X, y)
    assert model.solver_ != "pcg" and model.centers_.shape[0] == 100


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


@pytest.mark.parametrize("stored", [True, False], ids=["F-stored", "F-recomputed"])
def test_auto_s_memory_estimate_covers_what_pcg_allocates(monkeypatch, stored):
    """auto admits pcg where CostModel.pcg's bytes fit in memory: the estimate must not
    fall below the solver's own allocations (numpy's, traced), F stored or not."""
    import tracemalloc

    from gramfree.solvers import auto, kernel_pcg

    if not stored:
        monkeypatch.setattr(kernel_pcg, "STORE_BYTES", 0)
        monkeypatch.setattr(auto, "STORE_BYTES", 0)
    rng = np.random.default_rng(0)
    n, d, t = 3000, 8, 5
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, t))
    p = Problem(X, Y, Gaussian(0.1), 1e-2, None, None)
    tracemalloc.start()
    try:
        _fit(p, tol=1e-8, max_iter=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = auto.CostModel(n, d, t, np.dtype(np.float64)).pcg()[1]
    assert peak <= estimate, (peak, estimate)


@pytest.mark.parametrize("max_iter", [100, 300])
def test_float32_products_stopped_short_report_the_model_s_objective(monkeypatch, max_iter):
    """Stopped at max_iter with float32 products, the reported objective (and the choice
    between the last and the best iterate) came from the recursion's K c, which drifts: a
    review found it 10-13% below the returned model's (breast cancer, gamma 0.1/d, alpha
    1e-9 n). Now an exact pass measures both: solver_info_'s objective is the model's, in
    numpy float64, and no iterate it could have returned is better."""
    from gramfree.solvers import kernel_pcg

    monkeypatch.setattr(kernel_pcg, "SUBSAMPLE", 100)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:455]
    y = (2.0 * y - 1.0)[:455]
    n, d = X.shape
    gamma, alpha = 0.1 / d, 1e-9 * n
    model = KernelRegressor(
        solver="pcg",
        gamma=gamma,
        alpha=alpha,
        kernel_precision="float32",
        tol=1e-6,
        max_iter=max_iter,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    K = rbf_kernel(X, gamma=gamma)
    c = np.ravel(model.dual_coef_).astype(np.float64)
    f = K @ c
    true = (float(np.sum((f - y) ** 2)) + alpha * float(c @ f)) / n
    assert model.solver_info_["objective"] == pytest.approx(true, rel=1e-6)


def test_no_progress_from_the_start_is_said_as_such():
    """alpha=0 with repeated rows of other targets (K singular, the system inconsistent):
    CG ran away from its start at the first step and the zero model came back behind
    "increase max_iter", which no max_iter helps (a review: cps1988, objective 1.02 ->
    6478 and rising). The warning now says what happened and what does help; the
    returned model is the start, whose objective is the lowest seen."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(y), 100, replace=False)
    Xd, yd = np.vstack([X, X[pick]]), np.r_[y, y[pick] + rng.normal(size=100)]
    with pytest.warns(ConvergenceWarning, match=r"pcg: no iteration improved on the start") as w:
        model = KernelRegressor(gamma=0.1, alpha=0.0, solver="pcg").fit(Xd, yd)
    assert not any("increase max_iter" in str(x.message) for x in w)
    assert model.solver_info_["no_progress"]
    assert min(model.loss_curve_) > model.solver_info_["objective"]
    np.testing.assert_array_equal(model.dual_coef_, 0.0)
    # A fit that improved on its start is not said to have made none.
    fine = KernelRegressor(gamma=0.1, alpha=1e-3, solver="pcg").fit(Xd, yd)
    assert not fine.solver_info_["no_progress"]

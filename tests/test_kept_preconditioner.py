"""A logistic fit's Newton steps keeping the last preconditioner
(gramfree.solvers._kept_preconditioner): the rule on given costs and iteration counts,
the cost model against its closed form, and fits on real data (every point a centre,
where builds dominate; narrow and wide kernels) that keep it reaching the optimum the
fits rebuilding at every step reach."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import gramfree.solvers._kept_preconditioner as kept_module
from gramfree import KernelClassifier
from gramfree.solvers._kept_preconditioner import (
    FLOPS_PER_BYTE,
    KeptPreconditioner,
    build_cost,
    iteration_cost,
)

PRECOND = object()  # stands for a preconditioner: the rule never looks inside


def test_first_build_of_a_cold_fit_is_never_kept():
    kept = KeptPreconditioner(build=1e9)
    assert kept.keep(1.0) is None
    kept.built(PRECOND, keepable=False)
    kept.ran(1, 1.0)
    assert kept.keep(1.0) is None  # however cheap CG is
    kept.built(PRECOND)
    kept.ran(1, 1.0)
    assert kept.keep(1.0) is PRECOND
    assert (kept.builds, kept.kept_steps) == (2, 1)


@pytest.mark.parametrize("iterations", [1, 5, 20])
def test_tries_only_where_a_build_costs_more_than_the_last_cg_run(iterations):
    build, iteration = 100.0, 10.0
    kept = KeptPreconditioner(build=build)
    kept.built(PRECOND)
    kept.ran(iterations, iteration)
    got = kept.keep(iteration)
    assert (got is PRECOND) == (build > iterations * iteration)


def test_a_costly_kept_step_rebuilds_and_the_tries_back_off():
    """After a kept step whose CG took more than a build's worth of extra iterations:
    a rebuild, then tries after 1, 2, 4 fresh steps."""
    kept = KeptPreconditioner(build=100.0)
    kept.built(PRECOND)
    kept.ran(2, 1.0)  # fresh: 2 iterations
    pattern = []
    for _ in range(14):
        precond = kept.keep(1.0)
        if precond is None:
            kept.built(PRECOND)
            pattern.append("b")
            kept.ran(2, 1.0)
        else:
            pattern.append("k")
            kept.ran(2 + 101, 1.0)  # 101 extra iterations of cost 1 > a build of 100
    assert "".join(pattern) == "kbkbbkbbbbkbbb"


def test_a_cheap_kept_step_keeps_keeping():
    kept = KeptPreconditioner(build=100.0)
    kept.built(PRECOND)
    kept.ran(2, 1.0)
    for _ in range(10):
        assert kept.keep(1.0) is PRECOND
        kept.ran(2 + 50, 1.0)  # 50 extra iterations: less than a build, and the run too
    assert kept.kept_steps == 10 and kept.builds == 1


def test_disabled(monkeypatch):
    monkeypatch.setattr(kept_module, "KEEP_PRECONDITIONER", False)
    kept = KeptPreconditioner(build=1e12)
    kept.built(PRECOND)
    kept.ran(1, 1.0)
    assert kept.keep(1.0) is None
    assert KeptPreconditioner(build=1e12, enabled=False).enabled is False


@pytest.mark.parametrize("n, M, k", [(569, 569, 1), (4826, 1000, 6), (3450, 3450, 1)])
def test_costs_closed_form(n, M, k):
    B = FLOPS_PER_BYTE
    rates = {"dense": 1e11, "engine_float64": 5e10}
    assert build_cost(n, M, 30, gram=False, stored=True, rates=rates) == pytest.approx(
        2 / 3 * M**3 + B * 80 * M**2
    )
    assert build_cost(n, M, 30, gram=True, stored=True, rates=rates) == pytest.approx(
        2 / 3 * M**3 + B * 80 * M**2 + n * M**2 + 2 * M**3
    )
    for size in (8, 4):  # float64 and float32 storage
        assert iteration_cost(n, M, k, 30, stored_bytes=size, rates=rates) == pytest.approx(
            B * (24 * M**2 + 2 * size * n * M) + 2 * (4 * n * M * k + 6 * M**2 * k)
        )
    # Recomputing: two passes of 2 d + 2 k + 8 flops per entry at the engine's rate.
    assert iteration_cost(n, M, k, 30, stored_bytes=0, rates=rates) == pytest.approx(
        B * 24 * M**2 + 2 * (4 * n * M * k + 6 * M**2 * k) + 2 * n * M * (68 + 2 * k) * 2
    )
    assert build_cost(n, 2 * M, 30, gram=False, stored=True, rates=rates) > 4 * build_cost(
        n, M, 30, gram=False, stored=True, rates=rates
    )


def _data(loader, n=None):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return (X, y) if n is None else (X[:n], y[:n])


def _fit(X, y, gamma, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return KernelClassifier(
            gamma=gamma, alpha=alpha, loss="logistic", tol=1e-8, max_iter=100, random_state=0
        ).fit(X, y)


@pytest.mark.parametrize(
    "loader, n, gamma",
    # (digits at 600 rows and gamma 0.05 keeps it on no step at this alpha: CG's runs
    # there are as long as a build)
    [
        (load_breast_cancer, None, 0.003),  # wide: a steep spectrum
        (load_breast_cancer, None, 0.3),  # narrow: a flat one
        (load_digits, 600, 0.002),
        (load_digits, 1200, 0.05),
    ],
)
def test_fits_keeping_it_reach_the_same_optimum(loader, n, gamma, monkeypatch):
    """Every point a centre (the default at this size): builds cost several CG
    iterations, so the fit keeps the preconditioner on some steps, and reaches the
    objective and the probabilities of the fit that rebuilds at every step."""
    X, y = _data(loader, n)
    fits = {}
    for keep in (True, False):
        monkeypatch.setattr(kept_module, "KEEP_PRECONDITIONER", keep)
        fits[keep] = _fit(X, y, gamma, 1e-3)
    on, off = fits[True].solver_info_, fits[False].solver_info_
    assert on["n_centers"] == X.shape[0]
    assert on["preconditioner_kept"] > 0 and off["preconditioner_kept"] == 0
    assert off["preconditioner_builds"] >= fits[False].n_iter_
    assert on["preconditioner_builds"] < off["preconditioner_builds"]
    assert on["objective"] == pytest.approx(off["objective"], rel=1e-8)
    np.testing.assert_allclose(fits[True].predict_proba(X), fits[False].predict_proba(X), atol=1e-5)
    assert np.all(np.diff(fits[True].loss_curve_) < 0)


def _always_try(monkeypatch):
    """A build of infinite cost: every step that may keep the preconditioner tries to,
    and no kept run counts as costly (the wiring's guards alone decide)."""
    import gramfree.solvers.logistic as solver

    monkeypatch.setattr(solver, "build_cost", lambda *args, **kwargs: float("inf"))


@pytest.mark.parametrize("gamma", [0.003, 0.3])
def test_forced_keeping_never_on_the_first_nor_the_last_step(gamma, monkeypatch):
    """Keeping it whenever allowed: the first step of a fit from zero builds, the step
    that ends the fit had a fresh one, and the optimum is the fresh fits' (breast
    cancer, every point a centre, wide and narrow kernels)."""
    X, y = _data(load_breast_cancer)
    monkeypatch.setattr(kept_module, "KEEP_PRECONDITIONER", False)
    fresh = _fit(X, y, gamma, 1e-3)
    monkeypatch.setattr(kept_module, "KEEP_PRECONDITIONER", True)
    _always_try(monkeypatch)
    forced = _fit(X, y, gamma, 1e-3)
    runs = forced.solver_info_["preconditioner_kept_runs"]
    assert runs[0] is False and runs[-1] is False and sum(runs) >= 3
    assert len(runs) == len(forced.solver_info_["hessian_rows"])
    assert forced.solver_info_["objective"] == pytest.approx(
        fresh.solver_info_["objective"], rel=1e-8
    )
    np.testing.assert_allclose(forced.predict_proba(X), fresh.predict_proba(X), atol=1e-5)


def test_forced_keeping_does_not_end_an_unpenalised_fit_early(monkeypatch):
    """alpha=0 on separated classes (iris setosa against versicolor): a stale
    preconditioner's CG gave no descent direction after 3 steps and the fit reported
    convergence at objective 0.028; now the step is taken again with a fresh one and
    the fit warns that the classes are separated, as the fit building at every step."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    _always_try(monkeypatch)
    with pytest.warns(ConvergenceWarning, match="^alpha=0 with loss='logistic': the training"):
        clf = KernelClassifier(loss="logistic", alpha=0.0).fit(X[y < 2], y[y < 2])
    assert clf.solver_info_["objective"] < 1e-3
    assert any(clf.solver_info_["preconditioner_kept_runs"])


def test_the_centres_fallback_of_a_failed_gram_is_not_kept(monkeypatch):
    """Where the curvature's Gram cannot be factored the step falls back to the centres'
    preconditioner; that one is never kept, so the next step tries the Gram again."""
    import gramfree.solvers.logistic as solver
    from gramfree.kernels import get_kernel
    from gramfree.solvers._common import Problem

    def fails(*args, **kwargs):
        raise np.linalg.LinAlgError("whitening amplified rounding")

    monkeypatch.setattr(solver._Preconditioner, "from_gram", fails)
    _always_try(monkeypatch)
    X, y = _data(load_breast_cancer)
    idx = np.arange(0, len(y), 3)
    problem = Problem(X, y[:, None].astype(float), get_kernel("rbf", gamma=0.05), 0.01, None, None)
    result = solver.solve_logistic(
        problem, np.ascontiguousarray(X[idx]), idx, max_iter=100, tol=1e-8, preconditioner="gram"
    )
    info = result.info
    assert result.converged and info["preconditioner"] == "gram"
    assert info["preconditioner_kept"] == 0
    assert info["gram_failures"] == info["preconditioner_builds"] == len(info["hessian_rows"])

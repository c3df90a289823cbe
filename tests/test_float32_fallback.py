"""Float32 data whose products cannot carry the fit (a small alpha, a wide kernel): the
iterative solvers go to float64 products instead of returning noise. Reference: the same
solver on the same (float32-rounded) data cast to float64, and the exact Nystrom
solution on the same centres; the models are compared in float64 (their own float32
predictions cancel there, which the fit warns about separately)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reference import rank_deficient_poly_ridge
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler

from gramfree import KernelClassifier
from gramfree.kernels import Gaussian
from gramfree.solvers import Problem, objective
from gramfree.solvers.nystrom_direct import solve_nystrom_direct
from gramfree.solvers.nystrom_pcg import solve_nystrom_pcg


@pytest.fixture(scope="module")
def digits32():
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:1000] / 16.0, dtype=np.float32), y[:1000]


@pytest.mark.parametrize("gamma, alpha", [(0.1, 1e-6), (0.003, 1e-8)])
def test_pcg_on_float32_data_with_small_alpha_solves_in_float64_products(digits32, gamma, alpha):
    """pcg returned the zero model (every label 0) with only "reached max_iter" at alpha
    1e-8, 13% of the labels at 1e-6. Its solve now reaches the objective of the same
    data fitted as float64 (solver_info_, from the float64 state, before the float32
    model's coefficients are stored), and the float32 model's own cancellation (its
    coefficients reach 1e5 to 1e7) is warned about."""
    X32, y = digits32
    params = dict(solver="pcg", gamma=gamma / 64, alpha=alpha, random_state=0)
    with pytest.warns(RuntimeWarning, match="float32 data: the fitted coefficients"):
        model = KernelClassifier(**params).fit(X32, y)
    reference = KernelClassifier(**params).fit(X32.astype(np.float64), y)
    ours, theirs = model.solver_info_["objective"], reference.solver_info_["objective"]
    assert abs(ours - theirs) <= 1e-6 * theirs
    assert model.solver_info_["products"] == "float64"


def test_nystrom_pcg_on_float32_data_fits_the_float64_model(digits32):
    """nystrom-pcg returned the zero model at a common alpha (300 centres, gamma 0.1/d,
    alpha 1e-3: every label 0), behind a warning. Its model's objective, computed in
    float64 from its float32 coefficients, is now the float64 fit's to 1e-5."""
    X32, y = digits32
    gamma, alpha = 0.1 / 64, 1e-3
    params = dict(solver="nystrom-pcg", n_centers=300, gamma=gamma, alpha=alpha, random_state=0)
    model = KernelClassifier(**params).fit(X32, y)
    reference = KernelClassifier(**params).fit(X32.astype(np.float64), y)

    def true_objective(m):
        centres, coef = m.centers_.astype(np.float64), m.dual_coef_.astype(np.float64)
        f = rbf_kernel(X32.astype(np.float64), centres, gamma=gamma) @ coef
        penalty = np.sum(coef * (rbf_kernel(centres, gamma=gamma) @ coef))
        return (np.sum((f - np.eye(10)[y]) ** 2) + alpha * penalty) / len(y)

    ours, theirs = true_objective(model), true_objective(reference)
    assert abs(ours - theirs) <= 1e-5 * theirs
    assert model.score(X32, y) == pytest.approx(reference.score(X32, y), abs=0.005)


def test_float32_products_are_kept_where_they_resolve_the_fit(digits32):
    """The switch is not taken where float32 products carry CG (a moderate alpha)."""
    X32, y = digits32
    model = KernelClassifier(solver="pcg", gamma=1.0 / 64, alpha=1e-3, random_state=0)
    model.fit(X32, y)
    assert model.solver_info_["products"] == "float32"
    assert model.solver_info_["rounding_ratio"] < 1.0


@pytest.mark.parametrize("alpha", [1e-3, 1e-4])
def test_float32_refinement_reaches_the_nystrom_optimum_with_a_wide_kernel(alpha):
    """The refinement's penalty came from the float32 preconditioner's jittered factor of
    K_MM: with a wide kernel (gamma 0.003/d) it stopped 1-5% above the optimum on breast
    cancer while claiming tol. Reference: nystrom-direct on the same centres, float64."""
    X, y = load_breast_cancer(return_X_y=True)
    X32 = np.ascontiguousarray(StandardScaler().fit_transform(X), dtype=np.float32)
    X64 = X32.astype(np.float64)
    Y = (2.0 * y - 1.0)[:, None]
    centres = np.sort(np.random.default_rng(0).choice(len(X), 300, replace=False))
    kernel = Gaussian(0.003 / X.shape[1])
    exact = Problem(X64, Y, kernel, alpha, None, None)
    optimum = objective(exact, X64[centres], solve_nystrom_direct(exact, X64[centres]).coef)
    problem = Problem(X32, Y.astype(np.float32), kernel, alpha, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = solve_nystrom_pcg(problem, X32[centres], max_iter=100, tol=1e-6)
    reached = objective(exact, X64[centres], fit.coef.astype(np.float64))
    assert (reached - optimum) / optimum < 1e-3


@pytest.mark.parametrize("alpha_per_sample", [1e-3, 1.0])
def test_nystrom_pcg_float32_products_on_a_wide_kernel_need_no_refit(alpha_per_sample):
    """kernel_precision="float32" on float64 data with a wide kernel: K_MM from float32
    kernel values made the preconditioner's penalty differ from the refinement's float64
    one by alpha times their rounding, so every fit of a review's grid (digits, 400
    centres, gamma 0.003/d, alpha 1e-9 n to n) was flagged stagnated and refitted with
    float64 products. Now one fit reaches the float64 fit's objective, no refit."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X = X[:, X.std(axis=0) > 0]
    n, d = X.shape
    Y = np.where(y[:, None] == np.arange(10), 1.0, -1.0)
    centres = np.sort(np.random.default_rng(2).choice(n, 400, replace=False))
    problem = Problem(X, Y, Gaussian(0.003 / d), alpha_per_sample * n, None, None)
    reference = solve_nystrom_pcg(problem, X[centres], max_iter=100, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stagnation warning either
        result = solve_nystrom_pcg(
            Problem(
                X, Y, Gaussian(0.003 / d), alpha_per_sample * n, None, None, kernel_dtype=np.float32
            ),
            X[centres],
            max_iter=100,
            tol=1e-6,
        )
    assert not result.info.get("products_retry") and not result.info.get("precond_retry")
    assert not result.info.get("stagnated"), result.info
    expected = objective(problem, X[centres], reference.coef)
    assert abs(objective(problem, X[centres], result.coef) - expected) <= 1e-6 * expected


@pytest.mark.parametrize("alpha_per_sample", [1.0, 1e-6])
def test_nystrom_pcg_retries_account_for_their_iterations(alpha_per_sample):
    """A retry's discarded fit: n_iter_ counts its iterations (the work done), loss_curve_
    is the returned fit's, and solver_info_["discarded_iterations"] is the difference (a
    review: n_iter_ 6 beside a loss curve of 2, and a losing retry's iterations missing)."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X = X[:, X.std(axis=0) > 0].astype(np.float32)
    n, d = X.shape
    centres = np.sort(np.random.default_rng(2).choice(n, 400, replace=False))
    from gramfree import KernelRegressor

    Y = np.where(y[:, None] == np.arange(10), 1.0, -1.0).astype(np.float32)
    model = KernelRegressor(
        solver="nystrom-pcg", centers=centres, gamma=0.003 / d, alpha=alpha_per_sample * n
    ).fit(X, Y)
    info = model.solver_info_
    assert info["precond_retry"]  # float32 factors of this wide kernel's K_MM: a retry
    assert info["discarded_iterations"] > 0
    assert model.n_iter_ == len(model.loss_curve_) + info["discarded_iterations"]


def test_convergence_warning_counts_the_iterations_it_ran():
    """The warning said "reached max_iter=133" for max_iter=100 (n_iter_ counts a discarded
    retry's iterations): it says how many ran and how many of them were discarded."""
    import re

    from gramfree.estimators._base import max_iter_message
    from gramfree.solvers._common import SolverResult

    result = SolverResult(
        np.zeros((1, 1)), np.zeros((1, 1)), 131, [0.0] * 100, False, {"discarded_iterations": 31}
    )
    text = max_iter_message("nystrom-pcg", 1e-4, result)
    found = re.search(r"\((\d+) iterations run, (\d+) of them in a fit it discarded\)", text)
    assert found and (int(found[1]), int(found[2])) == (131, 31), text
    # Float32 products kept (a refinement ran): float64 products are named, unless their
    # retry ran and lost (a review), and never for a fit on float64 products.
    assert "kernel_precision='float64'" not in text
    result.info["refinements"] = 3
    assert "kernel_precision='float64'" in max_iter_message("nystrom-pcg", 1e-4, result)
    result.info["products_retry"] = True
    assert "kernel_precision='float64'" not in max_iter_message("nystrom-pcg", 1e-4, result)


def test_float64_products_follow_float64_factors_that_did_not_converge():
    """Digits, 300 centres, a wide kernel, one thread: float32 products stalled, and the
    float64 factors' retry ran out of iterations without stalling, which ended the chain:
    "reached max_iter" after 131 iterations, 31 discarded (a review: wine 5% off the
    float64 model, which converges in 35). The float64 products' retry now follows, and
    converges; n_iter_ counts every run."""
    from sklearn.exceptions import ConvergenceWarning

    from gramfree import KernelRegressor

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    n = X.shape[0]
    params = dict(solver="nystrom-pcg", n_centers=300, gamma=0.003 / 64, alpha=1e-6 * n)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = KernelRegressor(max_iter=100, random_state=0, n_jobs=1, **params).fit(X, y)
    info = model.solver_info_
    assert info["precond_retry"] and info["products_retry"]
    assert info["relative_residual"] <= model.tol
    assert model.n_iter_ == len(model.loss_curve_) + info["discarded_iterations"]


def test_a_converged_retry_replaces_a_stalled_fit_whatever_its_reported_objective():
    """A degree-2 polynomial kernel in 3 dimensions: K_MM of 25 centres has rank 10. At
    tol 1e-12, float32 CG (one thread) stalled with its coefficients grown into the null
    space (3644 against 0.0195), where they cancel in the float64 pass and report an
    objective 1.4e-7 below the optimum; both float64 retries converged (residuals 5e-12
    and 2e-22), and the stalled fit was kept on that objective: narrowed to float32, its
    predictions were 2% off exact kernel ridge (a review). A converged retry now wins."""
    from gramfree import KernelRegressor

    X, y, Xt, params, exact_at = rank_deficient_poly_ridge()
    exact = exact_at(Xt)
    model = KernelRegressor(**params).fit(X, y)
    info = model.solver_info_
    if info.get("precond_retry") or info.get("products_retry"):  # a retry ran: it converged
        assert info["relative_residual"] <= 1e-12
    assert np.abs(model.predict(Xt) - exact).max() <= 1e-5 * np.abs(exact).max()


def test_retry_choice_puts_convergence_before_the_objective():
    from gramfree.solvers._common import SolverResult
    from gramfree.solvers.nystrom_pcg import _better

    def fit(converged, objective):
        return SolverResult(
            np.zeros((1, 1)), np.zeros((1, 1)), 1, [], converged, {"objective": objective}
        )

    assert _better(fit(True, 1.0), 1.0, fit(False, 0.5))  # converged beats a lower stall
    assert not _better(fit(False, 0.5), 0.5, fit(True, 1.0))
    assert _better(fit(False, 0.5), 0.5, fit(False, 1.0))  # else the lower objective
    assert not _better(fit(True, 1.0), 1.0, fit(True, 0.5))

"""PCG under sample weights spanning more than ``WEIGHT_SPAN_PCG`` (1e7): in float64 the
conjugate gradients cannot resolve the lightest rows' part of the objective beside the
heaviest, and stopped far above the optimum while claiming tol. ``auto`` never takes PCG
there; an explicit ``nystrom-pcg`` or ``pcg`` fit now says so (a ConvergenceWarning naming
the exact solver), in memory and on dask. Real data (diabetes, breast cancer), against
the float64 optimum."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler

from gramfree import KernelRegressor
from gramfree.solvers.auto import WEIGHT_SPAN_PCG


def _data(loader, heavy: float, seed: int):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    w = np.ones(len(y))
    w[np.random.default_rng(seed).choice(len(y), 5, replace=False)] = heavy
    return X, y.astype(np.float64), w


def _nystrom_objective(X, y, w, C, coef, gamma, alpha):
    return float(
        np.sum(w * (rbf_kernel(X, C, gamma=gamma) @ coef - y) ** 2)
        + alpha * coef @ rbf_kernel(C, gamma=gamma) @ coef
    )


def test_nystrom_pcg_warns_beyond_its_span_and_the_one_pass_solve_is_exact():
    """Diabetes, five rows at 1e12, 60 centres, gamma 0.01/d: CG claimed tol at 722
    times the optimum's objective, silently; its recursion's objective had gone to 0."""
    X, y, w = _data(load_diabetes, 1e12, seed=1)
    gamma, alpha = 0.01 / X.shape[1], 1e-3
    pcg = KernelRegressor(
        solver="nystrom-pcg", gamma=gamma, alpha=alpha, n_centers=60, random_state=1
    )
    with pytest.warns(ConvergenceWarning, match="solver='nystrom-direct'") as record:
        pcg.fit(X, y, sample_weight=w)
    assert any("span 1e+12" in str(r.message) for r in record)
    # The advice holds: the one-pass solve on the same centres reaches their optimum.
    exact = KernelRegressor(solver="nystrom-direct", gamma=gamma, alpha=alpha, centers=pcg.centers_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact.fit(X, y, sample_weight=w)
    C = np.asarray(pcg.centers_, dtype=np.float64)
    best = _nystrom_objective(X, y, w, C, exact.dual_coef_.ravel(), gamma, alpha)
    assert _nystrom_objective(X, y, w, C, pcg.dual_coef_.ravel(), gamma, alpha) > best
    S, U = np.linalg.eigh(rbf_kernel(C, gamma=gamma))  # the optimum, independently
    keep = S > 1e-13 * S.max()
    F = rbf_kernel(X, C, gamma=gamma) @ (U[:, keep] / np.sqrt(S[keep]))
    root = np.sqrt(w)
    A = np.vstack([root[:, None] * F, np.sqrt(alpha) * np.eye(F.shape[1])])
    beta = np.linalg.lstsq(A, np.r_[root * y, np.zeros(F.shape[1])], rcond=None)[0]
    optimum = float(np.sum(w * (F @ beta - y) ** 2) + alpha * beta @ beta)
    assert best / optimum < 1 + 1e-6


def test_pcg_on_all_points_warns_beyond_its_span():
    """Breast cancer, five rows at 1e12, gamma 1/d: PCG on all points claimed tol at 1.04
    times direct's objective, silently."""
    X, y, w = _data(load_breast_cancer, 1e12, seed=0)
    model = KernelRegressor(solver="pcg", gamma=1.0 / X.shape[1], alpha=1e-3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="solver='direct'"):
        model.fit(X, y, sample_weight=w)


@pytest.mark.parametrize("solver", ["nystrom-pcg", "pcg"])
def test_spans_up_to_the_bound_fit_without_the_warning(solver):
    """At exactly WEIGHT_SPAN_PCG the fits are certified as before, and reach the
    optimum: the warning is for spans beyond it."""
    X, y, w = _data(load_diabetes, WEIGHT_SPAN_PCG, seed=1)
    gamma, alpha = 0.1 / X.shape[1], 1e-3
    kwargs = {"n_centers": 60} if solver == "nystrom-pcg" else {}
    model = KernelRegressor(solver=solver, gamma=gamma, alpha=alpha, random_state=1, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, sample_weight=w)
    C = np.asarray(model.centers_, dtype=np.float64)
    exact = KernelRegressor(solver="nystrom-direct", gamma=gamma, alpha=alpha, centers=C)
    exact.fit(X, y, sample_weight=w)
    ratio = _nystrom_objective(
        X, y, w, C, model.dual_coef_.ravel(), gamma, alpha
    ) / _nystrom_objective(X, y, w, C, exact.dual_coef_.ravel(), gamma, alpha)
    assert ratio < 1.001, ratio


def test_dask_nystrom_pcg_warns_beyond_its_span():
    da = pytest.importorskip("dask.array")
    X, y, w = _data(load_diabetes, 1e12, seed=1)
    model = KernelRegressor(
        solver="nystrom-pcg", gamma=0.01 / X.shape[1], alpha=1e-3, n_centers=60, random_state=1
    )
    with pytest.warns(ConvergenceWarning, match="solver='nystrom-direct'"):
        model.fit(*(da.from_array(a, chunks=100) for a in (X, y, w)))


def test_after_the_one_pass_falls_back_the_warning_does_not_advise_it_again():
    """Wine, five rows at 1e12, alpha 0: the one-pass solve failed its check and fell
    back to Nystrom-PCG, whose warning then advised solver='nystrom-direct', the solver
    just used (a review). It says what happened and advises direct instead."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    w = np.where(np.arange(len(y)) < 5, 1e12, 1.0)
    model = KernelRegressor(
        solver="nystrom-direct", gamma=0.01 / X.shape[1], alpha=0.0, n_centers=100, random_state=0
    )
    with pytest.warns(
        ConvergenceWarning, match="nystrom-direct fell back to nystrom-pcg"
    ) as record:
        model.fit(X, y.astype(np.float64), sample_weight=w)
    assert model.solver_info_["fallback"] == "nystrom-pcg"
    assert not any("solver='nystrom-direct'" in str(r.message) for r in record)


def test_spans_between_1e7_and_1e8_warn_too():
    """Five diabetes rows at 3e7, alpha 1e-8, 100 centres: Nystrom-PCG stopped 1.002-1.006
    times above the optimum, silently, under the earlier bound of 1e8 (a review)."""
    X, y, w = _data(load_diabetes, 3e7, seed=0)
    assert WEIGHT_SPAN_PCG < 3e7
    model = KernelRegressor(
        solver="nystrom-pcg", gamma=0.01 / X.shape[1], alpha=1e-8, n_centers=100, random_state=0
    )
    with pytest.warns(ConvergenceWarning, match="span 3e\\+07"):
        model.fit(X, y, sample_weight=w)


def test_the_span_advice_with_early_stopping_says_to_drop_it():
    """early_stopping keeps auto on Nystrom-PCG, and the advice named nystrom-direct,
    which refuses early_stopping (a review); it now says to fit without it."""
    X, y, w = _data(load_diabetes, 3e7, seed=0)
    w = np.ones(len(y))
    w[:5] = 3e7
    model = KernelRegressor(early_stopping=True, random_state=0)
    with pytest.warns(ConvergenceWarning, match="without early_stopping"):
        model.fit(X, y, sample_weight=w)
    assert model.solver_ == "nystrom-pcg"

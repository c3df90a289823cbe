"""The duality gap that confirms a logistic fit's end (``gramfree.solvers._logistic_gap``):
its value against ``J - D(q)`` evaluated term by term in float64 from the definitions, and
a bound of the distance to the dense Newton optimum (tests/test_logistic.py's reference)
at any point, zero at the optimum; and the solver's own gap, at the end of a fit near
separation and on a refused last step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from test_logistic import _reference

from gramfree import KernelClassifier
from gramfree.solvers._logistic_gap import duality_gap
from gramfree.solvers.logistic import _curvature


def _problem(seed, n, M, classes):
    rng = np.random.default_rng(seed)
    Knm = rng.normal(size=(n, M))
    C = rng.normal(size=(M, M))
    Kmm = C @ C.T / M + 0.1 * np.eye(M)
    codes = np.arange(n) % classes  # every class present
    rng.shuffle(codes)
    w = rng.uniform(0.2, 3.0, n)
    return Knm, Kmm, codes, w


def _objective_terms(Knm, Kmm, codes, classes, w, alpha, a, b):
    """``J``, the probabilities (n x 1 of class 1 for two classes) and the one-hot (or 0/1)
    targets, by the definitions."""
    F = Knm @ a + b
    if classes == 2:
        Y = codes[:, None].astype(float)
        loss = np.logaddexp(0.0, F[:, 0]) - Y[:, 0] * F[:, 0]
        P = expit(F)
    else:
        Y = np.eye(classes)[codes]
        loss = np.logaddexp.reduce(F, axis=1) - np.sum(Y * F, axis=1)
        P = softmax(F, axis=1)
    return float(w @ loss + 0.5 * alpha * np.sum(a * (Kmm @ a))), P, Y


def _gap_by_definition(Knm, Kmm, classes, w, alpha, a, P, Y, J):
    """``(J - D(q), rhs, curvature)`` with q the probabilities moved by the intercepts'
    Newton step to first order (module docstring there), D the dual's value from the
    entropies and the kernel's inverse, term by term; None where q leaves the simplex."""
    curvature = _curvature(P, w)
    g_b = (w[:, None] * (P - Y)).sum(axis=0)
    z = -(curvature.intercept_inverse() @ g_b)
    if classes == 2:
        q1 = P[:, 0] + P[:, 0] * (1.0 - P[:, 0]) * z[0]
        Q = np.column_stack([1.0 - q1, q1])
        residual = (q1 - Y[:, 0])[:, None]
    else:
        Q = P + P * z - P * (P @ z)[:, None]
        residual = Q - Y
    if Q.min() <= 0.0:
        return None, None, None
    entropy = -np.sum(Q * np.log(Q), axis=1)
    kernel_part = Knm.T @ (w[:, None] * residual)
    dual = (
        float(w @ entropy)
        - 0.5 * float(np.sum(kernel_part * np.linalg.solve(Kmm, kernel_part))) / alpha
    )
    rhs = kernel_part + alpha * Kmm @ a
    return J - dual, rhs, (curvature, g_b)


def _norm_bound(Kmm, alpha):
    L = np.linalg.cholesky(Kmm)
    return lambda r: float(np.sum(np.linalg.solve(L, r) ** 2)) / alpha


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(8, 40),
    M=st.integers(1, 6),
    classes=st.sampled_from([2, 3, 4]),
    log_alpha=st.floats(-4.0, 1.0),
    scale=st.floats(0.0, 0.5),
)
def test_gap_is_the_primal_minus_the_dual_and_bounds_the_distance_to_the_optimum(
    seed, n, M, classes, log_alpha, scale
):
    Knm, Kmm, codes, w = _problem(seed, n, M, classes)
    alpha = 10.0**log_alpha
    k = 1 if classes == 2 else classes
    rng = np.random.default_rng(seed + 1)
    a, b = scale * rng.normal(size=(M, k)), scale * rng.normal(size=k)
    J, P, Y = _objective_terms(Knm, Kmm, codes, classes, w, alpha, a, b)
    expected, rhs, parts = _gap_by_definition(Knm, Kmm, classes, w, alpha, a, P, Y, J)
    if expected is None:  # the intercepts' correction leaves the simplex: no bound
        curvature = _curvature(P, w)
        g_b = (w[:, None] * (P - Y)).sum(axis=0)
        rhs = Knm.T @ (w[:, None] * (P - Y))
        gap = duality_gap(rhs, _norm_bound(Kmm, alpha), P, w, curvature.intercept_inverse(), g_b)
        assert gap == np.inf
        return
    curvature, g_b = parts
    gap = duality_gap(rhs, _norm_bound(Kmm, alpha), P, w, curvature.intercept_inverse(), g_b)
    assert gap == pytest.approx(expected, rel=1e-7, abs=1e-9 * J)
    # Weak duality: no point's gap is below its distance to the optimum.
    optimum = _reference(Knm, Kmm, codes, classes, alpha, w, steps=60)
    J_star = _objective_terms(Knm, Kmm, codes, classes, w, alpha, optimum[:-1], optimum[-1])[0]
    assert gap >= (J - J_star) - 1e-9 * J


@pytest.mark.parametrize("classes", [2, 3])
def test_gap_vanishes_at_the_optimum(classes):
    """At the dense Newton optimum both of its terms are rounding: the gap cannot keep a
    converged fit from ending."""
    Knm, Kmm, codes, w = _problem(7, 60, 5, classes)
    alpha = 0.05
    optimum = _reference(Knm, Kmm, codes, classes, alpha, w, steps=60)
    a, b = optimum[:-1], optimum[-1]
    J, P, Y = _objective_terms(Knm, Kmm, codes, classes, w, alpha, a, b)
    curvature = _curvature(P, w)
    g_b = (w[:, None] * (P - Y)).sum(axis=0)
    rhs = Knm.T @ (w[:, None] * (P - Y)) + alpha * Kmm @ a
    gap = duality_gap(rhs, _norm_bound(Kmm, alpha), P, w, curvature.intercept_inverse(), g_b)
    assert 0.0 <= gap <= 1e-10 * J


def _cancer_fit(**params):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = KernelClassifier(
            loss="logistic", gamma=1.0, n_centers=80, random_state=1, **params
        ).fit(X, y)
    return model, [str(c.message) for c in caught if c.category is ConvergenceWarning]


def test_the_solvers_gap_bounds_its_distance_and_a_refused_last_step_says_so():
    """Breast cancer near separation (80 centres, gamma 30 / d, alpha 1e-6): step 18
    passes the end tests 3.7e-3 above the optimum. With max_iter 18 the gap refuses
    that end and the warning gives its bound, which holds against the optimum the
    full fit certifies (to 1e-13): the solver's own right-hand side, on saturated
    probabilities. Without a penalty no gap is formed."""
    full, said = _cancer_fit(alpha=1e-6)
    assert not said and full.solver_info_["gap_refusals"] >= 1
    assert full.solver_info_["duality_gap"] <= 1e-13
    optimum = full.solver_info_["objective"]
    cut, said = _cancer_fit(alpha=1e-6, max_iter=18)
    info = cut.solver_info_
    gap = info["gap_refused_at_max_iter"]
    assert gap is not None and gap == info["duality_gap"] > 2 * cut.tol
    assert len(said) == 1 and f"by {gap:.2g} of the objective" in said[0]
    excess = (info["objective"] - optimum) / info["objective"]
    assert 2 * cut.tol < excess <= gap
    unpenalised, _ = _cancer_fit(alpha=0.0, max_iter=5)
    assert unpenalised.solver_info_["duality_gap"] is None
    assert unpenalised.solver_info_["gap_refusals"] == 0

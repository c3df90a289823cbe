"""The end of a logistic fit: a small Newton decrement from an inexact CG solve is checked
against a bound no preconditioner enters before it ends the fit
(``gramfree.solvers.logistic._end_refused``).

With a small alpha and few centres the centres' preconditioner misjudged the curvature by
orders of magnitude; CG met its forcing term after one iteration with a decrement hundreds
of times too small, and the fit reported convergence far from the optimum without a
warning (wine, 20 centres, alpha 1e-7: objective 0.98 against LogisticRegression's 0.03 on
the same features; 600 digits: 2.21, the null model's, against 0.012). The reference here
is scikit-learn's LogisticRegression on the centres' whitened features, the same
objective (tests/test_logistic.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import rbf_kernel

from gramfree import KernelClassifier
from gramfree.solvers.logistic import _decrement_lower_bound, _end_refused


def _standardised(loader, rows=None):
    X, y = loader(return_X_y=True)
    X, y = (X, y) if rows is None else (X[:rows], y[:rows])
    return (X - X.mean(0)) / (X.std(0) + 1e-12), y


def _reference_objective(model, X, y, gamma, alpha):
    """LogisticRegression (C = 1 / alpha) on K(X, C) V diag(lam)^-1/2 (K_MM = V diag(lam)
    V^T, with the fit's jitter): the same penalised log-likelihood per sample."""
    C = model.centers_
    lam, V = np.linalg.eigh(rbf_kernel(C, C, gamma=gamma))
    lam = lam + model.solver_info_["jitter"]
    keep = lam > 1e-13 * lam.max()
    F = rbf_kernel(X, C, gamma=gamma) @ (V[:, keep] / np.sqrt(lam[keep]))
    lr = LogisticRegression(C=1.0 / alpha, tol=1e-10, max_iter=20000).fit(F, y)
    P = lr.predict_proba(F)[np.arange(len(y)), np.searchsorted(lr.classes_, y)]
    return (-np.log(P).sum() + 0.5 * alpha * np.sum(lr.coef_**2)) / len(y)


@pytest.mark.parametrize(
    "loader, rows, gamma_scale",
    [
        pytest.param(load_wine, None, 5.0, id="wine"),
        pytest.param(load_digits, 600, 1.0, id="digits-600"),
    ],
)
def test_small_alpha_few_centres_never_ends_far_from_the_optimum(loader, rows, gamma_scale):
    """Converged within 1e-3 of the reference objective, or a ConvergenceWarning: never
    a silent stop far from it (both cases stopped silently before the check, at 33x and
    190x the optimum)."""
    X, y = _standardised(loader, rows)
    gamma, alpha = gamma_scale / X.shape[1], 1e-7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = KernelClassifier(
            loss="logistic",
            gamma=gamma,
            alpha=alpha,
            solver="nystrom-pcg",
            n_centers=20,
            random_state=0,
        ).fit(X, y)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    reference = _reference_objective(model, X, y, gamma, alpha)
    gap = (model.solver_info_["objective"] - reference) / reference
    assert gap > -1e-6  # the reference is the optimum
    assert warned or gap <= 1e-3, (gap, model.n_iter_)


def test_wine_small_alpha_converges_after_a_refused_end():
    """On wine the check refuses a premature end and the fit then converges, to the
    reference's objective within 1e-3, without a warning."""
    X, y = _standardised(load_wine)
    gamma, alpha = 5.0 / X.shape[1], 1e-7
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = KernelClassifier(
            loss="logistic", gamma=gamma, alpha=alpha, n_centers=20, random_state=0
        ).fit(X, y)
    assert model.solver_info_["convergence_refusals"] >= 1
    reference = _reference_objective(model, X, y, gamma, alpha)
    assert model.solver_info_["objective"] <= reference * (1 + 1e-3)


def _spd(rng, n, condition):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, condition, n)) @ Q.T


def test_decrement_lower_bound_against_the_exact_decrement():
    """Below the exact decrement rhs^T H^-1 rhs + h^T B^+ h for any right-hand side, equal
    to it where rhs is an eigenvector of H (steepest descent is then Newton's step)."""
    rng = np.random.default_rng(0)
    H = _spd(rng, 12, 1e6)
    B_inverse = np.linalg.pinv(_spd(rng, 3, 10.0))
    h = rng.standard_normal(3)
    for _ in range(20):
        rhs = rng.standard_normal((4, 3))
        exact = float(rhs.ravel() @ np.linalg.solve(H, rhs.ravel())) + h @ B_inverse @ h
        bound = _decrement_lower_bound(
            lambda V: (H @ V.ravel()).reshape(V.shape), rhs, h, B_inverse
        )
        assert 0.0 <= bound <= exact * (1 + 1e-12)
    vals, vecs = np.linalg.eigh(H)
    rhs = vecs[:, 5].reshape(4, 3) * 3.0
    exact = 9.0 / vals[5] + h @ B_inverse @ h
    bound = _decrement_lower_bound(lambda V: (H @ V.ravel()).reshape(V.shape), rhs, h, B_inverse)
    np.testing.assert_allclose(bound, exact, rtol=1e-10)


def test_end_refused_by_either_test():
    rng = np.random.default_rng(1)
    H = _spd(rng, 6, 1e3)
    hessian = lambda V: (H @ V.ravel()).reshape(V.shape)  # noqa: E731
    zero_h, no_intercepts = np.zeros(1), np.zeros((1, 1))
    rhs = rng.standard_normal((6, 1)) * 1e-3
    exact = float(rhs.ravel() @ np.linalg.solve(H, rhs.ravel()))
    # A decrement near the exact one, a preconditioned norm near it: the end stands.
    assert _end_refused(hessian, rhs, zero_h, no_intercepts, exact, exact, 10 * exact) == (False, 1)
    # CG's decrement a ten-thousandth of the preconditioned norm, which exceeds the
    # threshold: refused, whatever the bound says.
    refused = _end_refused(hessian, rhs, zero_h, no_intercepts, 1e-4 * exact, exact, 0.5 * exact)
    assert refused == (True, 0)
    # The bound above the threshold: refused.
    bound = _decrement_lower_bound(hessian, rhs, zero_h, no_intercepts)
    assert _end_refused(hessian, rhs, zero_h, no_intercepts, 0.0, 0.0, 0.5 * bound) == (True, 1)
    assert _end_refused(hessian, rhs, zero_h, no_intercepts, 0.0, 0.0, 2.0 * bound) == (False, 1)

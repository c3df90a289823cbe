"""Exact kernel ridge regression by a Cholesky factorization of the full kernel matrix.

Solves ``(W K + alpha I) c = W y``, written symmetrically as
``(S K S + alpha I) (S^-1 c) = S y`` with ``S = sqrt(W)`` (scikit-learn's KernelRidge).
Only for n small enough that an n x n matrix is cheap; :func:`gramfree.linalg.cholesky`
keeps it safe from the OpenBLAS crash at n >= 16000.
"""

from __future__ import annotations

import numpy as np

from ..linalg import cho_solve, cholesky
from ._common import Problem, SolverResult


def solve_direct(problem: Problem) -> SolverResult:
    X, Y = problem.X, problem.Y
    K = problem.operator(X).to_dense().astype(np.float64, copy=False)
    s = np.sqrt(problem.weights.astype(np.float64))
    K *= s[:, None]
    K *= s[None, :]
    K[np.diag_indices_from(K)] += problem.alpha
    if problem.alpha == 0.0:
        # Interpolation: allow a tiny relative jitter when K is singular.
        K[np.diag_indices_from(K)] += 1e-12 * float(np.mean(np.diag(K)))
    L = cholesky(K, overwrite=True)
    coef = s[:, None] * cho_solve(L, s[:, None] * Y.astype(np.float64))
    coef = coef.astype(X.dtype, copy=False)
    return SolverResult(
        centers=X,
        coef=coef,
        n_iter=1,
        loss_curve=[objective(problem, X, coef)],
        converged=True,
        info={"factorization": "cholesky", "n_centers": X.shape[0]},
    )


def objective(problem: Problem, centers: np.ndarray, coef: np.ndarray) -> float:
    """``(sum_i w_i (f(x_i) - y_i)^2 + alpha ||f||^2) / sum_i w_i`` for
    ``f = K(., centers) @ coef``: one fused pass over the data and one over the centres."""
    pred = problem.operator(problem.X, centers) @ coef
    resid = ((pred - problem.Y) ** 2).sum(axis=1, dtype=np.float64)
    penalty = float(np.sum(coef * (problem.operator(centers) @ coef), dtype=np.float64))
    return float(problem.weights @ resid + problem.alpha * penalty) / problem.weight_sum

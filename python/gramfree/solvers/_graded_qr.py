"""The Nystrom ridge by QR of its weighted, whitened features, heaviest rows first: for
sample weights that span beyond what the one-pass solver's Gram resolves in float64.

The one-pass solver (:mod:`.nystrom_direct`) forms ``S = F^T F`` with ``F = W^1/2 K_nM
L^-T`` (``L L^T = K_MM``): each entry is a sum over the rows, rounded to eps of the
heaviest rows' part, so where the weights span more than about 1 / eps the lightest rows'
part is lost, and ``S + alpha I`` is indefinite to rounding. One row at 1e50 among rows at
1 made both of its passes fail; the Nystrom-PCG it fell back to broke down at its first
iteration and returned zeros (a review), as any CG must there (``auto.WEIGHT_SPAN_PCG``).

Householder QR of the least-squares rows ``[F, W^1/2 Y; sqrt(alpha) I, 0]`` taken in
decreasing order of their norms, with column pivoting, is row-wise backward stable (Powell
and Reid 1969; Cox and Higham 1998): each row carries its own rounding, whatever its
weight. The rows go in blocks, each stacked under the R of those before it; a row's
norm is at most ``sqrt(w_i k(x_i, x_i))`` (a Nystrom feature vector is never longer than
the kernel's diagonal allows), the order used. About ``2 (M + b) (M + t)^2`` flops per
block of b rows, ~4 n M^2 in all: four times the Gram pass, only where that pass failed.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..linalg import solve_triangular
from ._common import Problem, kernel_diagonal
from .nystrom_direct import _operator


def solve_graded(problem: Problem, C64: np.ndarray, L: np.ndarray, block_rows: int) -> np.ndarray:
    """The coefficients ``a`` (M x t, float64) minimising ``sum w |y - K(x, C) a|^2 +
    alpha |L^T a|^2`` (``L`` K_MM's factor, jittered or not), ``problem.alpha > 0``."""
    X, Y, w = problem.X, problem.Y, problem.sample_weight
    n, M = X.shape[0], C64.shape[0]
    Y64 = np.asarray(Y, dtype=np.float64).reshape(n, -1)
    weights = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    rows = np.flatnonzero(weights > 0)
    norms = np.sqrt(weights[rows] * np.maximum(kernel_diagonal(problem.kernel, X[rows]), 0.0))
    rank = np.argsort(-norms, kind="stable")
    rows, norms = rows[rank], norms[rank]
    root_alpha = float(np.sqrt(problem.alpha))
    # The penalty's rows (norm sqrt(alpha)) go in where the data rows' bound falls below it.
    split = int(np.searchsorted(-norms, -root_alpha, side="right"))
    R = np.zeros((0, M))
    z = np.zeros((0, Y64.shape[1]))
    piv = np.arange(M)

    def absorb(F: np.ndarray, rhs: np.ndarray) -> None:
        nonlocal R, z, piv
        Q, T, piv = sla.qr(np.vstack([R, F]), mode="economic", pivoting=True)
        z = Q.T @ np.vstack([z, rhs])
        R = np.empty_like(T)
        R[:, piv] = T  # unpermuted: R^T R is the stacked rows' Gram

    def absorb_rows(chunk: np.ndarray) -> None:
        root = np.sqrt(weights[chunk])
        B = np.asarray(_operator(problem, X[chunk], C64).to_dense(), dtype=np.float64)
        F = solve_triangular(L, (root[:, None] * B).T).T  # W^1/2 K L^-T
        absorb(F, root[:, None] * Y64[chunk])

    step = max(1, int(block_rows))
    for r0 in range(0, split, step):
        absorb_rows(rows[r0 : min(r0 + step, split)])
    absorb(root_alpha * np.eye(M), np.zeros((M, Y64.shape[1])))
    for r0 in range(split, len(rows), step):
        absorb_rows(rows[r0 : r0 + step])
    # The last QR's triangle (M x M: the penalty's rows made it full rank), in its pivots.
    T = R[:, piv]
    beta = np.empty_like(z)
    beta[piv] = solve_triangular(T.T, z, trans=True)  # T upper: T = (T^T)^T
    return solve_triangular(L, beta, trans=True)

"""Exact leave-one-out error of the Nystrom ridge for every alpha of a path: RidgeCV's
criterion, from one more pass over the data.

GCV (:mod:`.alpha_path`) replaces each row's leverage ``h_ii`` by their mean ``df / n``,
which costs nothing beyond the path; where leverages are uneven (a narrow kernel, an
outlying row, a nearly interpolating alpha) its choice can be far from leave-one-out's.
``benchmarks/bench_alpha_path.py`` compares the two choices' held-out scores: GCV can
favour alphas far too small (1e-6 to 1e-4 where leave-one-out chose 1e-3 to 3.2): on iris,
every row a centre, 26x the best candidate's held-out error, on 1000 rows of shuttle 44x
and of randhie 7.7x, on whole training splits of diamonds and shuttle 1.9x and 2.0x
leave-one-out's; leave-one-out's choice stayed within 1.35x of the best in all 42 small
cases, and GCV's wins were small (test R^2 0.0015 on diamonds at M = 1000). So
leave-one-out is the CV estimators' default (``criterion="auto"``; where they choose gamma
too, alpha at GCV's gamma).
Leave-one-out needs each row's own leverage. In the path's basis (whitened features
``F = W^1/2 K_nM L^-T``, ``F^T F = U diag(lam) U^T``, ``c = U^T F^T W^1/2 y``), with
``Z = F U``, for every alpha

    h_i(alpha)  = sum_j Z_ij^2 / (lam_j + alpha)              (the hat matrix's diagonal)
    f_i(alpha)  = sum_j Z_ij c_j / (lam_j + alpha) / sqrt(w_i)  (the fitted value)
    LOO(alpha)  = sum_i w_i ((y_i - f_i) / (1 - h_i))^2 / sum w

(the weighted ridge's leave-one-out identity: refitting without row i moves its residual
to ``e_i / (1 - h_i)``). Z is formed a block of rows at a time and never held, as
``K(X_b, C) P`` with ``P = L^-T U`` formed once, the weights applied per row to h and f
(``w_i`` and, cancelling, ``sqrt(w_i)``): per block a kernel block and one GEMM
(2 n M^2 flops in all, against the path's n M^2 of its symmetric product), and each
alpha ``2 n M (t + 1)`` more for t targets. (A triangular solve per block, then the product with U,
was slower, and no more accurate on a near-singular K_MM: breast cancer, every row a
centre, gamma 0.001, against exact kernel ridge's leave-one-out formed densely, 8e-4
relative at alpha 1e-8 against this form's 8e-5.)

Repeated rows: leaving one copy out keeps its twins, whose fit then predicts it nearly
exactly, which would favour the interpolating alphas (as GCV did before it merged them),
and a row of weight 2 would not be the row twice (scikit-learn's sample-weight checks,
which pass). So the rows are merged first, as GCV merges them
(:func:`.alpha_path.replicates`): each
distinct row once, with its rows' total weight and weighted mean target, and LOO leaves
out a distinct row with all its copies. The copies' scatter about their mean (the pure
error, which no alpha changes) is added back, so that without repeats this is the usual
weighted leave-one-out error. Several targets: their errors add up (one alpha for all),
or each target's is returned (``alpha_per_target``).

An alpha below the rounding of the whitened Gram's eigenvalues (the path's ``resolved``),
or at which some row's ``1 - h_i`` is within rounding of zero (the fit interpolates it),
has no estimate (``inf``).
"""

from __future__ import annotations

import numpy as np

from .. import _blas
from ..linalg import solve_triangular
from ._common import Problem
from .alpha_path import AlphaPath, group_means, row_groups
from .nystrom_direct import BLOCK_BYTES, _operator

# The least 1 - h_i at which a row's leave-one-out residual is an estimate: h_i sums M
# squares, each rounded to eps of the sum.
LEVERAGE_FLOOR = 1e-10


def loo_errors(problem: Problem, centers: np.ndarray, paths: list[AlphaPath]) -> np.ndarray:
    """``(n_alphas, n_targets)``: each target's leave-one-out error per unit of weight
    (module docstring) at every alpha of ``paths``: one path for all of ``problem.Y``'s
    columns, or one per column (``solve_alpha_paths_per_target``), all from the same
    whitened system (the same L, U and eigenvalues)."""
    spectra = []
    for path in paths:
        assert path.spectrum is not None
        spectra.append(path.spectrum)
    L, U, lam, _ = spectra[0]
    c = np.hstack([spectrum[3] for spectrum in spectra])  # (M, t)
    alphas = paths[0].alphas
    resolved = paths[0].resolved
    rows, Y, weights, groups = row_groups(problem)
    count = int(groups.max(initial=-1)) + 1
    largest, shares, mean = group_means(Y, weights, groups, count)
    total = largest * shares
    pure = np.sum(weights[:, None] * (Y - mean[groups]) ** 2, axis=0)  # per target
    first = np.zeros(count, dtype=np.intp)
    first[groups] = np.arange(len(groups))  # a row of each distinct row
    distinct = rows[first]
    del rows, Y, groups  # X's rows once in memory, not twice
    inverse = 1.0 / (lam[:, None] + alphas[None, :])  # (M, A)
    # Null directions (lam set to 0) carry no data, only rounding in Z's columns, whose
    # squares / alpha raised every leverage: the path's c is zero there, and so is their
    # share of h (repeated centres: alpha 1e-8's error inf where 1 - h was 1e-8; a review).
    inverse[lam == 0.0] = 0.0
    t = c.shape[1]
    # Column a t + j: target j's whitened fit at alphas[a], in Z's basis.
    G = (c[:, None, :] * inverse[:, :, None]).reshape(c.shape[0], -1)
    sums = np.zeros((len(alphas), t))
    interpolated = np.zeros(len(alphas), dtype=bool)
    C64 = np.ascontiguousarray(centers, dtype=np.float64)
    # W^-1/2 Z = K(X, C) L^-T U = K(X, C) P: one GEMM per block, P formed once
    P = solve_triangular(L, U, trans=True)
    # Per row of a block: B and Z (M each), the leverages (A) and the residuals (A t, two
    # at once); the block holds a quarter of the path's bytes (a review: sized by M alone,
    # a small M with many alphas and targets held arrays of the block's rows x alphas x
    # targets far beyond the path's own; tests/test_loo.py bounds the peak).
    width = 2 * C64.shape[0] + 2 * len(alphas) + 2 * len(alphas) * t
    step = max(16, BLOCK_BYTES // 4 // (8 * width))
    for r0 in range(0, count, step):
        r1 = min(count, r0 + step)
        B = np.asarray(_operator(problem, distinct[r0:r1], C64).to_dense(), dtype=np.float64)
        # Z without the rows' weights (K(X_b, C) P): each weight enters the leverage and the
        # fitted value as one factor per row, cheaper to apply to the r x A results than to
        # B's r x M entries (the fitted value's sqrt(w_i) cancels). scipy's BLAS, on the
        # fit's threads (numpy's own runs on one during a fit: gramfree._threads), as the
        # path's pass.
        Z = _blas.matmul(B, P)
        del B
        residual = _blas.matmul(Z, G).reshape(r1 - r0, len(alphas), t)
        np.negative(residual, out=residual)  # minus the fitted values
        residual += mean[r0:r1, None, :]
        # Squared in place, in Z's own (F) order: into B's C-ordered memory it is a
        # transposing, strided copy (with the leverages' weighting, the default fit 3.54 s
        # before, 3.37-3.40 s after: benchmarks/bench_alpha_path.py, the README).
        np.square(Z, out=Z)
        left = _blas.matmul(Z, inverse)
        left *= -total[r0:r1, None]
        left += 1.0  # 1 - h
        interpolated |= np.any(left <= LEVERAGE_FLOOR, axis=0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            residual /= left[:, :, None]
            np.square(residual, out=residual)
        sums += np.einsum("r,rat->at", total[r0:r1], residual)
    errors = (sums + pure[None, :]) / float(np.sum(weights))
    unusable = interpolated | ~np.isfinite(errors).all(axis=1)
    if resolved is not None:
        unusable |= ~resolved
    errors[unusable] = np.inf
    return errors

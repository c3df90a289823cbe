"""Every alpha of a Nystrom kernel ridge for the price of one: generalised cross-validation
from one pass over the data and one eigendecomposition of size M.

The one-pass solver (:mod:`.nystrom_direct`) reduces the data to M x M quantities: with
``L L^T = K_MM`` and ``F = W^1/2 K_nM L^-T`` (scikit-learn's Nystroem features), the
whitened Gram ``S = F^T F``, ``r = F^T W^1/2 y`` and ``y^T W y``. With ``S = U diag(lam) U^T``
and ``c = U^T r``, for every alpha

    g(alpha)   = U (lam + alpha)^-1 c                    (the model: a = L^-T g)
    RSS(alpha) = y^T W y - sum_i c_i^2 (lam_i + 2 alpha) / (lam_i + alpha)^2
    df(alpha)  = trace of the hat matrix = sum_i lam_i / (lam_i + alpha)
    GCV(alpha) = (RSS / sum w) / (1 - df / sum w)^2      (Golub, Heath and Wahba 1979)

so a path of any length costs one eigendecomposition (~M^3) beyond the single fit's pass.

Rounding, where the fit nearly interpolates (small alphas, wide kernels):

* RSS above is a difference of nearly equal numbers; where it is below ``RSS_RECHECK`` of
  ``y^T W y`` it is recomputed from the residuals, one pass over the data for all such
  alphas, and ``sum w - df`` is summed as ``(sum w - M) + sum_i alpha / (lam_i + alpha)``.
  (Before, breast cancer with gamma 0.003 and alpha 1e-7 got RSS 0, GCV 0, and was chosen.)
* S's eigenvalues are known to about ``eps M |S|``, amplified by the whitening (``1 /``
  K_MM's smallest relative pivot) when S is whitened after the pass. An alpha below
  ``RESOLVABLE`` times that has no estimate (GCV ``inf``), and where the amplified floor
  leaves any alpha unresolved the path is recomputed from the whitened features (one
  more pass), whose floor is not amplified. Where the weights' span times K_MM's condition
  number leaves the Gram unresolved (``nystrom_direct.GRAM_RESOLUTION``) the whitened
  features are formed directly, as in nystrom-direct.

GCV is the rotation-invariant form of leave-one-out; RidgeCV's exact LOO would need the
diagonal of the hat matrix, i.e. another n M^2 pass. Several targets share one alpha: their
RSS add up (RidgeCV's default).

With weights, GCV is that of the weighted ridge: the fitted values are ``H y`` with the
hat matrix ``H = K_nM (K_Mn W K_nM + alpha K_MM)^-1 K_Mn W``, ``RSS = sum_i w_i (y_i - (H
y)_i)^2``, ``df = trace(H)``, and

    GCV(alpha) = ((RSS - PE) / sum w) / (1 - df / n_d)^2

GCV of the data with repeated rows merged (:func:`replicates`): ``n_d`` distinct rows of
positive weight, each with its rows' total weight and weighted mean target; ``PE``, the
rows' weighted squared deviations from their own row's mean (the "pure error", which no
alpha changes), is what merging takes out of RSS. A fit can at most interpolate the
distinct points, so df approaches ``n_d``, not n: with ``n`` (or ``sum w``) in the
denominator, data with repeated rows (iris has one; any categorical features have many)
or weights summing to more than n kept ``1 - df / n`` away from zero while RSS fell to
zero, GCV went to zero and the smallest alpha won (diabetes plus one repeated row: alpha
1e-8 chosen, held-out R^2 -1.25 against 0.23 with the row once; weights of 1.5
everywhere the same). Merging keeps what frequency weights promise: a row of weight zero
changes nothing, an integer weight k is the row repeated k times, and scaling every
weight by c is alpha divided by c. Without repeated rows it is the usual weighted GCV
(``n_d = n``, ``PE = 0``). Keeping PE in RSS instead adds a constant to the numerator,
which over-smooths (CPS1988, whose discrete features repeat rows: alpha 2.4 chosen,
held-out R^2 0.4780, against the best candidate's 0.4793).
Alphas whose df reach ``n_d`` have no GCV estimate (``inf``); should every candidate be
one, a warning says so and the candidate with the fewest degrees of freedom (the largest
alpha) is chosen.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.linalg import blas
from scipy.optimize import minimize_scalar

from .. import _blas
from .._log import caller_stacklevel
from ..linalg import jittered_cholesky, solve_triangular
from ._common import Problem, weight_span
from .nystrom_direct import (
    BLOCK_BYTES,
    OBJECTIVE_CHECK,
    RANK_DEFICIENT,
    MemoryPasses,
    _gram_pass,
    _operator,
    gram_unresolved,
    refine_model,
    rows_for,
    target_scales,
)

# An alpha below this many times eps * M * |S| is within the rounding of the whitened
# Gram's eigenvalues: its GCV is not estimated (inf).
RESOLVABLE = 100.0
# RSS from the eigendecomposition below this share of y^T W y is recomputed from the
# residuals (one pass for all such alphas): below it the subtraction loses over a third of
# float64's digits to cancellation, more where the whitening amplified the Gram's rounding.
RSS_RECHECK = 1e-5
# The merged rows' RSS, RSS - PE, is no estimate below this many times eps (RSS + PE): the
# rounding of the two sums it subtracts (a review: rows repeated 5 times, alpha 1e-7, RSS
# and PE equal to 16 digits, the difference clamped to 0 and chosen as GCV 0).
MERGED_ROUNDING = 64.0


def _merged_resolved(merged, rss, pure):
    """Where the merged rows' RSS ``rss - pure`` is above the rounding of its two terms."""
    return merged > MERGED_ROUNDING * np.finfo(np.float64).eps * (rss + pure)


def replicates(problem: Problem) -> tuple[int, float]:
    """``(n_d, PE)``: the number of distinct rows of X among those of positive weight, and
    the pure error ``sum_i w_i |y_i - ybar_g(i)|^2`` about each distinct row's weighted
    mean target (module docstring). Rows are compared exactly, by their bytes (-0.0 as
    0.0), in O(n d log n); kept on the problem for the path's other steps."""
    cached = problem.__dict__.get("_replicates")
    if cached is not None:
        return cached
    rows, Y, weights, groups = row_groups(problem)
    count = int(groups.max(initial=-1)) + 1
    pure = 0.0
    if count < rows.shape[0]:
        mean = group_means(Y, weights, groups, count)[2]
        pure = float(np.sum(weights[:, None] * (Y - mean[groups]) ** 2))
    problem.__dict__["_replicates"] = (count, pure)
    return count, pure


def group_means(
    Y: np.ndarray, weights: np.ndarray, groups: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(largest, shares, mean)`` of the rows in each of ``count`` groups (``groups`` from
    :func:`row_groups`): the group's largest weight, its weights' sum over that largest
    (>= 1; the total weight is their product), and its weighted mean target (count x t).
    Summed relative to each group's own largest weight, so that shares far below the
    heaviest row's do not vanish (0/0) and totals near 1e308 are formed by the caller as
    it needs them (a review)."""
    largest = np.zeros(count)
    np.maximum.at(largest, groups, weights)
    share = weights / largest[groups]  # in (0, 1], 1 for each group's largest row
    shares = np.bincount(groups, weights=share, minlength=count)
    mean = (
        np.column_stack(
            [
                np.bincount(groups, weights=share * Y[:, j], minlength=count)
                for j in range(Y.shape[1])
            ]
        )
        / shares[:, None]
    )
    return largest, shares, mean.reshape(count, Y.shape[1])


def row_groups(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, Y, weights, groups)``: the rows of positive weight (-0.0 as 0.0), their
    targets (float64) and weights, and for each the index of its distinct row (rows
    compared exactly, by their bytes; in order of the distinct rows' bytes)."""
    X, w = problem.X, problem.sample_weight
    keep = slice(None) if w is None else w > 0
    rows = np.ascontiguousarray(X[keep]) + 0.0  # -0.0 -> 0.0
    Y = np.asarray(problem.Y[keep], dtype=np.float64)
    Y = Y if Y.ndim == 2 else Y.reshape(rows.shape[0], -1)  # (0, t) kept: no rows at all
    weights = np.ones(rows.shape[0]) if w is None else np.asarray(w[keep], dtype=np.float64)
    if rows.shape[1] == 0:
        groups = np.zeros(rows.shape[0], dtype=np.intp)
    else:
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
        _, groups = np.unique(keys, return_inverse=True)
        groups = groups.ravel()
    return rows, Y, weights, groups


@dataclass
class AlphaPath:
    """The chosen model and what the path measured, alpha by alpha."""

    alphas: np.ndarray  # as given
    gcv: np.ndarray  # GCV(alpha), lower is better
    rss: np.ndarray  # weighted residual sum of squares on the training data, summed over targets
    dof: np.ndarray  # effective degrees of freedom (trace of the hat matrix)
    best: int  # index of the chosen alpha
    coef: np.ndarray  # (M, t) coefficients at the chosen alpha, float64
    info: dict
    # (L, U, lam, c): K_MM's factor, the whitened Gram's eigenvectors and eigenvalues, and
    # the whitened right-hand side in that basis; what gcv_log_gamma_slope differentiates.
    spectrum: tuple | None = None
    # Indices of the alphas whose RSS was recomputed from the residuals (the closed form
    # cancels there): refine_alpha does not interpolate the closed form next to them.
    rechecked: set = dataclasses.field(default_factory=set)
    # The alphas above the rounding of the whitened Gram's eigenvalues (RESOLVABLE).
    resolved: np.ndarray | None = None


def whitened_system(problem: Problem, centers: np.ndarray, *, features: bool = False):
    """``(L, S, r, info)``: the factor of K_MM, the whitened Gram and right-hand side, in
    float64. A numerically singular K_MM (coinciding centres), or ``features``, takes the
    whitened-feature pass, where S is a Gram of features and positive semi-definite by
    construction; else the Gram pass then the whitening, as nystrom_direct does."""
    C64 = np.ascontiguousarray(centers, dtype=np.float64)
    kmm = _operator(problem, C64).to_dense()
    L, jitter = jittered_cholesky(kmm, overwrite=True)
    del kmm
    L = np.asfortranarray(L, dtype=np.float64)
    diag = np.diag(L) ** 2
    pivot = float(diag.min() / max(float(diag.max()), 1e-300))
    rows = rows_for(C64.shape[0])
    info = {"jitter": jitter, "smallest_pivot": pivot}
    unresolved = None
    span = weight_span(problem.sample_weight)
    if span > 1.0 and not (jitter > 0 or pivot < RANK_DEFICIENT):
        # nystrom_direct's rule: the whitened features where K_MM's condition number times
        # the weights' span leaves the Gram short of GRAM_RESOLUTION (weighted fits). Also
        # taken for the whitened features' pass (the check's fallback), which reports it.
        info["k_mm_condition"], unresolved = gram_unresolved(L, span)
    if features or jitter > 0 or pivot < RANK_DEFICIENT or unresolved:
        S, r = _gram_pass(problem, C64, rows, L=L)
        how = "whitened features"
    else:
        G, R = _gram_pass(problem, C64, rows)
        G = blas.dtrsm(1.0, L, G, side=0, lower=1, trans_a=0, overwrite_b=1)
        S = blas.dtrsm(1.0, L, G, side=1, lower=1, trans_a=1, overwrite_b=1)
        r = solve_triangular(L, R)
        how = "whitened Gram"
    return L, S, r, {**info, "pass": how}


def solve_alpha_path(
    problem: Problem, centers: np.ndarray, alphas, *, alpha_exponent: int = 0, warn: bool = True
) -> AlphaPath:
    """GCV over ``alphas`` (each > 0) for the Nystrom ridge on ``centers`` (module
    docstring); ``problem.alpha`` is not used. ``alpha_exponent``: the caller's alphas are
    these times 2^alpha_exponent (its weights were brought into range,
    :func:`~gramfree.solvers._common.weight_exponent`); messages name the caller's. As in nystrom_direct, the objective the
    solution implies is checked against the one recomputed from the model, at the chosen
    alpha and at the smallest (one pass of n M d each); where
    the whitening of G amplified its rounding (an ill-conditioned K_MM), the path is
    recomputed from the whitened-feature pass. ``warn`` False: a path without any GCV
    estimate, or a choice at the smallest resolved alpha, is not said here, only in
    ``info`` (:func:`path_warnings`; a caller comparing candidates says it for the one it
    keeps)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    start = time.perf_counter()
    path, smallest = _path(
        problem, centers, alphas, whitened_system(problem, centers), alpha_exponent
    )
    if path.info["pass"] == "whitened Gram" and not _paths_hold(
        problem, centers, [(problem, path, smallest)]
    ):
        system = whitened_system(problem, centers, features=True)
        path, _ = _path(problem, centers, alphas, system, alpha_exponent)
        path.info["fallback"] = "whitened features"
    for message in path_warnings(path):
        if warn:
            warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())
    path.info["seconds"] = time.perf_counter() - start
    return path


def solve_alpha_paths_per_target(
    problem: Problem, centers: np.ndarray, alphas, *, alpha_exponent: int = 0
) -> list[AlphaPath]:
    """One GCV path per column of ``problem.Y`` (RidgeCV's ``alpha_per_target``): each
    target's GCV, RSS, pure error and choice its own, as if it were fitted alone, from
    one pass over the data and one eigendecomposition (the whitened Gram does not depend
    on the targets; only their right-hand sides do). Each path is checked as
    :func:`solve_alpha_path` checks its one, and where any fails every target is
    recomputed from the whitened features. Warnings are left in each path's ``info``
    (:func:`path_warnings`), for the caller to say with the target they concern."""
    alphas = np.asarray(alphas, dtype=np.float64)
    start = time.perf_counter()

    def paths(system) -> list[tuple[Problem, AlphaPath, tuple[int, np.ndarray]]]:
        L, S, r, info = system
        spectrum = _spectrum(S, info)
        out = []
        for t in range(r.shape[1]):
            target = replace(problem, Y=np.ascontiguousarray(problem.Y[:, t : t + 1]))
            column = (L, None, r[:, t : t + 1], info)
            out.append((target, *_path(target, centers, alphas, column, alpha_exponent, spectrum)))
        return out

    found = paths(whitened_system(problem, centers))
    if found[0][1].info["pass"] == "whitened Gram" and not _paths_hold(problem, centers, found):
        found = paths(whitened_system(problem, centers, features=True))
        for _, path, _ in found:
            path.info["fallback"] = "whitened features"
    seconds = time.perf_counter() - start
    for _, path, _ in found:
        path.info["seconds"] = seconds
    return [path for _, path, _ in found]


def _paths_hold(
    problem: Problem,
    centers: np.ndarray,
    found: list[tuple[Problem, AlphaPath, tuple[int, np.ndarray]]],
) -> bool:
    """Whether each path ``(its problem, path, (smallest alpha's index, coef))`` from the
    whitened Gram resolves every alpha and its objective holds at the chosen alpha and at
    the smallest, where the whitening's rounding weighs most: on diabetes (gamma 0.005,
    M = 150) the chosen alpha's objective agreed to 1e-10 while the smallest alphas' GCV
    was off by 1e-3 (their objective by 4e-4). Alphas below the Gram's amplified rounding
    (unresolved) are resolved down to eps |S| M by the whitened features, whose S carries
    no amplification. The paths share ``problem``'s rows and weights (one per target, or
    the one path); every check is one column of one pass over the data (with a pass per
    check, ``alpha_per_target=True`` with three targets cost 1.37x the shared path, now
    1.02-1.13x: ``benchmarks/bench_alpha_path.py``, the README)."""
    if any(path.info["unresolved_alphas"] for _, path, _ in found):
        return False
    checks = []
    for target, path, (index, coef) in found:
        checks.append((target, path, path.best, path.coef))
        if index != path.best:
            checks.append((target, path, index, coef))
    return all(miss <= OBJECTIVE_CHECK for miss in _objective_misses(problem, centers, checks))


def path_warnings(path: AlphaPath) -> list[str]:
    """What the path's choice should say: no candidate had a GCV estimate
    (``info["no_estimate"]``), or the choice is the smallest alpha with one and smaller
    candidates had none (``info["below_floor"]``)."""
    return [path.info[key] for key in ("no_estimate", "below_floor") if key in path.info]


def _residual_sums(problem: Problem, centers: np.ndarray, coefs: list) -> np.ndarray:
    """``sum w |y - K(X, C) a|^2`` for each of ``coefs`` (M x t each), in one pass over
    the data with all of them as right-hand sides, float64."""
    C64 = np.ascontiguousarray(centers, dtype=np.float64)
    sums = _column_losses(problem, C64, np.concatenate(coefs, axis=1), problem.Y)
    return sums.reshape(len(coefs), -1).sum(axis=1)


def _column_losses(problem: Problem, C64: np.ndarray, A: np.ndarray, Y) -> np.ndarray:
    """``sum_i w_i (K(x_i, C) A[:, j] - Y_i[j mod t])^2`` for each column j of ``A`` (its
    columns are blocks of Y's t columns), float64, in one kernel pass with all of them."""
    X, w = problem.X, problem.sample_weight
    t = Y.shape[1]
    rows = max(256, int(BLOCK_BYTES // (8 * (X.shape[1] + A.shape[1]))))
    sums = np.zeros(A.shape[1])
    for r0 in range(0, X.shape[0], rows):
        r1 = min(X.shape[0], r0 + rows)
        pred = (_operator(problem, X[r0:r1], C64) @ A).astype(np.float64)
        res = pred.reshape(r1 - r0, -1, t) - np.asarray(Y[r0:r1, None, :], dtype=np.float64)
        sq = (res**2).reshape(r1 - r0, -1)
        sums += (sq if w is None else sq * w[r0:r1, None]).sum(axis=0)
    return sums


def _squared_coordinates(c: np.ndarray) -> tuple[np.ndarray, float]:
    """``(q, s)`` with ``sum_t c_it^2 = s^2 q_i``, s a power of two near ``max |c|``. c is
    of the order of the weights times y: squared, it underflowed to 0 with weights of
    1e-170 (RSS = y^T W y at every alpha, and the largest alpha chosen, silently; a
    review). The fit's sums ``c^2 / (lam + alpha)``, of the order of y^T W y, are formed
    as ``(q (s / p)) s``."""
    top = float(np.max(np.abs(c), initial=0.0))
    s = math.ldexp(1.0, math.frexp(top)[1]) if top > 0.0 else 1.0
    return np.sum((c / s) ** 2, axis=1), s


def _spectrum(S: np.ndarray, info: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """``(lam, U, null)``: the whitened Gram's eigenvalues, those within its rounding
    (``null``) set to zero, and eigenvectors."""
    S = 0.5 * (S + S.T)  # exactly symmetric for eigh (the pass rounds the triangles alike)
    lam, U = np.linalg.eigh(S)
    del S
    # Rounding can leave the smallest eigenvalues of a PSD S slightly negative; as
    # variances of features they are >= 0.
    lam = np.maximum(lam, 0.0)
    # S's eigenvalues are known to about eps |S| M, times the whitening's amplification of
    # G's rounding (1 / K_MM's smallest relative pivot) where S was whitened after the
    # pass (breast cancer, alpha 1e-9: GCV 390x the exact one). Those within it are null:
    # repeated centres left theirs at 3e-16 to 2e-15 instead of 0, and their terms
    # alpha / (lam + alpha) in n_d - df, 1 - 3e-7 at alpha 1e-9, made it -2e-6 for 8e-7
    # (a review: dof_ 569.0000019 with 569 distinct rows, GCV 14 times the exact one).
    amplification = 1.0 / info["smallest_pivot"] if info["pass"] == "whitened Gram" else 1.0
    null = np.finfo(np.float64).eps * lam.size * float(lam.max(initial=0.0)) * amplification
    lam[lam <= null] = 0.0
    return lam, U, null


def _path(
    problem: Problem,
    centers: np.ndarray,
    alphas: np.ndarray,
    system,
    alpha_exponent: int = 0,
    spectrum: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> tuple[AlphaPath, tuple[int, np.ndarray]]:
    """The path, and the index and coefficients of its smallest alpha (for the check);
    its messages name the alphas times 2^alpha_exponent (the caller's). ``spectrum``:
    :func:`_spectrum` of the system's whitened Gram where already computed (then the
    system's S is not read)."""
    L, S, r, info = system
    start = time.perf_counter()
    lam, U, null = _spectrum(S, info) if spectrum is None else spectrum
    del S
    c = U.T @ r  # (M, t)
    # The null directions (lam set to 0) hold no data: F u = 0 there but for rounding,
    # which c / alpha amplified into the coefficients (repeated centres: the smallest
    # alphas' GCV and leave-one-out biased upwards; weights spanning 1e50, every alpha
    # unresolved: predictions of 1e16 on targets within 1; two reviews). Without them
    # the solution is the least-norm one, as with exactly null directions.
    c[lam == 0.0] = 0.0
    Y = problem.Y.astype(np.float64)
    w = problem.sample_weight
    yWy = float(np.sum(Y**2 * (1.0 if w is None else w[:, None])))
    # GCV of the merged rows: the mean residual per unit of weight, without the pure
    # error; the denominator counts the distinct rows (module docstring).
    n_w = problem.weight_sum
    n_d, pure = replicates(problem)

    def coef_at(i: int) -> np.ndarray:
        """The model's coefficients at ``alphas[i]``: ``a = L^-T U (lam + alpha)^-1 c``."""
        return solve_triangular(L, U @ (c / (lam + alphas[i])[:, None]), trans=True)

    q, scale = _squared_coordinates(c)  # summed over targets: one alpha for all
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        denom = lam[None, :] + alphas[:, None]  # (A, M)
        # Divided before squared: (lam + 2 alpha) / denom is at most 2, so alpha = 1e300
        # does not overflow to inf / inf = NaN.
        ratio = (lam[None, :] + 2 * alphas[:, None]) / denom
        fit = np.sum(q[None, :] * ratio * (scale / denom), axis=1) * scale
        rss = yWy - fit
        dof = np.sum(lam[None, :] / denom, axis=1)
        # n_d - dof as a sum of terms (positive where n_d >= M): written 1 - dof / n_d, it
        # cancelled where the fit nearly interpolates, the very alphas whose GCV it decides.
        gap = (n_d - lam.size) + np.sum(alphas[:, None] / denom, axis=1)
    # Alphas below the whitened Gram's rounding (null, above) get no estimate: their df
    # and RSS are rounding.
    floor = RESOLVABLE * null
    resolved = alphas >= floor
    # Where the fit takes nearly all of y^T W y, its RSS is a difference of nearly equal
    # numbers (breast cancer, gamma 0.003, alpha 1e-7: computed <= 0 where the true RSS
    # gives GCV 0.13, so a near-interpolating alpha won with GCV 0): recomputed from the
    # residuals themselves, one pass over the data for all such alphas.
    recheck = np.nonzero(resolved & (rss - pure <= RSS_RECHECK * yWy))[0]
    if recheck.size:
        rss[recheck] = _residual_sums(problem, centers, [coef_at(int(i)) for i in recheck])
    rss = np.maximum(rss, 0.0)
    merged = rss - pure  # the merged rows' RSS (module docstring)
    # An interpolating fit (df -> n_d), or one whose merged RSS is within the rounding of
    # the sums it is the difference of, has no GCV estimate: it is never chosen.
    ok = resolved & (gap > 0) & np.isfinite(rss) & _merged_resolved(merged, rss, pure)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        gcv = np.where(ok, (merged / n_w) / np.where(ok, gap / n_d, 1.0) ** 2, np.inf)
    gcv = np.where(np.isfinite(gcv), gcv, np.inf)
    info = dict(info, rss_rechecked=int(recheck.size), unresolved_alphas=int((~resolved).sum()))
    rechecked = set(recheck.tolist())
    if np.isfinite(gcv).any():
        best = int(np.argmin(gcv))
        if (~resolved).any() and alphas[best] == np.min(alphas[np.isfinite(gcv)]):
            # GCV still falls at the smallest alpha it resolves, and smaller candidates
            # were left out: its minimum may lie among them (a review: 800 digits rows,
            # every row a centre, GCV 0.84 at 1e-9 by numpy's solve, where 3.2e-8 was
            # chosen in silence with 1.51).
            info["below_floor"] = (
                f"alphas: the chosen alpha {math.ldexp(alphas[best], alpha_exponent):g} is "
                f"the smallest with a GCV estimate, and {int((~resolved).sum())} smaller "
                f"candidate(s) are below the rounding of the whitened Gram (alpha < "
                f"{math.ldexp(floor, alpha_exponent):.3g}), where GCV cannot be told from "
                "rounding here: its minimum may lie below the alpha chosen"
            )
    else:
        best = int(np.argmax(alphas))  # the fewest degrees of freedom
        info["no_estimate"] = (
            "y: the targets are all zero where the weights are not: every alpha fits them "
            "exactly, and GCV has nothing to choose by; chose the largest "
            f"({math.ldexp(alphas[best], alpha_exponent):g})"
            if yWy == 0.0
            else f"alphas: no candidate has a GCV estimate: each is below the rounding of the "
            f"whitened Gram (alpha < {math.ldexp(floor, alpha_exponent):.3g}) or its degrees "
            f"of freedom (at least "
            f"{np.nanmin(dof):.4g}) reach the number of distinct rows of positive weight "
            f"({n_d}), where the fit interpolates; chose the largest "
            f"({math.ldexp(alphas[best], alpha_exponent):g}). Use "
            "larger alphas."
        )

    coef = coef_at(best)
    # The smallest alpha with an estimate (the check below the floor would only measure
    # the rounding that excluded it).
    smallest = int(np.argmin(np.where(resolved, alphas, np.inf))) if resolved.any() else best
    info.update(path_seconds=time.perf_counter() - start, n_centers=int(centers.shape[0]))
    path = AlphaPath(
        alphas,
        gcv,
        rss,
        dof,
        best,
        coef,
        info,
        spectrum=(L, U, lam, c),
        rechecked=rechecked,
        resolved=resolved,
    )
    return path, (smallest, coef if smallest == best else coef_at(smallest))


def _objective_misses(problem: Problem, centers: np.ndarray, checks: list) -> list[float]:
    """For each check ``(its problem, path, index, coef)``: how far the objective of the
    path's solution at ``alphas[index]`` (``coef``), recomputed from the model, misses
    the one the eigendecomposition implies, relative to ``y^T W y / sum w`` (within
    nystrom_direct's OBJECTIVE_CHECK it holds); each path's largest miss is kept in its
    ``objective_check``. One pass over ``problem``'s rows, each check's coef its columns
    against its problem's targets (the same rows and weights)."""
    C64 = np.ascontiguousarray(centers, dtype=np.float64)
    M, n, w = C64.shape[0], problem.X.shape[0], problem.sample_weight
    coefs = [np.asarray(coef, dtype=np.float64).reshape(M, -1) for _, _, _, coef in checks]
    Ys = [np.asarray(target.Y, dtype=np.float64).reshape(n, -1) for target, _, _, _ in checks]
    A = np.hstack(coefs)
    losses = _column_losses(problem, C64, A, np.hstack(Ys))
    penalties = np.sum(A * (_operator(problem, C64) @ A), axis=0)  # a^T K_MM a per column
    misses, start = [], 0
    for (_, path, index, _), Y in zip(checks, Ys):
        cols = slice(start, start + Y.shape[1])
        start = cols.stop
        alpha = float(path.alphas[index])
        penalty = float(penalties[cols].sum())
        exact = (float(losses[cols].sum()) + alpha * penalty) / problem.weight_sum
        # Implied: RSS from the eigendecomposition + alpha a^T K_MM a (= alpha ||g||^2).
        implied = (float(path.rss[index]) + alpha * penalty) / problem.weight_sum
        zero = float(np.sum(Y**2 * (1.0 if w is None else w[:, None]))) / problem.weight_sum
        miss = abs(exact - implied) / max(zero, 1e-300)
        path.info["objective_check"] = max(miss, path.info.get("objective_check", 0.0))
        misses.append(miss)
    return misses


# Step of the central difference of the kernel values in log(gamma): its truncation error
# is ~ h^2 / 6 of the third derivative (1e-9 relative), its rounding ~ eps / h (1e-12).
LOG_GAMMA_STEP = 1e-4


@dataclass
class GcvPoint:
    """GCV and its parts at one alpha of a path."""

    alpha: float
    gcv: float
    rss: float
    dof: float


def chosen_point(path: AlphaPath) -> GcvPoint:
    """The path's chosen candidate as a GcvPoint."""
    i = path.best
    return GcvPoint(
        float(path.alphas[i]), float(path.gcv[i]), float(path.rss[i]), float(path.dof[i])
    )


def refine_alpha(problem: Problem, path: AlphaPath) -> GcvPoint:
    """GCV minimised over a continuous alpha between the chosen candidate's neighbours
    (bounded Brent search in log(alpha), each evaluation O(M t) from the path's spectrum),
    never worse than the candidate; the candidate itself where its RSS had to be
    recomputed from the residuals (the closed form cancels there) or it has no estimate.
    Differentiable in gamma where the grid's choice is not (the grid's best GCV has a
    local minimum in gamma for each alpha it switches between). RSS grows with alpha, so
    the closed form is sound between the neighbours unless one of the three was
    recomputed."""
    grid = chosen_point(path)
    if path.spectrum is None or not math.isfinite(grid.gcv):
        return grid
    _, _, lam, c = path.spectrum
    q, scale = _squared_coordinates(c)
    Y = problem.Y.astype(np.float64)
    w = problem.sample_weight
    yWy = float(np.sum(Y**2 * (1.0 if w is None else w[:, None])))
    n_w = problem.weight_sum
    n_d, pure = replicates(problem)
    order = np.argsort(path.alphas)
    rank = int(np.nonzero(order == path.best)[0][0])
    finite = np.isfinite(path.gcv)
    # The neighbours are the nearest other values: a repeated candidate beside the chosen
    # one made the interval end at the chosen alpha (a review: alphas [1e-4, 2e-3, 2e-3,
    # 1] stopped at 2e-3 where the minimum is at 5.1e-3).
    chosen = path.alphas[path.best]
    below = [int(i) for i in order[:rank] if finite[i] and path.alphas[i] < chosen]
    above = [int(i) for i in order[rank + 1 :] if finite[i] and path.alphas[i] > chosen]
    neighbours = {path.best} | set(below[-1:]) | set(above[:1])
    if neighbours & path.rechecked:
        return grid
    lo = math.log(path.alphas[below[-1]] if below else grid.alpha)
    hi = math.log(path.alphas[above[0]] if above else grid.alpha)
    if hi <= lo:
        return grid

    def point(log_alpha: float) -> GcvPoint:
        alpha = math.exp(log_alpha)
        p = lam + alpha
        rss = max(yWy - float(np.sum(q * ((lam + 2 * alpha) / p) * (scale / p))) * scale, 0.0)
        dof = float(np.sum(lam / p))
        gap = (n_d - lam.size) + float(np.sum(alpha / p))
        merged = rss - pure
        usable = gap > 0 and bool(_merged_resolved(np.float64(merged), rss, pure))
        gcv = (merged / n_w) / (gap / n_d) ** 2 if usable else math.inf
        return GcvPoint(alpha, gcv, rss, dof)

    found = minimize_scalar(
        lambda t: point(t).gcv, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4}
    )
    best = point(float(found.x))
    return best if best.gcv < grid.gcv else grid


def refined_model(
    problem: Problem, centers: np.ndarray, path: AlphaPath, alphas, coef: np.ndarray
) -> tuple[np.ndarray, int, bool]:
    """``(coef, steps, unfinished)``: the path's model (M x t, column j at ``alphas[j]``)
    refined as nystrom-direct refines its Gram's solve
    (:func:`.nystrom_direct.refine_model`), with the path's eigendecomposition as the
    solve: the whitened Gram's rounding, amplified by cond(K_MM), otherwise stays in the
    chosen model (1e-5 to 1e-4 of the predictions on real data with a wide kernel). Every
    direction takes part, the eigenvalues the path set to zero too (as ``1 / alpha``):
    they are zero only below the Gram's amplified rounding, and with a small pivot of K_MM
    they held data, which left models 3e-4 to 1.6e-3 off (a review). One pass over the
    data for the residual, and one per step. Not where K_MM was jittered (its factor's
    penalty is not the objective's)."""
    assert path.spectrum is not None
    L, U, lam, _ = path.spectrum
    if path.info.get("jitter", 0.0) > 0.0:
        return coef, 0, False
    alphas = np.asarray(alphas, dtype=np.float64)

    def solve(u):
        return U @ ((U.T @ u) / (lam[:, None] + alphas[None, :]))

    C64 = np.ascontiguousarray(centers, dtype=np.float64)
    passes = MemoryPasses(problem)
    scales, floors = target_scales(passes, problem.weight_sum)
    start = np.asarray(coef, dtype=np.float64).reshape(C64.shape[0], -1)
    residual = passes.loss_residual(C64, start)
    out, _, steps, unfinished = refine_model(
        problem, passes, C64, L, solve, start, alphas, residual, scales=scales, floors=floors
    )
    return out.reshape(np.shape(coef)), steps, unfinished


def coef_at(path: AlphaPath, alpha: float) -> np.ndarray:
    """The model's coefficients at any ``alpha`` from the path's spectrum (M x t)."""
    assert path.spectrum is not None
    L, U, lam, c = path.spectrum
    return solve_triangular(L, U @ (c / (lam + alpha)[:, None]), trans=True)


def gcv_log_gamma_slope(
    problem: Problem, centers: np.ndarray, path: AlphaPath, at: GcvPoint | None = None
) -> float:
    """d GCV / d log(gamma) at the point ``at`` of the path (its alpha, GCV, RSS and
    degrees of freedom; default the chosen candidate), on the same centres (the kernel of ``problem`` has a ``gamma``).
    Where ``at`` minimises GCV over alpha (:func:`refine_alpha`), this is also the slope of
    the best GCV in log(gamma) (the envelope theorem): what a search over gamma follows.

    With ``A = W^1/2 K_nM``, ``G = A^T A``, ``R = A^T W^1/2 y`` and ``L L^T = K_MM``, the
    path's ``S = L^-1 G L^-T`` and ``r = L^-1 R``; differentiating (prime: d / d log gamma),
    ``L' = L Phi`` with ``Phi`` the lower triangle of ``L^-1 K_MM' L^-T`` (its diagonal
    halved), so ``S' = L^-1 G' L^-T - Phi S - S Phi^T`` and ``r' = L^-1 R' - Phi r``, with
    ``G' = A'^T A + A^T A'`` and ``R' = A'^T W^1/2 y`` from one more pass over the data. In
    S's eigenbasis (``S = U diag(lam) U^T``, ``c = U^T r``, ``p = lam + alpha``)::

        RSS' = -2 sum_i c_i' c_i q(lam_i) - sum_ij c_i c_j (U^T S' U)_ij q[lam_i, lam_j]
        df'  = sum_i (U^T S' U)_ii alpha / p_i^2
        GCV' = GCV (RSS' / RSS + 2 df' / (sum w - df))

    with ``q(lam) = (lam + 2 alpha) / p^2`` and its divided differences in closed form,
    ``q[a, b] = -1 / (p_a p_b) - alpha (p_a + p_b) / (p_a p_b)^2`` (no cancellation where
    eigenvalues nearly coincide; a sum of rank-one terms, so the double sum is a few
    bilinear forms). The kernel's own derivative ``A'`` is a central
    difference of the kernel values in log(gamma) (``LOG_GAMMA_STEP``): any kernel with a
    gamma, at a relative error near 1e-9. Cost: a pass of three kernel blocks and an
    ``n M^2`` GEMM, three triangular solves and two GEMMs of size M.
    """
    assert path.spectrum is not None
    L, U, lam, c = path.spectrum
    if at is None:
        at = chosen_point(path)
    alpha = at.alpha
    kernel: Any = problem.kernel  # one with a gamma (rbf, laplacian, poly, ...)
    gamma = float(kernel.gamma)
    h = LOG_GAMMA_STEP

    def at_gamma(value: float) -> Problem:
        return replace(problem, kernel=dataclasses.replace(kernel, **{"gamma": value}))

    up, down = at_gamma(gamma * math.exp(h)), at_gamma(gamma * math.exp(-h))
    C64 = np.ascontiguousarray(centers, dtype=np.float64)

    def slope_block(rows: np.ndarray) -> np.ndarray:
        plus = _operator(up, rows, C64).to_dense().astype(np.float64, copy=False)
        plus -= _operator(down, rows, C64).to_dense().astype(np.float64, copy=False)
        plus /= 2.0 * h
        return plus

    X, Y, w = problem.X, problem.Y.astype(np.float64), problem.sample_weight
    M = C64.shape[0]
    # Where the path whitened the features themselves (K_MM near singular: the Gram's
    # rounding, amplified by 1 / K_MM's smallest pivot, made the slope of duplicated
    # centres 2-5% off), so is the derivative: the pass then holds L^-1 G' L^-T and
    # L^-1 R' directly, at two triangular solves per block more.
    whiten = path.info.get("pass") == "whitened features"
    H = np.zeros((M, M))  # A'^T A, or L^-1 A'^T A L^-T
    dR = np.zeros((M, Y.shape[1]))  # A'^T W^1/2 y, or L^-1 of it
    rows = max(64, int(BLOCK_BYTES // (3 * 8 * max(M, 1))))
    for r0 in range(0, X.shape[0], rows):
        r1 = min(X.shape[0], r0 + rows)
        K = _operator(problem, X[r0:r1], C64).to_dense().astype(np.float64, copy=False)
        dK = slope_block(X[r0:r1])
        Yw = Y[r0:r1] if w is None else Y[r0:r1] * w[r0:r1, None]
        if w is not None:
            K *= w[r0:r1, None]  # W K: A'^T A = K'^T W K
        if whiten:
            K = solve_triangular(L, K.T).T
            dK = solve_triangular(L, dK.T).T
        H += _blas.matmul(dK.T, K)
        dR += _blas.matmul(dK.T, Yw)
    dG = H + H.T
    P = solve_triangular(L, solve_triangular(L, slope_block(C64)).T)  # L^-1 K_MM' L^-T
    P = 0.5 * (P + P.T)
    Phi = np.tril(P, -1) + 0.5 * np.diag(np.diag(P))
    B = U if whiten else solve_triangular(L, U, trans=True)  # L^-T U, or U when whitened
    # U^T S' U = B^T G' B - Phi~ diag(lam) - diag(lam) Phi~^T with Phi~ = U^T Phi U; only
    # its diagonal and bilinear forms x^T (U^T S' U) y are needed, so two M^3 products
    # (B^T G' and Phi U) and the rest M^2 t.
    D = _blas.matmul(B.T, dG)
    PhiU = _blas.matmul(Phi, U)
    diag_dS = np.sum(D * B.T, axis=1) - 2.0 * lam * np.sum(U * PhiU, axis=0)

    def bilinear(x: np.ndarray, y: np.ndarray) -> float:
        """sum over columns of x_t^T (U^T S' U) y_t."""
        return float(
            np.sum((D.T @ x) * (B @ y))
            - np.sum((U @ x) * (PhiU @ (lam[:, None] * y)))
            - np.sum((U @ y) * (PhiU @ (lam[:, None] * x)))
        )

    dc = B.T @ dR - U.T @ (PhiU @ c)  # U^T r'
    p = lam + alpha
    q = (lam + 2.0 * alpha) / p / p
    # sum_ij c_i c_j S~'_ij q[lam_i, lam_j] with q[a, b] = -u_a u_b - alpha (u_a v_b + v_a u_b),
    # u = 1 / p, v = 1 / p^2: bilinear forms in c u and c v.
    cu, cv = c / p[:, None], c / (p * p)[:, None]
    pairs = -bilinear(cu, cu) - 2.0 * alpha * bilinear(cu, cv)
    d_rss = -2.0 * float(np.sum(dc * c * q[:, None])) - pairs
    d_dof = float(np.sum(diag_dS * alpha / p / p))
    n_d, pure = replicates(problem)
    merged, gap, gcv = at.rss - pure, n_d - at.dof, at.gcv
    if not (math.isfinite(gcv) and merged > 0 and gap > 0):
        return 0.0  # no estimate to follow
    return gcv * (d_rss / merged + 2.0 * d_dof / gap)

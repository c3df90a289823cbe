"""Nystrom kernel ridge regression solved directly, in one pass over the data.

The same model and objective as Nystrom-PCG (``sum_i w_i (f(x_i) - y_i)^2 + alpha
||f||^2_H`` with ``f = K(., C) a``, M centres C), for the case of few centres and many rows:
instead of iterating over the data once per CG step, stream it once, forming

    G = K_nM^T W K_nM  (M x M)   and   R = K_nM^T W Y  (M x t)

block by block (a block's kernel values from the fused engine, its contribution by BLAS
``syrk``: never an n x M matrix), then solve the M x M system. Cost: one kernel pass plus
n M^2 multiply-adds at the BLAS rate, against PCG's iterations x 2 kernel passes; for
M up to a few thousand that is the cheaper of the two (``auto``'s cost model decides).

Solved in the whitened basis of scikit-learn's ``Nystroem`` features: with
``L L^T = K_MM`` and ``a = L^-T g``, the objective is a ridge in ``g`` with the identity as
penalty, ``(L^-1 G L^-T + alpha I) g = L^-1 R``, whose matrix has every eigenvalue at least
alpha: no squared condition number of ``K_MM`` enters the factorization (forming ``G +
alpha K_MM`` directly would lose the small directions in float64 for smooth kernels).

alpha = 0 is least squares on the centres, which needs no penalty and so no factor of
K_MM: features whitened by K_MM's leading eigenvectors and their Gram's pseudo-inverse
(``_least_squares``), robust to coinciding centres, where K_MM's jittered factor made the
whitened system meaningless.

Refinement. The whitening multiplies the Gram's rounding by up to cond(K_MM), which with a
wide kernel left the model 1e-5 to 1e-4 off the exact one while the objective check,
quadratic in the error, passed. A float64 solve that passes is refined (``refine_model``):
each step reads the data once more for the normal equations' residual, by the fused
products, and solves for it with the same factors; kept while the steps contract
(``info["refinement_steps"]``). The CV estimators refine their chosen model the same way,
with the path's eigendecomposition as the solve.

Precision. The whitening multiplies the rounding of G by up to 1 / lambda_min(K_MM), and
float32 kernel values can make S indefinite (digits, M = 450, gamma = 0.002). With float64
products (float64 data, the default) the pass runs in float64. With float32 products
(float32 data, or ``kernel_precision="float32"``) the pass first computes the kernel
values in float32, widened into the float64 block whose Gram (``dsyrk``) is summed into a
float64 G, the M x M solve in float64 (a float32 ``ssyrk``, at twice the rate, broke the
solve on the README's million case). It is accepted when the objective it implies
matches the one recomputed from the model to ``FLOAT32_OBJECTIVE_CHECK`` (the rounding of
float32 kernel values is ~1e-6 of the objective; a whitening that amplified it misses by orders of
magnitude); otherwise the float64 pass runs, as for float64 data. scikit-learn's
``Nystroem`` + ``Ridge`` on float32 data runs wholly in float32 (features, their Gram and
its Cholesky), so the float32 pass is never the less accurate of the two.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.linalg import blas

from .. import _blas
from .._log import say
from ..linalg import cholesky, jittered_cholesky, solve_triangular
from ..operators import KernelOperator
from ._common import Problem, SolverResult, weight_span
from .nystrom_pcg import solve_nystrom_pcg

# Positive weights spanning more than this are solved by QR of the rows in order of their
# norms (:mod:`._graded_qr`; on dask where its heavy rows fit on the client,
# :mod:`gramfree._dask_graded`; the span beyond which auto leaves PCG out too): the
# Gram's sums resolve the lightest rows' part only to about the span times eps, amplified
# by the whitening (a review: 4e-5 of the predictions at 1e9, 4.6e-4 at 9.9e9, silently;
# one row at 1e30 passed the objective check 0.0037 off, at 1e50 both passes failed and the
# fallback returned zeros); the QR was exact to 1e-14 there.
GRADED_SPAN = 1e7
# A block of kernel values at most this large (rows x M), so memory stays O(M^2 + block).
# Large, because OpenBLAS's syrk is far from its rate on short blocks: measured at
# M = 1000, 47 GFLOP/s (n M^2 counting) on 8388-row blocks (64 MiB), 64-84 on 16384 to
# 65536 rows, against DGEMM's 92.
BLOCK_BYTES = 256 * 2**20
# OpenBLAS on AMD Zen 4 crashes in double-precision syrk from about 15500 output rows
# (gramfree.linalg's docstring); above this M the Gram blocks go through GEMMs of halves.
SYRK_MAX_ROWS = 15000
# Relative agreement required between the objective the solve implies and the one
# recomputed from the model (float64 sums of n terms agree to ~1e-12 when the solve is
# sound; an ill-conditioned whitening misses by orders of magnitude), relative to the
# best constant model's objective (_check_scale).
OBJECTIVE_CHECK = 1e-6
# Beside it, the implied objective's own cancellation, (y^T W y - g^T rhs) / sum w: this
# many float64 eps of y^T W y / sum w.
IMPLIED_ROUNDING = 1e3
# Beside it, the recomputation's own rounding (_recomputation_rounding): estimated on this
# many training rows, times this safety for the rows the probe missed.
ROUNDING_PROBE = 256
ROUNDING_SAFETY = 10.0
# The same check for a Gram formed in float32 (see the module docstring): the float32 pass
# is kept when its implied objective agrees this well, else the float64 pass runs.
FLOAT32_OBJECTIVE_CHECK = 1e-4
# Smallest squared Cholesky pivot of K_MM, relative to the largest, below which the
# whitened features are formed directly (see solve_nystrom_direct).
RANK_DEFICIENT = 1e-8
# The whitened Gram ``L^-1 G L^-T`` resolves the lightest rows' part only to about
# ``span * eps * cond(K_MM)`` (G's sums are rounded to eps of the heaviest rows' part, and
# the whitening amplifies that by K_MM's condition number); beyond this the whitened
# features are formed directly (rounded per row; about twice the Gram's flops where the
# rows outnumber the centres), and beyond GRADED_SPAN the QR. The objective check,
# quadratic in the error, cannot see it. Measured against exact references (diabetes, 200
# rows, 30 centres, five rows weighted up to 9.9e6, gamma 0.001 to 0.1, alpha 1e-3 and
# 1e-6): the Gram pass was up to 0.049 off the predictions, 0.0015 at a span of 1e5 where
# cond(K_MM) is 5e5 (a review: 2.2e-5 at 1e5, cond 1.4e6). Where this bound keeps the Gram
# pass, spans of 1e3 to 1e7 measured up to 1.6e-6 (a review, before the refinement). The
# Gram's own error, as in unweighted fits, is not the span's: 1e-5 to 5e-5 at cond(K_MM)
# 7e6 to 3e7 with weights spanning 9.3 or none (a review), which the refinement
# (REFINE_STEPS) now takes out at a pass per step; leaving the Gram for the whitened
# features would double the pass of the README's million case at m = 4000 (cond 1.2e7).
# Unweighted fits skip the estimate (it reads L twelve times, memory-bound) and keep the
# Gram: the bound would leave it only from cond ~4.5e8, where the smallest pivot
# (RANK_DEFICIENT) mostly has already.
GRAM_RESOLUTION = 1e-7
EPS = float(np.finfo(np.float64).eps)
# The whitened Gram S (either pass) is rounded to about eps times its largest eigenvalue,
# so the solve of S + alpha I resolves the model only to about eps * cond(S + alpha I)
# (estimated from its factor by _condition): where alpha is below that rounding in the
# directions the rows leave weak, normal equations square the features' condition number
# and QR does not. Beyond this, in memory, the graded QR solves instead. Diabetes, one
# weighted row, 30 given centres: 5e-5 off the closed form at alpha 1e-12, 0.64 (PCG's, after
# both Grams failed) at 1e-20. Where the rows constrain every direction the condition stays
# small at any alpha (Gaussian data at alpha 1e-8: eps * lambda_max / alpha was 2.5e-5,
# the Gram's error 7e-11; a review), so the largest eigenvalue alone does not decide.
SOLVE_RESOLUTION = 1e-5
# Iterative refinement of a Gram solve (:func:`refine_model`): the Gram's sums are rounded
# to eps of |B|^2 and the whitening amplifies that by up to cond(K_MM), so a model that
# passes the objective check (quadratic in its error) was still 1e-5 to 1e-4 off the exact
# Nystrom predictions on real data with a wide kernel (breast cancer, diabetes, digits,
# wine, Satellite; cond(K_MM) 1e7 to 1e10). Each step takes one pass over the data, for
# the normal equations' residual ``K^T W (y - K a) - alpha K_MM a`` by the fused products
# in float64, solved with the same factors: one to four steps brought those fits to
# 3e-13 to 8e-10 of a stacked-QR reference (benchmarks/bench_refinement.py, the README). A step is taken while it promises to lower the objective's sum by more than
# REFINE_FLOOR times the constant model's (a change in the predictions of about 1e-9 of
# the targets' spread), and kept only where it contracts (below).
REFINE_STEPS = 6
REFINE_FLOOR = 1e-18
# Beside a target's spread about its mean, its squared size times this, where the spread
# is smaller (a nearly constant target): the floor's measure.
REFINE_SPREAD = 1e-6
# A refined model's objective may exceed the last one's by its rounding, this many times
# the constant model's objective.
REFINE_SLACK = 1e-12
# A step is kept only where the refined model's gain is at most this share of the last:
# at the residual's rounding the gains stop falling (0.7 to 1.0 a step) and the steps
# only move the model about within it.
REFINE_CONTRACTION = 0.5
# Power and inverse iterations per estimate of cond(K_MM) (:func:`_condition`).
CONDITION_ITERATIONS = 3


def rows_for(M: int) -> int:
    """Rows of X per pass block: ``BLOCK_BYTES`` of float64 kernel values."""
    return max(1024, BLOCK_BYTES // (M * 8))


def _condition(L: np.ndarray, iterations: int = CONDITION_ITERATIONS) -> float:
    """An estimate from below of ``cond(L L^T)`` (K_MM's condition number, L its lower
    factor; LAPACK's ``trcon`` is not in the oldest scipy supported): power iteration for
    the largest eigenvalue (products with L^T and L) and inverse iteration for the
    smallest (triangular solves), a block of four vectors each, the largest Rayleigh
    quotient of each (0.54 to 0.98 of the true value in spot checks: rbf, M = 500 to
    4826). Each step reads L four times (memory-bound): in benchmarks/bench_weight_span.py
    the fit with weights uniform in [1, 10] (the estimate taken, the Gram kept) ran at
    1.03x to 1.08x the unweighted one (M = 1000, 2-core Xeon, two runs)."""
    rng = np.random.default_rng(0)
    top = rng.standard_normal((L.shape[0], 4))
    bottom = top.copy()
    largest = inverse_smallest = 0.0
    for _ in range(iterations):
        top /= np.maximum(np.linalg.norm(top, axis=0), 1e-300)
        half = L.T @ top  # |L^T x|^2 = x^T K_MM x
        largest = max(largest, float(np.max(np.sum(half * half, axis=0))))
        top = L @ half
        bottom /= np.maximum(np.linalg.norm(bottom, axis=0), 1e-300)
        half = solve_triangular(L, bottom)  # |L^-1 x|^2 = x^T K_MM^-1 x
        inverse_smallest = max(inverse_smallest, float(np.max(np.sum(half * half, axis=0))))
        bottom = solve_triangular(L, half, trans=True)
    return largest * inverse_smallest


def gram_unresolved(L: np.ndarray, span: float) -> tuple[float, str | None]:
    """``(cond, reason)``: K_MM's estimated condition number (L its factor) and, where the
    whitened Gram would resolve the rows only beyond ``GRAM_RESOLUTION`` under weights
    spanning ``span``, why the whitened features are formed instead (else None)."""
    condition = _condition(L)
    resolution = span * EPS * condition
    if resolution <= GRAM_RESOLUTION:
        return condition, None
    return condition, (
        f"the whitened Gram would resolve the rows only to {resolution:.2g} (weights "
        f"spanning {span:.2g}, K_MM's condition number about {condition:.2g})"
    )


def _add_gram(G: np.ndarray, B: np.ndarray) -> None:
    """``G += B^T B`` in G's upper triangle (float64; G F-ordered M x M, B C-ordered)."""
    M = B.shape[1]
    if M <= SYRK_MAX_ROWS:
        # B's transpose is F-ordered M x rows: no copy; G is updated in place.
        out = blas.dsyrk(1.0, B.T, beta=1.0, c=G, trans=0, lower=0, overwrite_c=1)
        if out is not G:  # f2py copied (it should not, for an F-ordered float64 G)
            G[...] = out
        return
    # One GEMM, never syrk (see SYRK_MAX_ROWS), in place and on scipy's BLAS
    # (gramfree._threads): both triangles, twice syrk's flops.
    _blas.gemm(1.0, B.T, B.T, 1.0, G, trans_b=True)


def _fill_lower(G: np.ndarray, block: int = 1024) -> None:
    """Copy G's upper triangle into its lower one, a block column at a time (no M x M
    temporaries)."""
    M = G.shape[0]
    for j0 in range(0, M, block):
        j1 = min(M, j0 + block)
        G[j1:, j0:j1] = G[j0:j1, j1:].T
        diag = G[j0:j1, j0:j1]
        low = np.tril_indices(j1 - j0, -1)
        diag[low] = diag.T[low]


def _operator(
    problem: Problem, A: np.ndarray, B: np.ndarray | None = None, dtype=np.float64
) -> KernelOperator:
    """The problem's kernel on arrays of ``dtype`` (the pass's, whatever ``kernel_dtype``)."""
    A = np.ascontiguousarray(A, dtype=dtype)
    B = None if B is None else np.ascontiguousarray(B, dtype=dtype)
    return KernelOperator(A, B, problem.kernel, n_jobs=problem.n_jobs, device=problem.device)


def _loss_sum(problem: Problem, C64: np.ndarray, coef: np.ndarray, dtype=np.float64) -> float:
    """``sum w (K(X, C) a - y)^2`` in float64 with kernel products in ``dtype``, a block
    of rows at a time: one kernel pass with t columns (cheap beside the Gram's n M^2)."""
    X, Y, w = problem.X, problem.Y, problem.sample_weight
    rows = max(256, int(BLOCK_BYTES // (8 * (X.shape[1] + Y.shape[1]))))
    C = np.ascontiguousarray(C64, dtype=dtype)
    a = coef.astype(dtype)
    loss = 0.0
    for r0 in range(0, X.shape[0], rows):
        r1 = min(X.shape[0], r0 + rows)
        res = (_operator(problem, X[r0:r1], C, dtype) @ a).astype(np.float64) - Y[r0:r1]
        loss += float(np.sum(res**2 * (1.0 if w is None else w[r0:r1, None])))
    return loss


# Features from which the residual pass (_loss_residual_sum) computes each block of kernel
# values once, into a cache-sized block both products read, instead of two fused
# products: a kernel entry then costs ~2d flops against a few to read it back (the C++
# engine's strip rule, kStripMinFeatures). benchmarks/bench_refinement.py's d = 784 rows
# (M = 500, 20000 rows, no step taken) time the whole fit with this pass at 1.08x and
# 1.15x the solver's before the residual existed; with two fused products there the pass
# took about twice as long, and at d = 16 the fused products were the faster (scratch
# timings of the pass alone, not a benchmark).
RESIDUAL_DENSE_FEATURES = 64
RESIDUAL_BLOCK_BYTES = 2 * 2**20


def _loss_residual_sum(
    problem: Problem, C64: np.ndarray, coef: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(sum w (K(X, C) a - y)^2, K(X, C)^T W (y - K(X, C) a))`` in float64, per target
    (shapes (t,) and (M, t)), a block of rows at a time: the data term and the data's part
    of the normal equations' residual. With few features by the fused products (each
    block's kernel values twice, with t columns); from ``RESIDUAL_DENSE_FEATURES`` each
    block's kernel values once, into a cache-sized block."""
    X, Y, w = problem.X, problem.Y, problem.sample_weight
    M = C64.shape[0]
    a = np.ascontiguousarray(np.asarray(coef, dtype=np.float64).reshape(M, -1))
    losses = np.zeros(Y.shape[1])
    back = np.zeros((M, Y.shape[1]))
    dense = X.shape[1] >= RESIDUAL_DENSE_FEATURES and problem.device == "cpu"
    if dense:
        rows = max(16, RESIDUAL_BLOCK_BYTES // (8 * M))
        block = np.empty((min(rows, X.shape[0]), M))
    else:
        rows = max(256, int(BLOCK_BYTES // (8 * (X.shape[1] + Y.shape[1]))))
    for r0 in range(0, X.shape[0], rows):
        r1 = min(X.shape[0], r0 + rows)
        op = _operator(problem, X[r0:r1], C64)
        K: KernelOperator | np.ndarray = op
        if dense:
            K = block[: r1 - r0]
            op._dense_into_unchecked(K)  # NaN: checked on the sums, below
        res = np.asarray(Y[r0:r1], dtype=np.float64) - K @ a
        wres = res if w is None else res * w[r0:r1, None]
        losses += np.sum(res * wres, axis=0)
        back += K.T @ wres
    if dense and not (np.isfinite(losses).all() and np.isfinite(back).all()):
        _raise_kernel_nan(problem, C64, rows, np.float64)  # the fused products' message
    return losses, back


def record_refinement(info: dict, steps: int, unfinished: bool) -> None:
    """A refinement in ``solver_info_`` (this solver's and the CV estimators' chosen
    model): ``refinement_steps``, and ``refinement_unfinished`` only where the steps ran
    out (:func:`refine_model`)."""
    info["refinement_steps"] = steps
    if unfinished:
        info["refinement_unfinished"] = True


def refine_model(
    problem: Problem,
    passes,
    C64: np.ndarray,
    L: np.ndarray,
    solve,
    coef: np.ndarray,
    alphas: np.ndarray,
    residual: tuple[np.ndarray, np.ndarray],
    *,
    scales: np.ndarray,
    floors: np.ndarray,
) -> tuple[np.ndarray, float, int, bool]:
    """Iterative refinement of a model solved from a Gram (``REFINE_STEPS``):
    ``(coef, objective, steps taken, whether the steps allowed ran out)``. ``coef`` (M x t)
    minimises, column j with ridge ``alphas[j]``, the objective up to the Gram's rounding;
    ``residual`` is its ``passes.loss_residual``; ``solve(u)`` applies the solve's ``(S +
    alpha_j I)^-1`` to each column (S the whitened Gram, ``L L^T = K_MM``). A step solves
    for the normal equations' residual ``rho = K^T W (y - K a) - alpha K_MM a`` with those
    factors, ``delta = L^-T solve(L^-1 rho)``, which lowers each target's objective by
    about its ``gain = delta^T rho``. Targets are judged apart (a large, resolved one beside
    another stopped the other's steps; a review): a target steps while its gain exceeds
    ``REFINE_FLOOR`` times its constant model's objective, ``scales[j]`` (per unit of
    weight; at least ``REFINE_SPREAD`` times its mean square, as a constant target's is
    0); its step is kept where the refined model's gain (from the pass that recomputes its
    objective) is at most ``REFINE_CONTRACTION`` of the last, so the steps contract, and
    its objective is no higher beyond its rounding, ``floors[j]`` (which hides gains below
    about eps of the objective: the gain decides). ``objective``: per unit of weight, summed over the targets."""
    kmm = _operator(problem, C64)
    alphas = np.asarray(alphas, dtype=np.float64)
    sum_w = problem.weight_sum
    scales, floors = np.asarray(scales), np.asarray(floors)
    # A target's spread, at least REFINE_SPREAD of its size (floors: eps y^T W y / sum w):
    # a constant target has none, and its gains are rounding (three passes bought 1e-14).
    spread = np.maximum(scales, REFINE_SPREAD * floors / (IMPLIED_ROUNDING * EPS))
    floor = REFINE_FLOOR * spread * sum_w
    slack = (REFINE_SLACK * scales + floors) * sum_w

    def evaluate(a, found):
        losses, back = found
        K_a = kmm @ a
        objectives = losses + alphas * np.sum(a * K_a, axis=0)  # per target, summed over w
        u = solve_triangular(L, back - K_a * alphas[None, :])
        step = solve(u)
        return objectives, solve_triangular(L, step, trans=True), np.sum(step * u, axis=0)

    coef = np.asarray(coef, dtype=np.float64).reshape(C64.shape[0], -1)
    objectives, delta, gains = evaluate(coef, residual)
    active = gains > floor
    steps = 0
    while steps < REFINE_STEPS and active.any():
        trial = coef + np.where(active[None, :], delta, 0.0)
        values, trial_delta, trial_gains = evaluate(trial, passes.loss_residual(C64, trial))
        keep = active & (trial_gains <= REFINE_CONTRACTION * gains) & (values <= objectives + slack)
        if not keep.any():
            break
        coef = np.where(keep[None, :], trial, coef)
        objectives = np.where(keep, values, objectives)
        delta = np.where(keep[None, :], trial_delta, delta)
        gains = np.where(keep, trial_gains, gains)
        active = keep & (gains > floor)
        steps += 1
    # Unfinished: the steps allowed ran out while gains above the floor remained (not a
    # step that failed to contract: that is the rounding's limit, as good as it gets).
    unfinished = steps >= REFINE_STEPS and bool(active.any())
    return coef, float(np.sum(objectives)) / sum_w, steps, unfinished


def _check_scale(yWy: float, wY: np.ndarray, weight_sum: float) -> tuple[float, float]:
    """``(scale, floor)`` of the objective checks: they allow ``check * scale + floor``
    (and the recomputation's rounding). ``scale``: the best constant model's objective,
    ``sum w (y - mean_w y)^2 / sum w`` over the targets, which an offset in y does not
    inflate; ``floor``: the implied objective's cancellation, ``IMPLIED_ROUNDING`` eps of
    ``y^T W y / sum w``. Relative to ``y^T W y / sum w`` itself, an offset took the
    tolerance past the objective: diabetes + 1e8 (gamma 0.01/d, alpha 1e-6, 50 centres)
    passed a whitening that left predictions 1.7e3 off the optimum's, 22 times the
    targets' spread, silently (a review). ``wY``: ``sum w y`` per target."""
    zero = yWy / weight_sum
    mean_square = float(np.sum(np.asarray(wY, dtype=np.float64) ** 2)) / weight_sum**2
    eps = float(np.finfo(np.float64).eps)
    return max(zero - mean_square, 0.0), max(IMPLIED_ROUNDING * eps * zero, 1e-300)


def target_scales(passes, weight_sum: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_check_scale`'s ``(scale, floor)`` per target: each target's constant model's
    objective and its rounding, per unit of weight (:func:`refine_model`)."""
    yWy = np.asarray(passes.yWy_per_target(), dtype=np.float64) / weight_sum
    mean = np.asarray(passes.wY(), dtype=np.float64) / weight_sum
    eps = float(np.finfo(np.float64).eps)
    return np.maximum(yWy - mean**2, 0.0), np.maximum(IMPLIED_ROUNDING * eps * yWy, 1e-300)


def _recomputation_rounding(problem: Problem, C64: np.ndarray, coef: np.ndarray, loss: float):
    """A bound of the float64 rounding in the recomputed objective (``(loss + alpha a^T
    K_MM a) / sum w``, ``loss`` its data sum): each prediction sums terms of up to
    ``sum_j |K_ij a_j|``, so it carries eps times that, and the loss ``2 sum_i w_i |r_i|``
    times it (at most ``sqrt(sum w) sqrt(loss)`` times the largest); the penalty ``alpha
    eps |a|^T |K_MM| |a|``, at most ``alpha eps |a|_1`` times the largest such sum over the
    centres. The largest sums from probes of training rows and of centres (small kernel
    blocks), times ROUNDING_SAFETY for the rows they missed. Where a nearly singular K_MM lets
    the coefficients reach 1e7 their terms cancel over seven digits: on an AVX2 machine
    diabetes with near-duplicate centres recomputed the objective 5e-6 (relative) from
    the solve's, above OBJECTIVE_CHECK alone, and the sound model fell back to PCG.
    Negligible for moderate coefficients (1e-12 of the objective at |a| ~ 100)."""
    eps = float(np.finfo(np.float64).eps)
    n = problem.X.shape[0]
    probe = np.unique(np.linspace(0, n - 1, min(n, ROUNDING_PROBE)).astype(np.intp))
    A = np.abs(np.asarray(coef, dtype=np.float64)).reshape(coef.shape[0], -1)
    rows = np.abs(_operator(problem, problem.X[probe], C64).to_dense()) @ A
    # The penalty's sums on a probe of centres too: the whole |K_MM| would be one more
    # M x M matrix beside the solver's (800 MB at M = 10000), per attempt.
    M = C64.shape[0]
    picked = np.unique(np.linspace(0, M - 1, min(M, ROUNDING_PROBE)).astype(np.intp))
    centres = np.abs(_operator(problem, C64[picked], C64).to_dense()) @ A
    data = 2.0 * eps * float(rows.max(initial=0.0)) * math.sqrt(problem.weight_sum * loss)
    penalty = problem.alpha * eps * float(A.sum()) * float(centres.max(initial=0.0))
    return ROUNDING_SAFETY * (data + penalty) / problem.weight_sum


def _penalty(problem: Problem, C64: np.ndarray, coef: np.ndarray) -> float:
    """``a^T K_MM a``."""
    return float(np.sum(coef * (_operator(problem, C64) @ coef)))


def _objective(problem: Problem, C64: np.ndarray, coef: np.ndarray, dtype=np.float64) -> float:
    """``(sum w (K(X, C) a - y)^2 + alpha a^T K_MM a) / sum w`` (see ``_loss_sum``)."""
    loss = _loss_sum(problem, C64, coef, dtype)
    return (loss + problem.alpha * _penalty(problem, C64, coef)) / problem.weight_sum


def _gram_pass(
    problem: Problem, C64: np.ndarray, block_rows: int, L=None, dtype=np.float64, basis=None
):
    """``(G, R)``: ``B^T B`` (upper triangle, F-ordered) and ``B^T Y`` over the data in
    blocks, ``B = W^1/2 K(X_b, C)``, or with ``L`` the whitened features ``B L^-T``, or
    with ``basis`` (M x M) the features ``B basis``. The kernel values are computed in
    ``dtype``; everything after them is float64."""
    X, Y, w = problem.X, problem.Y, problem.sample_weight
    M = C64.shape[0]
    C = np.ascontiguousarray(C64, dtype=dtype)
    G = np.zeros((M, M), order="F")
    R = np.zeros((M, Y.shape[1]))
    # One float64 block reused: a fresh one per block costs its page faults, as much as
    # computing float32 kernel values (measured at M = 1000).
    block = np.empty((min(block_rows, X.shape[0]), M))
    for r0 in range(0, X.shape[0], block_rows):
        r1 = min(X.shape[0], r0 + block_rows)
        op, B = _operator(problem, X[r0:r1], C, dtype), block[: r1 - r0]
        if problem.device == "cpu":
            op._dense_into_unchecked(B)  # NaN: checked once, on G's diagonal, below
        else:  # a GPU block comes back as a new array
            B[...] = op.to_dense()
        Yb = Y[r0:r1].astype(np.float64)
        if w is not None:
            sw = np.sqrt(w[r0:r1].astype(np.float64))
            B *= sw[:, None]
            Yb *= sw[:, None]
        if L is not None:  # B^T is F-ordered M x rows: L^-1 B^T (in place) is (B L^-T)^T
            B = blas.dtrsm(1.0, L, B.T, side=0, lower=1, trans_a=0, overwrite_b=1).T
        if basis is not None:
            B = B @ basis
        _add_gram(G, B)
        R += B.T @ Yb
    if not np.isfinite(np.trace(G)):
        _raise_kernel_nan(problem, C, block_rows, dtype)
        if np.isinf(np.trace(G)):
            # No NaN: kernel values, or their squares summed, beyond dtype's range (a
            # polynomial kernel on a row of 1e160: inf, and the solve's check named its
            # internal "B").
            raise ValueError(
                f"X: the {problem.kernel.name} kernel's values between rows of X and the "
                f"centres overflow {np.dtype(dtype).name} (their Gram's diagonal is inf); "
                "rescale X or the kernel's parameters"
            )
    _fill_lower(G)
    return G, R


def _raise_kernel_nan(problem: Problem, C: np.ndarray, block_rows: int, dtype) -> None:
    """The error ``to_dense`` gives for the first block whose kernel values hold NaN
    (values overflowing ``dtype``). Called when G's diagonal is NaN, which a NaN anywhere
    in a column of a block makes it; returns only if no block holds one (the NaN then came
    from the whitening, and the solve's checks reject the Gram)."""
    X = problem.X
    for r0 in range(0, X.shape[0], block_rows):
        _operator(problem, X[r0 : r0 + block_rows], C, dtype).to_dense()


def _ridge_solve(S: np.ndarray, rhs: np.ndarray, alpha: float):
    """``(S + alpha I)^-1 rhs`` by Cholesky (S symmetric, overwritten); the jitter used
    when alpha = 0 leaves S singular; and the factor."""
    S[np.diag_indices(S.shape[0])] += alpha
    jitter = 0.0
    if alpha > 0:
        LS = cholesky(S, overwrite=True)
    else:
        LS, jitter = jittered_cholesky(S, overwrite=True)
    return solve_triangular(LS, solve_triangular(LS, rhs), trans=True), jitter, LS


# Eigenvalues of K_MM kept by the least-squares basis, relative to the largest: its
# whitened features then have columns of the kernel's own scale (no 1e6-scaled columns from
# a jittered factor's tiny pivots), and a direction of K_nM is lost only below 1e-7 of
# the largest (a review: spam's wide kernel, 300 centres, lstsq's loss to 0.3%).
LEAST_SQUARES_CUTOFF = 1e-14


def _least_squares(
    problem: Problem,
    passes: MemoryPasses,
    centers: np.ndarray,
    C64: np.ndarray,
    yWy: float,
    check_scale: tuple[float, float],
    block_rows: int,
    start: float,
    fallback_options: dict,
) -> SolverResult:
    """alpha = 0: the least-squares fit on the centres, min |W^1/2 (K_nM a - Y)|, needs no
    penalty and so no Cholesky factor of K_MM. With coinciding centres (categorical data)
    the ridge's whitening by the jittered factor scaled whitened columns by ~1e6, the
    whitened Gram's Cholesky succeeded on rounding, and the fit came back silently at 3x
    the optimum (a review: spam, 300 centres, three duplicates: 1905 against lstsq's
    701). Here the features are whitened by K_MM's eigenvectors, those under
    ``LEAST_SQUARES_CUTOFF`` of the largest eigenvalue dropped (scikit-learn's Nystroem
    basis), each block's in the pass, and their Gram solved by its pseudo-inverse
    (directions under M eps of its largest dropped): the minimum-norm least-squares fit to
    what one pass can resolve. (The pseudo-inverse of the unwhitened Gram, which squares
    K_nM's condition, lost 22% on a wide kernel.) Checked like the ridge."""
    M = C64.shape[0]
    eps = float(np.finfo(np.float64).eps)
    s, U = np.linalg.eigh(_operator(problem, C64).to_dense())
    top = float(s[-1]) if s.size else 0.0
    keep = s > LEAST_SQUARES_CUTOFF * top
    basis = np.zeros((M, M))  # M x M with zero columns: the passes' shapes stay M
    basis[:, : int(keep.sum())] = U[:, keep] / np.sqrt(s[keep])
    S, rhs = passes.gram(C64, block_rows, dtype=np.float64, basis=basis)
    pass_time = time.perf_counter() - start
    lam, V = np.linalg.eigh(S)
    del S
    kept = lam > M * eps * (float(lam[-1]) if lam.size else 0.0)
    Vk = V[:, kept]
    g = Vk @ ((Vk.T @ rhs) / lam[kept, None])
    coef = basis @ g
    # The residual is orthogonal to the kept features: |y|^2 - g^T S g = |y|^2 - g^T rhs.
    implied = (yWy - float(np.sum(g * rhs))) / problem.weight_sum
    loss = passes.loss(C64, coef)
    exact = loss / problem.weight_sum
    scale, floor = check_scale
    allowed = OBJECTIVE_CHECK * scale + floor + _recomputation_rounding(problem, C64, coef, loss)
    info = {
        "n_centers": M,
        "least_squares_rank": int(kept.sum()),
        "pass_seconds": pass_time,
        "block_rows": block_rows,
    }
    if not abs(exact - implied) <= allowed:
        failure = f"objective implied by the solve {implied:.6g} != recomputed {exact:.6g}"
        if fallback_options["verbose"]:
            say(f"[nystrom-direct] {failure}: nystrom-pcg instead")
        result = passes.fallback(centers, **fallback_options)
        result.info.update(fallback="nystrom-pcg", fallback_reason=failure, **info)
        return result
    seconds = time.perf_counter() - start
    return SolverResult(
        centers=centers,
        coef=coef.astype(problem.X.dtype),
        n_iter=1,
        loss_curve=[exact],
        converged=True,
        info={**info, "solve_seconds": seconds - pass_time},
    )


class MemoryPasses:
    """The one-pass solver's passes over an in-memory problem's rows. Another source of
    rows (dask chunks on workers: :mod:`gramfree._dask`) provides the same methods."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def yWy(self) -> float:
        """``sum w y^2`` over the rows and targets, float64."""
        Y, w = self.problem.Y, self.problem.sample_weight
        return float(np.sum(Y.astype(np.float64) ** 2 * (1.0 if w is None else w[:, None])))

    def yWy_per_target(self) -> np.ndarray:
        """``sum w y^2`` per target, float64."""
        Y, w = self.problem.Y, self.problem.sample_weight
        return np.sum(Y.astype(np.float64) ** 2 * (1.0 if w is None else w[:, None]), axis=0)

    def wY(self) -> np.ndarray:
        """``sum w y`` per target, float64."""
        Y, w = self.problem.Y, self.problem.sample_weight
        Y64 = Y.astype(np.float64)
        return Y64.sum(axis=0) if w is None else w.astype(np.float64) @ Y64

    def weight_span(self) -> float:
        """The positive weights' largest over their smallest (:func:`._common.weight_span`):
        with K_MM's condition number, what the Gram resolves."""
        return weight_span(self.problem.sample_weight)

    def gram(self, C64, block_rows: int, L=None, dtype=np.float64, basis=None):
        """``(G, R)`` of :func:`_gram_pass` (G symmetric, both float64)."""
        return _gram_pass(self.problem, C64, block_rows, L=L, dtype=dtype, basis=basis)

    def loss(self, C64, coef, dtype=np.float64) -> float:
        """The data term of the objective (:func:`_loss_sum`)."""
        return _loss_sum(self.problem, C64, coef, dtype)

    def loss_residual(self, C64, coef) -> tuple[np.ndarray, np.ndarray]:
        """The data term and the normal equations' data residual (:func:`_loss_residual_sum`)."""
        return _loss_residual_sum(self.problem, C64, coef)

    def graded_possible(self, alpha: float) -> bool:  # noqa: ARG002 - dask's reads alpha
        """Whether :meth:`graded` can run: always, in memory."""
        return True

    def graded(self, C64, L, block_rows: int, *, singular: bool) -> tuple[np.ndarray, int, int]:
        """The coefficients and the basis's rank by QR of the rows in order of their
        norms (:mod:`._graded_qr`)."""
        from ._graded_qr import solve_graded

        return solve_graded(self.problem, C64, L, block_rows, singular=singular)

    def fallback(self, centers, *, max_iter: int, tol: float, verbose) -> SolverResult:
        """Nystrom-PCG on the same rows and centres: the last resort."""
        return solve_nystrom_pcg(self.problem, centers, max_iter=max_iter, tol=tol, verbose=verbose)


def _solved(centers: np.ndarray, coef: np.ndarray, objective: float, info: dict) -> SolverResult:
    """The result of an exact solve: one step, converged, its objective."""
    return SolverResult(
        centers=centers, coef=coef, n_iter=1, loss_curve=[objective], converged=True, info=info
    )


def solve_nystrom_direct(
    problem: Problem,
    centers: np.ndarray,
    *,
    verbose: int | bool = False,
    block_rows: int | None = None,
    max_iter: int | None = None,
    tol: float = 1e-4,
    passes: MemoryPasses | None = None,
) -> SolverResult:
    """Exact minimiser of the Nystrom ridge objective with the given centres (see the
    module docstring). ``block_rows``: rows of X per pass block (default: ``BLOCK_BYTES``
    of kernel values).

    The objective the solve implies, ``(y^T W y - g^T rhs) / sum w``, is checked against
    the one recomputed from the model. Where they differ by more than ``OBJECTIVE_CHECK``
    (``K_MM`` so ill-conditioned that whitening G amplified its rounding beyond alpha), a
    second pass whitens each block before its Gram, ``(B L^-T)^T (B L^-T)`` (scikit-learn's
    Nystroem features: positive semi-definite by construction, twice the flops). A
    numerically singular ``K_MM`` (jittered, or a smallest Cholesky pivot below
    ``RANK_DEFICIENT`` of the largest) takes that pass directly, as do weights whose span
    times K_MM's estimated condition number (``info["k_mm_condition"]``) puts the Gram's
    resolution past ``GRAM_RESOLUTION``; weights spanning beyond ``GRADED_SPAN`` take QR
    of the rows in order of their norms, as does an alpha below the whitened Gram's
    rounding (``SOLVE_RESOLUTION``, ``info["solve_resolution"]``) and any fit whose
    whitened solves both fail, wherever the passes can run it (``graded_possible``:
    always in memory; on dask where the rows outside its light tail fit on the client).
    Where they cannot, the Gram's model is kept and the last resort is Nystrom-PCG with
    ``max_iter`` and ``tol``. ``info["fallback"]`` says which
    ran.

    ``passes``: where the rows are read (default :class:`MemoryPasses` over ``problem``);
    the M x M algebra above runs here either way."""
    X, Y = problem.X, problem.Y
    n = Y.shape[0]
    M = centers.shape[0]
    passes = MemoryPasses(problem) if passes is None else passes
    C64 = np.ascontiguousarray(centers, dtype=np.float64)

    def rows_of(dtype) -> int:  # noqa: ARG001 - one size: the pass is float64 after the kernel
        return block_rows if block_rows is not None else rows_for(M)

    start = time.perf_counter()
    yWy = passes.yWy()
    scale, floor = check_scale = _check_scale(yWy, passes.wY(), problem.weight_sum)
    if problem.alpha == 0.0:
        options = dict(max_iter=max_iter or 100, tol=tol, verbose=verbose)
        return _least_squares(
            problem, passes, centers, C64, yWy, check_scale, rows_of(np.float64), start, options
        )

    # L L^T = K_MM and a = L^-T g: a ridge in g with the identity as penalty.
    kmm = _operator(problem, C64).to_dense()
    L, jitter = jittered_cholesky(kmm, overwrite=True)
    del kmm
    L = np.asfortranarray(L, dtype=np.float64)

    below_rounding: list[str] = []  # why alpha is below the Gram's rounding (QR instead)

    def attempt(S, rhs, dtype=np.float64):
        """(coef, objective, inner jitter, failure or None) of one whitened solve, S the
        whitened Gram and rhs its right-hand side, formed with products in ``dtype``."""
        try:
            g, inner, LS = _ridge_solve(S, rhs, problem.alpha)
        except np.linalg.LinAlgError as exc:
            return None, math.nan, 0.0, f"whitened system not positive definite ({exc})"
        resolution = EPS * _condition(LS)
        info["solve_resolution"] = resolution
        if resolution > SOLVE_RESOLUTION and passes.graded_possible(problem.alpha):
            below_rounding.append(
                f"alpha {problem.alpha:.3g} is below the whitened Gram's rounding: its "
                f"solve would resolve the model only to {resolution:.2g}"
            )
            return None, math.nan, 0.0, below_rounding[-1]
        coef = solve_triangular(L, g, trans=True)
        # The model is kept in X's dtype: a float32 model cannot hold what refining adds
        # (rounding exact coefficients to float32 moved the predictions 1.6e-4; a review).
        refinable = dtype == np.float64 and jitter == 0.0 and X.dtype == np.float64
        # The solve minimises the objective whose penalty is a^T (K_MM + jitter I) a
        # (L L^T = K_MM + jitter I): the implied value includes alpha jitter |a|^2, which
        # is large where a singular K_MM lets |a| grow in its null directions (spam's
        # duplicate rows: 1.6e-4 of the objective), yet the model is sound.
        jitter_term = problem.alpha * jitter * float(np.sum(coef * coef))
        implied = (yWy - float(np.sum(g * rhs)) - jitter_term) / problem.weight_sum
        if refinable:
            residual = passes.loss_residual(C64, coef)
            loss = float(np.sum(residual[0]))
        else:
            loss = passes.loss(C64, coef, dtype)
        exact = (loss + problem.alpha * _penalty(problem, C64, coef)) / problem.weight_sum
        check = FLOAT32_OBJECTIVE_CHECK if dtype == np.float32 else OBJECTIVE_CHECK
        # Relative to the constant model's objective: an interpolating fit (alpha = 0,
        # objective ~ 0) has no relative accuracy of its own.
        allowed = check * scale + floor + _recomputation_rounding(problem, C64, coef, loss)
        if not abs(exact - implied) <= allowed:
            return (
                coef,
                exact,
                inner,
                (f"objective implied by the solve {implied:.6g} != recomputed {exact:.6g}"),
            )
        if refinable:

            def solve(u):
                return solve_triangular(LS, solve_triangular(LS, u), trans=True)

            scales, floors = target_scales(passes, problem.weight_sum)
            alphas = np.full(rhs.shape[1], problem.alpha)
            refined, exact, steps, unfinished = refine_model(
                problem, passes, C64, L, solve, coef, alphas, residual, scales=scales, floors=floors
            )
            coef = refined.reshape(coef.shape)
            record_refinement(info, steps, unfinished)
        return coef, exact, inner, None

    def whitened_gram_solve(dtype):
        """The pass forming G, then ``S = L^-1 G L^-T`` (in G's memory) and its solve."""
        G, R = passes.gram(C64, rows_of(dtype), dtype=dtype)
        G = blas.dtrsm(1.0, L, G, side=0, lower=1, trans_a=0, overwrite_b=1)
        S = blas.dtrsm(1.0, L, G, side=1, lower=1, trans_a=1, overwrite_b=1)
        del G
        return attempt(S, solve_triangular(L, R), dtype)

    info: dict = {}
    pivot = float(np.min(np.diag(L)) ** 2) / max(float(np.max(np.diag(L)) ** 2), 1e-300)
    span = passes.weight_span()
    singular = jitter > 0 or pivot < RANK_DEFICIENT

    def graded_solve(reason: str, extra: dict) -> SolverResult:
        """QR of the rows in order of their norms (:mod:`._graded_qr`): row-wise stable,
        whatever the weights' span or alpha's size against the Gram's rounding."""
        coef, rank, tail = passes.graded(C64, L, rows_of(np.float64), singular=singular)
        loss = passes.loss(C64, coef)
        objective = (loss + problem.alpha * _penalty(problem, C64, coef)) / problem.weight_sum
        seconds = time.perf_counter() - start
        if verbose:
            say(f"[nystrom-direct] {reason}: QR of the rows by their norms")
        return _solved(
            centers,
            coef.astype(X.dtype),
            objective,
            {
                **extra,
                "n_centers": M,
                "jitter": 0.0,  # K_MM's range where it is singular, not a jittered factor
                "pass": "graded QR",
                "basis": "K_MM's range" if singular else "Cholesky",
                "basis_rank": rank,
                "graded_tail_rows": tail,
                "weight_span": span,
                "pass_seconds": seconds,
                "solve_seconds": 0.0,
                "block_rows": rows_of(np.float64),
            },
        )

    if span > GRADED_SPAN and passes.graded_possible(problem.alpha):
        return graded_solve(f"weights spanning {span:.2g}", {})
    if singular:
        # K_MM (numerically) singular: coinciding or nearly coinciding centres, as in data
        # with categorical features. Whitening G is then unbounded and its check would
        # fail after a wasted pass (diamonds, cps1988, shuttle, randhie: smallest pivot
        # 1e-11 to 1e-13 of the largest; Gaussian data at gamma = 1/(4d): 2.5e-4).
        failure: str | None = f"K_MM singular (jitter {jitter:g}, smallest pivot {pivot:.2g})"
    elif span > 1.0:  # the whitened features also where the Gram would not resolve the rows
        info["k_mm_condition"], failure = gram_unresolved(L, span)
    else:  # unweighted, as before the estimate (GRAM_RESOLUTION)
        failure = None
    if failure is None:
        failure = "float32 pass not tried"
        if problem.kernel_dtype == np.float32:
            coef, objective, inner_jitter, failure = whitened_gram_solve(np.float32)
            info["gram_dtype"] = "float32"
            if failure is not None and not below_rounding:
                info.update(gram_dtype="float64", float32_rejected=failure)
                if verbose:
                    say(f"[nystrom-direct] float32 Gram rejected ({failure}): a float64 pass")
        if failure is not None and not below_rounding:
            coef, objective, inner_jitter, failure = whitened_gram_solve(np.float64)
            info.setdefault("gram_dtype", "float64")
    pass_time = time.perf_counter() - start
    if failure is not None and below_rounding:  # the whitened features' Gram no better
        info.pop("gram_dtype", None)  # the model is the QR's, not a Gram's
        return graded_solve(failure, {**info, "fallback": "graded QR", "fallback_reason": failure})
    if failure is not None:
        info.update(fallback="whitened features", fallback_reason=failure)
        if verbose:
            say(f"[nystrom-direct] {failure}: a pass on whitened features")
        S, rhs = passes.gram(C64, rows_of(np.float64), L=L)
        pass_time = time.perf_counter() - start
        coef, objective, inner_jitter, failure = attempt(S, rhs)
        del S
    if failure is not None and passes.graded_possible(problem.alpha):
        # Both Grams fail where alpha is below their rounding and the rows leave
        # directions of the centres unconstrained (one row of positive weight, given
        # centres, alpha 1e-20: the Nystrom-PCG fallback was off the exact
        # predictions by 0.64 of the largest, silently); the QR carries alpha's rows exactly.
        return graded_solve(failure, {**info, "fallback": "graded QR", "fallback_reason": failure})
    if failure is not None:
        if verbose:
            say(f"[nystrom-direct] {failure}: nystrom-pcg instead")
        result = passes.fallback(centers, max_iter=max_iter or 100, tol=tol, verbose=verbose)
        result.info.update(fallback="nystrom-pcg", fallback_reason=failure, pass_seconds=pass_time)
        return result
    seconds = time.perf_counter() - start
    if verbose:
        say(
            f"[nystrom-direct] {M} centres, one pass over {n} rows in {pass_time:.2f} s, "
            f"solve {seconds - pass_time:.2f} s, jitter {jitter:g}"
        )
    return _solved(
        centers,
        coef.astype(X.dtype),
        objective,
        {
            "n_centers": M,
            "jitter": jitter,
            "inner_jitter": inner_jitter,
            "pass_seconds": pass_time,
            "solve_seconds": seconds - pass_time,
            "block_rows": rows_of(np.float64),
            **info,
        },
    )

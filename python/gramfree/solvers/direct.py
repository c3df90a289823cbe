"""Exact kernel ridge regression by a Cholesky factorization of the full kernel matrix.

Solves ``(W K + alpha I) c = W y``, written symmetrically as ``A z = b`` with
``A = S K S + alpha I``, ``z = S^-1 c``, ``b = S y`` and ``S = sqrt(W)`` (scikit-learn's
KernelRidge). Only for n small enough that an n x n matrix is cheap;
:func:`gramfree.linalg.cholesky` keeps it safe from the OpenBLAS crash at n >= 16000.

The factorization (n^3 / 3 flops) is nearly all the work, and single precision runs at
about twice the double-precision rate. So it is done in float32, and the solution is
brought to float64 accuracy against the float64 ``A`` by conjugate gradients
preconditioned by the float32 factor (LAPACK's ``dsposv`` refines, ``z += A32^-1 (b - A
z)``, without the conjugate directions), the products with ``A`` in float64; on few
features from the fused operator, so that the float64 ``A`` is never stored. With
``rho = |I - A32^-1 A|`` of about ``cond(A) * 6e-8`` (half of eps32), a step shrinks the error by about
``(sqrt(k) - 1) / (sqrt(k) + 1)``, ``k = (1 + rho) / (1 - rho)``: a few steps reach
float64 accuracy at ``O(n^2 t)`` each when the ridge keeps ``cond(A)`` well below 1e7.
When it does not (small alpha, wide kernel), float32 either cannot factor ``A`` or the
steps converge too slowly to pay off, and the float64 factorization is done after all;
``info["precision"]`` says which path gave the answer, ``info["fallback"]`` why float64.
For small n or many targets the steps cost more than float32 saves, and float64 is used
straight away (:func:`refinement_budget`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.linalg import LinAlgWarning

from .. import _blas
from .._log import caller_stacklevel
from ..linalg import cho_solve, cholesky_upper_in_place, jittered_cholesky
from ._common import Problem, SolverResult, kernel_diagonal
from ._common import memory_bytes as _memory_bytes

# The refinement stops once the estimated relative error left (max norm, per column) is
# below REFINE_TOL: a hundredth of the 1e-8 by which its answer may differ from float64's.
REFINE_TOL = 1e-10
MAX_REFINE = 10
# Float32 is not tried by default where Gershgorin's bound on its error relative to
# alpha, eps32 * (A's largest row sum) / alpha, exceeds this. The bound is loose (real
# rounding is not all along A's smallest eigenvector) and the conjugate-gradient steps
# converge for any true contraction below 1; but a failed try costs its float32
# factorization (half the float64 one) on top, so the limit is where tries stop paying
# on real data: at bounds 0.5 and 0.95 every try on five real sets converged within
# MAX_REFINE steps, at 1.8 six in ten, at 4 one in ten
# (benchmarks/bench_direct_precision.py, 10000 rows, two kernels each).
MAX_BOUND = 1.0
# ... but only where the budget allows WIDE_BOUND_STEPS steps or more: between bounds 0.5
# and 1 the steps took 4 to 10 (6 at the median) in that benchmark, and with a budget of 2
# to 5 such tries ran out and paid float32's factorization for nothing (Letter at 3000 to
# 6000 rows: 1.8-2.2x float64's time; a review). Below it the limit is NARROW_BOUND.
WIDE_BOUND_STEPS = 6
NARROW_BOUND = 0.5
# Float32 is tried only while what its path holds fits in this share of physical memory:
# the float32 matrix alone where it is streamed, else the float64 one and its float32 copy
# (auto plans the float64 matrix within 0.4 of it).
MIXED_MEMORY_SHARE = 0.6
# Rows per chunk when copying A to float32.
_CHUNK = 256
# Rows per block row when A's upper triangle is built: the extra kernel values (the
# diagonal blocks' lower halves, n * TRIANGLE_ROWS / 2) stay a few percent of n^2 / 2
# while each block still splits into whole micro-panels for every thread.
TRIANGLE_ROWS = 256
_EPS32 = float(np.finfo(np.float32).eps)
_EPS64 = float(np.finfo(np.float64).eps)
# Past this bound on the float64 solve's error in the fitted values (relative to the
# targets; _rounding_bound) the fit warns, as scikit-learn's KernelRidge does (scipy's
# LinAlgWarning).
ILL_CONDITIONED = 1e-2
# Float64 kernel values per block when A is built in float32 without its float64 copy.
_BLOCK_BYTES = 64 * 2**20
# Entries of A below this many times sqrt(A_ii A_jj) are zero in its float32 copy. A
# narrow kernel holds values down to exp(-700); in float32 they and their products in the
# factorization's updates fall below the normal range, and every operation on a subnormal
# costs a microcode assist: spam at 10x its tuned gamma has 0.4% subnormal entries, its
# factor 0.19% (1e-5 with the flush), and its default fit took 0.51 s before the flush,
# 0.16 s with it (benchmarks/bench_realdata.py, spam's narrow row, 2026-12-07; README). The
# change E it makes has ||D^-1/2 E D^-1/2|| <= n * 1e-12 (D = diag(A)), below float32's
# rounding of A for any n up to 6e4, beyond the sizes this solver takes, and the
# refinement's float64 residual uses A itself: the answer is the same.
FLUSH_BELOW = 1e-12
# Features up to which the float32 path never stores the float64 matrix: a refinement
# step's fused residual costs n^2 (2 d + 2 t + 8) flops at the engine's rate, against
# filling and copying 12 n^2 bytes once. At n = 15000, d = 16, 26 targets streaming is
# faster (benchmarks/bench_cholesky.py --direct-only); streaming every time made the
# default fits on satellite (d = 36) and mnist5k (d = 784) slower.
STREAM_MAX_FEATURES = 24


def refinement_budget(n: int, t: int) -> int:
    """Refinement steps that cost less than float32 saves.

    Float32 saves about half the float64 factorization, n^3 / 6 flops at the DGEMM rate.
    A step reads the float64 ``A`` (residual) and the float32 factor twice (two triangular
    solves), 16 bytes per entry, and does 6 n^2 t flops at rates below GEMM's: about
    ``n^2 (42 t + 864)`` DGEMM-flop equivalents on a machine that streams 10 GB/s beside
    90 GFLOP/s (a 2-core Zen 4 / Xeon). Below two steps float32 is not worth trying. (A
    rule for the streamed path from the fused product's flops alone was tried and
    dropped: with few targets and a few thousand rows the solves' memory traffic
    dominates, and it sent fits to float32 at up to 2.3x float64's time; a review.)"""
    return min(MAX_REFINE, n // (42 * t + 864))


def streams_float32(problem: Problem, memory: float) -> bool:
    """Whether the float32 path builds its matrix without the float64 one (see
    :func:`solve_direct`): float64 products on the CPU, and few features (the fused
    residual is cheap) or no room for the float64 matrix beside its float32 copy."""
    n, d = problem.X.shape
    return (
        problem.kernel_dtype == np.float64
        and problem.device == "cpu"
        and (d <= STREAM_MAX_FEATURES or 12.0 * n * n > memory)
    )


def solve_direct(problem: Problem, *, mixed_precision: bool | None = None) -> SolverResult:
    """``mixed_precision``: None chooses float32 with refinement where
    :func:`refinement_budget` allows at least two steps; True tries it whatever the size
    (up to ``MAX_REFINE`` steps); False factors in float64 straight away.

    With float64 kernel products on the CPU on few features (``STREAM_MAX_FEATURES``), or
    where only the float32 matrix fits, the float32 path never holds the float64 matrix: ``A``
    is built in float32 from float64 kernel values a block of rows at a time, and each
    refinement step's residual comes from the fused operator (a third of the memory, and
    no n x n float64 matrix to fill and copy). Otherwise (and for float32 kernel products)
    the float64 ``A`` is built, narrowed to float32, and refined against."""
    X, Y = problem.X, problem.Y
    n, t = Y.shape[0], Y.shape[1]
    alpha = problem.alpha
    s = np.sqrt(problem.weights.astype(np.float64))
    b = s[:, None] * Y.astype(np.float64)
    info: dict = {
        "factorization": "cholesky",
        "n_centers": X.shape[0],
        "precision": "float64",
        "kernel_dtype": problem.kernel_dtype.name,
    }
    A = None
    z = None
    jitter = 0.0
    measured_top = None  # A's largest absolute row sum, where a pass measured every row
    memory = MIXED_MEMORY_SHARE * _memory_bytes()
    streamed = streams_float32(problem, memory)
    budget = MAX_REFINE if mixed_precision else refinement_budget(n, t)
    mixed_bytes = (4.0 if streamed else 12.0) * n * n
    if alpha == 0.0:
        info["fallback"] = "alpha = 0 (interpolation): too ill-conditioned for float32"
    elif mixed_precision is not False and mixed_bytes > memory:
        what = "a float32 matrix" if streamed else "the float64 matrix and its float32 copy"
        info["fallback"] = f"no memory for {what} ({mixed_bytes / 2**30:.1f} GiB)"
    elif mixed_precision is not False and budget >= (1 if mixed_precision else 2):
        A32: np.ndarray | None = None
        # The largest row sum of A past which float32 is not tried by default (below).
        most = MAX_BOUND if budget >= WIDE_BOUND_STEPS else NARROW_BOUND
        limit = math.inf if mixed_precision else most * alpha / _EPS32
        if streamed:
            A32, top = _matrix32(problem, s, limit)
            op = problem.operator(X)

            def apply_A(v: np.ndarray) -> np.ndarray:
                return s[:, None] * (op @ (s[:, None] * v)) + alpha * v
        else:
            A64 = A = _matrix64(problem, s)
            A32, top = _narrowed(A64, limit)

            def apply_A(v: np.ndarray) -> np.ndarray:
                # from A's upper triangle (A.T's lower); on scipy's BLAS: gramfree._threads
                return _blas.symm_lower(A64.T, v)

        if A32 is not None:  # measured to the end (past the limit it stops)
            measured_top = top
        bound = top / alpha * _EPS32
        if bound > most and not mixed_precision:
            # float32 may not even factor A, or its steps stall: past a bound of 1 about
            # half the tries on real data failed (bench_direct_precision.py)
            info["fallback"] = (
                f"cond(A) * 1.2e-7 may reach {bound:.2g} (small alpha; float32 is tried up to "
                f"{most:g} with {budget} steps allowed): float32 refinement would not pay"
            )
        else:
            assert A32 is not None  # within the limit: built
            z, steps, why = _refined_float32(A32, b, budget, apply_A)
            info["refinement_steps"] = steps
            if z is not None:
                info["precision"] = "float32+refinement"
            else:
                info["fallback"] = why
        del A32
    if z is None:
        if A is None:
            A = _matrix64(problem, s)
        added = 0.0
        if alpha == 0.0:
            # Interpolation: allow a tiny relative jitter when K is singular.
            added = 1e-12 * float(np.mean(np.diag(A)))
            A[np.diag_indices_from(A)] += added

        def rebuild(out: np.ndarray) -> np.ndarray:
            out = _full_matrix64(problem, s, out)
            out[np.diag_indices_from(out)] += added
            return out

        # Before the factorization overwrites A.
        norm = _norm_bound(A, alpha, measured_top) if alpha > 0.0 else None
        z, jitter = _factor_with_jitter(A, b, alpha, rebuild)
        jitter += added
        if jitter > 0.0:
            info["jitter"] = jitter
        elif norm is not None:
            rounding = _rounding_bound(norm, z, b)
            if rounding > ILL_CONDITIONED:
                _warn_ill_conditioned(norm / alpha, rounding)
        if alpha == 0.0:
            _warn_if_interpolant_misses(jitter, z, b, problem.sample_weight is not None)
    coef = (s[:, None] * z).astype(X.dtype, copy=False)
    # The objective at the solution of (A + jitter I) z = b, without a pass over the
    # kernel: S K c = b - (alpha + jitter) z gives alpha <z, b> + jitter (alpha + jitter)
    # |z|^2, exact to the solve's relative accuracy.
    loss = alpha * float(np.sum(z * b)) + jitter * (alpha + jitter) * float(np.sum(z * z))
    return SolverResult(
        centers=X,
        coef=coef,
        n_iter=1,
        loss_curve=[loss / problem.weight_sum],
        converged=True,
        info=info,
    )


def _matrix64(problem: Problem, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``A = S K S + alpha I`` in float64 (the kernel in the problem's precision), its upper
    triangle only (C order, the diagonal blocks of ``TRIANGLE_ROWS`` rows whole): what
    the factorization (:func:`~gramfree.linalg.cholesky_upper_in_place`), the float32 copy
    and the symmetric product read. Half the kernel values, the other triangle never
    written nor read (with numpy's 2 MiB pages, which hold a hundred rows or more, its
    memory is still touched: the rows' upper parts share those pages). Block row
    ``[r0, r1)`` is ``K(X[r0:r1], X[r0:])``, written in place
    through a row-strided view; ``out``: the memory to use (the strict lower triangle then
    keeps what it held)."""
    n = problem.X.shape[0]
    A = np.empty((n, n)) if out is None else out
    Xk = problem._kernel_array(problem.X)
    weighted = problem.sample_weight is not None  # S = I otherwise: passes over A spared
    for r0 in range(0, n, TRIANGLE_ROWS):
        r1 = min(n, r0 + TRIANGLE_ROWS)
        # float32 kernel values are widened as they are stored: no second n x n array
        B = problem.operator(Xk[r0:r1], Xk[r0:]).to_dense(out=A[r0:r1, r0:])
        if weighted:
            B *= s[r0:r1, None]
            B *= s[None, r0:]
        B[np.arange(r1 - r0), np.arange(r1 - r0)] += problem.alpha
    return A


def _full_matrix64(problem: Problem, s: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``A = S K S + alpha I`` in float64, both triangles, into ``out`` (the jitter retries
    of :func:`~gramfree.linalg.jittered_cholesky` rebuild one triangle from the other)."""
    A = problem.operator(problem.X).to_dense(out=out)
    if problem.sample_weight is not None:
        A *= s[:, None]
        A *= s[None, :]
    A[np.diag_indices_from(A)] += problem.alpha
    return A


def _matrix32(
    problem: Problem, s: np.ndarray, limit: float = math.inf
) -> tuple[np.ndarray | None, float]:
    """``A = S K S + alpha I`` rounded to float32, its upper triangle only (as
    :func:`_narrowed` leaves it), from float64 kernel values a block row of at most
    ``TRIANGLE_ROWS`` rows and ``_BLOCK_BYTES`` at a time (the values the float64 ``A`` would hold, rounded), and its
    largest absolute row sum (Gershgorin's bound on its largest eigenvalue).

    Block row ``[r0, r1)`` is ``K(X[r0:r1], X[r0:])``: half the kernel values, and no
    pass over the block for S where there are no weights (building the whole matrix and
    scaling it took 2.5x the float64 triangle's time on Letter, a scratch timing).

    ``(None, row sum)`` as soon as a row sum exceeds ``limit``: float32 will not be used,
    and the blocks not yet formed are spared (on Letter, alpha = 1e-7 n, forming the whole
    float32 matrix before rejecting it cost a quarter of the fit)."""
    X = problem.X
    n = X.shape[0]
    # TRIANGLE_ROWS at most, or a small matrix would be one block row: all of K
    rows = max(1, min(n, TRIANGLE_ROWS, _BLOCK_BYTES // (8 * n)))
    A32 = np.empty((n, n), dtype=np.float32)
    buf = np.empty(rows * n)
    weighted = problem.sample_weight is not None
    floor = _flush_scale(s * s * kernel_diagonal(problem.kernel, X) + problem.alpha)
    floor = floor.astype(np.float32)  # as _narrowed: the rounded entries meet it
    sums = _RowSums(n)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        B = buf[: (r1 - r0) * (n - r0)].reshape(r1 - r0, n - r0)
        problem.operator(X[r0:r1], X[r0:]).to_dense(out=B)
        if weighted:
            B *= s[r0:r1, None]
            B *= s[None, r0:]
        B[np.arange(r1 - r0), np.arange(r1 - r0)] += problem.alpha
        for i0 in range(r0, r1, _CHUNK):
            i1 = min(i0 + _CHUNK, r1)
            if _narrow_rows(A32, B[i0 - r0 : i1 - r0, i0 - r0 :], i0, sums, floor) > limit:
                return None, sums.top
    return A32, sums.top


def _flush_scale(diagonal: np.ndarray) -> np.ndarray:
    """``sqrt(FLUSH_BELOW A_ii)``: entry ``(i, j)`` of A is flushed below the product of
    its row's and its column's (:data:`FLUSH_BELOW`)."""
    return np.sqrt(FLUSH_BELOW * np.maximum(np.asarray(diagonal, dtype=np.float64), 0.0))


def _flush(rows: np.ndarray, size: np.ndarray, row_scale, col_scale) -> None:
    """Zero the entries of ``rows`` (``size`` their absolute values) below
    ``row_scale_i col_scale_j`` (:data:`FLUSH_BELOW`), in place. A chunk whose least
    entry is above every threshold (a wide kernel's) skips the comparison: its outer
    product and mask were a third of the float32 copy's time."""
    if size.size == 0 or size.min() >= float(row_scale.max()) * float(col_scale.max()):
        return
    np.copyto(rows, 0, where=size < np.multiply.outer(row_scale, col_scale))


def _narrowed(A: np.ndarray, limit: float = math.inf) -> tuple[np.ndarray | None, float]:
    """The upper triangle of ``A`` (as :func:`_matrix64` builds it; the strict lower
    triangle is not read) rounded to float32 in row chunks (no float64 temporaries), and
    the largest absolute row sum of the symmetric matrix it stands for (Gershgorin's bound
    on its largest eigenvalue). ``(None, row sum)`` as soon as a row sum exceeds ``limit``
    (as :func:`_matrix32`)."""
    n = A.shape[0]
    A32 = np.empty(A.shape, dtype=np.float32)
    sums = _RowSums(n)
    floor = _flush_scale(np.diagonal(A)).astype(np.float32)
    for i0 in range(0, n, _CHUNK):
        i1 = min(i0 + _CHUNK, n)
        if _narrow_rows(A32, A[i0:i1, i0:], i0, sums, floor) > limit:
            return None, sums.top
    return A32, sums.top


def _narrow_rows(
    A32: np.ndarray, source: np.ndarray, i0: int, sums: _RowSums, floor: np.ndarray
) -> float:
    """Rows ``[i0, i1)`` of the upper triangle, ``source`` = ``A[i0:i1, i0:]`` in float64
    (its diagonal block's lower half not read), rounded into ``A32[i0:i1, i0:]`` and
    flushed (:func:`_flush`); returns the largest row sum so far (``sums``, fed the
    rounded rows: in cache, at half the bytes): row ``i``'s sum is its part from the
    diagonal on plus column ``i``'s above the diagonal, complete once its rows are done."""
    i1 = i0 + source.shape[0]
    rows = A32[i0:i1, i0:]
    rows[:, : i1 - i0] = np.triu(source[:, : i1 - i0])
    rows[:, i1 - i0 :] = source[:, i1 - i0 :]
    size = np.abs(rows)
    top = sums.add(i0, size)
    # the diagonal block (zero below its diagonal: no skipping there), then the rest
    _flush(rows[:, : i1 - i0], size[:, : i1 - i0], floor[i0:i1], floor[i0:i1])
    _flush(rows[:, i1 - i0 :], size[:, i1 - i0 :], floor[i0:i1], floor[i1:])
    return top


class _RowSums:
    """The largest absolute row sum of a symmetric matrix, fed its upper triangle's row
    chunks in order (``|A[i0:i1, i0:]|``, zero below the diagonal): row ``i``'s sum is its
    part from the diagonal on plus column ``i``'s above the diagonal, complete once the
    chunk holding row ``i`` is added."""

    def __init__(self, n: int) -> None:
        self.above = np.zeros(n)  # column j: sum of |A_ij| over the rows i <= j added
        self.top = 0.0

    def add(self, i0: int, magnitude: np.ndarray) -> float:
        i1 = i0 + magnitude.shape[0]
        self.above[i0:] += magnitude.sum(axis=0)
        own = np.diagonal(magnitude)
        rows = magnitude.sum(axis=1) + self.above[i0:i1] - own
        self.top = max(self.top, float(rows.max()))
        return self.top


def _norm_bound(A: np.ndarray, alpha: float, top: float | None = None) -> float | None:
    """A bound on ``lambda_max(A)`` where the solve's rounding may matter, else None.

    The computed ``z`` solves ``(A + E) z = b`` with ``|E|`` about ``eps |A|``, so the
    fitted values ``A z - alpha z`` move by at most about ``2 eps |A| |z|``
    (:func:`_rounding_bound`), and ``|z| <= |b| / alpha``: where ``2 eps n max(diag A) /
    alpha`` (a PSD kernel's ``lambda_max`` is below ``n`` times its largest diagonal entry:
    O(n) to read) is within ``ILL_CONDITIONED`` there is nothing to check (None). Else
    Gershgorin's bound, A's largest absolute row sum (``top`` if known, else one pass over
    the upper triangle that :func:`_matrix64` built) before the factorization overwrites
    A."""
    n = A.shape[0]
    diagonal = n * float(np.max(np.diagonal(A)))
    if 2.0 * _EPS64 * diagonal / alpha <= ILL_CONDITIONED:
        return None
    return min(diagonal, _largest_row_sum(A) if top is None else top)


def _rounding_bound(top: float, z: np.ndarray, b: np.ndarray) -> float:
    """``2 eps top |z| / |b|``, the largest over the target columns: a bound on the float64
    solve's change to the fitted values relative to the targets, from the solution itself.
    The a-priori ``eps top / alpha`` assumes all of ``z`` along an eigenvalue near alpha:
    it warned "up to 0.089" on digits' cubic kernel at alpha 1e-6, where the fit was
    accurate to 1e-12 (a review); this gave 1.3e-11 there, and 0.22 where breast cancer's
    unscaled linear kernel at alpha 1e-6 missed by 0.034."""
    size = np.linalg.norm(b, axis=0)
    seen = size > 0
    if not seen.any():
        return 0.0
    return float(2.0 * _EPS64 * top * np.max(np.linalg.norm(z, axis=0)[seen] / size[seen]))


def _largest_row_sum(A: np.ndarray) -> float:
    """The largest absolute row sum of the symmetric matrix whose upper triangle ``A``
    holds (the strict lower triangle is not read)."""
    n = A.shape[0]
    sums = _RowSums(n)
    for i0 in range(0, n, _CHUNK):
        i1 = min(i0 + _CHUNK, n)
        magnitude = np.abs(A[i0:i1, i0:])
        magnitude[:, : i1 - i0] = np.triu(magnitude[:, : i1 - i0])
        sums.add(i0, magnitude)
    return sums.top


def _warn_ill_conditioned(ratio: float, rounding: float) -> None:
    """Where float64 factored A but cannot solve it accurately: a linear or polynomial
    kernel of low rank on unscaled data, or a tiny alpha (a review: breast cancer, linear
    kernel, alpha 1e-7: predictions 38% off, 20 of 569 labels flipped, in silence; sklearn's
    KernelRidge warns there). ``ratio``: the bound on A's largest eigenvalue over alpha,
    which the weights' rescaling (weight_exponent) leaves as it is; the rescaled alpha
    itself meant nothing to the caller (a review: "alpha=7.9e-29" for alpha=100)."""
    warnings.warn(
        f"alpha is small beside the kernel matrix's largest eigenvalue (at most {ratio:.2g} "
        "times alpha, sample weights included): K + "
        f"alpha I is ill-conditioned, and float64 rounding may move the predictions by up "
        f"to {rounding:.2g} relative (to the targets); increase alpha, or standardise X (linear and "
        "polynomial kernels)",
        LinAlgWarning,
        stacklevel=caller_stacklevel(),
    )


def _factor_with_jitter(A: np.ndarray, b: np.ndarray, alpha: float, rebuild):
    """``(z, jitter)`` with ``(A + jitter I) z = b``, jitter 0 unless float64 cannot factor A.

    ``A`` as :func:`_matrix64` builds it (the upper triangle), factored in place; where
    that fails, ``rebuild(A)`` fills both triangles again for the jitter retries.

    A = S K S + alpha I is positive definite in exact arithmetic, but where alpha is below
    the rounding of K's largest entries (a linear or polynomial kernel of rank below n on
    unscaled data) the Cholesky fails. scikit-learn's KernelRidge then warns and solves by
    least squares; here the smallest relative jitter that factors A is added, and said."""
    try:
        return cho_solve(cholesky_upper_in_place(A), b), 0.0
    except np.linalg.LinAlgError:
        A = rebuild(A)  # the failed attempt overwrote part of the triangle
    scale = float(np.mean(np.diag(A)))
    # Jitter from 1e-10 of the mean diagonal, not 1e-12: the dual coefficients grow as
    # 1 / jitter in K's null directions and cancel in K @ c, so predictions carry a
    # relative error ~ 1e-16 |K| / jitter (2e-3 at 1e-12 on the test's rank-10 K).
    L, relative = jittered_cholesky(A, start=1e-10, overwrite=True)
    jitter = relative * scale
    if jitter > 0.0:
        warnings.warn(
            f"alpha={alpha:g} is below the rounding of the kernel matrix (mean diagonal "
            f"{scale:.3g}): K + alpha I is numerically singular, so {jitter:.3g} was added "
            "to its diagonal (solver_info_['jitter']); increase alpha or standardise X",
            LinAlgWarning,
            stacklevel=caller_stacklevel(),
        )
    return cho_solve(L, b), jitter


# Relative distance from the training targets past which an interpolation (alpha = 0)
# is said to miss them.
INTERPOLATION_MISS = 1e-3


def _warn_if_interpolant_misses(
    jitter: float, z: np.ndarray, b: np.ndarray, weighted: bool
) -> None:
    """alpha = 0 solves (K + jitter I) z = y, so the fit misses the targets by exactly
    ``jitter z`` (no pass over the kernel). A wide kernel makes K numerically singular and
    that miss large (a review: letter, gamma 0.01/d, 2000 rows: 0.5% of the targets, 3000
    rows: 1.8%, with no word of the jitter); said where it exceeds INTERPOLATION_MISS."""
    miss = jitter * float(np.linalg.norm(z)) / max(float(np.linalg.norm(b)), 1e-300)
    if miss > INTERPOLATION_MISS:
        warnings.warn(
            f"alpha=0 (interpolation): the kernel matrix is numerically singular on these "
            f"data, and the jitter {jitter:.3g} added to its diagonal to factor it "
            f"(solver_info_['jitter']) leaves the fit {miss:.2g} (relative"
            f"{', in the sample-weighted norm' if weighted else ''}) from the training "
            "targets; use alpha > 0, or a narrower kernel",
            LinAlgWarning,
            stacklevel=caller_stacklevel(),
        )


def _refined_float32(A32: np.ndarray, b: np.ndarray, budget: int, apply_A):
    """``(z, steps, None)`` with ``A z = b`` to about ``REFINE_TOL`` from the float32
    ``A32`` (factored in place), ``apply_A(v)`` giving ``A v`` in float64; or
    ``(None, steps, reason)`` when float32 cannot get there within ``budget`` steps.

    The steps are conjugate gradients on the float64 ``A`` preconditioned by the float32
    factor, one column per target (LAPACK's ``dsposv`` refines without the conjugate
    directions). A step costs what a refinement step costs (one product with ``A``, two
    triangular solves; CG takes one product more in all, for its first residual), but
    where refinement shrinks the error by ``rho = |I - A32^-1 A|`` per step, CG shrinks it
    by about ``(sqrt(k) - 1) / (sqrt(k) + 1)`` with ``k <= (1 + rho) / (1 - rho)``, and
    converges for any ``rho < 1``: Letter's default kernel (rbf 0.017, alpha 1e-7 n) took
    8 refinement steps to 1e-10, 6 conjugate ones.

    Each step's correction measures the error it removes; their geometric rate of decrease
    since the float32 solve (a correction of relative size 1) is the contraction rate,
    which predicts the steps still needed (one step of slack: CG speeds up after its first
    steps). A rate that does not at least halve the error is the float64 rounding floor
    when the correction is already within ten times ``REFINE_TOL`` (accepted), a stall
    otherwise."""
    try:
        L32 = cholesky_upper_in_place(A32)
    except np.linalg.LinAlgError as exc:
        return None, 0, f"float32 factorization failed ({exc})"

    def precondition(r: np.ndarray) -> np.ndarray | None:
        # Each column scaled by a power of two near its largest entry: float32 holds
        # neither 1e36 nor 1e-46, and a column at such a scale overflowed or came back
        # zero (a review). None where the float32 solve is not finite all the same.
        top = np.abs(r).max(axis=0)
        scale = np.exp2(np.round(np.log2(np.where(top > 0.0, top, 1.0))))
        u = cho_solve(L32, r / scale) * scale
        return u if np.isfinite(u).all() else None

    z = precondition(b)
    if z is None:
        return None, 0, "float32 solve not finite"
    r = b - apply_A(z)
    u = precondition(r)
    if u is None:
        return None, 0, "float32 solve not finite"
    direction = u.copy()
    ru = np.sum(r * u, axis=0)
    for step in range(1, budget + 1):
        q = apply_A(direction)
        curvature = np.sum(direction * q, axis=0)
        a = np.divide(ru, curvature, out=np.zeros_like(ru), where=curvature > 0.0)
        dz = a * direction
        z += dz
        size = float(np.max(np.abs(dz).max(axis=0) / (np.abs(z).max(axis=0) + 1e-300)))
        # the float32 solve itself counts as a correction of relative size 1
        rate = size ** (1.0 / step)
        if size * min(rate, 1.0) <= REFINE_TOL:
            return z, step, None
        if rate > 0.5:
            if size <= 10 * REFINE_TOL:
                return z, step, None  # at float64's rounding floor: as good as it gets
            return (
                None,
                step,
                (f"float32 refinement stalls (correction {size:.2g}, rate {rate:.2g})"),
            )
        needed = step + math.log(REFINE_TOL / (size * rate)) / math.log(rate)
        # one step of slack: CG speeds up after its first steps, and the rate since the
        # float32 solve is pessimistic (it rejected tries that converged within budget)
        if needed > budget + 1:
            return (
                None,
                step,
                (
                    f"float32 refinement too slow (rate {rate:.2g}: ~{math.ceil(needed)} steps, "
                    f"budget {budget})"
                ),
            )
        if step == budget:
            break
        r -= a * q
        u = precondition(r)
        if u is None:
            return None, step, "float32 solve not finite"
        ru_next = np.sum(r * u, axis=0)
        beta = np.divide(ru_next, ru, out=np.zeros_like(ru), where=ru > 0.0)
        direction = u + beta * direction
        ru = ru_next
    return None, budget, f"float32 refinement did not converge in {budget} steps"


def objective(problem: Problem, centers: np.ndarray, coef: np.ndarray) -> float:
    """``(sum_i w_i (f(x_i) - y_i)^2 + alpha ||f||^2) / sum_i w_i`` for
    ``f = K(., centers) @ coef``: one fused pass over the data and one over the centres."""
    pred = problem.operator(problem.X, centers) @ coef
    resid = ((pred - problem.Y) ** 2).sum(axis=1, dtype=np.float64)
    penalty = float(np.sum(coef * (problem.operator(centers) @ coef), dtype=np.float64))
    return float(problem.weights @ resid + problem.alpha * penalty) / problem.weight_sum

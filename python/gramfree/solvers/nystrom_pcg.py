"""Nystrom kernel ridge regression by preconditioned conjugate gradient (Falkon).

Rudi, Carratino, Rosasco (2017), Algorithm 1; Meanti et al. (2020). With M centres C and
weights W, solve ``(K_nM^T W K_nM + alpha K_MM) a = K_nM^T W y``. Preconditioner from two
M x M Choleskys, ``T^T T = K_MM`` and ``A^T A = T T^T / M + lam I`` (``lam = alpha / s``,
``s = sum w``), so that ``B = T^-1 A^-1 / sqrt(s)`` makes ``B^T H B`` close to the identity.
Each CG iteration is one fused pass ``K_nM^T W (K_nM p)`` over the data; the objective of
every iterate comes for free from the CG quantities (``conjugate_gradient`` in
:func:`falkon_cg`).

Float32 products (float32 data, or ``kernel_precision="float32"``) are refined from the
true residual: CG's recursion converges to the system its float32 products define, and
where the coefficients cancel (wide kernels, small alpha) that system is not the model's.
On 800 digits (400 centres, gamma 0.5/d, alpha 1e-3) float32 CG stopped 1.31x above the
optimum's objective (alpha 1e-4: test accuracy 0.953 against float64's 0.972) while
claiming 0.1x of it, with any ``tol``; the same float32 kernel values with float64
arithmetic land within 1e-5 of it. So when CG claims ``tol``, one pass computes the
gradient from those float32 kernel values in float64 arithmetic (``widened_residual``); where
it misses ``tol``, CG solves for the correction from it (mixed-precision iterative
refinement) until it meets ``tol`` or stops halving (``info["stagnated"]``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial

import numpy as np

from .. import _blas
from .._log import say
from .._threads import small_blas
from ..linalg import jittered_cholesky, lower_gram, solve_triangular
from ..operators import KernelOperator
from ._common import (
    BREAKDOWN_RISE,
    OFFSET_SPREAD,
    Monitor,
    Problem,
    Progress,
    SolverResult,
    centre_shares,
    uneven_weights,
    widened_blocks,
)

# Columns per block of the heavy rows' kernel columns (falkon_cg's heavy_columns): M x 256
# float64 values (20 MB at M = 10000) and their triangular solve beside the
# preconditioner's two M x M matrices.
HEAVY_BLOCK = 256
# Steps whose decrements of the objective the watch adds up (``falkon_cg``'s
# ``watch_objective``). CG's decrement at step j is alpha_j |r_j|^2, and their sum from
# step k on is the excess of iterate k over the optimum (Hestenes and Stiefel; Strakos and
# Tichy's delayed estimate): the last few steps' sum bounds from below the excess of the
# iterate that many steps back, which the current one does not exceed. One step (the
# watch before 2026-12-06) stopped on plateaus that later steps left: breast cancer, five
# rows at 1e6, 20 centres, 1.0017 times the optimum in silence (one of 144 fits with five
# rows at 1e6 to 1e8; five steps: none, for 29% more iterations), and centres far from
# the data (two of 36 fits, to 1.0026; five steps: one, 1.0017, whose plateau lasts nine
# steps, for 18% more iterations).
WATCH_STEPS = 5
# A relative residual of CG's recursion at which the watch ends whatever its steps: the
# float64 products' rounding (1e3 eps).
RESOLVED_RESIDUAL = 1e3 * float(np.finfo(np.float64).eps)


def solve_nystrom_pcg(
    problem: Problem,
    centers: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    verbose: int | bool = False,
    precond_dtype=None,
    initial_coef: np.ndarray | None = None,
    monitor: Monitor | None = None,
    center_rows: np.ndarray | None = None,
) -> SolverResult:
    """``precond_dtype``: the precision of the two M x M Cholesky factors and of the
    triangular solves with them; by default float32 where the data and the products are
    float32 (half the memory of float64 for the M^3 preconditioner, see below), else
    float64. The CG vectors are float64.

    ``initial_coef`` (M x t): a warm start, the coefficients CG starts from (mapped into
    the preconditioned variable, one extra pass for its residual). ``monitor``: called with
    (iteration, coefficients) after every iteration; True stops CG there
    (:class:`gramfree.solvers._common.Monitor`). ``center_rows``: the centres' rows in X
    where they are rows, so that heavy rows count by their own weight in the
    preconditioner (:func:`gramfree.solvers._common.centre_shares`)."""
    X, Y = problem.X, problem.Y
    w = problem.sample_weight
    # Float32 factors only where the products are float32 too: their jitter (from 1e-6 of
    # the diagonal) enters the penalty, which only float32 products' refinement measures
    # exactly (exact_penalty below). Float32 X with kernel_precision="float64" factored
    # in float32 and solved that other objective, 0.9% off in its predictions on cps1988's
    # repeated rows, in silence (a review). auto prices the factors the same way.
    pdtype = np.dtype(
        np.result_type(X.dtype, problem.kernel_dtype) if precond_dtype is None else precond_dtype
    )
    if pdtype not in (np.float32, np.float64):
        raise ValueError(f"precond_dtype: expected float32 or float64, got {pdtype}")
    op = problem.operator(X, centers)
    Wy = Y if w is None else Y * w[:, None]
    yWy = float(np.sum((Y.astype(np.float64) ** 2) * (1.0 if w is None else w[:, None])))
    ones = np.ones((Y.shape[0], 1), dtype=Wy.dtype) if w is None else w[:, None].astype(Wy.dtype)

    def normal_pass(p: np.ndarray) -> np.ndarray:
        return op.normal_matvec(p, sample_weight=w).astype(np.float64)

    exact = _ExactPass(problem, centers) if problem.kernel_dtype == np.float32 else None
    # With K_nM^T W 1 in the same pass: the centred target's right-hand side (falkon_cg).
    KtWy, centred_KtWy = centred_rhs(
        op.rmatmat(np.hstack([Wy, ones])).astype(np.float64),
        np.sum(Y.astype(np.float64) * ones, axis=0),
        problem.weight_sum,
    )

    # K_MM from float64 kernel values where the products are float32: the preconditioner
    # then factors the penalty the refinement measures (exact_penalty). With float32 values
    # the two differed by alpha times their rounding, which the refinement could not close
    # where alpha dominates: a review found every wide-kernel fit (digits, 400 centres,
    # gamma 0.003/d, alpha 1e-9 n to n) flagged stagnated and refitted in float64.
    kmm_problem = problem if exact is None else problem.in_float64()
    shares, missing = centre_shares(w, center_rows, centers.shape[0])

    def heavy_columns() -> Iterator[np.ndarray]:
        # K(C, X_H) sqrt(w_H / s) for the rows apart that are no centre, the weights
        # relative to the largest (raw ones near 1e306 overflow their sum).
        assert w is not None and missing is not None
        scale = float(np.max(w))
        root = np.sqrt((w[missing] / scale) / (problem.weight_sum / scale))
        for a in range(0, missing.size, HEAVY_BLOCK):
            rows = missing[a : a + HEAVY_BLOCK]
            block = kmm_problem.operator(centers, X[rows]).to_dense()
            block *= root[a : a + rows.size]
            yield block
            del block  # before the next is formed (the consumer drops its reference)

    def _falkon(factor_dtype: np.dtype) -> SolverResult:
        return falkon_cg(
            lambda: kmm_problem.operator(centers).to_dense(),
            normal_pass,
            KtWy,
            yWy,
            problem.weight_sum,
            problem.alpha,
            centers=centers,
            dtype=X.dtype,
            precond_dtype=factor_dtype,
            max_iter=max_iter,
            tol=tol,
            verbose=verbose,
            initial_coef=initial_coef,
            monitor=monitor,
            exact_pass=exact,
            product_dtype=problem.kernel_dtype,
            exact_penalty=None if exact is None else exact.penalty,
            center_weights=shares,
            heavy_columns=None if missing is None else heavy_columns,
            watch_objective=uneven_weights(w),
            centred_KtWy=centred_KtWy,
        )

    def _float64_products() -> SolverResult:
        return solve_nystrom_pcg(
            problem.in_float64(),
            centers,
            max_iter=max_iter,
            tol=tol,
            verbose=verbose,
            precond_dtype=np.float64,
            initial_coef=initial_coef,
            center_rows=center_rows,
        )

    retries = exact is not None and monitor is None  # a monitor's scores would mix runs
    return retry_stalled_float32(
        _falkon(pdtype),
        float64_factors=(
            (lambda: _falkon(np.dtype(np.float64)))
            if retries and precond_dtype is None and pdtype == np.float32
            else None
        ),
        float64_products=_float64_products if retries else None,
        discard=_count_discarded,
    )


def retry_stalled_float32(
    result: SolverResult,
    *,
    float64_factors: Callable[[], SolverResult] | None,
    float64_products: Callable[[], SolverResult] | None,
    discard: Callable[[SolverResult, SolverResult], None],
) -> SolverResult:
    """A float32-product fit that stagnated (``info["stagnated"]``), fitted again: with
    float64 factors, then with float64 products where the fit kept has still not
    converged, each where given, each kept if :func:`_better`. ``discard(kept,
    discarded)`` accounts for a discarded fit's work. Shared by the in-memory solver and
    the dask one (:func:`gramfree._dask.solve_nystrom_pcg_dask`), whose copies had
    drifted apart.

    Why: a float32 preconditioner of an ill-conditioned K_MM (a wide kernel) can leave
    float32 CG nothing to refine (digits, 400 centres, gamma 0.1/d, alpha 1e-4 made no
    progress from zero at all, where a float64 one reaches the optimum); and float32
    products themselves may not resolve CG's directions (a small alpha: digits, 300
    centres, gamma 0.1/d, alpha 1e-3 returned the zero model, every label 0)."""
    started = bool(result.info.get("stagnated"))
    if started and float64_factors is not None:
        retry = float64_factors()
        retry.info["precond_retry"] = True
        if _better(retry, retry.info["objective"], result):
            result, discarded = retry, result
        else:
            result.info["precond_retry"] = True
            discarded = retry
        discard(result, discarded)
    # Float64 products where float64 factors did not converge either (a factor retry that
    # ran out of iterations is not a stall, and the chain stopped there, 5% off; a review)
    if started and not result.converged and float64_products is not None:
        wide = float64_products()
        wide.info["products_retry"] = True
        wide.info["precond_retry"] = result.info.get("precond_retry", False)
        # (wide's objective may be its recursion's estimate: it has no exact pass)
        wide_objective = wide.info.get(
            "objective", wide.loss_curve[-1] if wide.loss_curve else math.inf
        )
        if wide_objective >= 0.0 and _better(wide, wide_objective, result):
            wide.info["objective"] = wide_objective
            discard(wide, result)
            return wide
        result.info["products_retry"] = True
        discard(result, wide)
    return result


def _better(retry: SolverResult, retry_objective: float, result: SolverResult) -> bool:
    """Whether a retry replaces the stalled fit: a converged retry beats one that did not
    converge, whatever their objectives; else the lower objective. A stalled float32 run
    can report an objective below the optimum: its coefficients grown into K_MM's null
    space (3644 against 0.0195: a rank-10 polynomial kernel on 25 centres) cancel in the
    float64 pass that evaluates it. It was kept over two converged retries, and narrowed
    to float32 the model was 2% off (a review)."""
    if retry.converged != result.converged:
        return retry.converged
    return retry_objective < result.info["objective"]


def _count_discarded(kept: SolverResult, discarded: SolverResult) -> None:
    """``n_iter`` counts every iteration run, the discarded fit's too (the work done);
    ``loss_curve`` and the rest of ``info`` are the kept fit's, so
    ``info["discarded_iterations"]`` says how many of ``n_iter`` they do not cover (a
    review found ``n_iter`` 6 beside a loss curve of 2, unexplained, and the discarded
    retry's iterations counted only when the retry won)."""
    kept.n_iter += discarded.n_iter  # its own discarded iterations included
    kept.info["discarded_iterations"] = kept.info.get("discarded_iterations", 0) + discarded.n_iter


class _ExactPass:
    """The refinement's pass (module docstring) over the in-process data."""

    def __init__(self, problem: Problem, centers: np.ndarray) -> None:
        self.problem = problem
        self.centers = centers
        self.Y = problem.Y.astype(np.float64)
        w = problem.sample_weight
        self.w = None if w is None else w.astype(np.float64)

    def __call__(self, coef: np.ndarray) -> tuple[np.ndarray, float]:
        # float64 kernel values: kernel_precision="float32" on float64 data is refined to
        # the float64 model (float32 kernel values alone left pcg 5-22% above it at alpha
        # 1e-6 to 1e-7), and float32 data to the float64 model of those data, as the
        # direct solvers fit it (their float32 kernel values, widened, left it 1-5% above
        # on breast cancer with a wide kernel, gamma 0.003/d, alpha 1e-3 to 1e-4).
        X, exact = self.problem.X, self.problem.in_float64()
        return widened_residual(
            lambda a, b: exact.operator(X[a:b], self.centers),
            X.shape[0],
            self.Y,
            self.w,
            coef,
            cpu=self.problem.device == "cpu",
        )

    def penalty(self, coef: np.ndarray) -> np.ndarray:
        """``K_MM coef`` from float64 kernel values (falkon_cg's ``exact_penalty``)."""
        op = self.problem.in_float64().operator(self.centers)
        return np.asarray(op @ coef, dtype=np.float64)


def widened_residual(
    operator_for: Callable[[int, int], KernelOperator],
    n: int,
    Y: np.ndarray,
    w: np.ndarray | None,
    coef: np.ndarray,
    *,
    cpu: bool = True,
) -> tuple[np.ndarray, float]:
    """``(K^T W (Y - K coef), sum w (Y - K coef)^2)`` in float64 arithmetic on the kernel
    values of ``operator_for(start, stop)`` (rows start:stop of K, any precision; see
    :func:`gramfree.solvers._common.widened_blocks`): about the cost of one CG pass."""
    gradient = np.zeros((coef.shape[0], coef.shape[1]))
    sse = 0.0
    for start, stop, K in widened_blocks(operator_for, n, coef.shape[0], cpu=cpu):
        residual = np.asarray(Y[start:stop], dtype=np.float64) - K @ coef
        weighted = residual if w is None else residual * np.asarray(w[start:stop])[:, None]
        sse += float(np.sum(weighted * residual))
        gradient += K.T @ weighted
    return gradient, sse


def centred_rhs(
    KtW_y1: np.ndarray, wY: np.ndarray, weight_sum: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(K^T W y, K^T W (y - mean_w y))`` from one pass's ``K^T W [y, 1]`` (M x (t + 1))
    and ``sum w y`` (t,)."""
    KtWy, KtW1 = np.ascontiguousarray(KtW_y1[:, :-1]), KtW_y1[:, -1]
    return KtWy, KtWy - np.outer(KtW1, wY / weight_sum)


def falkon_cg(
    kmm: np.ndarray | Callable[[], np.ndarray],
    normal_pass: Callable[[np.ndarray], np.ndarray],
    KtWy: np.ndarray,
    yWy: float,
    weight_sum: float,
    alpha: float,
    *,
    centers: np.ndarray,
    dtype,
    precond_dtype,
    max_iter: int,
    tol: float,
    verbose: int | bool = False,
    initial_coef: np.ndarray | None = None,
    monitor: Monitor | None = None,
    desc: str = "nystrom-pcg",
    exact_pass: Callable[[np.ndarray], tuple[np.ndarray, float]] | None = None,
    product_dtype=None,
    exact_penalty: Callable[[np.ndarray], np.ndarray] | None = None,
    center_weights: np.ndarray | None = None,
    heavy_columns: Callable[[], Iterable[np.ndarray]] | None = None,
    watch_objective: bool = False,
    centred_KtWy: np.ndarray | None = None,
) -> SolverResult:
    """Falkon's preconditioned CG, whatever computes the passes over the data: the
    in-process operator (:func:`solve_nystrom_pcg`) or dask's workers
    (:mod:`gramfree._dask`). ``kmm``: K(C, C) (M x M, overwritten), or a function that
    forms it; ``normal_pass(p)``:
    ``K_nM^T W K_nM p`` (float64, p in ``product_dtype``, by default ``dtype``, the
    coefficients'); ``KtWy``: ``K_nM^T W y`` (M x t,
    float64); ``yWy``: ``y^T W y``; ``weight_sum``: ``sum w``. ``exact_pass(a)``:
    ``(K_nM^T W (y - K_nM a), sum w (y - K_nM a)^2)`` more accurately than the passes'
    products, for the refinement of float32 products (module docstring); None: none.
    ``exact_penalty(a)``: ``K_MM a`` from float64 kernel values, the refinement's penalty
    (default: the preconditioner's factor, ``L L^T``: K_MM in ``precond_dtype``, jittered;
    a float32 factor of a wide kernel's K_MM, jittered by 1e-6 of its diagonal, left the
    refined fit 1-5% above the optimum at alpha 1e-3 to 1e-4, while claiming tol).
    ``center_weights``: the weight each centre stands for relative to an even share
    (:func:`gramfree.solvers._common.preconditioner_weights`; None: the even share).
    ``heavy_columns()``: ``K(C, X_H) diag(sqrt(w_H / sum w))`` (M x H, in blocks of
    ``HEAVY_BLOCK`` columns or fewer) for the rows H counted by themselves that are no
    centre (:func:`gramfree.solvers._common.apart_rows`: centres given as points, or as
    rows without them), whose part of ``K_nM^T W K_nM`` the
    preconditioner then holds exactly, ``center_weights`` sharing the rest: an even
    share for them (their weight spread over the centres) left CG at 4-12 times the
    optimum in silence (five diabetes rows at 1e6, gamma 0.01).
    ``watch_objective``: CG goes on past ``tol`` while its last ``WATCH_STEPS`` steps
    still lower the objective by more than ``tol`` of its value (and 1e-12 of its
    start), for very uneven weights (:func:`uneven_weights`): the residual is relative to
    the weighted right-hand side, where the light rows' part can fall below ``tol`` while
    the objective they carry is far from its optimum. Fifty diabetes rows at 1e6,
    clustered, a narrow kernel: CG claimed tol after one iteration at 1.07 times the
    optimum (a review). It cannot tell slow progress from none, so the preconditioner
    must count every row that weighs apart (``center_weights``, ``heavy_columns``).
    ``centred_KtWy``: ``K_nM^T W (y - mean_w y)``, for residuals relative to y's spread
    where an offset dominates ``KtWy`` (:func:`gramfree.solvers._common.residual_scale`);
    None: relative to ``KtWy``'s."""
    M = centers.shape[0]
    s = weight_sum
    lam = alpha / s
    pdtype = np.dtype(precond_dtype)
    vdtype = np.dtype(dtype if product_dtype is None else product_dtype)

    # Preconditioner: two M x M Choleskys and the product between them, all in place or
    # into one new matrix (at most two M x M matrices alive), with gramfree.linalg's
    # blocked routines, which never hand BLAS the large double-precision syrk that crashes
    # OpenBLAS on AMD Zen 4 (numpy's L.T @ L did from M = 16500). When K_MM is too close to
    # singular for its Cholesky, a jitter is added (float32: from 1e-6 of the mean diagonal,
    # float64: from 1e-12); as in Falkon, the jittered T^T T then also stands in for K_MM in
    # the ridge term, so the penalty becomes alpha (a^T K_MM a + jitter * scale * |a|^2).
    # Fashion-MNIST at M = 25000 (rbf, gamma = 0.02) needed none in float32.
    start = time.perf_counter()
    # Formed here, so that no caller's frame holds the float64 matrix while the float32
    # factor is built: passed as an argument it stayed alive through the call once the
    # call had one more keyword (the test of auto's memory plan measured 1.5x the plan).
    kmm = (kmm() if callable(kmm) else kmm).astype(pdtype, copy=False)
    L, jitter = jittered_cholesky(kmm, overwrite=True)  # L L^T = K_MM: Falkon's T is L^T
    del kmm  # L is kmm's memory
    if center_weights is None:
        inner = lower_gram(L)  # T T^T
    elif not np.max(center_weights) > 0:  # every weighted row is in heavy_columns
        inner = np.zeros((M, M), dtype=pdtype, order="F")
    else:  # T D T^T: L's rows scaled in place and back (rounding only)
        # Shares below eps^2 of the largest add less than the largest's rounding; the
        # floor keeps their roots positive in float32 (five rows at 1e150 left the others'
        # at 0, and L / 0 was NaN: a review).
        d = np.asarray(center_weights, dtype=np.float64)
        d = np.maximum(d, float(np.finfo(pdtype).eps) ** 2 * float(d.max()))
        root = np.sqrt(d)[:, None].astype(pdtype)
        L *= root
        inner = lower_gram(L)
        L /= root
    inner /= M
    # + (L^-1 K_MH)(L^-1 K_MH)^T, the rows apart's exact part, a block of columns at a
    # time; a GEMM of each block with itself, never BLAS's syrk (the Zen 4 crash:
    # gramfree.linalg).
    for columns in heavy_columns() if heavy_columns is not None else ():
        G = np.asfortranarray(solve_triangular(L, columns.astype(pdtype, copy=False)))
        del columns  # one block alive at a time, with its solve (a review: two were)
        _blas.gemm(1.0, G, G, 1.0, inner, trans_b=True)
        del G
    inner[np.diag_indices_from(inner)] += lam
    if lam == 0.0:
        inner[np.diag_indices_from(inner)] += 1e-12 * float(np.mean(np.diag(inner)))
    LA, _ = jittered_cholesky(inner, overwrite=True)  # LA LA^T = A^T A: Falkon's A is LA^T
    del inner
    precond_time = time.perf_counter() - start
    if verbose:
        say(
            f"[{desc}] preconditioner: {M} centres, {pdtype.name}, jitter {jitter:g}, "
            f"{precond_time:.1f} s"
        )

    def precond(beta: np.ndarray) -> np.ndarray:
        # T^-1 A^-1 beta with T = L^T, A = LA^T (upper triangular).
        return solve_triangular(L, solve_triangular(LA, beta, trans=True), trans=True)

    def precond_t(v: np.ndarray) -> np.ndarray:
        # A^-T T^-T v.
        return solve_triangular(LA, solve_triangular(L, v))

    def linop(beta: np.ndarray) -> np.ndarray:
        v = solve_triangular(LA, beta, trans=True)  # A^-1 beta
        p = solve_triangular(L, v, trans=True).astype(vdtype)  # T^-1 v
        c = normal_pass(p)
        return solve_triangular(LA, solve_triangular(L, c) / s + lam * v)

    rhs = precond_t(KtWy) / s
    # The recursion's objective is the difference of two sums near offset, its products
    # through triangular solves with L and LA, which amplify rounding by up to their
    # condition numbers (bounded below by their diagonals' spread). At alpha = 0 the
    # optimum of an interpolating fit is 0, and its first step landed 1.7e-9 of offset
    # below it (30 distinct rows, cond(K) 8e8): judged against a flat 1e-10, that step was
    # taken for a breakdown, undone, and the zero model returned (a review). A true
    # breakdown goes far below: -636 times offset (the coinciding centres' test). Where
    # K_MM needed a jitter (coinciding centres: singular to rounding) the spread's bound
    # is huge and let broken steps through (breast cancer, 10 repeated centres, a step
    # 8.9e-4 of offset below zero with its residual at 0.45: accuracy 0.9877 to 0.9824);
    # there it applies only to a step that reaches tol (the optimum, zero to rounding:
    # repeated rows with consistent targets, 1.4e-8 below), else the flat 1e-10. A cap of
    # 1e-6 for all rejected interpolating steps 1.2e-6 below zero on 60 distinct rows
    # (cond(K) 1.5e12: errors 10-1000x the interpolant's). Reviews of this test's forms.
    spread = _diagonal_spread(L) * _diagonal_spread(LA)
    recursion_rounding = min(1e-3, max(1e-10, 64.0 * float(np.finfo(pdtype).eps) * spread))

    # Conjugate gradient, one independent CG per output column (vectorised).
    t = KtWy.shape[1]
    if initial_coef is None:
        beta = np.zeros((M, t))
        r = rhs.copy()
    else:  # beta = B^-1 coef = A T coef (T = L^T, A = LA^T), its residual from one pass
        beta = _upper_times(LA, _upper_times(L, initial_coef.astype(np.float64)))
        r = rhs - linop(beta)
    rhs_norm = np.sqrt(np.einsum("ij,ij->j", rhs, rhs))
    if centred_KtWy is not None:
        # Relative to the centred target's right-hand side where an offset in y dominates
        # this one (_common.residual_scale's reason; the same factor).
        centred = precond_t(centred_KtWy) / s
        spread = OFFSET_SPREAD * np.sqrt(np.einsum("ij,ij->j", centred, centred))
        rhs_norm = np.where((spread > 0) & (spread < rhs_norm), spread, rhs_norm)
    rhs_norm[rhs_norm == 0] = 1.0
    loss_curve: list[float] = []
    progress = Progress(verbose, max_iter, desc)
    n_iter = 0
    breakdown = False  # float64 CG's recursion broke (conjugate_gradient)
    base = np.zeros((M, t))  # the coefficients the current CG corrects (refinement)
    settled = True  # the objective's last step was below watch_objective's bound

    def coefficients(beta: np.ndarray) -> np.ndarray:
        return base + precond(beta).astype(np.float64)

    def conjugate_gradient(
        beta, r, segment_rhs, offset
    ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
        """CG on ``G beta = segment_rhs`` from ``beta`` (residual ``r``) until the
        recursion claims ``tol`` (of the whole system's right-hand side), ``max_iter``,
        the monitor, or (with the refinement) a breakdown of the recursion's objective;
        returns ``(beta, r, stopped by the monitor, claimed tol)``. With ``G = B^T H B / s``, the quadratic ``phi(beta) = beta^T G beta / 2
        - segment_rhs^T beta`` equals ``-(segment_rhs + r)^T beta / 2``, and the ridge
        objective ``(sum w (f - y)^2 + alpha ||f||^2) / s`` is ``offset + 2 phi``: ``offset``
        is ``y^T W y / s`` for the whole system, the objective at ``base`` for a
        correction."""
        nonlocal n_iter, breakdown, settled
        p = r.copy()
        rr = np.einsum("ij,ij->j", r, r)
        stopped = broke = False
        settled = not watch_objective
        # The objective at the start: offset only from zero. A warm start that fits new
        # targets worse than the zero model was judged against offset, its first step
        # taken for a breakdown and undone: the previous model came back (a review:
        # diabetes refitted on -y, R^2 -1.77 where a cold fit reaches 0.59).
        last = offset - float(np.sum((segment_rhs + r) * beta))
        decrements: list[float] = []
        while (
            (not np.all(np.sqrt(rr) <= tol * rhs_norm) or not settled)
            and not stopped
            and not broke
            and n_iter < max_iter
        ):
            Ap = linop(p)
            pAp = np.einsum("ij,ij->j", p, Ap)
            step = np.divide(rr, pAp, out=np.zeros_like(rr), where=pAp > 0)
            beta += step * p
            r -= step * Ap
            rr_new = np.einsum("ij,ij->j", r, r)
            n_iter += 1
            value = offset - float(np.sum((segment_rhs + r) * beta))
            # CG lowers the objective at every step and it is never negative: a recursion
            # that says otherwise has lost the system to its products' rounding (float32:
            # digits, 400 centres, gamma 0.1/d, alpha 1e-4 went on to 640x the optimum's
            # objective in 100 iterations). With the refinement, check the true residual.
            previous_value = last
            broke = exact_pass is not None and (
                value < 0.0 or value > previous_value + BREAKDOWN_RISE * abs(previous_value)
            )
            # Without the refinement, float64 products: only a near-singular system breaks
            # the recursion (alpha = 0 with coinciding centres, the factor of K_MM
            # jittered by 1e-12: digits went on to an "objective" of -636 and accuracy
            # 0.11 behind a max_iter warning, its first 10 iterates 1.0). The step is
            # undone and CG stops there, saying so (info["breakdown"]).
            # Below zero by more than the factors' rounding, or a rise (judged as before
            # by 1e-10 of offset: with coinciding centres the spread's rounding reached
            # 2% of the objective, and rises of 0.5% a step went on to a worse model; a
            # review of this test's first form).
            below = (
                recursion_rounding
                if jitter == 0 or np.all(np.sqrt(rr_new) <= tol * rhs_norm)
                else 1e-10
            )
            if exact_pass is None and (
                value < -below * abs(offset)
                or value
                > previous_value + BREAKDOWN_RISE * abs(previous_value) + 1e-10 * abs(offset)
            ):
                beta -= step * p
                r += step * Ap
                breakdown = broke = True
                progress.update(n_iter, previous_value, "breakdown: the step undone")
                break
            loss_curve.append(max(value, 0.0))  # within rounding of the bound 0
            if watch_objective:
                # The floor, for interpolating fits whose objective goes to 0: far below
                # tol of it (tol^2 of the start dominated where the heavy rows are fitted
                # almost exactly, and stopped CG at 1.07 times the optimum; a review).
                decrements.append(previous_value - value)
                recent = sum(decrements[-WATCH_STEPS:])
                # Or a residual at the products' rounding, where no later step resolves
                # more: an exact preconditioner's first step left 3e-14 and ran five more
                # that changed nothing; the plateaus seen sat near tol (1e-4).
                settled = recent <= tol * max(value, 0.0) + 1e-12 * abs(offset) or bool(
                    np.all(np.sqrt(rr_new) <= RESOLVED_RESIDUAL * rhs_norm)
                )
            last = value
            progress.update(
                n_iter, loss_curve[-1], f"residual={np.max(np.sqrt(rr_new) / rhs_norm):.2e}"
            )
            p = r + np.divide(rr_new, rr, out=np.zeros_like(rr), where=rr > 0) * p
            rr = rr_new
            if monitor is not None:
                stopped = bool(monitor(n_iter, coefficients(beta).astype(dtype)))
        if broke:  # the recursion's objective is rounding now: the residual decides
            settled = True
        return beta, r, stopped, bool(np.all(np.sqrt(rr) <= tol * rhs_norm))

    with small_blas(4.0 * M * M * t):  # its triangular solves: gramfree._threads
        beta, r, stopped, claimed = conjugate_gradient(beta, r, rhs, yWy / s)
        relative = np.sqrt(np.einsum("ij,ij->j", r, r)) / rhs_norm
        coef = coefficients(beta)
        refinements = 0
        stagnated = False
        float32_gap: tuple[float, float] | None = None  # (recursion's, true) at max_iter
        best: tuple[np.ndarray, float, np.ndarray] | None = None
        if exact_pass is not None and not stopped:
            # Restart from the true residual while it misses tol and halves (above). The
            # penalty is the factor's L L^T, as in CG's system (the jittered K_MM).
            # The start is the first candidate: a fit that cannot improve on it keeps it.
            if initial_coef is None:
                best = (np.zeros((M, t)), yWy / s, np.ones(t))
            previous = np.inf
            while True:
                gradient, sse = exact_pass(coef)
                penalty = (exact_penalty or partial(_factor_product, L))(coef)
                gradient -= alpha * penalty
                objective = (sse + alpha * float(np.sum(coef * penalty))) / s
                true_rhs = precond_t(gradient) / s
                relative = np.sqrt(np.einsum("ij,ij->j", true_rhs, true_rhs)) / rhs_norm
                if loss_curve:
                    loss_curve[-1] = objective
                if best is not None and objective > best[1]:  # the correction overshot
                    coef, _, relative = best
                    stagnated = True
                    break
                best = (coef, objective, relative)
                if np.all(relative <= tol) or stopped:
                    break
                if n_iter >= max_iter:
                    # Out of iterations: max_iter bounds the work, and no retry starts
                    # here (the float64 retries, each with the whole max_iter, tripled
                    # ordinary fits given max_iter=20; reviews, of two forms of a rule that
                    # took a gap below for a stall: the first CG run's ordinary lag and a
                    # refinement's both look like rounding at a budget stop). The warning
                    # names float64 products instead (max_iter_message), with the
                    # recursion's and the true residual where the first is well below the
                    # second (digits, wide kernel, alpha 1e-8: 0.0044 against 0.027 after
                    # 100 iterations, 0.0012 against 0.026 after 2000).
                    recursion = float(np.max(np.sqrt(np.einsum("ij,ij->j", r, r)) / rhs_norm))
                    if recursion < 0.5 * float(np.max(relative)):
                        float32_gap = (recursion, float(np.max(relative)))
                    break
                # A recursion that claimed tol without halving the true residual: the
                # products' rounding is what it converged to.
                if claimed and float(np.max(relative)) > 0.5 * previous:
                    stagnated = True
                    break
                previous = float(np.max(relative))
                refinements += 1
                base = coef
                delta, r, stopped, claimed = conjugate_gradient(
                    np.zeros((M, t)), true_rhs.copy(), true_rhs, objective
                )
                coef = coefficients(delta)
    converged = bool(np.all(relative <= tol)) and settled
    progress.close(f"{n_iter} iterations, converged={converged}")

    info = {
        "n_centers": M,
        "jitter": jitter,
        "precond_dtype": pdtype.name,
        "precond_seconds": precond_time,
        "relative_residual": float(np.max(relative)),
        "warm_start": initial_coef is not None,
    }
    if breakdown:
        # The breaking iteration ran (n_iter counts it) but was undone: loss_curve has
        # none of it (gramfree.solvers._common.iterations_run reads this).
        info["breakdown"] = True
        info["discarded_iterations"] = info.get("discarded_iterations", 0) + 1
    if exact_pass is not None:
        info["refinements"] = refinements
        info["stagnated"] = stagnated
        if float32_gap is not None:
            info["float32_gap"] = float32_gap
        if best is not None:  # the returned coefficients' true objective
            info["objective"] = best[1]
    return SolverResult(
        centers=centers,
        coef=coef.astype(dtype),
        n_iter=n_iter,
        loss_curve=loss_curve,
        converged=converged,
        info=info,
    )


def _diagonal_spread(L: np.ndarray) -> float:
    """``max |L_ii| / min |L_ii|``: a lower bound on the triangular factor's condition."""
    d = np.abs(np.diagonal(L)).astype(np.float64)
    return float(d.max() / d.min()) if d.min() > 0 else np.inf


def _factor_product(L: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``L (L^T V)`` in float64 arithmetic for a lower-triangular L of either precision,
    its float32 values widened by blocks of columns (no float64 copy of L)."""
    M, block = L.shape[0], 512
    U = np.empty((M, V.shape[1]))
    for j in range(0, M, block):
        U[j : j + block] = L[j:, j : j + block].astype(np.float64).T @ V[j:]
    out = np.zeros_like(U)
    for j in range(0, M, block):
        out[j:] += L[j:, j : j + block].astype(np.float64) @ U[j : j + block]
    return out


def _upper_times(L: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``L^T V`` for a lower-triangular L (float64 result)."""
    return np.asarray(L.T @ V.astype(L.dtype, copy=False), dtype=np.float64)

"""Nystrom kernel ridge regression by preconditioned conjugate gradient (Falkon).

Rudi, Carratino, Rosasco (2017), Algorithm 1; Meanti et al. (2020). With M centres C and
weights W, solve ``(K_nM^T W K_nM + alpha K_MM) a = K_nM^T W y``. Preconditioner from two
M x M Choleskys, ``T^T T = K_MM`` and ``A^T A = T T^T / M + lam I`` (``lam = alpha / s``,
``s = sum w``), so that ``B = T^-1 A^-1 / sqrt(s)`` makes ``B^T H B`` close to the identity.
Each CG iteration is one fused pass ``K_nM^T W (K_nM p)`` over the data; the objective of
every iterate comes for free from the CG quantities (see ``_objective``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .._log import say
from .._threads import small_blas
from ..linalg import jittered_cholesky, lower_gram, solve_triangular
from ._common import Monitor, Problem, Progress, SolverResult


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
) -> SolverResult:
    """``precond_dtype``: the precision of the two M x M Cholesky factors and of the
    triangular solves with them; by default the data's (float32 data: half the memory of
    float64 for the M^3 preconditioner, see below). The CG vectors are float64.

    ``initial_coef`` (M x t): a warm start, the coefficients CG starts from (mapped into
    the preconditioned variable, one extra pass for its residual). ``monitor``: called with
    (iteration, coefficients) after every iteration; True stops CG there
    (:class:`gramfree.solvers._common.Monitor`)."""
    X, Y = problem.X, problem.Y
    w = problem.sample_weight
    pdtype = np.dtype(X.dtype if precond_dtype is None else precond_dtype)
    if pdtype not in (np.float32, np.float64):
        raise ValueError(f"precond_dtype: expected float32 or float64, got {pdtype}")
    op = problem.operator(X, centers)
    Wy = Y if w is None else Y * w[:, None]
    yWy = float(np.sum((Y.astype(np.float64) ** 2) * (1.0 if w is None else w[:, None])))

    def normal_pass(p: np.ndarray) -> np.ndarray:
        return op.normal_matvec(p, sample_weight=w).astype(np.float64)

    return falkon_cg(
        problem.operator(centers).to_dense(),
        normal_pass,
        op.rmatmat(Wy).astype(np.float64),
        yWy,
        problem.weight_sum,
        problem.alpha,
        centers=centers,
        dtype=X.dtype,
        precond_dtype=pdtype,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        initial_coef=initial_coef,
        monitor=monitor,
    )


def falkon_cg(
    kmm: np.ndarray,
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
) -> SolverResult:
    """Falkon's preconditioned CG, whatever computes the passes over the data: the
    in-process operator (:func:`solve_nystrom_pcg`) or dask's workers
    (:mod:`gramfree._dask`). ``kmm``: K(C, C) (M x M, overwritten); ``normal_pass(p)``:
    ``K_nM^T W K_nM p`` (float64, p in ``dtype``); ``KtWy``: ``K_nM^T W y`` (M x t,
    float64); ``yWy``: ``y^T W y``; ``weight_sum``: ``sum w``."""
    M = centers.shape[0]
    s = weight_sum
    lam = alpha / s
    pdtype = np.dtype(precond_dtype)

    # Preconditioner: two M x M Choleskys and the product between them, all in place or
    # into one new matrix (at most two M x M matrices alive), with gramfree.linalg's
    # blocked routines, which never hand BLAS the large double-precision syrk that crashes
    # OpenBLAS on AMD Zen 4 (numpy's L.T @ L did from M = 16500). When K_MM is too close to
    # singular for its Cholesky, a jitter is added (float32: from 1e-6 of the mean diagonal,
    # float64: from 1e-12); as in Falkon, the jittered T^T T then also stands in for K_MM in
    # the ridge term, so the penalty becomes alpha (a^T K_MM a + jitter * scale * |a|^2).
    # Fashion-MNIST at M = 25000 (rbf, gamma = 0.02) needed none in float32.
    start = time.perf_counter()
    kmm = kmm.astype(pdtype, copy=False)
    L, jitter = jittered_cholesky(kmm, overwrite=True)  # L L^T = K_MM: Falkon's T is L^T
    del kmm  # L is kmm's memory
    inner = lower_gram(L)  # T T^T
    inner /= M
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
        p = solve_triangular(L, v, trans=True).astype(dtype)  # T^-1 v
        c = normal_pass(p)
        return solve_triangular(LA, solve_triangular(L, c) / s + lam * v)

    rhs = precond_t(KtWy) / s

    # Conjugate gradient, one independent CG per output column (vectorised).
    t = KtWy.shape[1]
    if initial_coef is None:
        beta = np.zeros((M, t))
        r = rhs.copy()
    else:  # beta = B^-1 coef = A T coef (T = L^T, A = LA^T), its residual from one pass
        beta = _upper_times(LA, _upper_times(L, initial_coef.astype(np.float64)))
        r = rhs - linop(beta)
    p = r.copy()
    rr = np.einsum("ij,ij->j", r, r)
    rhs_norm = np.sqrt(np.einsum("ij,ij->j", rhs, rhs))
    rhs_norm[rhs_norm == 0] = 1.0
    loss_curve: list[float] = []
    progress = Progress(verbose, max_iter, desc)
    converged = bool(np.all(np.sqrt(rr) <= tol * rhs_norm))
    n_iter = 0
    stopped = False
    with small_blas(4.0 * M * M * t):  # its triangular solves: gramfree._threads
        while not converged and not stopped and n_iter < max_iter:
            Ap = linop(p)
            pAp = np.einsum("ij,ij->j", p, Ap)
            step = np.divide(rr, pAp, out=np.zeros_like(rr), where=pAp > 0)
            beta += step * p
            r -= step * Ap
            rr_new = np.einsum("ij,ij->j", r, r)
            n_iter += 1
            loss_curve.append(_objective(beta, rhs, r, s, yWy))
            converged = bool(np.all(np.sqrt(rr_new) <= tol * rhs_norm))
            progress.update(
                n_iter, loss_curve[-1], f"residual={np.max(np.sqrt(rr_new) / rhs_norm):.2e}"
            )
            p = r + np.divide(rr_new, rr, out=np.zeros_like(rr), where=rr > 0) * p
            rr = rr_new
            if monitor is not None:
                stopped = bool(monitor(n_iter, precond(beta).astype(dtype)))
    progress.close(f"{n_iter} iterations, converged={converged}")

    coef = precond(beta).astype(dtype)
    return SolverResult(
        centers=centers,
        coef=coef,
        n_iter=n_iter,
        loss_curve=loss_curve,
        converged=converged,
        info={
            "n_centers": M,
            "jitter": jitter,
            "precond_dtype": pdtype.name,
            "precond_seconds": precond_time,
            "relative_residual": float(np.max(np.sqrt(rr) / rhs_norm)),
            "warm_start": initial_coef is not None,
        },
    )


def _upper_times(L: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``L^T V`` for a lower-triangular L (float64 result)."""
    return np.asarray(L.T @ V.astype(L.dtype, copy=False), dtype=np.float64)


def _objective(beta: np.ndarray, rhs: np.ndarray, r: np.ndarray, s: float, yWy: float) -> float:
    # For the preconditioned system G beta = b (G = B^T H B / s, b = B^T K^T W y / s) the
    # quadratic phi(beta) = beta^T G beta / 2 - b^T beta equals -(b + r)^T beta / 2, and the
    # ridge objective (sum w (f - y)^2 + alpha ||f||^2) / s is 2 phi + y^T W y / s.
    phi = -0.5 * float(np.sum((rhs + r) * beta))
    return 2.0 * phi + yWy / s

"""Exact kernel ridge regression on every training point by preconditioned conjugate
gradients, Gram-free: the iterative twin of :mod:`direct`.

The system is EigenPro 2's symmetric one, ``(W^1/2 K W^1/2 + alpha I) c' = W^1/2 y`` with
``coef = W^1/2 c'`` (its solution minimises ``sum w (f - y)^2 + alpha ||f||^2`` over all
of ``span{k(x_i, .)}``). Each CG iteration is one fused pass ``K(X, X) p`` over the data;
no n x n matrix exists.

Why CG and not EigenPro's SGD: an epoch of EigenPro costs the same pass, but stochastic
gradient steps move an eigendirection of ``K / n`` with eigenvalue lam by about
``n lam / beta`` per epoch whatever the preconditioner (it raises the batch size, not the
progress per pass), so with a small ridge the directions between ``alpha / n`` and
``beta / (epochs n)`` never converge (Letter, rbf gamma 0.017, alpha 0.0015: 3.3 points
of accuracy lost after 30 epochs). CG's error falls as ``sqrt(kappa)`` of the
preconditioned system instead.

The preconditioner is a Nystrom approximation from a subsample S of s rows *plus the
diagonal it misses* (the FITC approximation of Gaussian-process regression):
``P^-1 = D + K_XS K_SS^-1 K_SX`` (weighted), with ``D = w (k(x, x) - q(x)) + alpha`` and
``q(x) = k_xS K_SS^-1 k_Sx`` the Nystrom approximation's own diagonal. Woodbury turns it
into an s x s Cholesky of ``I + F^T W D^-1 F`` with ``F = K_XS L^-T`` (``L L^T = K_SS``;
eigenvalues at least 1, where ``K_SS + K_SX W D^-1 K_XS`` lost definiteness with a wide
kernel and a small alpha), formed in one pass over the data, and two products with F per
iteration (F stored up to ``STORE_BYTES``, about 67000 rows at s = 2000; beyond, K_XS
recomputed by the fused operator). The diagonal is what makes one
preconditioner serve both ends of the spectrum: with a wide kernel the Nystrom part
captures K and D is about alpha (the plain Nystrom preconditioner, Frangella, Tropp &
Udell 2023); with a narrow kernel K is nearly its diagonal, which D captures, where a plain
Nystrom preconditioner ``(K_hat + alpha I)^-1`` scales every missed direction by
``1 / alpha`` and stalls.
"""

from __future__ import annotations

import time

import numpy as np

from .._log import say
from .._threads import small_blas
from ..linalg import cho_solve, jittered_cholesky, solve_triangular
from ._common import (
    BREAKDOWN_RISE,
    Monitor,
    Problem,
    Progress,
    SolverResult,
    center_rows,
    kernel_diagonal,
    objective_certified,
    residual_scale,
    uneven_weights,
    widened_blocks,
)
from .nystrom_direct import _add_gram, _fill_lower

# Rows of the subsample S: the preconditioner costs about 2 n s^2 flops once and
# 2 n s (d + t) per iteration beside the iteration's n^2 (d + t).
SUBSAMPLE = 2000
# Kernel values per block of the preconditioner's pass (float64 bytes).
BLOCK_BYTES = 64 * 2**20
# F = K(X, S) L^-T (n x s) is kept when it fits here: the preconditioner's two products
# per iteration are then GEMMs of 2 n s t flops instead of kernel passes of 2 n s (d + t),
# which cost as much as the iteration's own n^2 (d + t) pass where n is a few times s.
STORE_BYTES = 1 * 2**30
# CG iterations when the caller gives no max_iter: the real-data suite's wide kernels need
# 10-25 at tol 1e-4, its narrow ones (flat spectra) more.
DEFAULT_MAX_ITER = 100


def solve_kernel_pcg(
    problem: Problem,
    *,
    max_iter: int,
    tol: float,
    random_state: np.random.Generator,
    verbose: int | bool = False,
    n_subsample: int | None = None,
    initial_coef: np.ndarray | None = None,
    monitor: Monitor | None = None,
) -> SolverResult:
    """Every training row a centre; CG until each output's relative residual
    ``|W^1/2 y - A c'| / |W^1/2 y|`` is at most ``tol`` or ``max_iter`` iterations.

    ``n_subsample``: rows of the preconditioner's subsample (default ``SUBSAMPLE``, drawn
    among rows of positive weight). ``initial_coef`` (n x t): a warm start (one extra pass
    for its residual). ``monitor``: called with (iteration, coefficients) after every
    iteration; True stops (:class:`gramfree.solvers._common.Monitor`)."""
    X = problem.X
    n = X.shape[0]
    dtype = X.dtype
    Y = problem.Y.astype(np.float64)
    t = Y.shape[1]
    w = problem.weights.astype(np.float64)
    sw = np.sqrt(w)
    alpha = problem.alpha
    start = time.perf_counter()
    S = center_rows(random_state, n, min(n, n_subsample or SUBSAMPLE), problem.sample_weight)
    XS = np.ascontiguousarray(X[S])
    d, L, LG, jitter, F = _preconditioner(problem, XS, w)
    precond_time = time.perf_counter() - start
    if verbose:
        say(
            f"[pcg] preconditioner: Nystrom on {len(S)} rows + diagonal (median "
            f"{np.median(d):.3g}, alpha {alpha:.3g}), jitter {jitter:g}, "
            f"K(X, S) {'stored' if F is not None else 'recomputed per iteration'}, "
            f"{precond_time:.1f} s"
        )

    def apply_kernel(p: np.ndarray) -> np.ndarray:
        """``W^1/2 K W^1/2 p``: one pass over the data."""
        return sw[:, None] * problem.matvec(X, X, sw[:, None] * p).astype(np.float64)

    def check_kernel(p: np.ndarray) -> np.ndarray:
        """``apply_kernel`` for the true residual: with float32 products whose rounding
        could reach tol (:func:`_float32_sums_suffice`), their kernel values summed in
        float64 (:func:`._common.widened_blocks`; the float32 sums stagnated CG at a
        relative residual of 0.13 on digits with a wide kernel and alpha 1e-4)."""
        v = sw[:, None] * p
        if problem.kernel_dtype != np.float32 or _float32_sums_suffice(
            problem, X, sw, v, tol * float(np.min(b_norm))
        ):
            return apply_kernel(p)
        out = np.empty_like(v)
        # float64 kernel values: kernel_precision="float32" on float64 data is checked
        # against them, so CG refines to the float64 model (float32 values alone left it
        # 5-22% above it at alpha 1e-6 to 1e-7, claiming tol); float32 data to the
        # float64 model of those data, as the direct solvers fit it.
        exact = problem.in_float64()
        blocks = widened_blocks(
            lambda a, b: exact.operator(X[a:b], X), n, n, cpu=problem.device == "cpu"
        )
        for start, stop, K in blocks:
            out[start:stop] = K @ v
        return sw[:, None] * out

    def precondition(r: np.ndarray) -> np.ndarray:
        # P r = D^-1 r - D^-1 W^1/2 F (I + F^T W D^-1 F)^-1 F^T W^1/2 D^-1 r, F = K_XS L^-T.
        v = r / d[:, None]
        u = sw[:, None] * v
        if F is not None:
            return v - (sw / d)[:, None] * (F @ cho_solve(LG, F.T @ u))
        Ftu = solve_triangular(L, problem.matvec(XS, X, u).astype(np.float64))
        h = solve_triangular(L, cho_solve(LG, Ftu), trans=True)
        return v - (sw / d)[:, None] * problem.matvec(X, XS, h).astype(np.float64)

    b = sw[:, None] * Y
    b_norm, objective_cap = residual_scale(Y, w)  # |b|, or y's spread where an offset dominates
    if initial_coef is None:
        c = np.zeros((n, t))
        Kc = np.zeros((n, t))  # W^1/2 K W^1/2 c', kept for the objective
    else:  # coef = W^1/2 c': a row of weight zero has coefficient zero whatever c' holds
        start_coef = initial_coef.astype(np.float64)
        c = np.divide(start_coef, sw[:, None], out=np.zeros_like(start_coef), where=sw[:, None] > 0)
        Kc = check_kernel(c)
    weight_sum = problem.weight_sum

    float32 = problem.kernel_dtype == np.float32

    def energy() -> float:
        # CG's quadratic c'^T (A c') / 2 - b^T c', A = W^1/2 K W^1/2 + alpha I: it falls
        # at every step in exact arithmetic (the ridge objective need not).
        return float(np.sum(c * (0.5 * (Kc + alpha * c) - b)))

    def objective_of(c: np.ndarray, Kc: np.ndarray) -> float:
        # (sum w (f - y)^2 + alpha ||f||^2) / sum w with W^1/2 f = W^1/2 K W^1/2 c'.
        return (float(np.sum((Kc - b) ** 2)) + alpha * float(np.sum(c * Kc))) / weight_sum

    def objective() -> float:
        return objective_of(c, Kc)

    initial = objective()
    best, best_c = initial, c.copy()
    # Very uneven weights: the residual is relative to W^1/2 y, where the light rows'
    # part can fall below tol while the objective they carry is far from its optimum
    # (diabetes x 5, fifty clustered rows at 1e6, gamma 1: tol claimed after 5
    # iterations at 1.23 times the optimum, silently). There CG also needs the
    # objective's certificate (objective_certified): its excess over the optimum is at most
    # |r|^2, which must be within tol of the objective (and 1e-14 of the start's). A
    # watch of the objective's steps, as Nystrom-PCG's, does not serve here: CG lowers
    # its energy, and this objective rises and falls along it (a review: breast cancer
    # x 8, 89 rows at 8.4e5, stopped on a rise at 4.41 times, silently).
    certify = uneven_weights(problem.sample_weight)

    def certified(r: np.ndarray, c: np.ndarray, Kc: np.ndarray) -> bool:
        return not certify or objective_certified(r, c, Kc, b, alpha, tol, cap=objective_cap)

    rounding_ratio: float | None = None  # float32 products' rounding on CG's first direction
    loss_curve: list[float] = []
    progress = Progress(verbose, max_iter, "pcg")
    n_iter = verified = 0
    stopped = converged = stagnated = False
    last_true = np.inf
    claimed = stuck = False
    with small_blas(4.0 * len(S) * len(S) * t):  # the s x s solves: gramfree._threads
        while True:
            # (Re)start from the true residual: at first, whenever the recursively updated
            # one, which drifts from it (float32 products: by 100x), claims tol, and where
            # the recursion broke down (below).
            r = b - Kc - alpha * c
            relative = np.linalg.norm(r, axis=0) / b_norm
            residual_ok = bool(np.all(relative <= tol))
            converged = residual_ok and certified(r, c, Kc)
            # A claim of tol that did not halve the true residual: the products' rounding
            # (float32) is what the recursion converged to, not the system. Or a recursion
            # that broke down at its first step from the true residual.
            stagnated = not residual_ok and (
                stuck or (claimed and verified > 0 and float(np.max(relative)) > 0.5 * last_true)
            )
            last_true = float(np.max(relative))
            if converged or stagnated or n_iter >= max_iter or stopped:
                break
            z = precondition(r)
            p = z.copy()
            rz = np.einsum("ij,ij->j", r, z)
            broke = claimed = False
            accepted = 0
            level = energy() if float32 else 0.0  # CG's energy at the current iterate
            while n_iter < max_iter and not stopped and not claimed:
                Kp = apply_kernel(p)
                if float32 and rounding_ratio is None:
                    rounding_ratio = _float32_rounding_ratio(problem, X, sw, p, Kp + alpha * p)
                    if rounding_ratio > RESOLVE_SHARE:
                        # The float32 products cannot resolve CG's first direction (a
                        # small alpha: the preconditioner scales the directions it
                        # misses by ~1/alpha, and their products' rounding swamps A p):
                        # the recursion would run on noise (digits, gamma 0.1/d, alpha
                        # 1e-8: every label 0, silently). Products in float64 from here,
                        # and a preconditioner from float64 kernel values (one from float32
                        # values is off by more than alpha there), then a restart.
                        problem = problem.in_float64()
                        float32 = False
                        start = time.perf_counter()
                        d, L, LG, jitter, F = _preconditioner(problem, XS, w)
                        precond_time += time.perf_counter() - start
                        broke = True
                        break
                Ap = Kp + alpha * p
                pAp = np.einsum("ij,ij->j", p, Ap)
                step = np.divide(rz, pAp, out=np.zeros_like(rz), where=pAp > 0)
                c += step * p
                Kc += step * Kp
                now = energy() if float32 else 0.0
                if now > level + BREAKDOWN_RISE * abs(level):
                    # CG lowers the system's energy at every step: a recursion that raises
                    # it has lost the system to float32 rounding (digits, gamma 0.1/d,
                    # alpha 1e-6: the objective rose from 1.7 to 1500 and the fit returned
                    # zeros). Undo the step and restart from the true residual.
                    c -= step * p
                    Kc -= step * Kp
                    broke, stuck = True, accepted == 0
                    break
                level = now
                r -= step * Ap
                n_iter += 1
                accepted += 1
                loss_curve.append(objective())
                if loss_curve[-1] < best:
                    best = loss_curve[-1]
                    best_c[...] = c
                relative = np.linalg.norm(r, axis=0) / b_norm
                progress.update(n_iter, loss_curve[-1], f"residual={np.max(relative):.2e}")
                if monitor is not None:
                    stopped = bool(monitor(n_iter, (sw[:, None] * c).astype(dtype)))
                claimed = bool(np.all(relative <= tol)) and certified(r, c, Kc)
                if not claimed:
                    z = precondition(r)
                    rz_new = np.einsum("ij,ij->j", r, z)
                    p = z + np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0) * p
                    rz = rz_new
            if not claimed and not broke:  # max_iter or the monitor: the recursion's
                if float32:
                    # Its K c drifted with float32 products (a review: the objective
                    # reported 10-13% below the model's): the true one, one exact pass.
                    Kc = check_kernel(c)
                    verified += 1
                    r = b - Kc - alpha * c
                    relative = np.linalg.norm(r, axis=0) / b_norm
                break
            Kc = check_kernel(c)  # tol claimed (or the recursion broke): one exact pass
            verified += 1
    objective_final = objective()
    returned_best = not converged and best < objective_final
    if returned_best and float32:
        # The best iterate's objective is the recursion's too: one more exact pass
        # decides between it and the last.
        verified += 1
        best = objective_of(best_c, check_kernel(best_c))
        returned_best = best < objective_final
    if returned_best:
        # CG lowers the system's energy, not the ridge objective: a fit stopped short
        # (max_iter, a tiny alpha) returns its best iterate by the objective it reports.
        c, objective_final = best_c, best
    # No iterate below the start's objective: with alpha = 0 or near it and repeated rows
    # (K singular, the system inconsistent) the recursion ran away from the start, and the
    # start (zeros) came back behind "increase max_iter", which no max_iter helps (a
    # review: cps1988, 2000 rows, alpha 0 and 1e-14, objective 1.02 -> 6478 at the first
    # step and rising; direct reaches 0.34). The estimators say what does help.
    no_progress = returned_best and best >= initial
    progress.close(f"{n_iter} iterations, converged={converged}")
    return SolverResult(
        centers=X,
        coef=(sw[:, None] * c).astype(dtype),
        n_iter=n_iter,
        loss_curve=loss_curve,
        converged=converged,
        info={
            "n_centers": n,
            "n_subsample": len(S),
            "jitter": jitter,
            "precond_seconds": precond_time,
            "objective_initial": initial,
            "objective": objective_final,
            # from an exact pass when converged or with float32 products; the recursion's
            # otherwise (float64 products, stopped short)
            "relative_residual": float(np.max(relative)),
            "residual_checks": verified,
            "stagnated": stagnated,
            "returned_best_iterate": returned_best,
            "no_progress": no_progress,
            "warm_start": initial_coef is not None,
            # float32 products' rounding bound on the first direction, relative to A p
            # (None: float64 products); above RESOLVE_SHARE the products went float64.
            "rounding_ratio": rounding_ratio,
            "products": problem.kernel_dtype.name,
        },
    )


# Rows whose kernel magnitudes estimate the float32 sums' rounding (_float32_sums_suffice),
# and the factor on that estimate: eps32 |S|_2, S_i = sum_j |K_ij v_j|, was 0.05 to 0.5
# times the actual error of a float32 pass on digits, breast cancer and diabetes (wide to
# narrow kernels, alpha 1e-4 to 1, at the exact solution): twice it bounds the error.
ROUNDING_PROBE = 256
ROUNDING_SAFETY = 2.0


# Largest ratio of the float32 products' rounding bound to |A p| on CG's first direction
# under which CG keeps float32 products (_float32_rounding_ratio).
RESOLVE_SHARE = 1.0


def _float32_rounding(problem: Problem, X: np.ndarray, sw: np.ndarray, v: np.ndarray):
    """Per column, ``ROUNDING_SAFETY eps32 |S|_2`` with ``S_i = sum_j |K_ij v_j|`` (rows
    weighted by ``W^1/2``) estimated on a probe of rows: a bound on the rounding of float32
    sums of ``W^1/2 K v``."""
    n = X.shape[0]
    probe = np.unique(np.linspace(0, n - 1, min(n, ROUNDING_PROBE)).astype(np.intp))
    block = np.abs(problem.operator(X[probe], X).to_dense().astype(np.float64))
    magnitude = sw[probe, None] * (block @ np.abs(v))  # S on the probe's rows, per column
    norm = np.sqrt(np.sum(magnitude**2, axis=0) * (n / probe.size))
    return ROUNDING_SAFETY * float(np.finfo(np.float32).eps) * norm


def _float32_rounding_ratio(
    problem: Problem, X: np.ndarray, sw: np.ndarray, p: np.ndarray, Ap: np.ndarray
) -> float:
    """The float32 products' rounding of ``A p`` (:func:`_float32_rounding` of
    ``v = W^1/2 p``) relative to ``A p`` itself, worst column."""
    bound = _float32_rounding(problem, X, sw, sw[:, None] * p)
    size = np.linalg.norm(Ap, axis=0)
    return float(np.max(np.divide(bound, size, out=np.full_like(bound, np.inf), where=size > 0)))


def _float32_sums_suffice(
    problem: Problem, X: np.ndarray, sw: np.ndarray, v: np.ndarray, threshold: float
) -> bool:
    """Whether float32 sums of ``W^1/2 K v`` are accurate to half of ``threshold`` (the
    residual norm tol asks for), by :func:`_float32_rounding`. Without cancellation the
    fused float32 pass stays the check; where coefficients cancel (small alpha, wide
    kernel) the check sums in float64, a costlier pass (``widened_blocks`` materialises
    the kernel)."""
    return float(np.max(_float32_rounding(problem, X, sw, v))) <= 0.5 * threshold


def _preconditioner(problem: Problem, XS: np.ndarray, w: np.ndarray):
    """``(d, L, LG, jitter, F)``: the diagonal D (n,); ``L L^T = K_SS`` (jittered); the
    Cholesky factor of ``I + F^T W D^-1 F`` with ``F = K_XS L^-T`` (s x s, eigenvalues at
    least 1 whatever K_SS's conditioning: the form ``K_SS + K_SX W D^-1 K_XS`` lost
    definiteness with an ill-conditioned K_SS and a small alpha); and F (n x s, float64)
    when it fits in ``STORE_BYTES`` (else None: each iteration recomputes its products
    from ``K(X, S)``). All from one pass over the data in blocks."""
    X = problem.X
    n, s = X.shape[0], XS.shape[0]
    alpha = problem.alpha
    kss = problem.operator(XS).to_dense().astype(np.float64)
    L, jitter = jittered_cholesky(kss, overwrite=True)
    G = np.asfortranarray(np.eye(s))
    kdiag = kernel_diagonal(problem.kernel, X)
    # alpha = 0 leaves the rows of S without a diagonal: a floor far under the kernel's scale.
    # A positive alpha below 1e-290 of it (a subnormal one: a review) overflowed w / d.
    scale = float(np.max(w * kdiag)) or 1.0
    floor = max(alpha, 1e-290 * scale) if alpha > 0 else 1e-10 * scale
    d = np.empty(n)
    stored = np.empty((n, s)) if 8.0 * n * s <= STORE_BYTES else None
    rows = max(256, BLOCK_BYTES // (8 * s))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        C = problem.operator(X[r0:r1], XS).to_dense().astype(np.float64)
        Ft = solve_triangular(L, C.T)  # (K_XS L^-T)^T for these rows
        del C
        missed = np.maximum(kdiag[r0:r1] - np.einsum("ij,ij->j", Ft, Ft), 0.0)
        d[r0:r1] = w[r0:r1] * missed + floor
        if stored is not None:
            stored[r0:r1] = Ft.T
        _add_gram(G, np.ascontiguousarray(Ft.T * np.sqrt(w[r0:r1] / d[r0:r1])[:, None]))
    _fill_lower(G)
    LG, _ = jittered_cholesky(G, overwrite=True)
    return d, L, LG, jitter, stored

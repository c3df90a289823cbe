"""EigenPro: preconditioned stochastic gradient descent for kernel machines.

EigenPro 2 (Ma & Belkin 2019) on all training points as centres, and, with fixed centres,
EigenPro 3 (Abedsoltan, Belkin & Pandit 2023).

Both are gradient descent, in the kernel's Hilbert space, on the kernel ridge objective
``L(f) = (sum_i w_i (f(x_i) - y_i)^2 + alpha ||f||^2) / sum w``, with mini-batches of m
points and a preconditioner ``P`` that flattens the top of the spectrum. For a batch B with
residuals g:

    coef[B] -= (eta / m) g
    coef[S] += (eta / m) E diag((1 - (lam_q / lam_i)^a) / lam_i) E^T K(S, B) g

(E: the top q - 1 eigenvectors of ``K(S, S) / s`` on a Nystrom subsample S of s points,
scaled by 1 / sqrt(s); damping a = 0.95). Step and batch follow EigenPro 2: critical batch
``m* = beta / lam + 1`` (beta = max_x k(x, x)), ``eta = m / beta`` for m <= m*, else
``0.99 * 2 m / (beta + (m - 1) lam)``, where lam is the top eigenvalue of the preconditioned
operator ``P K / n``.

Why the safeguards (the published rules alone diverge on real data with a narrow kernel):
with a flat spectrum the subsample's eigenvalues beyond the first few are noise of order
1 / s, its eigenvectors do not extend to the other points, and the operator's true top
eigenvalue after preconditioning is far above the flattened lam_q that the rules assume
(Letter, rbf gamma = 0.2: q = 1078, the objective grew tenfold per epoch). So:

1. q is bounded as in EigenPro's code: at most s / 3 - 1 directions, and only those whose
   critical batch (with the damped flattened top ``lam_1^(1-a) lam_q^a``) fits the
   subsample size; except where the subsample is every row and one batch holds them all
   (n up to 2000), where the eigensystem is exact and the batch the whole gradient;
2. lam is *measured*: the top eigenvalue of the preconditioned kernel ``K - K_S E D E^T K_S``
   on an independent subsample T of the data (``/ |T|``), and the step uses the larger of
   the measured and the assumed value;
3. every epoch ends with one exact pass over the data for the objective; an epoch whose
   end point increases it overshot: the step is halved (or, with momentum, the momentum
   lowered first: ``2 mu - 1``, halving 1 / (1 - mu)), and the epoch is undone unless the
   subspace step below still finds a point under the best objective seen
   (``solver_info_``: ``rejected_epochs`` counts the overshoots, ``undone_epochs`` those
   undone; momentum reductions, halvings). Such an epoch never ends the fit as converged.
   The objective never increases, the returned model is the best iterate, and when
   consecutive undone epochs show that halving cannot make progress the solver stops and
   says so.

Two additions make each epoch count, both on by default (``variance_reduction=False,
subspace_step=False`` with no momentum is the published iteration, step for step). Why:
the preconditioner flattens only the top q - 1 directions, so with a wide kernel and a
small ridge the rest of the spectrum keeps a condition number of thousands (Letter, rbf
gamma = 0.017, alpha = 1e-7 per row). A batch's gradient is its rows' residuals of the
square system: they vanish at the optimum, but while the slow directions are far from it
they stay large (Letter's regression residuals are as large as the targets' spread), and
sampling them injects noise into every direction, the fast ones included, at every
step. Published, 30 epochs left Letter's objective 37% above the optimum and its accuracy
3.3 points under exact kernel ridge.

- **Variance reduction** (EigenPro 2): the epoch's exact pass gives every row's residual
  G at the epoch's start (the snapshot); each batch steps on ``g_B - theta G_B`` plus
  ``theta`` times the mean step of all of G (scaled by the batch's share of m rows; a pass
  over K(S, X) per epoch, about s / n of the epoch's kernel work), which is SVRG (Johnson
  & Zhang 2013) for theta = 1: what a batch samples is then only how the residuals
  changed since the snapshot, not the residuals themselves. (Unbiased for a theta fixed
  in advance; here theta comes from the batch before, drawn from the same permutation,
  so only nearly.) theta, per target column, is the control variate's
  least-squares weight ``cov(g, G) / var(G)`` measured on the previous batch (1 on the
  first, which starts at the snapshot): where an epoch moves the state far from its
  snapshot (a large ridge: randhie, cps1988) plain SVRG's stale snapshot adds noise
  (randhie's default kernel, random_state=0, to tol: 17 epochs against plain SGD's 7);
  the fitted weight falls towards 0 there (5 epochs).
- **Subspace step**: the objective is quadratic and the exact pass gives K times the
  epoch's move (the change of the predictions), so the best combination of the epoch's
  move and the two previous epochs' moves, per target column, is a 3 x 3 solve with no
  kernel pass (like GMRES or Anderson acceleration of the epoch map, and CG's recurrence
  where the epoch map is linear). It never increases the objective (the epoch's start and
  end are among the candidates), so it also replaces an overshooting epoch by the best
  point along it. Memory: the two moves kept, their predictions and the snapshot's
  residuals, about eight n x t float64 arrays in all.

With both, heavy-ball momentum made every real-data set tried worse, and is off by
default (``momentum`` sets it; MaSS, Liu & Belkin 2020, is the accelerated variant for
kernel SGD). EigenPro 3 (fixed centres) gets the subspace step; its variance reduction
would need a pass over K(Z, X) per epoch and is not implemented.

Weights and ridge: EigenPro 2 iterates on the symmetric system
``(W^1/2 K W^1/2 + alpha I) c' = W^1/2 y`` with ``coef = W^1/2 c'``, i.e. on the kernel
``sqrt(w_i w_j) k(x_i, x_j)``; beta = max w k(x, x) + alpha and the ridge lifts every
eigenvalue by alpha / n.

EigenPro 3 keeps the model on p fixed centres Z. The stochastic functional gradient
``G = (1/m) sum_B g_i k(x_i, .) + (alpha / n) f`` is preconditioned with a subsample S of
the centres and projected onto span{k(z, .)} exactly by a Cholesky of K(Z, Z) (the paper
iterates EigenPro 2 for this projection). Its fixed point is the Nystrom ridge solution on
Z, the objective of :mod:`nystrom_pcg`; being a least-squares problem (residuals do not
vanish), constant-step SGD stalls at a noise floor, which the halving rule and the
subspace step lower. So an epoch that changes the objective by less than ``tol`` ends the
fit as converged only where the gradient's bound on the gap to that solution agrees
(``_gap_bound``, one transposed pass: within ``CERTIFY * tol``); otherwise the fit stops
"uncertified" and the estimator warns. Without it, fits stopped silently at up to 3.9
times the optimum's objective (wine, 100 centres, alpha 1e-8) and 2.5% above it
(diabetes, alpha 1e-2), found by a sweep against the exact Nystrom solution.

EigenPro 2 out of epochs (``max_iter``) or out of step halvings ("stalled") still
reports convergence where the objective's certificate of PCG on all points
(``objective_certified``) finds the kept model within ``CERTIFY * tol`` of its optimum;
one pass or two, once.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.linalg as sla
from scipy.sparse.linalg import eigsh

from ..linalg import cho_solve, jittered_cholesky, solve_triangular
from ._common import (
    Monitor,
    Problem,
    Progress,
    SolverResult,
    kernel_diagonal,
    objective_certified,
    problem_rows,
    residual_scale,
    symmetric_eigh,
)
from .kernel_pcg import ROUNDING_PROBE

DAMPING = 0.95
# EigenPro 2's published safety factor on the step beyond the critical batch size.
STEP_SAFETY = 0.99
# Points of the independent subsample on which the preconditioned operator's top
# eigenvalue is measured (a dense t x t eigenproblem: 4000 costs about a second).
MEASURE_POINTS = 4000
# Consecutive halvings after which an epoch that still increases the objective stops the
# solver (the step is then 2^-10 of the rule's: no useful progress is possible).
MAX_HALVINGS = 10
# Epoch moves the subspace step combines: the epoch's own and the two before it (Letter's
# default kernel, KernelClassifier with random_state=0, objective's excess after 30
# epochs, in scratch runs of this step's first version: 3.3% with 2 moves, 2.0% with 3,
# 2.0% with 5; module docstring).
SUBSPACE_MOVES = 3
# Relative error of the combined predictions (a bound) past which they are recomputed by
# an exact pass (_subspace_factors; EigenPro 3 on digits with the step halved 27 times:
# factors of 1e5 took the reported objective 5e-3 away from the model's in 45 epochs).
DRIFT_LIMIT = 1e-12
# EigenPro 3's stop on a small change of the objective needs its gradient's bound on the
# gap to the optimum (_gap_bound) within this many times tol; else it is reported as not
# converged ("uncertified"): the bound is loose where the data's curvature exceeds alpha's,
# so this leaves room, and a gap it cannot bound below 10 tol is one to say.
CERTIFY = 10.0
_EPS64 = float(np.finfo(np.float64).eps)
# Relative change of the objective over an epoch below which the subspace step is not
# taken: the objective, computed from values that carry rounding of eps |K| |coef|, no
# longer resolves its model (a 200-row test set with tol 1e-14: with the step, garbage
# factors there stalled the residual at 1e-4; without, it reaches 1e-14).
SUBSPACE_FLOOR = 1e-10
# Eigenvalues of the subsample's kernel at least this many eps (of the kernel values'
# precision) of its largest: what its rounding resolves (_eigensystem's whole).
RESOLVED_EIGENVALUE = 1e2


def _subsample_size(n: int) -> int:
    return min(n, 2000 if n < 100_000 else 12_000)


def _eigensystem(
    kss: np.ndarray,
    beta: float,
    shift: float,
    max_batch: int,
    max_q: int,
    whole: bool = False,
    eps: float = _EPS64,
):
    """Preconditioner from ``K(S, S)`` (float64, weighted if need be).

    Returns ``(E, D, lam_flat, q)``: the scaled top q - 1 eigenvectors, the diagonal of the
    correction, and the top eigenvalue after flattening (``lam_1^(1-a) lam_q^a`` with the
    ridge shift) that the published step rule assumes. ``whole``: the subsample is every
    row and one batch holds them all (the batch rule then bounds nothing but the
    eigenvalues ``RESOLVED_EIGENVALUE eps`` of the top resolves, ``eps`` the kernel
    values' precision)."""
    s = kss.shape[0]
    vals, vecs = symmetric_eigh(kss / s)
    vals, vecs = np.maximum(vals[::-1], 0.0), vecs[:, ::-1]
    lam = vals + shift
    # Flattened top for each candidate q, and its critical batch size.
    flat = lam[0] ** (1 - DAMPING) * np.maximum(lam, 1e-300) ** DAMPING
    if whole:
        # The subsample is every row and a batch holds them all: the eigensystem is the
        # data's own and the batch is the whole gradient (m = n, the linear regime's step
        # m / beta), so nothing bounds q but max_q. The batch rule left a wide kernel one
        # direction and batches of 2, SGD whose noise no epoch outran (iris, gamma
        # 0.00025, alpha 1e-8: 0.947 against direct's 0.987 after 30 epochs; very uneven
        # weights, whose beta is the heaviest row's, likewise; a review). Only the
        # eigenvalues the kernel values resolve, though: float32 ones' rounding (eps32
        # lam_1) made directions of noise (iris, gamma 0.00025: q = 49 down to 1.05e-9 of
        # a top of 1, accuracy 0.39 where 0.87 was; a review).
        ok = np.nonzero(vals >= RESOLVED_EIGENVALUE * eps * vals[0])[0]
    else:
        ok = np.nonzero(beta / flat + 1 <= min(max_batch, s))[0]
    q = int(ok[-1]) + 1 if ok.size else 1
    # Never flatten below the ridge: the top directions go down to vals[q - 1], and where
    # that is under the shift (a large alpha) they come out far below alpha / n and stop
    # moving; with the shifted eigenvalues every q passed the batch rule (q of 49-598
    # where 2-5 work) and iris, alpha 30, stopped at the zero model, "converged" (a review).
    # Flattened only down to the shift, the conditioning there is at most 2 anyway.
    q = min(q, max(1, int(np.count_nonzero(vals >= shift))))
    q = max(1, min(q, max_q, s - 1)) if s > 1 else 1
    top = vals[: q - 1]
    E = vecs[:, : q - 1] / np.sqrt(s)
    D = (1.0 - (vals[q - 1] / top) ** DAMPING) / top
    return E, D, float(flat[q - 1]), q


def _measured_top(problem, XT, swT, XS, swS, E, D, shift) -> float:
    """Top eigenvalue of the preconditioned operator ``(K - K_S E D E^T K_S) / n`` estimated
    on the points T: ``lambda_max(M_TT) / |T|`` plus the ridge shift."""
    t = XT.shape[0]
    M = problem.operator(XT).to_dense().astype(np.float64)
    M *= np.outer(swT, swT)
    if D.size:
        kts = problem.operator(XT, XS).to_dense().astype(np.float64)
        kts *= np.outer(swT, swS)
        F = kts @ E  # (t, q-1)
        M -= (F * D) @ F.T
    if t <= 500:
        top = symmetric_eigh(M, eigvals_only=True, subset_by_index=[t - 1, t - 1])[0]
    else:  # Lanczos: a few dozen products instead of a t^3 tridiagonalisation
        v0 = np.ones(t) / np.sqrt(t)
        top = eigsh(M, k=1, which="LA", tol=1e-6, v0=v0, return_eigenvectors=False)[0]
    return float(top) / t + shift


def info_in_caller_units(info: dict, exponent: int) -> dict:
    """``info`` of a fit whose weights and alpha were divided by 2^exponent (the same model:
    :func:`~gramfree.solvers._common.weight_exponent`) in the caller's units: the weighted
    operator's eigenvalues and beta scale with the weights, the step sizes inversely. The
    objective (per unit of weight) and the rest are the same in both."""
    if exponent:
        for key in ("lambda_flat", "lambda_measured", "lambda_q", "beta"):
            info[key] = math.ldexp(info[key], exponent)
        for key in ("step_size", "step_size_rule"):
            info[key] = math.ldexp(info[key], -exponent)
    return info


def ridge_beta(problem: Problem) -> float:
    """beta = max_i w_i k(x_i, x_i) + alpha: the largest diagonal entry of the weighted
    system EigenPro iterates on (its step rule's scale)."""
    w = problem.weights.astype(np.float64)
    return float(np.max(w * kernel_diagonal(problem.kernel, problem.X))) + problem.alpha


def _subspace_factors(moves, base, base_pred, Y, w, alpha, embedding, cutoff) -> np.ndarray:
    """Per target column, the factors a_j that minimise the objective at
    ``base + sum_j a_j moves[j]``: shape (len(moves), t).

    Each move is (state change, change of the model's values at the training rows); the
    objective is quadratic, so its gradient and Hessian on the moves' span follow from
    those values and the penalty's bilinear form (``embedding``: ``(left, right)`` per
    state, the form being ``sum(left_u * right_v)``), symmetrised so that the model is the
    objective evaluated from the running predictions, without a kernel pass. The Hessian
    is scaled to a unit diagonal, and directions under ``cutoff`` of its largest
    eigenvalue (moves the others already span, to the products' precision) are left out,
    so a repeated, vanishing or far larger move costs nothing."""
    k, t = len(moves), Y.shape[1]
    r = base_pred - Y
    base_left, base_right = embedding(base, base_pred)
    forms = [embedding(state_j, pred_j) for state_j, pred_j in moves]

    def pairing(left_u, right_u, left_v, right_v) -> np.ndarray:
        return 0.5 * (np.sum(left_u * right_v, axis=0) + np.sum(left_v * right_u, axis=0))

    H = np.empty((t, k, k))
    grad = np.empty((t, k))
    for j, (_, pred_j) in enumerate(moves):
        grad[:, j] = w @ (r * pred_j) + alpha * pairing(base_left, base_right, *forms[j])
        for i in range(j + 1):
            cross = pairing(*forms[i], *forms[j])
            H[:, i, j] = H[:, j, i] = w @ (moves[i][1] * pred_j) + alpha * cross
    scale = np.sqrt(np.maximum(np.diagonal(H, axis1=1, axis2=2), 0.0))
    inv_scale = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    Hs = H * inv_scale[:, :, None] * inv_scale[:, None, :]
    vals, vecs = np.linalg.eigh(Hs)
    kept = vals > cutoff * np.maximum(vals[:, -1:], 0.0)
    inverse = np.where(kept, 1.0 / np.where(kept, vals, 1.0), 0.0)
    scaled = -np.einsum("tij,tj,tkj,tk->ti", vecs, inverse, vecs, grad * inv_scale)
    return (scaled * inv_scale).T


def _control_weight(g: np.ndarray, g_snapshot: np.ndarray) -> np.ndarray:
    """Per target column, the least-squares weight of the snapshot's residuals as a
    control variate for the batch's, ``cov(g, G) / var(G)`` over the batch rows, in [0, 1]:
    1 near the snapshot (SVRG), towards 0 once the state has moved far from it."""
    gc = g - g.mean(axis=0)
    Gc = g_snapshot - g_snapshot.mean(axis=0)
    var = np.sum(Gc * Gc, axis=0)
    cov = np.sum(gc * Gc, axis=0)
    return np.clip(np.divide(cov, var, out=np.zeros_like(var), where=var > 0), 0.0, 1.0)


def _float32_prediction_error(
    problem: Problem, X: np.ndarray, Z: np.ndarray, coef: np.ndarray
) -> float:
    """The float32 passes' error in the model's values at the training rows (Frobenius
    norm), measured on a probe of ``ROUNDING_PROBE`` rows against float64 kernel values
    and arithmetic and scaled to all rows. (The bound ``eps32 sum_j |K_ij c_j|`` of PCG on
    all points was 40 times the error here: it would have flagged sound fits.)"""
    n = X.shape[0]
    probe = np.unique(np.linspace(0, n - 1, min(n, ROUNDING_PROBE)).astype(np.intp))
    coef64 = np.asarray(coef, dtype=np.float64)
    low = problem.operator(X[probe], Z) @ coef64.astype(np.float32)
    high = problem.in_float64().operator(X[probe], Z) @ coef64
    gap = np.asarray(low, dtype=np.float64) - np.asarray(high, dtype=np.float64)
    return math.sqrt(float(np.sum(gap**2)) * (n / probe.size))


def _step_size(m: int, beta: float, lam: float) -> float:
    m_star = beta / lam + 1
    return m / beta if m <= m_star else STEP_SAFETY * 2 * m / (beta + (m - 1) * lam)


def _check_momentum(momentum, fixed: bool) -> float:
    """The momentum asked for, checked (None: 0)."""
    if momentum is None:
        return 0.0
    if isinstance(momentum, bool) or not isinstance(
        momentum, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"momentum must be a number in [0, 1), got {type(momentum).__name__}")
    if not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if fixed and momentum != 0:
        raise ValueError("momentum: EigenPro 3 (fixed centres) runs without momentum; use 0")
    return float(momentum)


def _check_controls(max_iter, max_batch, n_subsample, step_scale) -> None:
    """The public entry's numeric controls (a review: max_batch=0 failed in range(),
    max_batch=-3 and step_scale <= 0 ran epochs that changed nothing, n_subsample=-4 and
    2.5 failed in numpy, max_iter=0 ran no epoch)."""
    for name, value, low in (("max_iter", max_iter, 1), ("max_batch", max_batch, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if n_subsample is not None and (
        isinstance(n_subsample, bool)
        or not isinstance(n_subsample, numbers.Integral)
        or n_subsample < 1
    ):
        raise ValueError(f"n_subsample must be None or an integer >= 1, got {n_subsample!r}")
    if (
        isinstance(step_scale, bool)
        or not isinstance(step_scale, numbers.Real)
        or not 0.0 < float(step_scale) < math.inf
    ):
        raise ValueError(f"step_scale must be a positive finite number, got {step_scale!r}")


def _check_variance_reduction(variance_reduction, fixed: bool) -> bool:
    """Whether EigenPro 2's batches reduce their variance (None: wherever it exists)."""
    if variance_reduction is None:
        return not fixed
    if not isinstance(variance_reduction, (bool, np.bool_)):
        raise TypeError(
            f"variance_reduction must be True, False or None, got "
            f"{type(variance_reduction).__name__}"
        )
    if fixed and variance_reduction:
        raise ValueError(
            "variance_reduction: EigenPro 3 (fixed centres) has none; use None or False"
        )
    return bool(variance_reduction)


def _gap_bound(problem, Z, LZ, a, pred, Y, w, alpha) -> float:
    """An upper bound of ``J(a) - J*`` for EigenPro 3's objective ``J(a) = sum_i w_i (f_i -
    y_i)^2 + alpha a^T K_ZZ a`` (``K_ZZ = LZ LZ^T``, the jittered factor the penalty uses;
    ``pred = K(X, Z) a``): J is quadratic with Hessian ``2 (K^T W K + alpha K_ZZ) >= 2
    alpha K_ZZ``, so ``J - J* = g^T H^-1 g / 2 <= |LZ^-1 g|^2 / (4 alpha)`` for its
    gradient g. One transposed pass over the data; inf without a ridge."""
    if alpha <= 0:
        return math.inf
    WR = np.ascontiguousarray(w[:, None] * (pred - Y), dtype=problem.kernel_dtype)
    data = problem.operator(problem.X, Z).rmatmat(WR).astype(np.float64)
    half_gradient = solve_triangular(LZ, data) + alpha * (LZ.T @ a)  # LZ^-1 g / 2
    return float(np.sum(half_gradient**2)) / alpha


def solve_eigenpro(
    problem: Problem,
    centers: np.ndarray | None,
    *,
    max_iter: int,
    tol: float,
    random_state: np.random.Generator,
    verbose: int | bool = False,
    max_batch: int = 8192,
    n_subsample: int | None = None,
    step_scale: float = 1.0,
    initial_coef: np.ndarray | None = None,
    monitor: Monitor | None = None,
    momentum: float | None = None,
    variance_reduction: bool | None = None,
    subspace_step: bool = True,
) -> SolverResult:
    """``n_subsample``: size of the Nystrom subsample (default: 2000 below 10^5 rows or
    centres, else 12000). ``step_scale`` multiplies the rule's step size (for tests of the
    safeguards and for users who know better; the overshoot rule still applies).
    ``initial_coef``: a warm start (one row per centre, or per training row without
    centres). ``monitor``: called after every epoch with the coefficients; True stops
    (:class:`gramfree.solvers._common.Monitor`). ``momentum``: heavy-ball momentum in
    [0, 1) (default None: 0; EigenPro 3 accepts only None or 0). ``variance_reduction``
    (EigenPro 2 only; default None: on there) and ``subspace_step`` (default on): the
    module docstring's two additions; ``momentum=0, variance_reduction=False,
    subspace_step=False`` is the published iteration, step for step."""
    if centers is not None and problem.sample_weight is not None:
        # EigenPro 3 samples its batches from the rows: rows of weight zero, which are no
        # data, changed the batches and so the model (diabetes plus 50 such rows, 100
        # centres: predictions 1.1% apart, with the same centres). Without them it runs as
        # on the data without them, batch for batch (its fixed point is theirs anyway).
        positive = problem.sample_weight > 0
        if not positive.all():
            problem = problem_rows(problem, np.flatnonzero(positive))
    X, Y = problem.X, problem.Y.astype(np.float64)
    n, t = Y.shape
    dtype = X.dtype
    rng = random_state
    alpha = problem.alpha
    w = problem.weights.astype(np.float64)
    sw = np.sqrt(w)
    beta = ridge_beta(problem)
    fixed = centers is not None
    _check_controls(max_iter, max_batch, n_subsample, step_scale)
    mu = _check_momentum(momentum, fixed)
    reduce_variance = _check_variance_reduction(variance_reduction, fixed)
    if not isinstance(subspace_step, (bool, np.bool_)):
        raise TypeError(f"subspace_step must be True or False, got {type(subspace_step).__name__}")
    Z: np.ndarray = X if centers is None else centers  # the model's centres (all rows: EP2)
    max_batch = min(max_batch, n)
    shift = alpha / n

    if not fixed:
        s = min(n, n_subsample or _subsample_size(n))
        S = np.sort(rng.choice(n, size=s, replace=False)) if s < n else np.arange(n)
        XS = X[S]
        kss = problem.operator(XS).to_dense().astype(np.float64)
        kss *= np.outer(sw[S], sw[S])
        E, D, lam_flat, q = _eigensystem(
            kss,
            beta,
            shift,
            max_batch,
            max(1, s // 3 - 1),
            whole=s == n and max_batch >= n,
            eps=float(np.finfo(problem.kernel_dtype).eps),
        )
        del kss
        c_scaled = np.zeros((n, t))  # c' in the symmetric system; coef = sw * c'
    else:
        p = Z.shape[0]
        kzz = problem.operator(Z).to_dense().astype(np.float64)
        LZ, _ = jittered_cholesky(kzz)
        s = min(p, n_subsample or _subsample_size(p))
        S = np.sort(rng.choice(p, size=s, replace=False)) if s < p else np.arange(p)
        XS = Z[S]
        # The centres estimate the data's covariance only roughly: trust its top fifth.
        # Their kernel carries no weights while beta and the shift do: in the weighted
        # operator's units (times the weight per row), the batch rule chooses the same q
        # whatever the weights' scale (it chose 11, 2, 5 and 1 directions on diabetes at
        # weights times 1, 4, 2 and 1024, alpha alike: other models after a few epochs). D
        # stays the centres' own normalisation of their eigenfunctions.
        weight_per_row = float(w.sum()) / n
        E, D, lam_flat, q = _eigensystem(
            kzz[np.ix_(S, S)] * weight_per_row,
            beta,
            shift,
            max_batch,
            max(1, min(s // 5, s // 3 - 1)),
        )
        D *= weight_per_row
        kzz_S = kzz[S]  # rows of K(Z, Z) at the subsample: K(S, Z)
        del kzz
        a = np.zeros((p, t))
    if not (lam_flat > 0 and beta > 0):
        raise ValueError(
            "eigenpro: the kernel matrix of the subsample is zero (a degenerate kernel or "
            "data); use alpha > 0 or another solver"
        )
    # Measure the preconditioned operator on a uniform sample of the rows (all of them when
    # few): a principal submatrix of the whole operator, S's rows in their proportion.
    T = (
        np.sort(rng.choice(n, size=MEASURE_POINTS, replace=False))
        if n > MEASURE_POINTS
        else np.arange(n)
    )
    swS = sw[S] if not fixed else np.ones(len(S))
    lam_measured = _measured_top(problem, X[T], sw[T], XS, swS, E, D, shift)
    lam = max(lam_flat, lam_measured)
    m = int(min(max_batch, max(1, np.floor(beta / lam + 1))))
    eta_rule = _step_size(m, beta, lam)
    eta = step_scale * eta_rule

    def coefficients(state: np.ndarray) -> np.ndarray:
        return state if fixed else sw[:, None] * state

    def predictions(state: np.ndarray) -> np.ndarray:
        """One exact pass: the model's values at every training row."""
        return problem.matvec(X, Z, coefficients(state)).astype(np.float64)

    gradient_scale: list[float] = []  # ||K_w W^1/2 y||, the gradient at zero (once)

    def residual_of(state: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """The square system's residual ``r`` from the model's values ``pred``."""
        return sw[:, None] * (pred - Y) + alpha * state

    def kernel_times(r: np.ndarray) -> np.ndarray:
        """``K_w r`` (``K_w = W^1/2 K W^1/2``): one pass, the objective's gradient."""
        return sw[:, None] * problem.matvec(X, X, (sw[:, None] * r).astype(dtype))

    def range_residual(r: np.ndarray, Kr: np.ndarray) -> tuple[float, float]:
        """``(||K_w r|| / ||K_w W^1/2 y||, r^T K_w r / alpha)`` for the residual ``r`` and
        ``Kr = K_w r``: the objective's gradient relative to its value at zero, blind to
        the residual's part in K's null space; and a bound on the objective's gap to the
        optimum (its Hessian is at least ``2 alpha K_w`` on K's range, and the gradient
        ``2 K_w r``; inf without a ridge), in the units of ``sum w`` times the objective.
        One pass the first time (the gradient at zero), none after."""
        if not gradient_scale:
            at_zero = problem.matvec(X, X, (w[:, None] * Y).astype(dtype))
            gradient_scale.append(float(np.linalg.norm(sw[:, None] * at_zero)) or 1.0)
        gap = float(np.sum(r * Kr)) / alpha if alpha > 0 else math.inf
        return float(np.linalg.norm(Kr)) / gradient_scale[0], max(gap, 0.0)

    def certified(state: np.ndarray, pred: np.ndarray, r: np.ndarray, Kr=None) -> bool:
        """The objective's certificate, as PCG's on all points (objective_certified):
        per target, its excess over the optimum, at most ``|r|^2`` and at most ``r^T K_w
        r / alpha``, within CERTIFY tol of it. Both bounds can exceed the excess a
        hundredfold (iris, a wide kernel, alpha 1e-5: ``|r|^2`` 1.3 tol of the objective
        at 1.0000005 times the optimum; a review): hence CERTIFY. From exact values
        ``pred``; one pass for ``K_w r`` unless ``Kr`` holds it."""
        certificate = (r, state, sw[:, None] * pred, sw[:, None] * Y, alpha, CERTIFY * tol)
        if objective_certified(*certificate, cap=caps):
            return True
        if alpha <= 0:
            return False
        Kr = kernel_times(r) if Kr is None else Kr
        gap = np.einsum("ij,ij->j", r, Kr) / alpha
        return objective_certified(*certificate, kernel_gap=gap, cap=caps)

    def optimal_by_bounds(objective: float) -> bool:
        """Whether the kept model (``state``, with ``pred`` and its ``drift``) is optimal
        to tol by the gradient's bound with the gap's, or by the objective's certificate
        (``objective``: its objective, as ``objective_at``'s). From exact values: one
        pass for ``K_w r``, one more where ``pred`` carries drift (two the first time)."""
        exact_pred = pred if drift == 0.0 else predictions(state)
        r = residual_of(state, exact_pred)
        Kr = kernel_times(r)
        gradient, gap = range_residual(r, Kr)
        gap_allowed = CERTIFY * tol * min(objective * w.sum(), objective_cap)
        return (gradient <= tol and gap <= gap_allowed) or certified(state, exact_pred, r, Kr)

    def penalty_embedding(u: np.ndarray, u_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(left, right)`` with ``coef(u)^T K_ZZ coef(v) = sum(left_u * right_v)`` per
        target column (the penalty's bilinear form); ``u_pred = K(X, Z) coef(u)`` gives it
        for free where Z is X."""
        if fixed:
            Lu = sla.blas.dtrmm(1.0, LZ, u, lower=1, trans_a=1)
            return Lu, Lu
        return coefficients(u), u_pred

    def objective_at(state: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
        """The objective ``(sum w (f - y)^2 + alpha ||f||^2) / sum w`` from the model's
        values ``pred`` and, for EigenPro 2, the relative residual of its square system."""
        left, right = penalty_embedding(state, pred)
        penalty = float(np.sum(left * right))
        if fixed:
            residual = np.nan
        else:
            # Column by column, as CG's: pooled, a well-fitted large target decided the end
            # and a small one stopped at a relative residual of 0.64 in silence (a review).
            r = sw[:, None] * (pred - Y) + alpha * state
            residual = float(np.max(np.linalg.norm(r, axis=0) / y_norms))
        resid = float(w @ np.sum((pred - Y) ** 2, axis=1))
        return (resid + alpha * penalty) / w.sum(), residual

    w_max = float(w.max(initial=0.0))

    def objective_error(state: np.ndarray, pred: np.ndarray, error: float) -> float:
        """A bound on the change of ``objective_at(state, pred)`` when ``pred`` is off by
        at most ``error`` (Frobenius norm)."""
        if error == 0.0:
            return 0.0
        weighted = float(np.sqrt(w @ np.sum((pred - Y) ** 2, axis=1)))
        coef = float(np.linalg.norm(coefficients(state))) if not fixed else 0.0
        bound = 2.0 * weighted * np.sqrt(w_max) * error + w_max * error**2 + alpha * coef * error
        return bound / w.sum()

    def preconditioner_correction(rows: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``E D E^T K(S, rows) g`` in the symmetric system's coordinates (EigenPro 2)."""
        ksb = sw[S, None] * problem.matvec(XS, rows, g)
        return E @ (D[:, None] * (E.T @ ksb))

    def run_epoch(state: np.ndarray, eta: float, pred_all: np.ndarray) -> None:
        order = rng.permutation(n)
        if reduce_variance:
            # The residual of every row at the epoch's start (the snapshot), and its mean
            # step's share on the subsample through the preconditioner.
            G = sw[:, None] * (pred_all - Y) + alpha * state
            G_S = preconditioner_correction(X, sw[:, None] * G) if D.size else None
            weight = np.ones(t)  # the first batch starts at the snapshot: g = G there
        for b0 in range(0, n, m):
            B = order[b0 : b0 + m]
            XB = X[B]
            if not fixed:
                # Residual of (W^1/2 K W^1/2 + alpha I) c' = W^1/2 y on the batch.
                pred = problem.matvec(XB, X, coefficients(state).astype(dtype)).astype(np.float64)
                g = sw[B, None] * (pred - Y[B]) + alpha * state[B]
                if reduce_variance:
                    GB = G[B]
                    next_weight = _control_weight(g, GB)
                    g -= weight * GB
                # The step goes into the velocity (heavy ball), or straight into the state.
                move = velocity if mu > 0 else state
                if mu > 0:
                    np.multiply(velocity, mu, out=velocity)
                move[B] -= (eta / m) * g
                if D.size:
                    move[S] += (eta / m) * preconditioner_correction(XB, sw[B, None] * g)
                if reduce_variance:  # the control variate's mean, over every row
                    share = (eta / n) * (len(B) / m) * weight  # a short last batch: its share
                    move -= share * G
                    if G_S is not None:
                        move[S] += share * G_S
                    weight = next_weight
                if mu > 0:
                    state += velocity
            else:
                err = problem.matvec(XB, Z, state).astype(np.float64) - Y[B]
                # <G, k(z, .)> = u + (alpha/n) K_ZZ a for every centre (data term plus
                # ridge); projected: K_ZZ^-1 of it is K_ZZ^-1 u + (alpha/n) a, and the
                # correction K_ZZ^-1 K_ZS c is c placed on the subsample's coordinates.
                u = problem.matvec(Z, XB, w[B, None] * err).astype(np.float64) / len(B)
                step = cho_solve(LZ, u) + shift * state
                if D.size:
                    g_s = u[S] + shift * (kzz_S @ state)
                    step[S] -= E @ (D[:, None] * (E.T @ g_s))
                # A short last batch's share, as EigenPro 2's: a full step from its
                # noisier gradient (and a whole extra ridge step) left digits, 100
                # centres, 1024 rows in batches of 31, 4e-3 to 1e-2 above the Nystrom
                # optimum where 1022 rows (a last batch of 30) reached 3e-4.
                state -= (eta * len(B) / m) * step

    state = a if fixed else c_scaled
    # Kept only with momentum: n x t float64 values.
    velocity = np.zeros_like(state) if mu > 0 else np.zeros((0, t))
    if initial_coef is not None:
        start = initial_coef.astype(np.float64)
        # coef = W^1/2 c': a row of weight zero has coefficient zero whatever c' holds.
        state[...] = (
            start
            if fixed
            else np.divide(start, sw[:, None], out=np.zeros_like(start), where=sw[:, None] > 0)
        )
    y_norm = float(np.linalg.norm(sw[:, None] * Y)) or 1.0
    # Residuals relative to |W^1/2 y|, or to y's spread where an offset dominates it
    # (residual_scale); the objective's bounds then relative to at most the best constant
    # model's objective (objective_cap, in units of sum w times the objective).
    scales, caps = residual_scale(Y, w)
    objective_cap = float(np.sum(np.minimum(caps, np.sum(w[:, None] * Y**2, axis=0))))
    y_norms = scales.copy()
    y_norms[~np.any(Y != 0, axis=0)] = y_norm  # an all-zero column: relative to the whole
    pred = predictions(state)
    best, residual = objective_at(state, pred)
    initial = best
    # An increase smaller than the objective's rounding error is no increase.
    noise = 1e3 * np.finfo(problem.kernel_dtype).eps
    loss_curve: list[float] = []
    progress = Progress(verbose, max_iter, "eigenpro3" if fixed else "eigenpro2")
    converged = stuck = stopped = False
    uncertified, gap_bound = False, math.nan  # EigenPro 3's stop without the bound's say-so
    halvings = rejected = undone = consecutive = reductions = 0
    mu_initial = mu
    y_scale = min(float(w @ np.sum(Y**2, axis=1)), objective_cap) / w.sum() or 1.0
    epoch = 0
    saved = np.empty_like(state)
    # Directions of the moves' span resolved by the products' precision (on the Hessian
    # scaled to a unit diagonal); the rest are left out of the subspace step.
    eps_kernel = float(np.finfo(problem.kernel_dtype).eps)
    subspace_cutoff = 1e3 * eps_kernel
    # The floor and the drift limit (module constants, for float64 products) follow the
    # products' precision.
    subspace_floor = max(SUBSPACE_FLOOR, 1e3 * eps_kernel)
    drift_limit = max(DRIFT_LIMIT, 1e2 * eps_kernel)
    # The accepted epochs' moves, newest first: (state change, change of the predictions).
    moves: list[tuple[np.ndarray, np.ndarray]] = []
    # Bounds on the errors (Frobenius norm) of ``pred`` and of each move's prediction
    # change, which the subspace step combines instead of recomputing.
    drift, reanchored, combined_steps = 0.0, 0, 0
    move_errors: list[float] = []
    while epoch < max_iter and not converged and not stuck and not stopped and not uncertified:
        saved[...] = state
        run_epoch(state, eta, pred)
        epoch += 1
        new_pred = predictions(state)
        loss, new_residual = objective_at(state, new_pred)
        overshot = not loss <= best * (1 + noise)  # increased, or not finite
        if overshot and drift > 0 and np.isfinite(loss):
            # Compared with combined predictions (below), the best objective may be off by
            # their error: an exact pass at the epoch's start decides.
            pred, drift = predictions(saved), 0.0
            best, residual = objective_at(saved, pred)
            reanchored += 1
            overshot = not loss <= best * (1 + noise)
        new_drift = 0.0  # the pass just made is exact
        # The subspace step only while the epoch's own change is well above the
        # objective's rounding: past that its gradient is rounding, and its factors noise
        # that the objective cannot check (SUBSPACE_FLOOR).
        if subspace_step and np.isfinite(loss) and abs(best - loss) > subspace_floor * abs(best):
            raw_move = (state - saved, new_pred - pred)
            candidates = [raw_move] + moves
            errors = [drift] + move_errors  # each candidate's prediction change's error
            factors = _subspace_factors(
                candidates, saved, pred, Y, w, alpha, penalty_embedding, subspace_cutoff
            )
            combined, combined_pred = saved.copy(), pred.copy()
            # The predictions are combined, not recomputed: their error grows by the
            # factors (|1 - a_1| on the base's own, |a_j| on the older moves') plus the
            # combination's rounding.
            largest = np.abs(factors).max(axis=1)
            # (the pass just made: its own rounding in the products' precision)
            fresh_error = eps_kernel * float(np.linalg.norm(raw_move[1] + pred))
            combined_drift = (
                float(np.abs(1.0 - factors[0]).max()) * drift
                + largest[0] * fresh_error
                + _EPS64 * float(np.linalg.norm(pred))
            )
            for j, (factor, (d_state, d_pred)) in enumerate(zip(factors, candidates)):
                combined += factor * d_state
                combined_pred += factor * d_pred
                combined_drift += largest[j] * _EPS64 * float(np.linalg.norm(d_pred))
                combined_drift += largest[j] * errors[j] if j > 0 else 0.0
            del candidates
            combined_loss, combined_residual = objective_at(combined, combined_pred)
            # Only a gain the objective resolves, beyond the error bounds of both values:
            # near the optimum rounding drives the factors, and the epoch's own end point
            # keeps lowering the residual.
            resolved = (
                noise * abs(best)
                + objective_error(combined, combined_pred, combined_drift)
                + objective_error(saved, pred, drift)
            )
            if combined_loss < min(loss, best) - resolved:
                if combined_drift > drift_limit * float(np.linalg.norm(combined_pred)):
                    # Large factors (tiny moves after many halvings) would amplify it
                    # without bound: one more exact pass re-anchors the predictions.
                    combined_pred = predictions(combined)
                    combined_drift = 0.0
                    combined_loss, combined_residual = objective_at(combined, combined_pred)
                    reanchored += 1
                state[...] = combined
                new_pred, new_drift = combined_pred, combined_drift
                loss, new_residual = combined_loss, combined_residual
                raw_move = (state - saved, new_pred - pred)
                combined_steps += 1
                velocity[...] = 0.0  # it belonged to the epoch's end point, now replaced
            del combined
            if loss <= best * (1 + noise):  # the move kept (not undone below)
                moves = [raw_move] + moves[: SUBSPACE_MOVES - 2]
                move_errors = [new_drift + drift + eps_kernel * float(np.linalg.norm(new_pred))] + (
                    move_errors[: SUBSPACE_MOVES - 2]
                )
        note = f"batch={m} eta={eta:.3g} q={q} momentum={mu:.2g}"
        if overshot:  # back off; undo the epoch unless the subspace step still gained
            velocity[...] = 0.0
            rejected += 1
            if mu > 0:  # halve the factor 1 / (1 - mu) by which momentum lengthens steps
                mu = 2 * mu - 1 if mu > 0.5 else 0.0
                reductions += 1
                note = f"overshot; momentum lowered to {mu:.2g}"
            else:
                eta *= 0.5
                halvings += 1
                note = f"overshot; step halved to {eta:.3g}"
            if not loss < best:  # no lower point at all: undo
                state[...] = saved
                moves, move_errors = [], []
                undone += 1
                consecutive += 1
                stuck = consecutive > MAX_HALVINGS
                if fixed and np.isfinite(best) and best > 0:
                    # At the optimum every epoch rises by its batches' noise, and the
                    # halvings ran out with the model optimal, reported stalled (1 to 3
                    # centres). The gradient's bound at the kept point may end it.
                    gap_bound = _gap_bound(problem, Z, LZ, state, pred, Y, w, alpha) / min(
                        best * w.sum(), objective_cap
                    )
                    converged = gap_bound <= CERTIFY * tol
                    stuck = stuck and not converged
                elif stuck:
                    # EigenPro 2 out of halvings: where the kept point is optimal to
                    # rounding (its objective's gradient below tol), the epochs rose by
                    # rounding alone, not a stall (a review: wine with a near-constant
                    # kernel at the exact optimum was warned it "could not decrease").
                    # The gap's bound too (below): a near-constant kernel's batches of 2
                    # rose by their noise 18% above the optimum, not by rounding. Or the
                    # objective's certificate, as at the residual's stop: the gradient's
                    # bound is loose where the residual lies along K's small eigenvalues
                    # (iris, gamma 0.0025, alpha 1e-5: optimal, yet "stalled" where the
                    # oldest supported numpy and scipy round the epochs up).
                    converged = optimal_by_bounds(best)
                    stuck = not converged
                loss_curve.append(best)
                progress.update(epoch, best, f"{note}; undone (objective {loss:.3g})")
                if monitor is not None:  # one score per epoch: the restored iterate's
                    stopped = bool(monitor(epoch, coefficients(state).astype(dtype)))
                continue
            note += "; the subspace step's lower point kept"
        consecutive = 0
        pred, drift = new_pred, new_drift
        previous, best, residual = best, min(best, loss), new_residual
        loss_curve.append(best)
        progress.update(epoch, best, note)
        # EigenPro 3 fits least squares (no vanishing residual): stop on the objective's
        # relative change. EigenPro 2 solves a square system: on its relative residual, as
        # CG does, or once an epoch changes the objective (quadratic in the error) by less
        # than tol^2, where ill-conditioned directions that no longer move predictions
        # would keep the residual above tol for many epochs.
        # An epoch that overshot and halved the step says nothing about convergence.
        change = previous - loss
        if overshot:
            converged = False
        elif fixed:
            # A loss below tol^2 of y's mean square leaves a relative residual below tol
            # (EigenPro 2's and CG's rule); below tol * y_scale, a relative residual of
            # up to sqrt(tol) ended a fit silently at 206 times the Nystrom optimum's
            # objective (a review: a target along K's top eigenvector, 2 epochs).
            small = loss <= tol * tol * y_scale
            converged = change <= tol * previous or small
            if converged and not small:
                # A small change only says the epochs stopped moving the objective; along
                # a flat spectrum they move it slowly far from the optimum (wine, 100
                # centres, alpha 1e-8: stopped at 3.9 times the optimum's objective). Only
                # the gradient's bound may call it converged (_gap_bound).
                gap_bound = _gap_bound(problem, Z, LZ, state, pred, Y, w, alpha) / min(
                    loss * w.sum(), objective_cap
                )
                converged = gap_bound <= CERTIFY * tol
                uncertified = not converged
        else:
            # The change rule only where the residual is small too: an epoch that barely
            # moves the objective with a residual near 1 is a stall, not convergence.
            converged = residual <= tol or (
                0 < change <= tol**2 * previous and residual <= math.sqrt(tol)
            )
            if not converged and 0 < change <= tol**2 * previous:
                # Or where the objective's gradient is small: the residual keeps the part
                # of y in K's null space (divided by alpha), which no prediction sees and
                # the epochs shrink by about alpha / beta each. A low-rank kernel (linear,
                # diabetes, alpha 1e-3) ran every epoch and warned "increase max_iter",
                # its objective within 1e-8 of the optimum from epoch 11 (a review).
                # Only where the change rule holds; from exact values (combined ones
                # carry the drift bounded above).
                # And only where the gap's bound agrees: the gradient is blind to the
                # residual along K's small eigenvalues too, where the gap is not (a
                # near-constant kernel, gamma 1e-6, alpha 1e-12: stopped "converged" at a
                # relative residual of 0.63 and 3.8 times the optimum's objective, the
                # epochs moving it by 5e-6 each; a review). Not certified, the epochs go on.
                # Or the objective's certificate, per target, from the same pass: the
                # gradient's bound is loose where the residual lies along K's small
                # eigenvalues (breast cancer, gamma 0.001 / d, alpha 1e-5: 1.000006 times
                # the optimum from epoch 6, yet on to a "stall" at epoch 16).
                converged = optimal_by_bounds(loss)
            elif converged:
                # The relative residual's tol is of |W^1/2 y|, which a nearly
                # interpolated y dwarfs the objective beside: diabetes, gamma 1, alpha
                # 1e-8, stopped at 1.65-2.63 times the optimum's objective, silently (a
                # review). So the objective's certificate too, as PCG's on all points.
                # From exact values (combined ones carry the drift).
                exact_pred = pred if drift == 0.0 else predictions(state)
                converged = certified(state, exact_pred, residual_of(state, exact_pred))
        if monitor is not None:
            stopped = bool(monitor(epoch, coefficients(state).astype(dtype)))
    if monitor is None and not (fixed or converged or stuck or stopped):
        # EigenPro 2 out of epochs: the objective's certificate, which the stops above
        # consult, may still find the kept model optimal where the residual's rule alone
        # never ends (breast cancer, gamma 1 / d, alpha 1e-2: 1.00004 times the optimum
        # after 12 epochs, warned "increase max_iter"). One or two passes, once. Not for
        # EigenPro 3: its bound (_gap_bound) was 60 to 200 times the gap of fits that
        # ran out of epochs within 1e-3 of the optimum, so it would certify none. Nor
        # under early stopping, whose monitor then returns its best-scored iterate, not
        # this one (a review: epoch 1's, 2.46 times the optimum, with no warning).
        exact_pred = pred if drift == 0.0 else predictions(state)
        converged = certified(state, exact_pred, residual_of(state, exact_pred))
    del saved, moves
    progress.close(f"{epoch} epochs, converged={converged}")
    coef = coefficients(state)
    # Float32 products carry eps32 |K| |coef| in every value, which where the coefficients
    # cancel (a wide kernel, a small alpha) exceeds what tol asks of the objective: the
    # objective the epochs compared, loss_curve_ and the best iterate's choice then carry
    # it (diabetes in float32, gamma 0.001, alpha 1e-3: loss_curve_ rose in four epochs
    # and its lowest was 0.4% under the optimum; a review). Said, relative to the objective.
    float32_rounding = (
        objective_error(state, pred, _float32_prediction_error(problem, X, Z, coef)) / best
        if problem.kernel_dtype == np.float32 and math.isfinite(best) and best > 0
        else None
    )
    return SolverResult(
        centers=Z,
        coef=coef.astype(dtype),
        n_iter=epoch,
        loss_curve=loss_curve,
        converged=converged,
        info={
            "batch_size": m,
            "step_size": eta,
            "step_size_rule": eta_rule,
            "step_halvings": halvings,
            "momentum": mu,
            "momentum_initial": mu_initial,
            "momentum_reductions": reductions,
            "variance_reduction": reduce_variance,
            "subspace_step": bool(subspace_step),
            "rejected_epochs": rejected,
            "undone_epochs": undone,
            "reanchored_epochs": reanchored,
            "subspace_steps": combined_steps,
            "stalled": stuck,
            # float32 products: an estimate of their rounding's effect on the objective
            # (a review's sweep: up to 2.5 times under the true one, never hiding a warning),
            # relative to it (None: float64 products)
            "float32_rounding": float32_rounding,
            # EigenPro 3 stopped on a small change of the objective whose gradient bound
            # still allows the relative gap gap_bound to its optimum (above CERTIFY * tol).
            "uncertified": uncertified,
            "gap_bound": gap_bound,
            "objective_initial": initial,
            "relative_residual": residual,
            "top_q": q,
            "lambda_flat": lam_flat,
            "lambda_measured": lam_measured,
            "lambda_q": lam,
            "beta": beta,
            "n_subsample": len(S),
            "n_measure": len(T),
            "n_centers": Z.shape[0],
            "variant": "eigenpro3" if fixed else "eigenpro2",
            "warm_start": initial_coef is not None,
        },
    )

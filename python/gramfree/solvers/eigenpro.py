"""EigenPro: preconditioned stochastic gradient descent for kernel machines.

EigenPro 2 (Ma & Belkin 2019) on all training points as centres, and, with fixed centres,
EigenPro 3 (Abedsoltan, Belkin & Pandit 2023).

Preconditioner: the top-q eigensystem (lam_i, e_i) of ``K(S, S) / s`` on a Nystrom
subsample S of s points; the step flattens the top q - 1 directions of the covariance
operator to lam_q. For a batch B of m points with residuals g:

    coef[B] -= (eta / m) g
    coef[S] += (eta / m) E diag((1 - (lam_q / lam_i)^a) / lam_i) E^T K(S, B) g

with E the eigenvectors scaled by 1 / sqrt(s) and damping a = 0.95. Batch size and step
size come from the eigenvalues: m* = beta / lam_q + 1 (beta = max_x k(x, x)), eta = m / beta
for m <= m*, else 2 m / (beta + (m - 1) lam_q). With fixed centres, when epochs of
mini-batches stop improving the step halves, so the iteration approaches the minimiser
instead of stalling at SGD's noise floor.

Weights and ridge (KernelRidge's objective ``sum w (f - y)^2 + alpha ||f||^2``): EigenPro 2
iterates on the symmetric system ``(W^1/2 K W^1/2 + alpha I) c' = W^1/2 y`` with
``coef = W^1/2 c'``, i.e. on the kernel ``sqrt(w_i w_j) k(x_i, x_j)``; its preconditioner
comes from that kernel's subsample, beta = max w k(x, x) + alpha, and the ridge lifts every
eigenvalue by alpha / n.

EigenPro 3 keeps the model on p fixed centres Z. The stochastic functional gradient
``G = (1/m) sum_B g_i k(x_i, .) + (alpha / n) f`` (ridge included) is preconditioned with a
subsample S of the centres, ``P G = G - sum_S c_l k(z_l, .)``, ``c = E D E^T G(S)``, and
projected onto span{k(z, .)} exactly by a Cholesky of K(Z, Z) (the paper iterates EigenPro
2 for this projection). Because S lies in Z and P is invertible, the fixed point is the
Nystrom ridge solution on Z: the objective of :mod:`nystrom_pcg`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..linalg import cho_solve, jittered_cholesky
from ._common import Problem, Progress, SolverResult, kernel_diagonal

DAMPING = 0.95


def _subsample_size(n: int) -> int:
    return min(n, 2000 if n < 100_000 else 12_000)


def _eigensystem(kss: np.ndarray, beta: float, shift: float, max_batch: int, max_q: int):
    """Preconditioner from ``K(S, S)`` (float64, already weighted if need be):
    returns (E, D, lam_q, q) with lam_q including the ridge shift."""
    s = kss.shape[0]
    vals, vecs = sla.eigh(kss / s, check_finite=False)
    vals, vecs = np.maximum(vals[::-1], 0.0), vecs[:, ::-1]
    # The largest q whose critical batch size beta / lam_q + 1 fits max_batch.
    ok = np.nonzero(beta / np.maximum(vals + shift, 1e-300) + 1 <= max_batch)[0]
    q = int(ok[-1]) + 1 if ok.size else 1
    q = max(1, min(q, s - 1, max_q)) if s > 1 else 1
    top = vals[: q - 1]
    E = vecs[:, : q - 1] / np.sqrt(s)
    D = (1.0 - (vals[q - 1] / top) ** DAMPING) / top
    return E, D, float(vals[q - 1] + shift), q


def _step_size(m: int, beta: float, lam_q: float) -> float:
    m_star = beta / lam_q + 1
    return m / beta if m <= m_star else 2 * m / (beta + (m - 1) * lam_q)


def solve_eigenpro(
    problem: Problem,
    centers: np.ndarray | None,
    *,
    max_iter: int,
    tol: float,
    random_state: np.random.Generator,
    verbose: int | bool = False,
    max_batch: int = 8192,
) -> SolverResult:
    X, Y = problem.X, problem.Y.astype(np.float64)
    n, t = Y.shape
    dtype = X.dtype
    rng = random_state
    alpha = problem.alpha
    w = problem.weights.astype(np.float64)
    sw = np.sqrt(w)
    beta = float(np.max(w * kernel_diagonal(problem.kernel, X))) + alpha
    fixed = centers is not None
    max_batch = min(max_batch, n)

    if not fixed:
        s = _subsample_size(n)
        S = np.sort(rng.choice(n, size=s, replace=False)) if s < n else np.arange(n)
        XS = X[S]
        kss = problem.operator(XS).to_dense().astype(np.float64)
        kss *= np.outer(sw[S], sw[S])
        # A subsample of the data itself: its top eigenvalues are the covariance's.
        E, D, lam_q, q = _eigensystem(kss, beta, alpha / n, max_batch, s - 1)
        c_scaled = np.zeros((n, t))  # c' in the symmetric system; coef = sw * c'
    else:
        Z = centers
        p = Z.shape[0]
        kzz = problem.operator(Z).to_dense().astype(np.float64)
        LZ, _ = jittered_cholesky(kzz)
        s = _subsample_size(p)
        S = np.sort(rng.choice(p, size=s, replace=False)) if s < p else np.arange(p)
        # The centres estimate the data's covariance only roughly: trust its top fifth.
        E, D, lam_q, q = _eigensystem(kzz[np.ix_(S, S)], beta, alpha / n, max_batch, max(1, s // 5))
        kzz_S = kzz[S]  # rows of K(Z, Z) at the subsample: K(S, Z)
        del kzz
        a = np.zeros((p, t))
    if not (lam_q > 0 and beta > 0):
        raise ValueError(
            "eigenpro: the kernel matrix of the subsample is zero (a degenerate kernel or "
            "data); use alpha > 0 or another solver"
        )
    m = int(min(max_batch, max(1, np.floor(beta / lam_q + 1))))
    eta = _step_size(m, beta, lam_q)

    loss_curve: list[float] = []
    progress = Progress(verbose, max_iter, "eigenpro3" if fixed else "eigenpro2")
    converged = False
    epoch = 0
    best_loss, stalled, halvings = np.inf, 0, 0
    y_scale = float(w @ np.sum(Y**2, axis=1)) / w.sum() or 1.0
    while epoch < max_iter and not converged:
        order = rng.permutation(n)
        epoch_loss = 0.0
        for b0 in range(0, n, m):
            B = order[b0 : b0 + m]
            XB = X[B]
            if not fixed:
                # Residual of (W^1/2 K W^1/2 + alpha I) c' = W^1/2 y on the batch.
                coef = (sw[:, None] * c_scaled).astype(dtype)
                pred = problem.matvec(XB, X, coef).astype(np.float64)
                err = pred - Y[B]
                epoch_loss += float(w[B] @ np.sum(err**2, axis=1))
                g = sw[B, None] * err + alpha * c_scaled[B]
                c_scaled[B] -= (eta / m) * g
                if D.size:
                    ksb = sw[S, None] * problem.matvec(XS, XB, sw[B, None] * g)
                    c_scaled[S] += (eta / m) * (E @ (D[:, None] * (E.T @ ksb)))
            else:
                pred = problem.matvec(XB, Z, a).astype(np.float64)
                err = pred - Y[B]
                epoch_loss += float(w[B] @ np.sum(err**2, axis=1))
                # <G, k(z, .)> = u + (alpha/n) K_ZZ a for every centre (data term plus
                # ridge); projected: K_ZZ^-1 of it is K_ZZ^-1 u + (alpha/n) a, and the
                # correction K_ZZ^-1 K_ZS c is c placed on the subsample's coordinates.
                u = problem.matvec(Z, XB, w[B, None] * err).astype(np.float64) / len(B)
                step = cho_solve(LZ, u) + (alpha / n) * a
                if D.size:
                    g_s = u[S] + (alpha / n) * (kzz_S @ a)
                    step[S] -= E @ (D[:, None] * (E.T @ g_s))
                a -= eta * step
        epoch += 1
        loss = epoch_loss / w.sum()
        loss_curve.append(loss)
        # EigenPro 2 solves a square system, whose every batch residual vanishes at the
        # solution: constant-step SGD converges to it. EigenPro 3 fits a least-squares
        # problem, where it stalls at a noise floor set by the step: once three epochs
        # bring no new best, halve the step (Robbins-Monro; it only adds stability).
        if loss < best_loss * (1 - 1e-4):
            best_loss, stalled = loss, 0
        else:
            stalled += 1
        if fixed and m < n and stalled >= 3 and halvings < 12:
            eta, stalled, halvings = 0.5 * eta, 0, halvings + 1
        progress.update(epoch, loss, f"batch={m} eta={eta:.3g} q={q}")
        if not np.isfinite(loss):
            progress.close()
            raise FloatingPointError(
                f"eigenpro diverged at epoch {epoch} (batch {m}, step {eta:.3g}); "
                "try solver='nystrom-pcg' or a larger alpha"
            )
        if len(loss_curve) >= 2:
            prev = loss_curve[-2]
            converged = abs(prev - loss) <= tol * max(prev, 1e-300) or loss <= tol * y_scale
    progress.close(f"{epoch} epochs, converged={converged}")
    coef = a if fixed else sw[:, None] * c_scaled
    return SolverResult(
        centers=Z if fixed else X,
        coef=coef.astype(dtype),
        n_iter=epoch,
        loss_curve=loss_curve,
        converged=converged,
        info={
            "batch_size": m,
            "step_size": eta,
        "step_halvings": halvings,
            "top_q": q,
            "lambda_q": lam_q,
            "beta": beta,
            "n_subsample": len(S),
            "n_centers": (Z if fixed else X).shape[0],
            "variant": "eigenpro3" if fixed else "eigenpro2",
        },
    )

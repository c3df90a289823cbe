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
for m <= m*, else 2 m / (beta + (m - 1) lam_q).

The ridge penalty of KernelRidge (``alpha``) enters as the fixed point of
``(W K + alpha I) coef = W y``: the residual of a batch is ``w (f - y) + alpha coef[B]``,
and beta grows by alpha.

EigenPro 3 keeps the model on p fixed centres Z: the preconditioned functional gradient
``sum_B g_i k(x_i, .) - sum_S c_l k(x_l, .)`` is projected onto span{k(z, .)} by solving
with ``K(Z, Z)``. Here that projection is exact (a Cholesky of K(Z, Z), computed once),
where the paper iterates EigenPro 2 inside; the fixed point is the Nystrom ridge solution
on Z, the same objective as :mod:`nystrom_pcg`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..linalg import cho_solve, jittered_cholesky
from ._common import Problem, Progress, SolverResult, kernel_diagonal

DAMPING = 0.95


def _subsample_size(n: int) -> int:
    return min(n, 2000 if n < 100_000 else 12_000)


def _preconditioner(problem: Problem, rng: np.random.Generator, max_batch: int):
    """Nystrom eigensystem on a subsample; returns (sample_idx, E, D, lam_q, beta, q)."""
    X = problem.X
    n = X.shape[0]
    s = _subsample_size(n)
    idx = np.sort(rng.choice(n, size=s, replace=False)) if s < n else np.arange(n)
    kss = problem.operator(X[idx]).to_dense().astype(np.float64) / s
    vals, vecs = sla.eigh(kss, check_finite=False)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    # The preconditioner acts on K only; the ridge lifts every eigenvalue of the iteration
    # matrix (K + alpha I) / n by alpha / n and its diagonal bound beta by alpha.
    beta = float(np.max(kernel_diagonal(problem.kernel, X))) + problem.alpha
    lam = np.maximum(vals, 0.0)
    shift = problem.alpha / n
    # The largest q whose critical batch size beta / lam_q + 1 fits max_batch.
    ok = np.nonzero(beta / np.maximum(lam + shift, 1e-300) + 1 <= max_batch)[0]
    q = int(ok[-1]) + 1 if ok.size else 1
    q = max(1, min(q, s - 1)) if s > 1 else 1
    top = lam[: q - 1]
    E = vecs[:, : q - 1] / np.sqrt(s)
    D = (1.0 - (lam[q - 1] / top) ** DAMPING) / top
    return idx, E, D, float(lam[q - 1] + shift), beta, q


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
    X, Y = problem.X, problem.Y
    n, t = Y.shape
    dtype = X.dtype
    rng = random_state
    w = problem.weights.astype(np.float64)
    idx, E, D, lam_q, beta, q = _preconditioner(problem, rng, min(max_batch, n))
    m = int(min(n, max(1, np.floor(beta / lam_q + 1)), max_batch))
    eta = _step_size(m, beta, lam_q)
    XS = X[idx]
    fixed = centers is not None
    Zc = centers if fixed else X
    coef = np.zeros((Zc.shape[0], t))
    if fixed:
        kzz = problem.operator(Zc).to_dense().astype(np.float64)
        LZ, _ = jittered_cholesky(kzz)

    loss_curve: list[float] = []
    progress = Progress(verbose, max_iter, "eigenpro3" if fixed else "eigenpro2")
    converged = False
    epoch = 0
    y_norm = float(np.sum(w[:, None] * Y.astype(np.float64) ** 2)) / w.sum() or 1.0
    while epoch < max_iter and not converged:
        order = rng.permutation(n)
        epoch_loss = 0.0
        for b0 in range(0, n, m):
            B = order[b0 : b0 + m]
            XB = X[B]
            pred = problem.matvec(XB, Zc, coef).astype(np.float64)
            err = pred - Y[B]
            epoch_loss += float(np.sum(w[B, None] * err**2))
            g = w[B, None] * err
            if not fixed:
                g = g + problem.alpha * coef[B]
                coef[B] -= (eta / m) * g
                if D.size:
                    ksb = problem.matvec(XS, XB, g)
                    coef[idx] += (eta / m) * (E @ (D[:, None] * (E.T @ ksb)))
            else:
                # Preconditioned functional gradient, projected onto span{k(z, .)}.
                grad = problem.matvec(Zc, XB, g)
                if D.size:
                    ksb = problem.matvec(XS, XB, g)
                    c = E @ (D[:, None] * (E.T @ ksb))
                    grad = grad - problem.matvec(Zc, XS, c)
                step = cho_solve(LZ, grad.astype(np.float64)) / m
                coef -= eta * (step + (problem.alpha / w.sum()) * coef)
        epoch += 1
        loss = epoch_loss / w.sum()
        loss_curve.append(loss)
        progress.update(epoch, loss, f"batch={m} eta={eta:.3g} q={q}")
        if not np.isfinite(loss):
            break
        if len(loss_curve) >= 2:
            prev = loss_curve[-2]
            converged = abs(prev - loss) <= tol * max(prev, 1e-300) or loss <= tol * y_norm
    progress.close(f"{epoch} epochs, converged={converged}")
    return SolverResult(
        centers=Zc,
        coef=coef.astype(dtype),
        n_iter=epoch,
        loss_curve=loss_curve,
        converged=converged,
        info={
            "batch_size": m,
            "step_size": eta,
            "top_q": q,
            "lambda_q": lam_q,
            "beta": beta,
            "n_subsample": len(idx),
            "n_centers": Zc.shape[0],
            "variant": "eigenpro3" if fixed else "eigenpro2",
        },
    )

"""``learning_rate="auto"``: the step size of plain gradient descent from the curvature of
the training loss at the starting point.

Gradient descent on a loss whose Hessian has largest eigenvalue ``lam`` is stable for
steps below ``2 / lam``; ``1 / lam`` is the step that minimises a quadratic along that
direction in one step (EigenPro's step for a full batch). A fixed step cannot be right
for every data set: the squared loss's Hessian has a term ``sum_i r_i grad^2 f(x_i)`` that
grows with the residuals, so with targets in the hundreds (raw diabetes) any fixed step
that suits standardised targets diverges (0.05, the earlier default, did at step 252),
and with raw features a step that diverges nowhere can stall (0.05 on raw breast cancer
left 64% test accuracy; the curvature's step reached 92%). The Gauss-Newton part alone
(the tangent kernel's top eigenvalue) misses the residual term: it gave steps 20-30x too
large on raw targets.

``lam`` is found by power iteration on Hessian-vector products taken as differences of
gradients (each gradient is one call of the native trainer for one full-batch step with
learning rate 1 on a sample of rows: ``w - w_1``), so nothing beyond the trainer is
needed. The rows are those of one batch (at most ``AUTO_ROWS``): a mini-batch step's
stability is that of its own batch's Hessian, whose top eigenvalue exceeds the full
data's. The L2 penalty adds at most ``alpha / (B wbar)`` (the trainer's step). The
curvature can still grow during training (a network sharpens as it fits); the estimator
then halves the step and trains again (``AUTO_HALVINGS``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from .network import Network

# Rows of the sample the Hessian is taken on (one batch of at most this many).
AUTO_ROWS = 1024
# Power iteration: at most this many Hessian-vector products, stopping once the estimate
# moves by less than POWER_RTOL (a step size needs no more than a few digits).
POWER_ITERATIONS = 30
POWER_RTOL = 1e-2
# Largest step "auto" takes, where the curvature at the start is tiny (a network whose
# units are all saturated or dead has a near-zero Hessian there, and 1 / lam would be huge).
AUTO_MAX = 10.0
# Retrained with the step halved at most this many times where training with it diverged.
AUTO_HALVINGS = 4


def auto_learning_rate(
    net: Network,
    w0: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    batch: int,
    last_batch: int,
    alpha: float,
    seed: int,
    n_threads: int,
) -> float:
    """``1 / lam`` (at most ``AUTO_MAX``), ``lam`` the largest curvature of the training
    loss at ``w0`` (module docstring), plus the L2 penalty's ``alpha / (B wbar)`` at the
    smallest batch ``last_batch``."""
    lam = loss_curvature(
        net, w0, X, Y, sample_weight, rows=min(batch, AUTO_ROWS), seed=seed, n_threads=n_threads
    )
    if alpha > 0:
        mean = 1.0 if sample_weight is None else float(np.mean(sample_weight))
        lam += alpha / (last_batch * mean)
    if not lam > 1.0 / AUTO_MAX:  # tiny, zero, or NaN (overflowing gradients)
        return AUTO_MAX
    return 1.0 / lam if math.isfinite(lam) else 1.0 / np.finfo(np.float64).max


def loss_curvature(
    net: Network,
    w0: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    rows: int,
    seed: int,
    n_threads: int,
) -> float:
    """The largest absolute eigenvalue of the Hessian of the (weighted) mean training loss
    at ``w0`` over ``rows`` rows drawn without replacement (all of them when there are no
    more), by power iteration on finite differences of gradients."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    idx = np.sort(rng.choice(n, rows, replace=False)) if rows < n else np.arange(n)
    Xs, Ys = np.ascontiguousarray(X[idx]), np.ascontiguousarray(Y[idx])
    ws = None if sample_weight is None else np.ascontiguousarray(sample_weight[idx])
    if ws is not None and not ws.sum() > 0:
        ws = None  # the drawn rows weigh nothing: their unweighted curvature
    spec = net.spec(
        learning_rate=1.0, n_steps=1, batch_size=len(idx), alpha=0.0, seed=0, shuffle=False
    )

    def gradient(w: np.ndarray) -> np.ndarray:
        w1, _, _ = _core.mlp_train(spec, Xs, Ys, w, n_threads=n_threads, sample_weight=ws)
        return w - w1

    try:
        g0 = gradient(w0)
    except ValueError:  # the loss or its gradient overflows at the start
        return math.inf
    # A relative difference step: the gradient's rounding (eps |g|) stays far below the
    # change it measures (lam * h) for any curvature a step size could be built on.
    h = 1e-5 * max(1.0, float(np.linalg.norm(w0)) / math.sqrt(w0.size))
    v = rng.standard_normal(w0.size)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(POWER_ITERATIONS):
        try:
            hv = (gradient(w0 + h * v) - g0) / h
        except ValueError:
            return math.inf
        size = float(np.linalg.norm(hv))
        if not size > 0 or not math.isfinite(size):
            return size if math.isfinite(size) else math.inf
        v = hv / size
        done = abs(size - lam) <= POWER_RTOL * size
        lam = size
        if done:
            break
    return lam

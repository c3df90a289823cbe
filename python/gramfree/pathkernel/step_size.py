"""``learning_rate="auto"``: the step size of plain gradient descent from the curvature of
the training loss at the starting point.

Gradient descent on a loss whose Hessian has largest eigenvalue ``lam`` is stable for
steps below ``2 / lam``; ``1 / lam`` is the step that minimises a quadratic along that
direction in one step (EigenPro's step for a full batch). A fixed step cannot be right
for every data set: the squared loss's Hessian has a term ``sum_i r_i grad^2 f(x_i)`` that
grows with the residuals, so with targets in the hundreds (raw diabetes) a fixed step
that suits standardised targets diverges (0.05, the earlier default, did at step 252),
and with raw features a step that diverges nowhere can stall (0.05 on raw breast cancer
left 64% test accuracy). The Gauss-Newton part alone (the tangent kernel's top
eigenvalue) misses the residual term: it gave steps 20-30x too large on raw targets.

``lam`` is the largest (algebraic) eigenvalue of the Hessian, by Lanczos iteration on
exact Hessian-vector products (Pearlmutter's R-operator through the network, in numpy:
:func:`hessian_vector_product`). Not the largest in magnitude: negative curvature does not
make gradient descent diverge (raw wine with gelu: -1.1e4 beside +712, a step 16x too
small). Not finite differences of gradients: with relu they measure the jumps of units
switching inside the difference step, not curvature (raw digits: 15x too large; a
review). The Hessian is that of the loss a step descends: all rows for full batch (a
sample of rows missed one heavy row and took a step 1300x too large; a review); for
mini-batches, whose own Hessians are what a step's stability depends on, the steeper of
two batches of ``batch_size`` rows: one drawn in proportion to the sample weights, one of
the heaviest rows (``_estimation_batches``). The step keeps ``STEP_DIGITS`` significant
digits, so that it is the same on any number of BLAS threads. The L2 penalty adds
``alpha / (B wbar)`` (the trainer's step). The curvature can still grow during training
(a network sharpens as it fits); where the training then diverges, the estimator halves
the step and trains again (``AUTO_HALVINGS``).

Why ``1 / lam`` and not less: at that step the full-batch loss of raw, ill-conditioned
data (breast cancer, wine) oscillates and spikes as the network sharpens, and half the
step ends lower there; but half ended higher in 23 of the 30 cases of
``benchmarks/bench_pathkernel_step.py`` (every standardised one among them; a scratch
comparison of the two, 2026-12-06), and halving at every spike beyond twice the start
ended raw breast cancer with relu at a training loss of 1.82 against 0.30 (tried on a
review's suggestion).

Cost: at most ``LANCZOS_STEPS`` products (two batches' worth for mini-batches), each a
forward and a backward pass over the rows with their R-versions, in numpy. Not timed by
a ``benchmarks/`` script; ``bench_pathkernel_step.py``'s last column is the whole auto
fit's time over a fixed step's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc, expit

from .network import Network

# Lanczos steps at most (each one Hessian-vector product), stopping once the largest Ritz
# value moves by less than LANCZOS_RTOL (a step size needs no more than a few digits).
LANCZOS_STEPS = 30
LANCZOS_RTOL = 1e-3
# Rows per block of the products (bounds their temporaries: a few rows x width arrays per
# layer).
CHUNK_ROWS = 4096
# Largest step "auto" takes, where the curvature at the start is tiny or negative (a
# network whose units are all saturated or dead has a near-zero Hessian there, and 1 / lam
# would be huge).
AUTO_MAX = 10.0
# Retrained with the step halved at most this many times where training with it diverged.
AUTO_HALVINGS = 4
# Significant digits of the step "auto" takes.
STEP_DIGITS = 3


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
) -> float:
    """``1 / lam`` (at most ``AUTO_MAX``, to ``STEP_DIGITS`` significant digits), ``lam``
    the largest eigenvalue of the training loss's Hessian at ``w0`` over the rows a step
    descends (module docstring), plus the L2 penalty's ``alpha / (B wbar)`` at the
    smallest batch ``last_batch``."""
    rng = np.random.default_rng(seed)
    mean = 1.0 if sample_weight is None else float(np.mean(sample_weight))
    lam = -math.inf
    for rows in _estimation_batches(X, sample_weight, batch, rng):
        weights = None if sample_weight is None else sample_weight[rows]
        lam = max(
            lam,
            largest_curvature(
                net, w0, X[rows], Y[rows], weights, scale=1.0 / (batch * mean), rng=rng
            ),
        )
    if alpha > 0:
        lam += alpha / (last_batch * mean)
    if not lam > 1.0 / AUTO_MAX:  # tiny, zero, negative, or NaN
        return AUTO_MAX
    step = 1.0 / lam if math.isfinite(lam) else 1.0 / np.finfo(np.float64).max
    # The products' rounding depends on BLAS's threads (n_jobs): the last bits of lam
    # changed with them, and 500 steps turned that into predictions 2.0 apart (a
    # review). A step size needs a few digits; the same ones on any thread count.
    return float(f"{step:.{STEP_DIGITS}g}")


def _estimation_batches(
    X: np.ndarray, sample_weight: np.ndarray | None, batch: int, rng: np.random.Generator
) -> list:
    """The rows whose Hessian the step must suit: all of them for full batch. For
    mini-batches the steepest batch matters, not a typical one (one heavy row in a batch
    of 16 made it 335x steeper than a random batch; a batch that weighed nothing gave no
    curvature at all; reviews): a batch drawn in proportion to the weights among the rows
    that weigh anything, and the ``batch`` rows of largest ``w_i (1 + ||x_i||^2)``."""
    n = X.shape[0]
    if batch >= n:
        return [slice(None)]
    w = np.ones(n) if sample_weight is None else sample_weight
    positive = np.flatnonzero(w > 0)
    p = w[positive] / w[positive].max()  # (a sum of weights near 1e308 overflows)
    # Weights below ~1e-308 of the largest round to no chance at all: rows that cannot be
    # drawn are not drawn (choice refused more draws than chances; a review).
    positive, p = positive[p > 0], p[p > 0]
    size = min(batch, positive.size)
    drawn = np.sort(rng.choice(positive, size, replace=False, p=p / p.sum()))
    with np.errstate(over="ignore", invalid="ignore"):
        # Rows that weigh nothing score 0 whatever their norm (0 * inf is NaN).
        score = np.where(w > 0, w * (1.0 + np.einsum("ij,ij->i", X, X)), 0.0)
    heaviest = np.sort(np.argpartition(-score, size - 1)[:size])
    return [drawn, heaviest]


def largest_curvature(
    net: Network,
    w: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    weights: np.ndarray | None,
    *,
    scale: float,
    rng: np.random.Generator,
) -> float:
    """The largest eigenvalue of the Hessian of ``scale * sum_i weights_i loss_i`` at ``w``
    (the native trainer's losses), by Lanczos iteration with full reorthogonalisation from
    a random start; infinity where the products overflow."""
    P = w.size
    steps = min(P, LANCZOS_STEPS)
    basis = np.empty((steps, P))
    alphas: list[float] = []
    betas: list[float] = []
    q = rng.standard_normal(P)
    q /= np.linalg.norm(q)
    top = -math.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(steps):
            basis[j] = q
            r = hessian_vector_product(net, w, X, Y, weights, q) * scale
            alphas.append(float(q @ r))
            # Full reorthogonalisation (twice is enough): at most 30 vectors of P values.
            for _ in range(2):
                r -= basis[: j + 1].T @ (basis[: j + 1] @ r)
            beta = float(np.linalg.norm(r))
            if not (math.isfinite(beta) and math.isfinite(alphas[-1])):
                return math.inf  # the products overflow
            ritz = _largest_ritz(alphas, betas)
            if j > 0 and abs(ritz - top) <= LANCZOS_RTOL * abs(ritz):
                return ritz
            top = ritz
            if not beta > 1e-12 * max(abs(top), 1e-300):  # an invariant subspace: exact
                return top
            betas.append(beta)
            q = r / beta
    return top


def _largest_ritz(alphas: list[float], betas: list[float]) -> float:
    T = np.diag(alphas)
    if betas:
        off = np.asarray(betas[: len(alphas) - 1])
        T += np.diag(off, 1) + np.diag(off, -1)
    return float(np.linalg.eigvalsh(T)[-1])


def _activation(name: str, z: np.ndarray):
    """(phi(z), phi'(z), phi''(z)) as the native trainer defines phi (network.cpp)."""
    if name == "identity":
        return z, np.ones_like(z), np.zeros_like(z)
    if name == "relu":
        on = (z > 0).astype(z.dtype)
        return z * on, on, np.zeros_like(z)
    if name == "tanh":
        t = np.tanh(z)
        d = 1.0 - t * t
        return t, d, -2.0 * t * d
    if name == "softplus":
        s = expit(z)
        return np.logaddexp(0.0, z), s, s * (1.0 - s)
    if name == "gelu":
        cdf = 0.5 * erfc(-z / math.sqrt(2.0))
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return z * cdf, cdf + z * pdf, pdf * (2.0 - z * z)
    raise ValueError(f"activation: unknown {name!r}")


def _loss_derivatives(loss: str, f: np.ndarray, Y: np.ndarray, Rf: np.ndarray):
    """(d loss / d f, the loss's Hessian in f times Rf), per row."""
    if loss == "squared":
        return f - Y, Rf
    if loss == "logistic":
        p = expit(f)
        return p - Y, p * (1.0 - p) * Rf
    shifted = f - f.max(axis=1, keepdims=True)  # softmax
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    return p - Y, p * Rf - p * np.sum(p * Rf, axis=1, keepdims=True)


def hessian_vector_product(
    net: Network,
    w: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    weights: np.ndarray | None,
    v: np.ndarray,
) -> np.ndarray:
    """``H v``, H the Hessian of ``sum_i weights_i loss_i(w)`` (no penalty, not divided by
    the rows), exactly (to rounding): the R-operator of the forward and backward passes
    (Pearlmutter 1994), in blocks of ``CHUNK_ROWS`` rows. With relu, the Hessian where it
    exists (no unit exactly at zero): the activation's second derivative is zero."""
    layers, directions = list(zip(*net.unpack(w))), list(zip(*net.unpack(v)))
    out = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
    last = len(layers) - 1
    for s in range(0, X.shape[0], CHUNK_ROWS):
        a = X[s : s + CHUNK_ROWS]
        Ra = np.zeros_like(a)
        inputs, Rinputs, derivs = [], [], []
        for l, ((W, b), (V, c)) in enumerate(zip(layers, directions)):
            inputs.append(a)
            Rinputs.append(Ra)
            z = a @ W + b
            Rz = Ra @ W + a @ V + c
            if l < last:
                a, d1, d2 = _activation(net.activation, z)
                derivs.append((d1, d2, Rz))
                Ra = d1 * Rz
            else:
                f, Rf = z, Rz
        delta, Rdelta = _loss_derivatives(net.loss, f, Y[s : s + CHUNK_ROWS], Rf)
        if weights is not None:
            rw = weights[s : s + CHUNK_ROWS, None]
            delta, Rdelta = delta * rw, Rdelta * rw
        for l in range(last, -1, -1):
            W, V = layers[l][0], directions[l][0]
            gW, gb = out[l]
            gW += Rinputs[l].T @ delta + inputs[l].T @ Rdelta
            gb += Rdelta.sum(axis=0)
            if l > 0:
                d1, d2, Rz = derivs[l - 1]
                back = delta @ W.T
                Rdelta = (Rdelta @ W.T + delta @ V.T) * d1 + back * d2 * Rz
                delta = back * d1
    return np.concatenate([part.ravel() for pair in out for part in pair])

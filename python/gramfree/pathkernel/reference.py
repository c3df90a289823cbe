"""A straightforward numpy implementation of the path-kernel decomposition, for checking the
native engine (tests) and as the anchor of benchmarks/bench_pathkernel.py.

Written from the maths, not from the native code: it trains with numpy, materialises every
example's full gradient vector (rows x P, in blocks of rows) and every query's averaged
gradient (q x k x P), and takes their dot products. Smooth activations only (it does not
split ReLU segments). float64.
"""

from __future__ import annotations

import numpy as np

_MASK64 = (1 << 64) - 1


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def batch_schedule(n: int, batch_size: int, n_steps: int, seed: int, shuffle: bool = True):
    """The native trainer's batch order (Fisher-Yates driven by splitmix64, documented in
    csrc/gramfree/pathkernel.hpp), step by step."""
    batch = n if batch_size <= 0 or batch_size >= n else batch_size
    order = list(range(n))
    state, pos = seed & _MASK64, n
    for _ in range(n_steps):
        if pos >= n:
            pos = 0
            if shuffle and batch < n:
                for i in range(n - 1, 0, -1):
                    state, u = _splitmix64(state)
                    j = (u * (i + 1)) >> 64
                    order[i], order[j] = order[j], order[i]
        end = min(n, pos + batch)
        yield np.array(order[pos:end])
        pos = end


def _act(name, z):
    if name == "identity":
        return z, np.ones_like(z)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if name == "softplus":
        return np.logaddexp(0, z), 1 / (1 + np.exp(-z))
    if name == "gelu":
        from scipy.special import erf

        cdf = 0.5 * (1 + erf(z / np.sqrt(2)))
        return z * cdf, cdf + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(float)
    raise ValueError(name)


class ReferenceMLP:
    def __init__(self, sizes, activation, loss):
        self.sizes, self.activation, self.loss = list(sizes), activation, loss

    def split(self, w):
        out, at = [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            W = w[at : at + a * b].reshape(a, b)
            at += a * b
            out.append((W, w[at : at + b]))
            at += b
        return out

    def forward(self, w, X):
        layers = self.split(w)
        A, Dact = [X], []
        for l, (W, b) in enumerate(layers):
            z = A[-1] @ W + b
            if l + 1 < len(layers):
                a, da = _act(self.activation, z)
                A.append(a)
                Dact.append(da)
            else:
                f = z
        return f, A, Dact

    def jacobian(self, w, X):
        """J[r, o, :] = d f_o(X[r]) / dw, materialised (rows x k x P)."""
        layers = self.split(w)
        f, A, Dact = self.forward(w, X)
        rows, k = f.shape
        delta = np.broadcast_to(np.eye(k), (rows, k, k)).copy()  # d f_o / d z_top
        blocks = [None] * len(layers)
        for l in range(len(layers) - 1, -1, -1):
            gW = np.einsum("ri,roj->roij", A[l], delta).reshape(rows, k, -1)
            blocks[l] = np.concatenate([gW, delta], axis=2)
            if l > 0:
                delta = (delta @ layers[l][0].T) * Dact[l - 1][:, None, :]
        return f, np.concatenate(blocks, axis=2)

    def loss_derivative(self, f, Y):
        if self.loss == "squared":
            return f - Y
        if self.loss == "softmax":
            e = np.exp(f - f.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True) - Y
        return 1 / (1 + np.exp(-f)) - Y

    def weight_mask(self):
        return np.concatenate(
            [np.r_[np.ones(a * b), np.zeros(b)] for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        )


def gauss_legendre_01(n):
    x, wts = np.polynomial.legendre.leggauss(n)
    return (x + 1) / 2, wts / 2


def decompose(
    net: ReferenceMLP,
    w0,
    X,
    Y,
    Q,
    *,
    learning_rate,
    n_steps,
    batch_size=0,
    alpha=0.0,
    seed=0,
    shuffle=True,
    n_nodes=4,
    block=512,
    sample_weight=None,
):
    """Train from w0 and return (initial, C[q, n, k], reg, final, w_T). With sample_weight
    v, example i's gradient is scaled by v_i and each step by 1 / mean(v)."""
    n, k = Y.shape
    v = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    vbar = v.mean()
    q = Q.shape[0]
    mask = net.weight_mask()
    if n_nodes == 1:
        nodes, wts = np.array([0.0]), np.array([1.0])
    else:
        nodes, wts = gauss_legendre_01(n_nodes)
    C = np.zeros((q, n, k))
    reg = np.zeros((q, k))
    w = np.array(w0, dtype=float)
    initial = net.forward(w, Q)[0]
    for idx in batch_schedule(n, batch_size, n_steps, seed, shuffle):
        B = len(idx)
        grad = alpha * mask * w
        G_rows = []
        for s in range(0, B, block):
            part = idx[s : s + block]
            f, J = net.jacobian(w, X[part])
            G = np.einsum("ro,rop->rp", net.loss_derivative(f, Y[part]), J, optimize=True)
            G = G * v[part][:, None]
            grad = grad + G.sum(axis=0)
            G_rows.append((part, G))
        lr_B = learning_rate / (B * vbar)
        w_next = w - lr_B * grad
        delta = w_next - w
        gbar = sum(wj * net.jacobian(w + sj * delta, Q)[1] for sj, wj in zip(nodes, wts))
        flat = gbar.reshape(q * k, -1)  # every query's averaged gradient, materialised
        for part, G in G_rows:  # G: the block's per-example gradients, materialised
            C[:, part, :] += -lr_B * (flat @ G.T).reshape(q, k, -1).transpose(0, 2, 1)
        reg += -lr_B * alpha * (flat @ (mask * w)).reshape(q, k)
        w = w_next
    final = net.forward(w, Q)[0]
    return initial, C, reg, final, w


def train(
    net: ReferenceMLP,
    w0,
    X,
    Y,
    *,
    learning_rate,
    n_steps,
    batch_size=0,
    alpha=0.0,
    seed=0,
    shuffle=True,
):
    """Plain gradient descent as the native trainer does it; returns w_T."""
    mask = net.weight_mask()
    w = np.array(w0, dtype=float)
    for idx in batch_schedule(X.shape[0], batch_size, n_steps, seed, shuffle):
        f, J = net.jacobian(w, X[idx])
        G = np.einsum("ro,rop->p", net.loss_derivative(f, Y[idx]), J)
        w = w - learning_rate / len(idx) * (G + alpha * mask * w)
    return w

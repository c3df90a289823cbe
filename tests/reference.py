"""Independent float64 references for the kernels and operators, written from the formulas.

Everything here computes with exact coordinate differences ``x - z`` (never the expansion
``|x|^2 + |z|^2 - 2 <x, z>`` the fused engine uses), in float64, with numpy only; the kernel
objects of :mod:`gramfree.kernels` are read for their parameters and nothing else, so a
wrong default (``gamma=None`` -> ``1 / n_features``) in the library shows up here.
scikit-learn's pairwise kernels and its Matern kernel serve as a second opinion where
scikit-learn has the kernel.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.gaussian_process.kernels import Matern as SkMatern
from sklearn.metrics.pairwise import pairwise_kernels

from gramfree.kernels import ArcCosine, Gaussian, Kernel, Laplacian, Linear, Matern, Polynomial

__all__ = [
    "NATIVE",
    "kernel_matrix",
    "magnitude_matrix",
    "sklearn_kernel_matrix",
    "matvec",
    "rmatvec",
    "normal_matvec",
    "gradient",
    "gradient_fd",
    "magnitudes",
    "rel_error",
    "assert_rel_close",
    "is_radial",
    "has_gradient",
    "rank_deficient_poly_ridge",
]


def _f64(A) -> np.ndarray:
    return np.asarray(A, dtype=np.float64)


def _gamma(kernel: Kernel, d: int) -> float:
    # scikit-learn's convention, restated here independently of the library.
    g = getattr(kernel, "gamma", None)
    return 1.0 / d if g is None else float(g)


def _diff(X, Z) -> np.ndarray:
    """``D[i, j, :] = x_i - z_j``, exactly (one rounding per coordinate)."""
    return _f64(X)[:, None, :] - _f64(Z)[None, :, :]


def _sqdist(X, Z) -> np.ndarray:
    D = _diff(X, Z)
    return np.einsum("ijl,ijl->ij", D, D)


def _l1dist(X, Z) -> np.ndarray:
    return np.abs(_diff(X, Z)).sum(axis=2)


def _arccos1(X, Z) -> np.ndarray:
    X, Z = _f64(X), _f64(Z)
    nx = np.sqrt((X * X).sum(axis=1))
    nz = np.sqrt((Z * Z).sum(axis=1))
    nn = np.outer(nx, nz)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(nn > 0, (X @ Z.T) / np.where(nn > 0, nn, 1.0), 0.0)
    c = np.clip(c, -1.0, 1.0)
    t = np.arccos(c)
    K = nn * (np.sin(t) + (math.pi - t) * np.cos(t)) / math.pi
    return np.where(nn > 0, K, 0.0)


def _matern(a: np.ndarray, nu: float) -> np.ndarray:
    """Matern of order nu = 1/2, 3/2 or 5/2 at a = sqrt(2 nu) |x - z| / length_scale."""
    if nu == 0.5:
        return np.exp(-a)
    if nu == 1.5:
        return (1.0 + a) * np.exp(-a)
    return (1.0 + a + a * a / 3.0) * np.exp(-a)


# One row per native kernel of the core's table (gramfree.kernels.native_kernels()), from
# the textbook formula, taking exactly the parameters the table says the kernel uses;
# tests/test_kernel_table.py fails for a native kernel without a row here.
NATIVE = {
    "gaussian": lambda X, Z, gamma: np.exp(-gamma * _sqdist(X, Z)),
    "laplacian_l1": lambda X, Z, gamma: np.exp(-gamma * _l1dist(X, Z)),
    "laplacian_l2": lambda X, Z, gamma: np.exp(-gamma * np.sqrt(_sqdist(X, Z))),
    "matern12": lambda X, Z, length_scale: _matern(np.sqrt(_sqdist(X, Z)) / length_scale, 0.5),
    "matern32": lambda X, Z, length_scale: _matern(
        math.sqrt(3.0) * np.sqrt(_sqdist(X, Z)) / length_scale, 1.5
    ),
    "matern52": lambda X, Z, length_scale: _matern(
        math.sqrt(5.0) * np.sqrt(_sqdist(X, Z)) / length_scale, 2.5
    ),
    "polynomial": lambda X, Z, gamma, coef0, degree: (
        (gamma * (_f64(X) @ _f64(Z).T) + coef0) ** int(degree)
    ),
    "linear": lambda X, Z: _f64(X) @ _f64(Z).T,
    "arccos1": _arccos1,
}


def _native_of(kernel: Kernel, d: int) -> tuple[str, dict]:
    """The native kernel a kernel object stands for and its parameters, from the object's
    fields and the kernel's definition (not from the library's ``native_spec``)."""
    if isinstance(kernel, Gaussian):
        return "gaussian", {"gamma": _gamma(kernel, d)}
    if isinstance(kernel, Laplacian):
        return f"laplacian_{kernel.norm}", {"gamma": _gamma(kernel, d)}
    if isinstance(kernel, Matern):
        if kernel.nu == math.inf:  # exp(-r^2 / (2 l^2))
            return "gaussian", {"gamma": 0.5 / kernel.length_scale**2}
        kind = {0.5: "matern12", 1.5: "matern32", 2.5: "matern52"}[kernel.nu]
        return kind, {"length_scale": kernel.length_scale}
    if isinstance(kernel, Polynomial):
        return "polynomial", {
            "gamma": _gamma(kernel, d),
            "coef0": kernel.coef0,
            "degree": kernel.degree,
        }
    if isinstance(kernel, Linear):
        return "linear", {}
    if isinstance(kernel, ArcCosine):
        return "arccos1", {}
    raise TypeError(f"no reference for {kernel!r}")


def kernel_matrix(kernel: Kernel, X, Z=None) -> np.ndarray:
    """``K(X, Z)`` in float64 from the textbook formula of each kernel."""
    X = _f64(X)
    Z = X if Z is None else _f64(Z)
    kind, params = _native_of(kernel, X.shape[1])
    return NATIVE[kind](X, Z, **params)


def magnitude_matrix(kernel: Kernel, X, Z=None) -> np.ndarray:
    """An entrywise bound on the magnitudes that round in ``K(X, Z)``.

    Radial kernels are ``exp(-t)`` of an exponent ``t`` (gamma |x-z|^2, gamma |x-z|,
    sqrt(2 nu) |x-z| / l) summed in the working precision, so the rounding of ``t`` alone
    moves ``K`` by ``t * eps`` relatively: the bound is ``K (1 + t)``, the conditioning
    of exp, which no implementation escapes (at t = 27 in float32 that is 1.6e-6 before
    any other rounding). An inner-product kernel rounds relative to ``|x| |z|``, not to
    ``<x, z>`` (which can cancel to 0): linear ``|X| |Z|^T``, polynomial
    ``(gamma |X| |Z|^T + |coef0|)^degree``, arc-cosine ``|x|_2 |z|_2``.
    """
    X = _f64(X)
    Z = X if Z is None else _f64(Z)
    d = X.shape[1]
    if isinstance(kernel, Linear):
        return np.abs(X) @ np.abs(Z).T
    if isinstance(kernel, Polynomial):
        base = _gamma(kernel, d) * (np.abs(X) @ np.abs(Z).T) + abs(kernel.coef0)
        return base ** int(kernel.degree)
    if isinstance(kernel, ArcCosine):
        return np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(Z, axis=1))
    return kernel_matrix(kernel, X, Z) * (1.0 + _exponent(kernel, X, Z))


def _exponent(kernel: Kernel, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """The ``t`` of a radial kernel's ``exp(-t)``."""
    d = X.shape[1]
    if isinstance(kernel, Gaussian):
        return _gamma(kernel, d) * _sqdist(X, Z)
    if isinstance(kernel, Laplacian):
        dist = _l1dist(X, Z) if kernel.norm == "l1" else np.sqrt(_sqdist(X, Z))
        return _gamma(kernel, d) * dist
    if isinstance(kernel, Matern):
        nu = kernel.nu if math.isfinite(kernel.nu) else 0.5
        return math.sqrt(2 * nu) * np.sqrt(_sqdist(X, Z)) / kernel.length_scale
    raise TypeError(f"no exponent for {kernel!r}")


def sklearn_kernel_matrix(kernel: Kernel, X, Z=None) -> np.ndarray | None:
    """scikit-learn's value of the same kernel, or None where scikit-learn lacks it."""
    X = _f64(X)
    Z = X if Z is None else _f64(Z)
    if isinstance(kernel, Gaussian):
        return pairwise_kernels(X, Z, metric="rbf", gamma=kernel.gamma)
    if isinstance(kernel, Laplacian) and kernel.norm == "l1":
        return pairwise_kernels(X, Z, metric="laplacian", gamma=kernel.gamma)
    if isinstance(kernel, Polynomial):
        return pairwise_kernels(
            X,
            Z,
            metric="polynomial",
            degree=kernel.degree,
            gamma=kernel.gamma,
            coef0=kernel.coef0,
        )
    if isinstance(kernel, Linear):
        return pairwise_kernels(X, Z, metric="linear")
    if isinstance(kernel, Matern):
        return SkMatern(length_scale=kernel.length_scale, nu=kernel.nu)(X, Z)
    return None


def _as2d(V) -> np.ndarray:
    V = _f64(V)
    return V.reshape(-1, 1) if V.ndim == 1 else V


def matvec(kernel: Kernel, X, Z, V) -> np.ndarray:
    """``K(X, Z) @ V``."""
    return kernel_matrix(kernel, X, Z) @ _f64(V)


def rmatvec(kernel: Kernel, X, Z, U) -> np.ndarray:
    """``K(X, Z)^T @ U``."""
    return kernel_matrix(kernel, X, Z).T @ _f64(U)


def normal_matvec(kernel: Kernel, X, Z, V) -> np.ndarray:
    """``K(X, Z)^T (K(X, Z) @ V)``."""
    K = kernel_matrix(kernel, X, Z)
    return K.T @ (K @ _f64(V))


def magnitudes(kernel: Kernel, op: str, X, Z, V=None) -> np.ndarray:
    """The same operation on magnitudes (``|K|``, ``|V|``): the scale that rounding
    errors are relative to, equal to ``|result|`` when nothing cancels."""
    A = magnitude_matrix(kernel, X, Z)
    if op == "kernel_matrix":
        return A
    W = np.abs(_f64(V))
    if op == "matvec":
        return A @ W
    if op == "rmatvec":
        return A.T @ W
    if op == "normal_matvec":
        return A.T @ (A @ W)
    raise ValueError(op)


def is_radial(kernel: Kernel) -> bool:
    return isinstance(kernel, (Gaussian, Laplacian, Matern))


def has_gradient(kernel: Kernel) -> bool:
    return not isinstance(kernel, ArcCosine)


def _radial_fr_over_r(kernel: Kernel, d: int, r: np.ndarray) -> np.ndarray:
    """``f'(r) / r`` for a radial kernel ``k = f(r)``, ``r = |x - z|`` (inf/nan at r = 0
    for the kernels not differentiable there; the caller masks r = 0)."""
    if isinstance(kernel, Gaussian) or (isinstance(kernel, Matern) and kernel.nu == math.inf):
        g = _gamma(kernel, d) if isinstance(kernel, Gaussian) else 0.5 / kernel.length_scale**2
        return -2.0 * g * np.exp(-g * r * r)
    if isinstance(kernel, Laplacian):  # norm == "l2"
        g = _gamma(kernel, d)
        return -g * np.exp(-g * r) / r
    if isinstance(kernel, Matern):
        ls = kernel.length_scale
        if kernel.nu == 0.5:
            return -np.exp(-r / ls) / (ls * r)
        if kernel.nu == 1.5:
            a = math.sqrt(3.0) / ls
            return -a * a * np.exp(-a * r)
        if kernel.nu == 2.5:
            a = math.sqrt(5.0) / ls
            return -(a * a / 3.0) * (1.0 + a * r) * np.exp(-a * r)
    raise TypeError(f"no reference gradient for {kernel!r}")


def gradient(kernel: Kernel, X, Z, V, magnitude: bool = False) -> np.ndarray:
    """Analytic ``d/dx_i (K(X, Z) @ V)[i, c]`` as an array ``(n, k, d)``.

    At ``x == z`` (and, for the L1 Laplacian, in a coordinate where ``x_l == z_l``) the
    non-smooth kernels have no derivative; this uses the zero subgradient there, as the
    library documents. ``magnitude=True`` gives the same sum over ``|terms| |V|``: the
    scale that rounding errors are relative to when the sum cancels.
    """
    X, Z, V = _f64(X), _f64(Z), _as2d(V)
    d = X.shape[1]
    D = _diff(X, Z)  # n, m, d
    if isinstance(kernel, Linear):
        W = np.broadcast_to(Z[None, :, :], D.shape)  # d/dx <x, z> = z
    elif isinstance(kernel, Polynomial):
        g, p = _gamma(kernel, d), int(kernel.degree)
        base = g * (X @ Z.T) + kernel.coef0
        W = (p * g * base ** (p - 1))[:, :, None] * Z[None, :, :]
    elif isinstance(kernel, Laplacian) and kernel.norm == "l1":
        g = _gamma(kernel, d)
        K = np.exp(-g * np.abs(D).sum(axis=2))
        W = -g * K[:, :, None] * np.sign(D)
    else:
        # Radial: k = f(r), grad_x = f'(r) (x - z) / r.
        r = np.sqrt(np.einsum("ijl,ijl->ij", D, D))
        with np.errstate(divide="ignore", invalid="ignore"):
            W = np.where((r > 0)[:, :, None], _radial_fr_over_r(kernel, d, r)[:, :, None] * D, 0.0)
    if magnitude:
        W, V = np.abs(W), np.abs(V)
    return np.einsum("ijl,jc->icl", W, V)  # G[i, c, l] = sum_j W[i, j, l] V[j, c]


def gradient_fd(kernel: Kernel, X, Z, V, h: float = 1e-5) -> np.ndarray:
    """Central finite differences of the reference ``K(X, Z) @ V``, shape ``(n, k, d)``."""
    X, Z, V = _f64(X), _f64(Z), _as2d(V)
    n, d = X.shape
    G = np.empty((n, V.shape[1], d))
    eye = np.eye(d) * h
    for i in range(n):
        plus = matvec(kernel, X[i] + eye, Z, V)  # d x k: row l perturbs coordinate l
        minus = matvec(kernel, X[i] - eye, Z, V)
        G[i] = ((plus - minus) / (2.0 * h)).T
    return G


def rel_error(out, ref, scale=None) -> float:
    """``||out - ref|| / max(||ref||, ||scale||)`` in float64 (0 when both are 0)."""
    out, ref = _f64(out), _f64(ref)
    denom = np.linalg.norm(ref)
    if scale is not None:
        denom = max(denom, np.linalg.norm(_f64(scale)))
    err = np.linalg.norm(out - ref)
    if denom == 0:
        return 0.0 if err == 0 else math.inf
    return float(err / denom)


def assert_rel_close(out, ref, rtol: float, scale=None, what: str = "") -> None:
    """Norm-wise relative closeness; ``scale`` (same shape) is a magnitude the error is
    allowed to be relative to when ``ref`` itself cancels (see :func:`magnitudes`)."""
    out = np.asarray(out)
    assert out.shape == np.shape(ref), f"{what}: shape {out.shape} != {np.shape(ref)}"
    assert np.all(np.isfinite(out)), f"{what}: non-finite values in the result"
    err = rel_error(out, ref, scale)
    assert err <= rtol, f"{what}: relative error {err:.3e} > {rtol:.1e}"


def rank_deficient_poly_ridge():
    """A float32 problem where float32 CG stalls: a degree-2 polynomial kernel in 3
    dimensions, whose K_MM over all 25 points (the centres) has rank 10, at alpha 100 and
    tol 1e-12. Returns ``X`` (25 x 3, float32), ``y``, new points ``Xt`` (5 x 3), the
    nystrom-pcg estimator parameters, and exact kernel ridge in float64 as a function of
    the points to predict at."""
    from sklearn.metrics.pairwise import polynomial_kernel

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(25, 3)).astype(np.float32), rng.normal(size=25)
    Xt = rng.normal(size=(5, 3))
    kernel_params = dict(degree=2, gamma=0.2, coef0=1.0)
    X64 = X.astype(np.float64)
    coef = np.linalg.solve(polynomial_kernel(X64, X64, **kernel_params) + 100.0 * np.eye(25), y)
    params = dict(
        kernel="poly",
        alpha=100.0,
        solver="nystrom-pcg",
        n_centers=25,
        random_state=0,
        tol=1e-12,
        n_jobs=1,
        **kernel_params,
    )
    return X, y, Xt, params, lambda Z: polynomial_kernel(_f64(Z), X64, **kernel_params) @ coef


def exact_nystrom_fit(K, Kmm, y, w, alpha):
    """The Nystrom ridge's predictions from its normal equations in exact rational
    arithmetic (``fractions``: the float64 data taken exactly, no rounding anywhere), for
    a few centres: the reference where weights span 1e80."""
    from fractions import Fraction

    n, M = K.shape
    Kq = [[Fraction(float(v)) for v in row] for row in K]
    wq, yq = [Fraction(float(v)) for v in w], [Fraction(float(v)) for v in y]
    A = [[Fraction(alpha) * Fraction(float(Kmm[p, q])) for q in range(M)] for p in range(M)]
    b = [Fraction(0)] * M
    for i in range(n):
        for p in range(M):
            wk = wq[i] * Kq[i][p]
            b[p] += wk * yq[i]
            for q in range(M):
                A[p][q] += wk * Kq[i][q]
    for c in range(M):  # Gauss-Jordan, exact
        pivot = max(range(c, M), key=lambda r: abs(A[r][c]))
        A[c], A[pivot], b[c], b[pivot] = A[pivot], A[c], b[pivot], b[c]
        for r in range(M):
            if r != c and A[r][c] != 0:
                f = A[r][c] / A[c][c]
                A[r] = [A[r][k] - f * A[c][k] for k in range(M)]
                b[r] -= f * b[c]
    return K @ np.array([float(b[c] / A[c][c]) for c in range(M)])


def stacked_qr_nystrom_fit(K, Kmm, y, w, alpha):
    """The Nystrom ridge's predictions by Householder QR of the stacked least-squares
    problem ``min |W^1/2 (K a - y)|^2 + alpha |R a|^2`` (``R^T R = K_MM`` on its range, from
    its eigendecomposition), float64: its error is eps times the stacked matrix's
    condition number, the square root of the normal equations' (which a Gram's solve
    carries). ``y`` of shape (n,) or (n, t)."""
    import scipy.linalg as sla

    K, Kmm, y, w = _f64(K), _f64(Kmm), _f64(y), _f64(w)
    lam, V = np.linalg.eigh(Kmm)
    keep = lam > lam.max() * 1e-15
    R = (V[:, keep] * np.sqrt(lam[keep])).T
    sw = np.sqrt(w)
    A = np.vstack([sw[:, None] * K, math.sqrt(alpha) * R])
    Y = y.reshape(len(y), -1)
    rhs = np.vstack([sw[:, None] * Y, np.zeros((R.shape[0], Y.shape[1]))])
    Q, upper = sla.qr(A, mode="economic")
    return (K @ sla.solve_triangular(upper, Q.T @ rhs)).reshape(y.shape)

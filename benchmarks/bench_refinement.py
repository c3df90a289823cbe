#!/usr/bin/env python
"""What the one-pass Nystrom solver's iterative refinement buys and costs, beside
scikit-learn's ``Nystroem`` + ``Ridge`` on the same centres.

``KernelRegressor(solver="nystrom-direct")`` sums the Gram ``K_nM^T W K_nM`` and whitens
it by K_MM's Cholesky factor; the whitening amplifies the Gram's rounding by up to
cond(K_MM), so with a wide kernel the solve is off the exact Nystrom model by 1e-5 to 1e-4
of the predictions, while the objective check (quadratic in the error) passes. The solver
then refines the model from the normal equations' residual, one pass over the data per
step (``nystrom_direct.refine_model``; a step only where the first residual, formed in the
objective check's pass, promises a change above about 1e-9 of the targets' spread).

Part 1, accuracy (real data: scikit-learn's breast cancer, diabetes, digits (3 against
the rest) and wine (class 0 against the rest), standardised; ``--satellite`` adds 4000
rows of Satellite from ``benchmarks/realdata.py``): for each set, centres M, gamma and
alpha, the largest distance of the predictions from a stacked-QR reference (Householder QR
of ``[W^1/2 K_nM; sqrt(alpha) R]``, ``R^T R = K_MM``: float64 with the square root of the
normal equations' condition number), relative to the reference's largest, for the Gram's
solve alone (the solver before the refinement: ``REFINE_STEPS = 0``, and its objective
check's pass by one fused product, without the residual), the refined solve, and
``Nystroem`` fitted on the same centres (all M of them as its components) + ``Ridge`` with
the same alpha: the anchor's own float64 rounding, for scale.

Part 2, cost (synthetic, a cost figure: n rows, d = 16, M centres, gamma 1/(8 d),
alpha 1e-6 n and 1e-8 n, where the Gram is off; then 20000 rows, d = 784, M = 500, where
a kernel entry costs as much as the Gram's share of it): the refined fit's time over the
Gram's alone, best of two, interleaved, and ``Nystroem + Ridge``'s time over ours.

    python benchmarks/bench_refinement.py                # part 2 at n = 100000, M = 2000
    python benchmarks/bench_refinement.py --quick        # CI smoke run (seconds)
    python benchmarks/bench_refinement.py --satellite    # part 1 with Satellite too
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import scipy.linalg as sla
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import Ridge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import scale

import gramfree.solvers.nystrom_direct as nd
from gramfree import KernelRegressor

# (set, centres, gamma times d, alpha per row)
CASES = [
    ("cancer", 100, 0.1, 1e-6),
    ("cancer", 100, 0.03, 1e-6),
    ("cancer", 100, 0.03, 1e-9),
    ("cancer", 100, 0.01, 1e-6),
    ("diabetes", 100, 0.1, 1e-6),
    ("diabetes", 100, 0.03, 1e-6),
    ("diabetes", 100, 0.01, 1e-6),
    ("digits", 100, 0.01, 1e-6),
    ("digits", 300, 0.1, 1e-6),
    ("digits", 300, 0.03, 1e-6),
    ("wine", 100, 0.03, 1e-6),
]
SATELLITE = [("satellite", 800, 0.0042 * 36, 1e-6), ("satellite", 800, 0.042 * 36, 1e-6)]
QUICK_CASES = [("cancer", 100, 0.03, 1e-6), ("wine", 100, 0.03, 1e-6)]


def load(name: str):
    if name == "satellite":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from realdata import load as load_real

        X, _, y, _, _ = load_real("satellite")
        return X[:4000], np.where(y[:4000] == np.unique(y)[0], 1.0, -1.0)
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, np.where(y == 3, 1.0, -1.0)
    loader = {"cancer": load_breast_cancer, "diabetes": load_diabetes, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    y = np.where(y == 0, 1.0, -1.0) if name in ("wine", "cancer") else scale(y.astype(float))
    return scale(X), y


def reference(X, y, C, gamma, alpha):
    """The stacked-QR solution's predictions on X."""
    B, K = rbf_kernel(X, C, gamma=gamma), rbf_kernel(C, C, gamma=gamma)
    lam, V = np.linalg.eigh(K)
    keep = lam > lam.max() * 1e-15
    R = (V[:, keep] * np.sqrt(lam[keep])).T
    Q, upper = sla.qr(np.vstack([B, np.sqrt(alpha) * R]), mode="economic")
    rhs = np.concatenate([y, np.zeros(R.shape[0])])
    return B @ sla.solve_triangular(upper, Q.T @ rhs)


def _loss_only(self, C64, coef):
    """The check pass as it was before the refinement: the loss by one fused product, no
    residual (zeros: no step follows)."""
    loss = nd._loss_sum(self.problem, C64, coef)
    return np.array([loss]), np.zeros((C64.shape[0], 1))


def fit(X, y, M, gamma, alpha, steps):
    """``steps`` 0: the solver before the refinement (its check pass included)."""
    nd.REFINE_STEPS = steps
    if steps == 0:
        nd.MemoryPasses.loss_residual = _loss_only
    try:
        return KernelRegressor(
            gamma=gamma, alpha=alpha, solver="nystrom-direct", n_centers=M, random_state=0
        ).fit(X, y)
    finally:
        nd.REFINE_STEPS = DEFAULT_STEPS
        nd.MemoryPasses.loss_residual = DEFAULT_PASS


def anchor(X, y, C, gamma, alpha):
    """Nystroem with the centres as its components, then Ridge (no intercept)."""
    features = Nystroem(gamma=gamma, n_components=C.shape[0], random_state=0).fit(C)
    ridge = Ridge(alpha=alpha, fit_intercept=False).fit(features.transform(X), y)
    return lambda Z: ridge.predict(features.transform(Z))


DEFAULT_STEPS = nd.REFINE_STEPS
DEFAULT_PASS = nd.MemoryPasses.loss_residual


def accuracy(cases) -> None:
    print("Part 1: largest distance from the stacked-QR reference, relative to its largest")
    print("| set, M, gamma x d, alpha / n | Gram alone | refined (steps) | Nystroem + Ridge |")
    print("|---|---:|---:|---:|")
    for name, M, gd, lam in cases:
        X, y = load(name)
        n, d = X.shape
        gamma, alpha = gd / d, lam * n
        before, after = fit(X, y, M, gamma, alpha, 0), fit(X, y, M, gamma, alpha, DEFAULT_STEPS)
        C = after.centers_
        want = reference(X, y, C, gamma, alpha)
        top = np.abs(want).max()

        def error(predict, want=want, top=top):
            return np.abs(predict(X) - want).max() / top

        steps = after.solver_info_.get("refinement_steps", "-")
        path = after.solver_info_.get("fallback", "Gram")
        print(
            f"| {name}, {M}, {gd:g}, {lam:g} | {error(before.predict):.1e} | "
            f"{error(after.predict):.1e} ({steps}, {path}) | "
            f"{error(anchor(X, y, C, gamma, alpha)):.1e} |",
            flush=True,
        )


def cost(n: int, M: int, d: int = 16) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)
    gamma = 1.0 / (8 * d)
    print(f"\nPart 2: cost, synthetic n = {n}, d = {d}, M = {M}, gamma 1/(8 d); best of two")
    print(
        "| alpha / n | Gram alone | refined (steps) | ratio | Nystroem + Ridge | its time / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for lam in (1e-6, 1e-8):
        times: dict[int, list[float]] = {0: [], DEFAULT_STEPS: []}
        models = {}
        for steps in (DEFAULT_STEPS, 0, 0, DEFAULT_STEPS):
            start = time.perf_counter()
            models[steps] = fit(X, y, M, gamma, lam * n, steps)
            times[steps].append(time.perf_counter() - start)
        C = models[DEFAULT_STEPS].centers_
        anchor_times = []
        for _ in range(2):
            start = time.perf_counter()
            anchor(X, y, C, gamma, lam * n)
            anchor_times.append(time.perf_counter() - start)
        ours, plain, other = min(times[DEFAULT_STEPS]), min(times[0]), min(anchor_times)
        steps = models[DEFAULT_STEPS].solver_info_.get("refinement_steps", "-")
        print(
            f"| {lam:g} | {plain:.2f} s | {ours:.2f} s ({steps}) | {ours / plain:.3f}x | "
            f"{other:.2f} s | {other / ours:.2f}x |",
            flush=True,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run")
    ap.add_argument("--satellite", action="store_true", help="part 1 with Satellite too")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--m", type=int, default=2000)
    args = ap.parse_args(argv)
    print(f"gramfree bench_refinement, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    accuracy(QUICK_CASES if args.quick else CASES + (SATELLITE if args.satellite else []))
    if args.quick:
        cost(4000, 200)
    else:
        cost(args.n, args.m)
        cost(20000, 500, 784)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

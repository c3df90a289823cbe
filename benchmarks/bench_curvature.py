#!/usr/bin/env python
"""The logistic solver's Hessian product with a stored kernel block, K^T S (K V - 1 z^T):
gramfree's native one-pass product against the two BLAS products it replaced.

Kernel logistic regression (``KernelClassifier(loss="logistic")``) keeps K_nM (n x M) in
memory where it fits and spends most of its fit in this product, once per CG iteration,
with k columns (k classes, or 1 for two). Per shape (the suite's sets at the centres
``bench_logistic.py`` uses) and storage dtype, seconds per product of

* ``native``: ``gramfree._core.curvature_product`` (``csrc/kernels/curvature_engine.hpp``:
  one pass over K, float32 values widened in registers, float64 arithmetic), which
  :meth:`StoredColumns.curvature_product` calls while the pass's k x M accumulator fits
  ``NATIVE_MAX_ACCUMULATOR_BYTES`` (the 12-class rows probe that bound);
* ``blas``: ``K V`` then ``K^T W`` through scipy's BLAS (:mod:`gramfree._blas`; a float32
  K widened a chunk at a time into a float64 scratch block), which the solver used before;
* ``numpy``: ``K @ V`` and ``K.T @ W`` by numpy (float64 K only).

Both sides compute the same float64 product (checked to 1e-12 of its scale); the ratio is
the faster anchor's time over native's, and the effective read rate is K's bytes over
native's time. Each implementation runs a loop of back-to-back products after an untimed
one (at least 0.3 s of them), in two interleaved rounds, the faster kept.

With ``--fits``, what it does to fits: ``KernelClassifier(loss="logistic")`` on the
real-data suite's sets (``--fit-sets``; bench_logistic.py's settings: the suite's gamma,
``--centers``, alpha 0.01) with the native products and with ``NATIVE_CURVATURE = False``
(the two BLAS products, and for k classes the intercepts' shift from ``K V`` between
them, and K_MM V by two BLAS GEMMs), alternating, the faster of two fits each; the two
must reach the same objective (to 1e-6) and predict the same test labels but for
near-ties that rounding may flip (at most 0.1%).

    python benchmarks/bench_curvature.py            # the shapes below
    python benchmarks/bench_curvature.py --fits     # and the fits (~4 min)
    python benchmarks/bench_curvature.py --quick    # CI smoke: small shapes, a small fit
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import realdata  # noqa: E402

from gramfree import KernelClassifier, _core  # noqa: E402
from gramfree.solvers import _stored_columns  # noqa: E402
from gramfree.solvers._stored_columns import StoredColumns  # noqa: E402

# (name, n, M, k): the real-data sets' training rows, bench_logistic.py's centres, classes
# (1 for the binary logit; the multinomial product's classes otherwise).
SHAPES = [
    ("binary (spam-like) 43500 x 1000", 43500, 1000, 1),
    ("shuttle 43500 x 1000, 7 classes", 43500, 1000, 7),
    ("satellite 4826 x 1000, 6 classes", 4826, 1000, 6),
    ("letter 15000 x 1000, 26 classes", 15000, 1000, 26),
    ("Fashion-MNIST 60000 x 4000, 10 classes", 60000, 4000, 10),
    # 12 classes (ONE_PASS_CLASSES) with growing M: the native pass's per-thread k x M
    # accumulator (375 KiB to 2.2 MiB) against the core's L2 cache
    # (_stored_columns.NATIVE_MAX_ACCUMULATOR_BYTES).
    ("12 classes, 8000 x 4000", 8000, 4000, 12),
    ("12 classes, 8000 x 8000", 8000, 8000, 12),
    ("12 classes, 6000 x 12000", 6000, 12000, 12),
    ("12 classes, 6000 x 16000", 6000, 16000, 12),
    ("12 classes, 5000 x 24000", 5000, 24000, 12),
]
QUICK_SHAPES = [("quick 3000 x 300, 7 classes", 3000, 300, 7), ("quick 2000 x 200", 2000, 200, 1)]


def timed(fn, seconds: float) -> float:
    fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return elapsed / calls


def middle(U, w, P, z):
    """The rows of S (U - 1 z^T): the softmax's curvature with P, else the weights."""
    if P is None:
        return w[:, None] * U
    T = U - z
    return w[:, None] * P * (T - np.sum(P * T, axis=1, keepdims=True))


def measure(name: str, K: np.ndarray, V, w, P, z, seconds: float) -> dict:
    """Seconds per product of each implementation (module docstring), after checking
    that they agree."""
    op = StoredColumns(K)
    impls = {
        # The kernel itself: StoredColumns takes the BLAS route beyond its accumulator bound.
        "native": lambda: _core.curvature_product(op.K, V, w, P, z),
        "blas": lambda: op.rmatmat(middle(op @ V, w, P, z)),
    }
    if K.dtype == np.float64:
        impls["numpy"] = lambda: K.T @ middle(K @ V, w, P, z)
    results = {key: fn() for key, fn in impls.items()}
    scale = np.abs(results["blas"]).max()
    for key, value in results.items():
        if not np.allclose(value, results["blas"], rtol=0, atol=1e-12 * scale):
            raise SystemExit(f"{name} {key}: differs from the BLAS product")
    best = dict.fromkeys(impls, np.inf)
    for _ in range(2):  # interleaved rounds, the faster kept
        for key, fn in impls.items():
            best[key] = min(best[key], timed(fn, seconds))
    return best


def fit_once(name: str, centers: int, native: bool, quick: bool):
    X_train, X_test, y_train, _, task = realdata.load(name, quick=quick)
    model = KernelClassifier(
        gamma=realdata.CONFIG[name]["gamma"],
        alpha=1e-2,
        loss="logistic",
        n_centers=min(centers, len(y_train)),
        solver="nystrom-pcg",
        random_state=0,
    )
    _stored_columns.NATIVE_CURVATURE = native
    try:
        t0 = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
    finally:
        _stored_columns.NATIVE_CURVATURE = True
    return seconds, model, model.predict(X_test)


def fits(names: list[str], centers: int, quick: bool) -> None:
    print(
        f"\n{'set (fit)':14s} {'classes':>7s} {'native s':>9s} {'BLAS s':>9s} {'ratio':>7s} "
        f"{'CG its':>7s} {'K_nM':>8s} {'labels differing':>17s}"
    )
    for name in names:
        best = {True: np.inf, False: np.inf}
        out = {}
        for _ in range(2):
            for native in (True, False):
                seconds, model, predicted = fit_once(name, centers, native, quick)
                best[native] = min(best[native], seconds)
                out[native] = (model, predicted)
        (a, pa), (b, pb) = out[True], out[False]
        differ = int(np.sum(pa != pb))  # near-ties may flip with the rounding
        if differ > 1e-3 * len(pa):
            raise SystemExit(
                f"{name}: the native and BLAS fits predict {differ} labels differently"
            )
        ra, rb = a.solver_info_["objective"], b.solver_info_["objective"]
        if abs(ra - rb) > 1e-6 * abs(rb):
            raise SystemExit(f"{name}: objectives differ ({ra} against {rb})")
        print(
            f"{name:14s} {len(a.classes_):7d} {best[True]:9.2f} {best[False]:9.2f} "
            f"{best[False] / best[True]:6.2f}x {a.solver_info_['cg_iterations']:7d} "
            f"{str(a.solver_info_['stored_kernel_columns']):>8s} {differ:>8d} of {len(pa)}",
            flush=True,
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small shapes")
    parser.add_argument("--seconds", type=float, default=0.3, help="per timed loop")
    parser.add_argument("--fits", action="store_true", help="also time logistic fits")
    parser.add_argument("--fit-sets", default="spam,dna,satellite,mnist5k,letter,shuttle")
    parser.add_argument("--centers", type=int, default=1000)
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    seconds = 0.02 if args.quick else args.seconds
    print(
        f"{'shape':42s} {'K dtype':8s} {'native':>9s} {'blas':>9s} {'numpy':>9s} "
        f"{'ratio':>7s} {'read':>10s}"
    )
    for name, n, M, k in shapes:
        rng = np.random.default_rng(0)
        K64 = rng.random((n, M))
        V, w = rng.standard_normal((M, k)), rng.uniform(size=n)
        P = rng.dirichlet(np.ones(k), size=n) if k > 1 else None
        z = rng.standard_normal(k) if k > 1 else None
        for dtype in (np.float64, np.float32):
            K = K64 if dtype == np.float64 else K64.astype(np.float32)
            best = measure(name, K, V, w, P, z, seconds)
            anchor = min(v for key, v in best.items() if key != "native")
            numpy_s = f"{best['numpy']:9.4f}" if "numpy" in best else f"{'-':>9s}"
            print(
                f"{name:42s} {np.dtype(dtype).name:8s} {best['native']:9.4f} "
                f"{best['blas']:9.4f} {numpy_s} {anchor / best['native']:6.2f}x "
                f"{K.nbytes / best['native'] / 1e9:6.1f} GB/s",
                flush=True,
            )
    if args.fits or args.quick:
        fits(["satellite"] if args.quick else args.fit_sets.split(","), args.centers, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())

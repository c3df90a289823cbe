#!/usr/bin/env python
"""Triangular solves with few right-hand sides: gramfree's native solve against LAPACK's
and against gramfree's previous BLAS-by-halves path, and what it does to a fit.

Every iterative solver applies triangular solves with one column per target: Nystrom-PCG's
preconditioner four per CG iteration (M x M with k = 26 for a 26-class problem), EigenPro
one per batch, the direct solvers two per fit. BLAS's ``trsm`` and ``gemm`` with k = 26
columns run at about a third of the square GEMM rate.

Section 1, solves (``--sizes``, ``--ks``): per n, dtype, k and direction (L X = B and
L^T X = B), GFLOP/s (n^2 k flops) and % of numpy's square GEMM rate (measured in the same
run, the higher of two measurements) of

* ``gramfree``: :func:`gramfree.linalg.solve_triangular` (the native solve for k <= 64);
* ``halves``: the same function with ``linalg.NATIVE_SOLVES = False`` (BLAS ``trsm`` on
  diagonal blocks, GEMM between them: gramfree until this change);
* ``scipy``: ``scipy.linalg.solve_triangular`` (LAPACK ``trtrs``, scipy's OpenBLAS);
* ``gemm k``: numpy's ``L @ B`` with the same k columns, rated at its own 2 n^2 k flops
  (as many flops per matrix entry read as the solve's: what a BLAS does with this shape,
  not a solve).

The ratio is the best anchor's time (scipy or halves) over gramfree's. Each implementation
runs a loop of solves back to back after an untimed one (at least ``--repeat`` and 0.1 s
of them: the steady rate of a CG loop's solves; single calls after idle time measured
the processor's wake-up more than the solve), in two interleaved rounds, the faster
kept; a pause of 0.15 s before each loop lets OpenBLAS's workers, which spin for about a
tenth of a second after each multi-threaded call, go to sleep before the next
implementation runs on the same cores.

With ``--one-thread``, section 1 runs on one thread (BLAS through threadpoolctl and the
native solve, as inside a CG loop's small algebra: ``gramfree._threads.small_blas``), at
the sizes the solvers' M x k systems have there (default n = 256 ... 2000, k = 1 ... 10),
and % GEMM is of numpy's GEMM on that one thread. It measures the bound
``linalg._NATIVE_MIN_ROWS_ONE_THREAD``: from that many rows the native solve replaces
BLAS by halves on one thread (below it, halves is a single ``trsm`` call).

Section 2, fits (``--fit``): ``KernelClassifier(solver="nystrom-pcg")`` on letter (26
classes, the issue's setting gamma = 0.2, alpha = 0.1) with 1000, 2000 and 5000 centres, float64
and float32, with the native solves and with ``NATIVE_SOLVES = False``, alternating, best
of two fits each; same predictions required (the solves agree to rounding).

    python benchmarks/bench_trsm.py                 # sizes 2000 ... 20000 and the fits
    python benchmarks/bench_trsm.py --quick         # CI smoke (n = 1000, 2000; no fits)
    python benchmarks/bench_trsm.py --one-thread    # one thread, n = 256 ... 2000, no fits
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings

import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cholesky

from gramfree import _threads, linalg

PAUSE = 0.15


def lower_factor(n: int, dtype) -> np.ndarray:
    """A well-conditioned F-ordered lower triangle (diagonal 2, the rest N(0, 1/n))."""
    rng = np.random.default_rng(n)
    L = np.tril(rng.standard_normal((n, n)) / np.sqrt(n))
    L[np.diag_indices(n)] = 2.0
    return np.asfortranarray(L.astype(dtype))


def timed(fn, repeat: int) -> float:
    """Seconds per call of a loop of back-to-back calls (at least ``repeat`` of them and
    0.1 s in all: the steady rate of a CG loop's solves), after a pause and an untimed
    call."""
    time.sleep(PAUSE)
    t0 = time.perf_counter()
    fn()
    calls = max(repeat, int(0.1 / max(time.perf_counter() - t0, 1e-6)))
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def with_native(flag: bool, fn):
    def run():
        saved = linalg.NATIVE_SOLVES
        linalg.NATIVE_SOLVES = flag
        try:
            return fn()
        finally:
            linalg.NATIVE_SOLVES = saved

    return run


def solve_rows(sizes, ks, dtypes, repeat: int, gemm: dict) -> list[dict]:
    rows = []
    for n in sizes:
        for dtype in dtypes:
            L = lower_factor(n, dtype)
            for k in ks:
                B = np.random.default_rng(k).standard_normal((n, k)).astype(dtype)
                for trans in (False, True):
                    impls = {
                        "gramfree": with_native(
                            True, lambda: linalg.solve_triangular(L, B, trans=trans)
                        ),
                        "halves": with_native(
                            False, lambda: linalg.solve_triangular(L, B, trans=trans)
                        ),
                        "scipy": lambda: scipy.linalg.solve_triangular(
                            L, B, lower=True, trans=int(trans), check_finite=False
                        ),
                        "gemm k": (lambda: L.T @ B) if trans else (lambda: L @ B),
                    }
                    x = impls["gramfree"]()
                    ref = impls["scipy"]()
                    err = float(np.abs(x - ref).max() / np.abs(ref).max())
                    best = {name: float("inf") for name in impls}
                    for _ in range(2):  # two interleaved rounds
                        for name, fn in impls.items():
                            best[name] = min(best[name], timed(fn, repeat))
                    flops = float(n) * n * k
                    row = {"n": n, "dtype": np.dtype(dtype).name, "k": k, "trans": trans}
                    row["err"] = err
                    for name, seconds in best.items():
                        # numpy's L @ B multiplies all of L, 2 n^2 k flops (bench_cholesky
                        # counts it so); at n^2 k its rate read half (a review)
                        row[name] = (2 if name == "gemm k" else 1) * flops / seconds / 1e9
                    row["ratio"] = min(best["scipy"], best["halves"]) / best["gramfree"]
                    row["vs_halves"] = best["halves"] / best["gramfree"]
                    row["vs_scipy"] = best["scipy"] / best["gramfree"]
                    row["pct"] = 100.0 * row["gramfree"] / gemm[row["dtype"]]
                    rows.append(row)
                    print(
                        f"n={n:6d} {row['dtype']:7s} k={k:3d} {'L^T' if trans else 'L  '} "
                        f"gramfree {row['gramfree']:6.1f} GF/s ({row['pct']:3.0f}% GEMM)  "
                        f"halves {row['halves']:6.1f}  scipy {row['scipy']:6.1f}  "
                        f"gemm k {row['gemm k']:6.1f}  ratio {row['ratio']:.2f}x "
                        f"(halves {row['vs_halves']:.2f}x, scipy {row['vs_scipy']:.2f}x)  "
                        f"(max rel diff {err:.1e})",
                        flush=True,
                    )
    return rows


def fit_rows(repeat: int) -> list[dict]:
    import realdata

    from gramfree import KernelClassifier

    Xtr, Xte, ytr, yte, _ = realdata.load("letter")
    rows = []
    for dtype in ("float64", "float32"):
        for m in (1000, 2000, 5000):
            times = {True: float("inf"), False: float("inf")}
            preds = {}
            for _ in range(repeat):
                for native in (True, False):
                    clf = KernelClassifier(
                        gamma=0.2, alpha=0.1, solver="nystrom-pcg", n_centers=m, random_state=0
                    )
                    saved = linalg.NATIVE_SOLVES
                    linalg.NATIVE_SOLVES = native
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            time.sleep(PAUSE)
                            t0 = time.perf_counter()
                            clf.fit(Xtr.astype(dtype), ytr)
                            times[native] = min(times[native], time.perf_counter() - t0)
                    finally:
                        linalg.NATIVE_SOLVES = saved
                    preds[native] = clf.predict(Xte.astype(dtype))
            agree = float(np.mean(preds[True] == preds[False]))
            acc = float(np.mean(preds[True] == yte))
            row = {"dtype": dtype, "m": m, "native": times[True], "halves": times[False]}
            row.update(ratio=times[False] / times[True], agree=agree, acc=acc)
            rows.append(row)
            print(
                f"letter nystrom-pcg m={m} {dtype}: native solves {times[True]:.2f} s, "
                f"BLAS by halves {times[False]:.2f} s, ratio {row['ratio']:.2f}x "
                f"(accuracy {acc:.4f}, predictions equal on {100 * agree:.2f}%)",
                flush=True,
            )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", help="default 2000,...,20000 (--one-thread: 256,...,2000)")
    p.add_argument("--ks", help="default 1,4,10,26,64 (--one-thread: 1,2,4,6,10)")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-fit", action="store_true", help="skip section 2 (the fits)")
    p.add_argument("--quick", action="store_true", help="CI smoke: n = 1000, 2000; no fits")
    p.add_argument(
        "--one-thread",
        action="store_true",
        help="section 1 on one thread (a CG loop's context), small sizes; no fits",
    )
    args = p.parse_args(argv)
    if args.one_thread:
        args.sizes = args.sizes or "256,512,1000,1500,2000"
        args.ks = args.ks or "1,2,4,6,10"
        args.no_fit = True
    args.sizes = args.sizes or "2000,4000,8000,12000,20000"
    args.ks = args.ks or "1,4,10,26,64"
    if args.quick:
        args.sizes, args.ks, args.repeat, args.no_fit = "1000,2000", "1,26", 1, True
    sizes = [int(s) for s in args.sizes.split(",")]
    ks = [int(s) for s in args.ks.split(",")]
    dtypes = args.dtypes.split(",")
    # small_blas(0): one BLAS thread and one native thread, as a CG loop's small algebra.
    with _threads.small_blas(0) if args.one_thread else contextlib.nullcontext():
        gemm = {d: max(bench_cholesky.gemm_rate(d, 4000) for _ in range(2)) for d in dtypes}
        where = "one thread" if args.one_thread else "all threads"
        print(
            f"numpy GEMM (n = 4000, {where}): "
            + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in gemm.items())
        )
        rows = solve_rows(sizes, ks, dtypes, args.repeat, gemm)
    bad = [r for r in rows if not r["err"] <= (1e-10 if r["dtype"] == "float64" else 1e-3)]
    if not args.no_fit:
        fit_rows(2)
    if bad:
        print(f"FAILED: {len(bad)} solves differ from scipy's beyond rounding")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

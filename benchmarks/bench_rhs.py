#!/usr/bin/env python
"""Many right-hand sides: how gramfree's fused operators scale with k, the number of columns
of V, against the machine's GEMM rate measured in the same run.

Classification multiplies by one column per class, so ``K @ V`` with k = 10 or 26 is the
common case. A fused operator computes each kernel value once and multiplies it into all k
columns; past k = 1 every extra column is pure multiply-add, so the figure of merit is

    multiply rate = 2 n m (k - 1) / (t_k - t_1)

as a fraction of numpy's GEMM rate (same dtype, same process, measured before and after the
runs, the higher kept), and the time ratio t_k / t_1. The anchor beside each row is numpy
multiplying an already formed dense K by V (``K @ V``, the kernel's cost not counted), i.e.
the GEMM a stored-Gram method pays for the same product.

Operators: ``K @ V`` (matvec), ``K.T @ U`` (rmatvec) and the one-pass normal operator
``K.T (K V)`` (normal). Run ``python benchmarks/bench_rhs.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cholesky

CASES = [(15000, 5000, 16), (4000, 2000, 784)]
KS = [1, 4, 10, 26, 64]
OPS = ["matvec", "rmatvec", "normal"]
QUICK_DIVISOR = 10


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up
    return bench_cholesky.best_time(fn, repeat)


def gemm_rate(dtype, size: int, repeat: int) -> float:
    """numpy's square GEMM rate in FLOP/s (bench_cholesky's measurement)."""
    return bench_cholesky.gemm_rate(np.dtype(dtype).name, size, repeat) * 1e9


def run_op(op, K, V, U):
    if op == "matvec":
        return K @ V
    if op == "rmatvec":
        return K.T @ U
    return K.normal_matvec(V)


def op_flops(op, n, m, k) -> float:
    """Multiply-add flops of the products by V (the normal operator does two)."""
    return (4.0 if op == "normal" else 2.0) * n * m * k


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"n and m divided by {QUICK_DIVISOR}")
    p.add_argument(
        "--cases",
        default=",".join("x".join(map(str, c)) for c in CASES),
        help="comma list of NxMxD",
    )
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--ks", default=",".join(map(str, KS)))
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    import gramfree as gf

    cases = [tuple(int(x) for x in c.split("x")) for c in args.cases.split(",")]
    ks = sorted({1, *(int(k) for k in args.ks.split(","))})
    ops = args.ops.split(",")
    dtypes = [np.dtype(s) for s in args.dtypes.split(",")]
    print(f"gramfree {gf.__version__}: {gf.config()}")
    gemm = {dt: gemm_rate(dt, 1000 if args.quick else 3000, args.repeat) for dt in dtypes}
    for dt in dtypes:
        print(f"GEMM rate {dt.name}: {gemm[dt] / 1e9:.1f} GFLOP/s (numpy, before the runs)")

    rows = []
    for n0, m0, d in cases:
        n, m = (n0 // QUICK_DIVISOR, m0 // QUICK_DIVISOR) if args.quick else (n0, m0)
        rng = np.random.default_rng([n, m, d])
        for dt in dtypes:
            X = rng.standard_normal((n, d)).astype(dt)
            Z = rng.standard_normal((m, d)).astype(dt)
            K = gf.KernelOperator(X, Z, "rbf", gamma=1.0 / d)
            Kd = K.to_dense()  # the anchor's stored Gram (not timed)
            for op in ops:
                t1 = None
                for k in ks:
                    V = rng.standard_normal((m, k)).astype(dt)
                    U = rng.standard_normal((n, k)).astype(dt)
                    t = best_time(lambda op=op, K=K, V=V, U=U: run_op(op, K, V, U), args.repeat)
                    if op == "matvec":
                        anchor = lambda Kd=Kd, V=V: Kd @ V
                    elif op == "rmatvec":
                        anchor = lambda Kd=Kd, U=U: Kd.T @ U
                    else:
                        anchor = lambda Kd=Kd, V=V: Kd.T @ (Kd @ V)
                    t_np = best_time(anchor, args.repeat)
                    t1 = t if k == 1 else t1
                    extra = op_flops(op, n, m, k - 1) / (t - t1) if k > 1 and t > t1 else None
                    rows.append((n, m, d, dt.name, op, k, t, t / t1, extra, t_np))
                    print(
                        f"n={n} m={m} d={d} {dt.name} {op:<7} k={k:<3} {t * 1e3:8.1f} ms  "
                        f"t_k/t_1 {t / t1:5.2f}  numpy stored-K {t_np * 1e3:8.1f} ms",
                        flush=True,
                    )
            del Kd

    for dt in dtypes:  # again, after the runs; keep the higher
        gemm[dt] = max(gemm[dt], gemm_rate(dt, 1000 if args.quick else 3000, args.repeat))
        print(f"GEMM rate {dt.name}: {gemm[dt] / 1e9:.1f} GFLOP/s (higher of before/after)")

    print(
        "\n| n | m | d | dtype | operator | k | time (ms) | t_k / t_1 | multiply rate / GEMM "
        "| numpy stored-K (ms) |"
    )
    print("|---:|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for n, m, d, dt, op, k, t, ratio, extra, t_np in rows:
        # Where the extra columns cost under a tenth of the k = 1 time (many features: the
        # kernel values dominate) their rate is within the timing noise: not reported.
        if extra is None:
            frac = ""
        elif ratio < 1.1:
            frac = "(below noise)"
        else:
            frac = f"{extra / gemm[np.dtype(dt)]:.0%}"
        print(
            f"| {n} | {m} | {d} | {dt} | {op} | {k} | {t * 1e3:.1f} | {ratio:.2f} | {frac} "
            f"| {t_np * 1e3:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

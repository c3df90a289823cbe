#!/usr/bin/env python
"""Soak: many small fit / predict / decompose calls in one process, and the resident memory
(VmRSS) they leave behind. A leak in the native layer (a buffer not freed, a reference kept
by the bindings) shows as RSS that grows with the number of calls; a flat line is the pass.

Rounds cycle through a KernelRegressor fit (direct solver), a KernelClassifier fit
(nystrom-pcg), their predictions, a kernel block, and a path-kernel model's fit,
decomposition and explanation, on small real data (digits). RSS is read after a warm-up
(the allocator's pools and the thread pools are then at their steady size) and every
``--every`` calls; the figure is the growth from the warm-up reading to the end, per 1000
calls.

    python benchmarks/bench_soak.py              # 10^4 calls
    python benchmarks/bench_soak.py --quick      # 1000 calls (CI smoke run)
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from sklearn.datasets import load_digits

from gramfree import KernelClassifier, KernelOperator, KernelRegressor, PathKernelRegressor
from gramfree.kernels import Gaussian


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def make_calls(seed: int = 0):
    """The list of zero-argument calls one round makes, each on its own slice of digits."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    Xa, ya = X[idx[:200]], y[idx[:200]]
    Xb = np.ascontiguousarray(X[idx[200:260]])
    path = PathKernelRegressor((6,), learning_rate=0.05, n_steps=30, random_state=0, n_jobs=1).fit(
        Xa[:40, :8], ya[:40].astype(float)
    )
    reg = KernelRegressor(gamma=0.05, alpha=0.1, solver="direct")
    clf = KernelClassifier(
        gamma=0.05, alpha=0.1, solver="nystrom-pcg", n_centers=50, random_state=0
    )
    return [
        lambda: reg.fit(Xa, ya.astype(float)),
        lambda: reg.predict(Xb),
        lambda: clf.fit(Xa, ya),
        lambda: clf.predict(Xb),
        lambda: KernelOperator(Xb, Xa, Gaussian(0.05)).to_dense(),
        lambda: path.fit(Xa[:40, :8], ya[:40].astype(float)),
        lambda: path.decompose(Xb[:5, :8]),
        lambda: path.explain(Xb[:3, :8], top_k=3),
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--quick", action="store_true", help="1000 calls, readings every 200")
    args = ap.parse_args(argv)
    if args.quick:
        args.calls, args.every, args.warmup = 1000, 200, 200
    calls = make_calls()
    for i in range(args.warmup):
        calls[i % len(calls)]()
    gc.collect()
    base = rss_mib()
    start = time.perf_counter()
    print(f"after {args.warmup} warm-up calls: VmRSS {base:.1f} MiB")
    readings = []
    for i in range(1, args.calls + 1):
        calls[i % len(calls)]()
        if i % args.every == 0:
            gc.collect()
            readings.append(rss_mib())
            print(
                f"{i:6d} calls: VmRSS {readings[-1]:.1f} MiB "
                f"({readings[-1] - base:+.1f}), {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    # Growth per 1000 calls from the second half of the readings (the first can still
    # include pools settling).
    half = readings[len(readings) // 2 :]
    span = (len(readings) - len(readings) // 2 - 1) * args.every
    slope = (half[-1] - half[0]) / span * 1000 if span > 0 else float("nan")
    print(
        f"RSS growth: {readings[-1] - base:+.1f} MiB over {args.calls} calls; "
        f"{slope:+.2f} MiB per 1000 calls over the second half"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

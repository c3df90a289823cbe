#!/usr/bin/env python
"""Measure the rates behind ``solver="auto"``'s cost model and compare them with the
constants it uses (``gramfree.solvers.auto.RATES``), and check its estimates of whole
fits against measured fit times, side by side in one run.

Rates, in the model's own accounting (flops per kernel entry ``2 d + 2 k + 8``):

* ``engine_float32`` / ``engine_float64``: ``KernelOperator(X, Z) @ V`` with n = m = 8000
  (``--quick``: 3000), d = 16, k = 1 and 26 (the rate is the mean of the two);
* ``dense``: ``gramfree.linalg.cholesky`` of an n x n SPD matrix, n = 6000 (``--quick``:
  2000), counted as n^3 / 3 flops;
* ``syrk``: the one-pass Nystrom solver's Gram update on its own block shape
  (``nystrom_direct.BLOCK_BYTES`` of float64 rows x M, M = 1000; ``--quick``: M = 500),
  counted as rows * M^2 flops.

Then fits of ``KernelRegressor`` with ``solver="direct"``, ``"nystrom-pcg"`` and
``"nystrom-direct"`` (M = 2000) and ``"eigenpro"`` on synthetic data (n = 12000, d = 16; ``--quick``: 3000), each next to the
model's estimate. The ratio measured / estimated is what matters: auto only compares
estimates with each other, so a constant factor common to all of them changes no choice.

    python benchmarks/bench_costmodel.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from gramfree import KernelOperator, KernelRegressor
from gramfree.linalg import cholesky
from gramfree.solvers import nystrom_direct
from gramfree.solvers.auto import RATES, CostModel, _entry_flops


def best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_op, n_chol, n_fit = (3000, 2000, 3000) if args.quick else (8000, 6000, 12000)
    rng = np.random.default_rng(0)
    d = 16
    print(f"{'rate':<16} {'measured':>10} {'model':>10} {'measured/model':>15}")
    for dtype in (np.float32, np.float64):
        X = rng.normal(size=(n_op, d)).astype(dtype)
        op = KernelOperator(X, kernel="rbf", gamma=1.0 / d)
        rates = []
        for k in (1, 26):
            V = rng.normal(size=(n_op, k)).astype(dtype)
            op @ V  # warm-up
            rates.append(n_op * n_op * _entry_flops(d, k) / best_of(lambda: op @ V))
        name = f"engine_{np.dtype(dtype).name}"
        rate = float(np.mean(rates))
        print(f"{name:<16} {rate:>10.3g} {RATES[name]:>10.3g} {rate / RATES[name]:>15.2f}")
    A = rng.normal(size=(n_chol, n_chol))
    A = A @ A.T / n_chol + np.eye(n_chol)
    rate = n_chol**3 / 3 / best_of(lambda: cholesky(A), repeat=2)
    print(f"{'dense':<16} {rate:>10.3g} {RATES['dense']:>10.3g} {rate / RATES['dense']:>15.2f}")
    m_syrk = 500 if args.quick else 1000
    rows = min(8192 if args.quick else 10**6, int(nystrom_direct.BLOCK_BYTES // (8 * m_syrk)))
    B = rng.normal(size=(rows, m_syrk))
    G = np.zeros((m_syrk, m_syrk), order="F")
    rate = rows * m_syrk**2 / best_of(lambda: nystrom_direct._add_gram(G, B))
    print(f"{'syrk':<16} {rate:>10.3g} {RATES['syrk']:>10.3g} {rate / RATES['syrk']:>15.2f}")
    B = None  # the block's memory, before the next case

    X = rng.normal(size=(n_fit, d))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n_fit)
    model = CostModel(n_fit, d, 1, np.dtype(np.float64))
    print(f"\n{'fit (n=' + str(n_fit) + ')':<22} {'measured s':>10} {'model s':>10} {'ratio':>8}")
    cases = [
        ("direct", dict(solver="direct"), model.direct()[0]),
        ("nystrom-pcg M=2000", dict(solver="nystrom-pcg", n_centers=2000), None),
        (
            "nystrom-direct M=2000",
            dict(solver="nystrom-direct", n_centers=2000),
            model.nystrom_direct(2000)[0],
        ),
        ("eigenpro", dict(solver="eigenpro"), None),
    ]
    for name, params, estimate in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            fitted = KernelRegressor(gamma=1.0 / d, alpha=1e-3, random_state=0, **params).fit(X, y)
            seconds = time.perf_counter() - start
        if name.startswith("nystrom-pcg"):
            estimate = model.nystrom(2000, iterations=fitted.n_iter_)[0]
        elif name == "eigenpro":
            estimate = model.eigenpro(epochs=fitted.n_iter_)[0]
        print(f"{name:<22} {seconds:>10.2f} {estimate:>10.2f} {seconds / estimate:>8.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Measure the rates behind ``solver="auto"``'s cost model beside the built-in ones, and
check its estimates of whole fits, made with the rates just measured, against the fits'
measured times, in one run.

The rates are measured by ``gramfree.solvers.rates.measure`` (what ``python -m gramfree
calibrate`` saves; its docstring lists the sizes), in the model's own accounting: the
fused operator's flops (``2 d + 2 k + 8`` per kernel entry) in float32 and float64, float64
Cholesky (``n^3 / 3``) and the one-pass Nystrom Gram update (``rows M^2``).

Then fits of ``KernelRegressor`` with ``solver="direct"``, ``"nystrom-pcg"`` and
``"nystrom-direct"`` (M = 2000) and ``"pcg"`` (all points) on synthetic data (n = 12000, d = 16;
``--quick``: 3000), each next to the model's estimate. The ratio measured / estimated is
what is left of the model's error once the rates are this machine's; auto only compares
estimates with each other, so a factor common to all of them changes no choice.

    python benchmarks/bench_costmodel.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from gramfree import KernelRegressor
from gramfree.solvers import rates
from gramfree.solvers.auto import CostModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_fit = 3000 if args.quick else 12000
    rng = np.random.default_rng(0)
    d = 16
    measured = rates.measure(quick=args.quick)  # what `python -m gramfree calibrate` saves
    source = rates.current()[1]
    print(f"rates used by fits here: {source}")
    print(f"{'rate':<16} {'measured':>10} {'built-in':>10} {'measured/built-in':>18}")
    for name, rate in measured.items():
        default = rates.DEFAULT_RATES[name]
        print(f"{name:<16} {rate:>10.3g} {default:>10.3g} {rate / default:>18.2f}")

    X = rng.normal(size=(n_fit, d))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n_fit)
    model = CostModel(n_fit, d, 1, np.dtype(np.float64), measured)
    print(f"\n{'fit (n=' + str(n_fit) + ')':<22} {'measured s':>10} {'model s':>10} {'ratio':>8}")
    cases = [
        ("direct", dict(solver="direct"), model.direct()[0]),
        ("nystrom-pcg M=2000", dict(solver="nystrom-pcg", n_centers=2000), None),
        (
            "nystrom-direct M=2000",
            dict(solver="nystrom-direct", n_centers=2000),
            model.nystrom_direct(2000)[0],
        ),
        ("pcg", dict(solver="pcg"), None),
    ]
    for name, params, estimate in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            fitted = KernelRegressor(gamma=1.0 / d, alpha=1e-3, random_state=0, **params).fit(X, y)
            seconds = time.perf_counter() - start
        if name.startswith("nystrom-pcg"):
            estimate = model.nystrom(2000, iterations=fitted.n_iter_)[0]
        elif name == "pcg":
            estimate = model.pcg(iterations=fitted.n_iter_)[0]
        print(f"{name:<22} {seconds:>10.2f} {estimate:>10.2f} {seconds / estimate:>8.2f}")


if __name__ == "__main__":
    main()

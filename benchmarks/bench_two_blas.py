"""numpy's own BLAS on one thread during a fit (``gramfree._threads.blas_threads``) against
leaving it on every thread, in one process run, on the real-data suite.

numpy's and scipy's wheels each bundle an OpenBLAS with its own worker threads, which spin
for about a tenth of a second after each multi-threaded call. A solver that alternates
numpy's ``@`` with scipy's BLAS or with the native operators' OpenMP threads leaves one
pool's workers spinning on the cores the other needs. "on" is gramfree's default (numpy's
pool on one thread for the fit; the solvers' large products go through scipy's, on every
thread); "off" sets ``LIMIT_NUMPY_BLAS = False``. The two alternate, best of ``--repeats``;
the ratio is off / on (above 1: the limit helps). Which libraries are loaded is printed
first: where numpy and scipy share one BLAS (conda, distribution packages) there is
nothing to limit and the ratio is 1 by construction.

    python benchmarks/bench_two_blas.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import realdata  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

import gramfree._threads as threads  # noqa: E402
from gramfree import KernelClassifier  # noqa: E402


def _cases(quick: bool):
    """(name, set, estimator parameters): every solver family whose loop mixes libraries."""
    cases = []
    for name, params in (
        ("mnist5k", dict(loss="logistic", alpha=0.01, n_centers=1000, solver="nystrom-pcg")),
        ("satellite", dict(solver="eigenpro", max_iter=30)),
        ("satellite", dict(solver="nystrom-pcg", n_centers=1000)),
        ("satellite", dict(solver="direct")),
    ):
        X, _, y, _, _ = realdata.load(name, quick=quick)
        config = realdata.CONFIG[name]
        full = dict(gamma=config["gamma"], alpha=config["alpha"], random_state=0)
        full.update(params)
        if quick and "n_centers" in full:
            full["n_centers"] = min(full["n_centers"], len(y) // 2)
        label = f"{full.get('loss', 'square')} {full['solver']} {name} {len(y)}"
        cases.append((label, X, y, full))
    return cases


def _fit_seconds(X, y, params) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        KernelClassifier(**params).fit(X, y)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: subsets, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    np.linalg.cholesky(np.eye(2))  # numpy's BLAS loaded (scipy's is, by gramfree)
    for lib in threadpool_info():
        if lib["user_api"] == "blas":
            print(f"BLAS: {lib['filepath']} ({lib['num_threads']} threads)")
    own = threads.numpy_own_blas()
    print(f"numpy's own, limited during fits: {own or 'none (one library shared)'}\n")
    print(f"{'case':44s} {'limit on':>9s} {'limit off':>10s} {'off / on':>9s}")
    default = threads.LIMIT_NUMPY_BLAS
    try:
        for label, X, y, params in _cases(args.quick):
            best = {"on": np.inf, "off": np.inf}
            for _ in range(repeats):
                for key, flag in (("on", True), ("off", False)):
                    threads.LIMIT_NUMPY_BLAS = flag
                    best[key] = min(best[key], _fit_seconds(X, y, params))
            print(
                f"{label:44s} {best['on']:8.3f}s {best['off']:9.3f}s "
                f"{best['off'] / best['on']:8.2f}x",
                flush=True,
            )
    finally:
        threads.LIMIT_NUMPY_BLAS = default
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One BLAS thread for the solvers' small in-loop algebra (``gramfree._threads``) against
OpenBLAS's default threads, on a quiet machine and beside a busy process (one core
spinning in numpy, as another user's job would), in one process run.

Cases: a Nystrom-PCG fit on letter (5000 rows, 500 centres, 26 classes; real data from
``benchmarks/realdata.py``) and a kernel logistic regression on iris (every point a
centre). "off" disables the limit (``SMALL_BLAS_FLOPS = -1``); the ratio is off / on.

    python benchmarks/bench_blas_threads.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import realdata  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import gramfree._threads as threads  # noqa: E402
from gramfree import KernelClassifier  # noqa: E402


def _spin(stop) -> None:
    """A busy core: small matrix products until told to stop."""
    a = np.random.default_rng(0).normal(size=(200, 200))
    while not stop.is_set():
        a = np.tanh(a @ a)


def _cases(quick: bool):
    Xl, _, yl, _, _ = realdata.load("letter", quick=quick)
    n = min(5000, len(yl))
    letter = (
        Xl[:n],
        yl[:n],
        dict(
            gamma=realdata.CONFIG["letter"]["gamma"],
            alpha=1e-3,
            solver="nystrom-pcg",
            n_centers=min(500, n),
            random_state=0,
            max_iter=30,
        ),
    )
    Xi, yi = load_iris(return_X_y=True)
    iris = (StandardScaler().fit_transform(Xi), yi, dict(gamma=0.1, alpha=0.1, loss="logistic"))
    return {f"nystrom-pcg letter {n}x500": letter, "logistic iris 150": iris}


def _best(X, y, params, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            KernelClassifier(**params).fit(X, y)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    default = threads.SMALL_BLAS_FLOPS
    print(f"{'case':28s} {'machine':6s} {'limit on':>9s} {'limit off':>10s} {'off / on':>9s}")
    for load in (False, True):
        stop, worker = mp.Event(), None
        if load:
            worker = mp.Process(target=_spin, args=(stop,), daemon=True)
            worker.start()
            time.sleep(0.5)
        try:
            for name, (X, y, params) in _cases(args.quick).items():
                times = {}
                for label, flops in (("on", default), ("off", -1.0)):
                    threads.SMALL_BLAS_FLOPS = flops
                    times[label] = _best(X, y, params, args.repeats)
                threads.SMALL_BLAS_FLOPS = default
                print(
                    f"{name:28s} {'busy' if load else 'quiet':6s} {times['on']:8.3f}s "
                    f"{times['off']:9.3f}s {times['off'] / times['on']:8.2f}x"
                )
        finally:
            threads.SMALL_BLAS_FLOPS = default
            if worker is not None:
                stop.set()
                worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""When the direct solver's float32 factorization pays, on real data.

``solver="direct"`` factors ``A = S K S + alpha I`` in float32 (half the float64 time) and
refines the solution against the float64 ``A`` by conjugate gradients preconditioned by
that factor (``gramfree.solvers.direct._refined_float32``). By default it tries float32
only where Gershgorin's bound on the float32 error, ``eps32 * (A's largest row sum) /
alpha``, is at most ``direct.MAX_BOUND``: beyond it the float32 factorization may fail or
the steps stall, and a failed try costs its factorization on top of the float64 one.

For real sets (``benchmarks/realdata.py``; a random subset of ``--n`` rows, one target per
class), their tuned rbf kernel and a narrow one (10x gamma), and alphas that put the bound
at each of ``--bounds`` (plus the set's tuned alpha), each row times, in one process:

* ``float64``: ``solve_direct(mixed_precision=False)``, the better of a run before the
  others and one after;
* ``float32 + CG``: ``solve_direct(mixed_precision=True)`` (up to ``MAX_REFINE`` steps; a
  failed try falls back to float64 inside that time), its steps or why it fell back;
* ``refinement``: plain iterative refinement (LAPACK's ``dsposv``: ``z += A32^-1 (b - A
  z)``) on the same float32 factor, written here as the reference, its steps to the same
  tolerance (``-`` where it diverges or needs more than ``MAX_REFINE``);
* ``default``: ``solve_direct()`` as the estimators call it (float32 only where
  :func:`~gramfree.solvers.direct.refinement_budget` allows two steps or more, and within
  ``MAX_BOUND`` where it allows ``WIDE_BOUND_STEPS``, else within ``NARROW_BOUND``; a try
  that needs more steps than the budget falls back), what it ended with, and float64's
  time over its time.

    python benchmarks/bench_direct_precision.py                   # n = 10000, 5 sets
    python benchmarks/bench_direct_precision.py --quick           # CI smoke run
    python benchmarks/bench_direct_precision.py --datasets letter --n 15000
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realdata  # noqa: E402

from gramfree.kernels import RBF  # noqa: E402
from gramfree.linalg import cho_solve, cholesky_upper_in_place  # noqa: E402
from gramfree.solvers import direct  # noqa: E402
from gramfree.solvers._common import Problem  # noqa: E402


def _targets(y: np.ndarray, task: str) -> np.ndarray:
    if task == "classification":
        return (y[:, None] == np.unique(y)[None, :]).astype(np.float64)
    return np.asarray(y, dtype=np.float64)[:, None]


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def plain_refinement_steps(problem: Problem) -> int | None:
    """Steps of ``z += A32^-1 (b - A z)`` until the solver's old rule accepts them (the
    correction times its rate of decrease below REFINE_TOL of z, max norm, per column), on
    the unweighted problem's streamed float32 matrix; None past MAX_REFINE steps, or where
    float32 cannot factor A."""
    n = problem.X.shape[0]
    A32, _ = direct._matrix32(problem, np.ones(n))
    try:
        L32 = cholesky_upper_in_place(A32)
    except np.linalg.LinAlgError:
        return None
    op = problem.operator(problem.X)
    b = problem.Y
    z = cho_solve(L32, b)
    previous = 1.0
    for step in range(1, direct.MAX_REFINE + 1):
        dz = cho_solve(L32, b - (op @ z + problem.alpha * z))
        z += dz
        size = float(np.max(np.abs(dz).max(axis=0) / (np.abs(z).max(axis=0) + 1e-300)))
        if not math.isfinite(size):
            return None
        # the solver's acceptance before 2026-12-08 (the error left estimated from the
        # rate), without its early exits
        if size * min(size / previous, 1.0) <= direct.REFINE_TOL:
            return step
        previous = size
    return None


def run_case(name, X, Y, gamma, alpha, label, plain):
    p = Problem(X=X, Y=Y, kernel=RBF(gamma=gamma), alpha=alpha, sample_weight=None, n_jobs=None)
    n = X.shape[0]
    top = direct._matrix32(p, np.ones(n))[1]
    bound = top * direct._EPS32 / alpha
    # float64 first and last, its better time kept: the same float64 fit timed first and
    # fourth differed by up to 15% (an earlier version of this script)
    f64, t64 = _timed(lambda: direct.solve_direct(p, mixed_precision=False))
    chosen, t_default = _timed(lambda: direct.solve_direct(p))
    f32, t32 = _timed(lambda: direct.solve_direct(p, mixed_precision=True))
    taken = f32.info["precision"] == "float32+refinement"
    diff = float(np.abs(f32.coef - f64.coef).max() / np.abs(f64.coef).max())
    if taken:
        cg = f"{f32.info['refinement_steps']} steps, {diff:.1e}"
    else:
        cg = f"fell back ({f32.info['fallback'][:40]})"
    steps = plain_refinement_steps(p) if plain else None
    t64 = min(t64, _timed(lambda: direct.solve_direct(p, mixed_precision=False))[1])
    if chosen.info["precision"] == "float32+refinement":
        default = f"float32, {chosen.info['refinement_steps']} steps"
    elif "refinement_steps" in chosen.info:
        default = f"float64 after {chosen.info['refinement_steps']} float32 steps"
    else:
        default = "float64"
    print(
        f"| {name} | {label} | {alpha / n:.2g} | {bound:.2g} | {t64:.2f} s | {t32:.2f} s: {cg} "
        f"| {'-' if steps is None else steps if plain else 'not run'} "
        f"| {default} | {t64 / t_default:.2f}x |",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="letter,randhie,cps1988,shuttle,diamonds")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--bounds", default="0.5,0.95,1.8,4")
    ap.add_argument("--no-plain", action="store_true", help="skip plain refinement's steps")
    ap.add_argument("--quick", action="store_true", help="CI smoke run: 1500 rows, 2 sets")
    args = ap.parse_args()
    sets = args.datasets.split(",")
    n_rows, bounds = args.n, [float(b) for b in args.bounds.split(",")]
    if args.quick:
        sets, n_rows, bounds = ["satellite", "cps1988"], 2000, [0.5, 4.0]
    print(
        f"MAX_BOUND = {direct.MAX_BOUND} from {direct.WIDE_BOUND_STEPS} steps allowed, "
        f"else {direct.NARROW_BOUND}; MAX_REFINE = {direct.MAX_REFINE}; n = {n_rows}"
    )
    print(
        "| set | kernel | alpha / n | bound | float64 | float32 + CG | refinement steps "
        "| default | float64 / default |"
    )
    print("|---|---|---:|---:|---:|---|---:|---|---:|")
    for name in sets:
        X, _, y, _, task = realdata.load(name)
        rng = np.random.default_rng(0)
        rows = rng.choice(len(X), min(n_rows, len(X)), replace=False)
        X = np.ascontiguousarray(X[rows], dtype=np.float64)
        Y = _targets(y[rows], task)
        gamma, alpha_row = realdata.TUNED[name][:2]
        for label, g in (("tuned", gamma), ("narrow", 10 * gamma)):
            p0 = Problem(X=X, Y=Y, kernel=RBF(gamma=g), alpha=1.0, sample_weight=None, n_jobs=None)
            top = direct._matrix32(p0, np.ones(len(X)))[1] - 1.0
            alphas = [(alpha_row * len(X), f"{label} (its alpha)")] if label == "tuned" else []
            # top without alpha: the bound counts alpha in the row sum, eps32 (top + alpha) / alpha
            alphas += [(top * direct._EPS32 / (b - direct._EPS32), label) for b in bounds]
            for alpha, what in alphas:
                run_case(name, X, Y, g, alpha, what, not args.no_plain)


if __name__ == "__main__":
    main()

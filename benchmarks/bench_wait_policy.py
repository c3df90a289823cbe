"""What OpenMP's passive wait policy buys: the same workloads in fresh processes with
libgomp's default policy (idle workers spin for a while after each parallel region), with
``OMP_WAIT_POLICY=PASSIVE`` set by the user, and with the variable unset, where gramfree's
import applies PASSIVE to the loading of its own native module only (gramfree/__init__.py)
and leaves the process environment as it was: the last two should agree.

The workloads alternate native operator calls with BLAS calls, as the solvers do (a CG
iteration is an operator pass and a few triangular solves): spinning OpenMP workers then
compete with BLAS's threads for the cores. Prints each workload's time under both
policies (best of ``--repeats``, the two interleaved) and their ratio.

    python benchmarks/bench_wait_policy.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

WORKLOADS = {
    # Many short operator calls, each followed by a dense solve (BLAS threads).
    "operator+blas loop": """
        import numpy as np, time
        from gramfree import KernelOperator
        rng = np.random.default_rng(0)
        X, C = rng.normal(size=(4000, 16)), rng.normal(size=(300, 16))
        A = rng.normal(size=(300, 300)); A = A @ A.T + 300 * np.eye(300)
        op = KernelOperator(X, C, "rbf", gamma=0.1)
        v = rng.normal(size=(300, 4))
        start = time.perf_counter()
        for _ in range(ROUNDS):
            u = op.normal_matvec(v)
            v = np.linalg.solve(A, u) / np.abs(u).max()
        seconds = time.perf_counter() - start
    """,
    # A Nystrom-PCG classifier fit on real data (digits), as the tests run it.
    "nystrom-pcg fit (digits)": """
        import time, warnings
        from sklearn.datasets import load_digits
        from sklearn.preprocessing import StandardScaler
        from gramfree import KernelClassifier
        X, y = load_digits(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for _ in range(ROUNDS // 20):
            KernelClassifier(gamma=0.02, alpha=1e-3, solver="nystrom-pcg", n_centers=800,
                             random_state=0).fit(X, y)
        seconds = time.perf_counter() - start
    """,
}


def run(code: str, rounds: int, policy: str | None) -> float:
    """``policy``: "default" (an empty value: libgomp's default, and gramfree's import
    keeps a value the user set), "PASSIVE" set by the user, or None: the variable absent,
    so gramfree's import applies PASSIVE to its own loading only (what users get)."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = "" if policy == "default" else policy
    script = f"ROUNDS = {rounds}\n" + textwrap.dedent(code) + "\nprint(seconds)\n"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rounds = 20 if args.quick else 200
    print(f"cores: {os.cpu_count()}, rounds: {rounds}, best of {args.repeats}")
    print(
        f"{'workload':26s} {'default (s)':>11s} {'PASSIVE (s)':>11s} {'import (s)':>10s} "
        f"{'default/PASSIVE':>15s} {'default/import':>14s}"
    )
    results = {}
    for name, code in WORKLOADS.items():
        times = {"default": [], "PASSIVE": [], "import": []}
        for _ in range(args.repeats):  # interleaved: drifts in the machine's load hit all
            times["default"].append(run(code, rounds, "default"))
            times["PASSIVE"].append(run(code, rounds, "PASSIVE"))
            times["import"].append(run(code, rounds, None))
        d, p, i = (min(times[k]) for k in ("default", "PASSIVE", "import"))
        results[name] = {
            "default_s": d,
            "passive_s": p,
            "import_s": i,
            "default_over_passive": d / p,
            "default_over_import": d / i,
        }
        print(f"{name:26s} {d:11.3f} {p:11.3f} {i:10.3f} {d / p:14.2f}x {d / i:13.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

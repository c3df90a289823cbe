#!/usr/bin/env python
"""What wide sample weights cost the one-pass Nystrom solver, beside scikit-learn.

``KernelRegressor(solver="nystrom-direct")`` picks its pass from the weights' span
(largest positive over smallest) and K_MM's condition number:

* unweighted, or a span whose product with cond(K_MM) the Gram resolves: the Gram
  ``K_nM^T W K_nM`` summed in one pass, then whitened (n M^2 flops);
* where span x eps x cond(K_MM) passes ``nystrom_direct.GRAM_RESOLUTION``: the whitened
  features' Gram (each block whitened before its Gram, about 2 n M^2);
* beyond ``GRADED_SPAN`` (1e7): Householder QR of the whitened rows in order of their norms
  (about 6 n M^2 by count, plus a first pass for the norms).

Synthetic data (a cost figure, not an accuracy one; the accuracy is tested against exact
references in tests/test_nystrom_direct.py): n rows, d = 16, gamma 1/32, M centres; the
weights: none; uniform in [1, 10]; one row in a hundred at 1e5; one row in a hundred at
1e9. Each fit beside scikit-learn's ``Nystroem`` on the same centres + ``Ridge`` with
the same weights, in the same process, best of two, interleaved. Printed: each fit's
time, its ratio to the unweighted fit, the pass it took, and the anchor's time over ours.

    python benchmarks/bench_weight_span.py           # n = 40000, M = 1000
    python benchmarks/bench_weight_span.py --quick   # CI smoke run (n = 4000, M = 200)
    python benchmarks/bench_weight_span.py --dask    # also each fit on dask arrays

With ``--dask`` each fit also runs on dask arrays of the same data and the in-memory
fit's centres (four row chunks,
dask's synchronous scheduler: the passes' cost, not the scheduling's), and the table adds
its time and its ratio to the in-memory fit: where the weights span beyond 1e7 the dask
fit takes the graded QR too (``gramfree._dask_graded``: a pass for the bounds'
histograms, the tail's Gram on the workers, the heavy rows gathered).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import Ridge

from gramfree import KernelRegressor


def best_of(fn, repeats: int = 2) -> tuple[object, float]:
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def weights(kind: str, n: int, rng) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "uniform 1-10":
        return rng.uniform(1.0, 10.0, n)
    w = np.ones(n)
    w[rng.choice(n, n // 100, replace=False)] = {"1% at 1e5": 1e5, "1% at 1e9": 1e9}[kind]
    return w


def _pass_of(model) -> str:
    info = model.solver_info_
    return info.get("pass") or info.get("fallback") or "Gram"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 4000, M = 200")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--m", type=int, default=None)
    parser.add_argument("--dask", action="store_true", help="also each fit on dask arrays")
    args = parser.parse_args()
    n = args.n or (4000 if args.quick else 40000)
    m = args.m or (200 if args.quick else 1000)
    d, gamma, alpha = 16, 1.0 / 32, 1e-3
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0] + X[:, 1]) + 0.5 * np.cos(X[:, 2]) + 0.1 * rng.normal(size=n)

    def ours(w):
        model = KernelRegressor(
            gamma=gamma, alpha=alpha, solver="nystrom-direct", n_centers=m, random_state=0
        )
        return model.fit(X, y, sample_weight=w)

    centers = np.asarray(ours(None).centers_, dtype=np.float64)  # also a warm-up

    def on_dask(w, centers):
        import dask
        import dask.array as da

        rows = -(-n // 4)
        model = KernelRegressor(gamma=gamma, alpha=alpha, solver="nystrom-direct", centers=centers)
        with dask.config.set(scheduler="synchronous"):
            return model.fit(
                da.from_array(X, chunks=(rows, -1)),
                da.from_array(y, chunks=rows),
                sample_weight=None if w is None else da.from_array(w, chunks=rows),
            )

    def anchor(w):
        # Nystroem on the same centres (its components are all of them), then Ridge with
        # the same weights and penalty (Ridge's alpha multiplies |beta|^2 = a^T K_MM a).
        features = Nystroem(gamma=gamma, n_components=m, random_state=0).fit(centers)
        return Ridge(alpha=alpha, fit_intercept=False).fit(
            features.transform(X), y, sample_weight=w
        )

    print(f"n = {n}, d = {d}, M = {m}, gamma = {gamma:g}, alpha = {alpha:g}")
    print(
        f"{'weights':>14}  {'pass':>20}  {'ours (s)':>9}  {'/unweighted':>11}  "
        f"{'anchor (s)':>10}  {'anchor/ours':>11}"
        + (f"  {'dask pass':>20}  {'dask (s)':>9}  {'dask/memory':>11}" if args.dask else "")
    )
    base = None
    for kind in ("none", "uniform 1-10", "1% at 1e5", "1% at 1e9"):
        w = weights(kind, n, np.random.default_rng(1))
        t_ours = t_anchor = t_dask = np.inf
        model = distributed = None
        for _ in range(2):  # interleaved, best of two each
            model, t = best_of(lambda: ours(w), 1)
            t_ours = min(t_ours, t)
            t_anchor = min(t_anchor, best_of(lambda: anchor(w), 1)[1])
            if args.dask:
                # on the in-memory fit's own centres (heavy rows are drawn first: a
                # weighted fit's centres are not the unweighted one's; a review)
                distributed, t = best_of(lambda: on_dask(w, model.centers_), 1)
                t_dask = min(t_dask, t)
        how = _pass_of(model)
        base = t_ours if base is None else base
        print(
            f"{kind:>14}  {how:>20}  {t_ours:9.3f}  {t_ours / base:10.2f}x  "
            f"{t_anchor:10.3f}  {t_anchor / t_ours:10.2f}x"
            + (
                f"  {_pass_of(distributed):>20}  {t_dask:9.3f}  {t_dask / t_ours:10.2f}x"
                if distributed is not None
                else ""
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Nystrom-PCG on dask arrays through a dask.distributed LocalCluster, side by side with the
same fit in-process (gramfree._dask; the claim: the same model, the data never leaving the
workers).

Case ``same``: a synthetic regression (n x d float64, y = sin(x.w1) + 0.5 cos(x.w2) + 0.1
noise, fixed seed) fitted by ``KernelRegressor(solver="nystrom-pcg", n_centers=m)`` twice
on the same centres: in memory, and as a row-chunked dask array persisted on a
``LocalCluster(n_workers, threads_per_worker=1, processes=True)``. Printed: fit seconds,
iterations, seconds per pass, the time ratio distributed / in-process, and the largest
relative difference of the coefficients and of the predictions (the two add the same
per-row terms in a different order; CG amplifies that rounding by about cond(K_MM) / tol,
so well-conditioned settings agree to ~1e-12 and ill-conditioned ones less).
The in-process fit uses ``n_jobs=n_workers`` threads, the cluster ``n_workers`` processes
of one thread each: the same cores.

Case ``out-of-core`` (``--out-of-core``): X is a ``.npy`` file written to a temporary
directory, read by the workers through ``np.load(mmap_mode="r")`` one chunk per task, never
loaded whole; each worker's ``memory_limit`` is below the file's size. The fit completes
and each worker's peak resident memory (``VmHWM``) is printed against the limit.

Examples::

    python benchmarks/bench_dask.py --quick            # CI smoke, < 30 s
    python benchmarks/bench_dask.py                    # n = 200000, m = 2000
    python benchmarks/bench_dask.py --quick --out-of-core
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np


def make_data(n: int, d: int, seed: int = 0, start: int = 0):
    """Rows [start, start + n) of the synthetic problem (each block from its own seed, so
    that workers can build or read blocks independently and identically)."""
    rng = np.random.default_rng([seed, start])
    X = rng.normal(size=(n, d))
    return X, targets(X, seed)


def targets(X: np.ndarray, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng([seed, 10**9]).normal(size=(2, X.shape[1])) / np.sqrt(X.shape[1])
    noise = np.random.default_rng([seed, 10**9 + 1, X.shape[0]]).normal(size=X.shape[0])
    return np.sin(X @ w[0]) + 0.5 * np.cos(X @ w[1]) + 0.1 * noise


def vm_hwm_mib() -> float:
    """This process's peak resident memory (Linux VmHWM), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def case_same(args, client) -> None:
    import dask.array as da

    from gramfree import KernelRegressor

    X, y = make_data(args.n, args.d)
    client.run(_warm_up)  # the workers' first import of gramfree is not the fit's time
    params = dict(
        solver="nystrom-pcg",
        n_centers=args.centers,
        alpha=args.alpha,
        gamma=args.gamma,
        tol=args.tol,
        random_state=0,
    )
    tic = time.perf_counter()
    local = KernelRegressor(**params, n_jobs=args.workers).fit(X, y)
    t_local = time.perf_counter() - tic
    rows = -(-args.n // args.chunks)
    # The data travels to the workers once, in persist's graph (the warning says so).
    warnings.filterwarnings("ignore", message="Sending large graph")
    dX = client.persist(da.from_array(X, chunks=(rows, args.d)))
    dy = client.persist(da.from_array(y, chunks=rows))
    from distributed import wait

    wait([dX, dy])
    tic = time.perf_counter()
    dist = KernelRegressor(**params, n_jobs=1).fit(dX, dy)
    t_dist = time.perf_counter() - tic
    pred = dist.predict(dX).compute()
    info = dist.solver_info_["dask"]
    print(
        f"\ncase same: n={args.n} d={args.d} m={args.centers} chunks={info['n_chunks']} "
        f"workers={args.workers} gamma={args.gamma} alpha={args.alpha} tol={args.tol}"
    )
    print(f"{'fit':<28}{'seconds':>10}{'iters':>7}{'s/pass':>9}{'ratio':>8}")
    label = f"in-process (n_jobs={args.workers})"
    print(f"{label:<28}{t_local:>10.2f}{local.n_iter_:>7}{'':>9}{1.0:>8.2f}")
    print(
        f"{'LocalCluster (dask)':<28}{t_dist:>10.2f}{dist.n_iter_:>7}"
        f"{info['pass_seconds'] / max(info['passes'] - 1, 1):>9.3f}{t_dist / t_local:>8.2f}"
    )
    print(f"max |coef difference| / max |coef|  = {rel(dist.dual_coef_, local.dual_coef_):.2e}")
    print(f"max |pred difference| / max |pred|  = {rel(pred, local.predict(X)):.2e}")
    print(f"same centres: {np.array_equal(dist.centers_, local.centers_)}")


def _warm_up() -> None:
    import gramfree  # noqa: F401


def _read_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def _block_targets(Xb: np.ndarray) -> np.ndarray:
    return targets(Xb)


def case_out_of_core(args) -> None:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from gramfree import KernelRegressor

    n, d, rows = args.ooc_n, args.d, args.ooc_rows
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, d))
        for start in range(0, n, rows):  # written block by block: never whole in memory
            out[start : start + rows] = make_data(min(rows, n - start), d, start=start)[0]
        out.flush()
        del out
        size_mib = n * d * 8 / 2**20
        limit_mib = args.memory_limit_mib
        blocks = [
            da.from_delayed(
                dask.delayed(_read_rows)(path, a, min(a + rows, n)),
                shape=(min(a + rows, n) - a, d),
                dtype=np.float64,
            )
            for a in range(0, n, rows)
        ]
        X = da.concatenate(blocks)
        y = X.map_blocks(_block_targets, drop_axis=1, dtype=np.float64)
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
                memory_limit=f"{limit_mib}MiB",
            ) as cluster,
            Client(cluster) as client,
        ):
            before = client.run(vm_hwm_mib)
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = KernelRegressor(
                    solver="nystrom-pcg",
                    n_centers=args.ooc_centers,
                    alpha=args.alpha,
                    gamma=args.gamma,
                    max_iter=args.ooc_iter,
                    random_state=0,
                    n_jobs=1,
                ).fit(X, y)
            seconds = time.perf_counter() - tic
            peaks = client.run(vm_hwm_mib)
        print(
            f"\ncase out-of-core: X.npy {n} x {d} float64 = {size_mib:.0f} MiB, "
            f"{len(blocks)} chunks of {rows} rows, {args.workers} workers with "
            f"memory_limit {limit_mib} MiB each"
        )
        print(
            f"fit: {seconds:.1f} s, {model.n_iter_} iterations, "
            f"{model.solver_info_['dask']['passes']} passes over the file"
        )
        for (addr, peak), start in zip(sorted(peaks.items()), [before[a] for a in sorted(peaks)]):
            print(
                f"worker {addr}: peak RSS {peak:.0f} MiB (after start-up {start:.0f} MiB), "
                f"limit {limit_mib} MiB, data {size_mib:.0f} MiB"
            )
        print(f"client peak RSS {vm_hwm_mib():.0f} MiB")
        fits = all(p < limit_mib for p in peaks.values()) and size_mib > limit_mib
        print(
            f"{'PASS' if fits else 'FAIL'}: every worker stayed under its limit, "
            f"below the data's size (all workers' limits together: "
            f"{args.workers * limit_mib} MiB)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke sizes (< 30 s)")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--centers", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gamma", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=1e-3)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument(
        "--out-of-core",
        action="store_true",
        help="also fit from a .npy larger than each worker's memory limit",
    )
    parser.add_argument("--ooc-n", type=int, default=8_000_000)
    parser.add_argument("--ooc-rows", type=int, default=100_000)
    parser.add_argument("--ooc-centers", type=int, default=200)
    parser.add_argument("--ooc-iter", type=int, default=5)
    parser.add_argument("--memory-limit-mib", type=int, default=400)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.centers, args.chunks = 10_000, 300, 4
        args.ooc_n, args.ooc_rows, args.ooc_centers, args.ooc_iter = 3_000_000, 100_000, 100, 3
        args.memory_limit_mib = 350
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask.distributed is not installed (pip install 'gramfree[dask]')")
        return 0
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        case_same(args, client)
    if args.out_of_core:
        case_out_of_core(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

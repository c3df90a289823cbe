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

Case ``scale`` (``--scale``): the issue's size, n = 4e6 rows, d = 16, float32, m = 2000
centres. Each worker builds its own row blocks (persisted; no data crosses the network),
the in-process fit gets the same rows. Both solvers run on both sides with the same
iteration count (PCG: tol = 0, ``--scale-iter`` steps; the one pass: its passes); printed
per solver: time in-process (``n_jobs = n_workers`` threads) and on the cluster
(``n_workers`` one-thread processes), their ratio, seconds and bytes per pass (worker-to-
worker transfers measured from the workers' counters, plus the client's result and the
pass's operand), the largest relative difference of predictions and of the final
objective. Then the scheduler's own cost (passes of empty tasks over two chunk counts:
fixed + per-task seconds) and a projection, stated as such, of seconds and bytes per pass
on 8, 64 and 512 workers from those measurements.

Examples::

    python benchmarks/bench_dask.py --quick            # CI smoke, < 30 s
    python benchmarks/bench_dask.py                    # n = 200000, m = 2000
    python benchmarks/bench_dask.py --quick --out-of-core
    python benchmarks/bench_dask.py --scale --n 20000 --centers 300   # ~15 min
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
        f"{info['pass_seconds'] / info['passes']:>9.3f}{t_dist / t_local:>8.2f}"
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
            client.run(_warm_up)  # imports (numpy, scipy, scikit-learn, gramfree) first
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
                f"worker {addr}: peak RSS {peak:.0f} MiB (after start-up and imports {start:.0f} "
                f"MiB; the fit's own {peak - start:.0f} MiB), "
                f"limit {limit_mib} MiB, data {size_mib:.0f} MiB"
            )
        print(f"client peak RSS {vm_hwm_mib():.0f} MiB")
        fits = all(p < limit_mib for p in peaks.values()) and size_mib > limit_mib
        print(
            f"{'PASS' if fits else 'FAIL'}: every worker stayed under its limit, "
            f"below the data's size (all workers' limits together: "
            f"{args.workers * limit_mib} MiB)"
        )


def _x_block(rows: int, d: int, start: int, dtype) -> np.ndarray:
    return make_data(rows, d, start=start)[0].astype(dtype)


def _y_block(rows: int, d: int, start: int) -> np.ndarray:
    return make_data(rows, d, start=start)[1]


def _noop_block(Xb, *, size: int):
    return np.zeros((1, size, 1))


def _outgoing_bytes(dask_worker) -> int:
    return int(dask_worker.transfer_outgoing_bytes_total)


def scheduling_overhead(client, M: int, d: int, chunk_counts) -> tuple[float, float]:
    """``(fixed, per_task)`` seconds of one pass whose tasks do no work (each returns an
    M-vector, tree-summed and gathered as a fit's pass does), fitted over chunk counts."""
    import dask.array as da

    from gramfree._dask import _chunk_sum, compute

    times = []
    for c in chunk_counts:
        Z = client.persist(da.zeros((c * 8, d), chunks=(8, d)))
        compute(_chunk_sum(_noop_block, Z, None, [], M=M, t=1, size=M))  # warm
        times.append(min(_timed_pass(Z, M) for _ in range(5)))
    per_task, fixed = np.polyfit(np.asarray(chunk_counts, float), np.asarray(times), 1)
    return max(float(fixed), 0.0), max(float(per_task), 0.0)


def _timed_pass(Z, M: int) -> float:
    from gramfree._dask import _chunk_sum, compute

    tic = time.perf_counter()
    compute(_chunk_sum(_noop_block, Z, None, [], M=M, t=1, size=M))
    return time.perf_counter() - tic


def case_scale(args, client) -> None:
    """The issue's scale case: n rows of float32 on the cluster (each worker builds its
    own blocks, so no data crosses the network), fitted in-process with ``n_workers``
    threads and on the cluster with ``n_workers`` one-thread processes; time ratio,
    bytes moved per pass and a projection to more workers."""
    import dask
    import dask.array as da
    from distributed import wait

    from gramfree import KernelRegressor

    n, d, m, rows, W = args.scale_n, args.d, args.scale_centers, args.scale_rows, args.workers
    starts = list(range(0, n, rows))
    sizes = [min(rows, n - a) for a in starts]
    X = np.concatenate([_x_block(r, d, a, np.float32) for r, a in zip(sizes, starts)])
    y = np.concatenate([_y_block(r, d, a) for r, a in zip(sizes, starts)])
    dX = da.concatenate(
        [
            da.from_delayed(dask.delayed(_x_block)(r, d, a, np.float32), (r, d), np.float32)
            for r, a in zip(sizes, starts)
        ]
    )
    dy = da.concatenate(
        [
            da.from_delayed(dask.delayed(_y_block)(r, d, a), (r,), np.float64)
            for r, a in zip(sizes, starts)
        ]
    )
    dX, dy = client.persist([dX, dy])
    wait([dX, dy])
    client.run(_warm_up)
    print(
        f"\ncase scale: n={n} d={d} float32 m={m} chunks={len(starts)} of {rows} rows, "
        f"{W} workers x 1 thread vs in-process n_jobs={W}; gamma={args.gamma} "
        f"alpha={args.alpha}"
    )
    print(
        f"{'solver':<16}{'passes':>7}{'in-process s':>14}{'cluster s':>11}{'ratio':>7}"
        f"{'s/pass':>8}{'bytes/pass':>12}{'pred diff':>11}{'objective gap':>15}"
    )
    probe = X[:20000]
    measured = {}
    for solver in args.scale_solvers.split(","):
        params = dict(
            solver=solver,
            n_centers=m,
            alpha=args.alpha,
            gamma=args.gamma,
            random_state=0,
            max_iter=args.scale_iter,
            tol=0.0 if solver == "nystrom-pcg" else 1e-4,  # pcg: exactly max_iter steps
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tic = time.perf_counter()
            local = KernelRegressor(**params, n_jobs=W).fit(X, y)
            t_local = time.perf_counter() - tic
            before = sum(client.run(_outgoing_bytes).values())
            tic = time.perf_counter()
            dist = KernelRegressor(**params, n_jobs=1).fit(dX, dy)
            t_dist = time.perf_counter() - tic
        moved = sum(client.run(_outgoing_bytes).values()) - before
        info = dist.solver_info_["dask"]
        passes = info["passes"]
        # worker-to-worker transfers (measured) plus, per pass, the result gathered by
        # the client and the pass's operand sent to each worker (M x t float64 each)
        per_pass = moved / passes + (1 + W) * m * 8
        diff = rel(dist.predict(probe), local.predict(probe))
        # float32 CG stopped at max_iter: the two runs' iterates part by float32 rounding
        # amplified by cond(K_MM); their objectives show whether either fits worse
        a, b = dist.loss_curve_, local.loss_curve_
        gap = (a[-1] - b[-1]) / b[-1] if len(a) and len(b) else float("nan")
        # what one chunk's task returns: the M x t partial sum (PCG) or [G | R] (one pass)
        partial = m * 8 * (1 + (m if dist.solver_ == "nystrom-direct" else 0))
        measured[dist.solver_] = (info["pass_seconds"] / passes, partial, per_pass)
        print(
            f"{dist.solver_:<16}{passes:>7}{t_local:>14.2f}{t_dist:>11.2f}"
            f"{t_dist / t_local:>7.2f}{info['pass_seconds'] / passes:>8.2f}{per_pass:>12.3g}"
            f"{diff:>11.1e}{gap:>15.1e}"
        )
    chunks = len(starts)
    fixed, per_task = scheduling_overhead(client, m, d, [chunks, 4 * chunks])
    print(
        f"scheduling, measured with passes of empty tasks: {fixed * 1e3:.1f} ms per pass + "
        f"{per_task * 1e3:.2f} ms per task"
    )
    print(
        "projection (a cost model from the measurements above, not a measurement): a pass "
        "over n rows on W workers takes  c n / W + fixed + per_task * chunks,  with "
        "chunks = max(this run's chunks, W) and c the measured seconds per row of one "
        "worker; bytes per pass at most (chunks + W + 1) * partial, the partial being a "
        "chunk's result (M x t floats for PCG, M x (M + t) for the one pass)"
    )
    header = "".join(f"{f'W={w} s/pass':>14}" for w in args.project)
    print(f"{'solver':<16}{header}{'bytes/pass at W=' + str(args.project[-1]):>24}")
    for solver, (seconds, partial, _) in measured.items():
        c = max(seconds - fixed - per_task * chunks, 0.0) * W / n
        row = ""
        for w in args.project:
            cw = max(chunks, w)
            row += f"{c * n / w + fixed + per_task * cw:>14.3f}"
        cw = max(chunks, args.project[-1])
        print(f"{solver:<16}{row}{(cw + args.project[-1] + 1) * partial:>24.3g}")


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
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the scale case: n = 4e6 float32, m = 2000, ratio, bytes and projection",
    )
    parser.add_argument("--scale-n", type=int, default=4_000_000)
    parser.add_argument("--scale-centers", type=int, default=2000)
    parser.add_argument("--scale-rows", type=int, default=100_000)
    parser.add_argument("--scale-iter", type=int, default=10)
    parser.add_argument("--scale-solvers", default="nystrom-pcg,nystrom-direct")
    parser.add_argument("--project", type=int, nargs="+", default=[8, 64, 512])
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.centers, args.chunks = 10_000, 300, 4
        args.ooc_n, args.ooc_rows, args.ooc_centers, args.ooc_iter = 3_000_000, 100_000, 100, 3
        args.memory_limit_mib = 350
        args.scale_n, args.scale_centers, args.scale_rows, args.scale_iter = 100_000, 200, 10_000, 3
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
        if args.scale:
            case_scale(args, client)
    if args.out_of_core:
        case_out_of_core(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

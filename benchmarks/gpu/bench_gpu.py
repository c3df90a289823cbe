#!/usr/bin/env python
"""GPU benchmark: gramfree's CUDA Gaussian ``K(X, Z) @ v`` against pykeops and a chunked
torch implementation on the same GPU, in one process run, printing ratios.

What it does, in order (sized to finish within 8 minutes on one H100):

1. build   -- with ``--build``, ``pip install --no-build-isolation -v .`` from the
              repository root, so that the module is compiled with this machine's nvcc;
              then it checks that ``gramfree.config()["cuda_compiled"]`` is true and
              that a GPU is visible (exits 2 otherwise, saying which).
2. check   -- every GPU operator (K @ V, K.T @ U, the one-pass K.T diag(w) K V and the
              kernel block) against the CPU operator for every kernel, float32 and
              float64, on sizes no tile divides; prints the worst relative errors.
3. time    -- float32 Gaussian K @ v, k = 1, for n = m in {10^5, 10^6} and
              d in {3, 16, 64, 256}:
              gramfree  host numpy arrays in and out (its timings include moving X, Z
                        and v to the GPU and the result back);
              keops     pykeops ``LazyTensor`` on torch CUDA tensors (formula compiled
                        on a warm-up call at small n, not timed);
              torch     rows of X in chunks (a chunk of K at most 1 GiB): squared
                        distances by the GEMM expansion (``torch.addmm``, FP32: TF32 off),
                        ``exp_``, then ``chunk @ v``;
              each anchor timed after ``torch.cuda.synchronize()``. Ratio = anchor time /
              gramfree time, and gramfree's entries per second.

The bar of the CUDA issue (same run, H100): float32 Gaussian K @ v at least 3x pykeops at
d >= 64 and at least 1.5x at d = 16.

    python benchmarks/gpu/bench_gpu.py --build          # on a fresh GPU machine
    python benchmarks/gpu/bench_gpu.py --quick          # n = m = 2e4 and 1e5 only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = [100_000, 1_000_000]
DIMS = [3, 16, 64, 256]
GAMMA_TIMES_D = 0.5  # gamma = 0.5 / d: kernel values neither all ~0 nor all ~1
BARS = {64: 3.0, 256: 3.0, 16: 1.5}


def build() -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "-v", ROOT]
    print("[build] " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stdout[-4000:] + res.stderr[-4000:])
        sys.exit(f"[build] pip install failed ({res.returncode})")
    cuda_lines = [ln for ln in res.stdout.splitlines() if "gramfree: CUDA" in ln or "no CUDA" in ln]
    print("\n".join("[build] " + ln.strip() for ln in cuda_lines))
    print(f"[build] done in {time.perf_counter() - t0:.0f} s", flush=True)


def check_all(gf) -> float:
    """Worst relative error of every GPU operator against the CPU, per dtype."""
    from gramfree import KernelOperator

    kernels = [
        ("rbf", {"gamma": 0.3}),
        ("laplacian", {"gamma": 0.2}),
        ("laplacian", {"gamma": 0.2, "norm": "l2"}),
        ("matern", {"nu": 0.5}),
        ("matern", {"nu": 1.5}),
        ("matern", {"nu": 2.5}),
        ("poly", {"degree": 3, "gamma": 0.1}),
        ("linear", {}),
        ("arccos", {}),
    ]
    worst = {}
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for n, m, d, k in [(1000, 777, 5, 1), (513, 1100, 70, 3), (300, 4097, 300, 40)]:
            X = rng.normal(size=(n, d)).astype(dtype)
            Z = rng.normal(size=(m, d)).astype(dtype)
            V = rng.normal(size=(m, k)).astype(dtype)
            U = rng.normal(size=(n, k)).astype(dtype)
            w = rng.uniform(0.5, 2, size=n).astype(dtype)
            for name, params in kernels:
                cpu = KernelOperator(X, Z, name, **params)
                gpu = KernelOperator(X, Z, name, device="cuda", **params)
                for what, a, b in (
                    ("K@V", gpu @ V, cpu @ V),
                    ("K.T@U", gpu.T @ U, cpu.T @ U),
                    ("normal", gpu.normal_matvec(V, w), cpu.normal_matvec(V, w)),
                    ("block", gpu.to_dense(), cpu.to_dense()),
                ):
                    err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
                    key = (np.dtype(dtype).name, what)
                    worst[key] = max(worst.get(key, 0.0), err)
    print("\n## GPU vs CPU operators (worst relative error over 9 kernels x 3 shapes)\n")
    print("| dtype | operator | max rel. error |\n|---|---|---:|")
    for (dt, what), err in sorted(worst.items()):
        print(f"| {dt} | {what} | {err:.2e} |")
    bad = [(k, e) for k, e in worst.items() if e > (1e-5 if k[0] == "float32" else 1e-12)]
    if bad:
        print(f"FAILED: {bad}")
    return max(worst.values())


def timed(fn, sync) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def torch_chunked(torch, Xt, Zt, vt, g):
    n, m = Xt.shape[0], Zt.shape[0]
    rows = max(1, min(n, (1 << 30) // (4 * m)))
    zn = (Zt * Zt).sum(1)[None, :]
    out = torch.empty((n, vt.shape[1]), device=Xt.device, dtype=Xt.dtype)
    buf = torch.empty((rows, m), device=Xt.device, dtype=Xt.dtype)
    ZT2 = (2.0 * Zt).T.contiguous()
    for s in range(0, n, rows):
        e = min(n, s + rows)
        B = buf[: e - s]
        torch.addmm(zn, Xt[s:e], ZT2, beta=1.0, alpha=-1.0, out=B)  # |z|^2 - 2 x.z
        B.add_((Xt[s:e] * Xt[s:e]).sum(1, keepdim=True)).clamp_(min=0).mul_(-g).exp_()
        torch.mm(B, vt, out=out[s:e])
    return out


def keops_fn(pykeops_torch, Xt, Zt, vt, g):
    LazyTensor = pykeops_torch.LazyTensor
    x = LazyTensor(Xt[:, None, :])
    z = LazyTensor(Zt[None, :, :])
    K = (-g * ((x - z) ** 2).sum(-1)).exp()
    return K @ vt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", action="store_true", help="pip install the repository first")
    ap.add_argument("--quick", action="store_true", help="n = m in {2e4, 1e5}")
    ap.add_argument("--sizes", help="comma list of n = m (default 1e5,1e6)")
    ap.add_argument("--dims", help="comma list of d (default 3,16,64,256)")
    ap.add_argument("--skip-check", action="store_true")
    args = ap.parse_args(argv)
    if args.build:
        build()
    import gramfree
    from gramfree import _core

    cfg = gramfree.config()
    gramfree.show_config()
    if not cfg["cuda_compiled"]:
        print("gramfree was built without CUDA: rerun with --build on a machine with nvcc")
        return 2
    if not cfg["cuda_devices"]:
        print("no CUDA device visible")
        return 2
    gpu_name = cfg["cuda_devices"][0]["name"]
    if not args.skip_check:
        check_all(gramfree)

    try:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    except ImportError:
        torch = None
    try:
        import pykeops.torch as pykeops_torch
    except Exception as exc:  # noqa: BLE001 - pykeops fails in many ways without a compiler
        print(f"pykeops unavailable: {exc}")
        pykeops_torch = None
    sync = (lambda: torch.cuda.synchronize()) if torch is not None else (lambda: None)

    sizes = (
        [int(float(s)) for s in args.sizes.split(",")]
        if args.sizes
        else ([20_000, 100_000] if args.quick else SIZES)
    )
    dims = [int(s) for s in args.dims.split(",")] if args.dims else DIMS
    rows = []
    for n in sizes:
        for d in dims:
            g = GAMMA_TIMES_D / d
            rng = np.random.default_rng(d)
            X = rng.normal(size=(n, d)).astype(np.float32)
            Z = rng.normal(size=(n, d)).astype(np.float32)
            v = rng.normal(size=(n, 1)).astype(np.float32)
            reps = 3 if n <= 100_000 else 1
            _core.cuda_kernel_matvec(X[:1000], Z[:1000], v[:1000], kind="gaussian", gamma=g)
            t_gf = min(
                timed(lambda: _core.cuda_kernel_matvec(X, Z, v, kind="gaussian", gamma=g), sync)[0]
                for _ in range(reps)
            )
            out_gf = _core.cuda_kernel_matvec(X, Z, v, kind="gaussian", gamma=g)
            row = {"n": n, "d": d, "gramfree": t_gf, "keops": None, "torch": None, "err": {}}
            if torch is not None:
                Xt, Zt, vt = (torch.from_numpy(a).cuda() for a in (X, Z, v))
                t, out = min(
                    (timed(lambda: torch_chunked(torch, Xt, Zt, vt, g), sync) for _ in range(reps)),
                    key=lambda p: p[0],
                )
                row["torch"] = t
                row["err"]["torch"] = float(
                    np.max(np.abs(out.cpu().numpy() - out_gf)) / np.max(np.abs(out_gf))
                )
                if pykeops_torch is not None:
                    keops_fn(pykeops_torch, Xt[:1000], Zt[:1000], vt[:1000], g)  # compile
                    t, out = min(
                        (
                            timed(lambda: keops_fn(pykeops_torch, Xt, Zt, vt, g), sync)
                            for _ in range(reps)
                        ),
                        key=lambda p: p[0],
                    )
                    row["keops"] = t
                    row["err"]["keops"] = float(
                        np.max(np.abs(out.cpu().numpy() - out_gf)) / np.max(np.abs(out_gf))
                    )
                del Xt, Zt, vt
                torch.cuda.empty_cache()
            rows.append(row)
            print(
                f"[time] n=m={n} d={d}: gramfree {t_gf:.3f} s, keops {row['keops']}, "
                f"torch {row['torch']}",
                flush=True,
            )

    def f(t):
        return "-" if t is None else f"{t:.3f} s"

    print(f"\n## Gaussian K @ v, float32, k = 1, on {gpu_name} (ratio = anchor / gramfree)\n")
    print("| n = m | d | gramfree | entries/s | pykeops | ratio | torch chunked | ratio | bar |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        rk = r["keops"] / r["gramfree"] if r["keops"] else None
        rt = r["torch"] / r["gramfree"] if r["torch"] else None
        bar = BARS.get(r["d"])
        verdict = (
            "-"
            if bar is None or rk is None
            else (f">= {bar:g}x: {'PASS' if rk >= bar else 'FAIL'}")
        )
        print(
            f"| {r['n']:.0e} | {r['d']} | {f(r['gramfree'])} | {r['n'] ** 2 / r['gramfree']:.2e} "
            f"| {f(r['keops'])} | {'-' if rk is None else f'{rk:.2f}x'} | {f(r['torch'])} "
            f"| {'-' if rt is None else f'{rt:.2f}x'} | {verdict} |"
        )
    errs = {k: max(r["err"].get(k, 0.0) for r in rows) for k in ("keops", "torch")}
    print(f"\nmax relative difference of the results vs gramfree: {errs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

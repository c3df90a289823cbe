"""Path-kernel decomposition: gramfree's factored engine against implementations that
materialise per-example gradients (numpy; torch.func when installed), side by side.

Claim under test (issue "path kernel"): on n = 10000 training examples, two hidden layers
of width 256, T = 500 steps and 100 queries, ``decompose`` gives the same contributions
(<= 1e-9 relative) >= 10x faster, with peak memory reported for both.

Every implementation runs in its own child process (``--child NAME``) on identical data,
initial weights and batch order, so peak memory (VmHWM after resetting it, minus VmRSS
before) is its own. Each replays the training from w_0 and returns C[q, n] for the same
queries; the parent compares them with gramfree's and prints the time ratio.

Data: synthetic regression, X ~ N(0, I_d), y = sin(X w1) + 0.5 cos(X w2) (speed only, no
accuracy claim). Mini-batches of 100 by default (5 epochs in 500 steps): the anchors'
cost per step is O(B q P), and full batch (``--batch-size 0``) makes the numpy anchor run
for hours at this size.

    python benchmarks/bench_pathkernel.py            # the issue's size
    python benchmarks/bench_pathkernel.py --quick    # seconds: CI smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

IMPLS = ("gramfree", "numpy", "torch")


def make_problem(a):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(a.n, a.d))
    w1, w2 = rng.normal(size=a.d) / np.sqrt(a.d), rng.normal(size=a.d) / np.sqrt(a.d)
    y = np.sin(X @ w1) + 0.5 * np.cos(X @ w2)
    Q = rng.normal(size=(a.queries, a.d))
    return X, y, Q


def model(a):
    from gramfree import PathKernelRegressor

    return PathKernelRegressor(
        (a.width, a.width),
        "tanh",
        learning_rate=a.lr,
        n_steps=a.steps,
        batch_size=a.batch_size or None,
        random_state=0,
        quadrature=a.nodes,
    )


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) * 1024
    return out


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def run_child(name, a, outdir):
    X, y, Q = make_problem(a)
    m = model(a)
    t0 = time.perf_counter()
    m.fit(X, y)  # the anchors take w_0 and the batch seed from this fit (same training)
    fit_time = time.perf_counter() - t0
    sizes, w0 = m.network_.sizes, m.network_.pack(m.initial_coefs_, m.initial_intercepts_)
    batch, seed = m.batch_size_, m.batch_seed_
    if name != "gramfree":
        del m
    # Each side's imports before the timing and the peak's baseline: torch's import is
    # not its decomposition (it was counted in both; a review).
    if name == "torch":
        import torch.func  # noqa: F401
    elif name == "numpy":
        from gramfree.pathkernel import reference  # noqa: F401
    _reset_peak()
    before = _status()
    t0 = time.perf_counter()
    if name == "gramfree":
        dec = m.decompose(Q)
        C, extra = (
            dec.contributions,
            {"reconstruction_error": dec.reconstruction_error, "step_residual": dec.step_residual},
        )
    elif name == "numpy":
        from gramfree.pathkernel import reference as ref

        net = ref.ReferenceMLP(sizes, "tanh", "squared")
        C = ref.decompose(
            net,
            w0,
            X,
            y[:, None],
            Q,
            learning_rate=a.lr,
            n_steps=a.steps,
            batch_size=batch,
            seed=seed,
            n_nodes=a.nodes,
            block=a.block,
        )[1][..., 0]
        extra = {}
    else:
        C, extra = torch_decompose(sizes, w0, X, y, Q, a, batch, seed)
    elapsed = time.perf_counter() - t0
    after = _status()
    np.save(os.path.join(outdir, f"{name}.npy"), C)
    print(
        json.dumps(
            {
                "impl": name,
                "time": elapsed,
                "fit_time": fit_time,
                "peak": after["VmHWM"] - before["VmRSS"],
                "hwm": after["VmHWM"],
                **extra,
            }
        )
    )


def torch_decompose(sizes, w0, X, y, Q, a, batch, seed):
    """The same decomposition with torch.func: vmap(grad) per-example gradients and
    vmap(jacrev) query Jacobians, materialised (float64)."""
    import torch
    from torch.func import functional_call, grad, jacrev, vmap

    from gramfree.pathkernel.reference import batch_schedule, gauss_legendre_01

    torch.set_default_dtype(torch.float64)
    layers, at = [], 0
    for fi, fo in zip(sizes[:-1], sizes[1:]):
        W = torch.tensor(w0[at : at + fi * fo].reshape(fi, fo))
        at += fi * fo
        layers.append((W, torch.tensor(w0[at : at + fo])))
        at += fo
    params = {
        f"{kind}{l}": t for l, (W, b) in enumerate(layers) for kind, t in (("W", W), ("b", b))
    }
    L = len(layers)

    class MLP(torch.nn.Module):
        def forward(self, x, **p):
            for l in range(L):
                x = x @ p[f"W{l}"] + p[f"b{l}"]
                if l + 1 < L:
                    x = torch.tanh(x)
            return x[..., 0]

    net = MLP()
    f = lambda p, x: functional_call(net, (), (x,), p)  # noqa: E731
    loss_i = lambda p, x, t: 0.5 * (f(p, x) - t) ** 2  # noqa: E731
    per_example = vmap(grad(loss_i), in_dims=(None, 0, 0))
    query_jac = vmap(jacrev(f), in_dims=(None, 0))
    flat = lambda g: torch.cat([g[k].reshape(g[k].shape[0], -1) for k in params], dim=1)  # noqa: E731
    Xt, yt, Qt = torch.tensor(X), torch.tensor(y), torch.tensor(Q)
    nodes, wts = gauss_legendre_01(a.nodes)
    C = torch.zeros(Q.shape[0], X.shape[0])
    with torch.no_grad():
        for idx in batch_schedule(X.shape[0], batch, a.steps, seed):
            idx_t = torch.tensor(idx)
            G = flat(per_example(params, Xt[idx_t], yt[idx_t]))  # B x P, materialised
            g = G.sum(dim=0)
            new, at = {}, 0
            for k in params:
                n_k = params[k].numel()
                new[k] = params[k] - a.lr / len(idx) * g[at : at + n_k].reshape(params[k].shape)
                at += n_k
            delta = {k: new[k] - params[k] for k in params}
            gbar = sum(
                float(wj)
                * flat(query_jac({k: params[k] + float(sj) * delta[k] for k in params}, Qt))
                for sj, wj in zip(nodes, wts)
            )  # q x P, materialised
            C[:, idx_t] += -a.lr / len(idx) * (gbar @ G.T)
            params = new
    return C.numpy(), {"torch_threads": torch.get_num_threads()}


def fmt_bytes(b):
    return f"{b / 2**20:.0f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--d", type=int, default=32)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=100, help="0: full batch")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--block", type=int, default=256, help="numpy anchor: examples per block")
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--quick", action="store_true", help="n=600, width 32, 30 steps, 10 queries")
    p.add_argument("--markdown", help="append the result table to this file")
    p.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--outdir", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.width, a.steps, a.queries, a.batch_size = 600, 32, 30, 10, 100
    if a.child:
        run_child(a.child, a, a.outdir)
        return 0
    impls = [s for s in a.impls.split(",") if s]
    if "torch" in impls:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: the torch.func anchor is skipped")
            impls.remove("torch")
    P = sum((i + 1) * o for i, o in zip([a.d, a.width, a.width], [a.width, a.width, 1]))
    print(
        f"n={a.n} d={a.d} hidden=({a.width}, {a.width}) P={P} T={a.steps} "
        f"batch={a.batch_size or 'full'} queries={a.queries} nodes={a.nodes}, tanh, float64"
    )
    results = {}
    with tempfile.TemporaryDirectory() as outdir:
        for name in impls:
            args = [sys.executable, __file__, "--child", name, "--outdir", outdir]
            for key in (
                "n",
                "d",
                "width",
                "steps",
                "queries",
                "batch_size",
                "lr",
                "nodes",
                "block",
            ):
                args += [f"--{key.replace('_', '-')}", str(getattr(a, key))]
            proc = subprocess.run(args, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name}: failed\n{proc.stderr[-2000:]}")
                continue
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name]["C"] = np.load(os.path.join(outdir, f"{name}.npy"))
            r = results[name]
            print(
                f"  {name:9s} decompose {r['time']:8.2f} s   peak {fmt_bytes(r['peak'])}"
                f"   (VmHWM {fmt_bytes(r['hwm'])})",
                flush=True,
            )
    if "gramfree" not in results:
        return 1
    gf = results["gramfree"]
    print(
        f"  gramfree: fit {gf['fit_time']:.2f} s; reconstruction error "
        f"{gf['reconstruction_error']:.1e}, worst step residual {gf['step_residual']:.1e}"
    )
    rows = [
        "| anchor | anchor time (s) | gramfree time (s) | speed-up | max rel. diff of C "
        "| anchor peak | gramfree peak | bar |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    scale = np.max(np.abs(gf["C"]))
    for name, r in results.items():
        if name == "gramfree":
            continue
        diff = float(np.max(np.abs(r["C"] - gf["C"])) / scale)
        ratio = r["time"] / gf["time"]
        passed = diff <= 1e-9 and ratio >= 10
        ok &= diff <= 1e-9
        print(
            f"  {name}: same contributions to {diff:.1e} relative; gramfree {ratio:.1f}x faster; "
            f"peak memory {fmt_bytes(r['peak'])} vs {fmt_bytes(gf['peak'])}  "
            f"[{'PASS' if passed else 'FAIL'}: <= 1e-9 and >= 10x]"
        )
        rows.append(
            f"| {name} | {r['time']:.2f} | {gf['time']:.2f} | {ratio:.1f}x | {diff:.1e} "
            f"| {fmt_bytes(r['peak'])} | {fmt_bytes(gf['peak'])} "
            f"| {'PASS' if passed else 'FAIL'} |"
        )
    if a.markdown:
        with open(a.markdown, "a") as fh:
            fh.write("\n".join(rows) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

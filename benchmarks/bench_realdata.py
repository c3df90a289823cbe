#!/usr/bin/env python
"""Real-data suite: gramfree's solvers against scikit-learn on datasets that ship offline.

Datasets (``benchmarks/realdata.py``; install with ``benchmarks/get_realdata.sh``):
classification fashion, shuttle, satellite, dna, spam, letter, mnist5k, digits; regression
diamonds, cps1988, randhie. Fixed 75/25 splits (stratified, ``random_state=0``; Fashion-MNIST
keeps its own 60000/10000), features standardised on the training split (pixels divided by
their maximum instead), regression targets standardised. Each dataset has an rbf kernel
(``realdata.CONFIG``: ``gamma`` and ``alpha = lam * n_train``, KernelRidge's convention)
and a narrow variant (``gamma * 10``), one table each (``--kernels``).

Models, each fitted in its own child process (``bench_realdata.py --child SPEC``, as in
bench_fit.py: the parent loads and splits each dataset once and saves it as a temporary
``.npz``; the child loads that, resets the high-water mark with
``/proc/self/clear_refs``, reads ``VmRSS``, fits, reads ``VmHWM``, predicts, scores and
prints one JSON line):

auto, direct, nystrom-pcg, eigenpro, pcg
    gramfree ``KernelClassifier`` / ``KernelRegressor(kernel="rbf", gamma, alpha,
    solver=...)``, every other parameter at its default except ``random_state=0`` (for
    reproducible centres). ``auto`` is the default model. ``direct`` only where
    n_train <= 20000, ``pcg`` (exact kernel ridge by conjugate gradients, Gram-free) where
    n_train <= 60000 (each iteration is a pass over n^2 kernel values).
svm        ``SVC`` / ``SVR(kernel="rbf", gamma, C)`` with ``C = 1 / (2 alpha)`` -- the same
           trade-off as ``sum loss + alpha ||f||^2`` written in libsvm's
           ``C sum loss + ||f||^2 / 2`` -- clipped to [1, 100] (hinge / epsilon-insensitive
           loss is not the square loss, so this is only a sensible scale; the clip keeps
           libsvm's time bounded). Only where n_train <= 20000.
krr        exact ``KernelRidge(kernel="rbf", gamma, alpha)``; classification on +-1 targets
           (binary) or one-hot targets with argmax (the objective KernelClassifier
           minimises). Only where n_train <= 20000 and its ~2 n^2 float64 fit in the memory
           available. Runs with ``OPENBLAS_CORETYPE=Haswell``: scipy's OpenBLAS segfaults in
           its Cholesky from ~16000 rows on AMD Zen 4.
nystroem   ``Nystroem(kernel="rbf", gamma, n_components=M, random_state=0)`` then ``Ridge`` /
           ``RidgeClassifier(alpha, fit_intercept=False)``, M = the number of centres of the
           ``auto`` model on that dataset (when ``auto`` solved exactly with all n points as
           centres, M = min(n_train, 5000); when ``auto`` did not run, M follows its rule).
hgb        ``HistGradientBoostingClassifier`` / ``Regressor(random_state=0)``, defaults: the
           tree model a user might pick instead. Kernel-free, so it runs once per dataset,
           in the first kernel setting's table.

A model that cannot run (size, memory estimate) is shown as ``skipped: reason``; nothing is
started for it.

Columns of the tables (one per dataset and kernel setting):

score      test accuracy (classification) or R^2 (regression).
gap        score minus the exact reference's score; the reference is ``krr`` where it ran,
           else gramfree ``direct``, else none (``-``).
obj_gap    gramfree rows only: ``(L - L_direct) / L_direct`` where L is the training
           objective ``(sum_i (f(x_i) - y_i)^2 + alpha ||f||^2) / n`` of the fitted model,
           recomputed in the child after the fit (``gramfree.solvers.objective`` on the
           model's centres and coefficients; classification targets +-1 / one-hot) and
           L_direct the same for the ``direct`` model. ``-`` when ``direct`` did not run.
           For a model on fewer centres than points (nystrom-pcg) this includes the
           Nystrom approximation's excess, not only the solver's.
           The solver's own last ``loss_curve_`` value is in the JSON (``loss_final``).
fit s, predict s
           wall seconds of ``fit`` and of ``predict`` on the test split. A fit shorter
           than ``REPEAT_BELOW`` seconds is repeated in its child, every model alike, and
           the best of ``REPEATS`` is shown (the first, which also pays each library's
           one-time costs, is in the progress line and the JSON as ``fit_first``): single
           fits of a tenth of a second varied by 2x from run to run on the 2-core VMs.
peak MiB   ``VmHWM`` right after the fit minus ``VmRSS`` before it: the fit's extra memory.
ratio      gramfree rows: (fit time of the fastest anchor -- svm, krr or nystroem -- whose
           score is at least this row's score - 0.005, i.e. as accurate up to 0.005
           accuracy or R^2) / (this row's fit time). When no anchor is that accurate, the
           best-scoring anchor is used and the ratio is marked ``*``. Above 1: gramfree is
           faster than the anchor at equal accuracy. The ``auto`` row is the headline.
solver / m / iters
           gramfree's ``solver_``, ``n_centers_`` and ``n_iter_``.

``--quick`` runs every model on subsets (at most 1000 training and 300 test rows per set)
with the default kernel only, hgb with 20 boosting rounds instead of 100, two children at a
time (``--jobs 2``, each given half the cores' threads): a CI smoke test, whose timings and
scores mean nothing.

Exit status: 0 when every child that was started finished (skips are fine); 1 when a child
crashed or a dataset's files are missing; 3 when none crashed but one ran past ``--timeout``;
2 on bad arguments.

Examples::

    benchmarks/get_realdata.sh                     # once; data in ~/.cache/gramfree-data
    python benchmarks/bench_realdata.py --quick
    python benchmarks/bench_realdata.py --datasets digits,satellite --markdown /tmp/real.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realdata  # noqa: E402
from bench_fit import (  # noqa: E402
    cell,
    environment_lines,
    fmt_mem,
    measured_fit,
    mem_available,
    run_child_process,
)

RESULT_TAG = "BENCH_REALDATA_RESULT "
MIB = 2.0**20
GIB = 2.0**30

GRAMFREE_SOLVERS = ["auto", "direct", "nystrom-pcg", "eigenpro", "pcg"]
# gramfree variants beside the solvers: auto with float32 kernel products on the float64
# data (kernel_precision="float32"), the precision option the README's default rests on.
GRAMFREE_VARIANTS = {"auto-f32": {"solver": "auto", "kernel_precision": "float32"}}
ANCHORS = ["svm", "krr", "nystroem"]
ALL_MODELS = GRAMFREE_SOLVERS + list(GRAMFREE_VARIANTS) + ANCHORS + ["hgb"]
GRAMFREE_MODELS = GRAMFREE_SOLVERS + list(GRAMFREE_VARIANTS)
KERNELS = ["default", "narrow", "issue"]

MAX_EXACT = 20000  # direct, krr and svm only up to this many training rows
# pcg: every iteration is a pass over n^2 kernel values; Fashion-MNIST's 60000 rows (d = 784)
# are the largest set of the suite (this script's pcg fit there: 7 iterations in 201 s on a
# 2-core Xeon, 2026-12-02)
MAX_PCG = 60000
NYSTROEM_DIRECT_M = 5000  # Nystroem's M when auto kept all points as centres
SCORE_TOL = 0.005  # "equal accuracy" for the ratio column
REPEAT_BELOW = 2.0  # seconds: a fit shorter than this runs REPEATS times (module docstring)
REPEATS = 3
SVM_C_RANGE = (1.0, 100.0)
HASWELL = {"OPENBLAS_CORETYPE": "Haswell"}
QUICK_HGB_ITER = 20  # --quick only: boosting rounds of hgb (default 100)


# --------------------------------------------------------------------------- child


def load_split(spec: dict):
    """The split the parent saved for this run (identical data in every child)."""
    with np.load(spec["data"]) as z:
        return z["X_train"], z["X_test"], z["y_train"], z["y_test"]


class SignedKernelRidge:
    """scikit-learn's KernelRidge on the targets KernelClassifier regresses on: +-1 for two
    classes (prediction by sign), one-hot otherwise (prediction by argmax)."""

    def __init__(self, **params):
        from sklearn.kernel_ridge import KernelRidge

        self.model = KernelRidge(**params)

    def fit(self, X, y):
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.model.fit(X, classifier_targets(codes, len(self.classes_)))
        return self

    def predict(self, X):
        scores = self.model.predict(X)
        if len(self.classes_) == 2:
            return self.classes_[(scores.ravel() > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


def classifier_targets(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """+-1 column for two classes, one-hot (0/1) columns otherwise: KernelClassifier's."""
    if n_classes == 2:
        return (2.0 * codes - 1.0)[:, None]
    Y = np.zeros((len(codes), n_classes))
    Y[np.arange(len(codes)), codes] = 1.0
    return Y


def build_model(spec: dict):
    model, task, p = spec["model"], spec["task"], spec["params"]
    clf = task == "classification"
    if model in GRAMFREE_MODELS:
        import gramfree

        cls = gramfree.KernelClassifier if clf else gramfree.KernelRegressor
        settings = GRAMFREE_VARIANTS.get(model, {"solver": model})
        return cls(kernel="rbf", gamma=p["gamma"], alpha=p["alpha"], random_state=0, **settings)
    if model == "svm":
        from sklearn.svm import SVC, SVR

        return (SVC if clf else SVR)(kernel="rbf", gamma=p["gamma"], C=p["C"])
    if model == "krr":
        from sklearn.kernel_ridge import KernelRidge

        if clf:
            return SignedKernelRidge(kernel="rbf", gamma=p["gamma"], alpha=p["alpha"])
        return KernelRidge(kernel="rbf", gamma=p["gamma"], alpha=p["alpha"])
    if model == "nystroem":
        from sklearn.kernel_approximation import Nystroem
        from sklearn.linear_model import Ridge, RidgeClassifier
        from sklearn.pipeline import make_pipeline

        head = (RidgeClassifier if clf else Ridge)(alpha=p["alpha"], fit_intercept=False)
        return make_pipeline(
            Nystroem(
                kernel="rbf", gamma=p["gamma"], n_components=p["n_components"], random_state=0
            ),
            head,
        )
    if model == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        return (HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor)(
            random_state=0, **p
        )
    raise ValueError(f"unknown model {model!r}")


def score(task: str, pred, y) -> float:
    if task == "classification":
        return float(np.mean(np.asarray(pred) == y))
    pred = np.asarray(pred, dtype=np.float64).reshape(y.shape)
    return 1.0 - float(np.mean((pred - y) ** 2) / np.var(y))


def jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        try:
            json.dumps(v, allow_nan=True)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def gramfree_details(model, X, y, task: str, alpha: float) -> dict:
    """solver_, n_centers_, n_iter_, the solver's last loss and the recomputed objective."""
    from gramfree.solvers import Problem, objective

    if task == "classification":
        codes = np.searchsorted(model.classes_, y)
        Y = classifier_targets(codes, len(model.classes_))
    else:
        Y = y.reshape(len(y), -1)
    t0 = time.perf_counter()
    # In float64 whatever the data's dtype: a float32 objective's rounding (about 1e-7)
    # made objective gaps of Fashion-MNIST's fits negative (a review).
    problem = Problem(
        np.asarray(X, dtype=np.float64),
        np.ascontiguousarray(Y, dtype=np.float64),
        model.kernel_,
        float(alpha),
        None,
        None,
    )
    obj = objective(problem, model.centers_.astype(np.float64), model.dual_coef_.astype(np.float64))
    return {
        "solver_": model.solver_,
        "n_centers_": int(model.n_centers_),
        "n_iter_": int(model.n_iter_),
        "loss_final": float(model.loss_curve_[-1]) if len(model.loss_curve_) else None,
        "objective": float(obj),
        "objective_seconds": time.perf_counter() - t0,
        "solver_info": jsonable(model.solver_info_),
    }


def run_child(spec: dict) -> dict:
    import sklearn  # noqa: F401  (imported before the RSS baseline)

    X, Xt, y, yt = load_split(spec)
    model = build_model(spec)
    pred, measured = measured_fit(model, X, y, Xt)
    first = measured["fit_time"]
    times = [first]
    with warnings.catch_warnings():  # the first fit recorded them
        warnings.simplefilter("ignore")
        while first < REPEAT_BELOW and len(times) < REPEATS:
            t0 = time.perf_counter()
            model.fit(X, y)  # the same model again: deterministic (random_state=0)
            times.append(time.perf_counter() - t0)
    measured.update(fit_first=first, fit_time=min(times), fit_repeats=len(times))
    out = {
        "model": spec["model"],
        "n_train": int(X.shape[0]),
        "n_test": int(Xt.shape[0]),
        "d": int(X.shape[1]),
        "score": score(spec["task"], pred, yt),
        **measured,
    }
    if spec["model"] in GRAMFREE_MODELS:
        out.update(gramfree_details(model, X, y, spec["task"], spec["params"]["alpha"]))
    return out


# --------------------------------------------------------------------------- parent: runs


def run_fit(
    spec: dict, *, timeout: float, env_extra: dict | None = None, threads: dict | None = None
) -> dict:
    """One fit in a child process (bench_fit.run_child_process): its result dict, or one
    with 'error'. ``env_extra`` (shown in the row's notes) and
    ``threads`` (thread counts, shown once in the header) are added to its environment."""
    env = dict(os.environ, **(threads or {}), **(env_extra or {}))
    t0 = time.perf_counter()
    res = run_child_process(__file__, spec, env=env, timeout=timeout, result_tag=RESULT_TAG)
    res.update(
        model=spec["model"],
        env=" ".join(f"{k}={v}" for k, v in (env_extra or {}).items()),
        wall=time.perf_counter() - t0,
    )
    return res


def progress_line(label: str, res: dict) -> str:
    if "skipped" in res:
        return f"  - {label}: skipped: {res['skipped']}"
    if "error" in res:
        tail = "".join(f"\n      {line}" for line in res.get("stderr_tail", []))
        return f"  - {label}: FAILED: {res['error']}{tail}"
    extra = ""
    if "solver_" in res:
        extra = (
            f" [{res['solver_']} m={res['n_centers_']} iters={res['n_iter_']} "
            f"objective={res['objective']:.6g}]"
        )
    warn = "".join(f"\n      warning: {w}" for w in res["warnings"])
    return (
        f"  - {label}: score={res['score']:.4f} fit={res['fit_time']:.2f}s"
        + (
            f" (best of {res['fit_repeats']}; first {res['fit_first']:.2f}s)"
            if res.get("fit_repeats", 1) > 1
            else ""
        )
        + f" predict={res['predict_time']:.2f}s peak={fmt_mem(res['peak_fit'])}{extra}{warn}"
    )


def skip_reason(model: str, n: int, m: int | None = None) -> str | None:
    """Why ``model`` cannot run on n training rows (m: Nystroem's M), or None."""
    avail = mem_available()
    if model in ("direct", "krr", "svm") and n > MAX_EXACT:
        return f"n_train={n} > {MAX_EXACT}"
    if model == "pcg" and n > MAX_PCG:
        return f"n_train={n} > {MAX_PCG}"
    if model in ("direct", "krr"):
        need = 2.0 * n * n * 8 + 0.5 * GIB
        if need > 0.9 * avail:
            return f"needs ~{fmt_mem(need)} (two n x n float64), {fmt_mem(avail)} available"
    if model == "nystroem":
        need = 3.0 * n * m * 8 + 10.0 * m * m * 8 + 0.5 * GIB
        if need > 0.9 * avail:
            return (
                f"needs ~{fmt_mem(need)} (n x M features, SVD of K_MM), {fmt_mem(avail)} available"
            )
    return None


def model_params(model: str, kp: dict, n: int, m: int | None = None, quick: bool = False) -> dict:
    if model == "hgb":
        return {"max_iter": QUICK_HGB_ITER} if quick else {}
    if model == "svm":
        lo, hi = SVM_C_RANGE
        return {"gamma": kp["gamma"], "C": float(np.clip(1.0 / (2.0 * kp["alpha"]), lo, hi))}
    if model == "nystroem":
        return {"gamma": kp["gamma"], "alpha": kp["alpha"], "n_components": m}
    return dict(kp)


def nystroem_m(auto: dict | None, n: int) -> tuple[int, str]:
    """Nystroem's M from the auto child's ``n_centers_`` (see the docstring)."""
    if auto is not None and "n_centers_" in auto:
        m, how = auto["n_centers_"], "auto's n_centers_"
    else:
        m = min(n, NYSTROEM_DIRECT_M)
        how = f"auto did not run: M = min(n_train, {NYSTROEM_DIRECT_M})"
    if m >= n:
        m = min(n, NYSTROEM_DIRECT_M)
        how += (
            f"; auto kept all {n} points (an exact solver): M = min(n_train, {NYSTROEM_DIRECT_M})"
        )
    return int(m), how


class Suite:
    """Runs the children of one invocation and keeps their results per table."""

    def __init__(self, args, tmpdir: str):
        self.args, self.tmpdir = args, tmpdir
        self.tables: list[dict] = []
        self.lock = threading.Lock()
        # Children running side by side share the cores: each gets its share of threads
        # (OpenBLAS and OpenMP spin-wait badly when oversubscribed).
        self.threads = {}
        if args.jobs > 1:
            t = str(max(1, (os.cpu_count() or 1) // args.jobs))
            self.threads = {"OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}

    def prepare(self, name: str) -> dict:
        """Load the split once, save it for the children; the dataset's facts."""
        Xtr, Xte, ytr, yte, task = realdata.load(name, quick=self.args.quick)
        if task == "classification":
            ytr, yte = ytr.astype(str), yte.astype(str)
        path = os.path.join(self.tmpdir, f"{name}.npz")
        np.savez(path, X_train=Xtr, X_test=Xte, y_train=ytr, y_test=yte)
        return {
            "name": name,
            "task": task,
            "data": path,
            "n": Xtr.shape[0],
            "n_test": Xte.shape[0],
            "d": Xtr.shape[1],
            "dtype": str(Xtr.dtype),
            "classes": len(np.unique(ytr)) if task == "classification" else None,
        }

    def run_many(self, jobs: list[tuple[str, dict, dict]]) -> dict:
        """jobs: (label, spec, env_extra); run --jobs at a time; {model: result}."""

        def one(job):
            label, spec, env = job
            res = run_fit(spec, timeout=self.args.timeout, env_extra=env, threads=self.threads)
            with self.lock:
                print(progress_line(label, res), flush=True)
            return spec["model"], res

        with ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            return dict(pool.map(one, jobs))

    def run_table(self, ds: dict, kernel: str, models: list[str], with_hgb: bool) -> dict:
        kp = realdata.kernel_params(ds["name"], ds["n"], kernel)
        if kp is None:  # no setting of this kind for the set ("issue")
            print(f"\n== {ds['name']}: no {kernel!r} kernel setting; skipped", flush=True)
            return {}
        n = ds["n"]
        print(
            f"\n== {ds['name']} ({ds['task']}, {n} train / {ds['n_test']} test, d={ds['d']}, "
            f"{ds['dtype']}): rbf {kernel} gamma={kp['gamma']:g}, alpha={kp['alpha']:.4g}",
            flush=True,
        )
        base = {"task": ds["task"], "data": ds["data"]}
        results: dict[str, dict] = {}
        first = [m for m in models if m != "nystroem" and (m != "hgb" or with_hgb)]
        jobs = []
        for model in first:
            reason = skip_reason(model, n)
            if reason:
                results[model] = {"model": model, "skipped": reason}
                print(progress_line(model, results[model]), flush=True)
                continue
            env = HASWELL if model == "krr" else {}
            params = model_params(model, kp, n, quick=self.args.quick)
            jobs.append((model, dict(base, model=model, params=params), env))
        results.update(self.run_many(jobs))
        notes = []
        if "nystroem" in models:
            m, how = nystroem_m(results.get("auto"), n)
            notes.append(f"nystroem: M={m} ({how})")
            reason = skip_reason("nystroem", n, m)
            if reason:
                results["nystroem"] = {"model": "nystroem", "skipped": reason}
                print(progress_line(f"nystroem M={m}", results["nystroem"]), flush=True)
            else:
                spec = dict(base, model="nystroem", params=model_params("nystroem", kp, n, m))
                results.update(self.run_many([(f"nystroem M={m}", spec, {})]))
        table = {"dataset": ds, "kernel": kernel, "params": kp, "results": results, "notes": notes}
        self.tables.append(table)
        return table


# --------------------------------------------------------------------------- parent: tables


def ran(res: dict | None) -> bool:
    return res is not None and "error" not in res and "skipped" not in res


def reference(results: dict) -> tuple[str | None, dict | None]:
    for name in ("krr", "direct"):
        if ran(results.get(name)):
            return name, results[name]
    return None, None


def speed_ratio(row: dict, results: dict) -> str:
    """Fastest anchor at least as accurate (up to SCORE_TOL) / this row's fit time."""
    anchors = [results[a] for a in ANCHORS if ran(results.get(a))]
    if not anchors or row["fit_time"] <= 0:
        return "-"
    good = [a for a in anchors if a["score"] >= row["score"] - SCORE_TOL]
    mark = ""
    if not good:
        good, mark = [max(anchors, key=lambda a: a["score"])], "*"
    best = min(good, key=lambda a: a["fit_time"])
    return f"{best['fit_time'] / row['fit_time']:.3g}x ({best['model']}){mark}"


def table_lines(table: dict) -> list[str]:
    ds, results = table["dataset"], table["results"]
    metric = "accuracy" if ds["task"] == "classification" else "R2"
    ref_name, ref = reference(results)
    direct = results.get("direct") if ran(results.get("direct")) else None
    lines = [
        f"### {ds['name']}: rbf {table['kernel']} (gamma={table['params']['gamma']:g}, "
        f"alpha={table['params']['alpha']:.4g}), {ds['n']} train / {ds['n_test']} test, "
        f"d={ds['d']}" + (f", {ds['classes']} classes" if ds["classes"] else ""),
        "",
        f"| model | solver / m / iters | {metric} | gap ({ref_name or 'no reference'}) "
        "| obj_gap | fit s | predict s | peak MiB | ratio | notes |",
        "|" + "---|" * 10,
    ]
    for model in ALL_MODELS:
        r = results.get(model)
        if r is None:
            continue
        if not ran(r):
            what = f"skipped: {r['skipped']}" if "skipped" in r else f"ERROR: {r['error']}"
            lines.append(f"| {model} | - | - | - | - | - | - | - | - | {cell(what)[:200]} |")
            continue
        gf = "solver_" in r
        solver = f"{r['solver_']} / {r['n_centers_']} / {r['n_iter_']}" if gf else "-"
        gap = f"{r['score'] - ref['score']:+.4f}" if ref is not None else "-"
        obj_gap = "-"
        if gf and direct is not None:
            obj_gap = f"{(r['objective'] - direct['objective']) / direct['objective']:.2e}"
        notes = "; ".join(r["warnings"] + ([r["env"]] if r.get("env") else []))
        lines.append(
            f"| {model} | {solver} | {r['score']:.4f} | {gap} | {obj_gap} | {r['fit_time']:.2f} "
            f"| {r['predict_time']:.2f} | {r['peak_fit'] / MIB:.0f} "
            f"| {speed_ratio(r, results) if gf else '-'} | {cell(notes)[:200] or '-'} |"
        )
    lines += [""] + [f"- {note}" for note in table["notes"]]
    return lines


def write_markdown(path: str, args, env: list[str], tables: list[dict], total: float) -> None:
    with open(path, "w") as fh:
        fh.write("# bench_realdata results" + (" (--quick)" if args.quick else "") + "\n\n")
        for line in env:
            fh.write(f"- {line}\n")
        fh.write(f"- total wall time {total:.0f} s\n\n")
        for table in tables:
            fh.write("\n".join(table_lines(table)) + "\n\n")
        fh.write(COLUMN_NOTE + "\n")


COLUMN_NOTE = (
    "gap: score minus the exact reference's (krr, else direct). obj_gap: relative excess of "
    "the training objective (sum (f - y)^2 + alpha ||f||^2) / n over direct's. peak: VmHWM "
    "after fit - VmRSS before. ratio: fit time of the fastest anchor (svm, krr, nystroem) "
    f"scoring at least this row's score - {SCORE_TOL} over this row's fit time (* = none "
    "did: the best anchor). krr runs with OPENBLAS_CORETYPE=Haswell: scipy's OpenBLAS "
    "segfaults in its Cholesky from ~16000 rows on AMD Zen 4. See bench_realdata.py's "
    "docstring."
)


# --------------------------------------------------------------------------- main


def parse_list(text: str, allowed: list[str], what: str, ap) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad:
        ap.error(f"unknown {what} {bad}; choose from {','.join(allowed)}")
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--datasets",
        default=",".join(realdata.DATASETS),
        help=f"comma-separated subset of {','.join(realdata.DATASETS)} (default all)",
    )
    ap.add_argument(
        "--models",
        default=",".join(ALL_MODELS),
        help=f"comma-separated subset of {','.join(ALL_MODELS)} (default all)",
    )
    ap.add_argument(
        "--kernels",
        default=None,
        help="default,narrow,issue (default: default,narrow; --quick: default only; "
        "issue: settings reported in issues, realdata.ISSUE_SETTINGS)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"subsets of at most {realdata.QUICK_TRAIN} train / "
        f"{realdata.QUICK_TEST} test rows: a smoke test",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="children run at once (default 1; --quick: 2). Above 1 the fit "
        "times disturb each other",
    )
    ap.add_argument("--markdown", metavar="PATH", help="also write the tables as markdown")
    ap.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed to each child (default 1800)"
    )
    ap.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child is not None:
        print(RESULT_TAG + json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0

    datasets = parse_list(args.datasets, realdata.DATASETS, "dataset(s)", ap)
    models = parse_list(args.models, ALL_MODELS, "model(s)", ap)
    kernels = parse_list(
        args.kernels or ("default" if args.quick else "default,narrow"),
        KERNELS,
        "kernel setting(s)",
        ap,
    )
    args.jobs = args.jobs or (2 if args.quick else 1)
    env = environment_lines()
    if args.jobs > 1:
        env.append(
            f"{args.jobs} children at a time, each with OMP_NUM_THREADS="
            f"OPENBLAS_NUM_THREADS={max(1, (os.cpu_count() or 1) // args.jobs)}"
        )
    print(
        "bench_realdata: gramfree vs scikit-learn on real data, each fit in its own process"
        + (" [--quick: subsets, timings not meaningful]" if args.quick else "")
    )
    for line in env:
        print("  " + line)
    t0 = time.perf_counter()
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_realdata_") as tmpdir:
        suite = Suite(args, tmpdir)
        for name in datasets:
            try:
                ds = suite.prepare(name)
            except FileNotFoundError as exc:  # data not installed: say so, fail at the end
                print(f"\n== {name}: {exc}", flush=True)
                missing.append(name)
                continue
            for i, kernel in enumerate(kernels):
                suite.run_table(ds, kernel, models, with_hgb=(i == 0))
            os.remove(ds["data"])
    total = time.perf_counter() - t0

    print()
    for table in suite.tables:
        print("\n".join(table_lines(table)) + "\n")
    print(COLUMN_NOTE)
    errors = {
        f"{t['dataset']['name']}/{t['kernel']}/{m}": r["error"]
        for t in suite.tables
        for m, r in t["results"].items()
        if "error" in r
    }
    timed_out = [k for k, e in errors.items() if e.startswith("timed out")]
    crashed = [k for k in errors if k not in timed_out]
    print(
        f"\ntotal wall time {total:.0f} s"
        + (f"; CRASHED: {', '.join(crashed)}" if crashed else "")
        + (f"; TIMED OUT: {', '.join(timed_out)}" if timed_out else "")
        + (f"; DATA NOT FOUND: {', '.join(missing)}" if missing else "")
    )
    if args.markdown:
        write_markdown(args.markdown, args, env, suite.tables, total)
        print(f"markdown written to {args.markdown}")
    return 1 if crashed or missing else 3 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())

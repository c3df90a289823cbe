#!/usr/bin/env python
"""Alpha chosen for the user: KernelRegressorCV's whole path against one fit, and the
chosen alpha's held-out score against the best candidate's, by GCV and by leave-one-out
(the default, ``criterion="auto"``).

1. Cost (synthetic, a scaling figure): n = 100000, d = 16, M = 1000 centres, 20 alphas.
   ``KernelRegressorCV`` (one pass, one eigendecomposition of size M; leave-one-out one
   more pass for each row's leverage) beside one
   ``KernelRegressor(solver="nystrom-direct")`` fit at one alpha on the same centres, and
   scikit-learn's ``Nystroem(M) + RidgeCV(alphas)`` (its leave-one-out by an
   eigendecomposition of the n x M features) in the same process. Bar: the path costs at
   most 1.5x one fit.
2. Quality (real data: diamonds, CPS1988 from Debian/PyPI packages, benchmarks/realdata.py):
   each criterion's chosen alpha's test R^2 against the best of the 20 candidates, each
   fitted on the same centres. Bar: within 0.002.
3. GCV against leave-one-out where every row is a centre (17 alphas from 1e-6 to 100):
   scikit-learn's iris, wine, breast cancer and diabetes (gamma 1, 3 and 10 / d, 5 shuffled
   folds) and 1000 training rows of each set of the real-data suite but Fashion-MNIST
   (its tuned gamma times 1/3, 1 and 3; 300 test rows): each criterion's held-out mean
   squared error on the targets (+-1 or one-hot for classes) against the best candidate's;
   then on the same 1000 rows with ``gammas`` (the tuned gamma times 1/3, 1 and 3): GCV's
   pair (gamma, alpha) against the default's (GCV's gamma, leave-one-out's alpha at it).
4. The same two criteria at the default centres (min(n, 2000)) on whole training splits
   (``--default-sets``), tuned gamma: held-out error and fit time.

    python benchmarks/bench_alpha_path.py            # the figures of the README
    python benchmarks/bench_alpha_path.py --quick    # CI smoke run (small sizes)
    python benchmarks/bench_alpha_path.py --targets 3 --sets ''   # alpha_per_target's cost

With ``--targets T`` (T > 1) the cost runs on T targets in unlike units (the same
signal times 10^0, 10^2, 10^4, ..., each with its own noise), and also times
``KernelRegressorCV(alpha_per_target=True)`` (each target's alpha by its own GCV from the
same pass and eigendecomposition) against the shared path, with scikit-learn's
``RidgeCV(alpha_per_target=True)`` on the same Nystroem features beside it.

With --quick (5000 rows and M = 200 for the cost; 1000 training rows, 300 test rows for
the quality; iris and randhie only in part 3, no part 4) the bars are not meaningful:
the held-out gaps are within the noise of 300 test rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sklearn.kernel_approximation import Nystroem  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402

from gramfree import KernelRegressor, KernelRegressorCV  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def cost(n: int, m: int, n_alphas: int, targets: int = 1) -> None:
    rng = np.random.default_rng(0)
    d = 16
    X = rng.normal(size=(n, d))
    signal = np.sin(X[:, 0] + X[:, 1]) + 0.5 * np.cos(X[:, 2])
    y = signal + 0.1 * rng.normal(size=n)
    if targets > 1:
        y = np.column_stack(
            [100.0**t * (signal + 0.1 * (t + 1) * rng.normal(size=n)) for t in range(targets)]
        )
    gamma = 1.0 / (2 * d)
    alphas = n * np.logspace(-8, -1, n_alphas)
    one = KernelRegressor(
        gamma=gamma,
        alpha=float(alphas[n_alphas // 2]),
        solver="nystrom-direct",
        n_centers=m,
        random_state=0,
    )
    path = KernelRegressorCV(
        gamma=gamma, alphas=alphas, n_centers=m, random_state=0, criterion="gcv"
    )
    # Warm-up (thread pools, first-touch pages), then best of two each, interleaved.
    one.fit(X[:2000], y[:2000])
    t_one = t_path = np.inf
    for _ in range(2):
        t_one = min(t_one, timed(lambda: one.fit(X, y))[1])
        t_path = min(t_path, timed(lambda: path.fit(X, y))[1])
    # The anchor's alphas are for its own objective (mean-free: Ridge sums squares too).
    anchor = None
    if n * m * 8 * 3 < 0.5 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"):

        def sk():
            F = Nystroem(gamma=gamma, n_components=m, random_state=0).fit_transform(X)
            return RidgeCV(alphas=alphas, fit_intercept=False).fit(F, y)

        anchor = timed(sk)[1]
        if targets > 1:

            def sk_per():
                F = Nystroem(gamma=gamma, n_components=m, random_state=0).fit_transform(X)
                return RidgeCV(alphas=alphas, fit_intercept=False, alpha_per_target=True).fit(F, y)

            anchor_per = timed(sk_per)[1]
    print(f"\n== cost: n={n}, d={d}, M={m}, {n_alphas} alphas (float64)")
    print(f"  KernelRegressor, one alpha (nystrom-direct): {t_one:8.2f} s")
    print(
        f"  KernelRegressorCV, {n_alphas} alphas, GCV:        {t_path:8.2f} s   "
        f"ratio {t_path / t_one:.2f}x one fit (bar <= 1.5x): "
        f"{'PASS' if t_path <= 1.5 * t_one else 'FAIL'}"
    )
    print(
        f"    total {path.solver_info_['seconds']:.2f} s, eigendecomposition and path "
        f"{path.solver_info_['path_seconds']:.3f} s, chosen alpha {path.alpha_:.4g}"
    )
    print(
        f"  {n_alphas} separate fits would cost ~{n_alphas * t_one:.1f} s "
        f"({n_alphas * t_one / t_path:.1f}x the path)"
    )
    loo = KernelRegressorCV(
        gamma=gamma, alphas=alphas, n_centers=m, random_state=0, criterion="loo"
    )
    t_loo = min(timed(lambda: loo.fit(X, y))[1] for _ in range(2))
    print(
        f"  KernelRegressorCV, leave-one-out (the default, criterion='auto'): {t_loo:8.2f} s   "
        f"{t_loo / t_path:.2f}x the GCV path, {t_loo / t_one:.2f}x one fit (bar <= 1.5x): "
        f"{'PASS' if t_loo <= 1.5 * t_one else 'FAIL'}; chosen alpha "
        f"{float(np.min(loo.alpha_)):.4g}"
    )
    if targets > 1:
        per = KernelRegressorCV(
            gamma=gamma,
            alphas=alphas,
            n_centers=m,
            random_state=0,
            alpha_per_target=True,
            criterion="gcv",
        )
        t_per = min(timed(lambda: per.fit(X, y))[1] for _ in range(2))
        print(
            f"  KernelRegressorCV, alpha_per_target=True, {targets} targets: {t_per:8.2f} s   "
            f"{t_per / t_path:.2f}x the shared path, {t_per / t_one:.2f}x one fit; alphas "
            f"{', '.join(f'{a:.3g}' for a in per.alpha_)} (shared: {path.alpha_:.3g})"
        )
    if anchor is not None:
        print(
            f"  sklearn Nystroem({m}) + RidgeCV({n_alphas} alphas): {anchor:8.2f} s   "
            f"anchor / gramfree GCV path = {anchor / t_path:.2f}x, / leave-one-out "
            f"{anchor / t_loo:.2f}x (RidgeCV's own criterion is leave-one-out)"
        )
        if targets > 1:
            print(
                f"  sklearn Nystroem({m}) + RidgeCV(alpha_per_target=True): {anchor_per:8.2f} s"
                f"   anchor / gramfree per-target path = {anchor_per / t_per:.2f}x"
            )


def quality(name: str, m: int, n_alphas: int, quick: bool) -> None:
    import realdata

    Xtr, Xte, ytr, yte, _ = realdata.load(name, quick=quick)
    params = realdata.kernel_params(name, len(Xtr))
    gamma = params["gamma"]
    alphas = len(Xtr) * np.logspace(-8, -1, n_alphas)
    path, t_path = timed(
        lambda: KernelRegressorCV(
            gamma=gamma, alphas=alphas, n_centers=m, random_state=0, criterion="gcv"
        ).fit(Xtr, ytr)
    )
    scores = []
    for a in alphas:
        fit = KernelRegressor(
            gamma=gamma, alpha=float(a), solver="nystrom-direct", n_centers=m, random_state=0
        ).fit(Xtr, ytr)
        scores.append(r2_score(yte, fit.predict(Xte)))
    scores = np.array(scores)
    loo, t_loo = timed(
        lambda: KernelRegressorCV(
            gamma=gamma, alphas=alphas, n_centers=m, random_state=0, criterion="loo"
        ).fit(Xtr, ytr)
    )
    chosen_loo = r2_score(yte, loo.predict(Xte))
    chosen = r2_score(yte, path.predict(Xte))
    best = int(np.argmax(scores))
    gap = scores[best] - chosen
    print(
        f"\n== quality: {name} (n_train={len(Xtr)}, n_test={len(Xte)}, gamma={gamma:.4g}, "
        f"M={m}, {n_alphas} alphas)"
    )
    print(
        f"  GCV: chosen alpha {path.alpha_:.4g} (index {int(np.argmin(path.gcv_values_))}): "
        f"test R2 {chosen:.4f}; best candidate alpha {alphas[best]:.4g}: {scores[best]:.4f}; "
        f"gap {gap:.4f} (bar <= 0.002): {'PASS' if gap <= 0.002 else 'FAIL'}; path fit {t_path:.2f} s"
    )
    print(
        f"  leave-one-out (the default): chosen alpha {loo.alpha_:.4g}: test R2 {chosen_loo:.4f} (gap "
        f"{scores[best] - chosen_loo:.4f}, bar <= 0.002: "
        f"{'PASS' if scores[best] - chosen_loo <= 0.002 else 'FAIL'}); fit {t_loo:.2f} s "
        f"({t_loo / t_path:.2f}x the GCV path)"
    )


def _targets(y, classes):
    """The estimators' own targets: +-1 for two classes, one-hot for more, y itself for
    regression (classes None)."""
    if classes is None:
        return np.asarray(y, dtype=float).reshape(len(y), -1)
    if len(classes) == 2:
        return (2.0 * (y == classes[1]) - 1.0)[:, None]
    return (y[:, None] == classes[None, :]).astype(float)


def _held_out(Xtr, ytr, Xte, yte, gamma, alphas, classes, n_centers=None, best=True):
    """Held-out mean squared error on the targets of GCV's choice, leave-one-out's (the
    default's) and, with ``best``, the best candidate's (each refitted on the same
    centres), and each criterion's alpha."""
    from gramfree import KernelRegressorCV

    Ttr, Tte = _targets(ytr, classes), _targets(yte, classes)
    kw = dict(gamma=gamma, n_centers=n_centers, random_state=0)

    def error(model):
        return float(np.mean((model.predict(Xte).reshape(Tte.shape) - Tte) ** 2))

    out = {}
    for criterion in ("gcv", "loo"):
        model = KernelRegressorCV(alphas=alphas, criterion=criterion, **kw).fit(Xtr, Ttr)
        out[criterion] = (error(model), model.alpha_)
    if best:
        out["best"] = (
            min(error(KernelRegressorCV(alphas=[a], **kw).fit(Xtr, Ttr)) for a in alphas),
            None,
        )
    return out


def criteria(quick: bool, default_sets: list[str]) -> None:
    """GCV against leave-one-out (criterion="auto"'s choice), and with gammas GCV's pair
    against GCV's gamma with leave-one-out's alpha at it."""
    import warnings

    import realdata
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    warnings.simplefilter("ignore")  # the smallest candidates' "no estimate" warnings
    alphas = np.logspace(-6, 2, 17)
    tally = {"gcv": [], "loo": []}

    def line(name, results):
        def chosen(k):
            return ", ".join(f"{r[k][1]:.2g}" for r in results)

        gcv, loo, best = (np.mean([r[k][0] for r in results]) for k in ("gcv", "loo", "best"))
        for k, v in (("gcv", gcv), ("loo", loo)):
            tally[k].append(v / best)
        print(
            f"  {name:24s} best {best:.4f}  GCV {gcv:.4f} ({gcv / best:.2f}x)  "
            f"LOO {loo:.4f} ({loo / best:.2f}x)  "
            f"alphas GCV {chosen('gcv')}; LOO {chosen('loo')}",
            flush=True,
        )

    print(
        "\n== GCV against leave-one-out (the default, criterion='auto'), every row a centre, "
        "17 alphas 1e-6..100: held-out mean squared error on the targets, and its ratio to "
        "the best candidate's"
    )
    small = {
        "iris": load_iris,
        "wine": load_wine,
        "breast_cancer": load_breast_cancer,
        "diabetes": load_diabetes,
    }
    for name, loader in small.items() if not quick else [("iris", load_iris)]:
        X, y = loader(return_X_y=True)
        regression = name == "diabetes"
        if regression:
            y = (y - y.mean()) / y.std()
        classes = None if regression else np.unique(y)
        splitter = (KFold if regression else StratifiedKFold)(5, shuffle=True, random_state=0)
        for scale in (1.0,) if quick else (1.0, 3.0, 10.0):
            results = []
            for train, test in splitter.split(X, y):
                standard = StandardScaler().fit(X[train])
                Xtr, Xte = standard.transform(X[train]), standard.transform(X[test])
                results.append(
                    _held_out(Xtr, y[train], Xte, y[test], scale / X.shape[1], alphas, classes)
                )
            line(f"{name}, gamma {scale:g}/d (5 folds)", results)
    suite = ["randhie"] if quick else realdata.DATASETS[1:]  # fashion: 784 features
    grids = []
    for name in suite:
        Xtr, Xte, ytr, yte, task = realdata.load(name, quick=True)
        gamma = realdata.kernel_params(name, len(Xtr))["gamma"]
        classes = np.unique(ytr) if task == "classification" else None
        for scale in (1.0,) if quick else (1 / 3, 1.0, 3.0):
            out = _held_out(Xtr, ytr, Xte, yte, gamma * scale, alphas, classes, len(Xtr))
            line(f"{name} (1000 rows), {scale:.2g}x", [out])
        grids.append((name, Xtr, ytr, Xte, yte, [gamma / 3, gamma, 3 * gamma], classes))
    for k in ("gcv", "loo"):
        ratios = np.array(tally[k])
        print(
            f"  {k.upper()}: over {len(ratios)} cases, worst {ratios.max():.2f}x the best "
            f"candidate, median {np.median(ratios):.3f}x, {np.sum(ratios > 1.1)} above 1.1x"
        )
    print(
        "\n  with gammas (the tuned gamma times 1/3, 1, 3): GCV's (gamma, alpha) against the "
        "default's (GCV's gamma, leave-one-out's alpha there), held-out error"
    )
    for name, Xtr, ytr, Xte, yte, gammas, classes in grids:
        Ttr, Tte = _targets(ytr, classes), _targets(yte, classes)
        got = {}
        for criterion in ("gcv", "auto"):
            model = KernelRegressorCV(
                gammas=gammas, alphas=alphas, criterion=criterion, n_centers=len(Xtr)
            ).fit(Xtr, Ttr)
            error = float(np.mean((model.predict(Xte).reshape(Tte.shape) - Tte) ** 2))
            got[criterion] = (error, model.gamma_, model.alpha_)
        (g, gg, ga), (d, dg, da) = got["gcv"], got["auto"]
        assert dg == gg, (dg, gg)  # gamma is GCV's either way
        print(
            f"  {name:10s} GCV {g:.4f} (gamma {gg:.3g}, alpha {ga:.2g}), default {d:.4f} "
            f"(alpha {da:.2g}): GCV / default {g / d:.2f}",
            flush=True,
        )
    if not default_sets:
        return
    print(
        "\n== the same at the default centres (min(n, 2000)), whole training splits, tuned "
        "gamma: test mean squared error of each criterion's choice, fit times"
    )
    for name in default_sets:
        Xtr, Xte, ytr, yte, task = realdata.load(name)
        gamma = realdata.kernel_params(name, len(Xtr))["gamma"]
        classes = np.unique(ytr) if task == "classification" else None
        Ttr, Tte = _targets(ytr, classes), _targets(yte, classes)
        got = {}
        for criterion in ("gcv", "loo"):
            model, seconds = timed(
                lambda c=criterion: KernelRegressorCV(
                    gamma=gamma, alphas=alphas, criterion=c, random_state=0
                ).fit(Xtr, Ttr)
            )
            error = float(np.mean((model.predict(Xte).reshape(Tte.shape) - Tte) ** 2))
            got[criterion] = (error, model.alpha_, seconds)
        (g, ga, gt), (lo, la, lt) = got["gcv"], got["loo"]
        print(
            f"  {name:10s} n={len(Xtr):6d}: GCV {g:.4f} (alpha {ga:.2g}), LOO {lo:.4f} "
            f"(alpha {la:.2g}): GCV/LOO error {g / lo:.2f}; LOO's fit {lt / gt:.2f}x GCV's",
            flush=True,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a CI smoke run")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--alphas", type=int, default=20)
    ap.add_argument("--sets", default="diamonds,cps1988")
    ap.add_argument(
        "--no-criteria",
        action="store_true",
        help="leave out GCV against leave-one-out (parts 3 and 4)",
    )
    ap.add_argument(
        "--default-sets",
        default="diamonds,cps1988,randhie,satellite,dna,spam,mnist5k,digits,letter,shuttle",
        help="part 4's sets (whole training splits, default centres); '' to skip",
    )
    ap.add_argument(
        "--targets",
        type=int,
        default=1,
        help="targets in unlike units; > 1 also times alpha_per_target",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.m, args.default_sets = 5000, 200, ""
    cost(args.n, args.m, args.alphas, args.targets)
    for name in [s for s in args.sets.split(",") if s]:
        quality(name, args.m, args.alphas, args.quick)
    if not args.no_criteria:
        criteria(args.quick, [s for s in args.default_sets.split(",") if s])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

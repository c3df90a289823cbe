#!/usr/bin/env python
"""Alpha chosen for the user: KernelRegressorCV's whole GCV path against one fit, and the
chosen alpha's held-out score against the best candidate's.

1. Cost (synthetic, a scaling figure): n = 100000, d = 16, M = 1000 centres, 20 alphas.
   ``KernelRegressorCV`` (one pass, one eigendecomposition of size M) beside one
   ``KernelRegressor(solver="nystrom-direct")`` fit at one alpha on the same centres, and
   scikit-learn's ``Nystroem(M) + RidgeCV(alphas)`` (its GCV by an eigendecomposition of
   the n x M features) in the same process. Bar: the path costs at most 1.5x one fit.
2. Quality (real data: diamonds, CPS1988 from Debian/PyPI packages, benchmarks/realdata.py):
   the chosen alpha's test R^2 against the best of the 20 candidates, each fitted on the
   same centres. Bar: within 0.002.

    python benchmarks/bench_alpha_path.py            # the figures of the README
    python benchmarks/bench_alpha_path.py --quick    # CI smoke run (small sizes)
    python benchmarks/bench_alpha_path.py --targets 3 --sets ''   # alpha_per_target's cost

3. GCV against leave-one-out on small real classification sets (scikit-learn's iris, wine,
   breast cancer; ``KernelClassifierCV`` with every row a centre, gamma 1, 3 and 10 / d,
   17 alphas from 1e-6 to 100): each criterion's chosen model's held-out mean squared
   error on the class targets and accuracy, 5 shuffled stratified folds.

Both cost and quality also run ``criterion="loo"`` (the exact leave-one-out error, RidgeCV's
criterion: one more pass over the data): its cost beside the GCV path, and its chosen
alpha's held-out score beside GCV's.

With ``--targets T`` (T > 1) the cost runs on T targets in unlike units (the same
signal times 10^0, 10^2, 10^4, ..., each with its own noise), and also times
``KernelRegressorCV(alpha_per_target=True)`` (each target's alpha by its own GCV from the
same pass and eigendecomposition) against the shared path, with scikit-learn's
``RidgeCV(alpha_per_target=True)`` on the same Nystroem features beside it.

With --quick (1000 training rows, 300 test rows, M = 200) the bars are not meaningful:
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
    path = KernelRegressorCV(gamma=gamma, alphas=alphas, n_centers=m, random_state=0)
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
        f"  KernelRegressorCV, {n_alphas} alphas:             {t_path:8.2f} s   "
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
        f"  KernelRegressorCV, criterion='loo':      {t_loo:8.2f} s   "
        f"{t_loo / t_path:.2f}x the GCV path, {t_loo / t_one:.2f}x one fit; chosen alpha "
        f"{float(np.min(loo.alpha_)):.4g}"
    )
    if targets > 1:
        per = KernelRegressorCV(
            gamma=gamma, alphas=alphas, n_centers=m, random_state=0, alpha_per_target=True
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
            f"anchor / gramfree path = {anchor / t_path:.2f}x"
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
        lambda: KernelRegressorCV(gamma=gamma, alphas=alphas, n_centers=m, random_state=0).fit(
            Xtr, ytr
        )
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
        f"  chosen alpha {path.alpha_:.4g} (index {int(np.argmin(path.gcv_values_))}): "
        f"test R2 {chosen:.4f}; best candidate alpha {alphas[best]:.4g}: {scores[best]:.4f}; "
        f"gap {gap:.4f} (bar <= 0.002): {'PASS' if gap <= 0.002 else 'FAIL'}; path fit {t_path:.2f} s"
    )
    print(
        f"  criterion='loo': chosen alpha {loo.alpha_:.4g}: test R2 {chosen_loo:.4f} (gap "
        f"{scores[best] - chosen_loo:.4f}); fit {t_loo:.2f} s ({t_loo / t_path:.2f}x the GCV path)"
    )


def classification(quick: bool) -> None:
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from gramfree import KernelClassifierCV

    alphas = np.logspace(-6, 2, 17)
    sets = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}
    if quick:
        sets = {"iris": load_iris}
    print("\n== GCV against leave-one-out: KernelClassifierCV, 17 alphas 1e-6..100, 5 folds")
    for name, loader in sets.items():
        X, y = loader(return_X_y=True)
        classes = np.unique(y)
        for scale in (1.0,) if quick else (1.0, 3.0, 10.0):
            scores: dict[str, list] = {"gcv": [], "loo": []}
            folds = StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)
            for train, test in folds:
                standard = StandardScaler().fit(X[train])
                Xtr, Xte = standard.transform(X[train]), standard.transform(X[test])
                # The estimator's own targets: +-1 for two classes, one-hot for more.
                if len(classes) == 2:
                    target = (2.0 * (y[test] == classes[1]) - 1.0)[:, None]
                else:
                    target = (y[test][:, None] == classes[None, :]).astype(float)
                for criterion in scores:
                    model = KernelClassifierCV(
                        gamma=scale / X.shape[1], alphas=alphas, criterion=criterion
                    ).fit(Xtr, y[train])
                    scores_ = model.decision_function(Xte).reshape(len(test), -1)
                    scores[criterion].append(
                        (
                            float(np.mean((scores_ - target) ** 2)),
                            float(np.mean(model.predict(Xte) == y[test])),
                            model.alpha_,
                        )
                    )
            gcv, loo = (np.array(scores[c]) for c in ("gcv", "loo"))
            print(
                f"  {name}, gamma {scale:g}/d: GCV test MSE {gcv[:, 0].mean():.4f}, accuracy "
                f"{gcv[:, 1].mean():.4f} (alphas {', '.join(f'{a:.2g}' for a in gcv[:, 2])}); "
                f"LOO {loo[:, 0].mean():.4f}, {loo[:, 1].mean():.4f} "
                f"(alphas {', '.join(f'{a:.2g}' for a in loo[:, 2])})"
            )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a CI smoke run")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--alphas", type=int, default=20)
    ap.add_argument("--sets", default="diamonds,cps1988")
    ap.add_argument(
        "--no-classification",
        action="store_true",
        help="leave out GCV against leave-one-out on the classification sets",
    )
    ap.add_argument(
        "--targets",
        type=int,
        default=1,
        help="targets in unlike units; > 1 also times alpha_per_target",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.m = 5000, 200
    cost(args.n, args.m, args.alphas, args.targets)
    for name in [s for s in args.sets.split(",") if s]:
        quality(name, args.m, args.alphas, args.quick)
    if not args.no_classification:
        classification(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Alpha for the exact and the iterative solvers: gramfree's schemes against a
GridSearchCV of separate fits, on real data (diamonds, from benchmarks/realdata.py).

1. **Exact kernel ridge** (every training point a centre): ``KernelRegressorCV(
   n_centers=1.0)``, GCV for every alpha from one eigendecomposition of size n, beside
   ``GridSearchCV(KernelRidge, alphas, cv=5)`` (scikit-learn's way: a Cholesky per alpha
   and fold) in the same process.
2. **Iterative (Nystrom-PCG on M centres)**: the alphas from largest to smallest, each fit
   warm-started from the previous one (``warm_start=True``) and scored on a held-out 20%,
   beside the same loop started cold each time and ``GridSearchCV`` (cv=3) of separate
   cold fits on the same centres.
3. **gamma and alpha** (exact kernel ridge): ``KernelRegressorCV(gammas=..., n_centers=1.0)``,
   one eigendecomposition per candidate gamma (the suite's gamma times 1/4 ... 4), beside
   ``GridSearchCV(KernelRidge, {gamma, alpha}, cv=5)``; then ``gamma_search="gradient"``,
   GCV's slope in log(gamma) followed from the grid's winner, and from the suite's gamma
   alone (no grid), each with its number of GCV paths and the GCV it reached.

Prints each scheme's time, the ratio to the anchor, the chosen alpha and its test R^2.

    python benchmarks/bench_alpha_schemes.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import realdata  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402

from gramfree import KernelRegressor, KernelRegressorCV  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def exact_scheme(X, y, Xt, yt, gamma, alphas):
    print(f"\n1. exact kernel ridge, n = {len(X)}, {len(alphas)} alphas")
    cv_model, t_gcv = timed(
        lambda: KernelRegressorCV(gamma=gamma, alphas=alphas, n_centers=1.0, criterion="gcv").fit(
            X, y
        )
    )
    grid, t_grid = timed(
        lambda: GridSearchCV(
            KernelRidge(kernel="rbf", gamma=gamma), {"alpha": list(alphas)}, cv=5
        ).fit(X, y)
    )
    r2_gcv = r2_score(yt, cv_model.predict(Xt))
    r2_grid = r2_score(yt, grid.predict(Xt))
    print(f"   {'scheme':44s} {'time (s)':>9s} {'alpha':>9s} {'test R2':>8s}")
    print(
        f"   {'KernelRegressorCV(n_centers=1.0): GCV path':44s} {t_gcv:9.2f} "
        f"{cv_model.alpha_:9.3g} {r2_gcv:8.4f}"
    )
    print(
        f"   {'GridSearchCV(KernelRidge), cv=5':44s} {t_grid:9.2f} "
        f"{grid.best_params_['alpha']:9.3g} {r2_grid:8.4f}"
    )
    print(f"   ratio GridSearchCV / GCV path: {t_grid / t_gcv:.1f}x")


def gamma_scheme(X, y, Xt, yt, gammas, alphas):
    print(
        f"\n3. gamma and alpha, exact kernel ridge, n = {len(X)}, {len(gammas)} gammas x "
        f"{len(alphas)} alphas"
    )
    cv_model, t_gcv = timed(
        lambda: KernelRegressorCV(gammas=gammas, alphas=alphas, n_centers=1.0, criterion="gcv").fit(
            X, y
        )
    )
    grid, t_grid = timed(
        lambda: GridSearchCV(
            KernelRidge(kernel="rbf"), {"gamma": list(gammas), "alpha": list(alphas)}, cv=5
        ).fit(X, y)
    )
    print(f"   {'scheme':44s} {'time (s)':>9s} {'gamma':>9s} {'alpha':>9s} {'test R2':>8s}")
    print(
        f"   {'KernelRegressorCV(gammas=...): GCV paths':44s} {t_gcv:9.2f} "
        f"{cv_model.gamma_:9.3g} {cv_model.alpha_:9.3g} {r2_score(yt, cv_model.predict(Xt)):8.4f}"
    )
    print(
        f"   {'GridSearchCV(KernelRidge), cv=5':44s} {t_grid:9.2f} "
        f"{grid.best_params_['gamma']:9.3g} {grid.best_params_['alpha']:9.3g} "
        f"{r2_score(yt, grid.predict(Xt)):8.4f}"
    )
    print(f"   ratio GridSearchCV / GCV paths: {t_grid / t_gcv:.1f}x")
    searches = [
        ("grid, then gamma_search='gradient'", {"gammas": gammas}),
        ("gamma_search='gradient' from the suite's", {"gamma": float(np.median(gammas))}),
    ]
    print(
        f"   {'search':44s} {'time (s)':>9s} {'gamma':>9s} {'alpha':>9s} {'test R2':>8s} "
        f"{'GCV':>10s} {'paths':>5s} {'GridSearchCV / it':>17s}"
    )
    print(
        f"   {'(the grid above)':44s} {t_gcv:9.2f} {cv_model.gamma_:9.3g} "
        f"{cv_model.alpha_:9.3g} {r2_score(yt, cv_model.predict(Xt)):8.4f} "
        f"{-cv_model.best_score_:10.5g} {len(gammas):5d} {t_grid / t_gcv:16.1f}x"
    )
    for label, params in searches:
        searched, t_search = timed(
            lambda params=params: KernelRegressorCV(
                gamma_search="gradient", alphas=alphas, n_centers=1.0, criterion="gcv", **params
            ).fit(X, y)
        )
        paths = (
            len(searched.solver_info_["gamma_search"])
            + len(params.get("gammas", []))
            - (1 if "gammas" in params else 0)
        )
        print(
            f"   {label:44s} {t_search:9.2f} {searched.gamma_:9.3g} {searched.alpha_:9.3g} "
            f"{r2_score(yt, searched.predict(Xt)):8.4f} {-searched.best_score_:10.5g} "
            f"{paths:5d} {t_grid / t_search:16.1f}x"
        )


def path_scores(X_fit, y_fit, X_val, y_val, alphas, centers, gamma, warm):
    """Alphas largest first; returns (best alpha, its model, CG iterations in all)."""
    model = KernelRegressor(
        gamma=gamma, solver="nystrom-pcg", centers=centers, warm_start=warm, tol=1e-4, max_iter=200
    )
    best, iterations = (-np.inf, None, None), 0
    for a in sorted(alphas, reverse=True):
        model.set_params(alpha=a).fit(X_fit, y_fit)
        iterations += model.n_iter_
        score = r2_score(y_val, model.predict(X_val))
        if score > best[0]:
            best = (score, a, model.dual_coef_.copy())
    return best[1], best[2], iterations


def iterative_scheme(X, y, Xt, yt, gamma, alphas, m, rng):
    print(f"\n2. Nystrom-PCG, n = {len(X)}, M = {m} centres, {len(alphas)} alphas")
    centers = np.sort(rng.choice(len(X), size=m, replace=False))
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    C = X[centers]
    rows = []
    for warm in (True, False):
        (alpha, coef, iters), t = timed(
            lambda warm=warm: path_scores(X_fit, y_fit, X_val, y_val, alphas, C, gamma, warm)
        )
        model = KernelRegressor(gamma=gamma, alpha=alpha, solver="nystrom-pcg", centers=C)
        model.fit(X_fit[:2], y_fit[:2])  # a fitted shell; its coefficients are the path's
        model.dual_coef_ = coef
        rows.append(
            (
                f"held-out path, {'warm' if warm else 'cold'} starts",
                t,
                alpha,
                r2_score(yt, model.predict(Xt)),
                iters,
            )
        )
    grid, t_grid = timed(
        lambda: GridSearchCV(
            KernelRegressor(gamma=gamma, solver="nystrom-pcg", centers=C, tol=1e-4, max_iter=200),
            {"alpha": list(alphas)},
            cv=3,
        ).fit(X, y)
    )
    rows.append(
        (
            "GridSearchCV, cv=3, cold fits",
            t_grid,
            grid.best_params_["alpha"],
            r2_score(yt, grid.predict(Xt)),
            None,
        )
    )
    print(f"   {'scheme':44s} {'time (s)':>9s} {'alpha':>9s} {'test R2':>8s} {'CG its':>7s}")
    for name, t, a, r2, iters in rows:
        print(f"   {name:44s} {t:9.2f} {a:9.3g} {r2:8.4f} {iters if iters else '-':>7}")
    print(
        f"   ratio GridSearchCV / warm path: {t_grid / rows[0][1]:.1f}x; "
        f"cold / warm path: {rows[1][1] / rows[0][1]:.2f}x "
        f"({rows[1][4]} vs {rows[0][4]} CG iterations)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, Xt, y, yt, _ = realdata.load("diamonds", quick=args.quick)
    params = realdata.kernel_params("diamonds", len(X))
    gamma = params["gamma"]
    rng = np.random.default_rng(0)
    n_exact = 600 if args.quick else 3000
    n_iter = 2000 if args.quick else 20000
    m = 200 if args.quick else 1000
    alphas = np.logspace(-4, 1, 6 if args.quick else 12) * n_exact
    exact_scheme(X[:n_exact], y[:n_exact], Xt, yt, gamma, alphas)
    gammas = gamma * np.array([0.5, 1.0, 2.0] if args.quick else [0.25, 0.5, 1.0, 2.0, 4.0])
    exact_alphas = alphas
    alphas = np.logspace(-4, 1, 6 if args.quick else 12) * n_iter
    iterative_scheme(X[:n_iter], y[:n_iter], Xt, yt, gamma, alphas, m, rng)
    gamma_scheme(X[:n_exact], y[:n_exact], Xt, yt, gammas, exact_alphas)


if __name__ == "__main__":
    main()

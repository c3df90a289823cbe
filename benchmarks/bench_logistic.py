"""Kernel logistic regression (``KernelClassifier(loss="logistic")``) beside scikit-learn's
probabilistic classifiers, on the real-data suite's classification sets, in one process:

* ``LogisticRegression`` on ``Nystroem`` features of the same M centres (``Nystroem``
  fitted on the rows gramfree drew, so that the draw's variance, 0.002 in log-loss on
  spam between seeds, is not in the comparison): the same objective, a penalised
  log-likelihood over M kernel columns with an unpenalised intercept, ``C = 1 / alpha``;
  both should reach the same optimum, and the fit times compare the solvers;
* ``SVC(probability=True)`` (Platt scaling by an internal 5-fold CV) with the same gamma.

With ``--cv K``, alpha chosen from ``--alphas`` on K unshuffled stratified folds by
held-out log-loss, three ways: ``KernelClassifierCV(loss="logistic")`` (warm-started
paths on one set of centres), ``GridSearchCV`` of separate ``KernelClassifier`` fits
(``scoring="neg_log_loss"``, the same folds), and ``LogisticRegressionCV`` on the
``Nystroem`` features of the CV model's centres (``Cs = 1 / alphas``, the same folds and
scoring); each refits its choice on all the training rows.

Prints test log-loss, accuracy and fit time of each, and the fit-time ratios (the fixed
alpha's anchors over gramfree's fixed-alpha fit, the CV anchors and SVC over gramfree's
CV fit). Data: ``benchmarks/realdata.py`` (``get_realdata.sh`` installs it); the suite's
tuned rbf gamma.

    python benchmarks/bench_logistic.py [--quick] [--sets spam,dna,...] [--centers 1000 (0: default)]
        [--alpha 0.01] [--anchors nystroem,svc] [--svc-max-rows 20000]
        [--cv 5 --alphas 1e-3,3e-3,1e-2,3e-2,0.1] [--compare-keep] [--compare-whiten]

gramfree's rows end with its Newton steps, CG iterations, the dtype K_nM was kept in and
whether CG ran in whitened coordinates (``gramfree.solvers.logistic``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import realdata  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.kernel_approximation import Nystroem  # noqa: E402
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from gramfree import KernelClassifier, KernelClassifierCV  # noqa: E402

# The suite's larger classification sets (letter, shuttle, fashion) by --sets: fashion's
# fit alone takes minutes.
DEFAULT_SETS = ["spam", "dna", "satellite", "digits", "mnist5k"]


class SameCentres:
    """Nystroem + LogisticRegression, the Nystroem step fitted on given rows of the
    training data (all of them its components), LogisticRegression on all the data."""

    def __init__(self, gramfree_rows, nystroem, logistic):
        self.gramfree_rows, self.nystroem, self.logistic = gramfree_rows, nystroem, logistic

    def fit(self, X, y):
        # As many components as gramfree's centres (its default count with --centers 0).
        self.nystroem.set_params(n_components=len(self.gramfree_rows))
        self.nystroem.fit(X[self.gramfree_rows])
        self.logistic.fit(self.nystroem.transform(X), y)
        self.classes_ = self.logistic.classes_
        return self

    def predict_proba(self, X):
        return self.logistic.predict_proba(self.nystroem.transform(X))

    def predict(self, X):
        return self.logistic.predict(self.nystroem.transform(X))


class WithSetting:
    """A gramfree model fitted with a module's flag set to ``value`` for the fit: the
    anchors of ``--compare-keep`` (``KEEP_PRECONDITIONER = False``: the preconditioner
    rebuilt at every Newton step, as before 2026-12-04) and ``--compare-whiten``
    (``WHITEN = False``: CG in K_nM's coefficients, as before 2026-12-04)."""

    def __init__(self, model, module: str, flag: str, value):
        self.model, self.module, self.flag, self.value = model, module, flag, value

    def fit(self, X, y):
        import importlib

        module = importlib.import_module(self.module)
        saved = getattr(module, self.flag)
        setattr(module, self.flag, self.value)
        try:
            self.model.fit(X, y)
        finally:
            setattr(module, self.flag, saved)
        self.classes_, self.solver_info_ = self.model.classes_, self.model.solver_info_
        self.n_iter_ = self.model.n_iter_
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X)

    def predict(self, X):
        return self.model.predict(X)


def timed(model, X, y):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model, time.perf_counter() - start


def equal_objective(name, ours, our_seconds, anchor, anchor_seconds, X, y, alpha):
    """Both models minimise the same objective (module docstring); per training sample,
    mean log-loss + alpha / (2 n) ||coef||^2 (LogisticRegression's ``C sum loss +
    ||coef||^2 / 2`` divided by ``C n``; gramfree's ``loss_curve_``, up to the jitter its
    K_MM factor may carry and the eigenvalues Nystroem clips). Prints both final
    objectives and the time gramfree took to reach the anchor's: its Newton step's
    ``solver_info_["step_seconds"]`` plus the fit's time outside the solver. The fit-time
    ratio at equal objective compares the solvers where they stop at different
    distances from the optimum (the anchor's ``tol`` is on its gradient, gramfree's on
    the objective's suboptimality)."""
    lr = anchor.logistic
    mean_loss = log_loss(y, lr.predict_proba(anchor.nystroem.transform(X)), labels=lr.classes_)
    anchor_objective = mean_loss + alpha / (2.0 * len(y)) * float((lr.coef_**2).sum())
    curve, info = ours.loss_curve_, ours.solver_info_
    if not curve:  # no Newton step taken (the initial point met tol): nothing to time
        print(f"{name:10s}   objective: gramfree took no Newton step")
        return
    line = (
        f"{name:10s}   objective per sample: gramfree {curve[-1]:.6g}, "
        f"LogisticRegression {anchor_objective:.6g} (n_iter {int(lr.n_iter_.max())})"
    )
    reached = [j for j, value in enumerate(curve) if value <= anchor_objective]
    if reached:
        j = reached[0]
        seconds = our_seconds - info["seconds"] + info["step_seconds"][j]
        line += (
            f"; gramfree reached it at Newton step {j + 1} of {len(curve)}, {seconds:.2f} s: "
            f"fit-time ratio at equal objective {anchor_seconds / seconds:.2f}x"
        )
    else:
        line += "; gramfree's final objective is above it"
    print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: subsets, no SVC")
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument(
        "--centers", type=int, default=1000, help="M; 0: gramfree's default (n_centers=None)"
    )
    parser.add_argument("--alpha", type=float, default=1e-2, help="1 / C of both logistic models")
    parser.add_argument("--svc-c", type=float, default=10.0)
    parser.add_argument(
        "--svc-max-rows",
        type=int,
        default=20000,
        help="no SVC above this many training rows (the real-data suite's limit: its "
        "probability=True fit is five SVC fits and one more, each superlinear in n)",
    )
    parser.add_argument("--cv", type=int, default=0, help="folds of the alpha choice (0: none)")
    parser.add_argument(
        "--anchors",
        default="nystroem,svc",
        help="fixed-alpha anchors beside gramfree: nystroem, svc (comma-separated; '' none)",
    )
    parser.add_argument("--alphas", default="1e-3,3e-3,1e-2,3e-2,0.1")
    parser.add_argument(
        "--compare-keep",
        action="store_true",
        help="also fit gramfree rebuilding its preconditioner at every Newton step",
    )
    parser.add_argument(
        "--compare-whiten",
        action="store_true",
        help="also fit gramfree in K_nM's coefficients (not whitened)",
    )
    args = parser.parse_args(argv)
    alphas = [float(a) for a in args.alphas.split(",")]
    if args.cv and args.centers <= 0:
        parser.error("--cv takes --centers > 0 (its folds' centres)")
    print(f"{'set':10s} {'model':34s} {'log-loss':>9s} {'accuracy':>9s} {'fit s':>8s}")
    for name in args.sets.split(","):
        X_train, X_test, y_train, y_test, task = realdata.load(name, quick=args.quick)
        assert task == "classification", name
        gamma = realdata.CONFIG[name]["gamma"]
        m = min(args.centers, len(y_train)) if args.centers > 0 else None
        shown = m if m is not None else "default"
        anchors = {a for a in args.anchors.split(",") if a}
        models = {
            f"gramfree logistic, M={shown}": KernelClassifier(
                gamma=gamma,
                alpha=args.alpha,
                loss="logistic",
                n_centers=m,
                solver="nystrom-pcg",
                random_state=0,
            )
        }
        first = next(iter(models.values()))
        if args.compare_keep:
            models["gramfree, rebuilt every step"] = WithSetting(
                clone(first), "gramfree.solvers._kept_preconditioner", "KEEP_PRECONDITIONER", False
            )
        if args.compare_whiten:
            models["gramfree, not whitened"] = WithSetting(
                clone(first), "gramfree.solvers.logistic", "WHITEN", False
            )
        if args.compare_keep or args.compare_whiten:
            # An untimed fit first: the first fit in a process pays for loading and
            # warming (digits: the kept fit, run first, 0.50 s against 0.36 without it).
            timed(clone(first), X_train, y_train)
        # The scikit-learn anchors, which the CV fit is compared with too (not by position:
        # --compare-keep / --compare-whiten add gramfree rows before them; a review).
        fixed_anchors = []
        if "nystroem" in anchors:
            fixed_anchors.append(f"Nystroem({shown}) + LogisticRegression")
            models[fixed_anchors[-1]] = SameCentres(
                None,
                Nystroem(gamma=gamma, n_components=m, random_state=0),
                LogisticRegression(C=1.0 / args.alpha, max_iter=1000),
            )
        if "svc" in anchors and not args.quick and len(y_train) <= args.svc_max_rows:
            fixed_anchors.append(f"SVC(probability, C={args.svc_c:g})")
            models[fixed_anchors[-1]] = SVC(
                gamma=gamma, C=args.svc_c, probability=True, random_state=0
            )
        cv_models = {}
        if args.cv:
            folds = StratifiedKFold(args.cv)
            # A fold's fit sees (cv - 1) / cv of the rows: at most that many centres.
            m_fold = min(m, len(y_train) * (args.cv - 1) // args.cv - 1)
            cv_models = {
                f"gramfree logistic CV, M={m}": KernelClassifierCV(
                    loss="logistic",
                    gamma=gamma,
                    alphas=alphas,
                    n_centers=m,
                    cv=folds,
                    random_state=0,
                ),
                "GridSearchCV(gramfree logistic)": GridSearchCV(
                    KernelClassifier(
                        gamma=gamma,
                        loss="logistic",
                        n_centers=m_fold,
                        solver="nystrom-pcg",
                        random_state=0,
                    ),
                    {"alpha": alphas},
                    cv=folds,
                    scoring="neg_log_loss",
                ),
                f"Nystroem({m}) + LogisticRegressionCV": SameCentres(
                    None,
                    Nystroem(gamma=gamma, n_components=m, random_state=0),
                    LogisticRegressionCV(
                        Cs=[1.0 / a for a in alphas],
                        cv=folds,
                        scoring="neg_log_loss",
                        max_iter=1000,
                    ),
                ),
            }
        times, fitted = {}, {}
        for group in (models, cv_models):
            for label, model in group.items():
                if isinstance(model, SameCentres):  # the rows its gramfree model drew
                    model.gramfree_rows = next(iter(group.values())).center_indices_
                model, seconds = timed(model, X_train, y_train)
                times[label], fitted[label] = seconds, model
                P = model.predict_proba(X_test)
                chosen = getattr(model, "alpha_", None) or getattr(model, "best_params_", {})
                if isinstance(model, SameCentres) and hasattr(model.logistic, "C_"):
                    chosen = 1.0 / model.logistic.C_[0]
                extra = f"  alpha {chosen}" if chosen else ""
                info = getattr(model, "solver_info_", {})
                if "cg_iterations" in info:  # gramfree's Newton-PCG: its work
                    extra += (
                        f"  ({info.get('n_iter', getattr(model, 'n_iter_', '?'))} Newton steps, "
                        f"{info['cg_iterations']} CG iterations, K_nM kept: "
                        f"{info.get('stored_kernel_columns')}"
                        f"{', whitened' if info.get('whitened') else ''})"
                    )
                print(
                    f"{name:10s} {label:34s} {log_loss(y_test, P, labels=model.classes_):9.4f} "
                    f"{accuracy_score(y_test, model.predict(X_test)):9.4f} {seconds:8.2f}{extra}"
                )
        labels = list(times)
        ours = times[labels[0]]
        for label in labels[1 : len(models)]:
            print(f"{name:10s}   fit-time ratio {label} / gramfree: {times[label] / ours:.2f}x")
        for label in labels[1 : len(models)]:
            if isinstance(fitted[label], SameCentres):
                equal_objective(
                    name,
                    fitted[labels[0]],
                    times[labels[0]],
                    fitted[label],
                    times[label],
                    X_train,
                    y_train,
                    args.alpha,
                )
        if cv_models:
            ours_cv = times[labels[len(models)]]
            for label in labels[len(models) + 1 :] + fixed_anchors:
                print(
                    f"{name:10s}   fit-time ratio {label} / gramfree CV: "
                    f"{times[label] / ours_cv:.2f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

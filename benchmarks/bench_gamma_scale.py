"""gamma="scale" (1 / (n_features * X.var()), SVC's default) against gamma=None
(1 / n_features, KernelRidge's and Nystroem's default and still gramfree's) on real data
as it is read, not standardised, beside SVC() / SVR() with their defaults (gamma="scale",
C=1): held-out accuracy or R2 (25% test, stratified for classification, random_state 0)
and fit time, with gramfree's estimators at their defaults otherwise (alpha=1,
solver="auto"). The same rows standardised are the control, where X.var() is about 1 and
the two gammas nearly agree. Speed is not the point: the time ratio is the fit with
"scale" over SVC's, in this one run.

Data: benchmarks/realdata.py's raw loaders (install them with get_realdata.sh) and
scikit-learn's breast cancer and wine; training splits capped at --max-train rows.

    python benchmarks/bench_gamma_scale.py [--quick] [--max-train N] [--sets a,b]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata  # noqa: E402

from gramfree import KernelClassifier, KernelRegressor  # noqa: E402

SETS = {
    "cancer": lambda: load_breast_cancer(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "satellite": realdata.RAW["satellite"],
    "spam": realdata.RAW["spam"],
    "dna": realdata.RAW["dna"],
    "letter": realdata.RAW["letter"],
    "cps1988": realdata.RAW["cps1988"],
    "randhie": realdata.RAW["randhie"],
}
REGRESSION = {"cps1988", "randhie"}


def _split(name: str, max_train: int, max_test: int):
    X, y = SETS[name]()
    regression = name in REGRESSION
    if regression:  # R2 is unchanged by an affine map of the target: SVR's epsilon is not
        y = (y - y.mean()) / y.std()
    Xtr, Xte, ytr, yte = train_test_split(
        X,
        y,
        train_size=min(max_train, int(0.75 * len(X))),
        test_size=min(max_test, len(X) - int(0.75 * len(X))),
        random_state=0,
        stratify=None if regression else y,
    )
    return Xtr, Xte, ytr, yte, regression


def _run(model, Xtr, Xte, ytr, yte) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(Xtr, ytr)
        seconds = time.perf_counter() - start
    return model.score(Xte, yte), seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 training rows, 3 sets (CI)")
    ap.add_argument("--max-train", type=int, default=5000)
    ap.add_argument("--sets", default=",".join(SETS))
    args = ap.parse_args(argv)
    names = ["cancer", "wine", "cps1988"] if args.quick else args.sets.split(",")
    max_train = 300 if args.quick else args.max_train
    print(
        "| data | rows | X.var() | scale gamma | None: score | scale: score | SVC/SVR: score "
        "| scale time / SVC's |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        Xtr, Xte, ytr, yte, regression = _split(name, max_train, max_train // 3)
        for scaled in (False, True):
            if scaled:
                scaler = StandardScaler().fit(Xtr)
                Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
            ours = KernelRegressor if regression else KernelClassifier
            anchor = SVR() if regression else SVC()
            none_score, _ = _run(ours(random_state=0), Xtr, Xte, ytr, yte)
            scaled_model = ours(gamma="scale", random_state=0)
            scale_score, scale_time = _run(scaled_model, Xtr, Xte, ytr, yte)
            anchor_score, anchor_time = _run(anchor, Xtr, Xte, ytr, yte)
            label = f"{name} ({'standardised' if scaled else 'raw'})"
            print(
                f"| {label} | {len(Xtr)} | {np.var(Xtr):.3g} | {scaled_model.kernel_.gamma:.3g} "
                f"| {none_score:.3f} | {scale_score:.3f} | {anchor_score:.3f} "
                f"| {scale_time / anchor_time:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

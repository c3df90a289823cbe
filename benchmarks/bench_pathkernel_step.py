"""The path-kernel estimators' learning_rate="auto" against the fixed 0.05 it replaced as
the default, on scikit-learn's bundled real data (diabetes, breast cancer, wine, digits,
iris), raw and standardised, for three activations: the step taken, the training loss at
the start and after the steps, the held-out score (R2 or accuracy on a stratified 30%),
and divergence (an error) or warnings. Not a speed benchmark: both fits take the same
steps; the last column is the auto fit's time over the fixed one's (the estimate, and any
retraining after a halving), in this one run.

    python benchmarks/bench_pathkernel_step.py [--quick] [--activations tanh,relu,gelu]
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from gramfree import PathKernelClassifier, PathKernelRegressor

SETS = {
    "diabetes": load_diabetes,
    "cancer": load_breast_cancer,
    "wine": load_wine,
    "digits": load_digits,
    "iris": load_iris,
}


def _split(name: str, scaled: bool):
    X, y = SETS[name](return_X_y=True)
    regression = name == "diabetes"
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=None if regression else y
    )
    if scaled:
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        if regression:
            mu, sd = ytr.mean(), ytr.std()
            ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
    return Xtr, Xte, ytr, yte, regression


def _fit(estimator, Xtr, Xte, ytr, yte) -> tuple[str, float]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            model = estimator.fit(Xtr, ytr)
        except ValueError as exc:
            return f"error: {str(exc)[:40]}", time.perf_counter() - start
        seconds = time.perf_counter() - start
    flag = " (warned)" if caught else ""
    return (
        f"{model.learning_rate_:.3g}: {model.loss_curve_[0]:.3g} -> {model.loss_:.3g}, "
        f"score {model.score(Xte, yte):.3f}{flag}",
        seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="iris and wine, 100 steps")
    parser.add_argument("--activations", default="tanh,relu,gelu")
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    names = ["wine", "iris"] if args.quick else list(SETS)
    steps = 100 if args.quick else args.steps
    print(
        "| set | features | activation | 0.05: step, loss start -> end, score "
        "| auto: step, loss start -> end, score | time auto / 0.05 |"
    )
    print("|---|---|---|---|---|---:|")
    for name in names:
        for scaled in (False, True):
            Xtr, Xte, ytr, yte, regression = _split(name, scaled)
            make = PathKernelRegressor if regression else PathKernelClassifier
            for activation in args.activations.split(","):
                cells, times = [], []
                for lr in (0.05, "auto"):
                    estimator = make(
                        activation=activation, learning_rate=lr, n_steps=steps, random_state=0
                    )
                    cell, seconds = _fit(estimator, Xtr, Xte, ytr, yte)
                    cells.append(cell)
                    times.append(seconds)
                print(
                    f"| {name} | {'standardised' if scaled else 'raw'} | {activation} | "
                    f"{cells[0]} | {cells[1]} | {times[1] / times[0]:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Fits on float32 data keep float32 coefficients and predict in float32: where a small
alpha makes the coefficients large and cancelling, their rounding moves the predictions,
and the fit says so (RuntimeWarning) instead of silently flipping labels (breast cancer,
alpha 1e-6: 88 of 569 training labels other than the float64 fit's, found by a review)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.preprocessing import StandardScaler

from gramfree import KernelClassifier, KernelRegressor


def _cancellation_warnings(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    return [w for w in caught if "cancel in the predictions" in str(w.message)]


@pytest.mark.parametrize(
    "make, load, alpha",
    [
        pytest.param(
            lambda a: KernelClassifier(gamma=0.01 / 30, alpha=a),
            load_breast_cancer,
            1e-6,
            id="direct",
        ),
        pytest.param(
            lambda a: KernelRegressor(
                gamma=0.001, alpha=a, solver="nystrom-direct", n_centers=400, random_state=0
            ),
            load_diabetes,
            1e-6,
            id="nystrom-direct",
        ),
    ],
)
def test_float32_cancellation_warns_where_predictions_move(make, load, alpha):
    X, y = load(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    caught = _cancellation_warnings(make(alpha), X.astype(np.float32), y)
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning)
    # the estimate is real: float32's predictions differ from the float64 fit's by a
    # visible share of the targets' scale
    f32 = make(alpha).fit(X.astype(np.float32), y)
    f64 = make(alpha).fit(X, y)
    out = "decision_function" if hasattr(f32, "decision_function") else "predict"
    gap = np.abs(getattr(f32, out)(X.astype(np.float32)) - getattr(f64, out)(X)).max()
    assert gap > 0.01 * np.sqrt(np.mean(np.square(getattr(f64, out)(X))))
    # a ridge that keeps the coefficients moderate: no warning, and none in float64
    assert not _cancellation_warnings(make(0.1), X.astype(np.float32), y)
    assert not _cancellation_warnings(make(alpha), X, y)


def test_cv_estimators_warn_as_the_plain_ones():
    """KernelClassifierCV on float32 data keeps float32 coefficients as the plain
    estimators do: where the chosen alpha makes them cancel it warns (found by a review:
    digits, gamma 0.003 / d, alpha_ 1e-6, 1269 of 1797 training labels other than the
    float64 model's, without a word); on float64 data, nothing."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from gramfree import KernelClassifierCV

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    params = dict(gamma=0.003 / 64, alphas=[1e-6])
    with pytest.warns(RuntimeWarning, match="cancel in the predictions"):
        m32 = KernelClassifierCV(**params).fit(X.astype(np.float32), y)
    m64 = KernelClassifierCV(**params).fit(X, y)
    moved = np.mean(m32.predict(X.astype(np.float32)) != m64.predict(X))
    assert moved > 0.05  # the warning is about a real change
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        KernelClassifierCV(**params).fit(X, y)


def test_logistic_float32_cancellation_warns_where_probabilities_move():
    """loss="logistic" had no such check (a review: diabetes, median split, alpha 1e-6,
    probabilities 0.19 away from the float64 fit's and 19 of 442 labels moved, without a
    word). Reference: the same fit on float64 data."""
    X, t = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (t > np.median(t)).astype(int)
    params = dict(loss="logistic", gamma=0.01 / X.shape[1], solver="direct")
    with pytest.warns(RuntimeWarning, match="cancel in the logits"):
        small = KernelClassifier(alpha=1e-6, **params).fit(X.astype(np.float32), y)
    exact = KernelClassifier(alpha=1e-6, **params).fit(X, y)
    moved = np.abs(small.predict_proba(X.astype(np.float32)) - exact.predict_proba(X)).max()
    assert moved > 0.05  # what the warning is about
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        KernelClassifier(alpha=1e-2, **params).fit(X.astype(np.float32), y)

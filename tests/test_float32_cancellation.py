"""Fits on float32 data keep float32 coefficients and predict in float32: where a small
alpha makes the coefficients large and cancelling, their rounding moves the predictions,
and the fit says so (RuntimeWarning) instead of silently flipping labels (breast cancer,
alpha 1e-6: 88 of 569 training labels other than the float64 fit's, found by a review).
Float64 fits say the same (LinAlgWarning) where float64's rounding does it: unscaled
linear kernels at tiny alpha."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import LinAlgWarning
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
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


def _primal_ridge(X, y, centers, alpha):
    """The Nystrom model of the linear kernel, exactly: ridge on X's coordinates in the span
    of the centres (an orthonormal basis Q), by least squares on the stacked system (no
    normal equations), in float64."""
    Q, _ = np.linalg.qr(centers.T)
    A = X @ Q
    stacked = np.vstack([A, np.sqrt(alpha) * np.eye(A.shape[1])])
    u = np.linalg.lstsq(stacked, np.concatenate([y, np.zeros(A.shape[1])]), rcond=None)[0]
    return A @ u


@pytest.mark.parametrize(
    "solver, load, alpha, n_centers",
    [
        ("nystrom-pcg", load_wine, 1e-9, 40),  # 2.2% off at tol 1e-8, converged
    ],
)
def test_float64_cancellation_warns_where_predictions_move(solver, load, alpha, n_centers):
    """Unscaled data, a linear kernel and a tiny alpha: the coefficients grow along K_MM's
    near-null directions and cancel; the predictions missed the model's optimum (the
    primal ridge in the centres' span) by 2-28% of the targets' scale, without a word,
    where the direct solver warns."""
    X, y = load(return_X_y=True)
    y = y.astype(np.float64)

    def make(a):
        return KernelRegressor(
            kernel="linear",
            alpha=a,
            solver=solver,
            n_centers=n_centers,
            random_state=0,
            tol=1e-8,
            max_iter=300,
            n_jobs=1,
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make(alpha).fit(X, y)
    said = [w for w in caught if "cancel in the predictions" in str(w.message)]
    assert len(said) == 1 and issubclass(said[0].category, LinAlgWarning)
    assert f"alpha={alpha:g}" in str(said[0].message)
    # the warning is real: the predictions are off the model's optimum
    rms = np.sqrt(np.mean(y**2))
    exact = _primal_ridge(X, y, model.centers_, alpha)
    assert np.abs(model.predict(X) - exact).max() > 0.01 * rms
    # a moderate alpha: accurate and silent
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make(1e-2).fit(X, y)
    assert not [w for w in caught if "cancel in" in str(w.message)]


@pytest.mark.parametrize("alpha", [1e-11, 1e-7])
def test_nystrom_direct_below_the_gram_s_rounding_reaches_the_optimum(alpha):
    """Unscaled breast cancer, a linear kernel, 100 centres: the whitened Gram's rounding
    (eps lambda_max / alpha: 2e4 at 1e-11) exceeds alpha, and its solve was 28% of the
    targets' scale off the model's optimum, in silence (warned since). The QR of the rows
    solves it instead, within K_MM's kept range (eigenvalues above eps M its largest)."""
    X, y = load_breast_cancer(return_X_y=True)
    y = y.astype(np.float64)
    model = KernelRegressor(
        kernel="linear", alpha=alpha, solver="nystrom-direct", n_centers=100, random_state=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    assert model.solver_info_["pass"] == "graded QR"
    assert model.solver_info_["solve_resolution"] > 1.0
    assert not [w for w in caught if "cancel in" in str(w.message)]
    rms = np.sqrt(np.mean(y**2))
    exact = _primal_ridge(X, y, model.centers_, alpha)
    assert np.abs(model.predict(X) - exact).max() < 1e-4 * rms


def test_logistic_cv_refit_says_what_the_plain_classifier_says():
    """KernelClassifierCV(loss="logistic") refits at the chosen alpha without the check the
    plain classifier runs: float32 iris, a linear kernel at alpha 1e-10, logits 27 apart
    from their float64 values, in silence (a review)."""
    from sklearn.datasets import load_iris

    from gramfree import KernelClassifierCV

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    params = dict(loss="logistic", kernel="linear", random_state=0)
    for model in (
        KernelClassifier(alpha=1e-10, **params),
        KernelClassifierCV(alphas=[1e-10], **params),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X, y)
        said = [w for w in caught if "cancel in the logits" in str(w.message)]
        assert len(said) == 1 and issubclass(said[0].category, RuntimeWarning), type(model)

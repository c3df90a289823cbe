"""``kernel_precision="float32"``: the iterative solvers' kernel products in float32 on
float64 data, against the same fits in float64 on real data (digits; a narrow and a wide
kernel); the one-pass Nystrom solver takes its kernel values in float32 (its Gram stays
float64); the dense direct solver ignores it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

from gramfree import KernelClassifier, KernelRegressor


def _digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:1000], X[1000:1400], y[:1000], y[1000:1400]


@pytest.mark.parametrize("gamma", [0.5, 0.02], ids=["narrow", "wide"])
@pytest.mark.parametrize("solver", ["nystrom-pcg", "nystrom-direct", "eigenpro"])
def test_float32_products_match_float64(solver, gamma):
    Xtr, Xte, ytr, yte = _digits()
    params = dict(gamma=gamma, alpha=1.0, solver=solver, random_state=0, tol=1e-6)
    if solver == "nystrom-pcg":
        params.update(n_centers=400, max_iter=300)
    if solver == "nystrom-direct":
        params.update(n_centers=400)
    f64 = KernelClassifier(**params).fit(Xtr, ytr)
    f32 = KernelClassifier(kernel_precision="float32", **params).fit(Xtr, ytr)
    assert f32.solver_info_["kernel_dtype"] == "float32"
    assert f64.solver_info_["kernel_dtype"] == "float64"
    # The model stays in the data's precision.
    assert f32.dual_coef_.dtype == np.float64 and f32.centers_.dtype == np.float64
    d64, d32 = f64.decision_function(Xte), f32.decision_function(Xte)
    # float32 products: about 1e-6 relative per entry, accumulated over the fit.
    np.testing.assert_allclose(d32, d64, atol=2e-3 * np.abs(d64).max())
    assert abs(f32.score(Xte, yte) - f64.score(Xte, yte)) <= 0.005
    assert f32.loss_curve_[-1] == pytest.approx(f64.loss_curve_[-1], rel=1e-3)


def test_direct_solver_ignores_it():
    Xtr, _, ytr, _ = _digits()
    params = dict(gamma=0.05, alpha=1.0, solver="direct", random_state=0)
    a = KernelClassifier(**params).fit(Xtr, ytr)
    b = KernelClassifier(kernel_precision="float32", **params).fit(Xtr, ytr)
    np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)


def test_invalid_value_is_rejected():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InvalidParameterError, match="kernel_precision"):
        KernelRegressor(kernel_precision="float16").fit(X, X[:, 0])

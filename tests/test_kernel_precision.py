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


@pytest.mark.parametrize("solver", ["direct", "auto"])
def test_direct_solver_ignores_it(solver):
    """And says so: solver_info_ reported float32 products for a fit that ran in float64
    (a review), also where auto takes direct (1000 rows)."""
    Xtr, _, ytr, _ = _digits()
    params = dict(gamma=0.05, alpha=1.0, solver=solver, random_state=0)
    a = KernelClassifier(**params).fit(Xtr, ytr)
    b = KernelClassifier(kernel_precision="float32", **params).fit(Xtr, ytr)
    assert b.solver_info_.get("solver", solver) == "direct"
    np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)
    assert b.solver_info_["kernel_dtype"] == "float64"


def test_invalid_value_is_rejected():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InvalidParameterError, match="kernel_precision"):
        KernelRegressor(kernel_precision="float16").fit(X, X[:, 0])


def test_auto_settles_on_the_model_s_own_predictions(monkeypatch):
    """auto's centre-growing loop compares the predictions of successive sizes on a probe
    of rows; with kernel_precision="float32" it computed them with float32 products,
    whose sums of a one-pass solve's cancelling coefficients moved the probe by 24% of the
    targets' variance between two sizes that agreed to 1e-4 (diamonds: the loop grew to
    8000 centres and took 6x as long). The probe is now what predict computes: float64
    for float64 data. (The loop is made to run on digits by lowering its thresholds.)"""
    from sklearn.metrics.pairwise import rbf_kernel

    import gramfree.solvers.auto as auto

    monkeypatch.setattr(auto, "DIRECT_ALWAYS", 100)
    monkeypatch.setattr(auto, "MIN_CENTERS", 100)
    seen = []
    settled = auto._settled

    def spy(before, after, Y, classify):
        seen.append(after.copy())
        return settled(before, after, Y, classify)

    monkeypatch.setattr(auto, "_settled", spy)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = KernelClassifier(
        kernel_precision="float32", gamma=0.002, alpha=0.01, random_state=0
    ).fit(X, y)
    assert model.solver_info_["auto"]["tried"][-1]["n_centers"] == len(model.centers_)
    assert seen, "the loop compared no sizes"
    reference = rbf_kernel(X, model.centers_, gamma=0.002) @ model.dual_coef_
    np.testing.assert_allclose(seen[-1], reference, atol=1e-10 * np.abs(reference).max())


def test_float32_data_with_float64_products_factor_in_float64():
    """Float32 X with kernel_precision="float64": the preconditioner followed X's dtype, and
    its float32 Cholesky of a K_MM made singular by repeated centres took a jitter of 1e-6,
    which enters the penalty; with float64 products no refinement measures the true one,
    so the fit solved another objective (cps1988: predictions 0.9% off the float64 fit, no
    warning; a review). Here: diabetes with 40 of 100 centres repeated, 0.49% off."""
    import warnings

    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    noise = 0.1 * np.random.default_rng(0).normal(size=100)
    X, y = np.vstack([X, X[:100]]), np.r_[y, y[:100] + noise]  # rows 442.. repeat 0..99
    X32 = X.astype(np.float32)
    centres = np.r_[np.arange(60), np.arange(442, 482)]  # 442..481 repeat 0..39
    params = dict(solver="nystrom-pcg", centers=centres, gamma=0.1, alpha=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed = KernelRegressor(kernel_precision="float64", **params).fit(X32, y)
    wide = KernelRegressor(**params).fit(X32.astype(np.float64), y)
    assert mixed.solver_info_["precond_dtype"] == "float64"
    assert mixed.solver_info_["jitter"] == wide.solver_info_["jitter"]
    reference = wide.predict(X32.astype(np.float64))
    got = mixed.predict(X32).astype(np.float64)  # float32 coefficients and products
    assert np.abs(got - reference).max() <= 1e-3 * np.abs(reference).max()

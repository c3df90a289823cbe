"""Rows of weight zero are no data (scikit-learn's convention: weight 0 is the row
removed), so they take no centre's place: the centres are drawn among weighted rows, and
a fit with zero-weight rows appended is the fit without them (same centres, same
function), for every estimator that draws centres."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from gramfree import KernelClassifier, KernelRegressor, KernelRegressorCV
from gramfree.solvers._common import center_rows


def _data():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    # 150 real rows, then 100 rows of weight zero far from them (as centres they would
    # change the model's function space)
    junk = np.random.default_rng(1).normal(3.0, 1.0, size=(100, X.shape[1]))
    Xa = np.vstack([X[:150], junk])
    ya = np.r_[y[:150], np.zeros(100)]
    w = np.r_[np.ones(150), np.zeros(100)]
    return X[:150], y[:150], Xa, ya, w


ESTIMATORS = [
    pytest.param(lambda: KernelRegressor(gamma=0.1, solver="nystrom-pcg", n_centers=40), id="pcg"),
    pytest.param(
        lambda: KernelRegressor(gamma=0.1, solver="nystrom-direct", n_centers=40), id="one-pass"
    ),
    pytest.param(lambda: KernelRegressor(gamma=0.1, solver="auto", n_centers=40), id="auto"),
    pytest.param(lambda: KernelRegressorCV(gamma=0.1, n_centers=40), id="cv"),
    # EigenPro 3 drew its batches among every row: predictions 1.1% apart (a review).
    pytest.param(
        lambda: KernelRegressor(gamma=0.1, solver="eigenpro", n_centers=40, max_iter=8),
        id="eigenpro3",
    ),
]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_zero_weight_rows_appended_change_nothing(make):
    X, y, Xa, ya, w = _data()
    alone = make().set_params(random_state=0).fit(X, y)
    weighted = make().set_params(random_state=0).fit(Xa, ya, sample_weight=w)
    np.testing.assert_array_equal(weighted.centers_, alone.centers_)
    np.testing.assert_allclose(weighted.predict(X), alone.predict(X), rtol=0, atol=1e-8)


def test_logistic_centres_drawn_among_weighted_rows():
    X, y, Xa, ya, w = _data()
    labels = (ya > 0).astype(int)
    clf = KernelClassifier(gamma=0.1, loss="logistic", n_centers=40, random_state=0)
    clf.fit(Xa, labels, sample_weight=w)
    assert clf.center_indices_.max() < 150
    alone = KernelClassifier(gamma=0.1, loss="logistic", n_centers=40, random_state=0)
    alone.fit(X, labels[:150])
    np.testing.assert_array_equal(clf.center_indices_, alone.center_indices_)
    np.testing.assert_allclose(clf.predict_proba(X), alone.predict_proba(X), atol=1e-6)


def test_center_rows():
    rng = np.random.default_rng(0)
    w = np.array([0.0, 1.0, 0.0, 2.0, 0.5, 0.0])
    for m in range(1, 7):
        idx = center_rows(np.random.default_rng(m), 6, m, w)
        assert np.all(w[idx] > 0) and np.all(np.diff(idx) > 0)
        assert idx.size == min(m, 3)
    # Without zero weights: the plain draw over all rows, the same stream as before.
    plain = center_rows(np.random.default_rng(4), 10, 4, np.ones(10))
    np.testing.assert_array_equal(
        plain, np.sort(np.random.default_rng(4).choice(10, size=4, replace=False))
    )
    np.testing.assert_array_equal(center_rows(rng, 5, 9, None), np.arange(5))


@pytest.mark.parametrize("solver", ["nystrom-pcg", "nystrom-direct"])
def test_growing_centres_stop_at_every_weighted_row(solver):
    """A Nystrom solver without n_centers grows the centres up to every row; with zero
    weights that is every weighted row: the loop stops there, and center_indices_ names
    exactly the rows of centers_."""
    X, y, Xa, ya, w = _data()
    model = KernelRegressor(gamma=0.1, solver=solver, random_state=0).fit(Xa, ya, sample_weight=w)
    assert model.centers_.shape[0] == 150
    np.testing.assert_array_equal(model.center_indices_, np.arange(150))
    np.testing.assert_array_equal(Xa[model.center_indices_], model.centers_)
    steps = model.solver_info_["auto"]["steps"]
    assert steps[-1].endswith("all 150 rows of positive weight as centres"), steps


def _spread(X, y, extra, rng):
    """X, y with ``extra`` zero-weight rows inserted between them at random places (copies
    of real rows shifted far away, labels drawn from y), the weights, and the real rows'
    positions (in their order)."""
    n = len(y)
    real = np.sort(rng.choice(n + extra, size=n, replace=False))
    Xa = X[rng.integers(0, n, n + extra)] + 5.0
    ya = rng.choice(y, n + extra)
    Xa[real], ya[real] = X, y
    w = np.zeros(n + extra)
    w[real] = 1.0
    return Xa, ya, w, real


@pytest.mark.parametrize(
    "load, centres",
    [
        pytest.param(load_breast_cancer, 40, id="binary"),
        pytest.param(load_wine, 20, id="multinomial"),
    ],
)
def test_logistic_zero_weight_rows_change_no_decision(load, centres):
    """Rows of weight zero, inserted anywhere, change nothing in a logistic fit: not the
    centres, not the Newton and CG iterations, not the function. The sizes make the fit
    depend on its row count (more than 16/3 rows per centre: CG's Hessian from a sample of
    the rows; the centres' preconditioner scaled by rows per centre), so a fit that counted
    the zero-weight rows would take other iterations and land elsewhere within tol."""
    X, y = load(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    Xa, ya, w, real = _spread(X, y, 3 * len(y), np.random.default_rng(2))
    make = lambda: KernelClassifier(  # noqa: E731
        gamma=0.05, alpha=1e-3, loss="logistic", n_centers=centres, random_state=0
    )
    alone = make().fit(X, y)
    weighted = make().fit(Xa, ya, sample_weight=w)
    np.testing.assert_array_equal(real[alone.center_indices_], weighted.center_indices_)
    assert weighted.solver_info_["cg_iterations"] == alone.solver_info_["cg_iterations"]
    assert weighted.n_iter_ == alone.n_iter_
    assert weighted.solver_info_["hessian_rows"] == alone.solver_info_["hessian_rows"]
    np.testing.assert_allclose(
        weighted.predict_proba(X), alone.predict_proba(X), rtol=0, atol=1e-12
    )

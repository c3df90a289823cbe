"""The ``centers`` parameter: the model's centres given as points or as row indices."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler

import gramfree
from gramfree import KernelClassifier, KernelRegressor


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X[:350], y[:350], X[350:], y[350:]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # eigenpro
@pytest.mark.parametrize("solver", ["auto", "nystrom-pcg", "nystrom-direct", "eigenpro"])
def test_indices_equal_the_same_rows_as_points(diabetes, solver):
    X, y, Xt, _ = diabetes
    idx = np.random.default_rng(0).choice(len(X), size=60, replace=False)
    params = dict(
        gamma=0.05,
        alpha=1e-2,
        solver=solver,
        random_state=0,
        tol=1e-4 if solver == "eigenpro" else 1e-10,
    )
    by_rows = KernelRegressor(centers=idx, **params).fit(X, y)
    by_points = KernelRegressor(centers=X[idx], **params).fit(X, y)
    np.testing.assert_allclose(by_rows.predict(Xt), by_points.predict(Xt), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(by_rows.centers_, X[idx])
    np.testing.assert_array_equal(by_rows.center_indices_, idx)
    np.testing.assert_array_equal(by_rows.center_targets_, y[idx])
    assert not hasattr(by_points, "center_indices_")
    assert not hasattr(by_points, "center_targets_")
    if solver == "auto":
        assert by_rows.solver_ in ("nystrom-pcg", "nystrom-direct")


def test_indices_equal_the_n_centers_draw(diabetes):
    """The n_centers draw of rows, given as those rows: the same model."""
    X, y, Xt, _ = diabetes
    drawn = KernelRegressor(
        gamma=0.05, alpha=1e-2, solver="nystrom-direct", n_centers=80, random_state=3
    ).fit(X, y)
    given = KernelRegressor(
        gamma=0.05, alpha=1e-2, solver="nystrom-direct", centers=drawn.center_indices_
    ).fit(X, y)
    np.testing.assert_allclose(given.predict(Xt), drawn.predict(Xt), rtol=1e-10, atol=1e-10)


def test_kmeans_centres_fit_diabetes(diabetes):
    X, y, Xt, yt = diabetes
    km = KMeans(n_clusters=40, n_init=3, random_state=0).fit(X).cluster_centers_
    before = km.copy()
    model = KernelRegressor(gamma=0.05, alpha=1e-1, centers=km).fit(X, y)
    np.testing.assert_array_equal(km, before)  # the user's array is not modified
    assert model.centers_ is not km and model.n_centers_ == 40
    assert model.score(Xt, yt) > 0.3
    ex = model.explain(Xt[:2])
    assert ex.index == "centre" and ex.supporting_labels is None


def test_refit_from_rows_to_points_drops_the_row_records(diabetes):
    X, y, _, _ = diabetes
    model = KernelRegressor(gamma=0.05, centers=np.arange(30)).fit(X, y)
    assert hasattr(model, "center_targets_")
    model.set_params(centers=X[:30] + 0.1).fit(X, y)
    assert not hasattr(model, "center_indices_") and not hasattr(model, "center_targets_")


def test_logistic_loss_with_centres():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    idx = np.random.default_rng(1).choice(len(X), size=100, replace=False)
    params = dict(gamma=0.02, alpha=1e-2, loss="logistic", tol=1e-10)
    idx = idx[idx < 450]
    by_rows = KernelClassifier(centers=idx, **params).fit(X[:450], y[:450])
    by_points = KernelClassifier(centers=X[idx], **params).fit(X[:450], y[:450])
    assert by_rows.solver_ == "newton-pcg" and by_rows.n_centers_ == len(idx)
    np.testing.assert_array_equal(by_rows.center_indices_, idx)
    assert not hasattr(by_points, "center_indices_")
    # the preconditioner differs (nearest rows' curvature), the optimum does not
    np.testing.assert_allclose(
        by_points.predict_proba(X[450:]), by_rows.predict_proba(X[450:]), atol=1e-6
    )
    assert by_rows.score(X[450:], y[450:]) > 0.9
    with pytest.raises(ValueError, match="centers.*direct"):
        KernelClassifier(centers=idx, solver="direct", **params).fit(X[:450], y[:450])


def test_classifier_digits_clone_and_save(tmp_path):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    km = KMeans(n_clusters=100, n_init=1, random_state=0).fit(X[:1200]).cluster_centers_
    model = KernelClassifier(gamma=0.02, alpha=1e-3, centers=km).fit(X[:1200], y[:1200])
    assert model.score(X[1200:], y[1200:]) > 0.9
    twin = clone(model)
    np.testing.assert_array_equal(twin.get_params()["centers"], km)  # clone copies it
    path = tmp_path / "m.gramfree"
    model.save(path)
    loaded = gramfree.load(path)
    assert loaded.get_params()["centers"] is None  # stored as None: centres are centers_
    np.testing.assert_array_equal(loaded.predict(X[1200:]), model.predict(X[1200:]))
    np.testing.assert_array_equal(loaded.centers_, model.centers_)
    assert not hasattr(loaded, "center_indices_")
    rows = KernelClassifier(gamma=0.02, alpha=1e-3, centers=np.arange(0, 1200, 12))
    rows.fit(X[:1200], y[:1200]).save(path)
    back = gramfree.load(path)
    np.testing.assert_array_equal(back.center_indices_, rows.center_indices_)
    np.testing.assert_array_equal(
        back.decision_function(X[1200:]), rows.decision_function(X[1200:])
    )


def test_compress_a_model_with_centres(diabetes):
    X, y, _, _ = diabetes
    model = KernelRegressor(gamma=0.05, alpha=1e-2, centers=np.arange(0, 300, 3)).fit(X, y)
    small, change = model.compress(50, X, y)
    assert small.n_centers_ == 50 and small.centers is None and change < 1


@pytest.mark.parametrize(
    "centers, message",
    [
        (np.zeros((3, 4)), "centers: has 4 features, X has 10"),
        (np.array([[np.nan] * 10]), "centers"),
        (np.array([0, 400]), r"centers: row indices must be in \[0, 349\]"),
        (np.array([-1, 2]), "centers: row indices"),
        (np.array([3, 3]), "centers: row indices must be distinct"),
        (np.array([], dtype=int), "centers: is empty"),
        (np.zeros((0, 10)), "centers: is empty"),
        (np.array([0.0, 1.0]), "centers: a 1-d array must hold integer row indices"),
        (np.array([True, False]), "centers: a 1-d array must hold integer row indices"),
        # check_array's message for these named no argument (a review)
        (np.zeros((2, 2, 10)), "centers: expected a 2-d array .* got a 3-d array"),
    ],
)
def test_bad_centres(diabetes, centers, message):
    X, y, _, _ = diabetes
    with pytest.raises(ValueError, match=message):
        KernelRegressor(centers=centers).fit(X, y)


@pytest.mark.parametrize("solver", ["nystrom-pcg", "nystrom-direct"])
def test_centres_beyond_the_data_dtype_or_the_kernel_are_named(diabetes, solver):
    """A float64 centre beyond float32's range for float32 X, and a centre on which the
    polynomial kernel overflows, failed inside the solvers as "Z: contains NaN or
    infinity", "X: ..." or "A: ..." (a review)."""
    X, y, _, _ = diabetes
    far = np.array(X[:30], dtype=np.float64)
    far[20] = 1e39
    with pytest.raises(ValueError, match="centers: values beyond float32's range"):
        KernelRegressor(centers=far, solver=solver).fit(X.astype(np.float32), y)
    far[20] = 1e200
    with pytest.raises(ValueError, match="centers: the poly kernel overflows float64 .*row 20"):
        KernelRegressor(centers=far, kernel="poly", solver=solver).fit(X, y)


def test_centres_and_n_centers_or_direct_refused(diabetes):
    X, y, _, _ = diabetes
    with pytest.raises(ValueError, match="centers and n_centers"):
        KernelRegressor(centers=np.arange(5), n_centers=5).fit(X, y)
    with pytest.raises(ValueError, match="centers.*direct"):
        KernelRegressor(centers=np.arange(5), solver="direct").fit(X, y)

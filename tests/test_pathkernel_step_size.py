"""learning_rate="auto" for the path-kernel estimators: the curvature it is built on against
a float64 Hessian, and what it changes on real data (gramfree/pathkernel/step_size.py)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import gramfree
from gramfree import PathKernelClassifier, PathKernelRegressor
from gramfree.pathkernel import estimators as pk_estimators
from gramfree.pathkernel import reference as ref
from gramfree.pathkernel.network import Network
from gramfree.pathkernel.step_size import (
    AUTO_HALVINGS,
    hessian_vector_product,
    largest_curvature,
)


def _reference_hessian(net: ref.ReferenceMLP, w, X, Y, weights) -> np.ndarray:
    """The Hessian of the weighted mean training loss in float64, by central differences
    of the numpy reference's gradient (written from the maths, not the native code)."""

    def gradient(w):
        f, J = net.jacobian(w, X)
        G = np.einsum("ro,rop->rp", net.loss_derivative(f, Y), J)
        return weights @ G / weights.sum()

    h = 1e-5
    H = np.empty((w.size, w.size))
    for j in range(w.size):
        e = np.zeros(w.size)
        e[j] = h
        H[:, j] = (gradient(w + e) - gradient(w - e)) / (2 * h)
    return (H + H.T) / 2


def _diabetes_raw():
    X, y = load_diabetes(return_X_y=True)
    return X[:60], y[:60, None].astype(float), "squared"


def _cancer_raw():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:60, :5], y[:60, None].astype(float), "logistic"


def _iris_std():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)[::3]
    return X, np.eye(3)[y[::3]], "softmax"


@pytest.mark.parametrize("data", [_diabetes_raw, _cancer_raw, _iris_std])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "gelu", "relu"])
@pytest.mark.parametrize("weighted", [False, True])
def test_curvature_is_the_largest_eigenvalue_of_the_float64_hessian(data, activation, weighted):
    X, Y, loss = data()
    net = Network((X.shape[1], 3, Y.shape[1]), activation, loss)
    w0 = net.initial_params(np.random.RandomState(0))
    weights = np.random.default_rng(1).integers(1, 4, len(X)).astype(float) if weighted else None
    total = len(X) if weights is None else weights.sum()
    rng = np.random.default_rng(0)
    lam = largest_curvature(net, w0, X, Y, weights, scale=1.0 / total, rng=rng)
    H = _reference_hessian(
        ref.ReferenceMLP(net.sizes, activation, loss),
        w0,
        X,
        Y,
        np.ones(len(X)) if weights is None else weights,
    )
    eigenvalues = np.linalg.eigvalsh(H)
    # Lanczos' Ritz values lie inside the spectrum: from below, to within 1% here.
    assert 0.99 * eigenvalues[-1] <= lam <= eigenvalues[-1] * (1 + 1e-6)
    # The product itself, against the reference Hessian's.
    v = np.random.default_rng(2).standard_normal(w0.size)
    Hv = hessian_vector_product(net, w0, X, Y, weights, v) / total
    np.testing.assert_allclose(Hv, H @ v, rtol=0, atol=1e-6 * np.abs(H @ v).max())


def test_curvature_of_a_linear_model_is_the_closed_forms():
    """No hidden layer, squared loss: the Hessian is ``X1^T W X1 / sum(w)`` per output
    (X1 = [X, 1]), with no finite difference anywhere."""
    X, Y, _ = _diabetes_raw()
    Y = np.column_stack([Y[:, 0], -Y[:, 0]])  # two outputs: the same block twice
    weights = np.random.default_rng(0).uniform(0, 3, len(X))
    net = Network((X.shape[1], 2), "identity", "squared")
    w0 = net.initial_params(np.random.RandomState(0))
    X1 = np.column_stack([X, np.ones(len(X))])
    top = np.linalg.eigvalsh(X1.T @ (weights[:, None] * X1) / weights.sum())[-1]
    lam = largest_curvature(
        net, w0, X, Y, weights, scale=1.0 / weights.sum(), rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(lam, top, rtol=1e-6)


def test_negative_curvature_does_not_shrink_the_step():
    """The step follows the largest eigenvalue, not the largest in magnitude: raw diabetes
    with gelu has a negative eigenvalue beyond the largest positive one at the start."""
    X, y = load_diabetes(return_X_y=True)
    X, Y = X[::4, :6], y[::4, None].astype(float)
    net = Network((6, 3, 1), "gelu", "squared")
    w0 = net.initial_params(np.random.RandomState(0))
    H = _reference_hessian(
        ref.ReferenceMLP(net.sizes, "gelu", "squared"), w0, X, Y, np.ones(len(X))
    )
    eigenvalues = np.linalg.eigvalsh(H)
    assert -eigenvalues[0] > 1.1 * eigenvalues[-1] > 0  # the case: |lambda| max is negative
    lam = largest_curvature(net, w0, X, Y, None, scale=1.0 / len(X), rng=np.random.default_rng(0))
    assert 0.99 * eigenvalues[-1] <= lam <= eigenvalues[-1] * (1 + 1e-6)


def test_overflowing_products_give_no_finite_curvature():
    X, Y, loss = _diabetes_raw()
    net = Network((X.shape[1], 3, 1), "tanh", loss)
    w0 = net.initial_params(np.random.RandomState(0))
    lam = largest_curvature(net, w0, X, Y * 1e305, None, scale=1.0, rng=np.random.default_rng(0))
    assert lam == np.inf


def test_raw_diabetes_targets_diverged_at_the_old_default_and_train_on_auto():
    """The fixed 0.05 (the default before "auto") diverges on diabetes' raw targets (in the
    hundreds); the default now trains, below the constant predictor's loss."""
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="diverged"):
        PathKernelRegressor(learning_rate=0.05, random_state=0).fit(X, y)
    model = PathKernelRegressor(random_state=0).fit(X, y)
    constant = 0.5 * np.var(y)
    assert model.loss_ < 0.8 * constant < model.loss_curve_[0]
    assert model.learning_rate_ < 0.05
    # The step taken is the one every replay uses: the decomposition is exact.
    dec = model.decompose(X[:5])
    np.testing.assert_allclose(dec.output, model.predict(X[:5]), rtol=1e-12)
    assert dec.reconstruction_error < 1e-10


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("name", ["diabetes", "cancer", "wine", "iris"])
def test_auto_trains_standardised_real_data_further_than_the_old_default(name, activation):
    loader = {
        "diabetes": load_diabetes,
        "cancer": load_breast_cancer,
        "wine": load_wine,
        "iris": load_iris,
    }[name]
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    estimator = PathKernelRegressor if name == "diabetes" else PathKernelClassifier
    if name == "diabetes":
        y = (y - y.mean()) / y.std()
    fits = {
        lr: estimator((16,), activation, learning_rate=lr, n_steps=200, random_state=0).fit(X, y)
        for lr in (0.05, "auto")
    }
    assert fits["auto"].loss_ < fits[0.05].loss_
    assert fits["auto"].loss_ < 0.5 * fits["auto"].loss_curve_[0]


def test_a_diverging_auto_step_is_halved_and_the_model_is_that_steps(monkeypatch):
    X, y = load_diabetes(return_X_y=True)
    monkeypatch.setattr(pk_estimators, "auto_learning_rate", lambda *a, **k: 0.4)
    model = PathKernelRegressor((16,), n_steps=300, random_state=0).fit(X, y)
    halvings = round(np.log2(0.4 / model.learning_rate_))
    assert 1 <= halvings <= AUTO_HALVINGS
    assert model.learning_rate_ == 0.4 / 2**halvings
    fixed = PathKernelRegressor(
        (16,), learning_rate=model.learning_rate_, n_steps=300, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), fixed.predict(X))
    assert model.loss_curve_ == fixed.loss_curve_


def test_an_auto_step_that_diverges_however_halved_names_learning_rate(monkeypatch):
    X, y = load_diabetes(return_X_y=True)
    monkeypatch.setattr(pk_estimators, "auto_learning_rate", lambda *a, **k: 1e6)
    with pytest.raises(ValueError, match="learning_rate='auto' took 1e\\+06"):
        PathKernelRegressor((16,), n_steps=100, random_state=0).fit(X, y)


def test_auto_takes_the_penalty_and_the_weights_into_the_step(tmp_path):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    plain = PathKernelClassifier((8,), n_steps=50, random_state=0).fit(X, y)
    # alpha adds alpha / (batch * mean weight) to the curvature: a smaller step.
    penalised = PathKernelClassifier((8,), alpha=100.0, n_steps=50, random_state=0).fit(X, y)
    assert penalised.learning_rate_ < plain.learning_rate_
    assert penalised.learning_rate_ * 100.0 / len(X) <= 1.0  # the penalty's step is stable
    # Integer weights are the rows repeated (full batch): the same step to rounding.
    w = np.random.default_rng(0).integers(1, 4, len(X))
    weighted = PathKernelClassifier((8,), n_steps=50, random_state=0).fit(X, y, sample_weight=w)
    repeated = PathKernelClassifier((8,), n_steps=50, random_state=0).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    np.testing.assert_allclose(weighted.learning_rate_, repeated.learning_rate_, rtol=1e-6)
    # The step survives a save and load, and the reloaded model replays it.
    weighted.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.learning_rate_ == weighted.learning_rate_
    assert loaded.get_params()["learning_rate"] == "auto"
    np.testing.assert_array_equal(
        loaded.decompose(X[:3]).contributions, weighted.decompose(X[:3]).contributions
    )


def test_full_batch_step_takes_every_row_into_the_curvature():
    """Full batch descends the loss of all rows: one heavy row (here weighted 2000 among
    1797) sets the curvature, and a sample of rows that missed it took a step 1300x too
    large (a review). A linear model's Hessian is the closed form X1^T W X1 / sum(w)."""
    X, y = load_digits(return_X_y=True)
    w = np.ones(len(X))
    w[1234] = 2000.0
    X = X.astype(float)
    X[1234] *= 40.0
    model = PathKernelRegressor(
        hidden_layer_sizes=(), activation="identity", n_steps=1, random_state=0
    ).fit(X, y, sample_weight=w)
    X1 = np.column_stack([X, np.ones(len(X))])
    top = np.linalg.eigvalsh(X1.T @ (w[:, None] * X1) / w.sum())[-1]
    np.testing.assert_allclose(model.learning_rate_, 1.0 / top, rtol=5e-3)  # 3 digits


def test_the_estimate_runs_blas_on_the_threads_n_jobs_asks_for(monkeypatch):
    """The estimate's products are numpy's: n_jobs=1 keeps them on one BLAS thread, as the
    native trainer keeps to one thread, and the counts are restored after the fit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    original = pk_estimators.auto_learning_rate
    seen = []

    def recording(*args, **kwargs):
        seen.append({lib["filepath"]: lib["num_threads"] for lib in threadpool_info()})
        return original(*args, **kwargs)

    monkeypatch.setattr(pk_estimators, "auto_learning_rate", recording)
    X, y = load_iris(return_X_y=True)
    with threadpool_limits(limits=2, user_api="blas"):  # the test suite runs BLAS on one
        before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
        blas = [lib["filepath"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(before[path] == 2 for path in blas)
        PathKernelClassifier((4,), n_steps=5, n_jobs=1, random_state=0).fit(X, y)
        assert all(seen[0][path] == 1 for path in blas)
        assert {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()} == before


def test_the_step_is_the_same_on_any_number_of_threads():
    """The estimate's products round differently on one and two BLAS threads (n_jobs):
    its last bits changed with them, and long trainings turned that into other models (a
    review). The step keeps three significant digits."""
    from threadpoolctl import threadpool_limits

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with threadpool_limits(limits=2, user_api="blas"):  # the test suite runs BLAS on one
        models = [
            PathKernelClassifier((64, 64), n_steps=20, n_jobs=jobs, random_state=3).fit(X, y)
            for jobs in (1, 2)
        ]
    assert models[0].learning_rate_ == models[1].learning_rate_
    assert float(f"{models[0].learning_rate_:.3g}") == models[0].learning_rate_
    np.testing.assert_array_equal(models[0].coefs_[0], models[1].coefs_[0])


@pytest.mark.parametrize("batch_size, zero_fraction", [(1, 0.5), (4, 0.8)])
def test_mini_batches_of_zero_weight_rows_leave_no_step_unbounded(batch_size, zero_fraction):
    """A random batch of rows that weigh nothing has no curvature, and the step went to
    its ceiling of 10, diverging however halved (4 of 6 seeds; a review): the estimate's
    batches are drawn among the rows that weigh something."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    for seed in range(3):
        w = (np.random.default_rng(seed).random(len(X)) > zero_fraction).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = PathKernelRegressor(batch_size=batch_size, random_state=seed).fit(
                X, y, sample_weight=w
            )
        assert model.learning_rate_ < 0.1


def test_a_heavy_row_sets_the_mini_batch_step():
    """One row weighing 1000 among 442 makes every batch holding it 335x steeper than a
    random batch; the step of a random batch diverged (a review). The estimate takes the
    steepest of its batches: no larger than one over a batch holding that row."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    w = np.ones(len(X))
    w[7] = 1000.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = PathKernelRegressor(batch_size=16, random_state=0).fit(X, y, sample_weight=w)
    net = model.network_
    w0 = net.pack(model.initial_coefs_, model.initial_intercepts_)
    rows = np.r_[7, np.arange(100, 115)]
    lam = largest_curvature(
        net,
        w0,
        X[rows],
        y[rows, None],
        w[rows],
        scale=1 / (16 * w.mean()),
        rng=np.random.default_rng(0),
    )
    assert model.learning_rate_ <= 1.01 / lam


def test_mini_batch_estimate_takes_extreme_weights_and_norms():
    """Weights 1e300 beside 1e-300 left fewer rows with a chance to be drawn than the
    batch, and numpy's choice raised a bare error; a zero-weight row whose squared norm
    overflows warned of 0 * inf (a review)."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    w = np.full(len(X), 1e-300)
    w[0] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # such weights may diverge
        model = PathKernelRegressor(batch_size=16, n_steps=20, random_state=0).fit(
            X, y, sample_weight=w
        )
    assert 0 < model.learning_rate_ <= 10
    huge = X.copy()
    huge[1] *= 1e160
    w = np.ones(len(X))
    w[1] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        PathKernelRegressor(batch_size=16, n_steps=5, random_state=0).fit(huge, y, sample_weight=w)

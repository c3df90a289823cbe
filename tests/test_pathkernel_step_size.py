"""learning_rate="auto" for the path-kernel estimators: the curvature it is built on against
a float64 Hessian, and what it changes on real data (gramfree/pathkernel/step_size.py)."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.preprocessing import StandardScaler

import gramfree
from gramfree import PathKernelClassifier, PathKernelRegressor
from gramfree.pathkernel import estimators as pk_estimators
from gramfree.pathkernel import reference as ref
from gramfree.pathkernel.network import Network
from gramfree.pathkernel.step_size import AUTO_HALVINGS, loss_curvature


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
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
@pytest.mark.parametrize("weighted", [False, True])
def test_curvature_is_the_largest_eigenvalue_of_the_float64_hessian(data, activation, weighted):
    X, Y, loss = data()
    net = Network((X.shape[1], 3, Y.shape[1]), activation, loss)
    w0 = net.initial_params(np.random.RandomState(0))
    weights = np.random.default_rng(1).integers(1, 4, len(X)).astype(float) if weighted else None
    lam = loss_curvature(net, w0, X, Y, weights, rows=len(X), seed=0, n_threads=1)
    H = _reference_hessian(
        ref.ReferenceMLP(net.sizes, activation, loss),
        w0,
        X,
        Y,
        np.ones(len(X)) if weights is None else weights,
    )
    top = np.max(np.abs(np.linalg.eigvalsh(H)))
    # Power iteration approaches |lambda|max from below (||H v|| <= |lambda|max for a unit
    # v); it stops once the estimate moves by less than 1%.
    assert 0.9 * top <= lam <= 1.001 * top


def test_curvature_of_a_row_sample_and_of_overflowing_data():
    X, Y, loss = _diabetes_raw()
    net = Network((X.shape[1], 3, 1), "tanh", loss)
    w0 = net.initial_params(np.random.RandomState(0))
    whole = loss_curvature(net, w0, X, Y, None, rows=len(X), seed=0, n_threads=1)
    sample = loss_curvature(net, w0, X, Y, None, rows=30, seed=0, n_threads=1)
    assert 0.3 * whole < sample < 3 * whole  # the same scale from half the rows
    # A loss that overflows at the start has no finite curvature: no step is built on it.
    assert loss_curvature(net, w0, X, Y * 1e300, None, rows=60, seed=0, n_threads=1) == np.inf


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

"""Persistence: pickle and the portable ``.npz`` model file (``save`` / ``gramfree.load``)."""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import gramfree
from gramfree import KernelClassifier, KernelRegressor
from gramfree.kernels import Laplacian, Polynomial


def _data(seed=0, n=120, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Xt = rng.normal(size=(40, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1]
    return X, Xt, y


def _fitted(kind):
    X, Xt, y = _data()
    if kind == "regressor":
        model = KernelRegressor(gamma=0.4, alpha=0.1).fit(X, y)
    elif kind == "regressor-2d":
        model = KernelRegressor(gamma=0.4, alpha=0.1).fit(X, np.column_stack([y, -2 * y]))
    elif kind == "regressor-nystrom-f32":
        model = KernelRegressor(solver="nystrom-pcg", n_centers=30, random_state=3).fit(
            X.astype(np.float32), y
        )
        Xt = Xt.astype(np.float32)
    elif kind == "regressor-eigenpro-kernel-object":
        model = KernelRegressor(
            kernel=Laplacian(gamma=0.2, norm="l2"), solver="eigenpro", max_iter=5, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
    elif kind == "regressor-matern":
        model = KernelRegressor(kernel="matern", nu="inf", length_scale=0.7).fit(X, y)
    elif kind == "classifier-int":
        model = KernelClassifier(alpha=0.01).fit(X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 1))
    elif kind == "classifier-str":
        labels = np.array(["red", "green", "blue"])
        model = KernelClassifier(kernel="poly", degree=2).fit(X, labels[np.argmax(X, axis=1)])
    elif kind == "classifier-str-binary":
        model = KernelClassifier(n_centers=50, random_state=1).fit(
            X, np.where(X[:, 0] > 0, "pos", "neg").astype(object)
        )
    else:
        raise AssertionError(kind)
    return model, Xt


KINDS = [
    "regressor",
    "regressor-2d",
    "regressor-nystrom-f32",
    "regressor-eigenpro-kernel-object",
    "regressor-matern",
    "classifier-int",
    "classifier-str",
    "classifier-str-binary",
]


def _outputs(model, X):
    out = {"predict": model.predict(X)}
    if hasattr(model, "decision_function"):
        out["decision_function"] = model.decision_function(X)
    return out


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape
        assert np.array_equal(a[key], b[key]), key


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip(kind):
    model, Xt = _fitted(kind)
    again = pickle.loads(pickle.dumps(model))
    _assert_identical(_outputs(model, Xt), _outputs(again, Xt))
    assert again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.centers_, model.centers_)
    np.testing.assert_array_equal(again.dual_coef_, model.dual_coef_)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, tmp_path):
    model, Xt = _fitted(kind)
    path = tmp_path / "model.gfm"
    model.save(path)
    loaded = gramfree.load(path)
    assert type(loaded) is type(model)
    _assert_identical(_outputs(model, Xt), _outputs(loaded, Xt))
    assert loaded.get_params() == model.get_params()
    assert loaded.solver_ == model.solver_
    assert loaded.n_iter_ == model.n_iter_
    assert loaded.loss_curve_ == pytest.approx(model.loss_curve_, rel=0, abs=0)
    assert loaded.n_features_in_ == model.n_features_in_
    assert loaded.kernel_ == model.kernel_
    assert loaded.centers_.dtype == model.centers_.dtype
    assert loaded.dual_coef_.dtype == model.dual_coef_.dtype
    assert loaded.n_centers_ == model.n_centers_
    if hasattr(model, "classes_"):
        assert list(loaded.classes_) == list(model.classes_)
        # predicted labels are the original labels, not codes
        assert set(loaded.predict(Xt)) <= set(model.classes_)
    # a loaded model can be saved again, and refitted
    loaded.save(tmp_path / "again.gfm")
    _assert_identical(_outputs(gramfree.load(tmp_path / "again.gfm"), Xt), _outputs(model, Xt))


def test_save_load_accepts_str_path_and_file_is_pickle_free(tmp_path):
    model, Xt = _fitted("classifier-str")
    path = str(tmp_path / "m.npz")
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert "__meta__" in data.files
        meta = json.loads(str(data["__meta__"]))
        for name in data.files:
            assert data[name].dtype.kind != "O"
        np.testing.assert_array_equal(data["centers"], model.centers_)
        np.testing.assert_array_equal(data["dual_coef"], model.dual_coef_)
    assert meta["format_version"] == 1
    assert meta["estimator"] == "KernelClassifier"
    _assert_identical(_outputs(gramfree.load(path), Xt), _outputs(model, Xt))


def test_loaded_model_refits_like_original(tmp_path):
    X, Xt, y = _data()
    model = KernelRegressor(kernel=Polynomial(degree=2, gamma=0.5), alpha=0.3).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    refit = loaded.fit(X, y)
    np.testing.assert_allclose(refit.predict(Xt), model.predict(Xt), rtol=1e-12)


def _rewrite_meta(src, dst, edit):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    edit(meta)
    np.savez(dst, __meta__=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_other_format_version_refused(tmp_path, version):
    model, _ = _fitted("regressor")
    src = tmp_path / "m.npz"
    model.save(src)
    dst = tmp_path / "changed.npz"

    def edit(meta):
        meta["format_version"] = version

    _rewrite_meta(src, dst, edit)
    with pytest.raises(ValueError, match="version"):
        gramfree.load(dst)
    # the untouched file still loads
    gramfree.load(src)


def test_other_format_refused(tmp_path):
    model, _ = _fitted("regressor")
    src = tmp_path / "m.npz"
    model.save(src)
    dst = tmp_path / "other.npz"
    _rewrite_meta(src, dst, lambda meta: meta.update(format="something-else"))
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(dst)


def test_non_model_files_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(text)

    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.arange(3))
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(npz)

    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(_fitted("regressor")[0]))
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(pickled)

    empty_zip = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty_zip, "w"):
        pass
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(empty_zip)


def test_plain_npy_file_refused(tmp_path):
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(6.0))
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(npy)


def test_save_unfitted_or_foreign_refused(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.kernel_ridge import KernelRidge

    with pytest.raises(NotFittedError):
        KernelRegressor().save(tmp_path / "x.gfm")
    from gramfree.io import save

    X, _, y = _data()
    with pytest.raises(TypeError, match="KernelRidge"):
        save(KernelRidge().fit(X, y), tmp_path / "y.gfm")


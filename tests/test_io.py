"""Persistence: pickle and the portable ``.npz`` model file (``save`` / ``gramfree.load``)."""

from __future__ import annotations

import json
import math
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import gramfree
from gramfree import KernelClassifier, KernelClassifierCV, KernelRegressor
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
    elif kind == "classifier-logistic-cv":
        model = KernelClassifierCV(loss="logistic", alphas=[1e-2, 0.1], cv=3).fit(
            X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)
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
    "classifier-logistic-cv",
]


def _outputs(model, X):
    out = {"predict": model.predict(X)}
    if hasattr(model, "decision_function"):
        out["decision_function"] = model.decision_function(X)
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape
        assert np.array_equal(a[key], b[key]), key


def _same_info(a, b) -> bool:
    """solver_info_ equality, NaN equal to NaN and tuples to lists (as JSON keeps them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_info(a[k], b[k]) for k in a)
    if isinstance(b, (tuple, list, np.ndarray)):
        return isinstance(a, list) and len(a) == len(b) and all(map(_same_info, a, list(b)))
    if isinstance(b, (float, np.floating)) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return type(a) is type(b.item() if isinstance(b, np.generic) else b) and a == b


def test_class_weight_values_keep_their_type(tmp_path):
    """{0: 1, 1: 2} came back as {0: 1.0, 1: 2.0}: get_params() differed (a review)."""
    X, _, _ = _data()
    y = (X[:, 0] > 0).astype(int)
    model = KernelClassifier(class_weight={0: 1, 1: 2.5}).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm").get_params()["class_weight"]
    assert loaded == {0: 1, 1: 2.5} and type(loaded[0]) is int and type(loaded[1]) is float


def test_class_weight_of_boolean_labels_saves(tmp_path):
    """A classifier fitted on a boolean y with class_weight {True: 2, False: 1} could
    not be saved ("would not load back": bool keys were refused)."""
    X, Xt, _ = _data()
    model = KernelClassifier(class_weight={True: 2.0, False: 1.0}).fit(X, X[:, 0] > 0)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.get_params()["class_weight"] == {True: 2.0, False: 1.0}
    _assert_identical(_outputs(model, Xt), _outputs(loaded, Xt))


def test_solver_info_keeps_nonfinite_numbers_and_nesting(tmp_path):
    model, Xt = _fitted("regressor")
    info = {
        "nan": float("nan"),
        "inf": [np.float64(np.inf), -np.inf],
        "steps": ("a", np.int64(3), np.bool_(True), None),
        "nested": {"deep": np.arange(3.0)},
    }
    model.solver_info_ = info
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert _same_info(loaded.solver_info_, info)
    assert loaded.solver_info_["steps"] == ["a", 3, True, None]


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
    assert _same_info(loaded.solver_info_, model.solver_info_)
    if hasattr(model, "classes_"):
        assert list(loaded.classes_) == list(model.classes_)
        # an object array of strings (classifier-str-binary) stays one: predict's dtype
        assert loaded.classes_.dtype == model.classes_.dtype
        assert loaded.predict(Xt).dtype == model.predict(Xt).dtype
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


@pytest.mark.parametrize("version", [3, 0, "1", None])
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


def test_a_kernel_field_beyond_float_is_a_value_error_naming_it(tmp_path):
    """An integer too large for a float in the kernel's fields (nu=10**400) escaped as
    OverflowError (a review); load's promise is a ValueError naming the field."""
    X, _, y = _data()
    model = KernelRegressor(kernel="matern", alpha=0.1).fit(X, y)
    src, dst = tmp_path / "m.npz", tmp_path / "edited.npz"
    model.save(src)
    _rewrite_meta(src, dst, lambda meta: meta["attributes"]["kernel_"].update(nu=10**400))
    with pytest.raises(ValueError, match="attributes.kernel_"):
        gramfree.load(dst)


def test_bytes_paths_save_and_load(tmp_path):
    """A bytes path: zipfile took it for a file object on load (AttributeError 'seek')
    and save mixed it with str (TypeError; a review). Both read it as os.fsdecode does;
    a path of another type is a TypeError naming it."""
    model, Xt = _fitted("regressor")
    path = os.fsencode(tmp_path / "m.gfm")
    model.save(path)
    np.testing.assert_array_equal(gramfree.load(path).predict(Xt), model.predict(Xt))
    with pytest.raises(TypeError, match="^path: expected a str, bytes or os.PathLike, got int"):
        gramfree.load(3)


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


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.gfm"):
        gramfree.load(tmp_path / "missing.gfm")
    with pytest.raises(FileNotFoundError):
        gramfree.load(str(tmp_path / "no-such-directory" / "m.gfm"))


def _cut(n_bytes):
    """A file edit: keep the first ``n_bytes`` bytes (negative: drop that many at the end)."""
    return lambda blob: blob[:n_bytes]


@pytest.mark.parametrize(
    "make, match",
    [
        ("empty", r"not a gramfree model file \(empty file\)"),
        (_cut(-1), "not a zip archive, or truncated"),
        (_cut(-100), "not a zip archive, or truncated"),
        (_cut(100), "not a zip archive, or truncated"),
        (_cut(4), "not a zip archive, or truncated"),
        ("text", "not a zip archive, or truncated"),
        ("directory", "is a directory, not a gramfree model file"),
        ("under a file", "Not a directory"),
    ],
    ids=["empty", "cut-1", "cut-100", "first-100", "first-4", "text", "directory", "under-file"],
)
def test_unreadable_paths_are_value_errors_naming_the_problem(tmp_path, make, match):
    """Everything at a path that is no model file: ValueError naming the path and why (not
    zipfile.BadZipFile, EOFError or IsADirectoryError)."""
    model, _ = _fitted("classifier-str")
    good = tmp_path / "m.gfm"
    model.save(good)
    path = tmp_path / "bad.gfm"
    if make == "empty":
        path.write_bytes(b"")
    elif make == "text":
        path.write_text("a,b\n1,2\n")
    elif make == "directory":
        path.mkdir()
    elif make == "under a file":
        path = good / "m.gfm"
    else:
        path.write_bytes(make(good.read_bytes()))
    with pytest.raises(ValueError, match=match) as info:
        gramfree.load(path)
    assert str(info.value).startswith("path: ") and str(path) in str(info.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs a character device")
def test_a_device_or_pipe_is_refused_before_reading(tmp_path):
    """load("/dev/zero") read without end (a review's run reached 24 GB and the OOM
    killer); a FIFO would block. Both are refused from their file type."""
    with pytest.raises(ValueError, match="not a regular file"):
        gramfree.load("/dev/zero")
    fifo = tmp_path / "pipe.gfm"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        gramfree.load(fifo)


def test_numpy_bool_parameters_save_and_load_back(tmp_path):
    """warm_start=np.False_ made save raise json's TypeError naming no parameter."""
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = X[:, 0]
    model = KernelRegressor(warm_start=np.False_, early_stopping=np.bool_(False)).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.get_params()["warm_start"] is False
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_save_unfitted_or_foreign_refused(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.kernel_ridge import KernelRidge

    with pytest.raises(NotFittedError):
        KernelRegressor().save(tmp_path / "x.gfm")
    from gramfree.io import save

    X, _, y = _data()
    with pytest.raises(TypeError, match="KernelRidge"):
        save(KernelRidge().fit(X, y), tmp_path / "y.gfm")


# -- validation on load: every field checked, errors name it --------------------------------


def _rewrite(src, dst, arrays_edit=None, meta_edit=None):
    """Copy a model file, editing its arrays (a dict) and/or its metadata in place."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    if arrays_edit is not None:
        arrays_edit(arrays)
    if meta_edit is not None:
        meta_edit(meta)
    _savez(dst, __meta__=np.array(json.dumps(meta)), **arrays)


def _savez(path, **arrays):
    with open(path, "wb") as fh:  # np.savez(path) would append ".npz" to the name
        np.savez(fh, **arrays)


def _path_model(kind):
    from gramfree import PathKernelClassifier, PathKernelRegressor

    X, _, y = _data(n=30)
    if kind == "path-regressor":
        return PathKernelRegressor((4,), n_steps=7, checkpoint_every=3, random_state=0).fit(X, y)
    labels = np.array(["a", "b", "c"])[np.argmax(X, axis=1)]
    return PathKernelClassifier((3,), n_steps=5, random_state=0).fit(X, labels)


def _set(arrays, key, value):
    arrays[key] = value


def _array(key, change):
    """An arrays edit: ``arrays[key] = change(arrays[key])``."""
    return lambda arrays: _set(arrays, key, change(arrays[key]))


def _poke(key, index, value):
    """An arrays edit writing one value into ``arrays[key]``."""
    return lambda arrays: arrays[key].__setitem__(index, value)


def _drop(key):
    return lambda arrays: arrays.pop(key)


def _meta(*where, **fields):
    """A metadata edit: update the object at ``meta[where[0]][where[1]]...`` with fields."""

    def edit(meta):
        for key in where:
            meta = meta[key]
        meta.update(fields)

    return edit


def _meta_drop(*where):
    def edit(meta):
        for key in where[:-1]:
            meta = meta[key]
        del meta[where[-1]]

    return edit


def _meta_drop_then(*where_and_edit):
    """Drop ``meta[where...]``, then apply another edit."""
    *where, then = where_and_edit

    def edit(meta):
        _meta_drop(*where)(meta)
        then(meta)

    return edit


def _add_class(classes):
    return np.append(classes, "zzz")  # still sorted: one class more than dual_coef has columns


def _swap(*labels):
    return lambda classes: np.array(labels)


BAD_ARRAYS = [  # (model kind, arrays edit, message)
    # the case: more classes than dual_coef's columns used to predict silently wrong
    (
        "classifier-str",
        _array("classes", _add_class),
        r"field 'dual_coef' has shape \(120, 3\), expected \(120, 4\) for 4 classes",
    ),
    (
        "classifier-str-binary",
        _array("classes", _swap("neg", "pos", "z")),
        r"'dual_coef' has shape \(50, 1\), expected \(50, 3\) for 3 classes",
    ),
    ("classifier-str-binary", _array("classes", lambda c: c[:1]), "'classes' has 1 label"),
    ("classifier-str", _array("classes", lambda c: c[::-1].copy()), "sorted and distinct"),
    ("classifier-int", _array("classes", lambda c: c.astype(float)), "classes_kind"),
    ("classifier-int", _drop("classes"), r"missing field\(s\) \['classes'\]"),
    ("regressor", lambda a: _set(a, "classes", np.arange(2)), r"unknown field\(s\) \['classes'\]"),
    ("regressor", _drop("dual_coef"), r"missing field\(s\) \['dual_coef'\]"),
    ("regressor", lambda a: _set(a, "extra", np.zeros(2)), r"unknown field\(s\) \['extra'\]"),
    (
        "regressor",
        _array("centers", lambda c: c[:, :2].copy()),
        r"'centers' has shape \(120, 2\), expected \(any, 3\) for n_features_in_=3",
    ),
    ("regressor", _array("centers", lambda c: c[:0]), "no rows"),
    ("regressor", _array("centers", lambda c: c.astype(int)), "'centers' has dtype int64"),
    ("regressor", _array("centers", lambda c: c.astype(complex)), "'centers' has dtype complex"),
    ("regressor", _array("centers", lambda c: c[None]), "'centers' has shape"),
    (
        "regressor",
        _array("dual_coef", lambda c: c.astype(np.float32)),
        "'dual_coef' has dtype float32, expected float64 as 'centers'",
    ),
    ("regressor", _array("dual_coef", lambda c: c[:-1]), "'dual_coef' has shape"),
    (
        "regressor",
        _array("dual_coef", lambda c: np.hstack([c, c])),
        r"expected \(120, 1\) for a 1-d target",
    ),
    ("regressor", _poke("dual_coef", (3, 0), np.nan), "'dual_coef' holds non-finite"),
    ("regressor-nystrom-f32", _poke("centers", (0, 0), np.inf), "'centers' holds non-finite"),
    (
        "path-regressor",
        _array("params", lambda p: p[:-1]),
        r"'params' has shape \(20,\), expected \(21,\) for layer sizes \[3, 4, 1\]",
    ),
    ("path-regressor", _array("w0", lambda w: w.astype(np.float32)), "'w0' has dtype float32"),
    (
        "path-regressor",
        _array("checkpoints", lambda c: c[:1]),
        r"'checkpoints' has shape \(1, 21\), expected \(2, 21\) for n_steps=7, checkpoint_every=3",
    ),
    ("path-regressor", _array("path_Y", lambda y: y[:-1]), "'path_Y' has shape"),
    ("path-regressor", _drop("path_X"), r"missing field\(s\) \['path_X'\]"),
    ("path-regressor", _poke("path_X", (0, 0), np.nan), "'path_X' holds non-finite"),
    (
        "path-classifier",
        _array("classes", _add_class),
        "'attributes.n_outputs_' is 3, expected 4 for 4 classes",
    ),
    ("path-classifier", _poke("path_Y", (0, 0), 0.5), "'path_Y' must hold 0/1 label codes"),
]

BAD_METADATA = [  # (model kind, metadata edit, message)
    ("regressor", _meta_drop("attributes", "n_iter_"), r"missing field\(s\) \['n_iter_'\]"),
    ("regressor", _meta("attributes", n_iter_=-1), "'attributes.n_iter_' must be >= 0"),
    ("regressor", _meta("attributes", n_iter_=2.0), "'attributes.n_iter_' must be an integer"),
    ("regressor", _meta("attributes", solver_="magic"), "'attributes.solver_' must be one of"),
    (
        "regressor",
        _meta("attributes", loss_curve_="low"),
        "'attributes.loss_curve_' must be a list",
    ),
    ("regressor", _meta("attributes", loss_curve_=[1.0, "x"]), r"'attributes.loss_curve_\[1\]'"),
    ("regressor", _meta("attributes", fit_time_=-1), "'attributes.fit_time_' must be >= 0"),
    ("regressor", _meta("attributes", y_1d=1), "'attributes.y_1d' must be true or false"),
    (
        "regressor",
        _meta("attributes", newer=1),
        r"unknown field\(s\) \['newer'\] in field 'attributes'",
    ),
    ("regressor", _meta("attributes", "kernel_", __kernel__="Sinc"), "names no known kernel"),
    ("regressor", _meta_drop("attributes", "kernel_", "gamma"), r"missing field\(s\) \['gamma'\]"),
    ("regressor", _meta("attributes", "kernel_", gamma="0.4"), "not a valid Gaussian"),
    ("regressor", _meta("attributes", "kernel_", gamma=-1.0), "gamma must be positive"),
    ("regressor", _meta("attributes", "kernel_", width=2), r"unknown field\(s\) \['width'\]"),
    ("regressor", _meta("attributes", kernel_="rbf"), "'attributes.kernel_' must be a JSON object"),
    (
        "regressor",
        _meta_drop("params", "alpha"),
        r"missing field\(s\) \['alpha'\] in field 'params'",
    ),
    ("regressor", _meta("params", beta=1), r"unknown field\(s\) \['beta'\]"),
    ("regressor", _meta("params", alpha="big"), "The 'alpha' parameter"),
    ("regressor", _meta("params", n_jobs=True), "'params.n_jobs' must not be true/false"),
    ("regressor", _meta(comment="x"), r"unknown field\(s\) \['comment'\] in the metadata"),
    ("regressor", _meta_drop("attributes"), r"missing field\(s\) \['attributes'\]"),
    ("regressor", _meta(params=[1]), "'params' must be a JSON object"),
    ("regressor", _meta(estimator=["KernelRegressor"]), "unknown estimator"),
    ("regressor", _meta(format_version=True), "version"),
    ("classifier-str", _meta_drop("attributes", "classes_kind"), "classes_kind"),
    ("regressor", _meta("attributes", solver_info_=[1]), "'attributes.solver_info_' must be a"),
    (
        "regressor",
        _meta("attributes", solver_info_={"a": {"__float__": "1e400"}}),
        r"'attributes.solver_info_.a' must be \{\"__float__\"",
    ),
    (
        "regressor",
        _meta("attributes", solver_info_={"a": {"__float__": "nan", "b": 1}}),
        "'attributes.solver_info_.a' must be",
    ),
    (
        "regressor",
        _meta("attributes", solver_info_={"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}),
        "nests deeper than 16 levels",
    ),
    ("regressor", _meta("attributes", classes_object=True), "'attributes.classes_object'"),
    ("classifier-int", _meta("attributes", classes_object=True), "for classes of kind 'i'"),
    ("classifier-str", _meta("attributes", classes_object=1), "must be true or false"),
    ("path-regressor", _meta("attributes", sizes=[2, 4, 1]), "'attributes.sizes' is"),
    ("path-regressor", _meta("attributes", sizes=[3, 0, 1]), r"'attributes.sizes\[1\]'"),
    ("path-regressor", _meta("attributes", sizes="3-4-1"), "'attributes.sizes' must be a list"),
    ("path-regressor", _meta("attributes", loss="softmax"), "'attributes.loss' must be one of"),
    ("path-regressor", _meta("attributes", batch_size_=31), "'attributes.batch_size_' must be"),
    # The arrays are checked against the training parameters the file records
    # (attributes.trained_with), not the parameters, which set_params may have changed.
    (
        "path-regressor",
        _meta("attributes", "trained_with", n_steps=8),
        "'attributes.loss_curve_' has 7 values, expected 8",
    ),
    (
        "path-regressor",
        _meta("attributes", "trained_with", checkpoint_every=2),
        "'checkpoints' has shape",
    ),
    (
        "path-regressor",
        _meta("attributes", "trained_with", activation="sigmoid"),
        "'attributes.trained_with' .*activation",
    ),
    (
        "path-regressor",
        _meta("attributes", "trained_with", extra=1),
        "'attributes.trained_with' must hold exactly",
    ),
    # Files of earlier writers, without the record: the parameters stand for it (those
    # writers had no "auto": a number).
    (
        "path-regressor",
        _meta_drop_then(
            "attributes", "trained_with", _meta("params", n_steps=8, learning_rate=0.05)
        ),
        "'attributes.loss_curve_' has 7 values, expected 8",
    ),
    # The record gives the step taken; "auto" does not say it, and replay needs it.
    (
        "path-regressor",
        _meta("attributes", "trained_with", learning_rate="auto"),
        "'attributes.trained_with' must give the learning rate",
    ),
    (
        "path-regressor",
        _meta_drop_then("attributes", "trained_with", _meta("params", learning_rate="auto")),
        "'attributes.trained_with' must give the learning rate",
    ),
]

BAD_FILES = [(kind, edit, None, match) for kind, edit, match in BAD_ARRAYS] + [
    (kind, None, edit, match) for kind, edit, match in BAD_METADATA
]


@pytest.mark.parametrize("kind,arrays_edit,meta_edit,match", BAD_FILES)
def test_damaged_file_refused_naming_the_field(kind, arrays_edit, meta_edit, match, tmp_path):
    model = _path_model(kind) if kind.startswith("path") else _fitted(kind)[0]
    src, dst = tmp_path / "m.gfm", tmp_path / "bad.gfm"
    model.save(src)
    _rewrite(src, dst, arrays_edit, meta_edit)
    with pytest.raises(ValueError, match=match) as info:
        gramfree.load(dst)
    assert str(info.value).startswith("path: ")
    gramfree.load(src)  # the untouched file still loads


def test_metadata_that_is_not_json_refused(tmp_path):
    model, _ = _fitted("regressor")
    model.save(tmp_path / "m.gfm")
    with np.load(tmp_path / "m.gfm", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    text = str(arrays.pop("__meta__"))
    cases = {
        "cut": text[:-5],
        "nan": text.replace('"fit_time_": ', '"fit_time_": NaN, "x": '),
        "repeated key": text.replace('{"format"', '{"format": 1, "format"'),
    }
    for bad in cases.values():
        _savez(tmp_path / "bad.gfm", __meta__=np.array(bad), **arrays)
        with pytest.raises(ValueError, match="'__meta__' is not valid JSON"):
            gramfree.load(tmp_path / "bad.gfm")
    _savez(tmp_path / "bad.gfm", __meta__=np.arange(3), **arrays)
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(tmp_path / "bad.gfm")


def test_truncated_file_and_lying_array_header_refused(tmp_path):
    model, _ = _fitted("classifier-str")
    path = tmp_path / "m.gfm"
    model.save(path)
    blob = path.read_bytes()
    (tmp_path / "cut.gfm").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a gramfree model file"):
        gramfree.load(tmp_path / "cut.gfm")
    # a member whose .npy header claims a huge shape (CRC recomputed, so only the size
    # check stands between it and a giant allocation)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    npy = members["centers.npy"]
    header = npy[:128].replace(b"(120, 3)", b"(99999999999, 3)").replace(b" " * 8 + b"\n", b"\n")
    assert len(header) == 128 and b"99999999999" in header  # same length, padding shortened
    members["centers.npy"] = header + npy[128:]
    with zipfile.ZipFile(tmp_path / "lying.gfm", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ValueError, match="header describes"):
        gramfree.load(tmp_path / "lying.gfm")


def test_other_byte_order_and_compressed_files_load(tmp_path):
    model, Xt = _fitted("classifier-str")
    src = tmp_path / "m.gfm"
    model.save(src)

    def swap(arrays):
        for key, value in arrays.items():
            arrays[key] = value.astype(value.dtype.newbyteorder("S"))

    _rewrite(src, tmp_path / "swapped.gfm", swap)
    _assert_identical(_outputs(gramfree.load(tmp_path / "swapped.gfm"), Xt), _outputs(model, Xt))
    with np.load(src, allow_pickle=False) as data, open(tmp_path / "zipped.gfm", "wb") as fh:
        np.savez_compressed(fh, **{k: data[k] for k in data.files})
    _assert_identical(_outputs(gramfree.load(tmp_path / "zipped.gfm"), Xt), _outputs(model, Xt))


def test_file_of_the_previous_writer_loads(tmp_path):
    """Version 1 as first written: no feature_names array; still read."""
    model, Xt = _fitted("classifier-str-binary")
    path = tmp_path / "m.gfm"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert "feature_names" not in data.files
    loaded = gramfree.load(path)
    assert not hasattr(loaded, "feature_names_in_")
    assert not hasattr(loaded, "table_recipe_")  # nor the command line's recipe
    _assert_identical(_outputs(loaded, Xt), _outputs(model, Xt))


def test_save_refuses_a_model_that_would_not_load_back(tmp_path):
    model, _ = _fitted("regressor")
    path = tmp_path / "m.gfm"
    model.save(path)
    before = path.read_bytes()
    coef = model.dual_coef_.copy()
    model.dual_coef_[0, 0] = np.nan
    with pytest.raises(ValueError, match="would not load back.*'dual_coef' holds non-finite"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gfm"]
    model.dual_coef_[:] = coef


# -- feature_names_in_ ---------------------------------------------------------------------


def _fit_named(model, X, y, names):
    """Fit on a DataFrame (scikit-learn sets feature_names_in_); without pandas, fit on
    the array and set the attribute as scikit-learn would."""
    try:
        import pandas as pd
    except ImportError:
        model.fit(X, y)
        model.feature_names_in_ = np.asarray(names, dtype=object)
        return model, None
    return model.fit(pd.DataFrame(X, columns=names), y), pd


@pytest.mark.parametrize(
    "estimator", ["KernelRegressor", "KernelClassifier", "PathKernelRegressor"]
)
def test_feature_names_round_trip(estimator, tmp_path):
    from gramfree import PathKernelRegressor

    X, Xt, y = _data()
    names = ["age", "height", "weight"]
    model = {
        "KernelRegressor": lambda: KernelRegressor(gamma=0.4),
        "KernelClassifier": lambda: KernelClassifier(),
        "PathKernelRegressor": lambda: PathKernelRegressor((3,), n_steps=5, random_state=0),
    }[estimator]()
    target = (y > 0).astype(int) if estimator == "KernelClassifier" else y
    model, pd = _fit_named(model, X, target, names)
    model.save(tmp_path / "m.gfm")
    with np.load(tmp_path / "m.gfm", allow_pickle=False) as data:
        assert data["feature_names"].dtype.kind == "U"
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == names
    assert np.array_equal(loaded.feature_names_in_, model.feature_names_in_)
    queries = Xt if pd is None else pd.DataFrame(Xt, columns=names)
    assert np.array_equal(loaded.predict(queries), model.predict(queries))
    if pd is not None:  # the names are checked on predict, as for the original
        with pytest.raises(ValueError, match="feature names"):
            loaded.predict(pd.DataFrame(Xt, columns=["height", "age", "weight"]))


def test_feature_names_of_wrong_length_refused(tmp_path):
    model, _ = _fitted("regressor")
    model.feature_names_in_ = np.array(["a", "b", "c"], dtype=object)
    model.save(tmp_path / "m.gfm")
    _rewrite(
        tmp_path / "m.gfm",
        tmp_path / "bad.gfm",
        lambda a: _set(a, "feature_names", np.array(["a", "b"])),
    )
    with pytest.raises(ValueError, match=r"'feature_names' has shape \(2,\), expected \(3,\)"):
        gramfree.load(tmp_path / "bad.gfm")
    _rewrite(
        tmp_path / "m.gfm", tmp_path / "bad.gfm", lambda a: _set(a, "feature_names", np.arange(3.0))
    )
    with pytest.raises(ValueError, match="'feature_names' has dtype float64, expected strings"):
        gramfree.load(tmp_path / "bad.gfm")


# -- the command line's reading recipe (table_recipe_) ---------------------------------------


def _with_recipe(kind, scaled=True):
    """A fitted model of ``kind`` (3 features) carrying a TableRecipe: columns a, y, b, c
    with the target y second."""
    from gramfree.io import TableRecipe

    model = _path_model(kind) if kind.startswith("path") else _fitted(kind)[0]
    mean, scale = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.25, 3.0])
    if not scaled:
        mean = scale = None
    model.table_recipe_ = TableRecipe(True, ("a", "y", "b", "c"), 1, mean, scale)
    return model


@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("kind", ["regressor", "classifier-str", "path-regressor"])
def test_table_recipe_round_trip(kind, scaled, tmp_path):
    model = _with_recipe(kind, scaled)
    model.save(tmp_path / "m.gfm")
    with np.load(tmp_path / "m.gfm", allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        assert meta["table"] == {
            "header": True,
            "columns": ["a", "y", "b", "c"],
            "target": 1,
            "scaled": scaled,
        }
        assert ("table_mean" in data.files) == ("table_scale" in data.files) == scaled
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert type(loaded) is type(model)
    recipe, saved = loaded.table_recipe_, model.table_recipe_
    assert (recipe.header, recipe.columns, recipe.target) == (True, ("a", "y", "b", "c"), 1)
    assert recipe.features == ("a", "b", "c") and recipe.target_name == "y"
    if scaled:
        assert np.array_equal(recipe.mean, saved.mean) and np.array_equal(recipe.scale, saved.scale)
        assert recipe.mean.dtype == np.float64
    else:
        assert recipe.mean is None and recipe.scale is None
    X = _data()[1]
    np.testing.assert_array_equal(recipe.transform(X), saved.transform(X))
    _assert_identical(_outputs(loaded, X), _outputs(model, X))


BAD_RECIPES = [  # (arrays edit, metadata edit, message)
    (
        None,
        _meta("table", columns=["a", "y", "b"]),
        r"'table.columns' has 3 names, expected 4 \(n_features_in_=3 and the target\)",
    ),
    (None, _meta("table", columns=["a", "y", "b", "a"]), "'table.columns' repeats a name"),
    (None, _meta("table", columns=["a", "y", "b", ""]), "'table.columns' must be a list of non"),
    (None, _meta("table", columns=["a", "y", "b", 4]), "'table.columns' must be a list of non"),
    (None, _meta("table", columns="a,y,b,c"), "'table.columns' must be a list of non"),
    (None, _meta("table", target=4), "'table.target' must be >= 0 and <= 3, got 4"),
    (None, _meta("table", target=-1), "'table.target' must be >= 0"),
    (None, _meta("table", target=True), "'table.target' must be an integer"),
    (None, _meta("table", header="yes"), "'table.header' must be true or false"),
    (
        None,
        _meta("table", scaled=False),
        r"unknown field\(s\) \['table_mean', 'table_scale'\] in the arrays",
    ),
    (None, _meta("table", delimiter=";"), r"unknown field\(s\) \['delimiter'\] in field 'table'"),
    (None, _meta_drop("table", "scaled"), r"missing field\(s\) \['scaled'\] in field 'table'"),
    (None, _meta(table=[1]), "'table' must be a JSON object"),
    (
        None,
        _meta_drop("table"),
        r"unknown field\(s\) \['table_mean', 'table_scale'\] in the arrays of a model without",
    ),
    (_drop("table_scale"), None, r"missing field\(s\) \['table_scale'\] in the arrays"),
    (_poke("table_scale", 1, 0.0), None, "'table_scale' must hold positive numbers"),
    (_poke("table_scale", 2, -3.0), None, "'table_scale' must hold positive numbers"),
    (_poke("table_mean", 0, np.nan), None, "'table_mean' holds non-finite"),
    (_poke("table_scale", 0, np.inf), None, "'table_scale' holds non-finite"),
    (
        _array("table_mean", lambda m: m.astype(np.float32)),
        None,
        "'table_mean' has dtype float32, expected float64",
    ),
    (
        _array("table_mean", lambda m: m[:2]),
        None,
        r"'table_mean' has shape \(2,\), expected \(3,\) for n_features_in_=3",
    ),
    (_array("table_scale", lambda s: s[None]), None, "'table_scale' has shape"),
]


@pytest.mark.parametrize("arrays_edit,meta_edit,match", BAD_RECIPES)
def test_damaged_table_recipe_refused_naming_the_field(arrays_edit, meta_edit, match, tmp_path):
    src, dst = tmp_path / "m.gfm", tmp_path / "bad.gfm"
    _with_recipe("regressor").save(src)
    _rewrite(src, dst, arrays_edit, meta_edit)
    with pytest.raises(ValueError, match=match) as info:
        gramfree.load(dst)
    assert str(info.value).startswith("path: ")
    gramfree.load(src)


def test_save_refuses_a_recipe_that_does_not_fit_the_model(tmp_path):
    from gramfree.io import TableRecipe

    model = _with_recipe("regressor")
    model.table_recipe_ = TableRecipe(False, ("0", "1", "2"), 2)  # refitted on fewer columns
    with pytest.raises(ValueError, match="would not load back.*'table.columns' has 3 names"):
        model.save(tmp_path / "m.gfm")
    model.table_recipe_ = {"header": True}
    with pytest.raises(TypeError, match="table_recipe_: expected a gramfree.io.TableRecipe"):
        model.save(tmp_path / "m.gfm")
    assert list(tmp_path.iterdir()) == []


# -- atomic save ---------------------------------------------------------------------------


def _failing_savez(fh, *args, **kwargs):
    fh.write(b"PK\x03\x04 half a model")  # some bytes reach the file, then the disk fills
    raise OSError(28, "No space left on device")


def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch):
    model, Xt = _fitted("classifier-str")
    path = tmp_path / "m.gfm"
    model.save(path)
    before = path.read_bytes()
    other, _ = _fitted("regressor")
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(OSError, match="No space left"):
        other.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gfm"]  # no temporary left
    _assert_identical(_outputs(gramfree.load(path), Xt), _outputs(model, Xt))


def test_failed_save_to_new_path_creates_nothing(tmp_path, monkeypatch):
    model, _ = _fitted("regressor")
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(OSError):
        model.save(tmp_path / "new.gfm")
    assert list(tmp_path.iterdir()) == []


def test_failed_rename_leaves_old_file_intact(tmp_path, monkeypatch):
    import os

    model, _ = _fitted("regressor")
    path = tmp_path / "m.gfm"
    model.save(path)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        _fitted("regressor-2d")[0].save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gfm"]


def test_save_replaces_keeping_permissions_and_symlinks(tmp_path):
    import os
    import stat

    model, Xt = _fitted("regressor")
    other, _ = _fitted("regressor-2d")
    path = tmp_path / "m.gfm"
    model.save(path)
    os.chmod(path, 0o640)
    other.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    _assert_identical(_outputs(gramfree.load(path), Xt), _outputs(other, Xt))
    link = tmp_path / "link.gfm"
    link.symlink_to(path)
    model.save(link)  # written through the link, as writing in place did
    assert link.is_symlink()
    _assert_identical(_outputs(gramfree.load(path), Xt), _outputs(model, Xt))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.gfm", "m.gfm"]


def test_newer_format_version_refused_naming_it(tmp_path):
    """An older gramfree meeting a newer file says which version and what to do."""
    from gramfree.io import FORMAT_VERSION

    model, _ = _fitted("regressor")
    src, dst = tmp_path / "m.npz", tmp_path / "newer.npz"
    model.save(src)
    _rewrite_meta(src, dst, lambda meta: meta.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(
        ValueError,
        match=rf"format version {FORMAT_VERSION + 1}, written by a "
        rf"newer gramfree; gramfree {gramfree.__version__} reads format "
        rf"versions 1 to {FORMAT_VERSION}: upgrade gramfree",
    ):
        gramfree.load(dst)


def test_file_without_parameters_added_since_v1_loads_with_their_defaults(tmp_path):
    """A version-1 file written before class_weight and loss existed: their defaults."""
    from gramfree.io import _PARAMS_ADDED_SINCE_V1

    model, Xt = _fitted("classifier-str-binary")
    src, dst = tmp_path / "m.npz", tmp_path / "older.npz"
    model.save(src)

    defaults = type(model)().get_params(deep=False)
    added = [name for name in _PARAMS_ADDED_SINCE_V1 if name in defaults]
    # all but the CV estimators' gammas, gamma_search, cv, alpha_per_target and criterion
    assert len(added) == len(_PARAMS_ADDED_SINCE_V1) - 5

    def drop(meta):
        for name in added:
            del meta["params"][name]

    _rewrite_meta(src, dst, drop)
    loaded = gramfree.load(dst)
    for name in added:
        assert loaded.get_params()[name] == defaults[name]
    _assert_identical(_outputs(loaded, Xt), _outputs(model, Xt))


def test_cv_file_without_gammas_loads_with_gammas_none(tmp_path):
    """A KernelRegressorCV file written before gammas and gamma_search existed: both
    None, no grid."""
    from gramfree import KernelRegressorCV

    X, Xt, y = _data(n=60)
    model = KernelRegressorCV(gamma=0.4, alphas=[1e-2, 0.1, 1.0]).fit(X, y)
    src, dst = tmp_path / "m.npz", tmp_path / "older.npz"
    model.save(src)

    def drop(meta):
        meta["params"].pop("gammas")
        meta["params"].pop("gamma_search")

    _rewrite_meta(src, dst, drop)
    loaded = gramfree.load(dst)
    assert loaded.gammas is None and loaded.gamma_search is None
    assert not hasattr(loaded, "gamma_")
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))


def test_classifier_cv_file_without_loss_and_cv_loads_as_the_square_loss(tmp_path):
    """A KernelClassifierCV file written before loss and cv existed: the defaults, GCV's
    attributes, no probabilities."""
    X, Xt, _ = _data(n=60)
    model = KernelClassifierCV(gamma=0.4, alphas=[1e-2, 0.1, 1.0]).fit(X, X[:, 0] > 0)
    src, dst = tmp_path / "m.npz", tmp_path / "older.npz"
    model.save(src)

    def drop(meta):
        meta["params"].pop("loss")
        meta["params"].pop("cv")

    _rewrite_meta(src, dst, drop)
    loaded = gramfree.load(dst)
    assert loaded.loss == "squared" and loaded.cv == 5
    assert not hasattr(loaded, "predict_proba")
    np.testing.assert_array_equal(loaded.gcv_values_, model.gcv_values_)
    np.testing.assert_array_equal(loaded.decision_function(Xt), model.decision_function(Xt))


# -- parameters keep their types: a loaded model refits -------------------------------------


def _typed_model(case):
    from gramfree import KernelRegressorCV, PathKernelClassifier, PathKernelRegressor

    X, Xt, y = _data(n=60)
    if case == "path-regressor-tuple":
        model = PathKernelRegressor((8,), n_steps=20, random_state=0)
    elif case == "path-regressor-list":
        model = PathKernelRegressor([6, 4], n_steps=20, learning_rate=0.02, random_state=0)
    elif case == "path-classifier":
        model = PathKernelClassifier((5,), n_steps=20, random_state=0)
        y = np.array(["a", "b", "c"])[np.argmax(X, axis=1)]
    elif case == "cv-tuple":
        model = KernelRegressorCV(gamma=0.4, alphas=(1e-3, 0.1, 1))  # an int among floats
    elif case == "cv-list":
        model = KernelRegressorCV(gamma=0.4, alphas=[1e-2, 0.1, 1.0])
    elif case == "cv-array":
        model = KernelRegressorCV(gamma=0.4, alphas=np.array([1e-2, 0.1, 1.0]))
    elif case == "cv-array-float32":
        model = KernelRegressorCV(gamma=0.4, alphas=np.array([1e-2, 0.1], dtype=np.float32))
    elif case == "kernel-regressor":
        model = KernelRegressor(
            kernel=Polynomial(degree=2, gamma=0.5), alpha=0.3, n_centers=40, random_state=1
        )
    elif case == "matern-nu-inf-float":  # a float infinity, not the string "inf"
        model = KernelRegressor(kernel="matern", nu=math.inf, length_scale=0.7)
    elif case == "matern-nu-inf-string":
        model = KernelRegressor(kernel="matern", nu="inf", length_scale=0.7)
    else:
        raise AssertionError(case)
    return model, X, Xt, y


def _assert_same_typed(got, expected, where="params"):
    """Equal values of the same types, down to the elements of sequences and arrays."""
    assert type(got) is type(expected), (where, got, expected)
    if isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_same_typed(g, e, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            _assert_same_typed(got[key], expected[key], f"{where}.{key}")
    else:
        assert got == expected, where


TYPED_CASES = [
    "path-regressor-tuple",
    "path-regressor-list",
    "path-classifier",
    "cv-tuple",
    "cv-list",
    "cv-array",
    "cv-array-float32",
    "kernel-regressor",
    "matern-nu-inf-float",
    "matern-nu-inf-string",
]


@pytest.mark.parametrize("case", TYPED_CASES)
def test_loaded_parameters_keep_their_types_and_refit(case, tmp_path):
    """get_params() of a loaded model is the original's, types included (ints stay ints,
    a tuple a tuple, an array an array of its dtype), so clone() and refitting it work and
    give the model that refitting the original gives."""
    from sklearn.base import clone

    model, X, Xt, y = _typed_model(case)
    model.fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    _assert_same_typed(loaded.get_params(deep=False), model.get_params(deep=False))
    refit = clone(loaded).fit(X, y)
    expected = clone(model).fit(X, y)
    np.testing.assert_array_equal(refit.predict(Xt), expected.predict(Xt))
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))
    # and once more through a second save
    loaded.save(tmp_path / "again.gfm")
    again = gramfree.load(tmp_path / "again.gfm").get_params(deep=False)
    _assert_same_typed(again, model.get_params(deep=False))


def test_numpy_infinite_nu_saves(tmp_path):
    """nu=numpy.float64(inf), as GridSearchCV passes it from np.array([1.5, np.inf]):
    saving raised "Out of range float values are not JSON compliant"."""
    model, X, Xt, y = _typed_model("kernel-regressor")
    model = KernelRegressor(kernel="matern", nu=np.array([1.5, np.inf])[1]).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.get_params()["nu"] == math.inf
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))


def test_file_with_float_sequences_of_the_first_writer_loads_and_refits(tmp_path):
    """Version 1 as first written stored every sequence as floats: hidden_layer_sizes
    [8.0], alphas [0.001, ...]. Such files still load, predict as saved, and the widths
    come back as the integers they were, so the loaded model refits."""
    from sklearn.base import clone

    for case, name in (("path-regressor-tuple", "hidden_layer_sizes"), ("cv-tuple", "alphas")):
        model, X, Xt, y = _typed_model(case)
        model.fit(X, y)
        src, dst = tmp_path / f"{case}.npz", tmp_path / f"{case}-old.npz"
        model.save(src)
        first = [float(v) for v in model.get_params()[name]]

        def to_floats(meta, name=name, first=first):
            meta["params"][name] = first

        _rewrite_meta(src, dst, to_floats)
        loaded = gramfree.load(dst)
        np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))
        stored = loaded.get_params()[name]
        assert stored == list(model.get_params()[name])
        if name == "hidden_layer_sizes":
            assert all(type(v) is int for v in stored)
        np.testing.assert_array_equal(
            clone(loaded).fit(X, y).predict(Xt), clone(model).fit(X, y).predict(Xt)
        )


@pytest.mark.parametrize(
    "value, match",
    [
        (
            {"__tuple__": [8, "wide"]},
            r"'params.hidden_layer_sizes.__tuple__\[1\]' must be a finite",
        ),
        ({"__tuple__": [8], "more": 1}, r"unknown field\(s\) \['more'\]"),
        ({"__ndarray__": [8], "dtype": "object", "shape": [1]}, "must name an integer or float"),
        ({"__ndarray__": [8, 4], "dtype": "int64", "shape": [3]}, "has 2 values, its shape"),
        ({"__ndarray__": [300], "dtype": "int8", "shape": [1]}, "cannot hold exactly"),
        ({"__ndarray__": [8.5], "dtype": "int64", "shape": [1]}, "non-integers"),
        ([8, True], r"'params.hidden_layer_sizes\[1\]' must be a finite number"),
    ],
)
def test_damaged_sequence_parameters_refused_naming_the_field(value, match, tmp_path):
    model = _path_model("path-regressor")
    model.save(tmp_path / "m.gfm")

    def edit(meta):
        meta["params"]["hidden_layer_sizes"] = value

    _rewrite_meta(tmp_path / "m.gfm", tmp_path / "bad.npz", edit)
    with pytest.raises(ValueError, match=match):
        gramfree.load(tmp_path / "bad.npz")


def test_a_random_state_instance_is_saved_as_none_with_a_warning(tmp_path):
    """A RandomState random_state cannot be stored portably: it was saved as None in
    silence, and refits of the loaded model were not reproducible (a review). save()
    says so; an integer is kept."""
    import warnings

    from sklearn.datasets import load_diabetes

    from gramfree import KernelRegressor, load

    X, y = load_diabetes(return_X_y=True)
    model = KernelRegressor(solver="nystrom-pcg", n_centers=50, alpha=1e-2)
    model.set_params(random_state=np.random.RandomState(0)).fit(X, y)
    with pytest.warns(UserWarning, match=r"^random_state: a RandomState instance .* None"):
        model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.get_params()["random_state"] is None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.set_params(random_state=3).fit(X, y).save(tmp_path / "k.npz")
    assert load(tmp_path / "k.npz").get_params()["random_state"] == 3


def test_save_into_a_missing_directory_names_the_path(tmp_path):
    """The error named the internal temporary file ('.m.gfm.<hex>.tmp'), not the path
    given (a review); nothing is left behind."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    model = gramfree.KernelRegressor().fit(X, X[:, 0])
    target = tmp_path / "nodir" / "m.gfm"
    with pytest.raises(FileNotFoundError, match="path: the directory of .*nodir.* does not exist"):
        model.save(target)
    assert list(tmp_path.iterdir()) == []


def test_save_under_a_file_says_it_is_not_a_directory(tmp_path):
    """A regular file in place of the directory was reported as a missing directory."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    model = gramfree.KernelRegressor().fit(X, X[:, 0])
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError, match="path: the directory of .*is not a directory"):
        model.save(tmp_path / "afile" / "m.gfm")

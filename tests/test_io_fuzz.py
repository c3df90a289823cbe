"""Damaged and doctored model files: ``gramfree.load`` either refuses one with a ValueError
whose message starts "path: " (naming the file or the field), or returns a model that
predicts exactly as the original did. Never another exception, never a different model.

Each test starts from a valid file of one estimator type and applies one kind of damage:
raw bytes (truncation, flipped bytes), arrays (wrong dtype, shape, NaN/inf, extra or
missing ones) or the JSON metadata (fields removed, retyped or added).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gramfree
from gramfree import KernelClassifier, KernelRegressor, PathKernelClassifier, PathKernelRegressor

try:
    import pandas as pd
except ImportError:  # feature names then come from setting the attribute (see _named)
    pd = None

KINDS = [
    "regressor",
    "regressor-2d-f32-named",
    "classifier-binary-str",
    "classifier-multiclass-str",
    "classifier-int-poly",
    "path-regressor-checkpoints",
    "path-classifier-multiclass-str",
    "path-classifier-binary-unrecorded",
]

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _named(model, X, y):
    """Fit on a DataFrame when pandas is there (feature_names_in_ set by scikit-learn);
    otherwise fit on the array and set the attribute as scikit-learn would have."""
    names = [f"f{i}" for i in range(X.shape[1])]
    if pd is not None:
        return model.fit(pd.DataFrame(X, columns=names), y), pd.DataFrame(X[:25], columns=names)
    model.fit(X, y)
    model.feature_names_in_ = np.asarray(names, dtype=object)
    return model, X[:25]


def _fit(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1]
    colours = np.array(["red", "green", "blue"])[np.argmax(X, axis=1)].astype(object)
    side = np.where(X[:, 0] > 0, "pos", "neg").astype(object)
    Q = rng.normal(size=(25, 3))
    if kind == "regressor":
        return KernelRegressor(gamma=0.4, alpha=0.1).fit(X, y), Q
    if kind == "regressor-2d-f32-named":
        model = KernelRegressor(solver="nystrom-pcg", n_centers=15, random_state=0)
        return _named(model, X.astype(np.float32), np.column_stack([y, -y]))
    if kind == "classifier-binary-str":
        return KernelClassifier(alpha=0.1).fit(X, side), Q
    if kind == "classifier-multiclass-str":
        return KernelClassifier(alpha=0.1, n_centers=20, random_state=1).fit(X, colours), Q
    if kind == "classifier-int-poly":
        return KernelClassifier(kernel="poly", degree=2).fit(X, (X[:, 0] > 0) + (X[:, 1] > 1)), Q
    if kind == "path-regressor-checkpoints":
        return PathKernelRegressor((4,), n_steps=7, checkpoint_every=3, random_state=0).fit(X, y), Q
    if kind == "path-classifier-multiclass-str":
        return PathKernelClassifier((3,), n_steps=5, random_state=0).fit(X, colours), Q
    if kind == "path-classifier-binary-unrecorded":
        model = PathKernelClassifier(
            (3,), activation="relu", n_steps=5, record_path=False, random_state=0
        )
        return model.fit(X, side), Q
    raise AssertionError(kind)


def _outputs(model, Q):
    with warnings.catch_warnings():
        # a file that lost its optional feature_names gives a model without them: queried
        # with a DataFrame, scikit-learn warns; the predictions are what is compared
        warnings.simplefilter("ignore", UserWarning)
        out = {"predict": model.predict(Q)}
        if hasattr(model, "decision_function"):
            out["decision_function"] = model.decision_function(Q)
        # Its presence too: a squared-loss file marked logistic gained a softmax of ridge
        # scores (a review).
        if hasattr(model, "predict_proba"):
            out["predict_proba"] = model.predict_proba(Q)
    return out


@functools.cache
def _original(kind):
    """(file bytes, queries, outputs) of the valid file of this kind."""
    model, Q = _fit(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.gfm")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read(), Q, _outputs(model, Q)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "model.gfm"


def _check(kind, blob, path):
    """The load of ``blob`` refuses it (ValueError, "path: ...") or predicts as the
    original; any other exception fails the test."""
    _, Q, expected = _original(kind)
    path.write_bytes(blob)
    try:
        model = gramfree.load(path)
    except ValueError as exc:
        assert str(exc).startswith("path: "), str(exc)
        return "refused"
    got = _outputs(model, Q)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].shape == expected[key].shape, key
        assert np.array_equal(got[key], expected[key]), key
    return "loaded"


def _unpack(blob):
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(str(arrays.pop("__meta__")))


def _pack(arrays, meta):
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array(json.dumps(meta)), **arrays)  # object arrays: pickled
    return buf.getvalue()


# -- raw bytes ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_truncated_or_flipped_bytes(kind, data, model_file):
    blob = bytearray(_original(kind)[0])
    if data.draw(st.booleans(), label="truncate"):
        blob = blob[: data.draw(st.integers(0, len(blob) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            at = data.draw(st.integers(0, len(blob) - 1), label="offset")
            blob[at] ^= data.draw(st.integers(1, 255), label="mask")
    _check(kind, bytes(blob), model_file)


@pytest.mark.parametrize("brace", [b"{", b"}"])
def test_a_header_with_an_unbalanced_brace_is_refused(brace, model_file):
    # numpy 2 tokenizes a .npy header's dict before checking it: a damaged brace raised
    # tokenize's TokenError through load (the fuzz above found it).
    blob = bytearray(_original("classifier-multiclass-str")[0])
    start = blob.index(b"{'descr'")
    blob[start if brace == b"{" else blob.index(b"}", start)] = ord(" ")
    assert _check("classifier-multiclass-str", bytes(blob), model_file) == "refused"


def test_arrays_declaring_more_than_the_memory_are_refused(model_file, monkeypatch):
    """A member's declared size is checked against the machine's memory before anything
    is inflated (a deflated bomb ran into MemoryError or the OOM killer): here the
    memory is made smaller than a valid file's arrays."""
    from gramfree.solvers import _common

    blob = _original("classifier-multiclass-str")[0]
    monkeypatch.setattr(_common, "physical_bytes", lambda: 1000.0)
    model_file.write_bytes(blob)
    with pytest.raises(ValueError, match=r"path: .*declare .* GiB, more than the memory this"):
        gramfree.load(model_file)


def test_the_memory_guard_counts_what_the_process_may_still_take(monkeypatch):
    """The guard's room is the least of physical memory, MemAvailable, the cgroup's and
    the address-space limit's: a bomb declaring less than physical memory but more than a
    ulimit raised MemoryError instead of ValueError (a review)."""
    import resource

    from gramfree import io as gio

    free = gio._memory_for_reading()
    assert 0 < free <= gramfree.solvers._common.physical_bytes()
    size_kib = None
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                size_kib = int(line.split()[1])
    assert size_kib is not None
    limit = size_kib * 1024 + 10 * 2**20  # 10 MiB above what the process has mapped
    monkeypatch.setattr(resource, "getrlimit", lambda what: (limit, resource.RLIM_INFINITY))
    assert gio._memory_for_reading() <= 10 * 2**20 + 2 * 2**20


def test_zero_byte_items_are_refused_before_anything_is_allocated(model_file):
    """A member of dtype <U0 passes the size check at any shape (0 bytes either way): a
    7.6 KB file declaring 1e18 class labels asked numpy for 888 PiB (a review)."""
    arrays, meta = _unpack(_original("classifier-binary-str")[0])
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array(json.dumps(meta)), **arrays)
    blob = buf.getvalue()
    header = io.BytesIO()
    shape = (10**18,)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<U0", "fortran_order": False, "shape": shape}
    )
    import zipfile

    src, out = io.BytesIO(blob), io.BytesIO()
    with zipfile.ZipFile(src) as zs, zipfile.ZipFile(out, "w") as zo:
        for info in zs.infolist():
            data = header.getvalue() if info.filename == "classes.npy" else zs.read(info)
            zo.writestr(info.filename, data)
    model_file.write_bytes(out.getvalue())
    with pytest.raises(ValueError, match=r"path: .*'classes.npy' has zero-byte items"):
        gramfree.load(model_file)


def test_every_truncation_is_refused(model_file):
    # A cut anywhere loses the zip's central directory at the end of the file.
    blob = _original("path-classifier-binary-unrecorded")[0]
    for length in range(0, len(blob), 7):
        assert _check("path-classifier-binary-unrecorded", blob[:length], model_file) == "refused"


# -- arrays -------------------------------------------------------------------------------


def _replacements(a):
    """Wrong dtypes and shapes for array ``a`` (and one harmless change: byte order)."""
    out = {
        "object": a.astype(object),
        "3-d": a.reshape(1, *a.shape, 1) if a.ndim == 2 else a.reshape(1, 1, -1),
        "empty": np.empty((0,) * max(a.ndim, 1), dtype=a.dtype),
        "other byte order": a.astype(a.dtype.newbyteorder("S")),
        "one row more": (
            a.reshape(1)
            if a.ndim == 0
            else np.concatenate([a, a[-1:]])
            if len(a)
            else np.zeros((1, *a.shape[1:]), a.dtype)
        ),
        "one row less": a.reshape(1, 1) if a.ndim == 0 else a[:-1] if len(a) else a[None],
        "one column more": np.concatenate([a, a[:, -1:]], axis=1) if a.ndim == 2 else a[None],
        "scalar": np.array(a.flat[0]) if a.size else np.array(1.0),
        "string": a.astype(str),
    }
    if a.dtype.kind in "biuf":
        for name, dtype in [
            ("int", np.int64),
            ("int32", np.int32),
            ("complex", np.complex128),
            ("float32", np.float32),
            ("float64", np.float64),
            ("bool", bool),
        ]:
            out[name] = a.astype(dtype)
    return out


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_arrays_replaced(kind, data, model_file):
    arrays, meta = _unpack(_original(kind)[0])
    key = data.draw(st.sampled_from(sorted(arrays) + ["__meta__"]), label="array")
    current = np.array(json.dumps(meta)) if key == "__meta__" else arrays[key]
    choices = _replacements(current)
    how = data.draw(st.sampled_from(sorted(choices)), label="replacement")
    # A regressor fitted on a 2-d y stores its number of targets nowhere but in
    # dual_coef: another column count there is another valid model, not visible damage.
    assume(not (kind.startswith("regressor-2d") and key == "dual_coef" and "column" in how))
    if key == "__meta__":
        buf = io.BytesIO()
        np.savez(buf, __meta__=choices[how], **arrays)
        blob = buf.getvalue()
    else:
        arrays[key] = choices[how]
        blob = _pack(arrays, meta)
    _check(kind, blob, model_file)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_non_finite_values_inserted(kind, data, model_file):
    arrays, meta = _unpack(_original(kind)[0])
    floats = sorted(k for k, a in arrays.items() if a.dtype.kind == "f" and a.size)
    key = data.draw(st.sampled_from(floats), label="array")
    a = arrays[key].copy()
    a.flat[data.draw(st.integers(0, a.size - 1), label="index")] = data.draw(
        st.sampled_from([np.nan, np.inf, -np.inf]), label="value"
    )
    arrays[key] = a
    assert _check(kind, _pack(arrays, meta), model_file) == "refused"


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_arrays_added_or_removed(kind, data, model_file):
    arrays, meta = _unpack(_original(kind)[0])
    if data.draw(st.booleans(), label="remove"):
        key = data.draw(st.sampled_from(sorted(arrays) + ["__meta__"]), label="array")
        if key == "__meta__":
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            blob = buf.getvalue()
        else:
            del arrays[key]
            blob = _pack(arrays, meta)
    else:
        key = data.draw(
            st.sampled_from(["extra", "feature_names", "classes", "path_X", "checkpoints", "coef"]),
            label="array",
        )
        # only new keys: another valid array in place of one (relabelled classes) is
        # another valid model; replacements are test_arrays_replaced's
        assume(key not in arrays)
        n = data.draw(st.integers(0, 4), label="length")
        arrays[key] = data.draw(
            st.sampled_from([np.arange(n, dtype=float), np.array([f"x{i}" for i in range(n)])])
        )
        blob = _pack(arrays, meta)
    _check(kind, blob, model_file)


# -- the JSON metadata --------------------------------------------------------------------


def _json_paths(value, prefix=()):
    """Every position in a JSON value, as a tuple of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_paths(v, (*prefix, i))


def _json_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _retypes(value):
    """Values of another JSON type. A number and null are not swapped for each other:
    both are valid for optional numbers (gamma=None means 1 / n_features), so that swap
    is another valid model, not damage a reader could see."""
    pool = [None, "text", [1, 2], {"k": 1}, True, 7]
    own = _json_type(value)
    return [
        v for v in pool if _json_type(v) != own and {own, _json_type(v)} != {"number", "NoneType"}
    ]


def _node(meta, path):
    for step in path:
        meta = meta[step]
    return meta


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_metadata_fields_removed_retyped_or_added(kind, data, model_file):
    arrays, meta = _unpack(_original(kind)[0])
    paths = list(_json_paths(meta))
    action = data.draw(st.sampled_from(["remove", "retype", "add"]), label="action")
    if action == "add":
        objects = [p for p in paths if isinstance(_node(meta, p), dict)]
        _node(meta, data.draw(st.sampled_from(objects), label="object"))["zz_newer_field"] = 1
    else:
        path = data.draw(st.sampled_from(paths[1:]), label="field")
        parent = _node(meta, path[:-1])
        if action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(st.sampled_from(_retypes(parent[path[-1]])), label="value")
    _check(kind, _pack(arrays, meta), model_file)


def _numbers(value):
    """Paths of the JSON numbers (not booleans) in ``value``."""
    for path in _json_paths(value):
        if _json_type(_node(value, path)) == "number":
            yield path


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("huge", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_integers_beyond_float64_in_any_number_field(kind, huge, model_file):
    """JSON integers have no limit: one beyond float64 made load raise OverflowError
    (fit_time_, alpha_, loss_curve_, ...), and a path-kernel file's learning rate of
    10^400 loaded, then failed in predict (a review)."""
    arrays, meta = _unpack(_original(kind)[0])
    for path in _numbers(meta):
        doctored = json.loads(json.dumps(meta))
        _node(doctored, path[:-1])[path[-1]] = huge
        _check(kind, _pack(arrays, doctored), model_file)


def test_a_batch_size_beyond_int64_is_refused_without_a_recorded_path(model_file):
    """Without a recorded path the training rows are unknown and batch_size_ had no upper
    bound: 2^64 loaded, and predict failed in pybind11's cast (a review)."""
    kind = "path-classifier-binary-unrecorded"
    arrays, meta = _unpack(_original(kind)[0])
    meta["attributes"]["batch_size_"] = 2**64
    model_file.write_bytes(_pack(arrays, meta))
    with pytest.raises(ValueError, match=r"path: field 'attributes.batch_size_' must be >= 1"):
        gramfree.load(model_file)


@pytest.mark.parametrize(
    "kind, loss", [("classifier-binary-str", "logistic"), ("logistic", "squared")]
)
def test_a_fitted_loss_that_contradicts_the_model_is_refused(kind, loss, model_file):
    """fitted_loss decides predict_proba's presence: a squared-loss file marked logistic
    loaded with a softmax of ridge scores as probabilities, and a logistic one marked
    squared lost them (a review)."""
    if kind == "logistic":
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40, 3))
        model = KernelClassifier(loss="logistic", alpha=0.1).fit(X, X[:, 0] > 0)
        model.save(model_file)
        blob = model_file.read_bytes()
    else:
        blob = _original(kind)[0]
    arrays, meta = _unpack(blob)
    meta["attributes"]["fitted_loss"] = loss
    model_file.write_bytes(_pack(arrays, meta))
    with pytest.raises(ValueError, match=r"path: field 'attributes.fitted_loss' is "):
        gramfree.load(model_file)


@pytest.mark.parametrize("shape", [[1] * 65, [2**70, 0], [2**62, 2**62, 0]])
def test_an_array_parameter_of_an_impossible_shape_is_refused(shape, model_file):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    gramfree.KernelRegressorCV(alphas=np.array([0.1, 1.0])).fit(X, X[:, 0]).save(model_file)
    arrays, meta = _unpack(model_file.read_bytes())
    values = [0.5] if shape == [1] * 65 else []  # as many as the shape holds
    meta["params"]["alphas"] = {"__ndarray__": values, "dtype": "float64", "shape": shape}
    model_file.write_bytes(_pack(arrays, meta))
    with pytest.raises(ValueError, match=r"path: field 'params.alphas.shape' "):
        gramfree.load(model_file)


@pytest.mark.parametrize(
    "name, value, message",
    [("n_jobs", 0, "non-zero integer"), ("device", "x", "expected 'cpu'")],
)
def test_parameters_predict_would_refuse_are_refused_at_load(name, value, message, model_file):
    """n_jobs=0 and device='x' loaded and predict refused them (a review). A device only
    another machine has (cuda) loads: that is no damage."""
    arrays, meta = _unpack(_original("regressor")[0])
    meta["params"][name] = value
    model_file.write_bytes(_pack(arrays, meta))
    with pytest.raises(ValueError, match=rf"path: field 'params.{name}' .*{message}"):
        gramfree.load(model_file)
    meta["params"]["device"] = "cuda:3"
    meta["params"]["n_jobs"] = 10**6
    model_file.write_bytes(_pack(arrays, meta))
    assert gramfree.load(model_file).device == "cuda:3"


@pytest.mark.parametrize("kind", KINDS)
def test_originals_load_exactly(kind, model_file):
    assert _check(kind, _original(kind)[0], model_file) == "loaded"

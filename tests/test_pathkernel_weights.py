"""sample_weight for the path-kernel estimators: unit weights train bit for bit as none,
integer weights (full batch) as the rows repeated, and every replay (decompose,
self_influence, kernels, saved models) uses the weights training used, so the
decomposition stays exact and a row's share scales with its weight (zero: exactly none)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

import gramfree
from gramfree import PathKernelClassifier, PathKernelRegressor, _core
from gramfree.pathkernel import reference as ref


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def _standardised(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _diabetes(n=40):
    X, y = load_diabetes(return_X_y=True)
    X, y = _standardised(X)[:n, :5], y[:n]
    return X, (y - y.mean()) / y.std()


def _iris(n=45):
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))[:n]  # all three classes
    return _standardised(X)[order], y[order]


def _cancer(n=40):
    X, y = load_breast_cancer(return_X_y=True)
    return _standardised(X)[:n, :6], y[:n]


PROBLEMS = {
    "regressor": (_diabetes, lambda **kw: PathKernelRegressor((6,), learning_rate=0.1, **kw)),
    "softmax": (_iris, lambda **kw: PathKernelClassifier((5,), learning_rate=0.3, **kw)),
    "logistic": (_cancer, lambda **kw: PathKernelClassifier((5,), learning_rate=0.3, **kw)),
}


def _weights(n, seed=1, high=4):
    """Integer weights 0..high-1, with at least two zeros."""
    w = np.random.default_rng(seed).integers(0, high, size=n).astype(float)
    w[[1, 4]] = 0.0
    return w


def _contributions(model, Q):
    dec = model.decompose(Q)
    C = dec.contributions
    return dec, (C if C.ndim == 3 else C[:, :, None])


# -- unit weights are no weights, bit for bit ------------------------------------------------


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("batch_size", [None, 16])
def test_unit_weights_train_and_replay_bit_for_bit_as_none(problem, batch_size):
    data, make = PROBLEMS[problem]
    X, y = data()
    kw = dict(n_steps=25, batch_size=batch_size, alpha=0.01, random_state=0)
    plain = make(**kw).fit(X, y)
    ones = make(**kw).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(ones._params, plain._params)
    assert ones.loss_curve_ == plain.loss_curve_
    a, b = plain.decompose(X[:4]), ones.decompose(X[:4])
    for field in ("initial", "contributions", "reg", "output", "path_norm"):
        np.testing.assert_array_equal(getattr(b, field), getattr(a, field))
    np.testing.assert_array_equal(ones.self_influence(), plain.self_influence())
    np.testing.assert_array_equal(ones.path_kernel(X[:3]), plain.path_kernel(X[:3]))


# -- full batch: integer weights are repeated rows -------------------------------------------


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_integer_weights_full_batch_equal_repeated_rows(problem):
    data, make = PROBLEMS[problem]
    X, y = data()
    w = _weights(len(y))
    kw = dict(n_steps=30, alpha=0.05, random_state=0)  # full batch (batch_size=None)
    weighted = make(**kw).fit(X, y, sample_weight=w)
    copies = np.repeat(np.arange(len(y)), w.astype(int))
    repeated = make(**kw).fit(X[copies], y[copies])
    assert _rel(weighted._params, repeated._params) < 1e-10
    assert _rel(np.asarray(weighted.loss_curve_), np.asarray(repeated.loss_curve_)) < 1e-10
    out = "predict" if problem == "regressor" else "decision_function"
    assert _rel(getattr(weighted, out)(X), getattr(repeated, out)(X)) < 1e-10

    # A weighted row's contribution is the sum of its copies'; its path norm is a copy's
    # times the weight, so contribution / path_norm ranks it as each copy would be ranked.
    Q = X[:5]
    dw, Cw = _contributions(weighted, Q)
    dr, Cr = _contributions(repeated, Q)
    summed = np.zeros_like(Cw)
    np.add.at(summed, (slice(None), copies), Cr)
    assert _rel(Cw, summed) < 1e-10
    assert _rel(dw.reg, dr.reg) < 1e-10
    first_copy = np.searchsorted(copies, np.arange(len(y)))
    kept = w > 0
    assert _rel(dw.path_norm[kept], w[kept] * dr.path_norm[first_copy[kept]]) < 1e-10
    assert dw.reconstruction_error < 1e-9 and dr.reconstruction_error < 1e-9
    # The kernels replay the weighted trajectory too.
    assert _rel(weighted.path_kernel(Q, X), repeated.path_kernel(Q, X)) < 1e-10
    assert (
        _rel(weighted.tangent_kernel(Q, X, step=17), repeated.tangent_kernel(Q, X, step=17)) < 1e-10
    )


# -- the decomposition stays exact -------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 8])
def test_weighted_decomposition_matches_the_reference(batch_size):
    X, y = _diabetes(n=24)
    w = np.random.default_rng(3).uniform(0, 3, size=len(y))
    w[2] = 0.0
    m = PathKernelRegressor(
        (5,), learning_rate=0.1, n_steps=15, batch_size=batch_size, alpha=0.02, random_state=2
    ).fit(X, y, sample_weight=w)
    Q = X[:3] + 0.1
    dec = m.decompose(Q)
    net = ref.ReferenceMLP(m.network_.sizes, m.activation, m.network_.loss)
    w0 = m.network_.pack(m.initial_coefs_, m.initial_intercepts_)
    _, C, reg, _, wT = ref.decompose(
        net,
        w0,
        X,
        y[:, None],
        Q,
        learning_rate=m.learning_rate,
        n_steps=m.n_steps,
        batch_size=m.batch_size_,
        alpha=m.alpha,
        seed=m.batch_seed_,
        shuffle=m.shuffle,
        n_nodes=8,
        sample_weight=w,
    )
    assert _rel(m._params, wT) < 1e-12
    assert _rel(dec.contributions, C[:, :, 0]) < 1e-9
    assert _rel(dec.reg, reg[:, 0]) < 1e-9
    assert dec.reconstruction_error < 1e-9


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_weighted_decomposition_sums_to_the_prediction_in_every_replay(problem):
    data, make = PROBLEMS[problem]
    X, y = data()
    w = np.random.default_rng(4).uniform(0, 2, size=len(y))
    w[:3] = 0.0
    m = make(
        n_steps=40, batch_size=12, alpha=0.01, random_state=1, checkpoint_every=10, n_jobs=2
    ).fit(X, y, sample_weight=w)
    dec = m.decompose(X[:6])  # checkpoint ranges side by side
    assert dec.reconstruction_error < 1e-9
    assert m.replay_gap_ == 0.0
    serial = make(n_steps=40, batch_size=12, alpha=0.01, random_state=1).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(serial._params, m._params)
    assert _rel(serial.decompose(X[:6]).contributions, dec.contributions) < 1e-12
    # self-influence is the diagonal of the training set's decomposition
    full = serial.decompose(X)
    si = serial.self_influence()
    target = serial._select_training_target
    diag = target(
        np.stack([np.atleast_2d(full.contributions[i, i]).reshape(-1) for i in range(len(y))])
    )
    assert _rel(si, diag) < 1e-9  # the self-check refines per query set: not bit for bit


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_zero_weight_rows_contribute_exactly_nothing(problem):
    data, make = PROBLEMS[problem]
    X, y = data()
    w = _weights(len(y), seed=5)
    zero = np.flatnonzero(w == 0)
    m = make(n_steps=20, batch_size=10, random_state=0).fit(X, y, sample_weight=w)
    dec = m.decompose(X[:5])
    assert np.all(dec.contributions[:, zero] == 0)
    assert np.all(dec.path_norm[zero] == 0)
    assert np.all(m.self_influence()[zero] == 0)
    assert dec.reconstruction_error < 1e-9


# -- model files ----------------------------------------------------------------------------------


def test_save_load_keeps_the_weights_and_the_decomposition(tmp_path):
    X, y = _iris()
    w = _weights(len(y))
    m = PathKernelClassifier((4,), learning_rate=0.3, n_steps=20, batch_size=9, random_state=0).fit(
        X, y, sample_weight=w
    )
    path = tmp_path / "weighted.gfm"
    m.save(path)
    loaded = gramfree.load(path)
    np.testing.assert_array_equal(loaded._sample_weight, w)
    np.testing.assert_array_equal(
        loaded.decompose(X[:4]).contributions, m.decompose(X[:4]).contributions
    )
    assert loaded.replay_gap_ == 0.0
    assert loaded.path_memory_bytes_ == m.path_memory_bytes_

    # Unweighted models write no weights and load unweighted (as every older file).
    plain = PathKernelClassifier((4,), n_steps=5, random_state=0).fit(X, y)
    plain.save(tmp_path / "plain.gfm")
    with np.load(tmp_path / "plain.gfm") as data:
        assert "sample_weight" not in data.files
    assert gramfree.load(tmp_path / "plain.gfm")._sample_weight is None
    # record_path=False keeps no weights: nothing to replay.
    bare = PathKernelClassifier((4,), n_steps=5, record_path=False, random_state=0).fit(
        X, y, sample_weight=w
    )
    assert bare._sample_weight is None and bare.path_memory_bytes_ == 0


def _rewrite(src, dst, edit):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.update(sample_weight=a["sample_weight"][:-1]), "'sample_weight' has shape"),
        (
            lambda a: a.update(sample_weight=a["sample_weight"][:, None]),
            "'sample_weight' has shape",
        ),
        (
            lambda a: a.update(sample_weight=a["sample_weight"].astype(np.float32)),
            "'sample_weight' has dtype",
        ),
        (lambda a: a.update(sample_weight=-a["sample_weight"]), "'sample_weight' must be >= 0"),
        (lambda a: a.update(sample_weight=0 * a["sample_weight"]), "'sample_weight' must be >= 0"),
        (lambda a: a["sample_weight"].__setitem__(0, np.nan), "'sample_weight' holds non-finite"),
        (lambda a: [a.pop(k) for k in ("path_X", "path_Y", "checkpoints")], "'sample_weight'"),
    ],
)
def test_damaged_weights_in_a_file_are_refused(tmp_path, edit, match):
    X, y = _diabetes(n=20)
    m = PathKernelRegressor((3,), n_steps=5, random_state=0).fit(X, y, sample_weight=_weights(20))
    m.save(tmp_path / "m.gfm")
    _rewrite(tmp_path / "m.gfm", tmp_path / "bad.gfm", edit)
    with pytest.raises(ValueError, match=match):
        gramfree.load(tmp_path / "bad.gfm")


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [PathKernelRegressor, PathKernelClassifier])
@pytest.mark.parametrize(
    "bad",
    [
        "negative",
        "nan",
        "inf",
        "short",
        "long",
        "all zero",
        "2-d",
    ],
)
def test_bad_weights_are_refused_naming_sample_weight(make, bad):
    X, y = _cancer(n=20)
    w = np.ones(20)
    if bad == "negative":
        w[3] = -1.0
    elif bad == "nan":
        w[3] = np.nan
    elif bad == "inf":
        w[3] = np.inf
    elif bad == "short":
        w = w[:-1]
    elif bad == "long":
        w = np.ones(21)
    elif bad == "all zero":
        w = np.zeros(20)
    else:
        w = w[:, None]
    with pytest.raises(ValueError, match="sample_weight"):
        make((3,), n_steps=3).fit(X, y, sample_weight=w)


def test_the_native_boundary_checks_the_weights_again():
    X, y = _diabetes(n=10)
    m = PathKernelRegressor((3,), n_steps=2, random_state=0).fit(X, y)
    spec, Xt, Yt, w0 = m._replay_inputs()
    train = lambda sw: _core.mlp_train(spec, Xt, Yt, w0, sample_weight=sw)
    with pytest.raises(ValueError, match="sample_weight: expected a 1-d array of length 10"):
        train(np.ones(9))
    with pytest.raises(ValueError, match="sample_weight: expected a 1-d array"):
        train(np.ones((10, 1)))
    with pytest.raises(TypeError, match="sample_weight"):
        train(np.ones(10, dtype=np.float32))
    with pytest.raises(TypeError, match="sample_weight"):
        train([1.0] * 10)
    with pytest.raises(TypeError, match="sample_weight"):
        train(np.ones(20)[::2])
    for value, match in [(-1.0, "finite and >= 0"), (np.nan, "finite and >= 0")]:
        w = np.ones(10)
        w[4] = value
        with pytest.raises(ValueError, match=f"sample_weight: must be {match}"):
            train(w)
    with pytest.raises(ValueError, match="sample_weight: all weights are zero"):
        train(np.zeros(10))
    for call in (
        lambda sw: _core.mlp_decompose(spec, Xt, Yt, w0, Xt[:2], sample_weight=sw),
        lambda sw: _core.mlp_tangent_kernel(spec, Xt, Yt, w0, Xt, Xt, path=True, sample_weight=sw),
    ):
        with pytest.raises(ValueError, match="sample_weight"):
            call(np.zeros(10))
        with pytest.raises(ValueError, match="sample_weight"):
            call(np.ones(3))


def test_the_callers_array_is_neither_changed_nor_kept():
    X, y = _diabetes(n=30)
    w = _weights(30)
    before = w.copy()
    m = PathKernelRegressor((4,), n_steps=10, random_state=0).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(w, before)
    assert not np.shares_memory(m._sample_weight, w)
    w[:] = 1.0  # changing it after fit does not change the replay
    assert m.decompose(X[:2]).reconstruction_error < 1e-9
    assert m.replay_gap_ == 0.0
    # lists and scalars are weights too
    listed = PathKernelRegressor((4,), n_steps=10, random_state=0).fit(
        X, y, sample_weight=before.tolist()
    )
    np.testing.assert_array_equal(listed._params, m._params)


def test_a_penalty_step_beyond_two_is_refused_before_training():
    """The penalty alone multiplies the weights by 1 - lr alpha / (B wbar) per step: tiny
    sample weights (hypothesis drew [0, 2.6e-263]) or a huge alpha diverge whatever the
    data, and the error names what to change instead of a divergence at step 1."""
    X, y = _diabetes(n=10)
    tiny = np.r_[0.0, np.full(9, 1e-263)]
    with pytest.raises(ValueError, match="sample_weight.*mean 9e-264"):
        PathKernelRegressor((4,), learning_rate=0.1, alpha=0.01).fit(X, y, sample_weight=tiny)
    with pytest.raises(ValueError, match="alpha=500") as info:
        PathKernelRegressor((4,), learning_rate=0.1, alpha=500.0).fit(X, y)
    assert "sample_weight" not in str(info.value)
    # at the bound itself (lr alpha / B = 2, the contraction is -1) training is allowed
    PathKernelRegressor((4,), learning_rate=0.1, alpha=200.0, n_steps=3).fit(X, y)


# -- hypothesis: random weights at the boundary ------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_random_weights_keep_the_decomposition_exact(data):
    n = data.draw(st.integers(2, 24), label="n")
    weights = data.draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(0.0, 10.0, allow_subnormal=False)),
            min_size=n,
            max_size=n,
        ),
        label="weights",
    )
    w = np.array(weights)
    if not w.any():
        w[data.draw(st.integers(0, n - 1), label="positive row")] = 1.0
    batch = data.draw(st.one_of(st.none(), st.integers(1, n)), label="batch_size")
    classify = data.draw(st.booleans(), label="classifier")
    X, y = _iris(n=max(n, 3)) if classify else _diabetes(n=n)
    X, y = X[:n], y[:n]
    if classify and len(np.unique(y)) < 2:
        y = np.arange(n) % 2
    make = PathKernelClassifier if classify else PathKernelRegressor
    est = make((4,), learning_rate=0.1, n_steps=8, batch_size=batch, alpha=0.01, random_state=0)
    if 0.1 * 0.01 / (min(batch or n, n) * w.mean()) > 2:  # weights ~1e-263: the penalty's step
        with pytest.raises(ValueError, match="sample_weight"):
            est.fit(X, y, sample_weight=w)
        return
    m = est.fit(X, y, sample_weight=w)
    spec, Xt, Yt, w0 = m._replay_inputs()
    out = _core.mlp_decompose(spec, Xt, Yt, w0, Xt[:3], sample_weight=m._sample_weight)
    recon = out["initial"] + out["contributions"].sum(axis=1) + out["reg"]
    assert _rel(recon, out["final"]) < 1e-9
    np.testing.assert_array_equal(out["final_params"], m._params)
    assert np.all(out["contributions"][:, w == 0] == 0)

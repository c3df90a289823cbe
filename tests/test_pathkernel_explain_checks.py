"""Path-kernel explain: a given decomposition is checked against the model and X, and
``target`` reads class labels and the keywords "predicted" / "margin" by one rule (an
explicit class label wins; None is the predicted class), for binary and multiclass alike.

References: the model's own ``decompose`` and ``decision_function`` / ``predict``.
"""

import copy
import dataclasses
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from gramfree import PathKernelClassifier, PathKernelRegressor
from gramfree.pathkernel import ReplayMismatchWarning

FAST = dict(learning_rate=0.1, n_steps=30, random_state=0)


def _standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return _standardized(X[:80]), (y[:80] - y[:80].mean()) / y[:80].std()


@pytest.fixture(scope="module")
def regressor(diabetes):
    X, y = diabetes
    return PathKernelRegressor((8,), **FAST).fit(X[:60], y[:60])


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return _standardized(X)[::2], y[::2]  # 75 rows, 25 per class


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return _standardized(X)[:100], y[:100]


def _same_explanation(a, b):
    """Field by field, bit for bit (NaN padding equal to NaN padding)."""
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype, field.name
            np.testing.assert_array_equal(x, y, err_msg=field.name)
        else:
            assert x == y, field.name


# -- the decomposition is checked ---------------------------------------------------------


def test_decomposition_must_be_a_path_decomposition(regressor, diabetes):
    Q = diabetes[0][60:65]
    dec = regressor.decompose(Q)
    for bad in (dataclasses.asdict(dec), dec.contributions, regressor.explain(Q, top_k=2)):
        with pytest.raises(TypeError, match="^decomposition: must be a PathDecomposition"):
            regressor.explain(Q, decomposition=bad)


@pytest.mark.parametrize("target", [False, 0.0, True, np.True_, 1])
def test_one_output_regressor_refuses_targets_other_than_0(regressor, diabetes, target):
    """False and 0.0 compared equal to 0 and were taken (a review); True was refused."""
    X, _ = diabetes
    with pytest.raises(ValueError, match="target: this model has one output"):
        regressor.explain(X[:2], target=target)


def test_decomposition_of_another_model_is_refused(regressor, diabetes):
    X, y = diabetes
    Q = X[60:65]
    # Same queries, same training set size and outputs, other weights.
    other = PathKernelRegressor((8,), **{**FAST, "random_state": 1}).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="^decomposition: its outputs differ from this model's"):
        regressor.explain(Q, decomposition=other.decompose(Q))
    # Another number of training examples.
    fewer = PathKernelRegressor((8,), **FAST).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match=r"^decomposition: .*60 training examples"):
        regressor.explain(Q, decomposition=fewer.decompose(Q))
    # Several outputs instead of one, and one (y of one column) kept as 2-d.
    for Y in (np.c_[y, -y], y[:, None]):
        multi = PathKernelRegressor((8,), **FAST).fit(X[:60], Y[:60])
        with pytest.raises(ValueError, match=r"^decomposition: .*one output"):
            regressor.explain(Q, decomposition=multi.decompose(Q))
        with pytest.raises(ValueError, match=r"^decomposition: .*contributions have shape"):
            multi.explain(Q, target=0, decomposition=regressor.decompose(Q))


def test_decomposition_of_other_queries_is_refused(regressor, diabetes):
    X = diabetes[0]
    Q = X[60:65]
    with pytest.raises(ValueError, match="^decomposition: its outputs differ from this model's"):
        regressor.explain(Q, decomposition=regressor.decompose(X[65:70]))
    with pytest.raises(ValueError, match="^decomposition: its outputs differ"):
        regressor.explain(Q, decomposition=regressor.decompose(Q[::-1]))  # same rows, reordered
    with pytest.raises(ValueError, match=r"^decomposition: .*5 queries"):
        regressor.explain(Q, decomposition=regressor.decompose(X[60:64]))


def test_decomposition_fields_are_checked(regressor, diabetes):
    Q = diabetes[0][60:65]
    dec = regressor.decompose(Q)
    scale = np.max(np.abs(dec.output))
    bumped = dec.output.copy()
    bumped[2] += 1e-6 * scale
    with pytest.raises(ValueError, match="^decomposition: its outputs differ"):
        regressor.explain(Q, decomposition=dataclasses.replace(dec, output=bumped))
    nan = dec.output.copy()
    nan[0] = np.nan
    with pytest.raises(ValueError, match="^decomposition: its outputs differ"):
        regressor.explain(Q, decomposition=dataclasses.replace(dec, output=nan))
    with pytest.raises(ValueError, match="^decomposition: its path_norm has shape"):
        regressor.explain(Q, decomposition=dataclasses.replace(dec, path_norm=dec.path_norm[1:]))
    with pytest.raises(ValueError, match="^decomposition: its initial has shape"):
        regressor.explain(Q, decomposition=dataclasses.replace(dec, initial=dec.initial[:, None]))
    # Rounding far below the tolerance (a replay at another SIMD level: ~5e-16) passes.
    close = dataclasses.replace(dec, output=dec.output * (1 + 1e-13))
    ex = regressor.explain(Q, decomposition=close)
    np.testing.assert_array_equal(ex.value, close.output)
    np.testing.assert_array_equal(ex.supporting, regressor.explain(Q).supporting)


def test_a_decomposition_whose_sums_miss_its_output_is_approximate(regressor, diabetes):
    """A decomposition handed in is checked at its outputs; its sums are checked too: with
    its contributions doubled, explain presented totals twice the value as exact shares
    (a review). It now warns and its note says approximate; one that adds up does not."""
    Q = diabetes[0][60:65]
    dec = regressor.decompose(Q)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = regressor.explain(Q, decomposition=dec)
    assert "exact share" in exact.note
    doubled = dataclasses.replace(dec, contributions=dec.contributions * 2)
    with pytest.warns(UserWarning, match="^explain: the decomposition's self-check residual"):
        ex = regressor.explain(Q, decomposition=doubled)
    assert "approximation" in ex.note
    nan = dec.contributions.copy()
    nan[0, 0] = np.nan
    with pytest.warns(UserWarning, match="residual inf"):
        regressor.explain(Q, decomposition=dataclasses.replace(dec, contributions=nan))


def test_classifier_decompositions_of_other_models_are_refused(iris, cancer):
    Xi, yi = iris
    Xc, yc = cancer
    Xc = Xc[:75, :4]  # as many rows and features as the iris subset
    multi = PathKernelClassifier((6,), **FAST).fit(Xi, yi)
    binary = PathKernelClassifier((6,), **FAST).fit(Xc, yc[:75])
    Q = Xi[::10]
    with pytest.raises(ValueError, match=r"^decomposition: .*one output"):
        binary.explain(Q, decomposition=multi.decompose(Q))
    with pytest.raises(ValueError, match=r"^decomposition: .*3 outputs"):
        multi.explain(Q, decomposition=binary.decompose(Q))
    other = PathKernelClassifier((6,), **{**FAST, "random_state": 3}).fit(Xi, yi)
    with pytest.raises(ValueError, match="^decomposition: its outputs differ"):
        multi.explain(Q, decomposition=other.decompose(Q))


def test_model_without_path_refuses_a_decomposition(regressor, diabetes):
    X, y = diabetes
    Q = X[60:65]
    bare = PathKernelRegressor((8,), **FAST, record_path=False).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="record_path"):
        bare.explain(Q, decomposition=regressor.decompose(Q))


def test_replay_gap_is_named(regressor, diabetes):
    Q = diabetes[0][60:65]
    model = copy.deepcopy(regressor)
    model._params = model._params.copy()
    model._params[0] += 1e-3  # as if the weights changed after fit
    with pytest.warns(ReplayMismatchWarning):
        dec = model.decompose(Q)
    with pytest.raises(ValueError, match="did not reproduce the fitted weights"):
        model.explain(Q, decomposition=dec)


@pytest.mark.parametrize("normalize", [False, True])
def test_own_decomposition_gives_the_same_explanation(regressor, diabetes, iris, cancer, normalize):
    X, y = diabetes
    Q = X[60:70]
    multi_out = PathKernelRegressor((8,), **FAST).fit(X[:60], np.c_[y, y**2][:60])
    multi = PathKernelClassifier((6,), **FAST).fit(*iris)
    binary = PathKernelClassifier((6,), **FAST).fit(*cancer)
    Qc = iris[0][1::7]
    Qb = cancer[0][::9]
    Qb32 = Qb.astype(np.float32)
    cases = [
        (regressor, Q, [None, 0]),
        (multi_out, Q, [0, 1]),
        (multi, Qc, [None, "predicted", "margin", 0, 2]),
        (binary, Qb, [None, "margin", 0, 1]),
        (binary, Qb32, [None]),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model, Xq, targets in cases:
            dec = model.decompose(Xq)
            for target in targets:
                got = model.explain(
                    Xq, top_k=3, target=target, normalize=normalize, decomposition=dec
                )
                want = model.explain(Xq, top_k=3, target=target, normalize=normalize)
                _same_explanation(got, want)


# -- target: one rule for class labels and keywords ------------------------------------------


def _check_explained(ex, C, value, labels, top_k):
    """ex against an independent reference: contributions C (q, n) of the explained
    quantity, its value, and the label each query reports."""
    np.testing.assert_allclose(ex.value, value, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(ex.target, labels)
    np.testing.assert_allclose(ex.positive_total, np.where(C > 0, C, 0).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(ex.negative_total, np.where(C < 0, C, 0).sum(axis=1), rtol=1e-12)
    top = np.argsort(-C, axis=1, kind="stable")[:, :top_k]
    np.testing.assert_array_equal(ex.supporting, top)
    np.testing.assert_array_equal(ex.supporting_contributions, np.take_along_axis(C, top, 1))


@pytest.fixture(scope="module")
def binary_named(cancer):
    """Binary models whose classes are labelled "margin" or "predicted" (sorted: index 0)
    and one with "margin" as classes_[1]."""
    X, y = cancer
    out = {}
    for names in (["margin", "other"], ["predicted", "zzz"], ["a", "margin"]):
        labels = np.array(names)[y]
        out[tuple(names)] = PathKernelClassifier((6,), **FAST).fit(X, labels)
    return out, X[::7]


def test_binary_class_label_wins_over_keyword(binary_named):
    models, Q = binary_named
    for names, model in models.items():
        assert list(model.classes_) == list(names)
        dec = model.decompose(Q)
        f = model.decision_function(Q)
        assert 0 < np.sum(f > 0) < len(f)  # both classes predicted among the queries
        for label in ("margin", "predicted"):
            ex = model.explain(Q, top_k=3, target=label)
            influence = model.influence(Q, target=label)
            if label in names:  # the class: its logit, whatever is predicted
                sign = 1.0 if names.index(label) == 1 else -1.0
                C, value = sign * dec.contributions, sign * f
                labels = np.full(len(Q), label)
            else:  # the keyword: signed toward the predicted class
                sign = np.where(f > 0, 1.0, -1.0)
                C, value = sign[:, None] * dec.contributions, sign * f
                labels = model.predict(Q)
            _check_explained(ex, C, value, labels, 3)
            np.testing.assert_allclose(influence, C.sum(axis=0), rtol=1e-10, atol=1e-14)
            # numpy's string scalar reads the same
            _same_explanation(model.explain(Q, top_k=3, target=np.str_(label)), ex)
        # None is always the predicted class.
        sign = np.where(f > 0, 1.0, -1.0)
        _check_explained(
            model.explain(Q, top_k=3),
            sign[:, None] * dec.contributions,
            sign * f,
            model.predict(Q),
            3,
        )


@pytest.fixture(scope="module")
def multiclass(iris):
    X, y = iris
    plain = PathKernelClassifier((6,), **FAST).fit(X, np.array(["a", "b", "c"])[y])
    named = PathKernelClassifier((6,), **FAST).fit(X, np.array(["a", "margin", "predicted"])[y])
    return plain, named, X[1::5]


def test_multiclass_class_label_wins_over_keyword(multiclass):
    plain, named, Q = multiclass
    rows = np.arange(len(Q))
    for model in (plain, named):
        dec = model.decompose(Q)
        f = model.decision_function(Q)
        order = np.argsort(-f, axis=1, kind="stable")
        pred, runner = order[:, 0], order[:, 1]
        assert len(set(pred)) == 3  # every class predicted somewhere
        classes = list(model.classes_)
        for label in ("margin", "predicted"):
            ex = model.explain(Q, top_k=4, target=label)
            influence = model.influence(Q, target=label)
            if label in classes:
                c = classes.index(label)
                C, value = dec.contributions[:, :, c], f[:, c]
                labels = np.full(len(Q), label)
            elif label == "margin":
                C = dec.contributions[rows, :, pred] - dec.contributions[rows, :, runner]
                value, labels = f[rows, pred] - f[rows, runner], model.classes_[pred]
            else:
                C, value = dec.contributions[rows, :, pred], f[rows, pred]
                labels = model.classes_[pred]
            _check_explained(ex, C, value, labels, 4)
            np.testing.assert_allclose(influence, C.sum(axis=0), rtol=1e-10, atol=1e-14)
            _same_explanation(model.explain(Q, top_k=4, target=np.str_(label)), ex)
        # None is always the predicted class.
        C = dec.contributions[rows, :, pred]
        _check_explained(model.explain(Q, top_k=4), C, f[rows, pred], model.classes_[pred], 4)


def test_target_must_be_one_value(multiclass, binary_named):
    plain, _, Q = multiclass
    models, Qb = binary_named
    binary = models[("a", "margin")]
    for model, Xq in ((plain, Q), (binary, Qb)):
        for bad in (np.array(model.classes_), list(model.classes_[:1]), np.array(["margin"])):
            with pytest.raises(ValueError, match="^target: must be None"):
                model.explain(Xq, top_k=2, target=bad)
        with pytest.raises(ValueError, match="^target: 'nope' is not one of the classes"):
            model.explain(Xq, top_k=2, target="nope")


def test_an_approximate_decomposition_is_explained_as_approximate():
    """quadrature=1 (TracIn's first-order term) leaves a self-check residual above tol:
    base plus the contributions' totals miss the value (digits: 9.92 for 7.33), and the
    explanation said each contribution was the exact share. Now it warns and its note
    says approximation; at the default quadrature the identity holds to rounding and
    neither happens."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    params = dict(hidden_layer_sizes=(16,), activation="tanh", learning_rate=1.0, n_steps=100)
    coarse = PathKernelClassifier(quadrature=1, random_state=0, **params).fit(X, y)
    with pytest.warns(UserWarning, match="self-check residual .* exceeds tol"):
        ex = coarse.explain(X[-3:], top_k=3)
    assert "approximation" in ex.note and "exact" not in ex.note
    assert np.max(np.abs(ex.base + ex.positive_total + ex.negative_total - ex.value)) > 0.1
    with pytest.warns(UserWarning, match="decompose: .* misses the output"):
        given = coarse.decompose(X[-3:], quadrature=1)
    with pytest.warns(UserWarning, match="self-check residual"):  # a given decomposition too
        coarse.explain(X[-3:], decomposition=given)
    exact = PathKernelClassifier(random_state=0, **params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = exact.explain(X[-3:], top_k=3)
    assert "exact share" in ex.note
    np.testing.assert_allclose(ex.base + ex.positive_total + ex.negative_total, ex.value, atol=1e-9)


@pytest.mark.parametrize("method", ["path_kernel", "tangent_kernel"])
def test_kernel_methods_name_the_second_argument_when_it_is_bad(regressor, diabetes, method):
    """path_kernel(X, Y) and tangent_kernel(X, Y) blamed X for a NaN, a wrong width or a
    wrong shape in Y (scikit-learn's validation always says "X"; a review)."""
    X, _ = diabetes
    call = getattr(regressor, method)
    extra = {} if method == "path_kernel" else {"step": 3}
    spoiled = X[:3].copy()
    spoiled[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"^Input Y contains NaN"):
        call(X[:2], spoiled, **extra)
    with pytest.raises(ValueError, match=rf"^Y has 2 features, but .* expecting {X.shape[1]}"):
        call(X[:2], X[:3, :2], **extra)
    with pytest.raises(ValueError, match=r"^Y: Expected 2D array"):
        call(X[:2], X[0], **extra)
    with pytest.raises(ValueError, match=r"^X has 2 features"):  # X still named X
        call(X[:2, :2], X[:3], **extra)
    # A good Y: the kernel between the two sets, one column per row of Y.
    assert call(X[:2], X[:3], **extra).shape[:2] == (2, 3)


def test_influence_blocks_stay_within_their_memory_bound(monkeypatch):
    """influence() sized its blocks of queries by one (q, n, k) array while a block holds
    about three (the contributions and the terms explained from them): 20000 queries of a
    4000-row model peaked at 779 MiB for its 256 MiB bound (a review). The arrays numpy
    allocates (tracemalloc sees them; decompose's native working block is apart) now stay
    within the bound (2.1x it before)."""
    import tracemalloc

    import gramfree.pathkernel.estimators as pke

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4))
    model = PathKernelRegressor((8,), n_steps=20, random_state=0).fit(X, np.sin(X[:, 0]))
    queries = rng.normal(size=(3000, 4))
    monkeypatch.setattr(pke, "_INFLUENCE_BLOCK_BYTES", 8 << 20)
    expected = model.decompose(queries).contributions.reshape(3000, 1000, -1).sum(axis=(0, 2))
    tracemalloc.start()
    try:
        total = model.influence(queries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= pke._INFLUENCE_BLOCK_BYTES  # 0.73 of it here
    np.testing.assert_allclose(total, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


def test_decompose_warns_where_its_steps_self_check_fails_as_explain_does():
    """A large step (diabetes, learning_rate 1): the contributions add up to the output to
    rounding, yet a step's quadrature misses its change by 10% of max |f|: explain and
    self_influence said the contributions were approximate, decompose said nothing (a
    review)."""
    X, y = load_diabetes(return_X_y=True)
    X, y = _standardized(X)[:30], 10 * (y[:30] - y.mean()) / y.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the training's own warnings
        model = PathKernelRegressor((8,), learning_rate=1.0, n_steps=100, random_state=0)
        model.fit(X, y)
    with pytest.warns(UserWarning, match="self-check residual") as caught:
        dec = model.decompose(X[:3])
    assert dec.reconstruction_error <= 1e-12 and dec.step_residual > model.tol
    assert len(caught) == 1
    with pytest.warns(UserWarning, match="self-check residual"):
        model.explain(X[:3])


def test_explanation_arrays_and_print_with_top_k_above_the_training_set():
    """top_k above n gives (q, n) arrays (the docstring said (q, top_k)), and print
    counts the further rows that hold an example, not padding ("... 2 more rows" of
    padding before; a review)."""
    X, y = load_diabetes(return_X_y=True)
    X, y = _standardized(X)[:12], (y[:12] - y.mean()) / y.std()
    model = PathKernelRegressor((4,), learning_rate=0.1, n_steps=20, random_state=0).fit(X, y)
    ex = model.explain(X[:1], top_k=100)
    assert ex.supporting.shape == ex.opposing.shape == (1, 12)
    filled = max(int(np.sum(ex.supporting[0] >= 0)), int(np.sum(ex.opposing[0] >= 0)))
    last = str(ex).splitlines()[-1]
    if filled > 10:  # the table shows 10 rows
        assert last.strip() == f"... {filled - 10} more rows"
    else:
        assert "more rows" not in str(ex)

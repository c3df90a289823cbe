"""gamma="scale": ``1 / (n_features * X.var())`` of the X given to fit, as scikit-learn's
SVC defines it, with rows counted by their weights (an integer weight is the row repeated,
a zero weight the row removed); resolved once at fit into ``kernel_``, on raw real data
whose scale is far from 1 (digits' pixels 0-16, breast cancer's features up to 4254)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.kernel_ridge import KernelRidge
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_sample_weight

import gramfree.kernels as kernels_module
from gramfree import KernelClassifier, KernelClassifierCV, KernelRegressor, KernelRegressorCV, load
from gramfree.__main__ import main
from gramfree.kernels import Gaussian, scale_gamma


def _digits():
    X, y = load_digits(return_X_y=True)
    return X[:500], y[:500], X[500:700]


def _cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


def _reference_gamma(X, weights=None):
    """numpy in float64: the values of X repeated by their row's weight, SVC's formula."""
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    values = X.astype(np.float64)
    each = np.broadcast_to(w[:, None], values.shape)
    mean = np.average(values, weights=each)
    return 1.0 / (X.shape[1] * np.average((values - mean) ** 2, weights=each))


@pytest.mark.parametrize("loader", [_digits, _cancer], ids=["digits", "breast-cancer"])
def test_gamma_is_svcs_on_raw_real_data(loader):
    X, y = loader()[:2]
    svc = SVC().fit(X, y)  # SVC's default gamma is "scale"
    model = KernelClassifier(gamma="scale", alpha=1e-3).fit(X, y)
    assert model.kernel_.gamma == pytest.approx(svc._gamma, rel=1e-12)
    assert model.get_params()["gamma"] == "scale"  # the parameter is left as given


def test_predictions_are_kernel_ridge_at_the_resolved_gamma():
    X, y, Xt = _digits()
    target = y.astype(np.float64)
    gamma = 1.0 / (X.shape[1] * X.var())
    ref = KernelRidge(kernel="rbf", gamma=gamma, alpha=1e-2).fit(X, target)
    model = KernelRegressor(gamma="scale", alpha=1e-2, solver="direct").fit(X, target)
    np.testing.assert_allclose(model.predict(Xt), ref.predict(Xt), rtol=1e-8, atol=1e-10)


def test_prediction_keeps_the_fitted_gamma():
    """Test rows of another scale do not rescale the kernel: predict uses kernel_."""
    X, y, Xt = _digits()
    model = KernelClassifier(gamma="scale", alpha=1e-3).fit(X, y)
    fixed = KernelClassifier(gamma=model.kernel_.gamma, alpha=1e-3).fit(X, y)
    for queries in (Xt, 3.0 * Xt[:20], Xt[:1]):
        np.testing.assert_array_equal(
            model.decision_function(queries), fixed.decision_function(queries)
        )


def test_compress_refits_with_the_fitted_gamma():
    """A refit on other rows keeps the kernel the model was fitted with: "scale" from the
    refit's X gave another gamma (0.1029 for 0.1), and the change compared two kernels
    (a review)."""
    X, y, _ = _digits()
    model = KernelRegressor(gamma="scale", alpha=1e-2, random_state=0).fit(X, y)
    small, change = model.compress(100, X[:150], y[:150])
    assert small.kernel_ == model.kernel_
    same = KernelRegressor(
        gamma=model.kernel_.gamma, alpha=1e-2, random_state=0, solver="nystrom-pcg", n_centers=100
    ).fit(X[:150], y[:150])
    np.testing.assert_allclose(small.predict(X), same.predict(X), rtol=1e-10, atol=1e-10)


def test_integer_weights_are_repeated_rows_and_zero_weights_removed_rows():
    X, y = _cancer()
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=len(X)).astype(np.float64)
    w_before = w.copy()
    X_before = X.copy()
    weighted = KernelClassifier(gamma="scale", alpha=1e-2).fit(X, y, sample_weight=w)
    keep = np.repeat(np.arange(len(X)), w.astype(int))
    repeated = KernelClassifier(gamma="scale", alpha=1e-2).fit(X[keep], y[keep])
    assert weighted.kernel_.gamma == pytest.approx(repeated.kernel_.gamma, rel=1e-12)
    assert weighted.kernel_.gamma == pytest.approx(_reference_gamma(X, w), rel=1e-12)
    np.testing.assert_array_equal(w, w_before)  # nothing the user gave is modified
    np.testing.assert_array_equal(X, X_before)


def test_class_weight_counts_as_its_equivalent_sample_weights():
    X, y = _cancer()
    a = KernelClassifier(gamma="scale", class_weight="balanced", alpha=1e-2).fit(X, y)
    w = compute_sample_weight("balanced", y)
    b = KernelClassifier(gamma="scale", alpha=1e-2).fit(X, y, sample_weight=w)
    assert a.kernel_.gamma == pytest.approx(b.kernel_.gamma, rel=1e-12)
    assert a.kernel_.gamma == pytest.approx(_reference_gamma(X, w), rel=1e-12)
    assert a.kernel_.gamma != pytest.approx(_reference_gamma(X), rel=1e-6)  # weights moved it
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), rtol=1e-9)


def test_early_stopping_takes_gamma_from_every_row_given():
    X, y, _ = _digits()
    model = KernelRegressor(
        gamma="scale", solver="pcg", early_stopping=True, random_state=0, max_iter=5
    ).fit(X, y.astype(np.float64))
    assert model.kernel_.gamma == pytest.approx(_reference_gamma(X), rel=1e-12)


def test_logistic_and_cv_estimators_resolve_it():
    X, y, _ = _digits()
    expected = _reference_gamma(X)
    logistic = KernelClassifier(loss="logistic", gamma="scale", alpha=1e-2).fit(X, y)
    cv = KernelRegressorCV(gamma="scale").fit(X, y.astype(np.float64))
    cv_logistic = KernelClassifierCV(loss="logistic", gamma="scale", cv=3).fit(X, y)
    for model in (logistic, cv, cv_logistic):
        assert model.kernel_.gamma == pytest.approx(expected, rel=1e-12)


def test_gamma_search_starts_from_it():
    """The search's first path is at the scaled gamma, and it ends where a search started
    from that number ends. With numpy 1.23 the scaled gamma and the float64 reference
    differ in the last bit (X.var's summation order), which moves the first GCV by 4e-9
    through the whitening and the search's end by 1e-7 (the oldest-dependency CI run):
    the start is compared to rounding, the end to the search's own precision."""
    X, y, _ = _digits()
    target = y.astype(np.float64)
    scaled = KernelRegressorCV(gamma="scale", gamma_search="gradient").fit(X, target)
    fixed = KernelRegressorCV(gamma=_reference_gamma(X), gamma_search="gradient").fit(X, target)
    start, reference = scaled.solver_info_["gamma_search"][0], fixed.solver_info_["gamma_search"][0]
    assert start["gamma"] == pytest.approx(reference["gamma"], rel=4 * np.finfo(float).eps)
    assert start["gcv"] == pytest.approx(reference["gcv"], rel=1e-7)
    assert scaled.gamma_ == pytest.approx(fixed.gamma_, rel=1e-5)


def test_candidates_for_gamma_refuse_it():
    X, y, _ = _digits()
    with pytest.raises(ValueError, match="gammas: the candidates for gamma replace it"):
        KernelRegressorCV(gamma="scale", gammas=[0.1, 1.0]).fit(X, y.astype(np.float64))


def test_a_kernel_object_ignores_it():
    X, y, _ = _digits()
    model = KernelClassifier(kernel=Gaussian(gamma=0.3), gamma="scale").fit(X, y)
    assert model.kernel_.gamma == 0.3


def test_constant_X_gives_one_as_svc():
    X = np.full((30, 3), 7.0)
    y = np.arange(30) % 2
    assert KernelClassifier(gamma="scale").fit(X, y).kernel_.gamma == 1.0
    assert SVC().fit(X, y)._gamma == 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_usable_gamma_is_refused_naming_it(dtype):
    rng = np.random.default_rng(0)
    huge = 1e200 if dtype == np.float64 else 1e37
    X = (rng.standard_normal((40, 3)) * huge).astype(dtype)
    with pytest.raises(ValueError, match="gamma"):
        KernelRegressor(gamma="scale").fit(X, rng.standard_normal(40))


def test_the_file_keeps_it(tmp_path):
    X, y, Xt = _digits()
    model = KernelClassifier(gamma="scale", alpha=1e-3).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = load(tmp_path / "m.gfm")
    assert loaded.get_params()["gamma"] == "scale"
    assert loaded.kernel_ == model.kernel_
    np.testing.assert_array_equal(loaded.decision_function(Xt), model.decision_function(Xt))


def test_files_with_it_are_format_version_2_and_others_stay_1(tmp_path):
    """A version-1 reader refused gamma="scale" as an invalid gamma; the version says it
    is a newer file, and files without it stay readable by version-1 readers."""
    X, y, _ = _digits()
    for gamma, version in (("scale", 2), (None, 1), (0.01, 1)):
        KernelClassifier(gamma=gamma).fit(X, y).save(tmp_path / "m.gfm")
        with np.load(tmp_path / "m.gfm") as data:
            meta = json.loads(str(data["__meta__"]))
        assert meta["format_version"] == version
    KernelClassifier(gamma="scale").fit(X, y).save(tmp_path / "m.gfm")
    with np.load(tmp_path / "m.gfm") as data:
        arrays = dict(data)
    meta = json.loads(str(arrays.pop("__meta__")))
    meta["format_version"] = 1
    np.savez(tmp_path / "v1.npz", __meta__=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ValueError, match="params.gamma.*format version 2 value"):
        load(tmp_path / "v1.npz")


def test_kernels_without_gamma_ignore_it():
    """As they ignore a number: no variance pass, no refusal of data it cannot scale."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2)) * 1e-160  # X.var() ~ 1e-320: 1 / (d var) overflows
    y = np.arange(60) % 2
    for kernel in ("linear", "matern"):
        scaled = KernelClassifier(kernel=kernel, gamma="scale").fit(X, y)
        plain = KernelClassifier(kernel=kernel).fit(X, y)
        assert scaled.kernel_ == plain.kernel_
    with pytest.raises(ValueError, match="gamma='scale'"):
        KernelClassifier(gamma="scale").fit(X, y)  # the rbf kernel has one: refused


@pytest.mark.parametrize("value", [0.1, 7.0])
def test_constant_X_is_one_in_memory_and_on_dask(value):
    """A rounded mean left a variance of ~1e-34 on dask: gamma 8.7e32 (a review)."""
    da = pytest.importorskip("dask.array")
    n = 1000
    X = np.full((n, 3), value)
    y = (np.arange(n) % 2).astype(np.float64)
    w = np.random.default_rng(0).uniform(0.5, 2.0, n)
    w[:10] = 0.0
    X[:10] = -3.0  # differing rows that weigh nothing: removed
    for weights in (None, w):
        memory = (
            KernelRegressor(gamma="scale").fit(X[10:], y[10:])
            if weights is None
            else (KernelRegressor(gamma="scale").fit(X, y, sample_weight=weights))
        )
        chunked = KernelRegressor(gamma="scale").fit(
            da.from_array(X if weights is not None else X[10:], chunks=100),
            da.from_array(y if weights is not None else y[10:], chunks=100),
            None if weights is None else da.from_array(weights, chunks=100),
        )
        assert memory.kernel_.gamma == chunked.kernel_.gamma == 1.0


def test_zero_weight_rows_of_any_value_are_removed_rows():
    """A zero-weight row of 1e200 gave 0 * inf = NaN in the sums (a review)."""
    da = pytest.importorskip("dask.array")
    X, y = _cancer()
    X, y = X.copy(), y.astype(np.float64)
    X[0] = 1e200
    w = np.ones(len(X))
    w[0] = 0.0
    expected = _reference_gamma(X[1:])
    memory = KernelRegressor(gamma="scale", kernel="laplacian").fit(X, y, sample_weight=w)
    chunked = KernelRegressor(gamma="scale", kernel="laplacian").fit(
        da.from_array(X, chunks=100), da.from_array(y, chunks=100), da.from_array(w, chunks=100)
    )
    assert memory.kernel_.gamma == pytest.approx(expected, rel=1e-12)
    assert chunked.kernel_.gamma == pytest.approx(expected, rel=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e300
def test_dask_float32_sums_in_float64():
    """The weights (cast to X's dtype there) and the sums are float64 in the block sums: the
    float32 arithmetic was 6.5e-8 off; weights beyond float32 are named as sample_weight."""
    da = pytest.importorskip("dask.array")
    X, y = _cancer()
    X32 = X.astype(np.float32)
    w = np.random.default_rng(2).uniform(0.1, 3.0, len(X))
    chunked = KernelClassifier(gamma="scale").fit(
        da.from_array(X32, chunks=100), da.from_array(y, chunks=100), da.from_array(w, chunks=100)
    )
    expected = _reference_gamma(X32, w.astype(np.float32))
    assert chunked.kernel_.gamma == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="^sample_weight: contains NaN or infinity"):
        KernelClassifier(gamma="scale").fit(
            da.from_array(X32, chunks=100),
            da.from_array(y, chunks=100),
            da.from_array(np.full(len(X), 1e300), chunks=100),
        )


def test_dask_fit_resolves_it_as_in_memory():
    da = pytest.importorskip("dask.array")
    X, y = _cancer()
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=len(X))
    memory = KernelClassifier(gamma="scale", class_weight="balanced", alpha=1e-2).fit(
        X, y, sample_weight=w
    )
    chunked = KernelClassifier(gamma="scale", class_weight="balanced", alpha=1e-2).fit(
        da.from_array(X, chunks=100), da.from_array(y, chunks=100), da.from_array(w, chunks=100)
    )
    assert chunked.kernel_.gamma == pytest.approx(memory.kernel_.gamma, rel=1e-12)
    unweighted = KernelRegressor(gamma="scale").fit(
        da.from_array(X, chunks=100), da.from_array(y.astype(np.float64), chunks=100)
    )
    assert unweighted.kernel_.gamma == pytest.approx(_reference_gamma(X), rel=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_dask_refuses_nan_and_infinity_naming_X(bad):
    """A lone inf made the sums inf, not NaN: the variance's message named no NaN."""
    da = pytest.importorskip("dask.array")
    X, y = _cancer()
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="^X: contains NaN or infinity"):
        KernelRegressor(gamma="scale").fit(da.from_array(X, chunks=100), da.from_array(y * 1.0))


def test_dask_all_zero_weights_are_named():
    """They raised ZeroDivisionError from the mean (a review)."""
    da = pytest.importorskip("dask.array")
    X, y = _cancer()
    with pytest.raises(ValueError, match="^sample_weight: all weights are zero"):
        KernelRegressor(gamma="scale").fit(
            da.from_array(X, chunks=100), da.from_array(y * 1.0), da.zeros(len(X), chunks=100)
        )


def test_command_line_takes_scale(tmp_path, capsys):
    X, y = _cancer()
    path = tmp_path / "bc.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",")
    status = main(["fit", str(path), "--no-scale", "--gamma", "scale", "-o", str(tmp_path / "m")])
    assert status == 0, capsys.readouterr().err
    assert load(tmp_path / "m").kernel_.gamma == pytest.approx(_reference_gamma(X), rel=1e-12)
    with pytest.raises(SystemExit):
        main(["fit", str(path), "--gamma", "wide"])
    assert "--gamma: a number or 'scale', got 'wide'" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 6)),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    data=st.data(),
    block=st.integers(1, 50),
)
def test_scale_gamma_matches_numpy_in_blocks(X, data, block):
    """The blocked, weighted float64 variance against numpy's over the repeated values,
    whatever the block size (row blocks of ``block`` values)."""
    weights = data.draw(
        arrays(np.float64, len(X), elements=st.integers(0, 3).map(float)).filter(lambda w: w.any())
    )
    original = kernels_module._VARIANCE_BLOCK_VALUES
    kernels_module._VARIANCE_BLOCK_VALUES = block
    try:
        for values in (X, X.astype(np.float32)):
            before = values.copy()
            repeated = values[np.repeat(np.arange(len(values)), weights.astype(int))]
            if repeated.min() == repeated.max():
                assert scale_gamma(values, weights) == 1.0
                continue
            variance = repeated.astype(np.float64).var()
            # 1 / (d var) overflows: refused, named. Not below 1e-300 (hypothesis: values 0
            # and 1.4e-153 give d var = 1e-306, gamma 9.6e305, finite and kept); within a
            # millionth of the overflow the two variances' rounding may decide either way.
            edge = 1.0 / np.finfo(np.float64).max
            if X.shape[1] * variance < edge * (1 - 1e-6):
                with pytest.raises(ValueError, match="gamma='scale'"):
                    scale_gamma(values, weights)
                continue
            if X.shape[1] * variance < edge * (1 + 1e-6):
                continue
            # The two means' rounding (n eps |X|) enters the variance squared.
            slack = (1e-12 * float(np.abs(repeated).max())) ** 2
            found = 1.0 / (X.shape[1] * scale_gamma(values, weights))
            assert found == pytest.approx(variance, rel=1e-9, abs=slack)
            np.testing.assert_array_equal(values, before)
    finally:
        kernels_module._VARIANCE_BLOCK_VALUES = original

"""class_weight, as scikit-learn's classifiers define it: the fit with class_weight equals
the fit with the equivalent sample weights (compute_sample_weight, times any sample_weight
given; "balanced" from the weighted class totals, as LogisticRegression since scikit-learn
1.7, so that an integer weight is still the row repeated), on real data; bad values are
refused naming the parameter; it survives a file."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight

from gramfree import KernelClassifier, KernelClassifierCV, load
from gramfree.estimators.classifier import class_sample_weight


def _cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


PARAMS = dict(gamma=0.05, alpha=0.1, solver="direct")


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 0.5}], ids=["balanced", "dict"])
def test_binary_equals_equivalent_sample_weights(class_weight):
    X, y = _cancer()
    a = KernelClassifier(class_weight=class_weight, **PARAMS).fit(X, y)
    w = compute_sample_weight(class_weight, y)
    b = KernelClassifier(**PARAMS).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)
    # and it changes the model: the minority class (malignant, 0) gains
    plain = KernelClassifier(**PARAMS).fit(X, y)
    assert not np.allclose(a.dual_coef_, plain.dual_coef_)


def test_multiclass_composes_with_sample_weight():
    X, y = _digits()
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    cw = {3: 4.0, 7: 0.25}  # classes not named weigh 1
    a = KernelClassifier(class_weight=cw, **PARAMS).fit(X, y, sample_weight=sw)
    b = KernelClassifier(**PARAMS).fit(X, y, sample_weight=sw * compute_sample_weight(cw, y))
    np.testing.assert_allclose(a.dual_coef_, b.dual_coef_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_float32_data_keeps_the_class_weights_in_float64(loss):
    """Sample weights are float64 whatever X's dtype, and so are the class weights they
    are multiplied by: rounded to float32 first, 'balanced' on float32 data moved the
    scores by 3.8e-5 from the same fit with the equivalent sample weights (a review)."""
    X, y = _cancer()
    X = X.astype(np.float32)
    sw = 10 ** np.random.default_rng(0).uniform(-3, 3, len(y))
    equivalent = sw * class_sample_weight("balanced", y, sw)
    params = dict(loss=loss, alpha=1e-2, solver="direct")
    a = KernelClassifier(class_weight="balanced", **params).fit(X, y, sample_weight=sw)
    b = KernelClassifier(**params).fit(X, y, sample_weight=equivalent)
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), rtol=0, atol=1e-7)


def test_balanced_helps_the_rare_class_on_imbalanced_data():
    """Digits, one class against the rest (10% positives), a wide kernel and strong
    regularisation: balanced weights raise the recall of the rare class."""
    X, y = load_digits(return_X_y=True)
    X, t = X / 16.0, (y == 9).astype(int)
    params = dict(gamma=0.002, alpha=30.0, solver="direct")
    plain = KernelClassifier(**params).fit(X[:1200], t[:1200])
    balanced = KernelClassifier(class_weight="balanced", **params).fit(X[:1200], t[:1200])
    rare = t[1200:] == 1

    def recall(m):
        return np.mean(m.predict(X[1200:][rare]) == 1)

    assert recall(balanced) > recall(plain)


def test_string_labels_and_file_round_trip(tmp_path):
    X, y = _cancer()
    labels = np.array(["malignant", "benign"])[y]
    cw = {"malignant": 2.0, "benign": 1.0}
    model = KernelClassifier(class_weight=cw, **PARAMS).fit(X, labels)
    path = tmp_path / "m.gfm"
    model.save(path)
    loaded = load(path)
    assert loaded.get_params()["class_weight"] == cw
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    int_model = KernelClassifier(class_weight={0: 2.0, 1: 1.0}, **PARAMS).fit(X, y)
    int_model.save(path)
    again = load(path)
    assert again.get_params()["class_weight"] == {0: 2.0, 1: 1.0}
    refit = again.fit(X, y)  # int keys came back as ints: the refit finds the classes
    np.testing.assert_array_equal(refit.dual_coef_, int_model.dual_coef_)


@pytest.mark.parametrize(
    ("class_weight", "exc", "match"),
    [
        ("balance", InvalidParameterError, "class_weight"),
        ([1.0, 2.0], InvalidParameterError, "class_weight"),
        ({5: 1.0}, ValueError, r"^class_weight: 5 is not a class of y \(its classes: \[0, 1\]\)"),
        ({0: 2.0, 7: 3.0}, ValueError, r"^class_weight: 7 is not a class of y"),
        ({0: 0.0, 1: 0.0}, ValueError, "class_weight"),
    ],
)
def test_bad_class_weight_is_refused(class_weight, exc, match):
    X, y = _cancer()
    Xc = X.copy()
    with pytest.raises(exc, match=match):
        KernelClassifier(class_weight=class_weight, **PARAMS).fit(X, y)
    np.testing.assert_array_equal(X, Xc)


@pytest.mark.parametrize("make", [KernelClassifier, KernelClassifierCV])
def test_a_dict_for_every_label_fits_a_subset_without_some(make):
    """scikit-learn refuses a stray key only where a class of y is missing from the dict:
    a dict weighing every label of the problem fits a fold without one of them, as
    LogisticRegression and SVC do (every fold of cross_val_score failed; a review). The
    extra key changes nothing."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import KFold, cross_val_score

    X, y = load_iris(return_X_y=True)
    both = y < 2
    full = {0: 1.0, 1: 2.0, 2: 3.0}
    with_extra = make(class_weight=full).fit(X[both], y[both])
    without = make(class_weight={0: 1.0, 1: 2.0}).fit(X[both], y[both])
    np.testing.assert_array_equal(with_extra.dual_coef_, without.dual_coef_)
    scores = cross_val_score(make(class_weight=full), X, y, cv=KFold(3), error_score="raise")
    assert scores.shape == (3,)


def test_files_from_before_class_weight_still_load(tmp_path):
    """Version-1 files written before the parameter existed lack it: they load with the
    default (None), which is what they were fitted with."""
    X, y = _cancer()
    model = KernelClassifier(**PARAMS).fit(X, y)
    path = tmp_path / "m.gfm"
    model.save(path)
    old = tmp_path / "old.gfm"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "__meta__.npy":
                arr = np.load(io.BytesIO(data))
                meta = json.loads(str(arr))
                del meta["params"]["class_weight"]
                buf = io.BytesIO()
                np.save(buf, np.array(json.dumps(meta)))
                data = buf.getvalue()
            dst.writestr(item, data)
    loaded = load(old)
    assert loaded.class_weight is None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf, "2", True])
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="direct"),
        dict(solver="eigenpro"),
        dict(solver="nystrom-pcg", n_centers=20),
        dict(loss="logistic"),
    ],
    ids=["direct", "eigenpro", "nystrom-pcg", "logistic"],
)
def test_class_weight_values_must_be_finite_and_non_negative(params, value):
    # Multiplied in after sample_weight's checks, a negative or NaN class weight gave a
    # solver's cryptic error ("V: contains NaN", LinAlgError) or a silently bad model.
    X, y = _cancer()
    with pytest.raises(ValueError, match=r"^class_weight: the weight of class 0 must be a finite"):
        KernelClassifier(class_weight={0: value, 1: 2.0}, **params).fit(X[:80], y[:80])


def test_class_weight_values_are_checked_by_the_cv_classifier():
    from gramfree import KernelClassifierCV

    X, y = _cancer()
    with pytest.raises(ValueError, match=r"^class_weight: the weight of class 1"):
        KernelClassifierCV(class_weight={0: 1.0, 1: -2.0}).fit(X[:80], y[:80])


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_balanced_with_sample_weight_is_repeated_rows(loss):
    """Integer weights with class_weight="balanced" fit what the rows repeated that many
    times fit (the classes' weights from the weighted totals W / (k W_c), not the counts:
    with the counts, repeating a row changed its class's weight but weighting it did not)."""
    X, y = _digits()
    X, y = X[:300], y[:300]
    reps = np.random.default_rng(3).integers(0, 4, size=len(y))  # 0: the row left out
    reps[y == 5] = 3  # a class whose total moves far from its count
    params = dict(gamma=0.05, alpha=0.1, class_weight="balanced", loss=loss)
    if loss == "logistic":
        params.update(tol=1e-12, max_iter=100)
    weighted = KernelClassifier(solver="direct", **params).fit(X, y, sample_weight=reps)
    rows = np.repeat(np.arange(len(y)), reps)
    repeated = KernelClassifier(solver="direct", **params).fit(X[rows], y[rows])
    probe = _digits()[0][300:500]
    np.testing.assert_allclose(
        weighted.decision_function(probe), repeated.decision_function(probe), atol=1e-7
    )


def test_balanced_weights_closed_form():
    """W / (k W_c) per class, against the counts' formula where every weight is one, and
    zero for a class whose rows all weigh zero (no division by zero)."""
    from gramfree.estimators.classifier import class_sample_weight

    y = np.array(["a", "b", "b", "c", "c", "c"])
    w = np.array([2.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    got = class_sample_weight("balanced", y, w)
    np.testing.assert_allclose(got, [3.5 / (3 * 2.0), 3.5 / 4.5, 3.5 / 4.5, 0, 0, 0])
    np.testing.assert_allclose(
        class_sample_weight("balanced", y, None), compute_sample_weight("balanced", y)
    )

"""The logistic loss's unpenalised intercept (``intercept_``) everywhere the model's logits
are used: prediction, explanations, compression, model files, dask, and a refit with the
square loss (which has none). Its value is checked against scikit-learn in
tests/test_logistic.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.preprocessing import StandardScaler

import gramfree
from gramfree import KernelClassifier

TIGHT = dict(loss="logistic", tol=1e-10, max_iter=100)


def _data(loader):
    X, y = loader(return_X_y=True)
    return np.ascontiguousarray(StandardScaler().fit_transform(X)), y


@pytest.fixture(scope="module")
def binary():
    X, y = _data(load_breast_cancer)
    return X, y, KernelClassifier(gamma=0.05, alpha=0.1, **TIGHT).fit(X, y)


@pytest.fixture(scope="module")
def three_classes():
    X, y = _data(load_wine)
    return X, y, KernelClassifier(gamma=0.1, alpha=0.1, **TIGHT).fit(X, y)


def test_far_from_every_centre_the_logit_is_the_intercept(binary):
    """Where the kernel vanishes (a query far from the data), only the intercept is left:
    the probability of classes_[1] is expit(intercept_), the base rate the penalised
    kernel part cannot carry there."""
    X, _, clf = binary
    far = np.full((1, X.shape[1]), 1e3)
    assert clf.intercept_.shape == (1,) and clf.intercept_.dtype == X.dtype
    np.testing.assert_allclose(clf.decision_function(far), clf.intercept_, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(far)[0, 1], expit(clf.intercept_[0]), rtol=1e-12)


def test_multinomial_intercepts_sum_to_zero(three_classes):
    X, _, clf = three_classes
    assert clf.intercept_.shape == (3,)
    assert abs(clf.intercept_.sum()) < 1e-10 * np.abs(clf.intercept_).max()
    np.testing.assert_allclose(
        clf.decision_function(X), clf._decision_validated(X), rtol=0, atol=0
    )  # one path for every caller


@pytest.mark.parametrize("case", ["binary", "three_classes"])
def test_explanation_base_is_the_intercept(case, request):
    """The contributions of the centres plus ``base`` (the intercept) are the explained
    logit, which is decision_function's."""
    X, _, clf = request.getfixturevalue(case)
    ex = clf.explain(X[:5], top_k=3)
    scores = clf.decision_function(X[:5])
    if scores.ndim == 1:
        np.testing.assert_allclose(ex.base, np.full(5, clf.intercept_[0]), rtol=1e-12)
        np.testing.assert_allclose(ex.value, scores, rtol=1e-9, atol=1e-12)
    else:
        cols = np.argmax(scores, axis=1)
        np.testing.assert_allclose(ex.base, clf.intercept_[cols], rtol=1e-12)
        np.testing.assert_allclose(ex.value, scores[np.arange(5), cols], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        ex.value - ex.base, ex.positive_total + ex.negative_total, rtol=1e-9, atol=1e-12
    )


def test_projection_keeps_the_intercept(three_classes):
    X, _, clf = three_classes
    same, change = clf.compress(clf.n_centers_)
    np.testing.assert_array_equal(same.intercept_, clf.intercept_)
    assert change < 1e-8
    np.testing.assert_allclose(same.predict_proba(X), clf.predict_proba(X), atol=1e-8)
    small, _ = clf.compress(60)
    np.testing.assert_array_equal(small.intercept_, clf.intercept_)


def test_refit_with_the_square_loss_has_no_intercept(binary):
    X, y, _ = binary
    clf = KernelClassifier(gamma=0.05, alpha=0.1, **TIGHT).fit(X, y)
    clf.set_params(loss="squared").fit(X, y)
    assert not hasattr(clf, "intercept_")
    fresh = KernelClassifier(gamma=0.05, alpha=0.1).fit(X, y)
    np.testing.assert_allclose(clf.decision_function(X), fresh.decision_function(X), atol=1e-12)


def test_model_file_keeps_the_intercept_and_checks_it(three_classes, tmp_path):
    X, _, clf = three_classes
    clf.save(tmp_path / "m.gfm")
    back = gramfree.load(tmp_path / "m.gfm")
    np.testing.assert_array_equal(back.intercept_, clf.intercept_)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))

    def rewrite(edit, name):
        with np.load(tmp_path / "m.gfm", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        edit(arrays)
        with open(tmp_path / name, "wb") as fh:
            np.savez(fh, **arrays)
        return tmp_path / name

    bad = {
        "shape": lambda a: a.update(intercept=a["intercept"][:2]),
        "non-finite": lambda a: a.update(intercept=np.array([0.0, np.nan, 0.0])),
        "dtype": lambda a: a.update(intercept=a["intercept"].astype(np.float32)),
    }
    for what, edit in bad.items():
        with pytest.raises(ValueError, match="intercept"):
            gramfree.load(rewrite(edit, f"{what}.gfm"))
    # A regressor's file has no intercept: one there is refused as an unknown array.
    reg = gramfree.KernelRegressor(gamma=0.1).fit(X, X[:, 0])
    reg.save(tmp_path / "r.gfm")
    with np.load(tmp_path / "r.gfm", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["intercept"] = np.zeros(1)
    with open(tmp_path / "r2.gfm", "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError, match="intercept"):
        gramfree.load(tmp_path / "r2.gfm")
    meta = json.loads(str(arrays["__meta__"]))
    assert meta["estimator"] == "KernelRegressor"


def test_dask_prediction_adds_the_intercept(three_classes):
    da = pytest.importorskip("dask.array")
    X, _, clf = three_classes
    np.testing.assert_allclose(
        clf.predict_proba(da.from_array(X, chunks=50)).compute(),
        clf.predict_proba(X),
        rtol=1e-12,
        atol=1e-15,
    )

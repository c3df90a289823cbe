"""KernelClassifierCV(loss="logistic"): alpha chosen by k-fold held-out log-loss.

References: each fold's held-out log-loss recomputed with scikit-learn's ``log_loss`` from
separate KernelClassifier(loss="logistic") fits on the same centres and folds; the refit
against such a fit on all rows; class_weight against the equivalent sample weights."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.class_weight import compute_sample_weight

from gramfree import KernelClassifier, KernelClassifierCV

ALPHAS = [1e-3, 1e-2, 0.1, 1.0]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X / X.max(axis=0), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def _reference(X, y, centers, alpha, weights=None):
    return KernelClassifier(
        loss="logistic", gamma=GAMMA[X.shape[1]], alpha=alpha, centers=centers, tol=1e-10
    ).fit(X, y, sample_weight=weights)


GAMMA = {30: 1.0, 64: 0.02}  # per dataset (by its features): a wide-enough rbf


@pytest.mark.parametrize("path_tol", [1e-10, None])
@pytest.mark.parametrize("data", ["cancer", "digits"])
def test_fold_log_losses_match_separate_fits(data, path_tol, request, monkeypatch):
    """cv_log_loss_folds_ against separate fits on each fold's rows (same centres),
    scored by scikit-learn's log_loss; the chosen alpha is the folds' weighted mean's
    argmin; the refit matches a separate fit on all rows at that alpha. With the path's
    Newton steps run to 1e-10 the losses agree to 1e-6; at the default PATH_TOL (1e-3 of
    the objective) to 5e-3, far inside their spread over the candidates."""
    import gramfree.estimators._logistic_cv as logistic_cv

    if path_tol is not None:
        monkeypatch.setattr(logistic_cv, "PATH_TOL", path_tol)
    rtol = 1e-6 if path_tol is not None else 5e-3
    X, y = request.getfixturevalue(data)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    model = KernelClassifierCV(
        loss="logistic",
        gamma=GAMMA[X.shape[1]],
        alphas=ALPHAS,
        cv=cv,
        n_centers=300,
        random_state=0,
    ).fit(X, y)
    assert model.centers_.shape[0] == 300
    expected = np.zeros((3, len(ALPHAS)))
    sizes = np.zeros(3)
    for f, (train, test) in enumerate(cv.split(X, y)):
        sizes[f] = test.size
        for j, alpha in enumerate(ALPHAS):
            ref = _reference(X[train], y[train], model.centers_, alpha)
            expected[f, j] = log_loss(y[test], ref.predict_proba(X[test]), labels=ref.classes_)
    np.testing.assert_allclose(model.cv_log_loss_folds_, expected, rtol=rtol)
    mean = sizes @ expected / sizes.sum()
    np.testing.assert_allclose(model.cv_log_loss_, mean, rtol=rtol)
    assert np.ptp(expected) > 100 * rtol * expected.max()  # the candidates differ far more
    assert model.alpha_ == ALPHAS[int(np.argmin(model.cv_log_loss_))]
    assert model.best_score_ == pytest.approx(-model.cv_log_loss_.min())
    full = _reference(X, y, model.centers_, model.alpha_)
    np.testing.assert_allclose(model.predict_proba(X), full.predict_proba(X), atol=2e-4)
    np.testing.assert_allclose(
        np.exp(model.predict_log_proba(X[:20])), model.predict_proba(X[:20]), rtol=1e-12
    )
    assert model.score(X, y) == pytest.approx(full.score(X, y), abs=0.01)


def test_class_weight_is_its_sample_weights(cancer):
    X, y = cancer
    kwargs = {"loss": "logistic", "gamma": 1.0, "alphas": ALPHAS, "cv": 3, "random_state": 0}
    balanced = KernelClassifierCV(class_weight="balanced", **kwargs).fit(X, y)
    weighted = KernelClassifierCV(**kwargs).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    np.testing.assert_allclose(balanced.cv_log_loss_folds_, weighted.cv_log_loss_folds_)
    np.testing.assert_allclose(balanced.dual_coef_, weighted.dual_coef_)
    assert balanced.alpha_ == weighted.alpha_


def test_refit_with_the_square_loss_drops_the_logistic_state(cancer):
    X, y = cancer
    model = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=ALPHAS, cv=3).fit(X, y)
    assert hasattr(model, "intercept_") and hasattr(model, "predict_proba")
    model.set_params(loss="squared").fit(X, y)
    for name in ("intercept_", "cv_log_loss_", "cv_log_loss_folds_"):
        assert not hasattr(model, name), name
    assert not hasattr(model, "predict_proba")
    assert model.alpha_ == ALPHAS[int(np.argmin(model.loo_values_))]  # the default's


def test_bad_arguments_name_themselves(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="gammas"):
        KernelClassifierCV(loss="logistic", gammas=[0.5, 1.0]).fit(X, y)
    with pytest.raises(ValueError, match="gamma_search"):
        KernelClassifierCV(loss="logistic", gamma_search="gradient").fit(X, y)
    with pytest.raises(ValueError, match="cv"):
        KernelClassifierCV(loss="logistic", cv=1).fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        KernelClassifierCV(loss="hinge").fit(X, y)
    kept = X.copy()
    KernelClassifierCV(loss="logistic", gamma=1.0, alphas=[0.1], cv=2).fit(X, y)
    assert np.array_equal(X, kept)


def test_save_load_keeps_the_choice_and_checks_it(cancer, tmp_path):
    import json

    import gramfree

    X, y = cancer
    model = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=ALPHAS, cv=3).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.alpha_ == model.alpha_ and loaded.best_score_ == model.best_score_
    np.testing.assert_array_equal(loaded.cv_log_loss_folds_, model.cv_log_loss_folds_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    with np.load(tmp_path / "m.gfm", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    meta["attributes"]["best_score_"] = -1.0
    np.savez(tmp_path / "bad.npz", __meta__=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ValueError, match="best_score_"):
        gramfree.load(tmp_path / "bad.npz")


def test_a_failed_refit_keeps_the_previous_model_whole(cancer):
    """The other loss's attributes go only once a fit has succeeded."""
    X, y = cancer
    model = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=ALPHAS, cv=3).fit(X, y)
    before = model.predict_proba(X[:5])
    beyond = [(np.arange(30), np.arange(30, 99))]  # held-out rows past the data's 42
    with pytest.raises(ValueError, match="cv"):
        model.set_params(cv=beyond).fit(X[:42], y[:42])
    np.testing.assert_array_equal(model.predict_proba(X[:5]), before)


def test_switching_losses_leaves_no_stale_state(cancer, tmp_path):
    """gammas' attributes go with a logistic refit; either model saves and loads after
    set_params(loss=...) changed the parameter without refitting."""
    import gramfree

    X, y = cancer
    model = KernelClassifierCV(gammas=[0.5, 1.0], alphas=ALPHAS).fit(X, y)
    model.set_params(loss="logistic", gammas=None, gamma=2.0, cv=3).fit(X, y)
    for name in ("gamma_", "gcv_grid_", "dof_grid_", "gcv_values_", "dof_"):
        assert not hasattr(model, name), name
    assert model.kernel_.gamma == 2.0
    for fitted in ("logistic", "squared"):
        model.set_params(loss=fitted).fit(X, y)
        other = "squared" if fitted == "logistic" else "logistic"
        model.set_params(loss=other)
        model.save(tmp_path / "m.gfm")
        loaded = gramfree.load(tmp_path / "m.gfm")
        np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
        assert hasattr(loaded, "predict_proba") == (fitted == "logistic")


def test_cv_as_splits_and_repeated_alphas(cancer, tmp_path):
    """cv as a list of splits (saved as None), a generator used up by a first fit (a
    clear error on the second), and a repeated alpha (one fit, the same loss)."""
    import gramfree

    X, y = cancer
    splits = list(StratifiedKFold(3).split(X, y))
    model = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=[0.1, 0.01, 0.1], cv=splits)
    model.fit(X, y)
    assert model.cv_log_loss_[0] == model.cv_log_loss_[2]
    model.save(tmp_path / "m.gfm")
    assert gramfree.load(tmp_path / "m.gfm").cv is None
    used_up = KernelClassifierCV(
        loss="logistic", gamma=1.0, alphas=[0.1], cv=StratifiedKFold(3).split(X, y)
    )
    used_up.fit(X, y)
    with pytest.raises(ValueError, match="cv: gave no splits"):
        used_up.fit(X, y)


def test_bad_splits_are_refused_naming_cv_and_masks_are_indices(cancer):
    """Splits given as they came failed deep in the fold loop (numpy's IndexError, "X:
    empty array"); now each is checked, and boolean masks of n rows are their indices."""
    X, y = cancer
    n = len(y)
    train, test = next(iter(StratifiedKFold(3).split(X, y)))
    bad = [
        ([(train, np.r_[test, n])], "index outside 0"),
        ([(train, test.astype(float))], "integer indices"),
        ([(train, test[:0])], "has no test rows"),
        ([(train, test[:, None])], "1-d array"),
        # Not pairs: scikit-learn's check_cv unpacked them inside its generator
        # ("too many values to unpack", "cannot unpack non-iterable int object").
        ([test], "a \\(train, test\\) pair of row indices, got ndarray of length"),
        ([(train, test, test)], "pair of row indices, got tuple of length 3"),
        ([(train,)], "pair of row indices, got tuple of length 1"),
        ([3, 4], "pair of row indices, got int$"),
    ]
    for splits, message in bad:
        model = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=[0.1], cv=splits)
        with pytest.raises(ValueError, match=f"cv: split 1.*{message}"):
            model.fit(X, y)
    as_indices = KernelClassifierCV(
        loss="logistic", gamma=1.0, alphas=[0.1, 1.0], cv=[(train, test)]
    )
    masks = np.zeros((2, n), dtype=bool)
    masks[0, train], masks[1, test] = True, True
    as_masks = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=[0.1, 1.0], cv=[tuple(masks)])
    np.testing.assert_array_equal(
        as_masks.fit(X, y).cv_log_loss_, as_indices.fit(X, y).cv_log_loss_
    )


def test_a_fold_without_weighted_training_rows_is_refused_naming_sample_weight(cancer):
    """Unshuffled KFold(5) with weight only on the first 100 rows: fold 1 holds them all
    out and trains on rows of weight zero only (a ZeroDivisionError from inside the
    solver before)."""
    from sklearn.model_selection import KFold

    X, y = cancer
    w = np.r_[np.ones(100), np.zeros(len(y) - 100)]
    model = KernelClassifierCV(loss="logistic", gamma=1.0, alphas=ALPHAS, cv=KFold(5))
    with pytest.raises(ValueError, match=r"sample_weight: the training rows of fold 1 of 5"):
        model.fit(X, y, sample_weight=w)


def test_unconverged_fits_warn(cancer):
    """A tiny alpha on separable training data: the path's fits and the refit stop at
    their Newton steps' budget, and say so as KernelClassifier does (silent before)."""
    from sklearn.exceptions import ConvergenceWarning

    import gramfree.estimators._logistic_cv as logistic_cv

    X, y = cancer
    with pytest.warns(ConvergenceWarning) as caught:
        original = logistic_cv.DEFAULT_NEWTON_STEPS
        try:
            logistic_cv.DEFAULT_NEWTON_STEPS = 3  # the budget, small enough to run out
            KernelClassifierCV(loss="logistic", gamma=1.0, alphas=[1e-10], cv=3).fit(X, y)
        finally:
            logistic_cv.DEFAULT_NEWTON_STEPS = original
    messages = " ".join(str(w.message) for w in caught)
    assert "of the path's fits" in messages and "the refit at alpha_=1e-10" in messages


def test_a_class_rarer_than_the_folds_warns_and_fits_as_logistic_regression_cv():
    """A class with fewer rows than cv folds: LogisticRegressionCV fits behind
    StratifiedKFold's warning; this estimator refused it (while KFold folds missing a class
    entirely fitted; a review), so a grid search over imbalanced data failed."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    keep = np.r_[0:3, 50:150]  # class 0 has 3 rows
    with pytest.warns(UserWarning, match="least populated class in y has only 3 members"):
        model = KernelClassifierCV(loss="logistic", cv=5, alphas=[0.01, 0.1, 1.0]).fit(
            X[keep], y[keep]
        )
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert np.isfinite(model.cv_log_loss_).all()
    assert model.score(X[keep], y[keep]) > 0.9


def test_a_class_absent_from_a_training_fold_is_said():
    """Unshuffled KFold(3) on iris (sorted by class): each fold trains without the class it
    holds out, whose intercept has no finite optimum; the folds' log-losses (about 30)
    were where the solver stopped, and chose alpha_, in silence (a review; scikit-learn's
    LogisticRegressionCV is as silent). The fit warns; stratified folds do not."""
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.model_selection import KFold

    from gramfree import KernelClassifierCV

    X, y = load_iris(return_X_y=True)
    with pytest.warns(UserWarning, match=r"fold 1 of 3 have no class 0 .* stratify"):
        KernelClassifierCV(loss="logistic", alphas=[0.1, 1.0], cv=KFold(3)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KernelClassifierCV(loss="logistic", alphas=[0.1, 1.0]).fit(X, y)


def test_groups_reach_the_splitter_through_metadata_routing():
    """cv=GroupKFold needs groups at split: fit had no way to pass them (LogisticRegressionCV
    routes them; a review). Routed, the folds are those of the same splits given as pairs;
    without routing, and to the square loss (which has no folds), they are refused."""
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GroupKFold

    X, y = load_iris(return_X_y=True)
    groups = np.arange(len(y)) % 5
    params = dict(loss="logistic", gamma=0.5, alphas=[1e-2, 0.1, 1.0])
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        KernelClassifierCV(**params, cv=GroupKFold(3)).fit(X, y, groups=groups)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = KernelClassifierCV(**params, cv=GroupKFold(3)).fit(X, y, groups=groups)
        pairs = list(GroupKFold(3).split(X, y, groups))
        given = KernelClassifierCV(**params, cv=pairs).fit(X, y)
        with pytest.raises(ValueError, match="^groups: routed to cv's splitter"):
            KernelClassifierCV(gamma=0.5, cv=GroupKFold(3)).fit(X, y, groups=groups)
    np.testing.assert_array_equal(routed.cv_log_loss_, given.cv_log_loss_)
    assert routed.alpha_ == given.alpha_
    # the folds do split by group: each held-out fold's groups are absent from its training
    for train, test in pairs:
        assert not set(groups[train]) & set(groups[test])

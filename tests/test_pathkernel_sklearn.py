"""Path-kernel estimators inside scikit-learn: the estimator checks, pipelines, search."""

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gramfree import PathKernelClassifier, PathKernelRegressor

CHECKED = [
    PathKernelRegressor((8,), learning_rate=0.05, n_steps=100, random_state=0),
    PathKernelClassifier((8,), learning_rate=0.5, n_steps=200, random_state=0),
    PathKernelRegressor(
        (8, 8), "relu", learning_rate=0.05, n_steps=300, batch_size=16, random_state=0
    ),
    # The defaults (learning_rate="auto"): a fixed 0.05 diverged on the checks' unscaled
    # targets (check_fit_idempotent, check_n_features_in, check_fit_check_is_fitted).
    PathKernelRegressor(),
    PathKernelClassifier(),
    PathKernelRegressor((8, 8), "relu", n_steps=300, batch_size=16, random_state=0),
]


# Full batch (the default, batch_size=None), integer weights train as the rows repeated, so
# the equivalence checks pass. With mini-batches they cannot: the repeated data have more
# rows, hence other batches, another shuffle and more steps per epoch; a weighted mini-batch
# step is only an unbiased estimate of the repeated data's full step.
MINI_BATCH_REASON = (
    "mini-batches of the repeated rows are other batches than those of the "
    "weighted rows; only full batch makes weights equal to repetition"
)


def _expected_failed_checks(estimator):
    if estimator.batch_size is None:
        return {}
    return {"check_sample_weight_equivalence_on_dense_data": MINI_BATCH_REASON}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_pipeline_grid_search_cross_val():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    pipe = make_pipeline(
        StandardScaler(),
        PathKernelClassifier((16,), learning_rate=0.2, n_steps=150, random_state=0),
    )
    grid = GridSearchCV(pipe, {"pathkernelclassifier__learning_rate": [0.1, 0.3]}, cv=2, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.8
    scores = cross_val_score(clone(pipe), X, y, cv=3)
    assert scores.mean() > 0.8
    fitted = pipe.fit(X, y)
    assert (
        fitted[-1].decompose(StandardScaler().fit(X).transform(X[:2])).reconstruction_error < 1e-9
    )


def test_a_refit_that_raises_leaves_the_estimator_unfitted():
    """A diverging refit with new labels (and a regressor's with new features) used to
    keep the old network under the new ``classes_`` / ``n_features_in_``: the classifier
    then predicted the new labels with the old network, silently (a review). Now the
    estimator is unfitted after it: predict raises NotFittedError."""
    import pytest
    from sklearn.datasets import load_iris
    from sklearn.exceptions import NotFittedError

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    binary = (y == 2).astype(int)
    clf = PathKernelClassifier((4,), learning_rate=0.5, n_steps=20, random_state=0)
    clf.fit(X, binary)
    with pytest.raises(ValueError, match="diverged"):
        clf.set_params(learning_rate=1e200).fit(X, np.where(binary == 1, "virginica", "other"))
    assert not hasattr(clf, "classes_") and not hasattr(clf, "coefs_")
    with pytest.raises(NotFittedError):
        clf.predict(X[:3])
    reg = PathKernelRegressor((4,), learning_rate=0.1, n_steps=5, random_state=0)
    reg.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="diverged"):
        reg.set_params(learning_rate=1e200).fit(np.c_[X, X], X[:, 0])
    assert not hasattr(reg, "n_features_in_")
    with pytest.raises(NotFittedError):
        reg.predict(X[:3])


def test_a_refit_forgets_the_last_model_s_diagnostics():
    """decomposition_error_ and replay_gap_ describe the model they were measured on: a
    refit (here without a recorded path, so nothing can measure them) drops them."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:40], (y[:40] - y.mean()) / y.std()
    model = PathKernelRegressor((4,), learning_rate=0.1, n_steps=10, random_state=0).fit(X, y)
    model.decompose(X[:2])
    assert hasattr(model, "decomposition_error_") and hasattr(model, "replay_gap_")
    model.set_params(record_path=False, n_steps=3).fit(X, 5 * y)
    assert not hasattr(model, "decomposition_error_")
    assert not hasattr(model, "replay_gap_")


def test_a_refit_keeps_attributes_the_user_set():
    """The refit forgets what fits set, by name: an attribute of the user's own that ends
    in "_" stays (a review: every such attribute was removed)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:40], (y[:40] - y.mean()) / y.std()
    model = PathKernelRegressor((4,), learning_rate=0.1, n_steps=5, random_state=0).fit(X, y)
    model.note_ = "mine"
    model.fit(X, y)
    assert model.note_ == "mine"

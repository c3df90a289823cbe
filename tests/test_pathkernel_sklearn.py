"""Path-kernel estimators inside scikit-learn: the estimator checks, pipelines, search."""

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

"""Path-kernel models at the edges a review found silent or unclear: weights near float64's
limits, the short last mini-batch, overflowing decompositions, scalar widths, confident
log-probabilities, edits of the fitted weights, and decompositions handed back lazily.
Each compares with an independent reference (the same model without the edge, or a
closed form) or checks the error names what to change."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from gramfree import PathKernelClassifier, PathKernelRegressor


def _diabetes(n=30):
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X[:n]), (y[:n] - y.mean()) / y.std()


def test_weights_near_the_top_of_float64_train_as_unit_weights():
    """Scaling every weight leaves the objective's minimiser and the step (divided by the
    mean weight) unchanged. At 1e306 the trainer's B * sum(w) overflowed before its division
    by n, the step became 0 and the network stayed at its initial weights, silently."""
    X, y = _diabetes()
    params = dict(hidden_layer_sizes=(4,), learning_rate=0.1, n_steps=10, random_state=0)
    unit = PathKernelRegressor(**params).fit(X, y)
    huge = PathKernelRegressor(**params).fit(X, y, sample_weight=np.full(len(y), 1e306))
    np.testing.assert_allclose(huge.predict(X), unit.predict(X), rtol=1e-12, atol=1e-12)
    assert huge.loss_curve_[-1] < huge.loss_curve_[0]


def test_weights_too_small_for_the_step_are_refused_naming_sample_weight():
    """A mean weight of 1e-320 makes lr / (B mean) overflow: before, the fit reported a
    divergence and blamed learning_rate."""
    X, y = _diabetes()
    with pytest.raises(ValueError, match="sample_weight: the mean weight"):
        PathKernelRegressor((4,), n_steps=5).fit(X, y, sample_weight=np.full(len(y), 1e-320))


def test_the_penalty_guard_counts_the_short_last_batch():
    """n = 33 in batches of 16 ends each epoch with one row, where lr alpha / B = 24: the
    weights grew to 1e31 behind a ConvergenceWarning, where the guard promises an error."""
    X, y = _diabetes(33)
    with pytest.raises(ValueError, match="batch_size=1"):
        PathKernelRegressor((4,), learning_rate=1.0, alpha=24.0, batch_size=16).fit(X, y)
    X, y = _diabetes(32)  # whole batches of 16: lr alpha / B = 1.5, allowed
    PathKernelRegressor((4,), learning_rate=1.0, alpha=24.0, batch_size=16, n_steps=3).fit(X, y)


def test_an_overflowing_decomposition_is_refused():
    """Training rows of norm ~1e155 with saturated units make inf * 0 in the factored
    products: the contributions were NaN, explain returned only padding and the
    self-check said 0. The model itself still fits and predicts."""
    X, y = _diabetes()
    model = PathKernelRegressor((4,), learning_rate=0.1, n_steps=10, random_state=0)
    model.fit(X * 1e155, y)
    assert np.isfinite(model.predict(X[:2] * 1e155)).all()
    with pytest.raises(ValueError, match="overflow float64.*standardise"):
        model.decompose(X[:2] * 1e155)
    with pytest.raises(ValueError, match="overflow float64"):
        model.explain(X[:2] * 1e155)


def test_influence_without_a_recorded_path_names_record_path():
    X, y = _diabetes()
    model = PathKernelRegressor((4,), n_steps=5, record_path=False, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="record_path=False"):
        model.influence(X[:2])


def test_an_integer_width_is_one_hidden_layer():
    """scikit-learn's MLP takes hidden_layer_sizes=5; it was refused as not array-like."""
    X, y = _diabetes()
    params = dict(learning_rate=0.1, n_steps=10, random_state=0)
    scalar = PathKernelRegressor(5, **params).fit(X, y)
    listed = PathKernelRegressor((5,), **params).fit(X, y)
    np.testing.assert_array_equal(scalar.predict(X), listed.predict(X))


def test_confident_log_probabilities_are_finite_and_exact():
    """log(1 - sigmoid(f)) was -inf from f ~ 37; the reference is -log(1 + e^f), computed
    by numpy's logaddexp, and softmax's logarithm for more classes."""
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = PathKernelClassifier(
        (8,), activation="relu", learning_rate=0.05, n_steps=200, random_state=0
    )
    model.fit(X[:200] * 30.0, y[:200])  # large inputs, unbounded units: confident logits
    f = model.decision_function(X[200:260] * 30.0)
    assert np.abs(f).max() > 40.0  # the case: 1 - sigmoid(f) rounds to 0
    log_proba = model.predict_log_proba(X[200:260] * 30.0)
    expected = np.column_stack([-np.logaddexp(0.0, f), -np.logaddexp(0.0, -f)])
    np.testing.assert_allclose(log_proba, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(
        model.predict_proba(X[200:260] * 30.0), np.exp(expected), rtol=1e-12, atol=0
    )


def test_editing_the_fitted_weights_in_place_is_refused():
    """predict and decompose use the parameters recorded at fit: an edit of coefs_ was
    silently ignored (scikit-learn's MLP honours it). It raises now."""
    X, y = _diabetes()
    model = PathKernelRegressor((4,), n_steps=5, random_state=0).fit(X, y)
    for arrays in (model.coefs_, model.intercepts_, model.initial_coefs_):
        with pytest.raises(ValueError, match="read-only"):
            arrays[0][...] = 0.0


def test_a_decomposition_of_a_dask_x_explains_in_memory_queries():
    """explain(X, decomposition=decompose(dask X)) passed the checks, then failed in dask's
    fancy indexing; it now computes the fields and gives explain(X)'s answer."""
    da = pytest.importorskip("dask.array")
    X, y = _diabetes(60)
    model = PathKernelRegressor((4,), learning_rate=0.1, n_steps=20, random_state=0).fit(X, y)
    queries = X[:6]
    lazy = model.decompose(da.from_array(queries, chunks=3))
    got = model.explain(queries, top_k=4, decomposition=lazy)
    expected = model.explain(queries, top_k=4)
    np.testing.assert_array_equal(got.supporting, expected.supporting)
    np.testing.assert_array_equal(got.opposing, expected.opposing)
    np.testing.assert_allclose(
        got.supporting_contributions, expected.supporting_contributions, rtol=1e-12
    )


def test_a_learning_rate_that_underflows_is_named_without_weights():
    """learning_rate=5e-324 over a batch of 30 rows underflows: the error blamed
    sample_weight, which was not given (a review)."""
    X, y = _diabetes()
    with pytest.raises(ValueError, match=r"^learning_rate=4.94e-324 divided by the batch"):
        PathKernelRegressor((4,), n_steps=3, learning_rate=5e-324).fit(X, y)
    with pytest.raises(ValueError, match=r"^learning_rate=4.94e-324 .* mean sample weight 1"):
        PathKernelRegressor((4,), n_steps=3, learning_rate=5e-324).fit(
            X, y, sample_weight=np.ones(len(y))
        )
    with pytest.raises(ValueError, match=r"^sample_weight: the mean weight inf"):
        PathKernelRegressor((4,), n_steps=3).fit(X, y, sample_weight=np.full(len(y), 1e307))


def test_targets_too_large_for_float64_say_so_not_learning_rate():
    """y times 1e160: the loss at the starting weights overflows before any step, and the
    error advised a smaller learning_rate, which cannot help (a review). A learning rate
    that does diverge is still named."""
    X, y = _diabetes()
    with pytest.raises(ValueError, match=r"training cannot start: .* X or y is too large"):
        PathKernelRegressor((4,), n_steps=3, learning_rate=1e-300).fit(X, y * 1e160)
    with pytest.raises(ValueError, match=r"training diverged at step [1-9].*learning_rate"):
        PathKernelRegressor((4,), n_steps=50, learning_rate=1e300).fit(X, y)


def test_checkpoints_beyond_memory_are_refused_before_training():
    """200000 steps of 24001 weights, every step kept: 38 GB, which failed as
    std::bad_alloc after 49 s of training (a review). Refused at once, naming
    checkpoint_every, from the count the trainer keeps (steps c, 2c, ... before the last)."""
    import time

    from gramfree.pathkernel.estimators import _check_checkpoint_memory

    X, y = _diabetes(20)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^checkpoint_every=1: 199999 checkpoints of the 24001"):
        PathKernelRegressor((2000,), n_steps=200000, checkpoint_every=1, learning_rate=1e-4).fit(
            X[:, :10], y
        )
    assert time.perf_counter() - start < 5.0  # before any training
    model = PathKernelRegressor((5,), n_steps=11, checkpoint_every=5, random_state=0).fit(X, y)
    assert model._path["checkpoints"].shape[0] == (11 - 1) // 5  # the count the check uses
    _check_checkpoint_memory(None, 10**6, 10**9)  # none kept: nothing to check


def test_a_loss_curve_beyond_memory_is_refused_naming_n_steps():
    """n_steps=10**12: the trainer reserves its loss curve (8 TB) first, which was a bare
    ``MemoryError: std::bad_alloc`` (a review); a ValueError naming n_steps now."""
    X, y = _diabetes(20)
    with pytest.raises(ValueError, match=r"^n_steps=1000000000000: its loss curve alone"):
        PathKernelRegressor((4,), n_steps=10**12, learning_rate=0.1).fit(X, y)


def test_path_kernel_names_y_in_feature_name_checks():
    """path_kernel(X, Y) with a DataFrame X and a plain Y warned that X lacked feature
    names, and a Y of other names raised without naming Y (a review)."""
    import warnings

    pd = pytest.importorskip("pandas")
    X, y = _diabetes(12)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    model = PathKernelRegressor((3,), n_steps=3, random_state=0).fit(frame, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        K = model.path_kernel(frame[:2], X[:3])
    said = [str(w.message) for w in caught]
    assert said == [
        "Y does not have valid feature names, but PathKernelRegressor was fitted with feature names"
    ]
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(K, model.path_kernel(frame[:2], frame[:3]))
    other = frame.rename(columns={"f0": "g0"})
    with pytest.raises(ValueError, match=r"^Y: The feature names should match"):
        model.tangent_kernel(frame[:2], other[:2])
    unnamed = PathKernelRegressor((3,), n_steps=3, random_state=0).fit(X, y)
    with pytest.warns(UserWarning) as caught:
        unnamed.path_kernel(X[:2], frame[:3])
    assert [str(w.message) for w in caught] == [
        "Y has feature names, but PathKernelRegressor was fitted without feature names"
    ]


def test_queries_far_outside_the_data_are_named_in_the_advice():
    """Queries 1e10 times the training scale saturate the tanh units, and the output
    jumps along the path: a larger quadrature does not help (1.45 relative at 4 and at 64
    nodes), a smaller learning_rate does (9e-16). The warning said only "a larger
    quadrature", and "steps where the training loss jumped" (a review)."""
    X, y = _diabetes(30)
    model = PathKernelRegressor((4,), n_steps=20, random_state=0).fit(X, y)
    for nodes in (4, 64):
        with pytest.warns(UserWarning, match="far outside the training data's range"):
            model.decompose(X[:2] * 1e10, quadrature=nodes)

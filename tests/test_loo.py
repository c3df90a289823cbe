"""criterion="loo": the exact leave-one-out error of the Nystrom ridge for every alpha
(``gramfree.solvers.loo``), against scikit-learn's RidgeCV on the same Nystrom features and
against brute-force refits without each row (or each distinct row with its copies), on
real data; the choice, its model and its file."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeCV
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import scale

from gramfree import KernelClassifierCV, KernelRegressor, KernelRegressorCV, load

ALPHAS = np.logspace(-4, 2, 9)


def _diabetes(n=300, targets=1):
    X, y = load_diabetes(return_X_y=True)
    X = scale(X[:n])
    if targets == 1:
        return X, y[:n]
    # a second real target in other units: the body mass index from the other features
    return np.delete(X, 2, axis=1), np.column_stack([y[:n], X[:, 2] * 1e3])


def _features(X, C, gamma):
    """scikit-learn's Nystroem features of the centres: K(X, C) L^-T, L L^T = K(C, C)."""
    L = np.linalg.cholesky(rbf_kernel(C, C, gamma=gamma))
    return np.linalg.solve(L, rbf_kernel(X, C, gamma=gamma).T).T


@pytest.mark.parametrize("targets", [1, 2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_loo_is_ridgecv_s_on_the_same_nystrom_features(weighted, targets):
    X, y = _diabetes(targets=targets)
    n = len(X)
    w = np.random.default_rng(2).uniform(0.2, 3.0, n) if weighted else None
    gamma = 0.05
    model = KernelRegressorCV(
        gamma=gamma, alphas=ALPHAS, n_centers=80, random_state=0, criterion="loo"
    ).fit(X, y, sample_weight=w)
    F = _features(X, model.centers_, gamma)
    ridge = RidgeCV(alphas=ALPHAS, fit_intercept=False, store_cv_results=True)
    ridge.fit(F, y, sample_weight=w)
    # RidgeCV's cv_results_: each row's weighted squared LOO error (per target), by alpha.
    per_row = ridge.cv_results_ if targets == 1 else ridge.cv_results_.sum(axis=1)
    want = per_row.sum(axis=0) / (n if w is None else w.sum())
    np.testing.assert_allclose(model.loo_values_, want, rtol=1e-8)
    assert model.alpha_ == ALPHAS[np.argmin(want)] == ridge.alpha_
    assert model.best_score_ == -model.loo_values_.min()
    plain = KernelRegressor(
        gamma=gamma, alpha=model.alpha_, solver="nystrom-direct", centers=model.centers_
    ).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(model.predict(X), plain.predict(X), rtol=1e-8, atol=1e-8)


def test_loo_of_exact_kernel_ridge_is_refitting_without_each_row():
    X, y = _diabetes(n=90)
    gamma = 0.1
    model = KernelRegressorCV(gamma=gamma, alphas=ALPHAS, criterion="loo").fit(X, y)
    assert model.n_centers_ == len(X)  # every row a centre: exact kernel ridge
    for a, value in zip(ALPHAS, model.loo_values_, strict=True):
        errors = []
        for i in range(len(X)):
            keep = np.arange(len(X)) != i
            fit = KernelRidge(alpha=a, kernel="rbf", gamma=gamma).fit(X[keep], y[keep])
            errors.append((y[i] - fit.predict(X[i : i + 1])[0]) ** 2)
        assert value == pytest.approx(np.mean(errors), rel=1e-7)


def test_repeated_rows_are_left_out_with_their_copies():
    """Leaving one copy out keeps its twin, whose fit predicts it nearly exactly: LOO
    leaves out each distinct row with all its copies (and counts their scatter about
    their mean), brute force on the Nystrom features."""
    X, y = _diabetes(n=150)
    X, y = np.vstack([X, X[:20]]), np.concatenate([y, y[:20] + 7.0])
    gamma = 0.05
    model = KernelRegressorCV(
        gamma=gamma, alphas=ALPHAS, n_centers=40, random_state=2, criterion="loo"
    ).fit(X, y)
    assert len(np.unique(model.centers_, axis=0)) == 40  # no centre twice: L exists
    F = _features(X, model.centers_, gamma)
    _, groups = np.unique(X, axis=0, return_inverse=True)
    groups = groups.ravel()
    for a, value in zip(ALPHAS, model.loo_values_, strict=True):
        total = 0.0
        for g in np.unique(groups):
            out = groups == g
            beta = np.linalg.solve(
                F[~out].T @ F[~out] + a * np.eye(F.shape[1]), F[~out].T @ y[~out]
            )
            total += float(np.sum((y[out] - F[out] @ beta) ** 2))
        assert value == pytest.approx(total / len(X), rel=1e-7)


def test_loo_per_target_equals_each_target_alone():
    X, Y = _diabetes(targets=2)
    params = dict(gamma=0.05, alphas=ALPHAS, n_centers=100, random_state=3, criterion="loo")
    model = KernelRegressorCV(alpha_per_target=True, **params).fit(X, Y)
    assert model.loo_values_.shape == (len(ALPHAS), 2)
    for t in range(2):
        alone = KernelRegressorCV(**params).fit(X, Y[:, t])
        np.testing.assert_allclose(model.loo_values_[:, t], alone.loo_values_, rtol=1e-10)
        assert model.alpha_[t] == alone.alpha_
        assert model.best_score_[t] == pytest.approx(alone.best_score_, rel=1e-10)
        np.testing.assert_allclose(model.predict(X)[:, t], alone.predict(X), rtol=1e-9)


def test_classifier_loo_on_its_class_targets():
    X, y = load_iris(return_X_y=True)
    X = scale(X)
    model = KernelClassifierCV(gamma=3.0 / 4, alphas=ALPHAS, criterion="loo").fit(X, y)
    targets = np.eye(3)[y]  # the classifier's one-hot codes
    reference = KernelRegressorCV(gamma=3.0 / 4, alphas=ALPHAS, criterion="loo").fit(X, targets)
    np.testing.assert_allclose(model.loo_values_, reference.loo_values_, rtol=1e-10)
    assert model.alpha_ == reference.alpha_
    np.testing.assert_allclose(model.decision_function(X), reference.predict(X), rtol=1e-9)


@pytest.mark.parametrize(
    "estimator, match",
    [
        (KernelClassifierCV(loss="logistic", criterion="loo"), "criterion='loo': the square"),
        (KernelRegressorCV(criterion="LOO"), "'criterion' parameter"),
    ],
)
def test_what_loo_does_not_take_is_refused_naming_it(estimator, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, y)


@pytest.mark.parametrize("per_target", [False, True])
def test_loo_models_save_and_load(tmp_path, per_target):
    X, y = _diabetes(targets=2 if per_target else 1)
    model = KernelRegressorCV(
        gamma=0.05, alphas=ALPHAS, criterion="loo", alpha_per_target=per_target
    ).fit(X, y)
    model.save(tmp_path / "m.gf")
    loaded = load(tmp_path / "m.gf")
    np.testing.assert_array_equal(loaded.loo_values_, model.loo_values_)
    np.testing.assert_array_equal(loaded.alpha_, model.alpha_)
    np.testing.assert_array_equal(loaded.best_score_, model.best_score_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "criterion, edit, message",
    [
        ("loo", lambda a: a.pop("loo_values_"), r"missing field\(s\) \['loo_values_'\]"),
        ("loo", lambda a: a.update(loo_values_=[1.0]), "loo_values_' has 1 values, expected 9"),
        ("loo", lambda a: a.update(best_score_=-1.0), "minus alpha_'s leave-one-out error"),
        ("gcv", lambda a: a.update(loo_values_=[1.0] * 9), "the parameters choose alpha by GCV"),
    ],
)
def test_damaged_loo_files_name_the_field(tmp_path, criterion, edit, message):
    from test_alpha_cv import _rewrite_attributes

    X, y = _diabetes()
    KernelRegressorCV(gamma=0.05, alphas=ALPHAS, criterion=criterion).fit(X, y).save(
        tmp_path / "m.gf"
    )
    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", lambda m: edit(m["attributes"]))
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "bad.gf")


def test_loo_on_a_nearly_singular_k_mm_against_the_dense_formula():
    """Breast cancer, every row a centre, a wide kernel (K_MM's smallest pivots at
    rounding: the path takes the whitened features): each row's leverage from the
    path's basis against exact kernel ridge's hat matrix formed densely. Small alphas
    carry the basis's rounding; those below it have no estimate (inf)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X, y = scale(X), y.astype(float)
    alphas = np.logspace(-10, 1, 12)
    model = KernelRegressorCV(gamma=0.001, alphas=alphas, criterion="loo").fit(X, y)
    assert model.solver_info_["pass"] == "whitened features"
    K = rbf_kernel(X, X, gamma=0.001)
    for a, value in zip(alphas, model.loo_values_, strict=True):
        if not np.isfinite(value):
            assert a < 1e-8  # below the rounding of the whitened Gram's eigenvalues
            continue
        H = K @ np.linalg.inv(K + a * np.eye(len(y)))
        want = np.mean(((y - H @ y) / (1.0 - np.diag(H))) ** 2)
        # The basis's rounding, relative to alpha (8e-5 at 1e-8, 3e-6 at 1e-6, 3e-11 at
        # 1e-3; a few times that from one run to the next, with the threads' sums).
        assert value == pytest.approx(want, rel=max(1e-9, 1e-10 / a))


def test_the_pass_s_blocks_hold_its_memory_whatever_the_alphas_and_targets():
    """Blocks sized by M alone held arrays of rows x alphas x targets several times at
    once, far beyond the path's own (a review: M = 50, 50 alphas, 10 targets). The same
    values from blocks of 16 rows, and a peak (tracemalloc's) well below one such array
    of all rows."""
    import tracemalloc

    from gramfree.solvers import loo as module
    from gramfree.solvers._common import Problem
    from gramfree.solvers.alpha_path import solve_alpha_path

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 4))
    Y = np.sin(X[:, :1] + X[:, 1:2]) + 0.1 * rng.normal(size=(20000, 10))
    alphas = np.logspace(-6, 2, 50)
    centers = X[:50]
    problem = Problem(X, Y, gramfree_kernel(), 1.0, None, None)
    path = solve_alpha_path(problem, centers, alphas)
    tracemalloc.start()
    errors = module.loo_errors(problem, centers, [path])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150e6  # one residual array of all rows was 80 MB, four of them at once
    small = module.BLOCK_BYTES
    try:
        module.BLOCK_BYTES = 4 * 8 * (2 * 50 + 2 * 50 + 2 * 50 * 10) * 16
        np.testing.assert_allclose(module.loo_errors(problem, centers, [path]), errors, rtol=1e-12)
    finally:
        module.BLOCK_BYTES = small


def gramfree_kernel():
    from gramfree.kernels import RBF

    return RBF(gamma=0.5)


def test_the_pass_runs_on_the_threads_n_jobs_asks_for(monkeypatch):
    import threadpoolctl

    import gramfree.estimators.cv as cv

    seen = []

    def recording(*args):
        seen.extend(
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        )
        return original(*args)

    original = cv.loo_errors
    monkeypatch.setattr(cv, "loo_errors", recording)
    X, y = _diabetes()
    KernelRegressorCV(gamma=0.05, alphas=ALPHAS, criterion="loo", n_jobs=1).fit(X, y)
    assert seen and set(seen) == {1}


def test_a_choice_where_smaller_alphas_have_no_estimate_says_so():
    """One row weighing 1e12 among rows of 1: its leverage is within 1e-10 of 1 at every
    alpha but the largest, which leave-one-out then chose in silence (a review)."""
    X, y = _diabetes()
    w = np.ones(len(X))
    w[0] = 1e12
    with pytest.warns(UserWarning, match="smallest with a leave-one-out estimate"):
        model = KernelRegressorCV(
            gamma=0.05, alphas=ALPHAS, n_centers=60, random_state=0, criterion="loo"
        ).fit(X, y, sample_weight=w)
    assert np.isinf(model.loo_values_[ALPHAS < model.alpha_]).all()


def test_all_zero_targets_take_the_largest_alpha_as_gcv_does():
    X, _ = _diabetes()
    for per_target, y in ((False, np.zeros(len(X))), (True, np.zeros((len(X), 2)))):
        with pytest.warns(UserWarning, match="the targets are all zero"):
            model = KernelRegressorCV(
                gamma=0.05, alphas=ALPHAS, criterion="loo", alpha_per_target=per_target
            ).fit(X, y)
        assert np.all(model.alpha_ == ALPHAS.max())


def test_switching_the_classifier_to_the_logistic_loss_drops_loo_values():
    X, y = load_iris(return_X_y=True)
    model = KernelClassifierCV(gamma=0.5, alphas=[0.01, 0.1], criterion="loo").fit(X, y)
    assert hasattr(model, "loo_values_")
    model.set_params(criterion="gcv", loss="logistic", cv=3).fit(X, y)
    assert not hasattr(model, "loo_values_") and not hasattr(model, "gcv_values_")


def test_a_repeated_centre_leaves_the_small_alphas_exact():
    """Iris has one row twice: every row a centre, K_MM is singular and the whitened
    Gram has a null direction, whose column of Z is rounding. Divided by alpha it raised
    every leverage: alpha 1e-8 had no estimate (inf) where 1 - h is 1e-8 (a review).
    Against exact kernel ridge on the distinct rows (weight: their count), its leave-one-out
    error formed densely."""
    X, labels = load_iris(return_X_y=True)
    X, Y = scale(X), np.eye(3)[labels]
    assert len(np.unique(X, axis=0)) == len(X) - 1
    gamma, alphas = 10 / 4, np.logspace(-8, 2, 11)
    model = KernelRegressorCV(gamma=gamma, alphas=alphas, criterion="loo").fit(X, Y)
    assert model.n_centers_ == len(X)
    distinct, first, count = np.unique(X, axis=0, return_index=True, return_counts=True)
    Yd = Y[first]  # the twins share their class: no pure error
    K = rbf_kernel(distinct, distinct, gamma=gamma)
    root = np.sqrt(count.astype(float))
    for a, value in zip(alphas, model.loo_values_, strict=True):
        A = root[:, None] * K * root[None, :] + a * np.eye(len(count))
        H = root[:, None] * K * root[None, :] @ np.linalg.inv(A)  # W^1/2 K (WK + a)^-1 W^1/2
        residual = (Yd - (H @ (root[:, None] * Yd)) / root[:, None]) / (1 - np.diag(H))[:, None]
        want = float(np.sum(count[:, None] * residual**2)) / len(X)
        assert value == pytest.approx(want, rel=max(1e-9, 1e-13 / a)), a

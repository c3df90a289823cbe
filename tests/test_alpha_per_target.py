"""KernelRegressorCV(alpha_per_target=True, criterion="gcv"): each target's alpha by its own GCV, against
a dense float64 reference of exact kernel ridge's GCV per target and KernelRidge at each
chosen alpha, on real multi-target data; the same as fitting each target alone on the
same centres (weights, repeated rows, Nystrom centres); invariant to the other targets'
units, where one shared alpha is not; saved and loaded; refused with gammas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes, load_linnerud
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import scale

from gramfree import KernelRegressorCV, load

ALPHAS = np.logspace(-3, 2, 11)


def _linnerud():
    X, Y = load_linnerud(return_X_y=True)  # 20 men: exercises -> weight, waist, pulse
    return scale(X), Y


def _diabetes_two_targets(n=300):
    """Diabetes' disease progression and, from the other nine features, the body mass
    index in its own (much smaller) units: two real targets of unlike scale."""
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:n], y[:n]
    bmi = X[:, 2].copy()
    X = scale(np.delete(X, 2, axis=1))
    return X, np.column_stack([y, bmi])


def _exact_gcv(X, y, gamma, alphas, w):
    """GCV of weighted exact kernel ridge per alpha, the hat matrix formed densely:
    ``H = K (W K + alpha I)^-1 W``, GCV = (sum w (y - H y)^2 / sum w) / (1 - tr H / n)^2
    (distinct rows: no pure error)."""
    K = rbf_kernel(X, X, gamma=gamma)
    W = np.diag(w)
    out = []
    for a in alphas:
        H = K @ np.linalg.solve(W @ K + a * np.eye(len(y)), W)
        r = y - H @ y
        out.append((np.sum(w * r**2) / w.sum()) / (1.0 - np.trace(H) / len(y)) ** 2)
    return np.array(out)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("data, gamma", [(_linnerud, 0.1), (_diabetes_two_targets, 0.05)])
def test_each_target_is_exact_kernel_ridge_at_its_own_gcv_choice(data, gamma, weighted):
    X, Y = data()
    n = len(X)
    w = np.random.default_rng(3).uniform(0.3, 3.0, n) if weighted else np.ones(n)
    model = KernelRegressorCV(
        criterion="gcv", gamma=gamma, alphas=ALPHAS, alpha_per_target=True
    ).fit(X, Y, sample_weight=w if weighted else None)
    assert model.n_centers_ == n  # every row a centre: exact kernel ridge
    assert model.alpha_.shape == (Y.shape[1],) and model.best_score_.shape == (Y.shape[1],)
    assert model.gcv_values_.shape == (len(ALPHAS), Y.shape[1])
    predictions = model.predict(X)
    for t in range(Y.shape[1]):
        want = _exact_gcv(X, Y[:, t], gamma, ALPHAS, w)
        # 1e-6 at the smallest alphas on diabetes: the whitened Gram's rounding, with
        # K_MM's 300 centres nearly dependent at gamma 0.05 (the path's own precision).
        np.testing.assert_allclose(model.gcv_values_[:, t], want, rtol=1e-5)
        assert model.alpha_[t] == ALPHAS[np.argmin(want)]
        assert model.best_score_[t] == -model.gcv_values_[np.argmin(want), t]
        ridge = KernelRidge(alpha=model.alpha_[t], kernel="rbf", gamma=gamma)
        ridge.fit(X, Y[:, t], sample_weight=w)
        np.testing.assert_allclose(predictions[:, t], ridge.predict(X), rtol=1e-7, atol=1e-9)
    # The targets' choices differ here, so one alpha for all could not be each one's.
    assert len(set(model.alpha_.tolist())) > 1


@pytest.mark.parametrize(
    "case", ["nystrom", "weighted", "repeated rows"], ids=lambda c: c.replace(" ", "-")
)
def test_per_target_equals_each_target_fitted_alone_on_the_same_centres(case):
    X, Y = _diabetes_two_targets(n=442)
    w = None
    if case == "weighted":
        w = np.random.default_rng(0).uniform(0.1, 5.0, len(X))
    if case == "repeated rows":  # pure error per target, and coinciding centres
        X, Y = np.vstack([X, X[:60]]), np.vstack([Y, Y[:60] * 1.01])
    params = dict(gamma=0.1, alphas=ALPHAS, n_centers=150, random_state=4)
    model = KernelRegressorCV(criterion="gcv", alpha_per_target=True, **params).fit(
        X, Y, sample_weight=w
    )
    for t in range(2):
        alone = KernelRegressorCV(criterion="gcv", **params).fit(X, Y[:, t], sample_weight=w)
        np.testing.assert_array_equal(alone.center_indices_, model.center_indices_)
        assert model.alpha_[t] == alone.alpha_
        np.testing.assert_allclose(model.gcv_values_[:, t], alone.gcv_values_, rtol=1e-10)
        np.testing.assert_allclose(model.dof_, alone.dof_, rtol=1e-12)
        np.testing.assert_allclose(model.predict(X)[:, t], alone.predict(X), rtol=1e-9)
        assert model.solver_info_["targets"][t]["pass"] == alone.solver_info_["pass"]


@settings(max_examples=15, deadline=None)
@given(log_scales=st.lists(st.floats(-6.0, 6.0), min_size=3, max_size=3))
def test_a_target_s_alpha_does_not_depend_on_the_units_of_the_others(log_scales):
    """GCV is scale-free per target (its RSS scales by the square of the units), so each
    target keeps its alpha whatever the units of all three; one shared alpha follows the
    target in the largest units."""
    X, Y = _linnerud()
    base = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=ALPHAS, alpha_per_target=True).fit(
        X, Y
    )
    scaled = Y * 10.0 ** np.array(log_scales)
    model = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=ALPHAS, alpha_per_target=True).fit(
        X, scaled
    )
    np.testing.assert_array_equal(model.alpha_, base.alpha_)
    np.testing.assert_allclose(
        model.predict(X), base.predict(X) * 10.0 ** np.array(log_scales), rtol=1e-8
    )


def test_one_shared_alpha_follows_the_target_in_large_units():
    """The reason for the option (KernelRegressorCV's docstring): with the body mass index
    in its own units, disease progression decides the shared alpha alone."""
    X, Y = _diabetes_two_targets()
    shared = KernelRegressorCV(criterion="gcv", gamma=0.05, alphas=ALPHAS).fit(X, Y)
    per = KernelRegressorCV(criterion="gcv", gamma=0.05, alphas=ALPHAS, alpha_per_target=True).fit(
        X, Y
    )
    assert shared.alpha_ == per.alpha_[0] != per.alpha_[1]


def test_one_target_keeps_a_float_alpha_as_ridgecv():
    X, Y = _linnerud()
    for y in (Y[:, 2], Y[:, 2:]):
        per = KernelRegressorCV(
            criterion="gcv", gamma=0.1, alphas=ALPHAS, alpha_per_target=True
        ).fit(X, y)
        shared = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=ALPHAS).fit(X, y)
        assert isinstance(per.alpha_, float) and per.alpha_ == shared.alpha_
        assert per.best_score_ == shared.best_score_
        np.testing.assert_array_equal(per.predict(X), shared.predict(X))


def test_a_target_s_warning_names_it():
    X, Y = _linnerud()
    Y = np.column_stack([Y[:, 0], np.zeros(len(Y))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = KernelRegressorCV(
            criterion="gcv", gamma=0.1, alphas=ALPHAS, alpha_per_target=True
        ).fit(X, Y)
    said = [str(c.message) for c in caught if c.category is UserWarning]
    assert len(said) == 1 and said[0].startswith("target 1: y: the targets are all zero")
    assert model.alpha_[1] == ALPHAS.max() and model.alpha_[0] < ALPHAS.max()


@pytest.mark.parametrize("params", [dict(gammas=[0.1, 1.0]), dict(gamma_search="gradient")])
def test_gammas_with_alpha_per_target_are_refused(params):
    X, Y = _linnerud()
    model = KernelRegressorCV(criterion="gcv", alphas=ALPHAS, alpha_per_target=True, **params)
    with pytest.raises(ValueError, match="alpha_per_target=True chooses an alpha for each"):
        model.fit(X, Y)


def test_per_target_models_save_and_load(tmp_path):
    X, Y = _linnerud()
    model = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=ALPHAS, alpha_per_target=True).fit(
        X, Y
    )
    model.save(tmp_path / "m.gf")
    loaded = load(tmp_path / "m.gf")
    assert loaded.alpha_per_target is True
    np.testing.assert_array_equal(loaded.alpha_, model.alpha_)
    np.testing.assert_array_equal(loaded.best_score_, model.best_score_)
    np.testing.assert_array_equal(loaded.gcv_values_, model.gcv_values_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("alpha_", [0.01, 0.5, 0.1], r"alpha_\[1\]' is 0.5, not one of params.alphas"),
        ("alpha_", [0.01, 0.1], r"alpha_' has 2 values, expected 3"),
        ("alpha_", 0.01, r"alpha_' must be a list of numbers"),
        ("gcv_values_", [[1.0, 2.0, 3.0]], r"gcv_values_' must be a list of 11 rows"),
        ("gcv_values_", [[1.0, 2.0]] * 11, r"gcv_values_\[0\]' has 2 values, expected 3"),
        ("best_score_", [0.0, 0.0, 0.0], r"best_score_\[0\]' is not minus alpha_'s GCV"),
        ("best_score_", -1.0, r"best_score_' must be a list of 3 scores"),
        ("gcv_grid_", [[1.0]], r"gcv_grid_' is stored with params.alpha_per_target"),
    ],
)
def test_damaged_per_target_files_name_the_field(tmp_path, field, value, message):
    X, Y = _linnerud()
    KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=ALPHAS, alpha_per_target=True).fit(
        X, Y
    ).save(tmp_path / "m.gf")

    def edit(meta):
        meta["attributes"][field] = value

    _rewrite(tmp_path / "m.gf", tmp_path / "bad.gf", edit)
    with pytest.raises(ValueError, match=f"attributes.{message}"):
        load(tmp_path / "bad.gf")


def test_a_target_in_units_beyond_the_fit_s_range_is_refused_by_its_column():
    """Each target is checked as a fit of its own (a review: diabetes' y beside y x
    1e-165 chose alpha 100 with a false 'all zero' warning, its GCV underflowed)."""
    X, Y = _diabetes_two_targets()
    Y = np.column_stack([Y[:, 0], Y[:, 0] * 1e-165])
    with pytest.raises(ValueError, match=r"y\[:, 1\]: the largest target magnitude"):
        KernelRegressorCV(criterion="gcv", gamma=0.05, alphas=ALPHAS, alpha_per_target=True).fit(
            X, Y
        )
    KernelRegressorCV(criterion="gcv", gamma=0.05, alphas=ALPHAS).fit(
        X, Y
    )  # one alpha: y as a whole


def test_cancelling_coefficients_warn_for_their_own_target():
    """float32 digits (tests/test_float32_cancellation.py's case): target 0 alone warns
    that its coefficients cancel beyond float32; beside a target in units of 1e4 it must
    still (the warning compared all targets' largest estimate with their joint scale)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = scale(X).astype(np.float32)
    first = np.where(y == 3, 1.0, -1.0)
    noise = 1e4 * np.random.default_rng(0).normal(size=len(y))
    params = dict(gamma=0.003 / 64, alphas=[1e-6, 1e6])
    for targets, per in ((first, False), (np.column_stack([first, noise]), True)):
        with pytest.warns(RuntimeWarning, match="float32 data: the fitted coefficients"):
            KernelRegressorCV(criterion="gcv", alpha_per_target=per, **params).fit(X, targets)


def _rewrite(src, dst, edit):
    from test_alpha_cv import _rewrite_attributes

    _rewrite_attributes(src, dst, edit)


def test_files_written_before_alpha_per_target_load_with_its_default(tmp_path):
    X, Y = _linnerud()
    model = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=ALPHAS).fit(X, Y)
    model.save(tmp_path / "m.gf")

    def drop(meta):
        del meta["params"]["alpha_per_target"]

    _rewrite(tmp_path / "m.gf", tmp_path / "older.gf", drop)
    older = load(tmp_path / "older.gf")
    assert older.alpha_per_target is False and older.alpha_ == model.alpha_
    np.testing.assert_array_equal(older.predict(X), model.predict(X))


def test_the_targets_objective_checks_share_one_pass(monkeypatch):
    """The objective checks of every target's path (at its choice and at the smallest
    alpha) take one pass over the training rows together, as the shared path's do: with a
    pass per check, three targets' paths cost 1.37x the shared path (bench_alpha_path.py,
    1.02-1.13x after). Counted
    as kernel rows evaluated against the centres, three targets beside one."""
    from gramfree.solvers import alpha_path, nystrom_direct

    X, Y = _diabetes_two_targets()
    Y3 = np.column_stack([Y, Y[:, 0] * Y[:, 1]])
    counted = {"rows": 0}
    original = nystrom_direct._operator

    def counting(problem, A, B=None, dtype=np.float64):
        if B is not None and A.shape[0] > B.shape[0]:  # training rows x centres
            counted["rows"] += A.shape[0]
        return original(problem, A, B, dtype)

    for module in (alpha_path, nystrom_direct):
        monkeypatch.setattr(module, "_operator", counting)
    rows = []
    for targets in (Y3[:, :1], Y3):
        counted["rows"] = 0
        model = KernelRegressorCV(
            gamma=0.05,
            alphas=ALPHAS,
            n_centers=60,
            alpha_per_target=True,
            criterion="gcv",
            random_state=0,
        ).fit(X, targets)
        assert model.solver_info_["pass"] == "whitened Gram"
        rows.append(counted["rows"])
    assert rows[1] == rows[0], rows

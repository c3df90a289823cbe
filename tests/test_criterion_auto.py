"""criterion="auto", the CV estimators' default: leave-one-out where it applies (the square
loss on one kernel), GCV where gammas or gamma_search choose gamma; the logistic loss
chooses by folds. Why it is the default: on iris GCV chooses a nearly interpolating alpha
whose held-out error is several times the best candidate's (bench_alpha_path.py part 3)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from test_alpha_cv import _rewrite_attributes

from gramfree import KernelClassifierCV, KernelRegressorCV, load

ALPHAS = np.logspace(-3, 3, 9)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return np.ascontiguousarray(X), (y - y.mean()) / y.std()


def _same_fit(a, b, X):
    assert np.array_equal(np.atleast_1d(a.alpha_), np.atleast_1d(b.alpha_))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.best_score_, b.best_score_)


@pytest.mark.parametrize("per_target", [False, True])
def test_auto_on_one_kernel_is_leave_one_out(diabetes, per_target):
    X, y = diabetes
    Y = np.column_stack([y, X[:, 2]])  # a second real target: body mass index
    kw = dict(gamma=0.05, alphas=ALPHAS, n_centers=200, random_state=0)
    auto = KernelRegressorCV(alpha_per_target=per_target, **kw).fit(X, Y)
    loo = KernelRegressorCV(criterion="loo", alpha_per_target=per_target, **kw).fit(X, Y)
    assert auto.criterion == "auto"
    _same_fit(auto, loo, X)
    np.testing.assert_array_equal(auto.loo_values_, loo.loo_values_)


def test_auto_classifier_is_leave_one_out():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    auto = KernelClassifierCV(gamma=0.02, alphas=ALPHAS).fit(X, y)
    loo = KernelClassifierCV(gamma=0.02, alphas=ALPHAS, criterion="loo").fit(X, y)
    _same_fit(auto, loo, X)
    np.testing.assert_array_equal(auto.loo_values_, loo.loo_values_)


@pytest.mark.parametrize("criterion", ["auto", "loo"])
@pytest.mark.parametrize(
    "search", [dict(gammas=[0.02, 0.1]), dict(gamma=0.05, gamma_search="gradient")]
)
def test_with_gammas_gcv_chooses_gamma_and_leave_one_out_alpha(diabetes, search, criterion):
    """gammas / gamma_search: gamma is GCV's choice (as criterion="gcv" makes it), and
    alpha leave-one-out's at that gamma: the same model as a one-kernel fit there."""
    X, y = diabetes
    kw = dict(alphas=ALPHAS, n_centers=150, random_state=0)
    model = KernelRegressorCV(criterion=criterion, **kw, **search).fit(X, y)
    gcv = KernelRegressorCV(criterion="gcv", **kw, **search).fit(X, y)
    assert model.gamma_ == gcv.gamma_
    np.testing.assert_array_equal(model.gcv_values_, gcv.gcv_values_)
    if "gammas" in search:
        np.testing.assert_array_equal(model.gcv_grid_, gcv.gcv_grid_)
    one = KernelRegressorCV(gamma=model.gamma_, criterion="loo", **kw).fit(X, y)
    _same_fit(model, one, X)
    np.testing.assert_array_equal(model.loo_values_, one.loo_values_)
    assert model.alpha_ in ALPHAS  # a candidate, where GCV's search refines between them


def test_with_gammas_the_default_avoids_gcv_s_small_alpha():
    """The failure on the gamma grid too: 1000 rows of a real set, every row a centre,
    gammas around the tuned one, alphas down to 1e-6. GCV's pair takes alpha 1e-6 or so
    (iris: its held-out error on the class targets several times leave-one-out's at the
    same gamma)."""
    X, y = load_iris(return_X_y=True)
    alphas = np.logspace(-6, 2, 17)
    errors = {"auto": [], "gcv": []}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        scaler = StandardScaler().fit(X[train])
        Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
        target = (y[test][:, None] == np.arange(3)[None, :]).astype(float)
        for criterion in errors:
            model = KernelClassifierCV(gammas=[0.25, 0.75, 2.5], alphas=alphas, criterion=criterion)
            scores = model.fit(Xtr, y[train]).decision_function(Xte)
            errors[criterion].append(float(np.mean((scores - target) ** 2)))
    assert np.mean(errors["gcv"]) > 3.0 * np.mean(errors["auto"]), errors


def test_auto_with_the_logistic_loss_chooses_by_folds(tmp_path):
    """The same model as with the former default "gcv"; a square-loss fit's
    loo_values_ go with a logistic refit, and come back with a square-loss one."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(loss="logistic", gamma=0.02, alphas=[0.01, 0.1], cv=3)
    gcv = KernelClassifierCV(criterion="gcv", **kw).fit(X, y)  # the former default
    auto = KernelClassifierCV(gamma=0.02, alphas=[0.01, 0.1], cv=3).fit(X, y)
    assert hasattr(auto, "loo_values_")
    auto.set_params(loss="logistic").fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X), gcv.predict_proba(X))
    assert hasattr(auto, "cv_log_loss_") and not hasattr(auto, "loo_values_")
    auto.save(tmp_path / "m.gf")
    assert not hasattr(load(tmp_path / "m.gf"), "loo_values_")
    auto.set_params(loss="squared").fit(X, y)
    assert auto.alpha_ == [0.01, 0.1][int(np.argmin(auto.loo_values_))]
    with pytest.raises(ValueError, match="criterion='loo'"):
        KernelClassifierCV(criterion="loo", **kw).fit(X, y)


def test_files_written_before_criterion_load_as_gcv_fits(tmp_path, diabetes):
    """A file without params.criterion was written while GCV was the only criterion: it
    loads as criterion="gcv" (not the new default), with no loo_values_ asked for."""
    X, y = diabetes
    model = KernelRegressorCV(criterion="gcv", gamma=0.05, alphas=ALPHAS).fit(X, y)
    model.save(tmp_path / "m.gf")

    def drop(meta):
        del meta["params"]["criterion"]

    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "older.gf", drop)
    older = load(tmp_path / "older.gf")
    assert older.criterion == "gcv" and older.alpha_ == model.alpha_
    np.testing.assert_array_equal(older.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "make",
    [
        lambda: KernelRegressorCV(gamma=0.05, alphas=ALPHAS),
        lambda: KernelRegressorCV(gamma=0.05, alphas=ALPHAS, alpha_per_target=True),
        lambda: KernelRegressorCV(gammas=[0.02, 0.1], alphas=ALPHAS),
        lambda: KernelRegressorCV(gamma=0.05, gamma_search="gradient", alphas=ALPHAS),
        lambda: KernelClassifierCV(gamma=0.05, alphas=ALPHAS),
        lambda: KernelClassifierCV(gammas=[0.02, 0.1], alphas=ALPHAS),
    ],
    ids=["one-target", "per-target", "gammas", "gamma-search", "classifier", "clf-gammas"],
)
def test_auto_models_round_trip(tmp_path, diabetes, make):
    """Every mode of the default saves and loads as fitted, leave-one-out's values with
    it (with gammas and gamma_search too: alpha at GCV's gamma)."""
    X, y = diabetes
    model = make()
    target = (y > 0).astype(int) if isinstance(model, KernelClassifierCV) else y
    if getattr(model, "alpha_per_target", False):
        target = np.column_stack([y, X[:, 2]])
    model.fit(X, target)
    model.save(tmp_path / "m.gf")
    loaded = load(tmp_path / "m.gf")
    assert loaded.criterion == "auto"
    np.testing.assert_array_equal(loaded.loo_values_, model.loo_values_)
    for name in ("gamma_", "gcv_grid_"):
        assert hasattr(loaded, name) == hasattr(model, name), name
        if hasattr(model, name):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.alpha_, model.alpha_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def _lower_another_row(meta):
    """The GCV grid's lowest value moved to the row of a gamma other than gamma_, the
    chosen gamma's row (the model's path) left as it is."""
    attrs = meta["attributes"]
    grid = attrs["gcv_grid_"]
    row = next(i for i, r in enumerate(grid) if r == attrs["gcv_values_"])
    low = min(v for v in grid[row] if v != "inf") / 2
    grid[1 - row] = [low] * len(grid[1 - row])


def test_damaged_auto_files_name_the_field(tmp_path, diabetes):
    """loo_values_ where the parameters choose by GCV, or missing where they choose by
    leave-one-out; with gammas, best_score_ not leave-one-out's, or gamma_ not GCV's
    choice on the grid: each refused naming the field."""
    X, y = diabetes
    kw = dict(alphas=ALPHAS, n_centers=100, random_state=0)
    KernelRegressorCV(gamma=0.05, criterion="gcv", **kw).fit(X, y).save(tmp_path / "gcv.gf")
    KernelRegressorCV(gammas=[0.02, 0.1], **kw).fit(X, y).save(tmp_path / "grid.gf")
    cases = [
        (
            "gcv.gf",
            lambda m: m["attributes"].update(loo_values_=[1.0] * len(ALPHAS)),
            "loo_values_.*choose alpha by GCV",
        ),
        ("grid.gf", lambda m: m["attributes"].pop("loo_values_"), "loo_values_"),
        (
            "grid.gf",
            lambda m: m["attributes"].update(best_score_=-1.0),
            "best_score_.*leave-one-out",
        ),
        ("grid.gf", _lower_another_row, "gamma_.*lowest GCV on the grid"),
    ]
    for i, (name, edit, match) in enumerate(cases):
        _rewrite_attributes(tmp_path / name, tmp_path / f"bad{i}.gf", edit)
        with pytest.raises(ValueError, match=match):
            load(tmp_path / f"bad{i}.gf")


def test_iris_default_avoids_gcv_s_interpolating_choice():
    """The failure behind the default: iris standardised, gamma 3 / d, every row a
    centre, 17 alphas from 1e-6 to 100, 5 stratified folds. GCV's value at a nearly
    interpolating alpha falls below its minimum at a moderate one, and its held-out
    squared error on the class targets is several times the best candidate's; the
    default's stays within 15% of it."""
    X, y = load_iris(return_X_y=True)
    alphas = np.logspace(-6, 2, 17)
    gamma = 3.0 / X.shape[1]
    errors = {"auto": [], "gcv": [], "best": []}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        scaler = StandardScaler().fit(X[train])
        Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
        target = (y[test][:, None] == np.arange(3)[None, :]).astype(float)

        def held_out(model):
            return float(np.mean((model.decision_function(Xte) - target) ** 2))

        default = KernelClassifierCV(gamma=gamma, alphas=alphas)  # criterion "auto"
        errors["auto"].append(held_out(default.fit(Xtr, y[train])))
        gcv = KernelClassifierCV(gamma=gamma, alphas=alphas, criterion="gcv")
        errors["gcv"].append(held_out(gcv.fit(Xtr, y[train])))
        errors["best"].append(
            min(
                held_out(KernelClassifierCV(gamma=gamma, alphas=[a]).fit(Xtr, y[train]))
                for a in alphas
            )
        )
    auto, gcv, best = (float(np.mean(errors[k])) for k in ("auto", "gcv", "best"))
    assert auto <= 1.15 * best, (auto, best)
    assert gcv > 3.0 * best, (gcv, best)  # the failure still there to be avoided

"""criterion="auto", the CV estimators' default: alpha by leave-one-out with the square
loss (where gammas or gamma_search choose gamma, GCV chooses it and leave-one-out alpha at
it); the logistic loss chooses by folds. Why it is the default: on iris GCV chooses a nearly interpolating alpha
whose held-out error is several times the best candidate's (bench_alpha_path.py part 3)."""

from __future__ import annotations

import math

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
    """The failure on the gamma grid too: iris standardised, every row a centre, three
    gammas, alphas down to 1e-6, 5 folds. GCV's pair takes an alpha near 1e-6, whose
    held-out error on the class targets is several times that of leave-one-out's alpha
    at the same gamma."""
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
    auto = KernelClassifierCV(gamma=3.0 / X.shape[1], alphas=np.logspace(-6, 2, 17))
    auto.fit(X, y)
    assert hasattr(auto, "loo_values_")
    square_alpha = auto.alpha_
    auto.set_params(**kw).fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X), gcv.predict_proba(X))
    assert hasattr(auto, "cv_log_loss_") and not hasattr(auto, "loo_values_")
    auto.set_params(loss="squared", gamma=3.0 / X.shape[1], alphas=np.logspace(-6, 2, 17))
    auto.fit(X, y)
    # leave-one-out's choice again, not GCV's (which differ on this grid)
    assert auto.alpha_ == square_alpha == np.logspace(-6, 2, 17)[np.argmin(auto.loo_values_)]
    assert np.argmin(auto.loo_values_) != np.argmin(auto.gcv_values_)
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
        lambda: KernelRegressorCV(gammas=[0.02, 0.1], gamma_search="gradient", alphas=ALPHAS),
        lambda: KernelClassifierCV(
            gamma=0.05, gamma_search="gradient", alphas=ALPHAS, class_weight="balanced"
        ),
    ],
    ids=[
        "one-target",
        "per-target",
        "gammas",
        "gamma-search",
        "classifier",
        "clf-gammas",
        "gammas-search",
        "clf-search-balanced",
    ],
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
    for name in ("loo_values_", "gcv_values_", "dof_", "best_score_", "dual_coef_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name), name)
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


def test_gcv_s_warnings_about_gamma_are_still_said():
    """Where GCV has no estimate at any gamma the grid keeps the first and the search
    stops at its start; leave-one-out choosing alpha must not silence that (a review)."""
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(30, 2)), 2, axis=0)
    y = np.tile([1.0, -1.0], 30)  # each row twice, with opposite targets
    for search in (dict(gammas=[1e3, 1e4]), dict(gamma=1e3, gamma_search="gradient")):
        with pytest.warns(UserWarning, match=r"gamma \(chosen by GCV\): alphas: no candidate"):
            model = KernelRegressorCV(alphas=[1e-9, 3e-9], **search).fit(X, y)
        assert np.isfinite(model.loo_values_).any()  # leave-one-out had estimates
    with pytest.warns(UserWarning, match="no candidate has a GCV estimate") as said:
        KernelRegressorCV(gamma=1e3, alphas=[1e-9, 3e-9], criterion="gcv").fit(X, y)
    assert not any("chosen by GCV" in str(w.message) for w in said)


def test_gammas_with_weights_equal_the_one_kernel_fit(diabetes):
    """Leave-one-out at GCV's gamma with sample weights: the same model as a one-kernel
    leave-one-out fit there, on the same centres."""
    X, y = diabetes
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    kw = dict(alphas=ALPHAS, n_centers=120, random_state=0)
    model = KernelRegressorCV(gammas=[0.01, 0.05, 0.2], **kw).fit(X, y, sample_weight=w)
    one = KernelRegressorCV(gamma=model.gamma_, **kw).fit(X, y, sample_weight=w)
    _same_fit(model, one, X)
    np.testing.assert_array_equal(model.loo_values_, one.loo_values_)


def _loo_edit(kind):
    def edit(meta):
        a = meta["attributes"]
        loo = [math.inf if v == "inf" else v for v in a["loo_values_"]]
        if kind == "not-argmin":  # alpha_ elsewhere, best_score_ kept consistent with it
            other = max(range(len(loo)), key=lambda i: loo[i])
            meta["attributes"]["alpha_"] = float(ALPHAS[other])
            meta["attributes"]["best_score_"] = -loo[other]
        elif kind == "negative":
            a["loo_values_"] = [-1.0] + a["loo_values_"][1:]
        elif kind == "no-estimate":  # all inf, alpha_ not the largest
            a["loo_values_"] = ["inf"] * len(loo)
            a["alpha_"], a["best_score_"] = float(ALPHAS[0]), "-inf"
        elif kind == "logistic":
            meta["params"]["loss"] = "logistic"
            meta["params"]["criterion"] = "loo"

    return edit


@pytest.mark.parametrize(
    "kind, match",
    [
        ("not-argmin", "alpha_' is not the alpha of the lowest leave-one-out"),
        ("negative", "loo_values_' holds a negative"),
        ("no-estimate", "alpha_' is not the largest alpha"),
        ("logistic", "criterion' is 'loo', which loss='logistic' refuses"),
    ],
)
def test_damaged_loo_choice_is_refused(tmp_path, diabetes, kind, match):
    X, y = diabetes
    model = KernelClassifierCV if kind == "logistic" else KernelRegressorCV
    target = (y > 0).astype(int) if kind == "logistic" else y
    model(gamma=0.05, alphas=ALPHAS, n_centers=100, random_state=0).fit(X, target).save(
        tmp_path / "m.gf"
    )
    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", _loo_edit(kind))
    with pytest.raises(ValueError, match=match):
        load(tmp_path / "bad.gf")


def test_damaged_per_target_and_searched_loo_files_are_refused(tmp_path, diabetes):
    """The leave-one-out choice checked per target, and a searched model's alpha_ (a
    candidate under leave-one-out, where GCV's search refines between them)."""
    X, y = diabetes
    Y = np.column_stack([y, X[:, 2]])
    kw = dict(alphas=ALPHAS, n_centers=100, random_state=0)
    KernelRegressorCV(gamma=0.05, alpha_per_target=True, **kw).fit(X, Y).save(tmp_path / "per.gf")
    KernelRegressorCV(gamma=0.05, gamma_search="gradient", **kw).fit(X, y).save(
        tmp_path / "search.gf"
    )

    def other_alpha(meta):  # target 1's alpha_ moved, its best_score_ kept consistent
        a = meta["attributes"]
        loo = [[math.inf if v == "inf" else v for v in row] for row in a["loo_values_"]]
        column = [row[1] for row in loo]
        other = max(range(len(column)), key=lambda i: column[i])
        a["alpha_"][1] = float(ALPHAS[other])
        a["best_score_"][1] = -column[other] if math.isfinite(column[other]) else "-inf"

    def off_grid(meta):
        meta["attributes"]["alpha_"] = float(np.sqrt(ALPHAS[3] * ALPHAS[4]))

    _rewrite_attributes(tmp_path / "per.gf", tmp_path / "bad_per.gf", other_alpha)
    with pytest.raises(ValueError, match=r"alpha_\[1\]' is not the alpha of the lowest"):
        load(tmp_path / "bad_per.gf")
    _rewrite_attributes(tmp_path / "search.gf", tmp_path / "bad_search.gf", off_grid)
    with pytest.raises(ValueError, match="alpha_' is .*not one of params.alphas"):
        load(tmp_path / "bad_search.gf")

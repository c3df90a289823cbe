"""gamma_search="gradient" with criterion="gcv" (alpha refined between the candidates by
GCV; the default then chooses alpha by leave-one-out: tests/test_criterion_auto.py): GCV's slope in log(gamma), taken through the eigendecomposition,
against finite differences of a brute-force float64 GCV (explicit Nystrom features, the
hat matrix formed); alpha refined between the candidates against a dense scan of the same
reference; the search's end against a scan of the (gamma, alpha) surface on real data;
model files; refusals naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest
from test_alpha_cv import _brute_gcv, _rewrite_attributes, load_digits_small
from test_solvers_realdata import _load

from gramfree import KernelClassifierCV, KernelRegressor, KernelRegressorCV, load
from gramfree.kernels import RBF, Laplacian
from gramfree.solvers._common import Problem
from gramfree.solvers.alpha_path import (
    chosen_point,
    gcv_log_gamma_slope,
    refine_alpha,
    solve_alpha_path,
)

ALPHAS = np.logspace(-3, 1, 9)


def _problem(X, Y, kernel, w=None):
    return Problem(X, Y, kernel, 1.0, w, None, None, np.dtype(np.float64))


def _fd_slope(X, Y, C, gamma, alpha, w, h=1e-4):
    """d GCV / d log(gamma) of the brute-force reference, by central differences."""
    up = _brute_gcv(X, Y, C, gamma * np.exp(h), [alpha], w)[0]
    down = _brute_gcv(X, Y, C, gamma * np.exp(-h), [alpha], w)[0]
    return (up - down) / (2 * h)


def _diabetes_with_duplicates():
    """diabetes with its first 40 rows repeated: with every row a centre, K_MM is
    singular and the path whitens the features themselves."""
    X, Y = _load("diabetes")
    return np.vstack([X, X[:40]]), np.vstack([Y, Y[:40]])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    ("gamma", "m", "duplicates"),
    [(0.05, 150, False), (1.0, 150, False), (0.3, None, False), (0.3, None, True)],
    ids=["wide", "narrow", "all-points", "duplicated-centres"],
)
def test_slope_matches_finite_differences_of_the_reference(gamma, m, duplicates, weighted):
    X, Y = _diabetes_with_duplicates() if duplicates else _load("diabetes")
    n = len(X)
    w = np.random.default_rng(1).uniform(0.3, 3.0, n) if weighted else np.ones(n)
    C = X if m is None else X[np.random.default_rng(0).choice(n, m, replace=False)]
    problem = _problem(X, Y, RBF(gamma=gamma), w if weighted else None)
    path = solve_alpha_path(problem, C, ALPHAS)
    assert (path.info["pass"] == "whitened features") == duplicates
    at = chosen_point(path)
    want = _fd_slope(X, Y, C, gamma, at.alpha, w)
    assert gcv_log_gamma_slope(problem, C, path) == pytest.approx(want, rel=1e-5)
    # ... and at the alpha refined between the candidates
    refined = refine_alpha(problem, path)
    want = _fd_slope(X, Y, C, gamma, refined.alpha, w)
    assert gcv_log_gamma_slope(problem, C, path, refined) == pytest.approx(want, rel=1e-5)


def test_slope_of_a_laplacian_kernel():
    """Any kernel with a gamma: its derivative is a difference of its own values."""
    from sklearn.metrics.pairwise import laplacian_kernel

    X, Y = _load("diabetes")
    C = X[:100]
    problem = _problem(X, Y, Laplacian(gamma=0.1))
    path = solve_alpha_path(problem, C, ALPHAS)

    def gcv(gamma, alpha):
        Knm, Kmm = laplacian_kernel(X, C, gamma=gamma), laplacian_kernel(C, C, gamma=gamma)
        lam, U = np.linalg.eigh(Kmm)
        Phi = Knm @ U / np.sqrt(lam)
        H = Phi @ np.linalg.solve(Phi.T @ Phi + alpha * np.eye(len(C)), Phi.T)
        return (np.sum((Y - H @ Y) ** 2) / len(X)) / (1 - np.trace(H) / len(X)) ** 2

    a, h = chosen_point(path).alpha, 1e-4
    want = (gcv(0.1 * np.exp(h), a) - gcv(0.1 * np.exp(-h), a)) / (2 * h)
    assert gcv_log_gamma_slope(problem, C, path) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("repeated", [False, True], ids=["distinct", "repeated"])
def test_refined_alpha_is_the_continuous_minimum_between_the_neighbours(repeated):
    """The neighbours are the nearest other values: with every candidate given twice, a
    copy of the chosen alpha was taken as its neighbour and the search ended there (a
    review's diabetes case stopped at 2e-3 where the minimum is at 5.1e-3)."""
    X, Y = _load("diabetes")
    C = X[:150]
    problem = _problem(X, Y, RBF(gamma=0.05))
    given = np.repeat(ALPHAS, 2)[::-1] if repeated else ALPHAS  # the copy below the choice
    path = solve_alpha_path(problem, C, given)
    refined = refine_alpha(problem, path)
    i = int(np.searchsorted(ALPHAS, path.alphas[path.best]))
    assert 0 < i < len(ALPHAS) - 1  # an interior choice: neighbours on both sides
    scan = np.logspace(np.log10(ALPHAS[i - 1]), np.log10(ALPHAS[i + 1]), 400)
    brute = _brute_gcv(X, Y, C, 0.05, scan, np.ones(len(X)))
    assert refined.gcv == pytest.approx(
        _brute_gcv(X, Y, C, 0.05, [refined.alpha], np.ones(len(X)))[0], rel=1e-8
    )
    assert refined.gcv <= brute.min() * (1 + 1e-9)
    assert refined.gcv < path.gcv[path.best]  # strictly better than the candidate here


def _svd_gcv(X, Y, C, gamma, alphas):
    """GCV per alpha from the SVD of the Nystrom features (the reference's features,
    Phi = Q diag(s) V^T): H = Q diag(s^2 / (s^2 + alpha)) Q^T, a whole alpha scan from one
    SVD; numpy's, not the path's eigendecomposition of the whitened Gram."""
    from sklearn.metrics.pairwise import rbf_kernel

    Knm, Kmm = rbf_kernel(X, C, gamma=gamma), rbf_kernel(C, C, gamma=gamma)
    lam, U = np.linalg.eigh(Kmm)
    keep = lam > 1e-12 * lam.max()
    Q, sv, _ = np.linalg.svd(Knm @ U[:, keep] / np.sqrt(lam[keep]), full_matrices=False)
    proj = Q.T @ Y
    n = len(X)
    out = []
    for a in alphas:
        shrink = sv**2 / (sv**2 + a)
        resid = Y - Q @ (shrink[:, None] * proj)
        out.append((np.sum(resid**2) / n) / (1 - shrink.sum() / n) ** 2)
    return np.array(out)


@pytest.fixture(scope="module")
def diabetes_surface():
    """The centres of the searches below (150, random_state=0) and the reference GCV on a
    60 x 200 (gamma, alpha) grid around the optimum."""
    X, Y = _load("diabetes")
    C = (
        KernelRegressorCV(criterion="gcv", gamma=0.02, alphas=ALPHAS, n_centers=150, random_state=0)
        .fit(X, Y[:, 0])
        .centers_
    )
    gammas = np.geomspace(0.004, 0.06, 60)
    alphas = np.geomspace(ALPHAS[0], ALPHAS[-1], 200)
    return C, gammas, np.array([_svd_gcv(X, Y, C, g, alphas) for g in gammas])


@pytest.mark.parametrize("start", [0.01, 0.3, 5.0])
def test_search_ends_at_the_minimum_of_the_reference_surface(start, diabetes_surface):
    """diabetes, 150 centres: from a start 20x below to 300x above the optimum, the search
    ends where a scan of the reference GCV has its minimum (to the search's 1e-4 of GCV;
    its continuous alpha may beat the scan's grid), its GCV that of the brute-force reference at
    (gamma_, alpha_), and the model KernelRegressor's at that gamma and alpha."""
    X, Y = _load("diabetes")
    y = Y[:, 0]
    C, gammas, scan = diabetes_surface
    model = KernelRegressorCV(
        criterion="gcv",
        gamma=start,
        gamma_search="gradient",
        alphas=ALPHAS,
        n_centers=150,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_array_equal(model.centers_, C)
    g_best = gammas[np.unravel_index(np.argmin(scan), scan.shape)[0]]
    # The search stops where under 1e-4 of GCV is left to gain (GAMMA_SEARCH_GAIN).
    assert -model.best_score_ <= scan.min() * (1 + 1e-4)
    assert model.gamma_ == pytest.approx(g_best, rel=0.1)
    assert -model.best_score_ == pytest.approx(
        _brute_gcv(X, Y, C, model.gamma_, [model.alpha_], np.ones(len(X)))[0], rel=1e-8
    )
    trace = model.solver_info_["gamma_search"]
    assert 1 < len(trace) <= 16 and trace[0]["gamma"] == pytest.approx(start)
    assert min(t["gcv"] for t in trace) == -model.best_score_
    ref = KernelRegressor(
        gamma=model.gamma_, alpha=model.alpha_, solver="nystrom-direct", centers=C
    ).fit(X, y)
    np.testing.assert_allclose(model.predict(X), ref.predict(X), rtol=1e-7, atol=1e-7)


def test_search_from_the_grid_is_never_worse_than_the_grid():
    X, y = load_digits_small()
    grid = KernelClassifierCV(
        criterion="gcv", gammas=[0.01, 0.1, 1.0], alphas=ALPHAS, n_centers=200, random_state=0
    )
    searched = KernelClassifierCV(
        criterion="gcv",
        gammas=[0.01, 0.1, 1.0],
        gamma_search="gradient",
        alphas=ALPHAS,
        n_centers=200,
        random_state=0,
    )
    grid.fit(X, y)
    searched.fit(X, y)
    np.testing.assert_array_equal(searched.gcv_grid_, grid.gcv_grid_)
    assert searched.solver_info_["gamma_search"][0]["gamma"] == pytest.approx(grid.gamma_)
    assert -searched.best_score_ < -grid.best_score_
    assert ALPHAS.min() <= searched.alpha_ <= ALPHAS.max()
    assert searched.kernel_.gamma == searched.gamma_
    assert searched.score(X, y) > 0.95


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"gamma_search": "newton"}, ValueError, "gamma_search"),
        ({"kernel": "linear", "gamma_search": "gradient"}, ValueError, "^gamma_search: the Linear"),
    ],
)
def test_bad_gamma_search_is_named(params, error, match):
    X, Y = _load("diabetes")
    with pytest.raises(error, match=match):
        KernelRegressorCV(criterion="gcv", **params).fit(X, Y[:, 0])


def test_searched_models_save_and_load(tmp_path):
    X, Y = _load("diabetes")
    for gammas in (None, [0.01, 0.1]):
        model = KernelRegressorCV(
            criterion="gcv",
            gamma=None if gammas else 0.05,
            gammas=gammas,
            gamma_search="gradient",
            alphas=ALPHAS.tolist(),
            n_centers=100,
            random_state=0,
        ).fit(X, Y[:, 0])
        model.save(tmp_path / "m.gf")
        loaded = load(tmp_path / "m.gf")
        assert loaded.gamma_ == model.gamma_ and loaded.alpha_ == model.alpha_
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        assert hasattr(loaded, "gcv_grid_") == (gammas is not None)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["attributes"].update(alpha_=1e3), "alpha_' is 1000.0, outside the range"),
        (lambda m: m["attributes"].pop("gamma_"), "missing field\\(s\\) \\['gamma_'\\]"),
        (lambda m: m["attributes"].update(gamma_=0.5), "gamma_' differs from attributes.kernel_"),
        (lambda m: m["params"].update(gamma_search=None), "alpha_' is .*, not one of"),
        (lambda m: m["attributes"].update(best_score_=0.0), "best_score_' is not minus a GCV"),
        (lambda m: m["attributes"].update(best_score_=-1e9), "best_score_' is not minus a GCV"),
    ],
)
def test_damaged_searched_model_files_name_the_field(tmp_path, edit, message):
    X, Y = _load("diabetes")
    model = KernelRegressorCV(
        criterion="gcv",
        gamma=0.05,
        gamma_search="gradient",
        alphas=ALPHAS,
        n_centers=100,
        random_state=0,
    ).fit(X, Y[:, 0])
    model.save(tmp_path / "m.gf")
    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", edit)
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "bad.gf")


def test_slope_with_several_targets():
    """digits' one-hot targets share one alpha: their RSS and its slope add up."""
    X, Y = _load("digits")
    C = X[::4]
    problem = _problem(X, Y, RBF(gamma=0.05))
    path = solve_alpha_path(problem, C, ALPHAS)
    at = refine_alpha(problem, path)
    want = _fd_slope(X, Y, C, 0.05, at.alpha, np.ones(len(X)))
    assert gcv_log_gamma_slope(problem, C, path, at) == pytest.approx(want, rel=1e-5)


def test_a_far_rechecked_alpha_does_not_stop_the_refinement():
    """An alpha whose RSS was recomputed from the residuals (1e-9: the closed form
    cancels) far from the chosen one left refine_alpha on the grid (5% higher GCV); only
    the chosen candidate and its neighbours matter."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    Y = (np.sin(X[:, 0]) + X[:, 1] ** 2 / 3 + 0.1 * rng.normal(size=150))[:, None]
    problem = _problem(X, Y, RBF(gamma=0.3))
    points = []
    for alphas in ([1e-3, 1e-2, 0.1, 1.0], [1e-9, 1e-3, 1e-2, 0.1, 1.0]):
        path = solve_alpha_path(problem, X, np.array(alphas))
        points.append(refine_alpha(problem, path))
    assert path.rechecked == {0}
    assert points[1].alpha == pytest.approx(points[0].alpha, rel=1e-6)
    assert points[1].gcv < chosen_point(path).gcv


def _synthetic_search(monkeypatch, gcv, slope, refuse=lambda t: False, start=1.0):
    """The search alone on a given GCV curve in t = log(gamma): the paths, their refined
    point, their slope and the kernel-range check replaced (a unit test of the bracket
    and secant logic, whatever the data)."""
    import math

    import gramfree.estimators.cv as cv
    from gramfree.solvers.alpha_path import GcvPoint

    class Path:
        def __init__(self, gamma):
            self.gamma = gamma

    def check_kernel_range(X, kernel, dtype, n_jobs):
        if refuse(math.log(kernel.gamma)):
            raise ValueError("out of range")

    monkeypatch.setattr(
        cv, "refine_alpha", lambda prob, p: GcvPoint(1.0, gcv(math.log(p.gamma)), 1.0, 1.0)
    )
    monkeypatch.setattr(cv, "gcv_log_gamma_slope", lambda prob, c, p, at: slope(math.log(p.gamma)))
    monkeypatch.setattr(cv, "check_kernel_range", check_kernel_range)
    kernel = RBF(gamma=start)
    estimator = KernelRegressorCV(criterion="gcv", gamma=start, gamma_search="gradient")
    best = (Path(start), start, kernel, [], None)
    best, at, trace, stop = estimator._search_gamma(
        np.zeros((3, 2)), None, best, lambda k: (Path(k.gamma), None, [])
    )
    return math.log(best[1]), at, trace, stop


@pytest.mark.parametrize("refused", [False, True], ids=["no-estimate", "refused"])
def test_the_search_narrows_a_bracket_whose_far_end_has_no_estimate(monkeypatch, refused):
    """A first bracket ending where GCV has no estimate (inf: weights summing below the
    degrees of freedom of a narrow kernel) or the kernel's values leave the data's dtype:
    the search stopped at once there (the far end's slope, 0, made the gain look nil); it
    now bisects towards the minimum (at t = 0.45 here, the far side from t = 0.5)."""
    quadratic = (lambda t: 1 + (t - 0.45) ** 2, lambda t: 2 * (t - 0.45))
    beyond = lambda t: t > 0.5
    if refused:
        t, at, trace, stop = _synthetic_search(monkeypatch, *quadratic, refuse=beyond)
    else:
        t, at, trace, stop = _synthetic_search(
            monkeypatch,
            lambda t: np.inf if beyond(t) else quadratic[0](t),
            lambda t: 0.0 if beyond(t) else quadratic[1](t),
        )
    assert any(not np.isfinite(r["gcv"]) for r in trace)
    assert stop in ("tolerance", "gain")
    assert abs(t - 0.45) < 0.01 and at.gcv <= 1 + 1e-4


@pytest.mark.parametrize(
    ("centre", "stop"), [(1.0, "gain"), (3.3, "gain"), (-20.0, "range")], ids=str
)
def test_the_search_on_a_quadratic(monkeypatch, centre, stop):
    t, at, trace, why = _synthetic_search(
        monkeypatch, lambda t: 1 + (t - centre) ** 2, lambda t: 2 * (t - centre)
    )
    assert why == stop and len(trace) <= 16
    if stop == "gain":
        assert abs(t - centre) < 0.01
    else:  # the range's end, a factor 1e4 below the start
        assert t == pytest.approx(-np.log(1e4))


def test_a_narrow_well_is_not_left_when_the_far_end_is_flat(monkeypatch):
    """A narrow minimum (width 0.1 in log gamma) whose first bracket ends on a flat
    stretch: the smaller of the two ends' slopes called the gain nil after two paths, 86%
    above the minimum; the lower end's slope does not."""
    import math

    t, at, trace, stop = _synthetic_search(
        monkeypatch,
        lambda t: 1 - 0.5 * math.exp(-(t**2) / 0.02),
        lambda t: 0.5 * t / 0.01 * math.exp(-(t**2) / 0.02),
        start=math.exp(-0.2),
    )
    assert abs(t) < 0.01 and at.gcv <= 0.5 * (1 + 1e-3)

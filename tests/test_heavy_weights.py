"""Nystrom-PCG under very uneven sample weights, on real data (diabetes), against the
float64 optimum on the same centres computed here with numpy.

Falkon's preconditioner gives every centre an even share of the total weight. Five rows
at weight 1e6 made its system's condition number about 1e6, and CG claimed tol after one
iteration at 1300 times the optimum's objective (all rows as centres, gamma 1), or
stopped at 9.6x (60 centres, gamma 0.01), in silence. Rows that weigh at least a centre's
share are now centres whatever the draw, and count by their own weight
(``gramfree.solvers._common.heavy_rows``, ``preconditioner_weights``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler
from test_logistic import _probabilities, _reference

from gramfree import KernelClassifier, KernelRegressor
from gramfree.solvers._common import (
    HEAVY_MEAN,
    apart_rows,
    center_rows,
    centre_shares,
    heavy_count,
    heavy_rows,
    outnumbered,
)

ALPHA = 1e-3


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _weights(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "five_at_1e6":
        w = np.ones(n)
        w[rng.choice(n, 5, replace=False)] = 1e6
        return w
    return 10.0 ** rng.uniform(-3, 3, n)  # six decades


def _objective(X, y, w, C, coef, gamma):
    K = rbf_kernel(X, C, gamma=gamma)
    return float(np.sum(w * (K @ coef - y) ** 2) + ALPHA * coef @ rbf_kernel(C, gamma=gamma) @ coef)


def _optimum(X, y, w, C, gamma):
    """The Nystrom ridge objective's minimum on centres C, in the eigenbasis of K_MM (its
    near-null directions dropped: a wide kernel's K_MM is singular to rounding), by a
    float64 least-squares solve of the stacked system."""
    S, U = np.linalg.eigh(rbf_kernel(C, gamma=gamma))
    keep = S > 1e-13 * S.max()
    features = rbf_kernel(X, C, gamma=gamma) @ (U[:, keep] / np.sqrt(S[keep]))
    root = np.sqrt(w)
    A = np.vstack([root[:, None] * features, np.sqrt(ALPHA) * np.eye(features.shape[1])])
    b = np.concatenate([root * y, np.zeros(features.shape[1])])
    beta = np.linalg.lstsq(A, b, rcond=None)[0]
    return float(np.sum(w * (features @ beta - y) ** 2) + ALPHA * beta @ beta)


def _silent_fit_ratio(X, y, w, gamma, **params) -> float:
    """Nystrom-PCG's fit (any warning an error) over the optimum on its own centres."""
    model = KernelRegressor(
        solver="nystrom-pcg", gamma=gamma, alpha=ALPHA, random_state=0, **params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, sample_weight=w)
    C = np.asarray(model.centers_, dtype=np.float64)
    return _objective(X, y, w, C, model.dual_coef_.ravel(), gamma) / _optimum(X, y, w, C, gamma)


@pytest.mark.parametrize("kind", ["five_at_1e6", "log_uniform"])
@pytest.mark.parametrize("gamma", [0.01, 1.0])  # wide and narrow (d = 10, standardised)
@pytest.mark.parametrize("n_centers", [60, None])  # None: every row
def test_pcg_reaches_the_optimum_under_uneven_weights(diabetes, kind, gamma, n_centers):
    X, y = diabetes
    w = _weights(kind, len(y))
    model = KernelRegressor(
        solver="nystrom-pcg",
        n_centers=n_centers or len(y),
        gamma=gamma,
        alpha=ALPHA,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no max_iter warning either
        model.fit(X, y, sample_weight=w)
    C = np.asarray(model.centers_, dtype=np.float64)
    ratio = _objective(X, y, w, C, model.dual_coef_.ravel(), gamma) / _optimum(X, y, w, C, gamma)
    assert ratio < 1.01, ratio
    if kind == "five_at_1e6":
        assert set(np.flatnonzero(w > 1)) <= set(
            model.center_indices_ if n_centers else range(len(y))
        )


def test_every_row_a_centre_makes_the_preconditioner_exact(diabetes):
    """With each row's own weight the preconditioned system is the identity plus the
    ridge: CG's first step is the solution (float64)."""
    X, y = diabetes
    w = _weights("log_uniform", len(y))
    model = KernelRegressor(solver="nystrom-pcg", n_centers=len(y), gamma=1.0, alpha=ALPHA)
    model.fit(X, y, sample_weight=w)
    assert model.n_iter_ <= 2


@pytest.mark.parametrize("n_centers", [60, 300, 400])
@pytest.mark.parametrize("mild", ["log_uniform_0.6", "uniform_0.5_2"])
def test_mild_weights_keep_the_plain_draw(diabetes, n_centers, mild):
    """Weights within a factor HEAVY_MEAN of each other make no row heavy: the centres are
    the plain draw's, row for row (the unweighted fit's), up to most of the rows (by the
    share alone, uniform(0.5, 2) weights made 64 rows heavy at 300 centres of 442, 336 at
    420: a review)."""
    X, y = diabetes
    rng = np.random.default_rng(0)
    w = (
        10.0 ** rng.uniform(-0.3, 0.3, len(y))  # a factor just under 4
        if mild == "log_uniform_0.6"
        else rng.uniform(0.5, 2, len(y))
    )
    assert heavy_rows(w, n_centers).size == 0
    fits = [
        KernelRegressor(solver="nystrom-pcg", n_centers=n_centers, random_state=5).fit(
            X, y, sample_weight=weights
        )
        for weights in (w, None)
    ]
    np.testing.assert_array_equal(fits[0].center_indices_, fits[1].center_indices_)


def test_balanced_class_weights_make_no_heavy_row():
    """Breast cancer's balanced class weights (minority rows at 1.34, majority at 0.80):
    no heavy row at any number of centres (by the share alone every minority row was, at
    512 of 569: a review)."""
    X, y = load_breast_cancer(return_X_y=True)
    counts = np.bincount(y)
    w = (len(y) / (2 * counts))[y]
    assert all(heavy_rows(w, m).size == 0 for m in (60, 300, 512, 568))
    assert all(apart_rows(w, m).size == 0 for m in (60, 300, 512, 568))
    assert not any(outnumbered(w, m) for m in (60, 300, 512, 568))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e6), min_size=2, max_size=40),
    st.integers(1, 39),
    st.randoms(use_true_random=False),
)
def test_heavy_rows_are_certainty_units(values, m, random):
    """Each heavy row weighs at least an equal share of the weight the heavier ones leave
    over the centres they leave (summed exactly, math.fsum) and more than HEAVY_MEAN times
    the mean positive weight of the rows below the m largest; the next largest does not;
    the set does not depend on the rows' order (ties in or out together)."""
    w = np.array(values)
    positive = int(np.count_nonzero(w > 0))
    heavy = heavy_rows(w, m)
    if m >= positive:
        assert heavy is None
        return
    k = heavy.size
    descending = np.sort(w)[::-1]
    np.testing.assert_array_equal(np.sort(w[heavy])[::-1], descending[:k])
    floor = HEAVY_MEAN * math.fsum(descending[m:]) / (positive - m)

    def passes(rank: int, slack: float) -> bool:
        left = math.fsum(descending[rank:])
        weight = descending[rank] * (1 + slack)
        return weight > 0 and weight > floor and weight * (m - rank) >= left

    for rank in range(k):
        assert passes(rank, 1e-12)
    if k < m:
        assert not passes(k, -1e-12)
    permutation = np.array(random.sample(range(w.size), w.size))
    assert heavy_rows(w[permutation], m).size == k
    scaled = descending / descending[0]
    assert heavy_count(scaled[:m], math.fsum(scaled[m:]), m, positive) == k


def test_light_rows_are_not_rounded_into_heavy_ones():
    """Five rows at 1e18 and the rest at 1: the total less the heavy rows rounds to 0, and
    every row passed for heavy (the centres were the first rows after the heavy ones,
    whatever the random_state; a review). Summed apart, only the five are."""
    w = np.ones(442)
    w[[10, 50, 90, 200, 400]] = 1e18
    assert set(heavy_rows(w, 60)) == {10, 50, 90, 200, 400}
    draws = [
        center_rows(np.random.default_rng(s), 442, 60, w, heavy=heavy_rows(w, 60)) for s in (0, 1)
    ]
    assert not np.array_equal(draws[0], draws[1])


def test_heavy_rows_are_drawn_first():
    w = np.ones(1000)
    w[[3, 500, 999]] = 1e4
    rows = center_rows(np.random.default_rng(0), 1000, 50, w, heavy=heavy_rows(w, 50))
    assert rows.size == 50 and np.unique(rows).size == 50
    assert {3, 500, 999} <= set(rows)


def test_dask_draws_and_weighs_the_same_heavy_rows(diabetes):
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    fits = []
    for data in ((X, y, w), tuple(da.from_array(a, chunks=100) for a in (X, y, w))):
        model = KernelRegressor(
            solver="nystrom-pcg", n_centers=60, gamma=1.0, alpha=ALPHA, random_state=0
        )
        fits.append(model.fit(data[0], data[1], sample_weight=data[2]))
    np.testing.assert_array_equal(fits[0].center_indices_, fits[1].center_indices_)
    assert fits[0].n_iter_ == fits[1].n_iter_
    np.testing.assert_allclose(fits[0].predict(X), fits[1].predict(X), rtol=1e-6, atol=1e-6)


def test_warm_refit_keeps_the_heavy_rows_weight(diabetes):
    """A warm refit at another alpha starts from the previous centres: its preconditioner
    still counts the heavy rows by their weight (it had the even share again: twice the
    optimum's objective after 0 iterations, silently; a review)."""
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    model = KernelRegressor(
        solver="nystrom-pcg", n_centers=60, gamma=0.01, alpha=ALPHA, random_state=0, warm_start=True
    ).fit(X, y, sample_weight=w)
    model.set_params(alpha=0.1).fit(X, y, sample_weight=w)
    C = np.asarray(model.centers_, dtype=np.float64)
    K = rbf_kernel(X, C, gamma=0.01)
    coef = model.dual_coef_.ravel()
    value = np.sum(w * (K @ coef - y) ** 2) + 0.1 * coef @ rbf_kernel(C, gamma=0.01) @ coef
    reference = KernelRegressor(
        solver="nystrom-direct", centers=model.center_indices_, gamma=0.01, alpha=0.1
    ).fit(X, y, sample_weight=w)
    ref = reference.dual_coef_.ravel()
    best = np.sum(w * (K @ ref - y) ** 2) + 0.1 * ref @ rbf_kernel(C, gamma=0.01) @ ref
    assert value / best < 1.01


@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_a_weightless_given_centre_leaves_the_heavy_ones_their_weight(diabetes, gamma):
    """Centres given as rows: the five heavy rows and 55 others, one of weight 0. That
    centre takes an even share; the heavy ones keep their own (one weightless centre
    switched them all back to the even share: 8.7x the optimum, silently; a review)."""
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    w[100] = 0.0
    rows = np.unique(np.r_[np.flatnonzero(w > 1), np.arange(100, 155)])
    model = KernelRegressor(solver="nystrom-pcg", centers=rows, gamma=gamma, alpha=ALPHA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, sample_weight=w)
    C = X[rows]
    ratio = _objective(X, y, w, C, model.dual_coef_.ravel(), gamma) / _optimum(X, y, w, C, gamma)
    assert ratio < 1.01, ratio


def test_float32_data_with_astronomical_weights_fits(diabetes):
    """Five rows at 1e150 with float32 X: the other centres' shares underflowed in the
    float32 factor, and the fit raised "L: contains NaN or infinity" (a review)."""
    X, y = diabetes
    w = np.ones(len(y))
    w[[3, 30, 300, 310, 400]] = 1e150
    model = KernelRegressor(
        solver="nystrom-pcg", n_centers=60, gamma=1.0, alpha=ALPHA, random_state=0
    )
    model.fit(X.astype(np.float32), y, sample_weight=w)
    assert np.all(np.isfinite(model.predict(X.astype(np.float32))))


@pytest.mark.parametrize("gamma", [0.003, 0.3])
def test_logistic_draws_heavy_rows_and_reaches_the_dense_newton_solution(gamma):
    """Kernel logistic regression draws the heavy rows first too, and its centres'
    preconditioner counts their curvature once (the others stand for (n - H) / (M - H)
    rows each, the inverse of their chance to be drawn): the same solution as a dense
    float64 Newton iteration on those centres (tests/test_logistic.py), to 1e-6."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    w = np.ones(len(y))
    heavy = np.random.default_rng(3).choice(len(y), 5, replace=False)
    w[heavy] = 1e6
    clf = KernelClassifier(
        loss="logistic",
        solver="nystrom-pcg",
        n_centers=60,
        gamma=gamma,
        alpha=1e-2,
        tol=1e-10,
        max_iter=100,
        random_state=0,
    ).fit(X, y, sample_weight=w)
    assert set(heavy) <= set(clf.center_indices_)
    C = X[clf.center_indices_]
    a = _reference(rbf_kernel(X, C, gamma=gamma), rbf_kernel(C, gamma=gamma), y, 2, 1e-2, w)
    np.testing.assert_allclose(
        clf.predict_proba(X),
        _probabilities(rbf_kernel(X, C, gamma=gamma) @ a[:-1] + a[-1]),
        atol=1e-6,
    )


def test_auto_leaves_pcg_out_where_weights_span_beyond_its_tol(diabetes, monkeypatch):
    """Weights over more than seven decades: PCG's relative tol cannot see the light rows
    (five rows at 1e12: up to 38 times the optimum's objective), so auto's Nystrom fit is
    the one-pass exact solve even where its cost model prefers PCG (forced here), and
    says so; with the same rows at 1e6 it still picks PCG. Without n_centers its exact
    choices leave kernel PCG out the same way (the step it notes)."""
    import gramfree.solvers.auto as auto

    monkeypatch.setattr(auto, "EXACT_PREFERENCE", 1e-9)  # PCG whenever allowed
    X, y = diabetes
    for weight, expected in ((1e12, "nystrom-direct"), (1e6, "nystrom-pcg")):
        w = _weights("five_at_1e6", len(y))
        w[w > 1] = weight
        model = KernelRegressor(gamma=0.01, alpha=ALPHA, n_centers=60, random_state=0)
        model.fit(X, y, sample_weight=w)
        assert model.solver_ == expected, model.solver_info_["auto"]
        said = " ".join(model.solver_info_["auto"]["steps"])
        assert ("span more than" in said) == (weight == 1e12)
        grown = KernelRegressor(gamma=0.01, alpha=ALPHA, random_state=0).fit(X, y, sample_weight=w)
        said = " ".join(grown.solver_info_["auto"]["steps"])
        assert ("span more than" in said) == (weight == 1e12)
        if expected == "nystrom-direct":
            C = np.asarray(model.centers_, dtype=np.float64)
            ratio = _objective(X, y, w, C, model.dual_coef_.ravel(), 0.01) / _optimum(
                X, y, w, C, 0.01
            )
            assert ratio < 1.01, ratio


def test_every_weighted_row_a_centre_beside_weightless_ones(diabetes):
    """Centres given as every row, ten of them weightless: every weighted row is a centre,
    so each stands for its own weight and the weightless ones for none (the exact test
    wanted the weighted rows alone and gave the even share: 1307 times the optimum after
    one iteration; a review)."""
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    w[np.flatnonzero(w == 1)[:10]] = 0.0
    for gamma in (0.01, 1.0):
        model = KernelRegressor(
            solver="nystrom-pcg", centers=np.arange(len(y)), gamma=gamma, alpha=ALPHA
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.fit(X, y, sample_weight=w)
        ratio = _objective(X, y, w, X, model.dual_coef_.ravel(), gamma) / _optimum(
            X, y, w, X, gamma
        )
        assert ratio < 1.01, (gamma, ratio)


@pytest.mark.parametrize("refit_rows", ["permuted", "subset"])
def test_warm_refit_finds_its_centres_by_value(diabetes, refit_rows):
    """A warm refit on the same rows permuted, or on a subset holding every centre: the
    centres are found among the rows by value, and the heavy ones keep their weight (they
    got the even share: 1.9 and 1.6 times the optimum after one iteration; a review)."""
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    model = KernelRegressor(
        solver="nystrom-pcg", n_centers=60, gamma=0.01, alpha=ALPHA, random_state=0, warm_start=True
    ).fit(X, y, sample_weight=w)
    rng = np.random.default_rng(1)
    if refit_rows == "permuted":
        rows = rng.permutation(len(y))
    else:
        others = np.setdiff1d(np.arange(len(y)), model.center_indices_)
        rows = np.sort(np.r_[model.center_indices_, rng.choice(others, 200, replace=False)])
    Xr, yr, wr = X[rows], y[rows][::-1].copy(), w[rows]
    model.fit(Xr, yr, sample_weight=wr)
    C = np.asarray(model.centers_, dtype=np.float64)
    ratio = _objective(Xr, yr, wr, C, model.dual_coef_.ravel(), 0.01) / _optimum(
        Xr, yr, wr, C, 0.01
    )
    assert ratio < 1.01, ratio


def test_dask_weighs_given_centre_rows_as_in_memory(diabetes):
    """Centres given as row indices, the heavy rows among them: dask weighs them as the
    in-memory fit does (it gave the even share: 10 times the optimum after one iteration;
    a review)."""
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    rows = np.unique(np.r_[np.flatnonzero(w > 1), np.arange(0, len(y), 8)])
    fits = []
    for data in ((X, y, w), tuple(da.from_array(a, chunks=100) for a in (X, y, w))):
        model = KernelRegressor(solver="nystrom-pcg", centers=rows, gamma=0.01, alpha=ALPHA)
        fits.append(model.fit(data[0], data[1], sample_weight=data[2]))
    assert fits[0].n_iter_ == fits[1].n_iter_
    C = X[rows]
    for model in fits:
        ratio = _objective(X, y, w, C, model.dual_coef_.ravel(), 0.01) / _optimum(X, y, w, C, 0.01)
        assert ratio < 1.01, ratio


def test_dask_heavy_rows_of_huge_weights_match_in_memory(diabetes):
    """Weights near 1e306: dask's heavy-row sums overflowed (173 RuntimeWarnings) and drew
    other centres than the in-memory fit (a review); relative to the largest, they agree."""
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    w = 1e306 * np.random.default_rng(2).uniform(0.5, 2, len(y))
    w[[7, 70, 170]] = 1.7e308
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fits = [
            KernelRegressor(
                solver="nystrom-pcg", n_centers=60, gamma=0.01, alpha=ALPHA, random_state=0
            ).fit(*data)
            for data in (
                (X, y, w),
                tuple(da.from_array(a, chunks=100) for a in (X, y, w)),
            )
        ]
    np.testing.assert_array_equal(fits[0].center_indices_, fits[1].center_indices_)


def _heavy_pattern(kind: str, X: np.ndarray) -> np.ndarray:
    n = X.shape[0]
    rng = np.random.default_rng(0)
    w = np.ones(n)
    if kind == "clustered_50_at_1e6":  # the 50 largest of one feature: one region
        w[np.argsort(X[:, 2])[-50:]] = 1e6
    elif kind == "30_percent_at_1e6":
        w[rng.random(n) < 0.3] = 1e6
    else:  # 200 rows at 1e7: nearly half the rows
        w[rng.choice(n, 200, replace=False)] = 1e7
    return w


@pytest.mark.parametrize(
    "kind, gamma, n_centers",
    [
        ("clustered_50_at_1e6", 1.0, 60),
        ("clustered_50_at_1e6", 1.0, 150),
        ("30_percent_at_1e6", 0.01, 150),
        ("30_percent_at_1e6", 0.01, 300),
        ("200_at_1e7", 0.01, 300),
        ("200_at_1e7", 1.0, 300),
    ],
)
def test_pcg_watches_its_objective_under_heavy_groups(diabetes, kind, gamma, n_centers):
    """Many heavy rows: with the preconditioner nearly exact on them, the residual
    (relative to the weighted right-hand side) fell below tol after one iteration while
    the light rows' part of the objective was 7-39% above its optimum (clustered rows, a
    narrow kernel; nearly half the rows at 1e7), or, where the mean-based bar left no row
    heavy, CG met max_iter at 17-120 times (a review). PCG now goes on while a step still
    lowers the objective by more than tol of it."""
    X, y = diabetes
    ratio = _silent_fit_ratio(X, y, _heavy_pattern(kind, X), gamma, n_centers=n_centers)
    assert ratio < 1.01, ratio


def test_warm_refit_prefers_the_heavy_one_of_equal_rows(diabetes):
    """Each heavy row has a light twin (the same values, weight 1): a permuted warm refit
    finds the heavy one (the first equal row was taken, the light twin: 2-2.3 times the
    optimum after 1-2 iterations; a review)."""
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    heavy = np.flatnonzero(w > 1)
    X2, y2, w2 = np.r_[X, X[heavy]], np.r_[y, y[heavy]], np.r_[w, np.ones(5)]
    model = KernelRegressor(
        solver="nystrom-pcg", n_centers=60, gamma=0.01, alpha=ALPHA, random_state=0, warm_start=True
    ).fit(X2, y2, sample_weight=w2)
    for seed in range(3):
        rows = np.random.default_rng(seed).permutation(len(y2))
        Xr, yr, wr = X2[rows], y2[rows][::-1].copy(), w2[rows]
        model.fit(Xr, yr, sample_weight=wr)
        C = np.asarray(model.centers_, dtype=np.float64)
        ratio = _objective(Xr, yr, wr, C, model.dual_coef_.ravel(), 0.01) / _optimum(
            Xr, yr, wr, C, 0.01
        )
        assert ratio < 1.01, (seed, ratio)


@pytest.mark.parametrize(
    "kind, gamma, size",
    [
        ("five_at_1e6", 0.01, 60),  # parent: 4.4-5.9 times, no warning
        ("five_at_1e6", 0.01, 150),  # 11.3-11.5 times, no warning
        ("five_at_1e6", 1.0, 150),
        ("clustered_50_at_1e6", 0.01, 150),  # points 4.8 times, no warning
        ("clustered_50_at_1e6", 1.0, 60),
    ],
)
def test_pcg_counts_heavy_rows_that_are_no_centre(diabetes, kind, gamma, size, monkeypatch):
    """Centres given as points, or as rows that leave the heavy rows out: the
    preconditioner holds those rows' part of ``K_nM^T W K_nM`` exactly, from their kernel
    columns (``falkon_cg``'s ``heavy_columns``, here in blocks of two). An even share for
    them left CG at 4-12 times the optimum without a warning (and clustered heavy rows at
    max_iter, 3.7-12 times). In memory and on dask alike, and with float32 data."""
    import gramfree.solvers.nystrom_pcg as nystrom_pcg

    monkeypatch.setattr(nystrom_pcg, "HEAVY_BLOCK", 2)
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    w = _weights(kind, len(y)) if kind == "five_at_1e6" else _heavy_pattern(kind, X)
    heavy = heavy_rows(w, size)
    assert heavy is not None and heavy.size >= 5
    rows = np.arange(0, len(y), len(y) // size)[:size]
    for centers in (X[rows] + 1e-12, np.setdiff1d(rows, heavy)):
        # float32 data with the narrow kernel only: with the wide one their float32
        # coefficients (up to 2e6) cancel, and the model, as stored, is 0.2-5% above the
        # optimum whatever the solver (nystrom-direct alike).
        for data in (
            (X, y, w),
            tuple(da.from_array(a, chunks=100) for a in (X, y, w)),
            *([(X.astype(np.float32), y, w)] if gamma == 1.0 else []),
        ):
            model = KernelRegressor(solver="nystrom-pcg", gamma=gamma, alpha=ALPHA, centers=centers)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # converged: no max_iter warning either
                model.fit(*data[:2], sample_weight=data[2])
            C = np.asarray(model.centers_, dtype=np.float64)
            Xd = np.asarray(data[0], dtype=np.float64)  # float32 data: their own optimum
            ratio = _objective(Xd, y, w, C, model.dual_coef_.ravel(), gamma) / _optimum(
                Xd, y, w, C, gamma
            )
            assert ratio < 1.001, ratio


def test_given_centres_as_many_as_the_weighted_rows_make_the_preconditioner_exact(diabetes):
    """Given centres (points or rows), at least as many as the rows of positive weight:
    no row was "heavy" (a drawn set would hold them all), so five rows at 1e6 among 100
    weighted rows got an even share, 13-23 times the optimum in silence (a review). Every
    weighted row is now counted by itself: the preconditioner is exact, a couple of
    iterations, in memory and on dask."""
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    rng = np.random.default_rng(0)
    w = np.zeros(len(y))
    weighted = rng.choice(len(y), 100, replace=False)
    w[weighted] = 1.0
    w[weighted[:5]] = 1e6
    points = X[rng.choice(len(y), 120, replace=False)] + 1e-3
    rows = np.setdiff1d(np.arange(len(y)), weighted[:5])[:120]
    for gamma in (0.01, 1.0):
        for centers in (points, rows):
            for data in ((X, y, w), tuple(da.from_array(a, chunks=100) for a in (X, y, w))):
                model = KernelRegressor(
                    solver="nystrom-pcg", gamma=gamma, alpha=ALPHA, centers=centers
                )
                model.fit(*data[:2], sample_weight=data[2])
                C = np.asarray(model.centers_, dtype=np.float64)
                coef = model.dual_coef_.ravel()
                ratio = _objective(X, y, w, C, coef, gamma) / _optimum(X, y, w, C, gamma)
                assert ratio < 1.0001, ratio
                assert model.n_iter_ <= 3


def test_unit_weights_with_more_given_centres_than_rows_are_no_weights(diabetes):
    """Given centres at least as many as the weighted rows count each weighted row by
    itself only where the weights are uneven: all ones had become an exact
    preconditioner, other coefficients than the same fit without weights (a review)."""
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    centers = np.vstack([X, X[:20] + 0.1])
    plain = KernelRegressor(solver="nystrom-pcg", gamma=0.1, alpha=ALPHA, centers=centers)
    ones = KernelRegressor(solver="nystrom-pcg", gamma=0.1, alpha=ALPHA, centers=centers)
    plain.fit(X, y)
    ones.fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(ones.dual_coef_, plain.dual_coef_)
    assert apart_rows(np.ones(len(y)), len(centers)) is None
    assert apart_rows(np.random.default_rng(0).uniform(0.5, 2.0, len(y)), 500) is None
    on_dask = KernelRegressor(solver="nystrom-pcg", gamma=0.1, alpha=ALPHA, centers=centers)
    on_dask.fit(*(da.from_array(a, chunks=100) for a in (X, y, np.ones(len(y)))))
    assert on_dask.n_iter_ == plain.n_iter_


@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_a_group_of_as_many_heavy_rows_as_centres_is_counted(diabetes, gamma):
    """30 rows tied at 5e5 and 30 centres given as points: none weighs a centre's share
    (the rows left weigh more than the rest), so none was heavy and the group got an even
    share: 1.06 times the optimum after 45 iterations (gamma 0.01), 1.78 on breast cancer,
    in silence (a review). Rows over HEAVY_MEAN times the others' mean are counted by
    themselves, heavy or not (``apart_rows``)."""
    X, y = diabetes
    rng = np.random.default_rng(4)
    w = np.ones(len(y))
    w[rng.choice(len(y), 30, replace=False)] = 5e5
    C = X[rng.choice(len(y), 30, replace=False)] + 0.0
    assert heavy_rows(w, 30).size == 0 and apart_rows(w, 30).size == 30
    model = KernelRegressor(solver="nystrom-pcg", gamma=gamma, alpha=ALPHA, centers=C)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, sample_weight=w)
    ratio = _objective(X, y, w, C, model.dual_coef_.ravel(), gamma) / _optimum(X, y, w, C, gamma)
    assert ratio < 1.001, ratio
    assert model.n_iter_ < 20  # 28-45 with the even share


def test_auto_takes_the_one_pass_where_heavy_rows_outnumber_the_centres(diabetes, monkeypatch):
    """35 rows tied at 5e5 and 30 centres: five are left an even share whatever PCG
    counts by itself (``outnumbered``), and auto takes the one-pass exact solve, in
    memory and on dask; with 30 it keeps PCG, which counts them all."""
    import gramfree.solvers.auto as auto

    monkeypatch.setattr(auto, "EXACT_PREFERENCE", 1e-9)  # PCG whenever allowed
    da = pytest.importorskip("dask.array")
    X, y = diabetes
    rng = np.random.default_rng(4)
    heavy = rng.choice(len(y), 35, replace=False)
    C = X[rng.choice(len(y), 30, replace=False)] + 0.0
    for group, expected in ((35, "nystrom-direct"), (30, "nystrom-pcg")):
        w = np.ones(len(y))
        w[heavy[:group]] = 5e5
        assert outnumbered(w, 30) == (group > 30)
        model = KernelRegressor(gamma=0.01, alpha=ALPHA, centers=C)
        model.fit(X, y, sample_weight=w)
        assert model.solver_ == expected, model.solver_info_["auto"]
        model.fit(*(da.from_array(a, chunks=100) for a in (X, y, w)))
        assert model.solver_ == expected


@pytest.mark.parametrize("kind", ["five_at_1e6", "clustered_50_at_1e6"])
@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_exact_pcg_watches_its_objective_under_uneven_weights(diabetes, kind, gamma):
    """PCG on all points (``solver="pcg"``; auto's choice where direct's matrix does not
    fit) weighs every row exactly in its preconditioner, but its tol is relative to
    ``W^1/2 y`` too: diabetes five times over (2210 rows, a 2000-row subsample), fifty
    clustered rows at 1e6 and a narrow kernel claimed tol after 5 iterations at 1.23
    times direct's objective (five rows at 1e6: 1.02), in silence. It now watches its
    objective as Nystrom-PCG does."""
    X0, y0 = diabetes
    rng = np.random.default_rng(0)
    X = np.vstack([X0] * 5) + 0.01 * rng.normal(size=(5 * len(y0), X0.shape[1]))
    y = np.tile(y0, 5)
    if kind == "five_at_1e6":
        w = _weights(kind, len(y))
    else:
        w = np.ones(len(y))
        w[np.argsort(X[:, 0])[:50]] = 1e6
    direct = KernelRegressor(solver="direct", gamma=gamma, alpha=ALPHA).fit(X, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pcg = KernelRegressor(solver="pcg", gamma=gamma, alpha=ALPHA, random_state=0)
        pcg.fit(X, y, sample_weight=w)
    ratio = _objective(X, y, w, X, pcg.dual_coef_.ravel(), gamma) / _objective(
        X, y, w, X, direct.dual_coef_.ravel(), gamma
    )
    assert ratio < 1.001, ratio


def test_exact_pcg_certifies_its_objective_where_it_rises_and_falls():
    """CG lowers its system's energy; the ridge objective rises and falls along it, and a
    watch of its steps stopped on a rise: digits twice over (3594 rows), 67 clustered rows
    at 3.1e6, gamma 4.46/d, alpha 1e-5, at 112 times direct's objective after 49
    iterations, in silence (a review). Its certificate (the excess is at most |r|^2)
    either holds within tol or the fit says it did not converge."""
    from sklearn.datasets import load_digits

    X0 = np.nan_to_num(StandardScaler().fit_transform(load_digits().data))
    rng = np.random.default_rng(0)
    X = np.vstack([X0 + 0.02 * rng.standard_normal(X0.shape) for _ in range(2)])
    y = np.tile(load_digits().target, 2).astype(float)
    w = np.ones(len(y))
    w[np.argsort(X[:, 20])[-67:]] = 3.1e6
    gamma, alpha = 4.46 / 64, 1e-5
    direct = KernelRegressor(solver="direct", gamma=gamma, alpha=alpha).fit(X, y, sample_weight=w)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pcg = KernelRegressor(solver="pcg", gamma=gamma, alpha=alpha, random_state=0)
        pcg.fit(X, y, sample_weight=w)
    K = rbf_kernel(X, gamma=gamma)

    def objective(coef):
        return float(w @ (K @ coef - y) ** 2 + alpha * coef @ K @ coef)

    ratio = objective(pcg.dual_coef_.ravel()) / objective(direct.dual_coef_.ravel())
    warned = any(issubclass(c.category, ConvergenceWarning) for c in caught)
    assert ratio < 1.001 or warned, ratio
    assert ratio < 1.01, ratio


def test_centre_shares_count_missing_heavy_rows_apart():
    """The shares and the rows counted apart, against their definition: the heavy rows
    that are no centre are returned, and the centres share the rest of the weight evenly,
    relative to the whole (so ``L^T D L / M`` plus the heavy columns' part sums every
    row's weight once)."""
    w = np.ones(200)
    w[[3, 50, 120]] = 1e5
    shares, missing = centre_shares(w, None, 20)  # points
    np.testing.assert_array_equal(missing, [3, 50, 120])
    np.testing.assert_allclose(shares, np.full(20, 197.0 / (197.0 + 3e5)))
    rows = np.r_[50, np.arange(60, 79)]  # one heavy row among the centre rows
    shares, missing = centre_shares(w, rows, 20)
    np.testing.assert_array_equal(missing, [3, 120])
    total = 197.0 + 3e5
    np.testing.assert_allclose(shares[0], 1e5 * 20 / total)
    np.testing.assert_allclose(shares[1:], 197.0 / 19 * 20 / total)
    assert centre_shares(w, np.r_[3, 50, 120, np.arange(60, 77)], 20)[1] is None
    assert centre_shares(np.ones(200), None, 20) == (None, None)


def test_auto_on_centre_points_with_uneven_weights_reaches_the_optimum(diabetes, monkeypatch):
    """auto's PCG on centres that leave the heavy rows out (it took the one-pass solve
    there while PCG could not weigh them) lands on the optimum, in memory and on dask."""
    import gramfree.solvers.auto as auto

    monkeypatch.setattr(auto, "EXACT_PREFERENCE", 1e-9)  # PCG whenever allowed
    X, y = diabetes
    w = _weights("five_at_1e6", len(y))
    rows = np.arange(0, len(y), 8)
    da = pytest.importorskip("dask.array")
    for centers in (X[rows] + 1e-12, np.setdiff1d(rows, np.flatnonzero(w > 1))):
        model = KernelRegressor(gamma=0.01, alpha=ALPHA, centers=centers)
        for data in ((X, y, w), tuple(da.from_array(a, chunks=100) for a in (X, y, w))):
            model.fit(*data[:2], sample_weight=data[2])
            assert model.solver_ == "nystrom-pcg"
            C = np.asarray(model.centers_, dtype=np.float64)
            ratio = _objective(X, y, w, C, model.dual_coef_.ravel(), 0.01) / _optimum(
                X, y, w, C, 0.01
            )
            assert ratio < 1.001, ratio


def test_dask_auto_leaves_pcg_out_where_weights_span_beyond_its_tol(diabetes, monkeypatch):
    """Dask's auto follows the in-memory span rule (it chose nystrom-pcg, 43 times the
    optimum after two iterations; a review)."""
    da = pytest.importorskip("dask.array")
    import gramfree.solvers.auto as auto

    monkeypatch.setattr(auto, "EXACT_PREFERENCE", 1e-9)
    X, y = diabetes
    for weight, expected in ((1e12, "nystrom-direct"), (1e6, "nystrom-pcg")):
        w = _weights("five_at_1e6", len(y))
        w[w > 1] = weight
        model = KernelRegressor(gamma=0.01, alpha=ALPHA, n_centers=60, random_state=0)
        model.fit(*(da.from_array(a, chunks=100) for a in (X, y, w)))
        assert model.solver_ == expected


@pytest.mark.parametrize(
    "loader, gamma, alpha, n_centers, state",
    [
        ("diabetes", 0.1, 1e-6, 300, 9),  # 30% of rows at weight 0, 20 rows at 1e6
        ("breast_cancer", 0.003, 1e-4, 60, 81),  # five rows at 1e7
        ("breast_cancer", 0.033, 1e-3, 30, 7),
    ],
)
def test_pcg_objective_watch_has_no_floor_of_its_start(loader, gamma, alpha, n_centers, state):
    """Uncentred targets (diabetes about 150, breast cancer 0/1) with the heavy rows fitted
    almost exactly: the optimum's objective is far below tol of y^T W y / sum w, and a
    floor of tol^2 of that stopped the watch at 1.01-1.07 times the optimum, silently (a
    review)."""
    if loader == "diabetes":
        X, y = load_diabetes(return_X_y=True)
        rng = np.random.default_rng(38)
        w = np.ones(len(y))
        w[rng.choice(len(y), int(0.3 * len(y)), replace=False)] = 0.0
        w[rng.choice(np.flatnonzero(w > 0), 20, replace=False)] = 1e6
    else:
        X, y = load_breast_cancer(return_X_y=True)
        y = y.astype(np.float64)
        w = np.ones(len(y))
        w[np.random.default_rng(91 if n_centers == 60 else 15).choice(len(y), 5, replace=False)] = (
            1e7
        )
    X = StandardScaler().fit_transform(X)
    model = KernelRegressor(
        solver="nystrom-pcg", n_centers=n_centers, gamma=gamma, alpha=alpha, random_state=state
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, sample_weight=w)
    C = np.asarray(model.centers_, dtype=np.float64)
    K = rbf_kernel(X, C, gamma=gamma)
    coef = model.dual_coef_.ravel()
    value = np.sum(w * (K @ coef - y) ** 2) + alpha * coef @ rbf_kernel(C, gamma=gamma) @ coef
    S, U = np.linalg.eigh(rbf_kernel(C, gamma=gamma))
    keep = S > 1e-13 * S.max()
    features = K @ (U[:, keep] / np.sqrt(S[keep]))
    root = np.sqrt(w)
    A = np.vstack([root[:, None] * features, np.sqrt(alpha) * np.eye(features.shape[1])])
    beta = np.linalg.lstsq(A, np.r_[root * y, np.zeros(features.shape[1])], rcond=None)[0]
    best = np.sum(w * (features @ beta - y) ** 2) + alpha * beta @ beta
    assert value / best < 1.01, value / best


def test_pcg_objective_watch_adds_up_several_steps():
    """Breast cancer, five rows at 1e6, 20 centres, gamma 0.01/d: one step lowering the
    objective by less than tol of it ended the watch on a plateau at 1.0017 times the
    optimum, silently; the sum of the last WATCH_STEPS steps' decrements (the delayed
    Hestenes-Stiefel estimate of the excess) carried CG on to the optimum."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), y.astype(np.float64)
    w = np.ones(len(y))
    w[np.random.default_rng(0).choice(len(y), 5, replace=False)] = 1e6
    ratio = _silent_fit_ratio(X, y, w, 0.01 / X.shape[1], n_centers=20)
    assert ratio < 1.0001, ratio

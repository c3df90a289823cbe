"""Nystrom-PCG under very uneven sample weights, on real data (diabetes), against the
float64 optimum on the same centres computed here with numpy.

Falkon's preconditioner gives every centre an even share of the total weight. Five rows
at weight 1e6 made its system's condition number about 1e6, and CG claimed tol after one
iteration at 1300 times the optimum's objective (all rows as centres, gamma 1), or
stopped at 9.6x (60 centres, gamma 0.01), in silence. Rows that weigh at least a centre's
share are now centres whatever the draw, and count by their own weight
(``gramfree.solvers._common.heavy_rows``, ``preconditioner_weights``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler

from gramfree import KernelRegressor
from gramfree.solvers._common import center_rows, heavy_count, heavy_rows

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


def test_mild_weights_keep_the_plain_draw(diabetes):
    """No row weighs a centre's share: the centres are the plain draw's, row for row (the
    unweighted fit's)."""
    X, y = diabetes
    w = 10.0 ** np.random.default_rng(0).uniform(-1, 1, len(y))
    assert heavy_rows(w, 60).size == 0
    fits = [
        KernelRegressor(solver="nystrom-pcg", n_centers=60, random_state=5).fit(
            X, y, sample_weight=weights
        )
        for weights in (w, None)
    ]
    np.testing.assert_array_equal(fits[0].center_indices_, fits[1].center_indices_)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e6), min_size=2, max_size=40),
    st.integers(1, 39),
    st.randoms(use_true_random=False),
)
def test_heavy_rows_are_certainty_units(values, m, random):
    """Each heavy row weighs at least an equal share of the weight the heavier ones leave
    over the centres they leave; the next largest does not; the set does not depend on the
    rows' order (ties in or out together)."""
    w = np.array(values)
    positive = int(np.count_nonzero(w > 0))
    heavy = heavy_rows(w, m)
    if m >= positive:
        assert heavy is None
        return
    order = np.argsort(-w, kind="stable")
    k = heavy.size
    assert set(heavy) == set(order[:k]) or np.allclose(np.sort(w[heavy]), np.sort(w[order[:k]]))
    left = w.sum()
    for rank, weight in enumerate(np.sort(w[heavy])[::-1]):
        assert weight * (m - rank) >= left
        left -= weight
    if k < m:
        assert w[order[k]] * (m - k) < left
    permutation = np.array(random.sample(range(w.size), w.size))
    assert heavy_rows(w[permutation], m).size == k
    assert heavy_count(np.sort(w)[::-1][:m], float(w.sum()), m) == k


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

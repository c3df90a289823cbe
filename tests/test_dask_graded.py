"""The graded QR on dask (gramfree._dask_graded): the light tail chosen from the chunks'
histograms of their bounds keeps the in-memory guarantee (its Gram's trace within the
budget, the lightest rows first up to a bin), and the fit is the exact rational
solution where weights span beyond what the Gram resolves or alpha is below its
rounding; where the heavy rows are too many to gather, the fit warns as before."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from reference import exact_nystrom_fit  # noqa: E402
from scipy.linalg import LinAlgWarning  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics.pairwise import rbf_kernel  # noqa: E402
from sklearn.preprocessing import scale  # noqa: E402

import gramfree._dask_graded as dg  # noqa: E402
from gramfree import KernelRegressor  # noqa: E402
from gramfree.solvers._graded_qr import _tail_bound  # noqa: E402


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _tail_of(chunks: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Each chunk's tail mask as the workers compute it, and the plan's row count."""
    histogram = np.concatenate([dg._histogram_block(r) for r in chunks]).sum(axis=0)
    boundary, room, rows = dg.tail_plan(histogram[0], histogram[1])
    counts = np.concatenate([dg._boundary_count_block(r, boundary=boundary) for r in chunks])
    quotas = dg.share_quotas(room, counts)
    masks = [
        dg._tail_mask_block(r, boundary=boundary, quotas=quotas, block_id=(c,))
        for c, r in enumerate(chunks)
    ]
    return masks, rows


_ratio = st.one_of(
    st.just(0.0),
    st.just(math.inf),
    st.floats(min_value=5e-324, max_value=1e300),
    st.sampled_from([1.0, 1e7, 1e8, 4.5e8, 2.0**27]),  # ties, around the budget
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_ratio, min_size=0, max_size=40), min_size=1, max_size=6))
def test_the_tail_keeps_the_budget_and_takes_the_lightest_rows_first(chunks):
    chunks = [np.array(c, dtype=np.float64) for c in chunks]
    masks, rows = _tail_of(chunks)
    r, tail = np.concatenate(chunks), np.concatenate(masks)
    assert int(tail.sum()) == rows
    # The in-memory guarantee: the tail's bounds sum within the budget.
    assert math.fsum(r[tail]) <= _tail_bound()
    if tail.any() and (~tail).any():
        # Lightest first, up to a bin: no row left out is below half the heaviest taken.
        assert r[~tail].min() >= r[tail].max() / 2
        # At most a bin short: the in-memory tail (sorted, exact sums) holds no row
        # beyond twice the lightest row left out here.
        ordered = np.sort(r)
        in_memory = int(np.searchsorted(np.cumsum(ordered), _tail_bound(), side="right"))
        assert ordered[:in_memory].max(initial=0.0) <= 2 * r[~tail].min()
    if not (~tail).any():
        assert math.fsum(r) <= _tail_bound()


def _diabetes(n=60):
    X, y = load_diabetes(return_X_y=True)
    X, y = scale(X[:n]), scale(y[:n])
    C = np.ascontiguousarray(X[np.random.default_rng(4).choice(n, 8, replace=False)])
    return np.ascontiguousarray(X), y, C


def _dask_fit(model, X, y, w, chunks=7):
    return model.fit(
        da.from_array(X, chunks=(chunks, -1)),
        da.from_array(y, chunks=chunks),
        sample_weight=None if w is None else da.from_array(w, chunks=chunks),
    )


@pytest.mark.parametrize(
    ("heavy", "alpha", "tail"),
    [(1e12, 1e-3, 57), (1e30, 1e-3, 57), (1e12, 1e-7, 26), (1e9, 1e-8, 3)],
    ids=["span-1e12", "span-1e30", "part-of-the-light-rows-heavy", "few-in-the-tail"],
)
def test_dask_graded_qr_is_the_exact_solution(heavy, alpha, tail):
    """Diabetes, 60 rows in chunks of 7, three rows at ``heavy``: the dask fit took the
    Gram (1.1e-5 off at 1e12 and 0.57 at 1e30, with a warning; a review) and now the
    graded QR, the exact rational
    solution to rounding. At alpha 1e-7 and 1e-8 the tail's budget holds only some of
    the light rows (26 and 3; the rest are QR'd with the heavy ones), the boundary bin
    shared out over several chunks."""
    X, y, C = _diabetes()
    w = np.ones(len(y))
    w[[3, 20, 41]] = heavy
    model = KernelRegressor(gamma=0.1, alpha=alpha, solver="nystrom-direct", centers=C)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _dask_fit(model, X, y, w)
    info = model.solver_info_
    assert info["pass"] == "graded QR" and info["dask"]["n_chunks"] == 9
    # Each light row's bound is 1 / alpha: all 57 fit the budget (4.5e8) at 1e-3; at 1e-7
    # and 1e-8 as many as the bin's upper edge (2^24, 2^27) leaves room for.
    assert info["graded_tail_rows"] == tail
    K, Kmm = rbf_kernel(X, C, gamma=0.1), rbf_kernel(C, gamma=0.1)
    want = exact_nystrom_fit(K, Kmm, y, w, alpha)
    assert np.abs(model.predict(X) - want).max() <= 1e-12 * np.abs(want).max()


def test_dask_graded_qr_merges_heavy_copies_from_different_chunks():
    """One row given twice, in different chunks, with targets +1 and -1, both at 1e16:
    the heavy rows gathered to the client are merged there as in memory (unmerged, 0.063
    off the exact predictions in memory; a review)."""
    X0, y0, C = _diabetes()
    X = np.ascontiguousarray(np.vstack([X0[:1], X0, X0[:1]]))
    y = np.r_[1.0, y0, -1.0]
    w = np.ones(len(y))
    w[[0, -1]] = 1e16
    model = KernelRegressor(gamma=0.1, alpha=1e-3, solver="nystrom-direct", centers=C)
    _dask_fit(model, X, y, w)
    assert model.solver_info_["pass"] == "graded QR"
    want = exact_nystrom_fit(rbf_kernel(X, C, gamma=0.1), rbf_kernel(C, gamma=0.1), y, w, 1e-3)
    assert np.abs(model.predict(X) - want).max() <= 1e-12 * np.abs(want).max()


def test_dask_graded_qr_on_a_singular_k_mm_matches_memory():
    """Centres given twice (K_MM singular): the tail's Gram is summed on the workers in K_MM's
    range (the basis padded to M columns), as the in-memory QR takes it."""
    X, y, C = _diabetes()
    C = np.ascontiguousarray(np.vstack([C, C[:3]]))
    w = np.ones(len(y))
    w[[3, 20]] = 1e12
    params = dict(gamma=0.1, alpha=1e-3, solver="nystrom-direct", centers=C)
    memory = KernelRegressor(**params).fit(X, y, sample_weight=w)
    on_dask = _dask_fit(KernelRegressor(**params), X, y, w)
    for model in (memory, on_dask):
        assert model.solver_info_["pass"] == "graded QR"
        assert model.solver_info_["basis"] == "K_MM's range"
        assert model.solver_info_["basis_rank"] == 8
    want = memory.predict(X)
    assert np.abs(on_dask.predict(X) - want).max() <= 1e-12 * np.abs(want).max()


def test_alpha_below_the_grams_rounding_takes_the_graded_qr_on_dask():
    """Unscaled breast cancer, a linear kernel at alpha 1e-11: the Gram's solve was 28% of
    the targets' scale off; dask kept it and warned. Now, as in memory, the graded QR
    (every row heavy: 569 rows gathered), silently, with the in-memory predictions."""
    X, y = load_breast_cancer(return_X_y=True)
    y = y.astype(float)
    params = dict(kernel="linear", alpha=1e-11, solver="nystrom-direct", n_centers=100)
    memory = KernelRegressor(random_state=0, **params).fit(X, y)
    on_dask = KernelRegressor(random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        on_dask.fit(da.from_array(X, chunks=(200, -1)), da.from_array(y, chunks=200))
    assert on_dask.solver_info_["pass"] == "graded QR"
    assert on_dask.solver_info_["graded_tail_rows"] == 0
    want = memory.predict(X)
    assert np.abs(on_dask.predict(X) - want).max() <= 1e-9 * np.abs(y).max()


def test_heavy_rows_too_many_to_gather_keep_the_gram_and_its_warnings(monkeypatch):
    """Beyond HEAVY_BYTES the fit keeps the Gram passes and says so, as before: the span's
    warning, and the cancellation warning for an alpha below the Gram's rounding."""
    monkeypatch.setattr(dg, "HEAVY_BYTES", 0)
    X, y, C = _diabetes()
    w = np.ones(len(y))
    w[3] = 1e12
    model = KernelRegressor(gamma=0.1, alpha=1e-3, solver="nystrom-direct", centers=C)
    with pytest.warns(ConvergenceWarning, match=r"nystrom-direct on dask: .* span 1e\+12"):
        _dask_fit(model, X, y, w)
    assert model.solver_info_.get("pass") != "graded QR"
    Xb, yb = load_breast_cancer(return_X_y=True)
    estimator = KernelRegressor(
        kernel="linear", alpha=1e-11, solver="nystrom-direct", n_centers=100, random_state=0
    )
    with pytest.warns(LinAlgWarning, match="alpha=1e-11 is small .* cancel in the pred"):
        estimator.fit(
            da.from_array(Xb, chunks=(200, -1)), da.from_array(yb.astype(float), chunks=200)
        )


def _assert_exact(model, X, y, w, C, alpha):
    want = exact_nystrom_fit(rbf_kernel(X, C, gamma=0.1), rbf_kernel(C, gamma=0.1), y, w, alpha)
    assert model.solver_info_["pass"] == "graded QR"
    assert np.abs(model.predict(X) - want).max() <= 1e-12 * np.abs(want).max()


def test_every_row_in_the_tail():
    """Weights from 1e-9 to 1 (a span of 1e9, all light against alpha 1e-3): every row
    joins the tail and no row is left to QR (the fit raised, reshaping an empty Y; a
    review)."""
    X, y, C = _diabetes()
    w = np.logspace(-9, 0, len(y))
    model = KernelRegressor(gamma=0.1, alpha=1e-3, solver="nystrom-direct", centers=C)
    _dask_fit(model, X, y, w)
    assert model.solver_info_["graded_tail_rows"] == len(y)
    _assert_exact(model, X, y, w, C, 1e-3)


def test_zero_weights_and_an_empty_chunk():
    """A chunk of no rows (a filtered partition: the bounds' pass raised "X: empty array")
    and rows of weight 0, which enter nothing and are not counted in the tail."""
    X, y, C = _diabetes()
    w = np.ones(len(y))
    w[[3, 20, 41]] = 1e12
    w[[7, 8, 50]] = 0.0
    model = KernelRegressor(gamma=0.1, alpha=1e-3, solver="nystrom-direct", centers=C)
    model.fit(
        da.from_array(X, chunks=((10, 10, 10, 0, 10, 10, 10), -1)),
        da.from_array(y, chunks=((10, 10, 10, 0, 10, 10, 10),)),
        sample_weight=da.from_array(w, chunks=((10, 10, 10, 0, 10, 10, 10),)),
    )
    assert model.solver_info_["graded_tail_rows"] == len(y) - 6
    _assert_exact(model, X, y, w, C, 1e-3)


@pytest.mark.parametrize(
    ("bad", "match"),
    [(-5.0, "negative"), (-1e12, "negative"), (np.nan, "NaN or infinity"), (np.inf, "NaN")],
)
def test_bad_weights_are_refused_on_the_graded_path(bad, match):
    """The graded QR's first pass checks the weights as the Gram's did: a negative weight
    fell into the tail's first bin and was dropped in silence, an infinite one reached
    scipy's QR (a review)."""
    X, y, C = _diabetes()
    w = np.ones(len(y))
    w[[3, 20]] = 1e12
    w[30] = bad
    model = KernelRegressor(gamma=0.1, alpha=1e-3, solver="nystrom-direct", centers=C)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error alone (an inf weight warned 0/0 first)
        with pytest.raises(ValueError, match=f"sample_weight: contains {match}"):
            _dask_fit(model, X, y, w)


def test_rows_whose_diagonal_underflows_keep_their_features():
    """The linear kernel at |x| ~ 1e-165: k(x, x) = |x|^2 underflows to 0, x . c does not.
    Three such rows at weights 1e299 to 3e300 alone fix the third coefficient (alpha
    1e-30); as bound-0 rows they joined the tail with weight 0 and that coefficient was
    lost (0.099 off the exact predictions, in memory and on dask; a review). They are
    heavy rows now, QR'd with their own features: the exact rational solution."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((37, 3))
    X[:, 2] = 0.0
    tiny = 1e-165 * rng.standard_normal((3, 3))
    probes = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [2.0, -1.0, 0.5]])
    Xa = np.vstack([X, tiny, probes])
    ya = np.r_[X[:, 0] - X[:, 1], tiny @ np.array([1.0, -1.0, 2.0]), 0.0, 0.0, 0.0]
    w = np.r_[np.ones(37), 1e300, 3e300, 1e299, 0.0, 0.0, 0.0]
    C = np.eye(3)
    want = exact_nystrom_fit(Xa @ C.T, C @ C.T, ya, w, 1e-30)[-3:]
    params = dict(kernel="linear", alpha=1e-30, solver="nystrom-direct", centers=C)
    memory = KernelRegressor(**params)
    on_dask = KernelRegressor(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the cancellation warning at alpha 1e-30)
        memory.fit(Xa, ya, sample_weight=w)
        _dask_fit(on_dask, Xa, ya, w)
    assert memory.solver_info_["graded_tail_rows"] == on_dask.solver_info_["graded_tail_rows"]
    for model in (memory, on_dask):
        assert model.solver_info_["pass"] == "graded QR"
        assert np.abs(model.predict(probes) - want).max() <= 1e-12 * np.abs(want).max()


@pytest.mark.parametrize("gamma", [0.001, 3.0], ids=["wide", "narrow"])
def test_dask_graded_qr_with_a_wide_and_a_narrow_kernel(gamma):
    """Diabetes, three rows at 1e12, a wide (gamma 0.001) and a narrow (gamma 3) rbf
    kernel: in memory and on dask, the exact rational solution (6.5e-14 and 4e-15 of
    the predictions, measured)."""
    X, y, C = _diabetes()
    w = np.ones(len(y))
    w[[3, 20, 41]] = 1e12
    want = exact_nystrom_fit(rbf_kernel(X, C, gamma=gamma), rbf_kernel(C, gamma=gamma), y, w, 1e-3)
    params = dict(gamma=gamma, alpha=1e-3, solver="nystrom-direct", centers=C)
    memory = KernelRegressor(**params).fit(X, y, sample_weight=w)
    on_dask = _dask_fit(KernelRegressor(**params), X, y, w)
    for model in (memory, on_dask):
        assert model.solver_info_["pass"] == "graded QR"
        assert np.abs(model.predict(X) - want).max() <= 1e-12 * np.abs(want).max()

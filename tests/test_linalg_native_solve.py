"""The native few-right-hand-side triangular solve (csrc/kernels/trsm_engine.hpp) behind
gramfree.linalg.solve_triangular: the binding against scipy's LAPACK solve in float64 for
random shapes, leading dimensions, dtypes and thread counts (hypothesis), the dispatch of
solve_triangular around its bounds, the same bits whatever the thread count, the
binding's checks of what it is handed, and the thread count a fit's n_jobs gives it."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from gramfree import _core, _threads, linalg


def _lower(n: int, dtype, seed: int) -> np.ndarray:
    """Well-conditioned lower triangle: diagonal in [1, 2], the rest N(0, 1/n); the
    strict upper triangle holds NaN, which no solve may read."""
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(n, n)) / np.sqrt(max(n, 1))
    L[np.diag_indices(n)] = 1.0 + rng.random(n)
    L[np.triu_indices(n, 1)] = np.nan
    return L.astype(dtype)


def _layout(L: np.ndarray, layout: str) -> np.ndarray:
    if layout == "F":
        return np.asfortranarray(L)
    if layout == "C":
        return np.ascontiguousarray(L)
    # A column-block view of a taller F-ordered array: leading dimension above n.
    big = np.full((L.shape[0] + 3, L.shape[1]), np.nan, dtype=L.dtype, order="F")
    big[2 : 2 + L.shape[0]] = L
    return big[2 : 2 + L.shape[0]]


def _reference(L: np.ndarray, B: np.ndarray, trans: bool) -> np.ndarray:
    if L.shape[0] == 0:  # the oldest supported scipy refuses a 0 x 0 system
        return np.zeros(B.shape)
    L64 = np.tril(np.nan_to_num(L.astype(np.float64)))
    return scipy.linalg.solve_triangular(L64, B.astype(np.float64), lower=True, trans=int(trans))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 700),
    k=st.integers(1, 70),
    dtype=st.sampled_from([np.float64, np.float32]),
    trans=st.booleans(),
    lda_pad=st.integers(0, 3),
    ldx_pad=st.integers(0, 3),
    threads=st.sampled_from([0, 1, 2, 3]),
    seed=st.integers(0, 2**16),
)
def test_native_matches_lapack(n, k, dtype, trans, lda_pad, ldx_pad, threads, seed):
    """The binding on its own, any shape: L and X as (transposed) views with leading
    dimensions above n, whose padding rows must come back untouched."""
    Lbig = np.full((n + lda_pad, n), np.nan, dtype=dtype, order="F")
    Lbig[:n] = _lower(n, dtype, seed)
    L = Lbig[:n]
    rng = np.random.default_rng(seed + 1)
    B = rng.normal(size=(n, k)).astype(dtype)
    Xbig = np.full((n + ldx_pad, k), -7.25, dtype=dtype, order="F")
    Xbig[:n] = B
    _core.triangular_solve_lower(L.T, Xbig[:n].T, trans=trans, n_threads=threads)
    assert (Xbig[n:] == -7.25).all()
    want = _reference(L, B, trans)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 1e-12 if dtype == np.float64 else 5e-5
    assert float(np.abs(Xbig[:n] - want).max(initial=0.0)) <= tol * scale


@pytest.mark.parametrize("n", [1999, 2000, 2300])
@pytest.mark.parametrize("k", [None, 1, 2, 32, 33, 64, 65])
@pytest.mark.parametrize("trans", [False, True])
def test_solve_triangular_every_path(n, k, trans, monkeypatch):
    """linalg.solve_triangular around the dispatch's bounds (rows 2000, 32 columns for
    L^T, 64 columns), with a C-ordered factor, an F-ordered one and a column block of a
    taller array: the native solve exactly where the docstring says, and every path equal
    to LAPACK's solve."""
    calls = []
    native = _core.triangular_solve_lower

    def spy(*args, **kwargs):
        calls.append(args[1].shape)
        return native(*args, **kwargs)

    monkeypatch.setattr(_core, "triangular_solve_lower", spy)
    L = _layout(_lower(n, np.float64, n), {1999: "C", 2000: "F", 2300: "view"}[n])
    cols = 1 if k is None else k
    B = np.random.default_rng(cols).normal(size=n if k is None else (n, k))
    x = linalg.solve_triangular(L, B, trans=trans)
    want = _reference(L, B, trans)
    assert np.abs(x - want).max() <= 1e-12 * np.abs(want).max()
    expect_native = n >= 2000 and 2 <= cols <= (32 if trans else 64)
    assert calls == ([(cols, n)] if expect_native else [])


@pytest.mark.parametrize("n", [255, 256, 1000])
@pytest.mark.parametrize("k", [1, 2, 6, 33])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("one_thread", [False, True])
def test_solve_triangular_one_thread_bound(n, k, trans, one_thread, monkeypatch):
    """Below 2000 rows the native solve only on one thread (inside the loops' small
    algebra, _threads.small_blas), from 256 rows; every path equal to LAPACK's solve."""
    calls = []
    native = _core.triangular_solve_lower

    def spy(*args, **kwargs):
        calls.append(kwargs.get("n_threads"))
        return native(*args, **kwargs)

    monkeypatch.setattr(_core, "triangular_solve_lower", spy)
    L = _layout(_lower(n, np.float64, n), "F")
    B = np.random.default_rng(k).normal(size=(n, k))
    if one_thread:
        with _threads.small_blas(1.0):
            x = linalg.solve_triangular(L, B, trans=trans)
    else:
        x = linalg.solve_triangular(L, B, trans=trans)
    want = _reference(L, B, trans)
    assert np.abs(x - want).max() <= 1e-12 * np.abs(want).max()
    expect_native = one_thread and n >= 256 and 2 <= k <= (32 if trans else 64)
    assert calls == ([1] if expect_native else [])


@pytest.mark.parametrize("n", [1, 255, 1000, 2300])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("one_thread", [False, True])
@pytest.mark.parametrize("cores", [2, 8])
def test_one_column_is_one_trsv_on_two_threads(n, dtype, trans, one_thread, cores, monkeypatch):
    """One right-hand side (1-d, or one column of a taller array) at any size: one BLAS
    trsv over the whole factor where the solve runs on at most two threads (a 2-core
    machine, or inside the loops' one-thread context), else the split by halves; never
    the native solve. Equal to LAPACK's solve either way, and a NaN in L's lower
    triangle still refused naming L."""
    calls = []
    trsv = linalg._blas.trsv_lower

    def spy(T, x, *, trans):
        calls.append((T.shape, x.shape))
        return trsv(T, x, trans=trans)

    monkeypatch.setattr(linalg._blas, "trsv_lower", spy)
    monkeypatch.setattr(_core, "triangular_solve_lower", None)  # must not be called
    monkeypatch.setattr(_core, "max_threads", lambda: cores)
    L = _layout(_lower(n, dtype, n), {1: "F", 255: "C", 1000: "view", 2300: "F"}[n])
    rng = np.random.default_rng(n)
    for B in (rng.normal(size=n).astype(dtype), rng.normal(size=(n + 2, 1))[1:-1]):
        with _threads.small_blas(1.0) if one_thread else contextlib.nullcontext():
            x = linalg.solve_triangular(L, B, trans=trans)
        want = _reference(L, B, trans)
        assert x.shape == B.shape and x.dtype == B.dtype
        tol = 1e-12 if dtype == np.float64 else 5e-5
        assert np.abs(x - want).max() <= tol * max(1.0, float(np.abs(want).max()))
    assert calls == ([((n, n), (n, 1))] * 2 if one_thread or cores <= 2 else [])
    if n > 1:
        bad = L.copy(order="F")
        bad[n - 1, 0] = np.nan
        with pytest.raises(ValueError, match="L: contains NaN"):
            linalg.solve_triangular(bad, np.ones(n, dtype=dtype), trans=trans)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("k", [1, 5, 300])
def test_solve_lower_in_place(dtype, trans, k):
    """The solvers' in-place solve (the logistic solver's B = K L^-T: X = K.T of a
    C-ordered K) against LAPACK's, in X's own memory; read-only, mismatched dtypes and
    layouts BLAS cannot take are refused."""
    n = 700
    L = np.asfortranarray(np.nan_to_num(_lower(n, dtype, 4)))
    L[np.triu_indices(n, 1)] = 0.0
    K = np.random.default_rng(k).normal(size=(k, n)).astype(dtype)  # C-ordered, k x n
    want = _reference(L, K.T, trans)
    X = K.T
    linalg.solve_lower_in_place(L, X, trans=trans)
    assert np.shares_memory(X, K)  # solved where it lies
    tol = 1e-12 if dtype == np.float64 else 5e-5
    assert np.abs(K.T - want).max() <= tol * np.abs(want).max()
    frozen = K.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        linalg.solve_lower_in_place(L, frozen.T)
    with pytest.raises(ValueError, match="L's dtype"):
        linalg.solve_lower_in_place(L, K.T.astype(np.float16))
    with pytest.raises(ValueError, match="unit row stride|expected"):
        linalg.solve_lower_in_place(L, K)  # k x n C-ordered: not (n, k), nor unit strides
    with pytest.raises(ValueError, match="expected"):
        linalg.solve_lower_in_place(L, np.asfortranarray(K.T[:-1]))


def test_trsv_refuses_mismatched_shapes():
    """The BLAS wrapper itself: an (n, k) x with k != 1, or a T of another size, is
    refused, not solved in its first column."""
    T = np.asfortranarray(np.eye(4))
    with pytest.raises(ValueError, match=r"\(n, 1\) x"):
        linalg._blas.trsv_lower(T, np.ones((4, 2), order="F"), trans=False)
    with pytest.raises(ValueError, match=r"\(n, 1\) x"):
        linalg._blas.trsv_lower(T, np.ones((3, 1), order="F"), trans=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans", [False, True])
def test_native_and_blas_paths_agree(dtype, trans):
    """The same system through the native solve and through BLAS by halves."""
    L = np.tril(np.nan_to_num(_lower(2100, dtype, 5)))
    B = np.random.default_rng(6).normal(size=(2100, 26)).astype(dtype)
    native = linalg.solve_triangular(L, B, trans=trans)
    saved = linalg.NATIVE_SOLVES
    try:
        linalg.NATIVE_SOLVES = False
        blas = linalg.solve_triangular(L, B, trans=trans)
    finally:
        linalg.NATIVE_SOLVES = saved
    tol = 1e-12 if dtype == np.float64 else 5e-5
    assert np.abs(native - blas).max() <= tol * np.abs(blas).max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans", [False, True])
def test_same_bits_for_every_thread_count(dtype, trans):
    L = np.asfortranarray(_lower(1100, dtype, 9))
    B = np.asfortranarray(np.random.default_rng(10).normal(size=(1100, 30)).astype(dtype))
    results = []
    for threads in (1, 2, 3):
        X = B.copy(order="F")
        _core.triangular_solve_lower(L.T, X.T, trans=trans, n_threads=threads)
        results.append(X)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    assert np.isfinite(results[0]).all()


def test_binding_checks_its_arguments():
    L = np.asfortranarray(np.tril(np.ones((4, 4))) + 3 * np.eye(4))
    X = np.ones((4, 2), order="F")
    solve = _core.triangular_solve_lower
    with pytest.raises(TypeError, match="XT"):
        solve(L.T, X.T.astype(np.float32))
    with pytest.raises(TypeError, match="LT"):
        solve(L.T.astype(np.int64), X.T)
    with pytest.raises(ValueError, match="LT"):
        solve(L[:, :3].T, X.T)
    with pytest.raises(ValueError, match="XT"):
        solve(L.T, np.ones((2, 3)))
    readonly = X.T.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="XT"):
        solve(L.T, readonly)
    with pytest.raises(ValueError, match="share memory"):
        solve(L.T, L.T[:2])
    with pytest.raises(ValueError, match="unit stride"):
        solve(L.T, np.ones((2, 8))[:, ::2])
    with pytest.raises(ValueError, match="n_threads"):
        solve(L.T, X.T.copy(), n_threads=-1)
    with pytest.raises(TypeError, match="XT"):
        solve(L.T, X.T.tolist())  # a list would be solved into a temporary and lost
    overlapping = np.lib.stride_tricks.as_strided(np.ones(8), shape=(2, 4), strides=(8, 8))
    with pytest.raises(ValueError, match="overlap"):
        solve(L.T, overlapping)
    np.testing.assert_array_equal(X, np.ones((4, 2)))
    empty = np.ones((0, 4))
    solve(L.T, empty)  # no right-hand sides: nothing to do
    assert empty.shape == (0, 4)


def test_threads_follow_a_fits_n_jobs():
    assert _threads.native_linalg_threads() == 0  # OpenMP's default outside a fit
    with _threads.blas_threads(1):
        assert _threads.native_linalg_threads() == 1
        with _threads.small_blas(1.0):
            assert _threads.native_linalg_threads() == 1
    with _threads.blas_threads(None):
        assert _threads.native_linalg_threads() == 0
        with _threads.small_blas(1.0):
            assert _threads.native_linalg_threads() == 1
        with _threads.small_blas(1e12):
            assert _threads.native_linalg_threads() == 0
    assert _threads.native_linalg_threads() == 0

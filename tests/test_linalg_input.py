"""gramfree.linalg on bad or unusual input: read-only memory with overwrite, jitter
``start`` values, layouts BLAS cannot take as they are (negative, zero, overlapping
strides), NaN and infinity, dtypes, singular factors, ``trans`` spellings, the triangle
cholesky reads, and 0 x 0 systems. Results are compared with scipy.linalg; a case that
could crash or hang the process (a read-only memmap written through a raw pointer, a
jitter ladder that never rises) runs in a subprocess with a timeout."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import sizes, vectors

from gramfree import _blas, linalg

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-4}


def _spd(n, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, max(n, 1)))
    A = B @ B.T / max(n, 1) + np.eye(n)
    return np.ascontiguousarray(A.astype(dtype))


def _factor(n, dtype=np.float64, seed=0):
    """A well-conditioned lower-triangular factor (F order)."""
    return np.asfortranarray(np.linalg.cholesky(_spd(n, np.float64, seed)).astype(dtype))


def _rel(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _isolated(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, so that a segfault or a hang fails the test
    instead of ending (or stalling) the session."""
    script = "import numpy as np\nfrom gramfree import linalg\n" + textwrap.dedent(code)
    try:
        return subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {timeout} s (hangs?)")


# Layouts of a square matrix with the same values: the ones BLAS takes as they are (F
# order, a column block of a larger F array) and the ones it does not (C order, negative
# and zero strides, every other column, non-native byte order, misaligned memory).
LAYOUTS = [
    "F",
    "C",
    "F-block",
    "neg-cols",
    "neg-rows",
    "neg-both",
    "strided",
    "swapped",
    "unaligned",
]


def _layout(M: np.ndarray, layout: str) -> np.ndarray:
    n, m = M.shape
    if layout == "F":
        out = np.asfortranarray(M)
    elif layout == "C":
        out = np.ascontiguousarray(M)
    elif layout == "F-block":
        big = np.zeros((n + 3, m + 2), dtype=M.dtype, order="F")
        big[2 : 2 + n, 1 : 1 + m] = M
        out = big[2 : 2 + n, 1 : 1 + m]
    elif layout == "neg-cols":  # unit row stride, column stride < 0: ld "1" for BLAS
        out = np.asfortranarray(M[:, ::-1])[:, ::-1]
    elif layout == "neg-rows":
        out = np.ascontiguousarray(M[::-1])[::-1]
    elif layout == "neg-both":
        out = np.asfortranarray(M[::-1, ::-1])[::-1, ::-1]
    elif layout == "strided":
        big = np.zeros((n, 2 * m), dtype=M.dtype, order="F")
        big[:, ::2] = M
        out = big[:, ::2]
    elif layout == "swapped":
        out = M.astype(M.dtype.newbyteorder(">" if sys.byteorder == "little" else "<"))
    elif layout == "unaligned":
        raw = np.zeros(M.size * M.itemsize + 1, dtype=np.uint8)
        out = np.ndarray(M.shape, M.dtype, raw[1:].data, order="F")
        out[...] = M
    else:
        raise AssertionError(layout)
    np.testing.assert_array_equal(out, M)
    return out


# ---------------------------------------------------------------------------------------
# 1. overwrite=True on read-only memory


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("func", ["cholesky", "jittered_cholesky"])
def test_overwrite_refuses_read_only_array(order, func):
    A = np.array(_spd(6) * 4.0, order=order)
    A.flags.writeable = False
    before = A.copy()
    with pytest.raises(ValueError, match="A: overwrite=True needs a writeable array"):
        getattr(linalg, func)(A, overwrite=True)
    np.testing.assert_array_equal(A, before)  # nothing was written


@pytest.mark.parametrize("flag", ["no", "False", 1, None])
@pytest.mark.parametrize("func", ["cholesky", "jittered_cholesky"])
def test_overwrite_other_than_a_bool_is_refused_and_nothing_written(func, flag):
    """Any truthy value was taken: overwrite="no" factored the caller's array in place
    (a review)."""
    A = np.asfortranarray(_spd(6) * 4.0)
    before = A.copy()
    with pytest.raises(TypeError, match="overwrite: expected True or False"):
        getattr(linalg, func)(A, overwrite=flag)
    np.testing.assert_array_equal(A, before)


def test_jitter_of_a_zero_diagonal_is_relative_to_1():
    """The documented fallback: mean(diag(A)) = 0 scales the jitter by 1."""
    L, jitter = linalg.jittered_cholesky(np.zeros((3, 3)))
    np.testing.assert_allclose(L @ L.T, jitter * np.eye(3), rtol=1e-12)
    assert jitter > 0


@pytest.mark.parametrize("func", ["cholesky", "jittered_cholesky"])
def test_read_only_array_without_overwrite_is_factored_in_a_copy(func):
    A = _spd(7)
    A.flags.writeable = False
    out = getattr(linalg, func)(A)
    L = out[0] if isinstance(out, tuple) else out
    assert not np.shares_memory(L, A)
    np.testing.assert_allclose(L, sl.cholesky(A, lower=True), rtol=1e-12, atol=1e-12)


def test_overwrite_refuses_read_only_memmap(tmp_path):
    """A read-only mapping written through potrf's raw pointer was a SIGSEGV: isolated."""
    path = tmp_path / "A.npy"
    np.save(path, np.eye(50) * 2.0)
    proc = _isolated(
        f"""
        M = np.load({str(path)!r}, mmap_mode="r")
        for f in (linalg.cholesky, linalg.jittered_cholesky):
            try:
                f(M, overwrite=True)
            except ValueError as e:
                assert str(e).startswith("A: overwrite=True needs a writeable"), e
            else:
                raise SystemExit("no error")
        L = linalg.cholesky(M)  # a copy: fine
        assert np.allclose(L, np.sqrt(2.0) * np.eye(50))
        assert np.array_equal(M, np.eye(50) * 2.0)
        print("ok")
        """
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


def test_overwrite_writes_into_a_writeable_memmap(tmp_path):
    path = tmp_path / "A.npy"
    A = _spd(40)
    np.save(path, A)
    M = np.load(path, mmap_mode="r+")
    L = linalg.cholesky(M, overwrite=True)
    assert np.shares_memory(L, M)
    np.testing.assert_allclose(L, sl.cholesky(A, lower=True), rtol=1e-12, atol=1e-12)


def test_blas_refuses_read_only_outputs():
    """The ctypes BLAS layer writes through raw pointers: a read-only output is refused
    before the call (a read-only array was written, a read-only mapping crashed)."""
    C = np.zeros((4, 4), order="F")
    C.flags.writeable = False
    A = np.asfortranarray(np.ones((4, 2)))
    with pytest.raises(ValueError, match="writeable"):
        _blas.gemm(1.0, A, A, 0.0, C, trans_b=True)
    with pytest.raises(ValueError, match="writeable"):
        _blas.syrk_lower(1.0, A, 0.0, C)
    with pytest.raises(ValueError, match="writeable"):
        _blas.trsm(1.0, np.asfortranarray(np.eye(4)), C, right=False, lower=True, trans=False)
    P = np.asfortranarray(4.0 * np.eye(4))
    P.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _blas.potrf_lower(P)
    np.testing.assert_array_equal(P, 4.0 * np.eye(4))
    np.testing.assert_array_equal(C, 0.0)


# ---------------------------------------------------------------------------------------
# 2. jittered_cholesky's start (and block)


def test_jittered_cholesky_start_not_positive():
    """start=0 or a negative start (-inf too) never rose above 1e-2: the jitter ladder
    looped forever. Isolated, so that a hang fails the test instead of stalling the
    session; one interpreter for all five starts (each would hang on its own)."""
    proc = _isolated(
        """
        from math import inf
        for start in (0.0, -1e-12, -1.0, 0, -inf):
            try:
                linalg.jittered_cholesky(np.ones((3, 3)), start=start)
            except ValueError as e:
                assert str(e).startswith("start: must be a finite number in (0, 0.01]"), e
                print("ok", start)
        """,
        timeout=30,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-2000:])
    assert proc.stdout.split("\n")[:5] == [
        f"ok {s}" for s in ("0.0", "-1e-12", "-1.0", "0", "-inf")
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jittered_cholesky_skips_rungs_that_change_nothing(monkeypatch, dtype):
    """start=1e-300 on a singular matrix: rungs whose jitter leaves every diagonal entry as
    it was fail as the unjittered factorization did; they were each factored (149 times
    before reaching 1e-2). Now the first attempt after the plain one changes the diagonal,
    and the factor is the one of the first rung that does."""
    A = np.ones((6, 6), dtype=dtype)
    calls = []
    real = linalg._factor_lower
    monkeypatch.setattr(
        linalg, "_factor_lower", lambda L, block: (calls.append(L[0, 0]), real(L, block))[1]
    )
    L, jitter = linalg.jittered_cholesky(A, start=1e-300)
    assert len(calls) <= 2 + 8  # the plain one, then rungs from eps upward (100x apart)
    assert all(c != 1.0 for c in calls[1:])  # every jittered attempt changed the diagonal
    eps = np.finfo(dtype).eps
    assert eps / 2 <= jitter < 100 * eps  # the first rung that changes the diagonal
    np.testing.assert_allclose(L @ L.T, A + jitter * np.eye(6), rtol=10 * eps, atol=10 * eps)


@pytest.mark.parametrize("start", [float("nan"), float("inf"), 0.5, 1.5e-2])
def test_jittered_cholesky_start_out_of_range(start):
    # nan gave a NaN factor; above 1e-2 the ladder gave up without trying start
    with pytest.raises(ValueError, match=r"^start: must be a finite number in \(0, 0.01\]"):
        linalg.jittered_cholesky(-np.eye(2), start=start)
    with pytest.raises(ValueError, match="^start: must be"):
        linalg.jittered_cholesky(np.ones((3, 3)), start=start)


@pytest.mark.parametrize("start", ["1e-6", True, np.bool_(True), [1e-6], 1e-6j, np.array([1e-6])])
def test_jittered_cholesky_start_wrong_type(start):
    with pytest.raises(TypeError, match="^start: expected a real number"):
        linalg.jittered_cholesky(-np.eye(2), start=start)


@pytest.mark.parametrize("start", [1e-10, np.float32(1e-6), np.float64(1e-8), 1e-2])
def test_jittered_cholesky_start_accepted(start):
    X = np.vstack([np.eye(5), np.eye(5)[:1]])
    A = X @ X.T  # singular: needs jitter
    L, jitter = linalg.jittered_cholesky(A, start=start)
    assert jitter == pytest.approx(float(start))
    scale = np.mean(np.diag(A))
    np.testing.assert_allclose(L @ L.T, A + jitter * scale * np.eye(6), atol=1e-10)


@pytest.mark.parametrize("func", ["cholesky", "jittered_cholesky", "lower_gram"])
def test_block_checked(func):
    f = getattr(linalg, func)
    with pytest.raises(ValueError, match="^block: must be at least 1"):
        f(np.eye(3), block=0)
    with pytest.raises(ValueError, match="^block: must be at least 1"):
        f(np.eye(3), block=-2)
    # lower_gram's block=None is its default (lauum where it may run)
    for bad in (2.5, True, "64") + (() if func == "lower_gram" else (None,)):
        with pytest.raises(TypeError, match="^block: expected an integer"):
            f(np.eye(3), block=bad)
    out = f(np.eye(3), block=np.int64(1))
    np.testing.assert_allclose(out[0] if isinstance(out, tuple) else out, np.eye(3))


# ---------------------------------------------------------------------------------------
# 3. layouts: negative, zero and overlapping strides


def test_negative_column_stride_factor_audit_case():
    A = np.array([[4.0, 2.0], [2.0, 3.0]])
    L0 = np.linalg.cholesky(A)
    L = np.asfortranarray(L0[:, ::-1])[:, ::-1]  # same values, strides (8, -16)
    assert np.array_equal(L, L0) and L.strides[1] < 0
    b = np.ones(2)
    np.testing.assert_allclose(
        linalg.solve_triangular(L, b), sl.solve_triangular(L0, b, lower=True), rtol=1e-14
    )
    np.testing.assert_allclose(
        linalg.cho_solve(L, np.ones((2, 2))), sl.cho_solve((L0, True), np.ones((2, 2))), rtol=1e-14
    )
    np.testing.assert_allclose(linalg.lower_gram(L), L0.T @ L0, rtol=1e-14)


def test_zero_stride_factor():
    L = np.broadcast_to(np.full((3, 1), 2.0), (3, 3))  # strides (8, 0)
    dense = np.tril(np.array(L))
    b = np.ones(3)
    expected = sl.solve_triangular(dense, b, lower=True)
    np.testing.assert_allclose(linalg.solve_triangular(L, b), expected, rtol=1e-14)
    np.testing.assert_allclose(
        linalg.solve_triangular(L, b, trans=True),
        sl.solve_triangular(dense, b, lower=True, trans=1),
        rtol=1e-14,
    )
    np.testing.assert_allclose(linalg.cho_solve(L, b), sl.cho_solve((dense, True), b), rtol=1e-13)
    # lower_gram takes the strict upper triangle to be zero: a zero row stride instead
    R = np.broadcast_to(np.array([2.0, 0.0, 0.0]), (3, 3))  # strides (0, 8)
    np.testing.assert_allclose(linalg.lower_gram(R), np.array(R).T @ R, rtol=1e-14)


@pytest.mark.parametrize("n", [300, 700])  # blocked: trsm leaves and GEMMs on sub-blocks
@pytest.mark.parametrize("layout", ["neg-cols", "neg-both", "strided"])
def test_blocked_solves_with_bad_strides(n, layout):
    L0 = _factor(n, seed=n)
    L = _layout(L0, layout)
    B = np.random.default_rng(1).normal(size=(n, 3))
    for trans in (False, True):
        x = linalg.solve_triangular(L, B, trans=trans)
        assert _rel(x, sl.solve_triangular(L0, B, lower=True, trans=int(trans))) <= 1e-12
    assert _rel(linalg.cho_solve(L, B), sl.cho_solve((L0, True), B)) <= 1e-11
    assert _rel(linalg.lower_gram(L, block=128), L0.T @ L0) <= 1e-13


@settings(max_examples=60, deadline=None)
@given(
    n=sizes(1, 40),
    k=st.sampled_from([None, 0, 1, 3]),
    dtype=st.sampled_from([np.float64, np.float32]),
    layout_l=st.sampled_from(LAYOUTS),
    layout_b=st.sampled_from(LAYOUTS),
    trans=st.booleans(),
    data=st.data(),
)
def test_solves_match_scipy_for_every_layout(n, k, dtype, layout_l, layout_b, trans, data):
    L0 = _factor(n, dtype, seed=n)
    B0 = data.draw(vectors(n, 1 if k is None else k))
    B0 = (B0[:, 0] if k is None else B0).astype(dtype)
    L = _layout(L0, layout_l)
    B = B0 if B0.ndim == 1 else _layout(B0, layout_b)
    L_before, B_before = L.copy(), B.copy()
    L64 = L0.astype(np.float64)
    tol = 1e-10 if dtype == np.float64 else 1e-4

    x = linalg.solve_triangular(L, B, trans=trans)
    assert x.shape == B0.shape and x.dtype == dtype
    ref = sl.solve_triangular(L64, B0.astype(np.float64), lower=True, trans=int(trans))
    np.testing.assert_allclose(x, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max(initial=0)))

    z = linalg.cho_solve(L, B)
    ref = sl.cho_solve((L64, True), B0.astype(np.float64))
    np.testing.assert_allclose(z, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max(initial=0)))

    # block=None: LAPACK's lauum; an integer: GEMM panels of that width
    S = linalg.lower_gram(L, block=data.draw(st.none() | st.integers(1, 16)))
    assert S.dtype == dtype
    np.testing.assert_allclose(S, L64.T @ L64, rtol=tol, atol=tol * np.abs(L64).max() ** 2)

    np.testing.assert_array_equal(L, L_before)  # inputs untouched
    np.testing.assert_array_equal(B, B_before)


@settings(max_examples=40, deadline=None)
@given(
    n=sizes(1, 40),
    dtype=st.sampled_from([np.float64, np.float32]),
    layout=st.sampled_from(LAYOUTS),
    overwrite=st.booleans(),
)
def test_cholesky_matches_scipy_for_every_layout(n, dtype, layout, overwrite):
    A0 = _spd(n, dtype, seed=n)  # symmetric: the triangle read does not matter
    ref = sl.cholesky(A0.astype(np.float64), lower=True)
    A = _layout(A0.copy(), layout)
    before = A.copy()
    L = linalg.cholesky(A, overwrite=overwrite)
    assert L.dtype == dtype and np.all(np.triu(L, 1) == 0)
    assert _rel(L, ref) <= TOL[np.dtype(dtype)]
    L2, jitter = linalg.jittered_cholesky(_layout(A0.copy(), layout), overwrite=overwrite)
    assert jitter == 0.0
    assert _rel(L2, ref) <= TOL[np.dtype(dtype)]
    if not overwrite:
        np.testing.assert_array_equal(A, before)


@pytest.mark.parametrize("layout", ["neg-cols", "neg-both"])
def test_blas_matmul_with_negative_strides(layout):
    """_blas.matmul's operands: a negative column stride was passed as leading dimension
    1 (BLAS refused it and the uninitialised output came back)."""
    rng = np.random.default_rng(0)
    A = _layout(rng.normal(size=(5, 4)), layout)
    B = _layout(rng.normal(size=(4, 3)), layout)
    np.testing.assert_allclose(_blas.matmul(A, B), np.array(A) @ np.array(B), rtol=1e-13)
    row = rng.normal(size=(1, 6))[:, ::-1]  # 1 x k with a negative stride
    np.testing.assert_allclose(_blas.matmul(row, np.ones((6, 2))), row @ np.ones((6, 2)))


def test_blas_refuses_bad_leading_dimensions():
    T = np.asfortranarray(np.eye(3))
    negative = np.asfortranarray(np.ones((3, 2)))[:, ::-1]
    with pytest.raises(ValueError, match="leading dimension"):
        _blas.trsm(1.0, T, negative, right=False, lower=True, trans=False)
    zero = np.lib.stride_tricks.as_strided(np.zeros(3), shape=(3, 2), strides=(8, 0))
    with pytest.raises(ValueError, match="leading dimension"):
        _blas.gemm(1.0, T, np.ones((3, 2), order="F"), 0.0, zero)
    overlap = np.lib.stride_tricks.as_strided(np.zeros(6), shape=(3, 2), strides=(8, 16))
    with pytest.raises(ValueError, match="leading dimension"):
        _blas.gemm(1.0, T, np.ones((3, 2), order="F"), 0.0, overlap)


# ---------------------------------------------------------------------------------------
# 4. NaN and infinity


def _with(A, i, j, value, symmetric=True):
    A = np.array(A)
    A[i, j] = value
    if symmetric:
        A[j, i] = value
    return A


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["diag", "offdiag", "lower-only", "upper-only"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("func", ["cholesky", "jittered_cholesky"])
def test_cholesky_refuses_non_finite(bad, where, order, overwrite, func):
    n = 40
    A = _spd(n) * n
    i, j = {"diag": (5, 5), "offdiag": (5, 3), "lower-only": (5, 3), "upper-only": (3, 5)}[where]
    A = np.array(_with(A, i, j, bad, symmetric=where in ("diag", "offdiag")), order=order)
    before = A.copy()
    with pytest.raises(ValueError, match="^A: contains NaN or infinity"):
        getattr(linalg, func)(A, overwrite=overwrite)
    np.testing.assert_array_equal(A, before)  # checked before anything is written
    with pytest.raises(ValueError):
        sl.cholesky(A, lower=True)  # scipy's check_finite agrees


def test_cholesky_refuses_nan_audit_case():
    A = np.eye(3)
    A[1, 1] = np.nan
    with pytest.raises(ValueError, match="^A: contains NaN or infinity"):
        linalg.cholesky(A)
    with pytest.raises(ValueError, match="^A: contains NaN or infinity"):
        linalg.jittered_cholesky(A)


def test_factor_overflow_is_not_a_factor():
    """Finite input whose factorization overflows (not positive definite) raises
    LinAlgError; no inf/NaN factor is returned as a success."""
    A = np.array([[1e-300, 1e300], [1e300, 1.0]])
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky(A)
    with pytest.raises(np.linalg.LinAlgError):
        linalg.jittered_cholesky(A)


def test_jittered_cholesky_huge_diagonal():
    """mean(diag) overflowing float64 made the jitter infinite and an infinite factor a
    success; the scale is now the finite mean, and no factor with inf or NaN is returned."""
    A = np.diag([1e308, 1e308, -1.0])
    L, jitter = linalg.jittered_cholesky(A)
    assert np.isfinite(L).all() and jitter == 1e-12
    scale = 1e308 / 3 * 2 - 1 / 3
    np.testing.assert_allclose(np.diag(L) ** 2, np.diag(A) + jitter * scale, rtol=1e-12)


@pytest.mark.parametrize("n", [5, 300])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("zeros", [False, True])
def test_solves_refuse_non_finite_factor(n, bad, trans, zeros):
    """NaN or infinity in L's lower triangle, on or below the diagonal (in a trsm leaf or
    a GEMM block), with random or zero right-hand sides."""
    rng = np.random.default_rng(n)
    B = np.zeros((n, 2)) if zeros else rng.normal(size=(n, 2))
    for i, j in [(n - 1, 0), (n - 1, n - 2), (n // 2, n // 2), (1, 0)]:
        L = _factor(n, seed=1)
        L[i, j] = bad
        with pytest.raises(ValueError, match="^L: contains NaN or infinity"):
            linalg.solve_triangular(L, B, trans=trans)
        with pytest.raises(ValueError, match="^L: contains NaN or infinity"):
            linalg.solve_triangular(L, B[:, 0], trans=trans)
        with pytest.raises(ValueError, match="^L: contains NaN or infinity"):
            linalg.cho_solve(L, B)
        with pytest.raises(ValueError, match="^L: contains NaN or infinity"):
            linalg.lower_gram(L)
        with pytest.raises(ValueError):
            sl.solve_triangular(L, B, lower=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solves_refuse_non_finite_rhs(bad, dtype):
    L = _factor(30, dtype)
    B = np.ones((30, 3), dtype=dtype)
    B[7, 1] = bad
    before = B.copy()
    for f in (linalg.solve_triangular, linalg.cho_solve):
        with pytest.raises(ValueError, match="^B: contains NaN or infinity"):
            f(L, B)
        with pytest.raises(ValueError, match="^B: contains NaN or infinity"):
            f(L, B[:, 1])
    np.testing.assert_array_equal(B, before)


def test_solves_ignore_the_strict_upper_triangle():
    """As scipy's lower=True: the strict upper triangle is not read, NaN there included."""
    L0 = _factor(20)
    L = L0.copy()
    L[np.triu_indices(20, 1)] = np.nan
    b = np.arange(20.0)
    np.testing.assert_allclose(
        linalg.solve_triangular(L, b), sl.solve_triangular(L0, b, lower=True), rtol=1e-12
    )
    np.testing.assert_allclose(linalg.cho_solve(L, b), sl.cho_solve((L0, True), b), rtol=1e-10)


def test_finite_overflowing_solution_is_returned():
    """Finite input whose solution overflows: inf, as scipy returns it (not an error)."""
    L = np.array([[1e-300, 0.0], [0.0, 1.0]])
    b = np.array([1e10, 1.0])
    with np.errstate(over="ignore"):
        x = linalg.solve_triangular(L, b)
        ref = sl.solve_triangular(L, b, lower=True)
    np.testing.assert_array_equal(x, ref)
    assert np.isinf(x[0])


# ---------------------------------------------------------------------------------------
# 5. dtypes

BAD_DTYPES = {
    "complex": np.array([[2.0, 1j], [-1j, 2.0]]),
    "object": np.array([[4.0, 2.0], [2.0, 3.0]], dtype=object),
    "str": np.array([["4", "2"], ["2", "3"]]),
    "bytes": np.array([[b"4", b"2"], [b"2", b"3"]]),
    "bool": np.eye(2, dtype=bool),
    "datetime": np.array([[1, 0], [0, 1]], dtype="datetime64[s]"),
    "timedelta": np.array([[1, 0], [0, 1]], dtype="timedelta64[s]"),
    "void": np.zeros((2, 2), dtype=[("a", "f8")]),
}


@pytest.mark.parametrize("kind", sorted(BAD_DTYPES))
def test_unsupported_dtypes_refused(kind):
    bad = BAD_DTYPES[kind]
    with pytest.raises(TypeError, match="^A: expected a real"):
        linalg.cholesky(bad)
    with pytest.raises(TypeError, match="^A: expected a real"):
        linalg.jittered_cholesky(bad, overwrite=True)
    with pytest.raises(TypeError, match="^L: expected a real"):
        linalg.solve_triangular(bad, np.ones(2))
    with pytest.raises(TypeError, match="^L: expected a real"):
        linalg.cho_solve(bad, np.ones(2))
    with pytest.raises(TypeError, match="^L: expected a real"):
        linalg.lower_gram(bad)
    with pytest.raises(TypeError, match="^B: expected a real"):
        linalg.solve_triangular(np.eye(2), bad)
    with pytest.raises(TypeError, match="^B: expected a real"):
        linalg.cho_solve(np.eye(2), bad[:, 0])


def test_complex_rhs_not_truncated_audit_case():
    with pytest.raises(TypeError, match="^B: expected a real"):
        linalg.solve_triangular(np.eye(2), np.array([1 + 1j, 2j]))


def test_ragged_input_named():
    with pytest.raises(ValueError, match="^A: cannot be converted"):
        linalg.cholesky([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="^B: cannot be converted"):
        linalg.solve_triangular(np.eye(2), [[1.0], [2.0, 3.0]])


@settings(max_examples=30, deadline=None)
@given(
    n=sizes(1, 20),
    dtype=st.sampled_from(["i8", "i4", "u2", "i1", "f2", ">f8", ">f4", "<f8", "<f4", "g"]),
    layout=st.sampled_from(["C", "F", "neg-cols"]),
)
def test_real_dtypes_accepted(n, dtype, layout):
    """Integers, float16 and longdouble are computed in float64; float32 and float64 in
    either byte order keep their precision. Compared with scipy in float64."""
    dt = np.dtype(dtype)
    expect = np.dtype(np.float32) if dt.kind == "f" and dt.itemsize == 4 else np.dtype(np.float64)
    # small integers: exactly representable in every dtype drawn
    A0 = np.eye(n) * 6 + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    A = _layout(A0.astype(dt), layout)
    L = linalg.cholesky(A)
    assert L.dtype == expect
    ref = sl.cholesky(A0, lower=True)
    assert _rel(L, ref) <= TOL[expect]
    L2, _ = linalg.jittered_cholesky(A)
    assert L2.dtype == expect
    Li = np.tril(np.full((n, n), 1, dtype=dt)) + np.eye(n, dtype=dt)  # diag 2, below 1
    b = np.arange(n).astype(dt)
    x = linalg.solve_triangular(Li, b)
    assert x.dtype == expect
    assert (
        _rel(x, sl.solve_triangular(Li.astype(np.float64), b.astype(np.float64), lower=True))
        <= TOL[expect]
    )
    S = linalg.lower_gram(Li)
    assert S.dtype == expect
    np.testing.assert_allclose(S, Li.astype(np.float64).T @ Li.astype(np.float64))


def test_rhs_overflowing_float32_factor_refused():
    L32 = linalg.cholesky(np.eye(3, dtype=np.float32))
    B = np.full(3, 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning either
        with pytest.raises(ValueError, match=r"^B: values up to 1e\+300 overflow float32"):
            linalg.solve_triangular(L32, B)
        with pytest.raises(ValueError, match=r"^B: values up to 1e\+300 overflow float32"):
            linalg.cho_solve(L32, B[:, None])
    # within float32's range: solved in float32, returned in B's float64
    x = linalg.solve_triangular(L32, np.full(3, 1e30))
    assert x.dtype == np.float64
    np.testing.assert_allclose(x, 1e30, rtol=1e-6)


# ---------------------------------------------------------------------------------------
# 6. singular factors


@pytest.mark.parametrize("n, zero_at", [(2, 1), (2, 0), (5, 3), (300, 0), (300, 299), (700, 400)])
def test_singular_factor_raises_like_scipy(n, zero_at):
    L = _factor(n, seed=2)
    L[zero_at, zero_at] = 0.0
    b = np.ones(n)
    with pytest.raises(np.linalg.LinAlgError):
        sl.solve_triangular(L, b, lower=True)
    for trans in (False, True):
        with pytest.raises(np.linalg.LinAlgError, match=f"^L: singular.*index {zero_at}\\)"):
            linalg.solve_triangular(L, b, trans=trans)
    with pytest.raises(np.linalg.LinAlgError, match="^L: singular"):
        linalg.cho_solve(L, b)


def test_singular_factor_audit_case():
    with pytest.raises(np.linalg.LinAlgError, match="^L: singular"):
        linalg.solve_triangular(np.array([[1.0, 0.0], [1.0, 0.0]]), np.ones(2))


# ---------------------------------------------------------------------------------------
# 7. trans


@pytest.mark.parametrize(
    "trans, scipy_trans",
    [
        (False, 0),
        (0, 0),
        ("N", 0),
        (np.bool_(False), 0),
        (np.int64(0), 0),
        (True, 1),
        (1, 1),
        (2, 1),
        ("T", 1),
        ("C", 1),
        (np.bool_(True), 1),
        (np.int32(1), 1),
    ],
)
def test_trans_spellings_as_scipy(trans, scipy_trans):
    L = np.array([[2.0, 0.0], [1.0, 1.0]])
    b = np.array([1.0, 3.0])
    ref = sl.solve_triangular(L, b, lower=True, trans=scipy_trans)
    np.testing.assert_allclose(linalg.solve_triangular(L, b, trans=trans), ref, rtol=1e-15)
    np.testing.assert_allclose(
        linalg.solve_triangular(L, b, trans=trans),
        sl.solve_triangular(L, b, lower=True, trans=trans),
    )


@pytest.mark.parametrize("trans", ["n", "t", "X", "", "NT", 3, -1, np.int64(5)])
def test_trans_bad_values(trans):
    with pytest.raises(ValueError, match="^trans: expected"):
        linalg.solve_triangular(np.eye(2), np.ones(2), trans=trans)


@pytest.mark.parametrize("trans", [None, 1.0, 0.0, [1], b"T", np.array(1)])
def test_trans_bad_types(trans):
    with pytest.raises(TypeError, match="^trans: expected"):
        linalg.solve_triangular(np.eye(2), np.ones(2), trans=trans)


# ---------------------------------------------------------------------------------------
# 8. the triangle cholesky reads


@pytest.mark.parametrize("func", ["cholesky", "jittered_cholesky"])
def test_triangle_read_does_not_depend_on_overwrite(func):
    """C-contiguous: the upper triangle, with or without overwrite; otherwise the lower."""
    rng = np.random.default_rng(0)
    S = _spd(30)
    noise = 0.05 * np.tril(rng.normal(size=(30, 30)), -1)
    A = S + noise  # lower triangle: S + noise; upper: S
    upper_ref = sl.cholesky(A, lower=False).T  # scipy reads the upper triangle
    lower_ref = sl.cholesky(A, lower=True)  # and here the lower one

    def run(M, overwrite):
        out = getattr(linalg, func)(M, overwrite=overwrite)
        return out[0] if isinstance(out, tuple) else out

    for overwrite in (False, True):
        np.testing.assert_allclose(run(np.array(A, order="C"), overwrite), upper_ref, atol=1e-12)
        np.testing.assert_allclose(run(np.array(A, order="F"), overwrite), lower_ref, atol=1e-12)
        big = np.array(np.kron(A, np.ones((1, 2))), order="C")[:, ::2]  # non-contiguous view
        np.testing.assert_allclose(run(big, overwrite), lower_ref, atol=1e-12)


def test_triangle_audit_case():
    A = np.array([[4.0, 3.0], [1.0, 4.0]])
    L1 = linalg.cholesky(A)
    L2 = linalg.cholesky(A.copy(), overwrite=True)
    assert (L1 @ L1.T)[0, 1] == pytest.approx(3.0)
    assert (L2 @ L2.T)[0, 1] == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------
# 9. empty systems


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_empty_systems(dtype):
    expect = np.float32 if dtype == np.float32 else np.float64
    E = np.empty((0, 0), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L = linalg.cholesky(E)
        assert L.shape == (0, 0) and L.dtype == expect
        L, jitter = linalg.jittered_cholesky(E)
        assert L.shape == (0, 0) and L.dtype == expect and jitter == 0.0
        L, jitter = linalg.jittered_cholesky(np.empty((0, 0), dtype=dtype), overwrite=True)
        assert L.shape == (0, 0) and jitter == 0.0
        assert linalg.lower_gram(E).shape == (0, 0)
        for B in (np.ones(0, dtype=dtype), np.ones((0, 3), dtype=dtype), np.ones((0, 0))):
            for f in (linalg.solve_triangular, linalg.cho_solve):
                x = f(E, B)
                assert x.shape == B.shape
                assert x.dtype == (np.float32 if B.dtype == np.float32 else np.float64)
        # B with no columns for a non-empty L
        L3 = _factor(3)
        for f in (linalg.solve_triangular, linalg.cho_solve):
            x = f(L3, np.ones((3, 0), dtype=dtype))
            assert x.shape == (3, 0)


def test_empty_rhs_still_checks_the_factor():
    L = _factor(3)
    L[2, 0] = np.nan
    with pytest.raises(ValueError, match="^L: contains NaN"):
        linalg.solve_triangular(L, np.ones((3, 0)))


@pytest.mark.parametrize("n", [1, 4, 40])
def test_an_unaligned_factor_reaches_blas_aligned(n):
    """An unaligned F-ordered factor went to BLAS as it was (np.asfortranarray keeps it):
    scipy 1.9's OpenBLAS trsv crashed the process on it (CI's oldest-dependencies run,
    n = 4, one right-hand side). It is copied aligned now, and the solves still match."""
    L0 = _factor(n, np.float64, seed=n)
    L = _layout(L0, "unaligned")
    assert not L.flags.aligned
    assert linalg._blas_layout(L).flags.aligned
    B = np.random.default_rng(n).normal(size=n)
    for trans in (False, True):
        x = linalg.solve_triangular(L, B, trans=trans)
        ref = sl.solve_triangular(L0, B, lower=True, trans=int(trans))
        np.testing.assert_allclose(x, ref, rtol=1e-10, atol=1e-10)

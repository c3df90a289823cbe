"""gramfree.linalg: the blocked Cholesky against numpy's, the jittered Cholesky (also in
place), L^T L, the triangular solves, and (slow) a 20000 x 20000 factorization and product
with multi-threaded BLAS that must not crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gramfree import linalg


def _spd(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    k = min(n, 50)
    B = rng.normal(size=(n, k))
    A = B @ B.T / k + np.eye(n)  # dense, eigenvalues in [1, about 2 + n / k]
    return np.ascontiguousarray(A.astype(dtype))


TOL = {np.float64: 1e-10, np.float32: 2e-4}


@pytest.mark.parametrize("n, block", [(1, 64), (5, 2), (5, 64), (300, 64), (2500, 64), (300, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_cholesky_matches_numpy(n, block, dtype, order, overwrite):
    if n == 2500 and (order, overwrite, dtype) not in (
        ("C", True, np.float64),
        ("F", False, np.float32),
    ):
        pytest.skip("n=2500: two combinations are enough (keeps the suite fast)")
    A = _spd(n, dtype, seed=n)
    A = np.asfortranarray(A) if order == "F" else np.ascontiguousarray(A)
    before = A.copy(order="K")
    expected = np.linalg.cholesky(A.astype(np.float64))
    L = linalg.cholesky(A, block=block, overwrite=overwrite)
    assert L.shape == (n, n)
    assert L.dtype == dtype
    assert np.all(np.triu(L, 1) == 0)
    err = np.linalg.norm(L.astype(np.float64) - expected) / np.linalg.norm(expected)
    assert err <= TOL[dtype]
    if not overwrite:
        assert np.array_equal(A, before)
        assert not np.shares_memory(L, A)
    else:
        # overwrite: the factor is computed in A's memory, no n x n copy
        assert np.shares_memory(L, A)


def test_cholesky_same_factor_on_every_path():
    """Both triangles must hold A; a symmetric A gives the same factor on every path."""
    A = _spd(200, np.float64)
    L1 = linalg.cholesky(A, block=32)
    L2 = linalg.cholesky(A.copy(order="C"), block=32, overwrite=True)
    L3 = linalg.cholesky(A.copy(order="F"), block=32, overwrite=True)
    np.testing.assert_allclose(L2, L1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(L3, L1, rtol=0, atol=1e-12)


def test_cholesky_non_float_input_promoted():
    A = np.array([[4, 2], [2, 3]])
    L = linalg.cholesky(A)
    assert L.dtype == np.float64
    np.testing.assert_allclose(L @ L.T, A)


@pytest.mark.parametrize("n, block, k", [(10, 64, 0), (10, 64, 7), (300, 64, 200), (300, 64, 64)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cholesky_not_positive_definite(n, block, k, dtype):
    A = np.eye(n, dtype=dtype)
    A[k, k] = -1.0  # leading minors 1..k are positive, minor k + 1 is not
    with pytest.raises(np.linalg.LinAlgError, match=f"leading minor {k + 1} of {n}"):
        linalg.cholesky(A, block=block)


def test_cholesky_indefinite_dense():
    rng = np.random.default_rng(1)
    B = rng.normal(size=(150, 150))
    A = (B + B.T) / 2  # symmetric, indefinite
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        linalg.cholesky(A, block=32)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(A)


@pytest.mark.parametrize("shape", [(3, 4), (5,), (2, 2, 2)])
def test_cholesky_not_square(shape):
    with pytest.raises(ValueError, match="square"):
        linalg.cholesky(np.ones(shape))


def test_jittered_cholesky_singular_psd():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    X = np.vstack([X, X[:10]])  # duplicated rows: a singular PSD Gram matrix
    A = np.exp(-0.5 * np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1))
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky(A)
    before = A.copy()
    L, jitter = linalg.jittered_cholesky(A)
    assert np.array_equal(A, before)
    assert 0 < jitter <= 1e-2
    scale = np.mean(np.diag(A))
    np.testing.assert_allclose(L @ L.T, A + jitter * scale * np.eye(len(A)), atol=1e-10)
    # the smallest jitter of the ladder that works: the previous one fails
    if jitter > 1e-12:
        with pytest.raises(np.linalg.LinAlgError):
            linalg.cholesky(A + (jitter / 100) * scale * np.eye(len(A)))


def test_jittered_cholesky_no_jitter_when_pd():
    A = _spd(50, np.float64)
    L, jitter = linalg.jittered_cholesky(A)
    assert jitter == 0.0
    np.testing.assert_allclose(L, np.linalg.cholesky(A), atol=1e-12)


def test_jittered_cholesky_gives_up_on_indefinite():
    A = np.diag([10.0, 10.0, 10.0, -1.0])  # jitter up to 1e-2 * mean(diag) cannot fix it
    with pytest.raises(np.linalg.LinAlgError):
        linalg.jittered_cholesky(A)


def test_cholesky_failure_leaves_the_other_triangle():
    """In place, a failed factorization leaves the triangle it does not read untouched:
    what jittered_cholesky restores the matrix from."""
    rng = np.random.default_rng(3)
    B = rng.normal(size=(90, 90))
    A = (B + B.T) / 2  # indefinite
    for order in ("C", "F"):
        work = np.array(A, order=order)
        with pytest.raises(np.linalg.LinAlgError):
            linalg.cholesky(work, block=16, overwrite=True)
        # C order reads the upper triangle, so the lower one must be intact, and vice versa
        keep = np.tril_indices(90, -1) if order == "C" else np.triu_indices(90, 1)
        np.testing.assert_array_equal(work[keep], A[keep])


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("block", [16, 64, 2048])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jittered_cholesky_in_place(order, block, dtype):
    """overwrite=True: the same factor and jitter as the copying path, in A's memory, also
    when attempts fail and the matrix is restored between them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    X = np.vstack([X, X[:30]])  # singular: needs jitter
    A = np.exp(-0.5 * np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)).astype(dtype)
    L_ref, j_ref = linalg.jittered_cholesky(A, block=block)
    work = np.array(A, order=order)
    L, jitter = linalg.jittered_cholesky(work, overwrite=True, block=block)
    assert np.shares_memory(L, work)
    assert jitter == j_ref > 0
    assert L.dtype == dtype
    assert np.all(np.triu(L, 1) == 0)
    np.testing.assert_allclose(L, L_ref, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-5)
    err = np.abs(L.astype(np.float64) @ L.T - (A + jitter * np.eye(len(A)))).max()
    assert err <= (1e-10 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("block", [2, 2048])
def test_jittered_cholesky_one_triangle_retries_read_the_same_triangle(block):
    """Only the triangle cholesky reads is filled (the upper of a C-ordered A, the lower of
    an F-ordered one) and a jitter is needed: every attempt reads that triangle, so the
    factor is the symmetric matrix's (before, the retries rebuilt it from the empty
    triangle and returned a factor of the diagonal alone, 2.1 off, without an error).
    In A's memory that is impossible once a jitter is needed, and refused naming A."""
    X = np.random.default_rng(0).standard_normal((6, 2))
    K = X @ X.T  # rank 2: needs jitter
    L_ref, j_ref = linalg.jittered_cholesky(K, block=block)
    assert j_ref > 0
    for A in (np.triu(K), np.asfortranarray(np.tril(K))):
        before = A.copy()
        L, jitter = linalg.jittered_cholesky(A, block=block)
        assert jitter == j_ref
        np.testing.assert_allclose(L, L_ref, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(A, before)
        with pytest.raises(ValueError, match="^A: not positive definite as given, and its two"):
            linalg.jittered_cholesky(A, overwrite=True, block=block)
        # A then holds the triangle not read (here empty), mirrored, and its diagonal
        np.testing.assert_array_equal(A, np.diag(np.diag(K)))


def test_jittered_cholesky_float32_starts_higher():
    """float32 skips the jitters below its rounding: after 0 comes 1e-6 (float64: 1e-12)."""
    X = np.vstack([np.eye(5), np.eye(5)[:1]])
    A = X @ X.T + 0.0  # rank 5 of 6
    _, j64 = linalg.jittered_cholesky(A)
    _, j32 = linalg.jittered_cholesky(A.astype(np.float32))
    assert j64 == pytest.approx(1e-12)
    assert j32 == pytest.approx(1e-6)


def test_jittered_cholesky_gives_up_restores_matrix():
    A = np.diag([10.0, 10.0, 10.0, -1.0]) + 0.5
    A[np.diag_indices(4)] = [10.0, 10.0, 10.0, -1.0]
    work = A.copy()
    with pytest.raises(np.linalg.LinAlgError):
        linalg.jittered_cholesky(work, overwrite=True, block=2)
    np.testing.assert_array_equal(work, A)


@pytest.mark.parametrize("n, block", [(1, 4), (5, 2), (7, 3), (130, 32), (300, 64), (700, 512)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_lower_gram_matches_numpy(n, block, dtype, order):
    rng = np.random.default_rng(n)
    L = np.array(np.tril(rng.normal(size=(n, n))), dtype=dtype, order=order)
    S = linalg.lower_gram(L, block=block)
    ref = L.astype(np.float64).T @ L.astype(np.float64)
    assert S.dtype == dtype and S.shape == (n, n) and S.flags.f_contiguous
    assert not np.shares_memory(S, L)
    np.testing.assert_array_equal(S, S.T)  # both triangles, exactly symmetric
    tol = 1e-13 if dtype == np.float64 else 2e-6
    assert np.abs(S - ref).max() <= tol * np.abs(ref).max()


@pytest.mark.parametrize("n", [1, 2, 65, 700, 1300])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lower_gram_lauum_matches_panels_and_numpy(n, dtype, monkeypatch):
    """The default route (LAPACK's lauum) against numpy in float64 and against the GEMM
    panels, which take over above _LAUUM_MAX_ROWS (lowered here to reach them)."""
    rng = np.random.default_rng(n)
    L = np.array(np.tril(rng.normal(size=(n, n))), dtype=dtype, order="F")
    before = L.copy()
    S = linalg.lower_gram(L)
    ref = L.astype(np.float64).T @ L.astype(np.float64)
    assert S.dtype == dtype and S.flags.f_contiguous and not np.shares_memory(S, L)
    np.testing.assert_array_equal(S, S.T)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    assert np.abs(S - ref).max() <= tol * np.abs(ref).max()
    np.testing.assert_array_equal(L, before)
    monkeypatch.setattr(linalg, "_LAUUM_MAX_ROWS", n - 1)
    panels = linalg.lower_gram(L)
    assert np.abs(panels - S).max() <= tol * np.abs(ref).max()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("block", [None, 16])  # lauum, GEMM panels
def test_lower_gram_refuses_non_finite_lower_triangle(bad, block):
    L = np.tril(np.random.default_rng(0).normal(size=(50, 50)))
    L[40, 3] = bad
    with pytest.raises(ValueError, match="^L: contains NaN or infinity"):
        linalg.lower_gram(L, block=block)


def test_lower_gram_not_square():
    with pytest.raises(ValueError, match="square"):
        linalg.lower_gram(np.ones((3, 4)))


def test_solve_triangular_in_the_factor_precision():
    """A float32 factor with float64 right-hand sides: solved in float32, returned as
    float64 (the factor is not copied to float64)."""
    A = _spd(60, np.float64)
    L = np.linalg.cholesky(A)
    L32 = np.asfortranarray(L.astype(np.float32))
    B = np.random.default_rng(5).normal(size=(60, 2))
    x = linalg.solve_triangular(L32, B)
    assert x.dtype == np.float64
    assert rel_diff(x, np.linalg.solve(L, B)) <= 1e-5
    x32 = linalg.solve_triangular(L, B.astype(np.float32), trans=True)
    assert x32.dtype == np.float32
    assert rel_diff(x32, np.linalg.solve(L.T, B)) <= 1e-5


def rel_diff(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - b) / np.linalg.norm(b))


def test_triangular_solves():
    A = _spd(80, np.float64)
    L = np.linalg.cholesky(A)
    B = np.random.default_rng(2).normal(size=(80, 3))
    np.testing.assert_allclose(L @ linalg.solve_triangular(L, B), B, atol=1e-10)
    np.testing.assert_allclose(L.T @ linalg.solve_triangular(L, B, trans=True), B, atol=1e-10)
    np.testing.assert_allclose(linalg.cho_solve(L, B), np.linalg.solve(A, B), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k", [None, 5, 700])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("order", ["C", "F"])
def test_solve_triangular_by_halves(k, trans, order):
    """n = 700: three levels of halving (trsm leaves of at most 256 rows, GEMM between),
    one or many right-hand sides, numpy's C-ordered factor as well as an F-ordered one."""
    n = 700
    A = _spd(n, np.float64, seed=7)
    L = np.array(np.linalg.cholesky(A), order=order)
    rng = np.random.default_rng(8)
    B = rng.normal(size=n if k is None else (n, k))
    x = linalg.solve_triangular(L, B, trans=trans)
    assert x.shape == B.shape and x.dtype == np.float64
    assert rel_diff(x, np.linalg.solve(L.T if trans else L, B)) <= 1e-12
    x32 = linalg.solve_triangular(L.astype(np.float32), B, trans=trans)
    assert rel_diff(x32, np.linalg.solve(L.T if trans else L, B)) <= 1e-4


def test_solve_triangular_shapes_checked():
    with pytest.raises(ValueError, match="expected"):
        linalg.solve_triangular(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match="expected"):
        linalg.solve_triangular(np.ones((3, 2)), np.ones(3))


@pytest.mark.slow
def test_large_kernel_matrix_factorization_does_not_crash():
    """n = 20000, float64: where OpenBLAS's potrf and (multi-threaded) syrk crash on AMD
    Zen 4, which numpy's ``L.T @ L`` calls. Run in a subprocess with two BLAS threads (the
    suite's conftest limits its own process to one), so that a segfault is a failure, not
    the end of the test session."""
    script = textwrap.dedent(
        """
        import numpy as np
        from threadpoolctl import threadpool_limits
        import gramfree
        from gramfree import linalg

        threadpool_limits(2, user_api="blas")

        n, d = 20000, 16
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d))
        A = gramfree.kernel_matrix(X, kernel="rbf", gamma=1.0 / d)
        A[np.diag_indices_from(A)] += 1e-3
        x = rng.normal(size=n)
        Ax = A @ x
        L = linalg.cholesky(A, overwrite=True)
        del A
        r = np.linalg.norm(L @ (L.T @ x) - Ax) / np.linalg.norm(Ax)
        print("residual", r)
        assert r < 1e-8, r
        S = linalg.lower_gram(L)  # L^T L: numpy's own crashes here (syrk)
        r = np.linalg.norm(S @ x - L.T @ (L @ x)) / np.linalg.norm(S @ x)
        print("gram residual", r)
        assert r < 1e-12, r
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "gram residual" in proc.stdout


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cholesky_default_block_recursion(dtype):
    """n above the default block: the halves, the trsm split into 256-column leaves and the
    GEMM trailing updates all run, against numpy's factor of the same matrix."""
    n = 2600
    A = _spd(n, dtype, seed=11)
    expected = np.linalg.cholesky(A.astype(np.float64))
    L = linalg.cholesky(A)
    assert L.dtype == dtype and np.all(np.triu(L, 1) == 0)
    err = np.linalg.norm(L.astype(np.float64) - expected) / np.linalg.norm(expected)
    assert err <= TOL[dtype]


def test_cholesky_failure_position_in_second_half():
    """The failing minor reported from a potrf deep in the recursion is counted from the
    start of the whole matrix, and the other triangle is still the input."""
    n, k = 2600, 2300
    A = _spd(n, np.float64, seed=12)
    A[k, k] = -1.0
    work = A.copy(order="F")
    with pytest.raises(np.linalg.LinAlgError, match=f"leading minor {k + 1} of {n}"):
        linalg.cholesky(work, overwrite=True)
    upper = np.triu_indices(n, 1)
    np.testing.assert_array_equal(work[upper], A[upper])


# ---------------------------------------------------------------------------------------
# gramfree._blas: BLAS on sub-blocks of a larger Fortran-ordered matrix, in place


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "trans_a, trans_b", [(False, False), (False, True), (True, False), (True, True)]
)
def test_blas_gemm_on_sub_blocks(dtype, trans_a, trans_b):
    from gramfree import _blas

    rng = np.random.default_rng(0)
    M = np.asfortranarray(rng.normal(size=(60, 70)).astype(dtype))
    before = M.copy(order="F")
    m, n, k = 11, 9, 7
    A = M[3 : 3 + (k if trans_a else m), 1 : 1 + (m if trans_a else k)]
    B = M[20 : 20 + (n if trans_b else k), 30 : 30 + (k if trans_b else n)]
    C = M[40 : 40 + m, 50 : 50 + n]
    opA = A.T if trans_a else A
    opB = B.T if trans_b else B
    expected = 0.5 * C.astype(np.float64) - 2.0 * (opA.astype(np.float64) @ opB)
    _blas.gemm(-2.0, A, B, 0.5, C, trans_a=trans_a, trans_b=trans_b)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(M[40 : 40 + m, 50 : 50 + n], expected, rtol=tol, atol=tol)
    outside = np.ones(M.shape, dtype=bool)
    outside[40 : 40 + m, 50 : 50 + n] = False
    np.testing.assert_array_equal(M[outside], before[outside])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blas_trsm_syrk_potrf_on_sub_blocks(dtype):
    """Each routine changes only its block's lower triangle (syrk, potrf) or its block
    (trsm); the strict upper triangle, which cholesky's failure path relies on, stays."""
    from gramfree import _blas

    rng = np.random.default_rng(1)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    spd = _spd(30, np.float64, seed=3)
    M = np.asfortranarray(rng.normal(size=(80, 80)).astype(dtype))
    D = M[5:35, 10:40]
    D[np.tril_indices(30)] = spd[np.tril_indices(30)]
    upper_before = D[np.triu_indices(30, 1)].copy()
    assert _blas.potrf_lower(D) == 0
    L = np.tril(D).astype(np.float64)
    np.testing.assert_allclose(L, np.linalg.cholesky(spd), rtol=tol, atol=tol)
    np.testing.assert_array_equal(D[np.triu_indices(30, 1)], upper_before)

    B = M[40:65, 10:40]  # 25 x 30, solved in place: B L^-T
    rhs = B.astype(np.float64)
    _blas.trsm(1.0, D, B, right=True, lower=True, trans=True)
    np.testing.assert_allclose(B.astype(np.float64) @ L.T, rhs, rtol=tol, atol=tol)
    V = M[40:70, 50:53]  # 30 x 3, left-side solves: L^-1 V and L^-T V
    v = V.astype(np.float64)
    _blas.trsm(1.0, D, V, right=False, lower=True, trans=False)
    np.testing.assert_allclose(L @ V.astype(np.float64), v, rtol=tol, atol=tol)

    C = M[0:25, 55:80]
    c = C.astype(np.float64)
    P = M[40:65, 10:18]
    _blas.syrk_lower(-1.0, P, 1.0, C)
    expected = c - P.astype(np.float64) @ P.astype(np.float64).T
    low, up = np.tril_indices(25), np.triu_indices(25, 1)
    np.testing.assert_allclose(C[low], expected[low], rtol=tol, atol=tol)
    np.testing.assert_array_equal(C[up], c[up])

    bad = np.asfortranarray(-np.eye(4, dtype=dtype))
    assert _blas.potrf_lower(bad) == 1


def test_blas_rejects_rows_not_contiguous_and_mixed_dtypes():
    from gramfree import _blas

    C = np.zeros((4, 4))  # C order: rows are not unit-stride
    A = np.asfortranarray(np.ones((4, 2)))
    with pytest.raises(ValueError, match="unit row stride"):
        _blas.gemm(1.0, A, A, 0.0, C, trans_b=True)
    with pytest.raises(ValueError, match="float64"):
        _blas.gemm(1.0, A.astype(np.float32), A, 0.0, np.asfortranarray(C), trans_b=True)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(0, 9),
    k=st.integers(0, 9),
    n=st.integers(0, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    layout_a=st.sampled_from(["C", "F", "strided"]),
    layout_b=st.sampled_from(["C", "F", "strided"]),
)
def test_blas_matmul_matches_numpy(m, k, n, dtype, layout_a, layout_b):
    """gramfree._blas.matmul (the solvers' products on scipy's BLAS) equals numpy's @ in
    float64 for every layout a view can have, empty sizes included."""
    from gramfree import _blas

    rng = np.random.default_rng(m * 100 + k * 10 + n)

    def operand(rows, cols, layout):
        full = rng.standard_normal((rows, 2 * cols if layout == "strided" else cols))
        arr = np.asarray(full, dtype=dtype, order="F" if layout == "F" else "C")
        return arr[:, ::2] if layout == "strided" else arr

    A, B = operand(m, k, layout_a), operand(k, n, layout_b)
    A0, B0 = A.copy(), B.copy()
    out = _blas.matmul(A, B)
    assert out.shape == (m, n) and out.dtype == dtype
    expected = A.astype(np.float64) @ B.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * max(1.0, k))
    np.testing.assert_array_equal(A, A0)  # inputs untouched
    np.testing.assert_array_equal(B, B0)


@pytest.mark.parametrize("block", [None, 7, 512])
def test_lower_gram_reads_the_lower_triangle_only_on_every_path(block):
    """A factor from scipy's cho_factor keeps A in its upper triangle: lauum ignored it,
    the panels (every n above 12000, or a block given) summed it in (error 0.97)."""
    import scipy.linalg as sla

    rng = np.random.default_rng(3)
    G = rng.standard_normal((300, 300))
    c, _ = sla.cho_factor(G @ G.T + 300 * np.eye(300), lower=True)
    assert np.abs(np.triu(c, 1)).max() > 0  # the case: the upper triangle holds A
    expected = np.tril(c).T @ np.tril(c)
    got = linalg.lower_gram(c, block=block)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_cholesky_refuses_the_unread_triangle_alone():
    """np.tril(A) is C-ordered: cholesky reads its upper triangle, zero, and factored the
    diagonal alone (error 2.9), where numpy and scipy's lower=True read the lower one.
    Refused naming A; the same triangle in F order (its lower triangle read) factors A."""
    rng = np.random.default_rng(0)
    G = rng.standard_normal((5, 5))
    A = G @ G.T + np.eye(5)
    with pytest.raises(ValueError, match="A: the triangle cholesky reads"):
        linalg.cholesky(np.tril(A))
    with pytest.raises(ValueError, match="A: the triangle cholesky reads"):
        linalg.jittered_cholesky(np.tril(A))
    # one triangle given in the layout that reads it stays accepted (syrk's outputs)
    L = linalg.cholesky(np.asfortranarray(np.tril(A)))
    np.testing.assert_allclose(L @ L.T, A, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k", [(1, 1), (7, 1), (300, 3), (300, 8), (301, 9), (200, 26)])
def test_symm_lower_reads_the_lower_triangle_only(n, k, dtype):
    """The direct solver's refinement residual from A's one stored triangle: symv column
    by column for few columns, symm beyond; NaN in the strict upper triangle is never
    read. Against the float64 product of the whole symmetric matrix."""
    from gramfree import _blas

    rng = np.random.default_rng(n + k)
    B = rng.normal(size=(n, n))
    A = (B + B.T) / 2
    stored = np.asfortranarray(A.astype(dtype))
    stored[np.triu_indices(n, 1)] = np.nan
    V = rng.normal(size=(n, k)).astype(dtype)
    out = _blas.symm_lower(stored, V)
    assert out.dtype == dtype and out.shape == (n, k) and out.flags.f_contiguous
    expected = A.astype(dtype).astype(np.float64) @ V.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.abs(out - expected).max() <= tol * (np.abs(A).sum(axis=1).max() * np.abs(V).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cholesky_upper_in_place_reads_and_writes_one_triangle(dtype):
    """The solvers' factorization of a C-ordered matrix built one triangle at a time: the
    factor of the symmetric matrix the upper triangle stands for (against numpy), the
    strict lower triangle (NaN here) neither read nor written; not positive definite
    raises LinAlgError."""
    from gramfree.linalg import cholesky_upper_in_place

    rng = np.random.default_rng(4)
    n = 2300  # past the 2048-row potrf leaf: the recursion's trsm and syrk run too
    B = rng.normal(size=(n, 40))
    A = B @ B.T / 40 + np.eye(n)
    stored = A.astype(dtype)
    stored[np.tril_indices(n, -1)] = np.nan
    L = cholesky_upper_in_place(stored)
    assert np.shares_memory(L, stored) and L.flags.f_contiguous
    lower = np.tril(np.nan_to_num(L, nan=0.0))
    assert np.isnan(L[np.triu_indices(n, 1)]).all()  # stored's strict lower, untouched
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(lower, np.linalg.cholesky(A), rtol=0, atol=tol)
    bad = -np.eye(3, dtype=dtype)
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_upper_in_place(bad)


def test_blas_products_refuse_mismatched_shapes():
    """matmul returned a (3, 5) result for (3, 4) @ (2, 5), and symm_lower zeros for a
    3 x 3 A with a 5-row B: BLAS only printed "illegal value" to stderr, and the
    unwritten output came back as the answer (a review). Both raise, as numpy's @ does."""
    from gramfree import _blas

    with pytest.raises(ValueError, match="matmul: shapes"):
        _blas.matmul(np.ones((3, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="symm_lower: A of shape"):
        _blas.symm_lower(np.asfortranarray(np.eye(3)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="symm_lower: A of shape"):
        _blas.symm_lower(np.asfortranarray(np.eye(3)), np.ones((5, 20)))

"""gramfree.linalg: the blocked Cholesky against numpy's, the jittered Cholesky, the
triangular solves, and (slow) a 20000 x 20000 factorization that must not crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

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


def test_triangular_solves():
    A = _spd(80, np.float64)
    L = np.linalg.cholesky(A)
    B = np.random.default_rng(2).normal(size=(80, 3))
    np.testing.assert_allclose(L @ linalg.solve_triangular(L, B), B, atol=1e-10)
    np.testing.assert_allclose(L.T @ linalg.solve_triangular(L, B, trans=True), B, atol=1e-10)
    np.testing.assert_allclose(linalg.cho_solve(L, B), np.linalg.solve(A, B), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_large_kernel_matrix_factorization_does_not_crash():
    """n = 20000: where scipy's multi-threaded potrf crashes on some machines. Run in a
    subprocess so that a segfault is a failure, not the end of the test session."""
    script = textwrap.dedent(
        """
        import numpy as np
        import gramfree
        from gramfree import linalg

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
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "residual" in proc.stdout

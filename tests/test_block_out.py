"""``KernelOperator.to_dense(out=...)``: the kernel block written into the caller's array
(reused by the one-pass Nystrom solver across blocks), including the widening case
(float32 values stored into float64), against the block without ``out`` and a float64
numpy reference; and every bad ``out`` refused with a message naming it."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from gramfree import KernelOperator
from gramfree.kernels import Gaussian, Laplacian, Matern, Polynomial


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    m=st.integers(1, 90),
    d=st.integers(1, 20),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_out_equals_fresh_block(n, m, d, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    Z = rng.normal(size=(m, d)).astype(dtype)
    K = KernelOperator(X, Z, Gaussian(0.3))
    out = np.full((n, m), np.nan, dtype=dtype)
    assert K.to_dense(out=out) is out
    np.testing.assert_array_equal(out, K.to_dense())


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 2500),
    m=st.integers(1, 700),
    seed=st.integers(0, 2**16),
    kernel=st.sampled_from(
        [
            Matern(nu=1.5, length_scale=2.0),
            Gaussian(0.3),
            Laplacian(0.2),
            Polynomial(degree=3, gamma=0.1, coef0=1.0),
        ]
    ),
)
def test_float32_values_widened_into_float64(n, m, seed, kernel):
    """Computed in float32 and widened as the engine stores them (every epilogue; few rows
    and many columns split Z between threads): exactly the float32 block's values, in
    float64."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    Z = rng.normal(size=(m, 5)).astype(np.float32)
    K = KernelOperator(X, Z, kernel)
    out = np.full((n, m), np.nan)
    K.to_dense(out=out)
    np.testing.assert_array_equal(out, K.to_dense().astype(np.float64))
    ref.assert_rel_close(
        out,
        ref.kernel_matrix(K.kernel, X.astype(np.float64), Z.astype(np.float64)),
        1e-5,
        what="widened",
    )


@pytest.mark.parametrize("n, m, d", [(3, 20000, 5), (5, 3000, 600), (300, 300, 30)])
def test_float32_widened_where_threads_split_z_or_rows(n, m, d):
    """Shapes with enough work for two threads: few rows (the threads split the chunks of
    Z, each storing its columns widened) and many rows (they split the rows)."""
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Z = rng.normal(size=(m, d)).astype(np.float32)
    for kernel in (Gaussian(0.5 / d), Matern(nu=2.5, length_scale=float(d))):
        K = KernelOperator(X, Z, kernel, n_jobs=2)
        out = np.full((n, m), np.nan)
        K.to_dense(out=out)
        np.testing.assert_array_equal(out, K.to_dense().astype(np.float64))


def test_out_reused_across_row_blocks_of_a_view():
    """The solver's pattern: the leading rows of one buffer, block after block."""
    rng = np.random.default_rng(0)
    X, Z = rng.normal(size=(1000, 4)), rng.normal(size=(30, 4))
    buf = np.empty((300, 30))
    parts = []
    for r0 in range(0, 1000, 300):
        Xb = np.ascontiguousarray(X[r0 : r0 + 300])
        parts.append(KernelOperator(Xb, Z, Gaussian(0.5)).to_dense(out=buf[: Xb.shape[0]]).copy())
    np.testing.assert_array_equal(np.vstack(parts), KernelOperator(X, Z, Gaussian(0.5)).to_dense())


def _op(dtype=np.float64):
    rng = np.random.default_rng(1)
    return KernelOperator(
        rng.normal(size=(20, 3)).astype(dtype), rng.normal(size=(7, 3)).astype(dtype), Gaussian(1.0)
    )


@pytest.mark.parametrize(
    ("make_out", "exc", "match"),
    [
        (lambda: np.empty((20, 8)), ValueError, r"out: expected shape \(20, 7\)"),
        (lambda: np.empty(140), ValueError, r"out: expected shape"),
        (lambda: np.empty((7, 20)).T, ValueError, "out: must be C-contiguous"),
        (lambda: np.empty((20, 7), dtype=np.float32), TypeError, "out: dtype"),
        (lambda: np.empty((20, 7), dtype=np.int64), TypeError, "out: dtype"),
        (lambda: [[0.0] * 7] * 20, TypeError, "out: must be a numpy array"),
    ],
)
def test_bad_out_is_refused(make_out, exc, match):
    with pytest.raises(exc, match=match):
        _op().to_dense(out=make_out())


def test_read_only_out_is_refused():
    out = np.empty((20, 7))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: must be writeable"):
        _op().to_dense(out=out)


def test_out_sharing_memory_with_inputs_is_refused():
    K = KernelOperator(np.random.default_rng(2).normal(size=(7, 7)), None, Gaussian(1.0))
    with pytest.raises(ValueError, match="out: shares memory with X or Z"):
        K.to_dense(out=K.X)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 120),
    m=st.integers(1, 90),
    r0=st.integers(0, 40),
    c0=st.integers(0, 40),
    extra=st.integers(0, 30),
    widened=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_out_as_a_row_strided_view_writes_only_the_view(n, m, r0, c0, extra, widened, dtype, seed):
    """A block written into part of a larger C-ordered matrix (rows ``c0 + m + extra``
    apart): the view holds exactly the block's values, everything around it is untouched."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(dtype)
    Z = rng.normal(size=(m, 6)).astype(dtype)
    K = KernelOperator(X, Z, Gaussian(0.4))
    big = np.full((r0 + n + 3, c0 + m + extra), np.nan, np.float64 if widened else dtype)
    view = big[r0 : r0 + n, c0 : c0 + m]
    assert K.to_dense(out=view) is view
    expected = K.to_dense()
    np.testing.assert_array_equal(view, expected.astype(big.dtype))
    outside = np.ones(big.shape, dtype=bool)
    outside[r0 : r0 + n, c0 : c0 + m] = False
    assert np.isnan(big[outside]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d, rows", [(700, 5, 128), (301, 40, 64), (97, 3, 200)])
def test_upper_triangle_filled_block_row_by_block_row(n, d, rows, dtype):
    """The direct solver's pattern: block row ``[r0, r1)`` of ``K(X, X)`` from column
    ``r0`` on, into ``A[r0:r1, r0:]``: the upper triangle (and the diagonal blocks) equals
    the whole block's, against a float64 reference, and the rest is never written."""
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, d)).astype(dtype)
    A = np.full((n, n), np.nan, dtype=dtype)
    kernel = Gaussian(0.5 / d)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        KernelOperator(X[r0:r1], X[r0:], kernel, n_jobs=2).to_dense(out=A[r0:r1, r0:])
    upper = np.triu(np.ones((n, n), dtype=bool))
    full = KernelOperator(X, None, kernel).to_dense()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    ref.assert_rel_close(A[upper], full[upper], tol, what="upper triangle")
    exact = ref.kernel_matrix(kernel, X.astype(np.float64), X.astype(np.float64))
    ref.assert_rel_close(A[upper], exact[upper], tol, what="upper triangle against float64")
    below_blocks = np.tril(np.ones((n, n), dtype=bool), -1)
    for r0 in range(0, n, rows):
        below_blocks[r0 : r0 + rows, r0 : r0 + rows] = False
    assert np.isnan(A[below_blocks]).all()


@pytest.mark.parametrize(
    ("make_out", "match"),
    [
        (lambda: np.empty((20, 14))[:, ::2], "out: must be C-contiguous, or a view"),
        (lambda: np.empty((20, 7))[::-1], "out: must be C-contiguous, or a view"),
        (lambda: np.empty((40, 7))[::2], None),  # rows 14 apart: a valid view
    ],
)
def test_strided_out_layouts(make_out, match):
    out = make_out()
    if match is None:
        np.testing.assert_array_equal(_op().to_dense(out=out), _op().to_dense())
    else:
        with pytest.raises(ValueError, match=match):
            _op().to_dense(out=out)


def test_strided_out_overlapping_the_inputs_is_refused():
    """The span of a strided view, not only its first row, is checked against X and Z."""
    flat = np.zeros(400)
    out = flat.reshape(20, 20)[:5, :5]  # elements 0-4, 20-24, ..., 80-84 of flat
    Xc = flat[300:315].reshape(5, 3)  # past the view's span: allowed
    Xi = flat[26:41].reshape(5, 3)  # within the span, between and across its rows
    np.testing.assert_array_equal(
        KernelOperator(Xc, None, Gaussian(1.0)).to_dense(out=out),
        KernelOperator(Xc.copy(), None, Gaussian(1.0)).to_dense(),
    )
    with pytest.raises(ValueError, match="out: shares memory with X or Z"):
        KernelOperator(Xi, None, Gaussian(1.0)).to_dense(out=out)

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

"""The logistic solver's stored kernel block (gramfree.solvers._stored_columns) and its
float32 storage, against float64 numpy references:

* StoredColumns' products on random matrices (hypothesis: shapes, chunks, dtypes): float64
  arithmetic on the stored values, whatever their dtype;
* the float32 block built a chunk of rows at a time equals the float64 kernel rounded;
* the solver with K_nM beyond the float64 budget (kept in float32, or recomputed beyond
  the float32 one) against the float64 fit, on wide kernels with small penalties, where
  the intercepts' elimination cancels most of each Hessian product: products in float32
  arithmetic (tried, and dropped) ended the binary cases 1e-3 to 44x above the optimum;
  the 10-class cases are less sensitive (4e-5).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.metrics.pairwise import rbf_kernel

from gramfree import KernelClassifier, KernelOperator
from gramfree.solvers import Problem, _stored_columns, logistic
from gramfree.solvers._stored_columns import StoredColumns, stored_kernel_block


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 120),
    M=st.integers(1, 30),
    k=st.integers(1, 5),
    rows=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_products_are_float64_on_the_stored_values(n, M, k, rows, dtype, seed):
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((n, M)).astype(dtype)
    op = StoredColumns(K)
    op.chunk_rows = rows  # several chunks, a partial last one
    K64 = K.astype(np.float64)  # the stored values, exactly
    V, U = rng.standard_normal((M, k)), rng.standard_normal((n, k))
    w = rng.uniform(0.0, 2.0, size=n)
    tol = dict(rtol=1e-12, atol=1e-12 * (1 + np.abs(K64).sum()))
    np.testing.assert_allclose(op @ V, K64 @ V, **tol)
    np.testing.assert_allclose(op.rmatmat(U), K64.T @ U, **tol)
    np.testing.assert_allclose(op.normal_matvec(V, w), K64.T @ (w[:, None] * (K64 @ V)), **tol)
    G = op.weighted_gram(w)
    np.testing.assert_allclose(G, K64.T @ (w[:, None] * K64), rtol=1e-12, atol=1e-12 * n * M)
    np.testing.assert_array_equal(G, G.T)
    for result in (op @ V, op.rmatmat(U), G):
        assert result.dtype == np.float64
    np.testing.assert_array_equal(K, K64.astype(dtype))  # the inputs were not modified


def test_refuses_what_it_cannot_store():
    with pytest.raises(ValueError, match="K"):
        StoredColumns(np.zeros((4, 3), order="F"))
    with pytest.raises(ValueError, match="K"):
        StoredColumns(np.zeros((4, 3), dtype=np.int64))


def test_float32_block_is_the_rounded_float64_kernel(monkeypatch):
    """Built a chunk of rows at a time (so the float64 matrix is never whole): each value
    is the float64 kernel's, rounded once."""
    X, _ = load_digits(return_X_y=True)
    X, C = X[:300] / 16.0, X[300:340] / 16.0
    kernel = KernelClassifier(gamma=0.05)._make_kernel()
    problem = Problem(X, np.zeros((300, 1)), kernel, 1.0, None, None)
    monkeypatch.setattr(_stored_columns, "CHUNK_BYTES", 8 * 40 * 7)  # 7 rows per chunk
    K32 = stored_kernel_block(problem, X, C, np.float32)
    assert K32.dtype == np.float32 and K32.flags.c_contiguous
    np.testing.assert_array_equal(K32, rbf_kernel(X, C, gamma=0.05).astype(np.float32))


def test_float32_kernel_kept_in_float64_is_widened_in_place(monkeypatch):
    """float32 data's kernel kept in float64: the float32 kernel values, widened exactly,
    written into the kept array by the operator (no float32 copy to convert)."""
    X, _ = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(np.float32)
    C = X[200:240]
    kernel = KernelClassifier(gamma=0.05)._make_kernel()
    problem = Problem(X, np.zeros((300, 1)), kernel, 1.0, None, None)
    assert problem.kernel_dtype == np.float32
    outs = []
    original = KernelOperator.to_dense

    def recorded(self, out=None):
        outs.append(out)
        return original(self, out=out)

    monkeypatch.setattr(KernelOperator, "to_dense", recorded)
    K64 = stored_kernel_block(problem, X, C, np.float64)
    assert len(outs) == 1 and outs[0] is K64  # the kept array itself was written
    monkeypatch.setattr(KernelOperator, "to_dense", original)
    assert K64.dtype == np.float64 and K64.flags.c_contiguous
    K32 = problem.operator(X, C).to_dense()
    assert K32.dtype == np.float32
    np.testing.assert_array_equal(K64, K32.astype(np.float64))
    assert not np.array_equal(
        K64, rbf_kernel(X.astype(np.float64), C.astype(np.float64), gamma=0.05)
    )


@pytest.mark.parametrize(
    "n_classes, gamma, alpha",
    [(10, 0.02, 1e-6), (10, 0.005, 1e-4), (2, 0.02, 1e-6), (2, 0.005, 1e-4)],
)
def test_float64_data_beyond_the_float64_budget(monkeypatch, n_classes, gamma, alpha):
    """K_nM kept in float32 (said in solver_info_) reaches the float64 fit's optimum on wide
    kernels with small penalties, with as many Newton steps give or take a few and no
    warning the float64 fit does not give; beyond the float32 budget too (recomputed)."""
    X, y = load_digits(return_X_y=True)
    X, y = np.ascontiguousarray(X / 16.0), (y if n_classes == 10 else y % 2)
    common = dict(gamma=gamma, alpha=alpha, n_centers=300, random_state=0, loss="logistic")

    def fit():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = KernelClassifier(**common).fit(X, y)
        return model, [type(w.message) for w in caught]

    reference, reference_warnings = fit()
    assert reference.solver_info_["stored_kernel_columns"] == "float64"
    for budget, stored in ((6.0, "float32"), (3.0, False)):
        monkeypatch.setattr(logistic, "CACHE_BYTES", budget * len(y) * 300)
        model, caught = fit()
        assert model.solver_info_["stored_kernel_columns"] == stored
        assert caught == reference_warnings
        objective = model.solver_info_["objective"]
        assert objective == pytest.approx(reference.solver_info_["objective"], rel=2e-4)
        assert abs(model.n_iter_ - reference.n_iter_) <= 3
        np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_kernel_values_beyond_float32_are_recomputed(monkeypatch):
    """A kernel whose values overflow float32 is not kept in float32 (inf would enter every
    product): the fit recomputes it in float64 instead, as it does beyond both budgets."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3)) * 1e7  # (x . z)^3 ~ 1e43: beyond float32, not float64
    y = (X[:, 0] > 0).astype(int)
    common = dict(
        kernel="poly",
        degree=3,
        gamma=1.0,
        coef0=0.0,
        alpha=1.0,
        n_centers=20,
        random_state=0,
        loss="logistic",
        max_iter=2,
    )
    monkeypatch.setattr(logistic, "CACHE_BYTES", 6.0 * 200 * 20)  # float32 would fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit itself is hopeless; what is kept is not
        model = KernelClassifier(**common).fit(X, y)
    assert model.solver_info_["stored_kernel_columns"] is False

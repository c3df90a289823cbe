"""The logistic solver's stored kernel block (gramfree.solvers._stored_columns) and its
float32 path, against float64 numpy references:

* StoredColumns' products on random matrices (hypothesis: shapes, blocks, threads,
  dtypes, both curvatures): ``K V`` and ``K^T U`` accumulated in float64 from the stored
  values, the one-pass ``K^T S(K V)`` in the stored dtype's arithmetic;
* the solver with K stored in float32 (float32 kernel, or float64 data beyond the float64
  budget), with and without the one-pass multinomial products, against the float64 fit
  and the dense Newton reference of tests/test_logistic.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics.pairwise import rbf_kernel
from test_logistic import TIGHT, _probabilities, _reference

from gramfree import KernelClassifier
from gramfree.solvers import logistic
from gramfree.solvers._stored_columns import StoredColumns


def _softmax_curvature(P, w, U):
    return w[:, None] * P * (U - np.sum(P * U, axis=1, keepdims=True))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 150),
    M=st.integers(1, 40),
    k=st.integers(1, 6),
    rows=st.integers(1, 50),
    threads=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    softmax=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_products_match_float64_references(n, M, k, rows, threads, dtype, softmax, seed):
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((n, M)).astype(dtype)
    op = StoredColumns(K, threads, rows=rows)
    K64 = K.astype(np.float64)  # the stored values, exactly
    V, U = rng.standard_normal((M, k)), rng.standard_normal((n, k))
    # Accumulated in float64 whatever the stored dtype: float64 rounding only.
    np.testing.assert_allclose(op @ V, K64 @ V, rtol=1e-12, atol=1e-12 * np.abs(K64).sum())
    np.testing.assert_allclose(op.rmatmat(U), K64.T @ U, rtol=1e-12, atol=1e-12 * np.abs(K64).sum())
    if softmax:
        P = rng.dirichlet(np.ones(k), size=n)
        w = rng.uniform(0.0, 2.0, size=n)

        def curvature(first, Ub):
            return _softmax_curvature(P[first : first + len(Ub)], w[first : first + len(Ub)], Ub)

        W = _softmax_curvature(P, w, K64 @ V)
    else:
        D = rng.uniform(0.0, 1.0, size=(n, k))

        def curvature(first, Ub):
            return D[first : first + len(Ub)] * Ub

        W = D * (K64 @ V)
    HV, sums = op.curvature_product(V, curvature)
    assert HV.dtype == np.float64 and HV.shape == (M, k) and sums.shape == (k,)
    # Bounds from the sizes of the terms summed (float32: each product rounds at ~6e-8).
    eps = 1e-12 if dtype == np.float64 else 1e-5
    scale = np.abs(K64).T @ (np.abs(K64) @ np.abs(V)) + 1e-300
    assert np.all(np.abs(HV - K64.T @ W) <= eps * scale * max(1, k))
    assert np.all(np.abs(sums - W.sum(axis=0)) <= eps * scale.sum() * max(1, k))
    again = op.curvature_product(V, curvature)
    np.testing.assert_array_equal(again[0], HV)  # a fixed order of summation
    np.testing.assert_array_equal(again[1], sums)


def test_refuses_what_it_cannot_store():
    with pytest.raises(ValueError, match="K"):
        StoredColumns(np.zeros((4, 3), dtype=np.float64, order="F"), 1)
    with pytest.raises(ValueError, match="K"):
        StoredColumns(np.zeros((4, 3), dtype=np.int64), 1)


def _digits(n_classes=10, rows=slice(0, 300)):
    X, y = load_digits(n_class=n_classes, return_X_y=True)
    return np.ascontiguousarray(X[rows] / 16.0), y[rows]


@pytest.mark.parametrize("n_classes", [2, 10])
def test_float32_kernel_matches_the_dense_reference(n_classes):
    """kernel_precision='float32': K stored in float32, the Newton quantities accumulated
    in float64, CG's products in float32 (one pass): the dense float64 Newton solution to
    float32 accuracy, and the float64 fit's to the same."""
    X, y = _digits(n_classes=n_classes)
    gamma, alpha = 0.05, 0.01
    common = dict(gamma=gamma, alpha=alpha, n_centers=120, random_state=0, **TIGHT)
    clf32 = KernelClassifier(kernel_precision="float32", **common).fit(X, y)
    clf64 = KernelClassifier(**common).fit(X, y)
    assert clf32.solver_info_["stored_kernel_columns"] == "float32"
    assert clf64.solver_info_["stored_kernel_columns"] == "float64"
    assert clf64.solver_info_["fused_steps"] == 0  # float64: BLAS's pair of products
    if n_classes > 2:  # the one-pass products with the coupling C were used
        assert clf32.solver_info_["fused_steps"] > 0
    C = X[clf32.center_indices_]
    codes = np.searchsorted(clf32.classes_, y)
    a = _reference(
        rbf_kernel(X, C, gamma=gamma),
        rbf_kernel(C, gamma=gamma),
        codes,
        n_classes,
        alpha,
        np.ones(len(y)),
    )
    Xt = _digits(n_classes, slice(300, 360))[0]
    P_ref = _probabilities(rbf_kernel(Xt, C, gamma=gamma) @ a[:-1] + a[-1])
    np.testing.assert_allclose(clf64.predict_proba(Xt), P_ref, atol=1e-6)
    np.testing.assert_allclose(clf32.predict_proba(Xt), P_ref, atol=1e-4)


def test_one_pass_products_do_not_change_the_solution(monkeypatch):
    """The multinomial one-pass products (with the coupling C formed) and the pair of
    products reach the same optimum."""
    X, y = _digits()
    common = dict(
        gamma=0.05, alpha=0.01, n_centers=150, random_state=0, kernel_precision="float32", **TIGHT
    )
    fused = KernelClassifier(**common).fit(X, y)
    monkeypatch.setattr(logistic, "FUSED_COLUMNS_PER_CG", 0)
    pair = KernelClassifier(**common).fit(X, y)
    assert fused.solver_info_["fused_steps"] > 0 and pair.solver_info_["fused_steps"] == 0
    np.testing.assert_allclose(fused.predict_proba(X), pair.predict_proba(X), atol=1e-5)
    assert fused.solver_info_["objective"] == pytest.approx(
        pair.solver_info_["objective"], rel=1e-7
    )


@pytest.mark.parametrize("budget, stored", [(6.0, "float32"), (3.0, False)])
def test_float64_data_beyond_the_float64_budget(monkeypatch, budget, stored):
    """float64 data whose K_nM exceeds the float64 budget: kept in float32 where that fits
    (said in solver_info_), recomputed on every pass where it does not; the same model to
    float32 accuracy (float64's, exactly, when recomputed)."""
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    common = dict(gamma=0.03, alpha=0.1, n_centers=100, random_state=0, **TIGHT)
    reference = KernelClassifier(**common).fit(X, y)
    monkeypatch.setattr(logistic, "CACHE_BYTES", budget * len(y) * 100)
    clf = KernelClassifier(**common).fit(X, y)
    assert clf.solver_info_["stored_kernel_columns"] == stored
    atol = 1e-4 if stored else 1e-6
    np.testing.assert_allclose(clf.predict_proba(X), reference.predict_proba(X), atol=atol)

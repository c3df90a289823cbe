"""The native one-pass curvature product (``gramfree._core.curvature_product``, the logistic
solver's Hessian product with a stored K_nM) at the Python/C++ boundary, against numpy in
float64: hypothesis draws the shapes, storage dtype, row padding, curvature kind and
threads; bad arguments get exceptions naming them; the logistic fits that use it (one pass
with the intercepts' coupling tensor) equal those that take two BLAS passes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from gramfree import KernelClassifier, _core
from gramfree.solvers import _hessian_sample, _stored_columns, logistic
from gramfree.solvers._stored_columns import StoredColumns


def reference(K, V, w, P=None, z=None):
    K = K.astype(np.float64)
    U = K @ V
    if P is None:
        return K.T @ (w[:, None] * U)
    T = U - (0.0 if z is None else z)
    return K.T @ (w[:, None] * P * (T - np.sum(P * T, axis=1, keepdims=True)))


def simd_levels():
    """The instruction sets this processor runs, the engine's ladder up to the detected one."""
    names = ["scalar", "avx2", "avx512"]
    return names[: names.index(_core.detected_simd_level()) + 1]


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 90),
    M=st.integers(1, 40),
    k=st.integers(1, 14),
    pad=st.integers(0, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    mode=st.sampled_from(["weights", "softmax", "softmax+shift"]),
    threads=st.sampled_from([0, 1, 2, 3]),
    seed=st.integers(0, 2**16),
)
def test_matches_numpy_float64(n, M, k, pad, dtype, mode, threads, seed):
    rng = np.random.default_rng(seed)
    wide = rng.standard_normal((n, M + pad)).astype(dtype)
    K = wide[:, :M]  # rows of unit stride, row stride M + pad
    V = rng.standard_normal((M, k))
    w = rng.uniform(0.0, 2.0, size=n)
    P = rng.dirichlet(np.ones(k), size=n) if mode != "weights" else None
    z = rng.standard_normal(k) if mode == "softmax+shift" else None
    copies = [a.copy() for a in (K, V, w) + tuple(x for x in (P, z) if x is not None)]
    got = _core.curvature_product(K, V, w, P, z, n_threads=threads)
    want = reference(K, V, w, P, z)
    assert got.shape == (M, k) and got.dtype == np.float64
    scale = 1.0 + np.abs(K.astype(np.float64)).sum() * np.abs(V).max()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * scale)
    for before, after in zip(copies, [K, V, w] + [x for x in (P, z) if x is not None]):
        np.testing.assert_array_equal(before, after)  # nothing the caller gave is modified


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 70),
    used=st.integers(0, 90),
    M=st.integers(1, 30),
    k=st.integers(1, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    mode=st.sampled_from(["weights", "softmax", "softmax+shift"]),
    threads=st.sampled_from([0, 1, 3]),
    index_dtype=st.sampled_from([np.int64, np.int32, np.uint32, np.intp]),
    seed=st.integers(0, 2**16),
)
def test_rows_subset_is_the_product_of_those_rows(
    n, used, M, k, dtype, mode, threads, index_dtype, seed
):
    """``rows=``: the product over K[rows] (any order, repeats), with w and P one row per
    index, equal to the product of the copied rows (numpy in float64)."""
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((n, M)).astype(dtype)
    rows = rng.integers(0, n, size=used).astype(index_dtype)
    V, w = rng.standard_normal((M, k)), rng.uniform(0.0, 2.0, size=used)
    P = rng.dirichlet(np.ones(k), size=used) if mode != "weights" else None
    z = rng.standard_normal(k) if mode == "softmax+shift" else None
    saved = rows.copy()
    got = _core.curvature_product(K, V, w, P, z, rows=rows, n_threads=threads)
    want = reference(K[rows], V, w, P, z)
    scale = 1.0 + np.abs(K[rows].astype(np.float64)).sum() * np.abs(V).max()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * scale)
    np.testing.assert_array_equal(rows, saved)


def test_bad_rows_are_named():
    K, V = np.ones((5, 3)), np.ones((3, 2))
    for rows, error in [
        (np.array([5]), ValueError),  # outside K's rows
        (np.array([-1]), ValueError),
        (np.array([2**40]), ValueError),
        (np.array([[1]]), ValueError),
        (np.array([1.0]), TypeError),
        (np.array(["1"]), TypeError),
    ]:
        with pytest.raises(error, match="rows"):
            _core.curvature_product(K, V, np.ones(rows.size), rows=rows)
    with pytest.raises(ValueError, match="w"):  # w has one row per index, not per K's row
        _core.curvature_product(K, V, np.ones(5), rows=np.array([0, 1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("native", [True, False])
def test_stored_columns_subset_equals_the_copied_rows(monkeypatch, dtype, native):
    """Every product of ``StoredColumns.subset(rows)`` (read by index: the native pass, the
    BLAS products by gathered chunks) equals the operator over the copied rows ``K[rows]``,
    including chunks smaller than the subset."""
    monkeypatch.setattr(_stored_columns, "NATIVE_CURVATURE", native)
    monkeypatch.setattr(_stored_columns, "CHUNK_BYTES", 8 * 23 * 7)  # 7-row chunks
    rng = np.random.default_rng(3)
    K = rng.standard_normal((120, 23)).astype(dtype)
    rows = rng.integers(0, 120, size=50)
    sub = StoredColumns(K).subset(rows, by_index=native)
    copied = StoredColumns(np.ascontiguousarray(K[rows]))
    assert (sub.K is K) == native  # by index beside the native pass, else copied once
    if not native:  # the by-index operator's BLAS products too (gathered chunks)
        sub = StoredColumns(K, row_index=rows)
    V, U = rng.standard_normal((23, 4)), rng.standard_normal((50, 4))
    w, P, z = rng.uniform(size=50), rng.dirichlet(np.ones(4), size=50), rng.standard_normal(4)
    pairs = [
        (sub @ V, copied @ V),
        (sub.rmatmat(U), copied.rmatmat(U)),
        (sub.rmatmat_rows(4, lambda a, b: U[a:b]), copied.rmatmat_rows(4, lambda a, b: U[a:b])),
        (sub.curvature_product(V, w, P, z), copied.curvature_product(V, w, P, z)),
        (sub.normal_matvec(V, w), copied.normal_matvec(V, w)),
        (sub.weighted_gram(w), copied.weighted_gram(w)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert sub.n == 50 and sub.K is K
    for bad in ([120], [-1], np.ones(120, bool), [1.0, 2.0], [[1, 2]]):
        with pytest.raises(ValueError, match="rows"):
            StoredColumns(K, row_index=np.array(bad))
        with pytest.raises(ValueError, match="rows"):
            StoredColumns(K).subset(np.array(bad), by_index=native)
    # A subset of a subset: its rows index the first subset's.
    inner = rng.integers(0, 50, size=9)
    nested = sub.subset(inner, by_index=native)
    np.testing.assert_allclose(nested @ V, K[rows[inner]].astype(np.float64) @ V, rtol=1e-12)


@pytest.mark.parametrize("level", simd_levels())
def test_every_instruction_set(level):
    rng = np.random.default_rng(1)
    K = rng.standard_normal((203, 77))
    V, w = rng.standard_normal((77, 7)), rng.uniform(size=203)
    P, z = rng.dirichlet(np.ones(7), size=203), rng.standard_normal(7)
    saved = _core.simd_level()
    try:
        _core.set_simd_level(level)
        for K_stored in (K, K.astype(np.float32)):
            got = _core.curvature_product(K_stored, V, w, P, z, n_threads=2)
            np.testing.assert_allclose(got, reference(K_stored, V, w, P, z), rtol=1e-12, atol=1e-11)
    finally:
        _core.set_simd_level(saved)


@pytest.mark.parametrize("n, M, k", [(3001, 50, 3), (9, 3000, 13), (17, 2000, 11)])
def test_threaded_products(n, M, k):
    """Above the one-thread bound (n M k >= 2^18): every thread count (0: OpenMP's default;
    more threads than 8-row blocks for the few-row shapes) against numpy, and against
    each other to rounding."""
    rng = np.random.default_rng(n)
    K = rng.standard_normal((n, M))
    V, w = rng.standard_normal((M, k)), rng.uniform(size=n)
    P, z = rng.dirichlet(np.ones(k), size=n), rng.standard_normal(k)
    want = reference(K, V, w, P, z)
    for threads in (0, 1, 2, 3, 5):
        got = _core.curvature_product(K, V, w, P, z, n_threads=threads)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_empty_shapes():
    """No rows: zeros; no centres or no classes: an empty result."""
    V, z = np.ones((4, 2)), np.ones(2)
    out = _core.curvature_product(np.ones((0, 4)), V, np.ones(0), np.ones((0, 2)), z)
    np.testing.assert_array_equal(out, np.zeros((4, 2)))
    assert _core.curvature_product(np.ones((3, 0)), np.ones((0, 2)), np.ones(3)).shape == (0, 2)
    assert _core.curvature_product(np.ones((3, 4)), np.ones((4, 0)), np.ones(3)).shape == (4, 0)


def test_bad_arguments_are_named():
    K, V, w = np.ones((5, 3)), np.ones((3, 2)), np.ones(5)
    P = np.full((5, 2), 0.5)
    cases = [
        (dict(K=np.ones(5)), ValueError, "K"),
        (dict(K=np.ones((5, 3), order="F")), ValueError, "K"),
        (dict(K=np.ones((5, 3), dtype=np.int64)), TypeError, "K"),
        (dict(V=np.ones((4, 2))), ValueError, "V"),
        (dict(V=np.ones(3)), ValueError, "V"),
        (dict(w=np.ones(4)), ValueError, "w"),
        (dict(P=np.ones((5, 3))), ValueError, "P"),
        (dict(P=P, z=np.ones(3)), ValueError, "z"),
        (dict(z=np.ones(2)), ValueError, "z"),
        (dict(V=np.array([["a", "b"]] * 3)), TypeError, "V"),
        (dict(w=np.array(["x"] * 5)), TypeError, "w"),
    ]
    for change, error, name in cases:
        args = dict(K=K, V=V, w=w, P=None, z=None) | change
        with pytest.raises(error, match=name):
            _core.curvature_product(args["K"], args["V"], args["w"], args["P"], args["z"])
    with pytest.raises(ValueError, match="n_threads"):
        _core.curvature_product(K, V, w, n_threads=-1)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 60),
    M=st.integers(1, 20),
    k=st.integers(1, 6),
    dtype=st.sampled_from([np.float32, np.float64]),
    mode=st.sampled_from(["weights", "softmax", "softmax+shift"]),
    seed=st.integers(0, 2**16),
)
def test_stored_columns_native_and_blas_agree(n, M, k, dtype, mode, seed):
    """StoredColumns.curvature_product by the native pass and by two BLAS products (its
    NATIVE_CURVATURE switch, which the benchmark's fits compare): the same product."""
    rng = np.random.default_rng(seed)
    op = StoredColumns(rng.standard_normal((n, M)).astype(dtype))
    op.chunk_rows = 7  # float32 K: several widened chunks in the BLAS route
    V, w = rng.standard_normal((M, k)), rng.uniform(size=n)
    P = rng.dirichlet(np.ones(k), size=n) if mode != "weights" else None
    z = rng.standard_normal(k) if mode == "softmax+shift" else None
    native = op.curvature_product(V, w, P, z)
    try:
        _stored_columns.NATIVE_CURVATURE = False
        blas = op.curvature_product(V, w, P, z)
    finally:
        _stored_columns.NATIVE_CURVATURE = True
    want = reference(op.K, V, w, P, z)
    scale = 1.0 + np.abs(op.K.astype(np.float64)).sum() * np.abs(V).max()
    for got in (native, blas):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * scale)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 60),
    M=st.integers(1, 20),
    width=st.integers(0, 30),
    chunk=st.integers(8, 2000),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_rmatmat_of_generated_rows(n, M, width, chunk, dtype, seed):
    """K^T U with U handed over a chunk of rows at a time (the coupling tensor's route,
    which never holds all of U): every chunk asked for once, in order, and the product
    equal to numpy's on the stored values."""
    rng = np.random.default_rng(seed)
    op = StoredColumns(rng.standard_normal((n, M)).astype(dtype))
    U = rng.standard_normal((n, width))
    asked = []

    def rows_of(r0, r1):
        asked.append((r0, r1))
        return U[r0:r1]

    saved = _stored_columns.CHUNK_BYTES
    try:
        _stored_columns.CHUNK_BYTES = chunk  # a few rows per chunk
        got = op.rmatmat_rows(width, rows_of)
    finally:
        _stored_columns.CHUNK_BYTES = saved
    want = op.K.astype(np.float64).T @ U
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * (1 + np.abs(U).sum()))
    if n and width:  # (nothing to ask for otherwise)
        assert asked[0][0] == 0 and asked[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(asked, asked[1:]))
        with pytest.raises(ValueError, match="rows_of"):
            op.rmatmat_rows(width, lambda r0, r1: U[r0:r1, :-1])


def test_coupling_tensor_and_shift():
    """The intercepts' coupling tensor T[m, c, d] = sum_i K_im S_i[c, d] against numpy
    (S_i = w_i (diag p_i - p_i p_i^T)), built a few rows at a time; and the shift z =
    B^+ C^T V it gives equals the one from K V, as the two-pass product computes it."""
    rng = np.random.default_rng(3)
    n, M, k = 97, 11, 5
    op = StoredColumns(rng.standard_normal((n, M)))
    P, w = rng.dirichlet(np.ones(k), size=n), rng.uniform(size=n)
    curvature = logistic._curvature(P, w)
    S = w[:, None, None] * (np.einsum("ic,cd->icd", P, np.eye(k)) - P[:, :, None] * P[:, None, :])
    saved = _stored_columns.CHUNK_BYTES
    try:
        _stored_columns.CHUNK_BYTES = 8 * 30 * M  # chunks of 30 rows
        T = logistic._coupling_tensor(op, curvature)
    finally:
        _stored_columns.CHUNK_BYTES = saved
    np.testing.assert_allclose(T, np.einsum("im,icd->mcd", op.K, S), rtol=1e-12, atol=1e-13)
    V = rng.standard_normal((M, k))
    inverse = curvature.intercept_inverse()
    from_tensor = inverse @ np.einsum("mcd,md->c", T, V)
    from_pass = inverse @ curvature.apply(op.K @ V).sum(axis=0)
    np.testing.assert_allclose(from_tensor, from_pass, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("whiten", [True, False])
def test_native_fits_equal_blas_fits(monkeypatch, n_classes, whiten):
    """CG's products by the native pass (for k classes the intercepts' shift from the
    coupling tensor) against two BLAS passes (the shift from K V): the same Newton iterates
    up to rounding (which CG's many iterations amplify to ~1e-8 of the objective at the
    default tol), so, run to the optimum, the same objective, predictions and
    probabilities; in K_nM's coefficients (with K_MM V natively too) and in whitened
    coordinates (no K_MM product: gramfree.solvers.logistic)."""
    import gramfree.solvers.logistic as solver

    monkeypatch.setattr(solver, "WHITEN", whiten)
    monkeypatch.setattr(solver, "WHITEN_CG", 1e12)
    X, y = load_digits(return_X_y=True)
    keep = y < max(n_classes, 3)
    X, y = np.ascontiguousarray(X[keep] / 16.0), y[keep] % n_classes
    common = dict(gamma=0.05, alpha=1e-4, n_centers=200, random_state=0, loss="logistic", tol=1e-12)
    calls = []
    original = _core.curvature_product

    def counted(*args, **kwargs):
        calls.append(args[0].shape[0])  # rows: the stored K_nM's n, or K_MM's factor's M
        return original(*args, **kwargs)

    monkeypatch.setattr(_core, "curvature_product", counted)
    # Every row in CG's products (1797 rows, 200 centres would sample them: that has its
    # own tests, tests/test_hessian_sample.py), so that each product is a pass over K_nM.
    monkeypatch.setattr(_hessian_sample, "MAX_SHARE", 0.0)
    native = KernelClassifier(**common).fit(X, y)
    assert native.solver_info_["stored_kernel_columns"] == "float64"
    info = native.solver_info_
    assert calls.count(len(y)) == info["cg_iterations"] + info["end_check_products"]
    assert info["cg_iterations"] > 0
    assert native.solver_info_["whitened"] is whiten
    if whiten:  # K_MM is the identity there
        assert calls.count(200) == 0
    else:
        assert calls.count(200) >= native.solver_info_["cg_iterations"]  # K_MM V too
    monkeypatch.setattr(_stored_columns, "NATIVE_CURVATURE", False)
    calls.clear()
    blas = KernelClassifier(**common).fit(X, y)
    assert not calls
    assert native.solver_info_["objective"] == pytest.approx(
        blas.solver_info_["objective"], rel=1e-10
    )
    assert abs(native.n_iter_ - blas.n_iter_) <= 1  # the same Newton steps, to rounding
    np.testing.assert_array_equal(native.predict(X), blas.predict(X))
    np.testing.assert_allclose(native.predict_proba(X), blas.predict_proba(X), atol=1e-7)
    if n_classes > 2:  # and without the native pass, as for more than ONE_PASS_CLASSES
        monkeypatch.setattr(_stored_columns, "NATIVE_CURVATURE", True)
        monkeypatch.setattr(logistic, "ONE_PASS_CLASSES", 0)
        two_pass = KernelClassifier(**common).fit(X, y)
        assert not calls  # K_nM's products by BLAS, and K_MM V beside them too
        assert two_pass.solver_info_["objective"] == pytest.approx(
            blas.solver_info_["objective"], rel=1e-10
        )

"""KernelOperator, kernel_matrix and kernel_gradient against the float64 references of
tests/reference.py: every kernel x dtype x operation, scipy interoperability, input
conversion (contiguity, read-only, dtypes), and gradients against finite differences."""

from __future__ import annotations

import inspect
import math
import zlib

import numpy as np
import pytest
import reference as ref
import strategies as S
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg, eigsh

from gramfree import KernelOperator, kernel_gradient, kernel_matrix
from gramfree.kernels import ArcCosine, Gaussian, Laplacian, Linear, Matern, Polynomial

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]
OPS = ["kernel_matrix", "matvec_k1", "matvec_k3", "matvec_wide", "rmatvec", "normal_matvec"]
# Right-hand side counts around the engine's switch to its micro-GEMM (half a vector: 2 to 8
# lanes) and its padding to whole vectors and register blocks (up to 2 x 16 lanes).
WIDE_K = [4, 5, 8, 9, 16, 17, 26, 33, 64, 70]


def run_op(op: str, kernel, X, Z, rng_or_vectors, wide_k: int = 26):
    """(library result, reference, magnitude scale) of one operation, with right-hand sides
    of the inputs' dtype; the reference sees the very same (possibly float32) values."""
    n, m = X.shape[0], Z.shape[0]
    dtype = X.dtype.type
    K = KernelOperator(X, Z, kernel)
    if op == "kernel_matrix":
        out = kernel_matrix(X, Z, kernel)
        return out, ref.kernel_matrix(kernel, X, Z), ref.magnitudes(kernel, op, X, Z)
    if op in ("matvec_k1", "matvec_k3", "matvec_wide"):
        V = rng_or_vectors(m, {"matvec_k1": 1, "matvec_k3": 3}.get(op, wide_k)).astype(dtype)
        return K @ V, ref.matvec(kernel, X, Z, V), ref.magnitudes(kernel, "matvec", X, Z, V)
    if op == "rmatvec":
        U = rng_or_vectors(n, 3).astype(dtype)
        return K.T @ U, ref.rmatvec(kernel, X, Z, U), ref.magnitudes(kernel, op, X, Z, U)
    if op == "normal_matvec":
        V = rng_or_vectors(m, 2).astype(dtype)
        return (
            K.normal_matvec(V),
            ref.normal_matvec(kernel, X, Z, V),
            ref.magnitudes(kernel, op, X, Z, V),
        )
    raise ValueError(op)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("family", list(S.KERNEL_FAMILIES))
@given(data=st.data())
def test_operation_matches_reference(family, dtype, op, data):
    kernel, X, Z = data.draw(S.problems(family))
    X, Z = X.astype(dtype), Z.astype(dtype)
    wide_k = data.draw(st.sampled_from(WIDE_K))
    out, expected, scale = run_op(op, kernel, X, Z, lambda r, c: data.draw(S.vectors(r, c)), wide_k)
    assert out.dtype == dtype
    ref.assert_rel_close(out, expected, RTOL[dtype], scale=scale, what=f"{kernel!r} {op}")


DEGENERATE_SHAPES = [
    (1, 1, 1),
    (1, 37, 1),
    (45, 1, 1),
    (1, 1, 40),
    (1, 70, 33),
    (70, 1, 17),
    (2, 3, 1),
    (17, 33, 1),
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("family", list(S.KERNEL_FAMILIES))
def test_degenerate_shapes(family, dtype, op):
    """n = 1, m = 1 and d = 1 (alone and together), always, not only when drawn."""
    rng = np.random.default_rng(zlib.crc32(f"{family}-{op}".encode()))
    kernel = {
        "gaussian": Gaussian(),
        "laplacian_l1": Laplacian(),
        "laplacian_l2": Laplacian(norm="l2"),
        "matern0.5": Matern(nu=0.5),
        "matern1.5": Matern(nu=1.5),
        "matern2.5": Matern(nu=2.5),
        "matern_inf": Matern(nu=math.inf, length_scale=1.5),
        "polynomial": Polynomial(degree=3, coef0=0.5),
        "linear": Linear(),
        "arccos": ArcCosine(),
    }[family]
    for n, m, d in DEGENERATE_SHAPES:
        X = rng.uniform(-3, 3, (n, d)).astype(dtype) / np.sqrt(d).astype(dtype)
        Z = rng.uniform(-3, 3, (m, d)).astype(dtype) / np.sqrt(d).astype(dtype)
        out, expected, scale = run_op(op, kernel, X, Z, lambda r, c: rng.normal(size=(r, c)))
        ref.assert_rel_close(out, expected, RTOL[dtype], scale=scale, what=f"{(n, m, d)}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
def test_larger_than_one_tile(dtype):
    """Past the engine's chunk of Z (a few thousand columns) and with several row panels
    per thread."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (150, 7)).astype(dtype)
    Z = rng.uniform(-1, 1, (7000, 7)).astype(dtype)
    # 2 right-hand sides (lane-wise path) and 26 (micro-GEMM, several kernel tiles per chunk).
    for k, kernel in [
        (2, Gaussian(gamma=0.7)),
        (26, Gaussian(gamma=0.7)),
        (2, Laplacian(norm="l2")),
        (26, Matern(nu=2.5)),
        (2, Polynomial(degree=2)),
    ]:
        V = rng.normal(size=(7000, k)).astype(dtype)
        U = rng.normal(size=(150, k)).astype(dtype)
        K = KernelOperator(X, Z, kernel)
        Kd, Ka = ref.kernel_matrix(kernel, X, Z), ref.magnitude_matrix(kernel, X, Z)
        Va, Ua = np.abs(V.astype(np.float64)), np.abs(U.astype(np.float64))
        ref.assert_rel_close(K @ V, Kd @ V, RTOL[dtype], scale=Ka @ Va, what="matvec")
        ref.assert_rel_close(K.T @ U, Kd.T @ U, RTOL[dtype], scale=Ka.T @ Ua, what="rmatvec")
        ref.assert_rel_close(
            K.normal_matvec(V),
            Kd.T @ (Kd @ V),
            RTOL[dtype],
            scale=Ka.T @ (Ka @ Va),
            what="normal_matvec",
        )
        ref.assert_rel_close(K.to_dense(), Kd, RTOL[dtype], scale=Ka, what="block")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("family", list(S.KERNEL_FAMILIES))
@given(data=st.data())
def test_normal_matvec_many_features(family, dtype, data):
    """d >= 64 takes the one-pass strip path of the normal operator (the stored strip
    multiplied both ways by the engine's dense micro-GEMM, any k; d = 63 the recomputing
    path), with and without sample weights; n and m past one 256-deep panel."""
    kernel = data.draw(S.KERNEL_FAMILIES[family])
    n, m = data.draw(S.sizes(1, 300)), data.draw(S.sizes(1, 300))
    d = data.draw(st.sampled_from([63, 64, 65, 96, 130]))
    k = data.draw(st.sampled_from([1, 3, 9, 32, 33, 70]))
    X = data.draw(S.matrices(n, d, scale=S.data_scale(kernel, d))).astype(dtype)
    Z = data.draw(S.matrices(m, d, scale=S.data_scale(kernel, d))).astype(dtype)
    V = data.draw(S.vectors(m, k)).astype(dtype)
    w = None
    if data.draw(st.booleans()):
        w = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).uniform(0, 2, n)
        w = w.astype(dtype)
    out = KernelOperator(X, Z, kernel).normal_matvec(V, sample_weight=w)
    Kd = ref.kernel_matrix(kernel, X, Z)
    Ka = ref.magnitude_matrix(kernel, X, Z)
    wd = np.ones(n) if w is None else w.astype(np.float64)
    expected = Kd.T @ (wd[:, None] * (Kd @ V))
    scale = Ka.T @ (np.abs(wd)[:, None] * (Ka @ np.abs(V.astype(np.float64))))
    # A product of two kernel matrices can leave float32's normal range (a degree-5
    # polynomial of 6e-5 is 1e-21, squared 1e-42): subnormals carry no relative accuracy.
    assume(dtype != np.float32 or scale.max() > 1e-30)
    assert out.dtype == dtype
    ref.assert_rel_close(out, expected, RTOL[dtype], scale=scale, what=f"{kernel!r} d={d} k={k}")


@pytest.mark.parametrize("d", [5, 80])
def test_normal_matvec_sample_weight(d):
    rng = np.random.default_rng(17)
    X, Z = rng.normal(size=(40, d)) / np.sqrt(d), rng.normal(size=(25, d)) / np.sqrt(d)
    V, w = rng.normal(size=(25, 2)), rng.uniform(0, 3, 40)
    kernel = Matern(nu=1.5)
    K = KernelOperator(X, Z, kernel)
    Kd = ref.kernel_matrix(kernel, X, Z)
    expected = Kd.T @ (w[:, None] * (Kd @ V))
    ref.assert_rel_close(
        K.normal_matvec(V, sample_weight=w),
        expected,
        1e-12,
        scale=Kd.T @ (w[:, None] * (Kd @ np.abs(V))),
    )
    # Unit weights are no weights; zero weights drop rows; 1-d V gives 1-d output.
    np.testing.assert_allclose(
        K.normal_matvec(V, sample_weight=np.ones(40)), K.normal_matvec(V), rtol=1e-14, atol=0
    )
    keep = np.arange(40) % 3 != 0
    w01 = keep.astype(np.float64)
    ref.assert_rel_close(
        K.normal_matvec(V, sample_weight=w01),
        KernelOperator(X[keep], Z, kernel).normal_matvec(V),
        1e-13,
    )
    assert K.normal_matvec(V[:, 0], sample_weight=w).shape == (25,)
    # Lists and integers are converted like any input.
    ref.assert_rel_close(K.normal_matvec(V, sample_weight=[2] * 40), 2 * K.normal_matvec(V), 1e-14)


@pytest.mark.parametrize("d", [3, 70])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
def test_gaussian_far_from_the_mean_of_z(dtype, d):
    """Clusters far from the mean of Z, a narrow bandwidth: the expansion around the mean
    would lose every digit in float32, so the library must switch to direct differences
    there (and stay right on the way; d = 70 also takes the normal operator's strip path)."""
    rng = np.random.default_rng(18)
    centre = np.zeros(d)
    centre[0] = 20.0
    Z = np.vstack(
        [
            centre + 0.3 * rng.normal(size=(30, d)) / np.sqrt(d),
            -centre + 0.3 * rng.normal(size=(30, d)) / np.sqrt(d),
        ]
    )
    X = centre + 0.3 * rng.normal(size=(25, d)) / np.sqrt(d)
    X, Z = X.astype(dtype), Z.astype(dtype)
    V = rng.normal(size=(60, 2)).astype(dtype)
    U = rng.normal(size=(25, 2)).astype(dtype)
    for gamma in (0.05, 0.5, 4.0):
        kernel = Gaussian(gamma=gamma)
        K = KernelOperator(X, Z, kernel)
        Kd = ref.kernel_matrix(kernel, X, Z)
        Va, Ua = np.abs(V.astype(np.float64)), np.abs(U.astype(np.float64))
        tol = RTOL[dtype]
        ref.assert_rel_close(K.to_dense(), Kd, tol, what=f"block gamma={gamma}")
        ref.assert_rel_close(K @ V, Kd @ V, tol, scale=Kd @ Va, what=f"matvec gamma={gamma}")
        ref.assert_rel_close(K.T @ U, Kd.T @ U, tol, scale=Kd.T @ Ua, what=f"rmatvec {gamma}")
        ref.assert_rel_close(
            K.normal_matvec(V),
            Kd.T @ (Kd @ V),
            tol,
            scale=Kd.T @ (Kd @ Va),
            what=f"normal gamma={gamma}",
        )
        # The same points near the origin give the same kernel: it only sees differences.
        shifted = kernel_matrix(X - X.mean(0), Z - X.mean(0), kernel)
        ref.assert_rel_close(
            shifted, Kd, 1e-3 if dtype == np.float32 else 1e-10, what="translation"
        )
    # The gradient, on points away from one another (the gradient's own accuracy near
    # coincident points is tested below).
    kernel = Gaussian(gamma=0.5)
    ref.assert_rel_close(
        kernel_gradient(X, Z, V, kernel),
        ref.gradient(kernel, X, Z, V),
        1e-4 if dtype == np.float32 else 1e-10,
        scale=ref.gradient(kernel, X, Z, V, magnitude=True),
        what="gradient",
    )


@pytest.mark.parametrize("degree", [7, 16, 64])
def test_polynomial_high_degree(degree):
    rng = np.random.default_rng(degree)
    X = rng.uniform(-1, 1, (20, 4))
    Z = rng.uniform(-1, 1, (15, 4))
    kernel = Polynomial(degree=degree, gamma=0.1, coef0=1.0)
    ref.assert_rel_close(
        kernel_matrix(X, Z, kernel),
        ref.kernel_matrix(kernel, X, Z),
        1e-12,
        scale=ref.magnitude_matrix(kernel, X, Z),
    )


# --- the operator's own behaviour --------------------------------------------------------


def test_operator_basics():
    X = np.random.default_rng(0).normal(size=(6, 3))
    Z = np.random.default_rng(1).normal(size=(4, 3))
    K = KernelOperator(X, Z, "matern", nu=2.5, length_scale=2.0)
    assert isinstance(K, LinearOperator)
    assert K.shape == (6, 4) and K.dtype == np.float64
    assert K.kernel == Matern(nu=2.5, length_scale=2.0)
    assert "6x4" in repr(K) and "Matern" in repr(K)
    np.testing.assert_array_equal(
        K.to_dense(), kernel_matrix(X, Z, "matern", nu=2.5, length_scale=2.0)
    )
    ref.assert_rel_close(K.to_dense(), ref.kernel_matrix(K.kernel, X, Z), 1e-12)
    # Z=None is the square symmetric K(X, X).
    S_ = KernelOperator(X, kernel="rbf", gamma=0.3)
    assert S_.shape == (6, 6)
    D = S_.to_dense()
    np.testing.assert_array_equal(D, kernel_matrix(X, X, "rbf", gamma=0.3))
    np.testing.assert_allclose(D, D.T, rtol=1e-15, atol=0)
    np.testing.assert_allclose(np.diag(D), 1.0, rtol=1e-15)
    # Adjoint / transpose: K(X, Z)^T = K(Z, X).
    u = np.random.default_rng(2).normal(size=6)
    ref.assert_rel_close(
        K.H @ u, K.to_dense().T @ u, 1e-12, scale=np.abs(K.to_dense().T) @ np.abs(u)
    )
    ref.assert_rel_close(
        K.T @ u, K.to_dense().T @ u, 1e-12, scale=np.abs(K.to_dense().T) @ np.abs(u)
    )
    ref.assert_rel_close(
        K.rmatvec(u), K.to_dense().T @ u, 1e-12, scale=np.abs(K.to_dense().T) @ np.abs(u)
    )
    assert K.H.shape == (4, 6)


def test_kernel_object_and_name_give_the_same_operator():
    rng = np.random.default_rng(3)
    X, Z, v = rng.normal(size=(9, 2)), rng.normal(size=(7, 2)), rng.normal(size=7)
    by_name = KernelOperator(X, Z, "poly", degree=2, coef0=0.5) @ v
    by_object = KernelOperator(X, Z, Polynomial(degree=2, coef0=0.5)) @ v
    np.testing.assert_array_equal(by_name, by_object)
    assert_rel = ref.magnitudes(Polynomial(degree=2, coef0=0.5), "matvec", X, Z, v)
    ref.assert_rel_close(
        by_name, ref.matvec(Polynomial(degree=2, coef0=0.5), X, Z, v), 1e-12, scale=assert_rel
    )


def test_cg_solves_regularised_system():
    rng = np.random.default_rng(10)
    n, lam = 250, 0.1
    X = rng.normal(size=(n, 3))
    b = rng.normal(size=n)
    K = KernelOperator(X, kernel="rbf", gamma=0.5)
    A = K + lam * aslinearoperator(np.eye(n))
    # scipy < 1.12 names the relative tolerance tol, scipy >= 1.14 only rtol.
    tol = "rtol" if "rtol" in inspect.signature(cg).parameters else "tol"
    x, info = cg(A, b, atol=0.0, maxiter=2000, **{tol: 1e-12})
    assert info == 0
    expected = np.linalg.solve(ref.kernel_matrix(Gaussian(gamma=0.5), X) + lam * np.eye(n), b)
    ref.assert_rel_close(x, expected, 1e-9)


def test_eigsh_top_eigenvalues():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 4))
    kernel = Matern(nu=1.5, length_scale=1.5)
    K = KernelOperator(X, kernel=kernel)
    top = np.sort(eigsh(K, k=6, which="LA", tol=1e-13, return_eigenvectors=False))
    expected = np.linalg.eigvalsh(ref.kernel_matrix(kernel, X))[-6:]
    np.testing.assert_allclose(top, expected, rtol=1e-10)


def test_one_dimensional_right_hand_sides_give_one_dimensional_results():
    rng = np.random.default_rng(4)
    X, Z = rng.normal(size=(8, 3)), rng.normal(size=(5, 3))
    K = KernelOperator(X, Z, "laplacian", gamma=0.4)
    v, u = rng.normal(size=5), rng.normal(size=8)
    Kd = ref.kernel_matrix(Laplacian(gamma=0.4), X, Z)  # positive: |K| = K
    av, au = np.abs(v), np.abs(u)
    for out, expected, scale in [
        (K @ v, Kd @ v, Kd @ av),
        (K.matvec(v), Kd @ v, Kd @ av),
        (K.dot(v), Kd @ v, Kd @ av),
        (K.T @ u, Kd.T @ u, Kd.T @ au),
        (K.rmatvec(u), Kd.T @ u, Kd.T @ au),
        (K.normal_matvec(v), Kd.T @ (Kd @ v), Kd.T @ (Kd @ av)),
    ]:
        assert out.ndim == 1
        ref.assert_rel_close(out, expected, 1e-12, scale=scale)
    # A column stays a column; 1-d V in the gradient gives (n, d).
    assert (K @ v[:, None]).shape == (8, 1)
    assert K.normal_matvec(v[:, None]).shape == (5, 1)
    assert K.gradient(v).shape == (8, 3)
    assert K.gradient(v[:, None]).shape == (8, 1, 3)
    np.testing.assert_array_equal(K.gradient(v), K.gradient(v[:, None])[:, 0, :])
    np.testing.assert_array_equal(K @ v, (K @ v[:, None])[:, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_columns_give_an_empty_product(dtype):
    """V with no columns is an empty product, as numpy's and scipy's operators give it; it
    was refused as "V: empty array of shape (5, 0)". Its dtype is still checked."""
    rng = np.random.default_rng(5)
    X, Z = rng.normal(size=(8, 3)).astype(dtype), rng.normal(size=(5, 3)).astype(dtype)
    K = KernelOperator(X, Z, "rbf", gamma=0.4)
    dense = aslinearoperator(ref.kernel_matrix(Gaussian(gamma=0.4), X, Z))
    for out, expected in [
        (K @ np.ones((5, 0)), dense @ np.ones((5, 0))),
        (K.matmat(np.ones((5, 0), np.int64)), dense.matmat(np.ones((5, 0)))),
        (K.T @ np.ones((8, 0)), dense.T @ np.ones((8, 0))),
        (K.rmatmat(np.ones((8, 0))), dense.rmatmat(np.ones((8, 0)))),
        (np.ones((0, 8)) @ K, np.ones((0, 8)) @ dense.matmat(np.eye(5))),
    ]:
        assert out.shape == expected.shape and out.dtype == dtype
    assert K.normal_matvec(np.ones((5, 0))).shape == (5, 0)
    assert K.gradient(np.ones((5, 0))).shape == (8, 0, 3)
    with pytest.raises(TypeError, match="V: complex"):
        K @ np.ones((5, 0), complex)
    with pytest.raises(ValueError, match="V: has 4 rows, expected 5"):
        K @ np.ones((4, 0))


# --- input conversion --------------------------------------------------------------------


def _all_results(X, Z, V, U, kernel="rbf", **params):
    K = KernelOperator(X, Z, kernel, **params)
    return {
        "kernel_matrix": kernel_matrix(X, Z, kernel, **params),
        "matvec": K @ V,
        "rmatvec": K.T @ U,
        "normal_matvec": K.normal_matvec(V),
        "gradient": K.gradient(V),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("layout", ["strided", "fortran", "readonly", "transposed_view"])
def test_non_contiguous_and_readonly_inputs(dtype, layout):
    rng = np.random.default_rng(6)
    base_X = rng.uniform(-1, 1, (23, 10)).astype(dtype)
    base_Z = rng.uniform(-1, 1, (19, 10)).astype(dtype)
    base_V = rng.normal(size=(19, 4)).astype(dtype)
    base_U = rng.normal(size=(23, 4)).astype(dtype)

    def present(A):
        if layout == "strided":
            wide = np.zeros((A.shape[0], 2 * A.shape[1]), dtype=A.dtype)
            wide[:, ::2] = A
            view = wide[:, ::2]
            assert not view.flags.c_contiguous
            return view
        if layout == "fortran":
            F = np.asfortranarray(A)
            assert not F.flags.c_contiguous or A.shape[1] == 1
            return F
        if layout == "readonly":
            R = A.copy()
            R.setflags(write=False)
            return R
        T = np.ascontiguousarray(A.T).T  # a transposed view of a C array
        assert not T.flags.c_contiguous or 1 in A.shape
        return T

    X, Z, V, U = (present(A) for A in (base_X, base_Z, base_V, base_U))
    expected = _all_results(base_X, base_Z, base_V, base_U, kernel="matern", nu=2.5)
    got = _all_results(X, Z, V, U, kernel="matern", nu=2.5)
    for key in expected:
        assert got[key].dtype == dtype, key
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # And the answer is right, not only consistent.
    kernel = Matern(nu=2.5)
    ref.assert_rel_close(
        got["matvec"],
        ref.matvec(kernel, base_X, base_Z, base_V),
        RTOL[dtype],
        scale=ref.magnitudes(kernel, "matvec", base_X, base_Z, base_V),
    )


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "matern", "poly", "linear", "arccos"])
def test_inputs_are_never_modified(kernel):
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (30, 5))
    Z = rng.uniform(-1, 1, (40, 5))
    V = rng.normal(size=(40, 3))
    U = rng.normal(size=(30, 3))
    v = rng.normal(size=40)
    X32, Z32 = X.astype(np.float32), Z.astype(np.float32)
    arrays = [X, Z, V, U, v, X32, Z32, np.asfortranarray(X), X[:, ::2]]
    before = [A.copy() for A in arrays]
    for Xa, Za in [
        (X, Z),
        (X32, Z32),
        (np.asfortranarray(X), Z),
        (X[:, ::2], Z[:, ::2]),
        (X, None),
        (X32, Z),
    ]:
        K = KernelOperator(Xa, Za, kernel)
        m = K.shape[1]  # 30 or 40
        Vm = V[:m]
        kernel_matrix(Xa, Za, kernel)
        K @ Vm
        K @ v[:m]
        K.T @ U
        K.normal_matvec(Vm)
        if kernel != "arccos":
            K.gradient(Vm)
            kernel_gradient(Xa, Za, Vm, kernel)
    for A, B in zip(arrays, before):
        np.testing.assert_array_equal(A, B)
        assert A.dtype == B.dtype


def test_contiguous_float_inputs_are_not_copied():
    """The operator keeps the caller's C-contiguous float arrays (design: never copy)."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(5, 3))
    Z32 = rng.normal(size=(4, 3)).astype(np.float32)
    K = KernelOperator(X, kernel="rbf")
    assert np.shares_memory(K.X, X) and np.shares_memory(K.Z, X)
    K32 = KernelOperator(Z32, Z32, kernel="rbf")
    assert np.shares_memory(K32.X, Z32)


@pytest.mark.parametrize(
    "x_dtype, z_dtype, expected",
    [
        (np.int64, None, np.float64),
        (np.int32, np.int32, np.float64),
        (np.uint8, np.int64, np.float64),
        (np.bool_, None, np.float64),
        (np.float16, None, np.float64),
        (np.float32, None, np.float32),
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.int64, np.float32, np.float64),
        (np.float32, np.int16, np.float64),
    ],
)
def test_dtype_conversion(x_dtype, z_dtype, expected):
    rng = np.random.default_rng(9)
    X = rng.integers(-2, 3, (7, 3)).astype(x_dtype)
    Z = None if z_dtype is None else rng.integers(-2, 3, (6, 3)).astype(z_dtype)
    Zf = X if Z is None else Z
    kernel = Gaussian(gamma=0.3)
    out = kernel_matrix(X, Z, kernel)
    assert out.dtype == expected
    K = KernelOperator(X, Z, kernel)
    assert K.dtype == expected
    v = np.ones(Zf.shape[0], dtype=np.int64)  # integer right-hand side too
    mv = K @ v
    assert mv.dtype == expected
    rtol = RTOL[expected]
    Xf, Zr = np.asarray(X, np.float64), np.asarray(Zf, np.float64)
    ref.assert_rel_close(out, ref.kernel_matrix(kernel, Xf, Zr), rtol)
    ref.assert_rel_close(mv, ref.matvec(kernel, Xf, Zr, v), rtol)


def test_lists_are_accepted():
    X = [[0.0, 1.0], [1.0, 0.5], [2.0, -1.0]]
    out = kernel_matrix(X, kernel="laplacian", gamma=0.5)
    ref.assert_rel_close(out, ref.kernel_matrix(Laplacian(gamma=0.5), np.array(X)), 1e-12)
    K = KernelOperator(X, [[1.0, 1.0]], "linear")
    ref.assert_rel_close(K @ [2.0], np.array(X) @ np.array([1.0, 1.0]) * 2.0, 1e-15)


@pytest.mark.parametrize("n_jobs", [None, 1, 2, 3, -1, -2])
def test_n_jobs_values(n_jobs):
    rng = np.random.default_rng(12)
    X, Z, V = rng.normal(size=(50, 4)), rng.normal(size=(60, 4)), rng.normal(size=(60, 2))
    kernel = Gaussian(gamma=0.25)
    K = KernelOperator(X, Z, kernel, n_jobs=n_jobs)
    ref.assert_rel_close(
        K @ V, ref.matvec(kernel, X, Z, V), 1e-12, scale=ref.magnitudes(kernel, "matvec", X, Z, V)
    )
    ref.assert_rel_close(
        kernel_matrix(X, Z, kernel, n_jobs=n_jobs), ref.kernel_matrix(kernel, X, Z), 1e-12
    )


# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", S.GRADIENT_FAMILIES)
@given(data=st.data())
def test_gradient_matches_finite_differences(family, data):
    kernel = data.draw(S.KERNEL_FAMILIES[family])
    X, Z = data.draw(S.separated_pair())
    k = data.draw(st.sampled_from([1, 2]))
    V = data.draw(S.vectors(Z.shape[0], k))
    G = kernel_gradient(X, Z, V, kernel)
    assert G.shape == (X.shape[0], k, X.shape[1])
    fd = ref.gradient_fd(kernel, X, Z, V)
    mag = ref.gradient(kernel, X, Z, V, magnitude=True)
    ref.assert_rel_close(G, fd, 1e-6, scale=mag, what="finite differences")
    # The analytic reference is itself checked by the finite differences above; against it
    # the library must be accurate to rounding.
    ref.assert_rel_close(G, ref.gradient(kernel, X, Z, V), 1e-12, scale=mag, what="analytic")
    # The method and the function agree, and a 1-d V gives (n, d).
    np.testing.assert_array_equal(KernelOperator(X, Z, kernel).gradient(V), G)
    g1 = kernel_gradient(X, Z, V[:, 0], kernel)
    assert g1.shape == X.shape
    # Not bit for bit: k sets how many columns the engine multiplies at once, and with it
    # the order of the sums.
    ref.assert_rel_close(g1, G[:, 0, :], 1e-13, scale=mag[:, 0, :], what="k = 1 vs column 0")


@pytest.mark.parametrize("family", S.GRADIENT_FAMILIES)
@given(data=st.data())
def test_gradient_float32(family, data):
    kernel = data.draw(S.KERNEL_FAMILIES[family])
    X, Z = data.draw(S.separated_pair(max_rows=20, max_features=8))
    V = data.draw(S.vectors(Z.shape[0], 2)).astype(np.float32)
    X, Z = X.astype(np.float32), Z.astype(np.float32)
    G = kernel_gradient(X, Z, V, kernel)
    assert G.dtype == np.float32
    ref.assert_rel_close(
        G, ref.gradient(kernel, X, Z, V), 1e-5, scale=ref.gradient(kernel, X, Z, V, magnitude=True)
    )


@pytest.mark.parametrize("family", S.GRADIENT_FAMILIES)
def test_gradient_zero_subgradient_at_coincident_points(family):
    """X contains points of Z exactly: their own term contributes the zero subgradient
    (the documented choice for the non-smooth kernels; the true value for smooth ones)."""
    rng = np.random.default_rng(13)
    kernel = {
        "gaussian": Gaussian(gamma=0.5),
        "laplacian_l1": Laplacian(gamma=0.5),
        "laplacian_l2": Laplacian(gamma=0.5, norm="l2"),
        "matern0.5": Matern(nu=0.5),
        "matern1.5": Matern(nu=1.5),
        "matern2.5": Matern(nu=2.5),
        "matern_inf": Matern(nu=math.inf),
        "polynomial": Polynomial(degree=3),
        "linear": Linear(),
    }[family]
    # Points on a coarse grid (exact ties x_l == z_l in some coordinates) ...
    Z = 0.5 * rng.integers(-4, 5, (12, 3)).astype(np.float64) + 0.125
    # ... and X: three points of Z plus two elsewhere.
    X = np.vstack([Z[[0, 5, 11]], [[0.3, -0.7, 0.9], [1.1, 0.2, -0.4]]])
    V = rng.normal(size=(12, 2))
    G = kernel_gradient(X, Z, V, kernel)
    ref.assert_rel_close(
        G, ref.gradient(kernel, X, Z, V), 1e-12, scale=ref.gradient(kernel, X, Z, V, magnitude=True)
    )
    # z = x alone: zero for the radial kernels (subgradient or true value), z for the
    # dot-product ones, as the reference says.
    single = kernel_gradient(Z[:1], Z[:1], np.ones(1), kernel)
    expected = ref.gradient(kernel, Z[:1], Z[:1], np.ones(1))[:, 0, :]
    np.testing.assert_allclose(single, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "dtype, delta", [(np.float64, 1e-6), (np.float64, 1e-9), (np.float32, 1e-3)]
)
@pytest.mark.parametrize("kernel", [Laplacian(gamma=1.0, norm="l2"), Matern(nu=0.5)], ids=repr)
def test_gradient_near_coincident_points(kernel, dtype, delta):
    """x a small but well-resolved distance from a centre z (thousands of ulps and more):
    the gradient of these kernels does not vanish there (that term is -gamma k (x - z) /
    |x - z|, of size gamma), and x - z of two close floats is computed with full relative
    accuracy (exactly, by Sterbenz' lemma, for same-sign coordinates), so the answer can be
    and must be accurate to rounding like anywhere else. Evaluating the gradient as
    (x - s) sum_j f'_j V_j - sum_j f'_j V_j (z_j - s) with f' ~ 1/|x - z| cancels two
    terms of size |x - s| / |x - z| instead."""
    rng = np.random.default_rng(14)
    Z = rng.uniform(-2, 2, (16, 3))
    directions = rng.normal(size=(4, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    X = Z[:4] + delta * directions
    X, Z = X.astype(dtype), Z.astype(dtype)
    assert np.all(np.linalg.norm(X.astype(np.float64) - Z[:4], axis=1) > 0.5 * delta)
    V = rng.normal(size=(16, 2)).astype(dtype)
    G = kernel_gradient(X, Z, V, kernel)
    ref.assert_rel_close(
        G,
        ref.gradient(kernel, X, Z, V),
        RTOL[dtype],
        scale=ref.gradient(kernel, X, Z, V, magnitude=True),
    )


def test_arccos_gradient_raises():
    X = np.random.default_rng(15).normal(size=(4, 3))
    with pytest.raises(ValueError, match="arccos"):
        kernel_gradient(X, X, np.ones(4), "arccos")
    with pytest.raises(ValueError, match="arccos"):
        KernelOperator(X, kernel=ArcCosine()).gradient(np.ones((4, 2)))


def test_gradient_of_matern_inf_is_gaussian_gradient():
    rng = np.random.default_rng(16)
    X, Z, V = rng.normal(size=(6, 3)), rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    a = kernel_gradient(X, Z, V, Matern(nu=math.inf, length_scale=0.8))
    b = kernel_gradient(X, Z, V, Gaussian(gamma=1.0 / (2 * 0.8**2)))
    ref.assert_rel_close(a, b, 1e-14)

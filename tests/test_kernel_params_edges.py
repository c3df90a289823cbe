"""Kernel parameters and operator inputs at the edges of the floating-point range: every
bad case raises ValueError / TypeError naming the argument (never ZeroDivisionError,
OverflowError, a NaN result or a parameter the user never gave), and every accepted case
agrees with an independent float64 reference (explicit numpy formulas, scikit-learn).

The audit of the low-level API found these (items 4, 5, 6, 11, 12 and 15):

* Matern(nu=inf) with a tiny or huge length_scale: ZeroDivisionError / OverflowError, or
  a ValueError about ``gamma``;
* float32 data with parameters beyond float32's range: silently wrong values (k(x, x) of
  1.2e-38, or NaN);
* Matern 3/2, 5/2 and the arc-cosine kernel: NaN where the kernel overflows (Matern now
  gives its limit 0 there; NaN products are refused naming X);
* KernelOperator products of the wrong shape: scipy's bare messages (or an array dump);
* finite values that overflow on conversion to the operator's dtype: "contains NaN or
  infinity";
* ``Kernel()`` accepted, 1-element array parameters accepted (unhashable kernels), and
  ``nu="inf"`` refused by get_kernel while the estimators take only that spelling.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from sklearn.gaussian_process.kernels import Matern as SkMatern
from sklearn.metrics.pairwise import laplacian_kernel, polynomial_kernel, rbf_kernel

from gramfree import KernelOperator, _core, get_kernel, kernel_gradient, kernel_matrix
from gramfree.kernels import (
    ArcCosine,
    Gaussian,
    Kernel,
    Laplacian,
    Linear,
    Matern,
    Polynomial,
)

F32, F64 = np.finfo(np.float32), np.finfo(np.float64)


def _sqdist(X, Z):
    X = np.asarray(X, np.float64)
    Z = np.asarray(Z, np.float64)
    with np.errstate(over="ignore"):  # inf where the distance's square overflows
        return ((X[:, None, :] - Z[None, :, :]) ** 2).sum(axis=-1)


def _matern_ref(X, Z, length_scale, nu):
    """Matern in float64 from its definition, with the limit 0 where r is infinite."""
    r = np.sqrt(_sqdist(X, Z)) / length_scale
    if nu == 0.5:
        return np.exp(-r)
    if nu == math.inf:
        return np.exp(-0.5 * r**2)
    with np.errstate(over="ignore", invalid="ignore"):
        if nu == 1.5:
            k = (1 + math.sqrt(3) * r) * np.exp(-math.sqrt(3) * r)
        else:
            k = (1 + math.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-math.sqrt(5) * r)
    return np.where(np.isfinite(r), k, 0.0)


def _in_normal_range(value: Fraction, info) -> bool:
    """Exact: is ``value`` (a positive rational) within [tiny, max] of ``info``?"""
    return Fraction(float(info.tiny)) <= value <= Fraction(float(info.max))


def _within_reach(scale: float, on_distance: bool, info) -> bool:
    """Does ``scale`` (the kernel's factor on the distance, or on its square) keep that
    square within [tiny, max] at every distance where the kernel is neither 0 (its
    argument below -log of the smallest subnormal) nor 1 (above eps)?"""
    vanish = -math.log(float(info.smallest_subnormal))
    top, bottom = float(info.max), float(info.tiny)
    if on_distance:
        top, bottom = math.sqrt(top), math.sqrt(bottom)
    return vanish / top <= scale <= float(info.eps) / bottom


# --- item 4: Matern(nu=inf) with extreme length scales ------------------------------------


@pytest.mark.parametrize("length_scale", [1e-200, 1e200, 1e-160, 1e160, 5e-324, 1e308])
def test_matern_inf_extreme_length_scale_names_length_scale(length_scale):
    for make in (
        lambda: Matern(nu=math.inf, length_scale=length_scale),
        lambda: get_kernel("matern", nu="inf", length_scale=length_scale),
        lambda: kernel_matrix(
            np.ones((2, 2)), kernel="matern", nu=math.inf, length_scale=length_scale
        ),
    ):
        with pytest.raises(ValueError, match=r"^length_scale=") as info:
            make()
        assert "gamma=" not in str(info.value)  # the user gave no gamma
        assert "float64" in str(info.value)


@given(
    mantissa=st.floats(1.0, 9.999),
    exponent=st.integers(-320, 308),
    nu=st.sampled_from([0.5, 1.5, 2.5, math.inf]),
)
@example(mantissa=1.0, exponent=-200, nu=math.inf)  # ZeroDivisionError before
@example(mantissa=1.0, exponent=200, nu=math.inf)  # OverflowError before
@example(mantissa=1.0, exponent=-160, nu=math.inf)  # "gamma: ..." before
@example(mantissa=1.0, exponent=-160, nu=2.5)  # 5 / length_scale**2 overflows float64
@example(mantissa=3.0, exponent=-5, nu=1.5)
def test_matern_length_scale_range_float64(mantissa, exponent, nu):
    """Constructs exactly where the constants the native kernel derives from length_scale
    are normal float64 numbers (exact rational arithmetic here), and then computes the
    kernel of points spaced in units of length_scale as the float64 definition does."""
    length_scale = float(f"{mantissa}e{exponent}")
    assume(0.0 < length_scale < math.inf)
    ls = Fraction(length_scale)
    c = {0.5: None, 1.5: 3, 2.5: 5, math.inf: None}[nu]
    if nu == math.inf:
        constants = [Fraction(1, 2) / ls**2]
    elif nu == 0.5:
        constants = [ls, 1 / ls]
    else:
        constants = [ls, Fraction(c) / ls**2]  # sqrt(c) / ls lies between the two
    # The kernel's factor on the distance (on its square for nu=inf).
    # (Exact, then rounded: the square of an extreme length_scale leaves float64.)
    exact = Fraction(1, 2) / ls**2 if nu == math.inf else 1 / ls
    reach = math.inf if exact > Fraction(float(F64.max)) else math.sqrt(c or 1) * float(exact)
    valid = all(_in_normal_range(v, F64) for v in constants) and _within_reach(
        reach, nu != math.inf, F64
    )
    # The library rounds before it compares: leave out the last ulps around the limits.
    assume(
        all(
            _in_normal_range(v * Fraction(1001, 1000), F64)
            == _in_normal_range(v * Fraction(999, 1000), F64)
            for v in constants
        )
        and _within_reach(reach * 1.001, nu != math.inf, F64)
        == _within_reach(reach * 0.999, nu != math.inf, F64)
    )
    if not valid:
        with pytest.raises(ValueError, match=r"^length_scale=.*float64"):
            Matern(length_scale=length_scale, nu=nu)
        return
    kernel = Matern(length_scale=length_scale, nu=nu)
    if not 1e-100 <= length_scale <= 1e100:  # keep |x|^2 itself within float64's range
        return
    base = np.array([[0.0, 0.0], [0.5, -1.0], [2.0, 1.0], [30.0, 0.0]])
    X = base * length_scale
    K = kernel_matrix(X, kernel=kernel)
    np.testing.assert_allclose(K, _matern_ref(base, base, 1.0, nu), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        K, SkMatern(length_scale=length_scale, nu=nu)(X), rtol=1e-9, atol=1e-12
    )


def test_matern_inf_gamma_unchanged_for_ordinary_length_scales():
    for ls in (0.3, 1.0, 2.0, 7.5, 1e-5, 1e5):
        assert Matern(length_scale=ls, nu=math.inf).native_spec(3) == {
            "kind": "gaussian",
            "gamma": 0.5 / ls**2,
        }


# --- item 5: parameters beyond float32's range ---------------------------------------------

X32 = np.array([[0.0], [1.0]], np.float32)

FLOAT32_OUT_OF_RANGE = [
    ("rbf", {"gamma": 1e39}, "gamma"),
    ("rbf", {"gamma": 1e-40}, "gamma"),
    ("laplacian", {"gamma": 1e39}, "gamma"),
    ("laplacian", {"gamma": 1e39, "norm": "l2"}, "gamma"),
    ("poly", {"gamma": 1e39}, "gamma"),
    ("poly", {"coef0": -1e39}, "coef0"),
    ("matern", {"nu": 0.5, "length_scale": 1e-40}, "length_scale"),
    ("matern", {"nu": 0.5, "length_scale": 1e38}, "length_scale"),
    ("matern", {"nu": 1.5, "length_scale": 1e-20}, "length_scale"),
    ("matern", {"nu": 2.5, "length_scale": 1e-40}, "length_scale"),
    ("matern", {"nu": 2.5, "length_scale": 1e-20}, "length_scale"),
    ("matern", {"nu": 2.5, "length_scale": 1e20}, "length_scale"),
    ("matern", {"nu": math.inf, "length_scale": 1e-20}, "length_scale"),
    ("matern", {"nu": "inf", "length_scale": 1e19}, "length_scale"),
]


@pytest.mark.parametrize("kernel, params, name", FLOAT32_OUT_OF_RANGE)
def test_float32_parameters_out_of_range_are_refused(kernel, params, name):
    pattern = rf"^{name}=.*float32"
    with pytest.raises(ValueError, match=pattern):
        kernel_matrix(X32, kernel=kernel, **params)
    with pytest.raises(ValueError, match=pattern):
        KernelOperator(X32, kernel=kernel, **params)
    with pytest.raises(ValueError, match=pattern):
        get_kernel(kernel, **params).check_dtype(np.float32)
    with pytest.raises(ValueError, match=pattern):
        kernel_gradient(X32, X32, np.ones(2, np.float32), kernel=kernel, **params)
    # float64 data: the parameter is representable and the values are the definition's.
    X = X32.astype(np.float64)
    K = kernel_matrix(X, kernel=kernel, **params)
    assert np.isfinite(K).all()
    np.testing.assert_allclose(
        K, _reference(get_kernel(kernel, **params), X, X), rtol=1e-12, atol=1e-300
    )


def _reference(kernel, X, Z):
    """The kernel matrix in float64: scikit-learn where it has the kernel, else numpy."""
    X = np.asarray(X, np.float64)
    Z = np.asarray(Z, np.float64)
    gamma = getattr(kernel, "gamma", None)
    gamma = 1.0 / X.shape[1] if gamma is None else gamma
    if isinstance(kernel, Gaussian):
        return rbf_kernel(X, Z, gamma=gamma)
    if isinstance(kernel, Laplacian):
        if kernel.norm == "l1":
            return laplacian_kernel(X, Z, gamma=gamma)
        return np.exp(-gamma * np.sqrt(_sqdist(X, Z)))
    if isinstance(kernel, Polynomial):
        return polynomial_kernel(X, Z, degree=kernel.degree, gamma=gamma, coef0=kernel.coef0)
    if isinstance(kernel, Matern):
        return _matern_ref(X, Z, kernel.length_scale, kernel.nu)
    if isinstance(kernel, Linear):
        return X @ Z.T
    raise AssertionError(kernel)


@given(mantissa=st.floats(1.0, 9.999), exponent=st.integers(-46, 40))
@example(mantissa=1.0, exponent=39)  # above float32's largest number
@example(mantissa=1.0, exponent=-40)  # below its smallest normal one
@example(mantissa=3.0, exponent=38)  # within, near the top; beyond float32's reach
@example(mantissa=1.0, exponent=-37)  # beyond float32's reach: squares overflow first
@example(mantissa=2.5, exponent=0)
def test_float32_gamma_range(mantissa, exponent):
    """gamma for float32 data: refused naming gamma outside float32's normal range,
    otherwise k(x, x) = 1 and the values are the float64 definition's (rounded)."""
    gamma = float(f"{mantissa}e{exponent}")
    g = Fraction(gamma)
    for limit in (Fraction(float(F32.tiny)), Fraction(float(F32.max))):  # rounding there
        assume(not limit * Fraction(999, 1000) < g < limit * Fraction(1001, 1000))
    # Both kernels (the Gaussian on the squared distance, the l1 Laplacian on the l1
    # distance) must also keep what they compute from within float32's normal numbers.
    assume(_within_reach(gamma * 1.001, False, F32) == _within_reach(gamma * 0.999, False, F32))
    X = np.array([[0.0, 0.0], [1e-3, 0.0], [0.0, 2.0], [1e-15, 1e-15]], np.float32)
    for kernel in ("rbf", "laplacian"):
        if not (_in_normal_range(g, F32) and _within_reach(gamma, False, F32)):
            with pytest.raises(ValueError, match=r"^gamma=.*float32"):
                kernel_matrix(X, kernel=kernel, gamma=gamma)
            continue
        K = kernel_matrix(X, kernel=kernel, gamma=gamma)
        assert K.dtype == np.float32 and not np.isnan(K).any()
        np.testing.assert_allclose(np.diag(K), 1.0, rtol=1e-6)
        expected = _reference(get_kernel(kernel, gamma=gamma), X, X)
        np.testing.assert_allclose(K, expected, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kernel, params, points",
    [
        # Within float32's reach (Kernel._check_reach): the squared distance, or the l1
        # distance, stays a normal number wherever the kernel is neither 0 nor 1.
        ("rbf", {"gamma": 1e31}, [0.0, 1e-16, 3e-16]),
        ("rbf", {"gamma": 3.1e-37}, [0.0, 1.0, 1e18]),
        ("laplacian", {"gamma": 1e31}, [0.0, 1e-31, 3e-31]),
        (
            "poly",
            {"gamma": float(F32.tiny), "coef0": -float(F32.max), "degree": 1},
            [0.0, 1.0, 3.0],
        ),
        # distances of a few length scales, whose squares are normal float32 numbers
        ("matern", {"nu": 1.5, "length_scale": 1.6e-12}, [0.0, 3.2e-12, 8e-12]),
        ("matern", {"nu": 2.5, "length_scale": 2.1e-12}, [0.0, 4.2e-12, 1.05e-11]),
        ("matern", {"nu": 2.5, "length_scale": 2e17}, [0.0, 1.0, 3.0]),
        ("matern", {"nu": math.inf, "length_scale": 4e-16}, [0.0, 4e-16, 1.2e-15]),
        ("matern", {"nu": 0.5, "length_scale": 1e-12}, [0.0, 1e-12, 3e-12]),
    ],
)
def test_float32_parameters_at_the_limits_are_accepted(kernel, params, points):
    X = np.array(points, np.float32)[:, None]
    K = kernel_matrix(X, kernel=kernel, **params)
    assert not np.isnan(K).any()
    if kernel != "poly":
        np.testing.assert_allclose(np.diag(K), 1.0, rtol=1e-6)
    expected = _reference(get_kernel(kernel, **params), X, X)
    np.testing.assert_allclose(K, expected, rtol=1e-3, atol=1e-6)


BEYOND_REACH = [
    # (kernel, params, dtype, points along one axis, the true value k(points[0], points[1]))
    ("laplacian", {"gamma": 1e-160, "norm": "l2"}, np.float64, [0.0, 2e154], math.exp(-2e-6)),
    ("matern", {"nu": 0.5, "length_scale": 1e160}, np.float64, [0.0, 2e154], math.exp(-2e-6)),
    ("matern", {"nu": math.inf, "length_scale": 4e153}, np.float64, [0.0, 2e154], math.exp(-12.5)),
    ("matern", {"nu": 1.5, "length_scale": 1e153}, np.float64, [0.0, 2e154], None),
    ("laplacian", {"gamma": 2.5e-306, "norm": "l1"}, np.float64, [-1e308, 1e308], None),
    ("laplacian", {"gamma": 1e170, "norm": "l2"}, np.float64, [0.0, 1e-170], math.exp(-1)),
    ("matern", {"nu": 0.5, "length_scale": 1e-170}, np.float64, [0.0, 1e-170], math.exp(-1)),
    ("laplacian", {"gamma": 1e-25, "norm": "l2"}, np.float32, [0.0, 2e19], math.exp(-2e-6)),
    ("matern", {"nu": 0.5, "length_scale": 1e25}, np.float32, [0.0, 2e19], math.exp(-2e-6)),
    ("laplacian", {"gamma": 1e25, "norm": "l2"}, np.float32, [0.0, 1e-25], math.exp(-1)),
    ("rbf", {"gamma": 1e-37}, np.float32, [0.0, 2e18], math.exp(-0.4)),
]


@pytest.mark.parametrize("kernel, params, dtype, points, true", BEYOND_REACH)
def test_parameters_beyond_the_dtypes_reach_are_refused(kernel, params, dtype, points, true):
    """The square (or l1 sum) the kernel is computed from over- or underflowed where the
    kernel is an ordinary number: 0.0 or 1.0 came back for the review's exp(-2e-6) and
    exp(-1). Now refused naming the parameter; the rescaling the message advises (a power
    of two on X and on the parameter) computes the true value."""
    X = np.array(points, dtype)[:, None]
    name = next(iter(params)) if kernel != "matern" else "length_scale"
    pattern = rf"^{name}=.* is beyond {np.dtype(dtype).name}'s reach for .*rescale X and Z"
    with pytest.raises(ValueError, match=pattern):
        kernel_matrix(X, kernel=kernel, **params)
    with pytest.raises(ValueError, match=pattern):
        KernelOperator(X, kernel=kernel, **params)
    if true is None:
        return
    # Rescaled: X by 2**e and the parameter with it, inside the reach.
    e = -int(round(math.log2(abs(points[1]))))
    s = 2.0**e
    scaled = dict(params)
    if "gamma" in scaled:
        scaled["gamma"] = params["gamma"] / s ** (2 if kernel == "rbf" else 1)
    else:
        scaled["length_scale"] = params["length_scale"] * s
    K = kernel_matrix(X * dtype(s), kernel=kernel, **scaled)
    np.testing.assert_allclose(K[0, 1], true, rtol=1e-6 if dtype == np.float32 else 1e-12)


# --- item 6: overflowing distances and NaN products ------------------------------------------

OVERFLOWING = [
    ("matern25_f64", np.array([[0.0], [1e155]]), {"kernel": "matern", "nu": 2.5}),
    ("matern15_f64", np.array([[0.0], [1e300]]), {"kernel": "matern", "nu": 1.5}),
    ("matern25_f32", np.array([[0.0], [1e20]], np.float32), {"kernel": "matern", "nu": 2.5}),
    (
        "matern25_f32_ls",
        np.array([[0.0], [1e16]], np.float32),
        {"kernel": "matern", "nu": 2.5, "length_scale": 2.1e-12},
    ),
]


@pytest.mark.parametrize("X, params", [c[1:] for c in OVERFLOWING], ids=[c[0] for c in OVERFLOWING])
def test_matern_at_overflowing_distances_is_its_limit(X, params):
    """Matern 3/2 and 5/2 where the scaled distance or its square overflows: (1 + r)
    exp(-r) was inf * 0, NaN, and refused as an overflow; the kernel's value there is its
    limit 0 (the identity here), on every path."""
    eye = np.eye(2, dtype=X.dtype)
    np.testing.assert_array_equal(kernel_matrix(X, **params), eye)
    K = KernelOperator(X, **params)
    np.testing.assert_array_equal(K.to_dense(), eye)
    np.testing.assert_array_equal(K.to_dense(out=np.empty((2, 2), X.dtype)), eye)
    v = np.array([2.0, 3.0], X.dtype)
    np.testing.assert_array_equal(K @ v, v)
    np.testing.assert_array_equal(K.T @ v, v)
    np.testing.assert_array_equal(K.normal_matvec(v), v)


def test_nan_products_are_refused_naming_x():
    """A polynomial kernel's value overflowing to -inf times a zero coefficient is NaN: a
    product refuses it naming X, where it would have spread silently."""
    X = np.array([[1e100, 1e100], [1.0, 0.0]])
    Z = X * np.array([1.0, -1.0])
    K = KernelOperator(X, Z, kernel="poly", degree=3)
    pattern = r"^X: the poly kernel overflows float64 between rows of X and Z \(row 0 of"
    with pytest.raises(ValueError, match=pattern):
        K @ np.array([0.0, 1.0])
    with pytest.raises(ValueError, match=pattern):
        K @ np.array([[0.0, 1.0], [1.0, 1.0]])


ARCCOS_OUT_OF_REACH = [
    # (X, Z, the argument and row named, "over" or "under", the true k(X[0], Z[0]))
    (np.array([[1e19, 1.0], [2e19, 3.0]], np.float32), None, "X", 1, "over", None),
    (np.array([[1e200, 1.0], [1e200, 2.0]]), None, "X", 0, "over", None),
    # |x| |z| = 1e145 and 1e10 came back inf (the review's F2)
    (np.array([[1e155, 0.0]]), np.array([[1e-10, 0.0]]), "X", 0, "over", 1e145),
    (
        np.array([[1e20, 0.0]], np.float32),
        np.array([[1e-10, 0.0]], np.float32),
        "X",
        0,
        "over",
        1e10,
    ),
    # a point below sqrt(tiny) was taken as the zero vector: 0.0 (the review's F3)
    (np.array([[1e-200, 0.0]]), np.array([[1.0, 2.0]]), "X", 0, "under", None),
    (np.array([[1.0, 2.0]]), np.array([[3.0, 1.0], [0.0, 1e-160]]), "Z", 1, "under", None),
    (
        np.array([[1e-30, 0.0]], np.float32),
        np.array([[1.0, 2.0]], np.float32),
        "X",
        0,
        "under",
        None,
    ),
]


@pytest.mark.parametrize("X, Z, arg, row, how, true", ARCCOS_OUT_OF_REACH)
def test_arccos_points_whose_squared_norm_leaves_the_dtype_are_refused(X, Z, arg, row, how, true):
    """The arc-cosine kernel reads squared norms: beyond sqrt(max) they overflowed (inf
    or NaN came back), below sqrt(tiny) they underflowed (the point counted as zero).
    Refused naming the argument and row; rescaled by a power of two (k(s x, z) =
    s k(x, z)), the same points give the closed form."""
    dtype = X.dtype.name
    pattern = rf"^{arg}: the arccos kernel {how}flows {dtype} on row {row} of {arg} "
    with pytest.raises(ValueError, match=pattern):
        kernel_matrix(X, Z, kernel="arccos")
    with pytest.raises(ValueError, match=pattern):
        KernelOperator(X, Z, kernel="arccos")
    if true is not None:
        s = X.dtype.type(2.0 ** -int(round(math.log2(np.abs(X).max()))))
        K = kernel_matrix(X * s, Z, kernel="arccos") / np.float64(s)
        np.testing.assert_allclose(K[0, 0], true, rtol=1e-6)


def test_arccos_zero_rows_and_ordinary_norms_are_accepted():
    X = np.array([[0.0, 0.0], [1e150, 1.0], [1e-150, 3e-150]])
    K = kernel_matrix(X, kernel="arccos")
    assert np.all(K[0] == 0) and np.isfinite(K).all()


def test_matern_overflow_values_are_zero_in_the_reference():
    """What the refused Matern entries would be: 0, the limit of (1 + r + r^2/3) e^-r
    (scikit-learn's Matern gives NaN there too)."""
    X = np.array([[0.0], [1e155]])
    np.testing.assert_array_equal(_matern_ref(X, X, 1.0, 2.5), np.eye(2))
    np.testing.assert_array_equal(_matern_ref(X, X, 1.0, 1.5), np.eye(2))


def test_correct_results_are_not_changed():
    """The NaN check leaves finite and infinite (overflowed) results as they are:
    bit-identical to the native core's."""
    rng = np.random.default_rng(0)
    X, Z = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    V = rng.normal(size=(25, 4))
    spec = Matern(nu=2.5).native_spec(3)
    K = KernelOperator(X, Z, kernel="matern", nu=2.5)
    np.testing.assert_array_equal(K @ V, _core.kernel_matvec(X, Z, V, **spec, n_threads=0))
    np.testing.assert_array_equal(K.to_dense(), _core.kernel_block(X, Z, **spec, n_threads=0))
    np.testing.assert_allclose(K.to_dense(), SkMatern(nu=2.5)(X, Z), rtol=1e-12)
    # A kernel value beyond float32's range is inf, and is returned as such.
    big = np.array([[1e20, 0.0], [0.0, 1.0]], np.float32)
    Kl = kernel_matrix(big, kernel="linear")
    assert Kl[0, 0] == np.inf and Kl[1, 1] == 1.0


# --- item 11: shapes of right-hand sides ------------------------------------------------------


@pytest.mark.parametrize(
    "call, pattern",
    [
        (
            lambda K: K @ np.ones((3, 2, 2)),
            r"^V: expected a 1-d or 2-d array, got 3 dimension.*\(3,\) or \(3, k\)",
        ),
        (lambda K: K.dot(np.ones((3, 2, 2))), r"^V: expected a 1-d or 2-d array"),
        (lambda K: K @ np.array(2.0), r"^V: expected a 1-d or 2-d array, got 0 dimension"),
        (
            lambda K: K.matvec(np.ones((3, 2))),
            r"^V: expected a vector of shape \(3,\) or \(3, 1\), got shape \(3, 2\)",
        ),
        (lambda K: K.matvec(np.ones(4)), r"^V: has 4 rows, expected 3"),
        (
            lambda K: K.matmat(np.ones(3)),
            r"^V: expected a 2-d array of shape \(3, k\), got shape \(3,\)",
        ),
        (lambda K: K.matmat(np.ones((2, 3))), r"^V: has 2 rows, expected 3"),
        (
            lambda K: K.rmatvec(np.ones((4, 3))),
            r"^U: expected a vector of shape \(4,\) or \(4, 1\), got shape \(4, 3\)",
        ),
        (lambda K: K.rmatmat(np.ones(4)), r"^U: expected a 2-d array of shape \(4, k\)"),
        (lambda K: K.T @ np.ones((4, 1, 1)), r"^U: expected a 1-d or 2-d array"),
        (lambda K: K.T.matvec(np.ones((4, 2))), r"^U: expected a vector of shape \(4,\)"),
        (lambda K: np.ones((2, 2, 4)) @ K, r"^U: expected a 1-d or 2-d array"),
        # U's columns, not U.T's rows (the message said "has 5 rows" before)
        (lambda K: np.ones((2, 5)) @ K, r"^U: has 5 columns, expected 4; U @ K takes"),
        (lambda K: K.normal_matvec(np.ones((3, 2, 1))), r"^V: expected a 1-d or 2-d array"),
        (lambda K: K.gradient(np.ones((3, 2, 1))), r"^V: expected a 1-d or 2-d array"),
        (lambda K: K @ [[1.0, 2.0], [3.0]], r"^V: cannot be converted"),
    ],
)
def test_shape_errors_name_the_argument(call, pattern):
    K = KernelOperator(np.ones((4, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=pattern) as info:
        call(K)
    assert "array(" not in str(info.value) and len(str(info.value)) < 300


def test_sparse_right_hand_side_names_v():
    sparse = pytest.importorskip("scipy.sparse")
    K = KernelOperator(np.ones((4, 2)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"^V: sparse"):
        K @ sparse.csr_matrix(np.ones((3, 2)))


def test_right_shapes_still_work():
    rng = np.random.default_rng(1)
    X, Z = rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    K = KernelOperator(X, Z, gamma=0.5)
    dense = rbf_kernel(X, Z, gamma=0.5)
    v, V, u = rng.normal(size=3), rng.normal(size=(3, 2)), rng.normal(size=4)
    np.testing.assert_allclose(K @ v, dense @ v, rtol=1e-12)
    np.testing.assert_allclose(K.matvec(v[:, None]), dense @ v[:, None], rtol=1e-12)
    np.testing.assert_allclose(K @ V, dense @ V, rtol=1e-12)
    np.testing.assert_allclose(K.T @ u, dense.T @ u, rtol=1e-12)
    np.testing.assert_allclose(u @ K, u @ dense, rtol=1e-12)
    np.testing.assert_allclose(u[None, :] @ K, u[None, :] @ dense, rtol=1e-12)
    np.testing.assert_allclose(np.ones((2, 4)) @ K, np.ones((2, 4)) @ dense, rtol=1e-12)
    np.testing.assert_allclose((2 * K) @ v, 2 * dense @ v, rtol=1e-12)
    np.testing.assert_allclose((K @ K.T) @ u, dense @ (dense.T @ u), rtol=1e-12)


# --- item 12: finite values that overflow the operator's dtype --------------------------------


def test_float64_v_overflowing_float32_says_so():
    K = KernelOperator(np.ones((4, 2), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's cast warning is not the report
        for call, name in [
            (lambda: K @ np.full(4, 1e300), "V"),
            (lambda: K.T @ np.full((4, 2), -1e39), "U"),
            (lambda: K.normal_matvec(np.ones(4), sample_weight=np.full(4, 1e40)), "sample_weight"),
        ]:
            with pytest.raises(
                ValueError, match=rf"^{name}: finite values up to .*overflow float32"
            ):
                call()
    # A value that is not finite to begin with still says so.
    with pytest.raises(ValueError, match=r"^V: contains NaN or infinity"):
        K @ np.array([1.0, np.inf, 0.0, 0.0])
    # Within float32's range: converted and computed.
    np.testing.assert_allclose(K @ np.full(4, 1e30), np.full(4, 4e30), rtol=1e-6)


@pytest.mark.skipif(
    np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="longdouble is float64 here"
)
def test_longdouble_overflowing_float64_says_so():
    X = np.full((2, 2), np.longdouble("1e400"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^X: finite values up to 1e\+400 overflow float64"):
            kernel_matrix(X, kernel="linear")
        with pytest.raises(ValueError, match=r"^Z: finite values up to .*overflow float64"):
            KernelOperator(np.ones((2, 2)), X)


@pytest.mark.skipif(
    np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="longdouble is float64 here"
)
def test_longdouble_parameters_and_factors_beyond_float64_show_their_value():
    """They said "got inf", "got 0.0" (for a positive 1e-400) and "values up to inf"."""
    from gramfree import linalg

    for text, shown in (("1e400", r"1e\+400"), ("1e-400", "1e-400")):
        with pytest.raises(
            ValueError, match=rf"^gamma must be within float64's range, got {shown}"
        ):
            Gaussian(gamma=np.longdouble(text))
    assert Gaussian(gamma=np.longdouble("0.5")).gamma == 0.5
    big = np.full((1, 1), np.longdouble("1e400"))
    with pytest.raises(ValueError, match=r"^A: values up to 1e\+400 overflow float64"):
        linalg.cholesky(big)
    with pytest.raises(ValueError, match=r"^L: values up to 1e\+400 overflow float64"):
        linalg.solve_triangular(big, np.ones(1))


# --- item 15: the abstract Kernel, array parameters, nu spellings -----------------------------


def test_abstract_kernel_is_refused():
    with pytest.raises(TypeError, match="abstract base class.*concrete kernel"):
        Kernel()

    class Custom(Kernel):  # a subclass without a native kernel
        pass

    with pytest.raises(TypeError, match=r"^kernel: Custom does not implement native_spec"):
        get_kernel(Custom())
    with pytest.raises(TypeError, match=r"^kernel: Custom"):
        kernel_matrix(np.ones((2, 2)), kernel=Custom())


PARAMETERS = [
    (Gaussian, "gamma", 0.5),
    (Laplacian, "gamma", 0.5),
    (Laplacian, "norm", "l2"),
    (Matern, "length_scale", 2.0),
    (Matern, "nu", 2.5),
    (Polynomial, "degree", 2),
    (Polynomial, "gamma", 0.5),
    (Polynomial, "coef0", -1.0),
    (ArcCosine, "order", 1),
]


@pytest.mark.parametrize(
    "cls, name, value", PARAMETERS, ids=lambda p: getattr(p, "__name__", str(p))
)
def test_array_parameters_are_refused(cls, name, value):
    for bad in (np.array([value]), np.array(value), np.array([value, value])):
        with pytest.raises(TypeError, match=rf"^{name} must be .*ndarray"):
            cls(**{name: bad})
    with pytest.raises(TypeError, match=rf"^{name} must be"):
        get_kernel(cls.name, **{name: np.array([value])})


@pytest.mark.parametrize(
    "cls, name, value", PARAMETERS, ids=lambda p: getattr(p, "__name__", str(p))
)
def test_numpy_scalar_parameters_become_python_scalars(cls, name, value):
    numpy_value = np.str_(value) if isinstance(value, str) else np.array(value)[()]
    kernel = cls(**{name: numpy_value})
    stored = getattr(kernel, name)
    assert type(stored) is type(value) or (type(value) is int and type(stored) is int)
    assert stored == value
    assert kernel == cls(**{name: value})
    assert hash(kernel) == hash(cls(**{name: value}))


def test_nu_spellings():
    ls = 1.7
    kernels = [
        Matern(nu="inf", length_scale=ls),
        Matern(nu=math.inf, length_scale=ls),
        Matern(nu=np.inf, length_scale=ls),
        Matern(nu=np.float32(np.inf), length_scale=ls),
        get_kernel("matern", nu="inf", length_scale=ls),
        get_kernel("matern", nu=math.inf, length_scale=ls),
    ]
    assert len(set(kernels)) == 1
    assert all(k.nu == math.inf and type(k.nu) is float for k in kernels)
    X = np.random.default_rng(2).normal(size=(6, 3))
    K = kernels[0](X)
    np.testing.assert_allclose(K, SkMatern(length_scale=ls, nu=np.inf)(X), rtol=1e-12)
    np.testing.assert_allclose(K, np.exp(-_sqdist(X, X) / (2 * ls**2)), rtol=1e-12)
    np.testing.assert_array_equal(K, kernel_matrix(X, kernel="matern", nu="inf", length_scale=ls))
    for bad in ("Inf", "infinity", "1.5", ""):
        with pytest.raises(TypeError, match=r"^nu must be a real number or the string 'inf'"):
            Matern(nu=bad)


def test_check_dtype_rejects_other_dtypes():
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Gaussian().check_dtype(np.float16)
    Gaussian(gamma=1e290).check_dtype(np.float64)
    Linear().check_dtype(np.float32)
    ArcCosine().check_dtype("float32")


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: Gaussian(gamma=10**400), "gamma"),
        (lambda: Matern(length_scale=10**400), "length_scale"),
        (lambda: Polynomial(coef0=-(10**400)), "coef0"),
        (lambda: Polynomial(degree=10**400), "degree"),
    ],
)
def test_integers_beyond_float64_name_the_parameter(make, name):
    """A Python int too large for float64 is a ValueError naming the parameter (a bare
    OverflowError from float() before)."""
    with pytest.raises(ValueError, match=f"^{name} must be"):
        make()


@pytest.mark.parametrize("order", [">", "<"])
def test_float32_in_either_byte_order_stays_float32(order):
    """Big-endian float32 data is computed in float32, as native float32 is (it became
    float64 before: twice the memory), with the same values."""
    X = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    swapped = X.astype(X.dtype.newbyteorder(order))
    K = KernelOperator(swapped, kernel="rbf", gamma=0.5)
    assert K.dtype == np.float32
    np.testing.assert_array_equal(
        K.to_dense(), KernelOperator(X, kernel="rbf", gamma=0.5).to_dense()
    )
    assert kernel_matrix(swapped, kernel="rbf", gamma=0.5).dtype == np.float32


@pytest.mark.parametrize("cls", [Gaussian, Polynomial])
def test_kernels_check_float64_when_they_are_made(cls):
    """Kernels check their parameters against float64 when made (check_dtype's promise);
    Polynomial's check had moved into its indefiniteness test, run only by the fits, so
    Polynomial(gamma=1e-320) was made and failed later (a review)."""
    with pytest.raises(ValueError, match=r"gamma=1e-320 is out of float64's range"):
        cls(gamma=1e-320)


def test_matern_at_a_scaled_distance_of_1e50_is_zero():
    """Matern 3/2 at a scaled distance of 1e50 is 0; only the squared distance (1e400) it
    comes from overflows. It was refused (a review), naming that; now it is its value."""
    X = np.array([[0.0], [1e200]])
    K = kernel_matrix(X, kernel="matern", nu=1.5, length_scale=1e150)
    np.testing.assert_array_equal(K, np.eye(2))

"""Kernel specifications: values, names, parameter checks, and each kernel's values against
the textbook formula (tests/reference.py) and scikit-learn."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import reference as ref
import strategies as S
from hypothesis import given
from hypothesis import strategies as st

import gramfree
from gramfree.kernels import (
    KERNEL_NAMES,
    RBF,
    ArcCosine,
    Gaussian,
    Kernel,
    Laplacian,
    Linear,
    Matern,
    Polynomial,
    get_kernel,
)

ALL_KERNELS = [
    Gaussian(),
    Gaussian(gamma=0.5),
    Laplacian(),
    Laplacian(gamma=2.0, norm="l2"),
    Matern(),
    Matern(length_scale=2.0, nu=0.5),
    Matern(nu=2.5),
    Matern(nu=math.inf),
    Polynomial(),
    Polynomial(degree=2, gamma=0.25, coef0=-1.5),
    Linear(),
    ArcCosine(),
]


# --- values: repr, equality, hashing, pickling -------------------------------------------


@pytest.mark.parametrize(
    "kernel, text",
    [
        (Gaussian(), "Gaussian()"),
        (Gaussian(gamma=0.5), "Gaussian(gamma=0.5)"),
        (Laplacian(norm="l2"), "Laplacian(norm='l2')"),
        (Matern(nu=2.5), "Matern(nu=2.5)"),
        (Matern(length_scale=2.0, nu=0.5), "Matern(length_scale=2.0, nu=0.5)"),
        (Polynomial(degree=2), "Polynomial(degree=2)"),
        (Polynomial(coef0=0.0), "Polynomial(coef0=0.0)"),
        (Linear(), "Linear()"),
        (ArcCosine(), "ArcCosine()"),
    ],
)
def test_repr_shows_non_default_parameters(kernel, text):
    assert repr(kernel) == text


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=repr)
def test_repr_round_trips(kernel):
    classes = (Gaussian, Laplacian, Matern, Polynomial, Linear, ArcCosine)
    namespace = {c.__name__: c for c in classes}
    namespace["inf"] = math.inf
    assert eval(repr(kernel), namespace) == kernel


def test_equality_and_hashing():
    assert Gaussian(gamma=0.5) == Gaussian(gamma=0.5)
    assert Gaussian(gamma=1) == Gaussian(gamma=1.0)
    assert Gaussian(gamma=0.5) != Gaussian(gamma=0.25)
    assert Gaussian() != Gaussian(gamma=1.0)  # None (1/n_features) is not 1.0
    assert Gaussian(gamma=1.0) != Laplacian(gamma=1.0)  # same fields, different kernels
    assert Matern(nu=math.inf) != Gaussian(gamma=0.5)
    assert Polynomial(degree=2.0) == Polynomial(degree=2)
    assert Matern(nu=2.5) == Matern(nu=2.5, length_scale=1.0)
    assert RBF is Gaussian
    # Hashable and consistent with equality: usable as dict keys and in sets.
    table = {k: i for i, k in enumerate(ALL_KERNELS)}
    assert len(table) == len(ALL_KERNELS)
    assert hash(Polynomial(degree=2.0, gamma=1)) == hash(Polynomial(degree=2, gamma=1.0))
    assert len({Gaussian(gamma=0.5), Gaussian(gamma=0.5), Laplacian()}) == 2


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=repr)
def test_frozen(kernel):
    with pytest.raises(AttributeError):
        kernel.gamma = 3.0  # frozen dataclass: no attribute may be set


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=repr)
def test_pickle_and_copy_round_trip(kernel):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(kernel, protocol=protocol))
        assert back == kernel
        assert type(back) is type(kernel)
        assert hash(back) == hash(kernel)
    assert copy.deepcopy(kernel) == kernel
    # The unpickled kernel computes the same values.
    X = np.random.default_rng(1).uniform(-1, 1, (5, 3))
    np.testing.assert_array_equal(back(X), kernel(X))


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cls",
    [
        ("rbf", Gaussian),
        ("gaussian", Gaussian),
        ("RBF", Gaussian),
        ("laplacian", Laplacian),
        ("matern", Matern),
        ("poly", Polynomial),
        ("polynomial", Polynomial),
        ("linear", Linear),
        ("arccos", ArcCosine),
        ("arc-cosine", ArcCosine),
    ],
)
def test_get_kernel_names(name, cls):
    assert type(get_kernel(name)) is cls
    assert get_kernel(name) == cls()


def test_kernel_names_all_resolve():
    assert len(KERNEL_NAMES) >= 9
    for name in KERNEL_NAMES:
        assert isinstance(get_kernel(name), Kernel)


def test_get_kernel_parameters():
    assert get_kernel("rbf", gamma=0.5) == Gaussian(gamma=0.5)
    assert get_kernel("matern", nu=2.5) == Matern(nu=2.5, length_scale=1.0)
    assert get_kernel("laplacian", norm="l2", gamma=2) == Laplacian(gamma=2.0, norm="l2")
    # None means "the default", so estimators can pass every parameter through.
    assert get_kernel("poly", degree=2, gamma=None, coef0=None) == Polynomial(degree=2)
    assert get_kernel("linear", gamma=None) == Linear()
    kernel = Matern(nu=0.5)
    assert get_kernel(kernel) is kernel
    assert get_kernel(kernel, gamma=None) is kernel


@pytest.mark.parametrize("name", ["foo", "sigmoid", "chi2", "", "rbf "])
def test_get_kernel_unknown_name(name):
    with pytest.raises(ValueError, match=rf"kernel {name!r} is unknown"):
        get_kernel(name)
    with pytest.raises(ValueError, match="kernel"):
        gramfree.kernel_matrix(np.ones((2, 2)), kernel=name)


@pytest.mark.parametrize("kernel", [None, 3, 1.5, Gaussian, ["rbf"]])
def test_get_kernel_not_a_name(kernel):
    with pytest.raises(TypeError, match="kernel"):
        get_kernel(kernel)


def test_get_kernel_rejects_parameters_it_does_not_take():
    with pytest.raises(ValueError, match="gamma"):
        get_kernel("linear", gamma=1.0)
    with pytest.raises(ValueError, match="degree"):
        get_kernel("rbf", degree=2)
    with pytest.raises(ValueError, match="degre"):
        get_kernel("matern", nu=1.5, length_scale=1.0, degre=1)  # a typo is named
    with pytest.raises(ValueError, match="kernel is a Kernel object"):
        get_kernel(Gaussian(), gamma=0.5)


# --- invalid parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, exc, name",
    [
        (lambda: Gaussian(gamma=-1.0), ValueError, "gamma"),
        (lambda: Gaussian(gamma=0.0), ValueError, "gamma"),
        (lambda: Gaussian(gamma=math.nan), ValueError, "gamma"),
        (lambda: Gaussian(gamma=math.inf), ValueError, "gamma"),
        (lambda: Gaussian(gamma=True), TypeError, "gamma"),
        (lambda: Gaussian(gamma="1"), TypeError, "gamma"),
        (lambda: Gaussian(gamma=1j), TypeError, "gamma"),
        (lambda: Laplacian(gamma=-0.5), ValueError, "gamma"),
        (lambda: Laplacian(norm="l3"), ValueError, "norm"),
        (lambda: Laplacian(norm="L2"), ValueError, "norm"),
        (lambda: Matern(nu=1.0), ValueError, "nu"),
        (lambda: Matern(nu=2.0), ValueError, "nu"),
        (lambda: Matern(nu=-0.5), ValueError, "nu"),
        (lambda: Matern(nu=math.nan), ValueError, "nu"),
        (lambda: Matern(nu=True), TypeError, "nu"),
        (lambda: Matern(nu="1.5"), TypeError, "nu"),
        (lambda: Matern(length_scale=0.0), ValueError, "length_scale"),
        (lambda: Matern(length_scale=-1.0), ValueError, "length_scale"),
        (lambda: Matern(length_scale=False), TypeError, "length_scale"),
        (lambda: Polynomial(degree=0), ValueError, "degree"),
        (lambda: Polynomial(degree=-2), ValueError, "degree"),
        (lambda: Polynomial(degree=2.5), ValueError, "degree"),
        (lambda: Polynomial(degree=65), ValueError, "degree"),
        (lambda: Polynomial(degree=math.inf), ValueError, "degree"),
        (lambda: Polynomial(degree=math.nan), ValueError, "degree"),
        (lambda: Polynomial(degree=True), TypeError, "degree"),
        (lambda: Polynomial(degree="2"), TypeError, "degree"),
        (lambda: Polynomial(gamma=-1.0), ValueError, "gamma"),
        (lambda: Polynomial(coef0=math.inf), ValueError, "coef0"),
        (lambda: Polynomial(coef0=True), TypeError, "coef0"),
        (lambda: ArcCosine(order=2), ValueError, "order"),
        (lambda: ArcCosine(order=0), ValueError, "order"),
        # a bool is no integer here, as for degree (np.bool_ was TypeError, True ValueError)
        (lambda: ArcCosine(order=True), TypeError, "order"),
        (lambda: ArcCosine(order=np.bool_(True)), TypeError, "order"),
        (lambda: get_kernel("rbf", gamma=-1), ValueError, "gamma"),
        (lambda: get_kernel("matern", nu=3), ValueError, "nu"),
        (lambda: get_kernel("poly", degree=0), ValueError, "degree"),
    ],
)
def test_invalid_parameters(make, exc, name):
    with pytest.raises(exc, match=name):
        make()


def test_valid_edge_parameters():
    assert Polynomial(degree=1).degree == 1
    assert Polynomial(degree=64).degree == 64
    assert isinstance(Polynomial(degree=np.int64(3)).degree, int)
    assert Polynomial(degree=3.0).degree == 3 and isinstance(Polynomial(degree=3.0).degree, int)
    assert Polynomial(coef0=-2).coef0 == -2.0
    assert Gaussian(gamma=np.float32(0.5)).gamma == 0.5
    assert Matern(nu=np.float64(0.5)).nu == 0.5
    assert Matern(nu=math.inf).nu == math.inf


# --- values against the references -------------------------------------------------------


@pytest.mark.parametrize("family", list(S.KERNEL_FAMILIES))
@given(data=st.data())
def test_reference_agrees_with_sklearn(family, data):
    """The test's own reference and scikit-learn agree where scikit-learn has the kernel."""
    kernel, X, Z = data.draw(S.problems(family, max_rows=20, max_features=10))
    sk = ref.sklearn_kernel_matrix(kernel, X, Z)
    if sk is None:  # laplacian l2, arccos: no scikit-learn counterpart
        assert family in ("laplacian_l2", "arccos")
        return
    ours = ref.kernel_matrix(kernel, X, Z)
    ref.assert_rel_close(ours, sk, 1e-12, scale=ref.magnitude_matrix(kernel, X, Z))


@pytest.mark.parametrize("family", list(S.KERNEL_FAMILIES))
@given(data=st.data())
def test_kernel_call_matches_sklearn_and_reference(family, data):
    kernel, X, Z = data.draw(S.problems(family, max_rows=30, max_features=12))
    K = kernel(X, Z)
    scale = ref.magnitude_matrix(kernel, X, Z)
    ref.assert_rel_close(K, ref.kernel_matrix(kernel, X, Z), 1e-12, scale=scale, what="reference")
    sk = ref.sklearn_kernel_matrix(kernel, X, Z)
    if sk is not None:
        ref.assert_rel_close(K, sk, 1e-12, scale=scale, what="scikit-learn")


def test_gamma_none_is_one_over_n_features():
    X = np.random.default_rng(3).uniform(-1, 1, (6, 5))
    for name in ("rbf", "laplacian", "poly"):
        np.testing.assert_allclose(
            gramfree.kernel_matrix(X, kernel=name),
            gramfree.kernel_matrix(X, kernel=name, gamma=1.0 / 5),
            rtol=1e-15,
            atol=0,
        )
    ref.assert_rel_close(
        gramfree.kernel_matrix(X, kernel="laplacian", norm="l2"),
        ref.kernel_matrix(Laplacian(gamma=0.2, norm="l2"), X),
        1e-13,
    )


@given(length_scale=st.floats(0.2, 5.0), data=st.data())
def test_matern_inf_is_gaussian(length_scale, data):
    kernel, X, Z = data.draw(S.problems("gaussian", max_rows=25, max_features=10))
    gaussian = Gaussian(gamma=1.0 / (2.0 * length_scale**2))
    matern = Matern(length_scale=length_scale, nu=math.inf)
    expected = gaussian(X, Z)
    ref.assert_rel_close(matern(X, Z), expected, 1e-14)
    ref.assert_rel_close(
        matern(X, Z), ref.sklearn_kernel_matrix(matern, X, Z), 1e-12, what="scikit-learn"
    )


def test_arccos_zero_vector_and_known_angles():
    # Orthogonal unit vectors: t = pi/2 -> 1/pi; parallel: |x||z|; opposite: 0; zero rows: 0.
    X = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    Z = np.array([[0.0, 3.0], [4.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    K = ArcCosine()(X, Z)
    ref.assert_rel_close(
        K,
        ref.kernel_matrix(ArcCosine(), X, Z),
        1e-13,
        scale=ref.magnitude_matrix(ArcCosine(), X, Z),
    )
    assert K[0, 0] == pytest.approx(3.0 / math.pi, rel=1e-13)
    assert K[0, 1] == pytest.approx(4.0, rel=1e-13)
    assert abs(K[0, 2]) <= 1e-13
    assert np.all(K[1] == 0.0) and np.all(K[:, 3] == 0.0)
    assert K[2, 1] == pytest.approx(8.0, rel=1e-13)


ESTIMATORS_FOR_KERNELS = {
    "direct": ("KernelRegressor", dict(solver="direct")),
    "eigenpro": ("KernelRegressor", dict(solver="eigenpro", max_iter=3)),
    "nystrom-pcg": ("KernelRegressor", dict(solver="nystrom-pcg", n_centers=50)),
    "logistic": ("KernelClassifier", dict(loss="logistic", n_centers=50)),
    "cv": ("KernelRegressorCV", dict(alphas=[0.1, 1.0])),
}


@pytest.mark.parametrize("case", ESTIMATORS_FOR_KERNELS)
def test_indefinite_polynomial_kernel_is_refused_naming_coef0(case):
    """coef0 < 0 makes the polynomial kernel indefinite (diabetes, degree 4, coef0 -1:
    eigenvalues -735 to 872): five solvers failed with LAPACK's "leading minor 2 of 200"
    and eigenpro returned a model 98% off behind a max_iter warning (a review). The fit
    is refused naming coef0; coef0 = 0 still fits, and the operators still compute it."""
    import warnings

    from sklearn.datasets import load_diabetes

    from gramfree import kernel_matrix

    name, params = ESTIMATORS_FOR_KERNELS[case]

    def make():
        return getattr(gramfree, name)(**params)

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y > 140).astype(int) if "Classifier" in name else y
    X, y = X[:200], y[:200]
    bad = make().set_params(kernel="poly", degree=4, coef0=-1.0)
    with pytest.raises(ValueError, match=r"^coef0=-1: the polynomial kernel is not positive"):
        bad.fit(X, y)
    with pytest.raises(ValueError, match=r"^coef0=-1:"):  # as a kernel object too
        make().set_params(kernel=Polynomial(degree=4, coef0=-1.0)).fit(X, y)
    K = kernel_matrix(X, kernel=Polynomial(degree=4, gamma=0.1, coef0=-1.0))
    assert np.linalg.eigvalsh(K)[0] < 0  # indefinite indeed: the refusal is not overcautious
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eigenpro's 3 epochs
        make().set_params(kernel="poly", degree=2, coef0=0.0).fit(X, y)


@pytest.mark.parametrize("dtype, norm", [(np.float64, 1.3e154), (np.float32, 1.8e19)])
def test_arccos_of_large_finite_norms_is_finite(dtype, norm):
    """|x|^2 = 1.69e308 fits float64, but |x|^2 times the angular factor's pi did not: the
    kernel returned inf for a finite value (a review); the factor, at most 1, comes first."""
    X = np.array([[norm, 0.0]], dtype=dtype)
    expected = float(norm) ** 2  # k(x, x) = |x|^2 for the degree-1 arc-cosine kernel
    assert gramfree.kernel_matrix(X, kernel="arccos")[0, 0] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(gramfree.KernelOperator(X, kernel="arccos") @ np.ones(1, dtype=dtype)).all()


@pytest.mark.parametrize("nu", [1.5, 2.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matern_of_an_overflowing_distance_is_zero(nu, dtype):
    """(1 + r) exp(-r) with r = sqrt3 |x - z| / length_scale overflowing was inf * 0:
    NaN, reported as an overflow, for a kernel value of 0 (a review). Closed form: 0 there,
    and Matern's formula at the small distance."""
    big = float(np.finfo(dtype).max) / 4
    X = np.array([[0.0], [1e-3], [big]], dtype=dtype)
    Z = np.array([[0.0], [-big]], dtype=dtype)
    length_scale = 1e-3
    op = gramfree.KernelOperator(X, Z, kernel="matern", nu=nu, length_scale=length_scale)
    r = math.sqrt(3.0 if nu == 1.5 else 5.0)  # at |x - z| = length_scale
    near = (1 + r) * math.exp(-r) if nu == 1.5 else (1 + r + r * r / 3) * math.exp(-r)
    expected = np.array([[1.0, 0.0], [near, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(op.to_dense(), expected, rtol=1e-5, atol=0)
    np.testing.assert_allclose(op @ np.ones(2, dtype=dtype), expected.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(op.T @ np.ones(3, dtype=dtype), expected.sum(axis=0), rtol=1e-5)


def test_a_matrix_subclass_is_read_as_an_array():
    """np.matrix kept its 2-d rows: the row checks' products became matrix products, a
    numpy shape error naming nothing (a review); it is read as the base array."""
    X = np.matrix([[1e200, 0.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="X: the arccos kernel overflows float64 on row 0"):
        gramfree.KernelOperator(X, kernel="arccos")
    K = gramfree.KernelOperator(np.matrix([[1.0, 0.0], [1.0, 2.0]]), kernel="rbf", gamma=0.5)
    assert type(K.X) is np.ndarray
    np.testing.assert_allclose(K.to_dense(), np.exp(-0.5 * np.array([[0.0, 4.0], [4.0, 0.0]])))


_RANGES = [  # (kernel, params, dtype, smallest, largest) exactly as the docstrings state them
    ("rbf", {}, np.float64, "gamma", 4.2e-306, 9.9e291),
    ("rbf", {}, np.float32, "gamma", 3.1e-37, 1.0e31),
    ("laplacian", {}, np.float64, "gamma", 4.2e-306, 9.9e291),
    ("laplacian", {}, np.float32, "gamma", 3.1e-37, 1.0e31),
    ("laplacian", {"norm": "l2"}, np.float64, "gamma", 5.6e-152, 1.48e138),
    ("matern", {"nu": 0.5}, np.float64, "length_scale", 6.8e-139, 1.8e151),
    ("matern", {"nu": 1.5}, np.float64, "length_scale", 1.2e-138, 3.1e151),
    ("matern", {"nu": 2.5}, np.float64, "length_scale", 1.6e-138, 4.0e151),
    ("matern", {"nu": math.inf}, np.float64, "length_scale", 7.1e-147, 3.4e152),
    ("matern", {"nu": 0.5}, np.float32, "length_scale", 9.1e-13, 1.7e17),
    ("matern", {"nu": 1.5}, np.float32, "length_scale", 1.6e-12, 3.0e17),
    ("matern", {"nu": 2.5}, np.float32, "length_scale", 2.1e-12, 3.9e17),
    ("matern", {"nu": math.inf}, np.float32, "length_scale", 2.3e-16, 1.2e18),
]


@pytest.mark.parametrize("kernel, params, dtype, name, low, high", _RANGES)
def test_documented_parameter_ranges_hold(kernel, params, dtype, name, low, high):
    """The Gaussian's docs promised float64's whole normal range and Matern's a range
    wider than its distance check allows (a review): the ranges stated now are the ones
    accepted, and just beyond them ValueError names the parameter."""
    X = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=dtype)
    for value in (low, high):
        gramfree.kernel_matrix(X, kernel=kernel, **params, **{name: value})
    for value in (low / 1.2, high * 1.2):  # the stated limits are rounded inwards
        with pytest.raises(ValueError, match=name):
            gramfree.kernel_matrix(X, kernel=kernel, **params, **{name: value})

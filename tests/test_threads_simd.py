"""The same answers on 1 and 2 threads (both ways the engine splits work) and on every
instruction-set level this processor has, compared with the scalar path."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import reference as ref
import strategies as S
from hypothesis import given
from hypothesis import strategies as st

import gramfree
from gramfree import KernelOperator, _core, kernel_matrix
from gramfree.kernels import ArcCosine, Gaussian, Laplacian, Linear, Matern, Polynomial

LEVELS = ("scalar", "avx2", "avx512")
AVAILABLE = LEVELS[: LEVELS.index(_core.detected_simd_level()) + 1]
RTOL = {np.float32: 1e-5, np.float64: 1e-13}

KERNELS = [
    Gaussian(gamma=0.5),
    Laplacian(gamma=0.7),
    Laplacian(gamma=0.7, norm="l2"),
    Matern(nu=0.5, length_scale=1.3),
    Matern(nu=1.5),
    Matern(nu=2.5, length_scale=0.8),
    Matern(nu=float("inf")),
    Polynomial(degree=3, coef0=0.5, gamma=0.3),
    Linear(),
    ArcCosine(),
]


@pytest.fixture
def restore_simd():
    original = _core.simd_level()
    try:
        yield
    finally:
        _core.set_simd_level(original)
    assert _core.simd_level() == original


def all_results(kernel, X, Z, V, U, n_jobs=None):
    """Every operation of the operator, as a dict."""
    K = KernelOperator(X, Z, kernel, n_jobs=n_jobs)
    out = {
        "kernel_matrix": K.to_dense(),
        "matvec": K @ V,
        "matvec_1d": K @ V[:, 0],
        "rmatvec": K.T @ U,
        "normal_matvec": K.normal_matvec(V),
    }
    if not isinstance(kernel, ArcCosine):
        out["gradient"] = K.gradient(V)
    return out


def scales(kernel, X, Z, V, U):
    """Magnitudes the rounding errors are relative to (see reference.magnitudes)."""
    out = {
        "kernel_matrix": ref.magnitudes(kernel, "kernel_matrix", X, Z),
        "matvec": ref.magnitudes(kernel, "matvec", X, Z, V),
        "matvec_1d": ref.magnitudes(kernel, "matvec", X, Z, V[:, 0]),
        "rmatvec": ref.magnitudes(kernel, "rmatvec", X, Z, U),
        "normal_matvec": ref.magnitudes(kernel, "normal_matvec", X, Z, V),
    }
    if not isinstance(kernel, ArcCosine):
        out["gradient"] = ref.gradient(kernel, X, Z, V, magnitude=True)
    return out


def assert_same(a, b, rtol, scale, what):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        ref.assert_rel_close(a[key], b[key], rtol, scale=scale.get(key), what=f"{what} {key}")


def make(rng, n, m, d, k, dtype):
    X = (rng.uniform(-3, 3, (n, d)) / np.sqrt(d)).astype(dtype)
    Z = (rng.uniform(-3, 3, (m, d)) / np.sqrt(d)).astype(dtype)
    V = rng.normal(size=(m, k)).astype(dtype)
    U = rng.normal(size=(n, k)).astype(dtype)
    return X, Z, V, U


# --- threads -----------------------------------------------------------------------------

# (n, m): the usual split by rows of X; few rows and many columns (the engine splits Z's
# columns and reduces per-thread sums); the mirror image (rmatvec and the second half of
# the normal operator then split Z); tiny.
THREAD_SHAPES = [(200, 300), (3, 5000), (5000, 3), (1, 3000), (13, 17)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_one_and_two_threads_agree(kernel, dtype):
    rng = np.random.default_rng(20)
    for n, m in THREAD_SHAPES:
        X, Z, V, U = make(rng, n, m, 6, 3, dtype)
        one = all_results(kernel, X, Z, V, U, n_jobs=1)
        two = all_results(kernel, X, Z, V, U, n_jobs=2)
        assert_same(two, one, RTOL[dtype], scales(kernel, X, Z, V, U), f"{(n, m)}")
        # And both are right.
        expected = ref.matvec(kernel, X, Z, V)
        ref.assert_rel_close(
            two["matvec"],
            expected,
            1e-12 if dtype == np.float64 else 1e-5,
            scale=ref.magnitudes(kernel, "matvec", X, Z, V),
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
@pytest.mark.parametrize(
    "kernel", [Gaussian(gamma=0.5), Laplacian(gamma=0.7), Matern(nu=1.5), ArcCosine()], ids=repr
)
def test_one_and_two_threads_agree_many_features(kernel, dtype):
    """d >= 64: the normal operator's strip path (one engine call storing K(X_b, Z), then
    two products), including the few-rows/many-columns split of that engine call."""
    rng = np.random.default_rng(24)
    for n, m, d in [(3, 5000, 80), (5000, 3, 64), (300, 200, 70)]:
        X, Z, V, _ = make(rng, n, m, d, 3, dtype)
        w = rng.uniform(0, 2, n).astype(dtype)
        one = KernelOperator(X, Z, kernel, n_jobs=1)
        two = KernelOperator(X, Z, kernel, n_jobs=2)
        Kd, Ka = ref.kernel_matrix(kernel, X, Z), ref.magnitude_matrix(kernel, X, Z)
        Va = np.abs(V.astype(np.float64))
        for weights in (None, w):
            wd = np.ones(n) if weights is None else weights.astype(np.float64)
            scale = Ka.T @ (wd[:, None] * (Ka @ Va))
            a = one.normal_matvec(V, sample_weight=weights)
            b = two.normal_matvec(V, sample_weight=weights)
            ref.assert_rel_close(b, a, RTOL[dtype], scale=scale, what=f"threads {(n, m, d)}")
            ref.assert_rel_close(
                b,
                Kd.T @ (wd[:, None] * (Kd @ V)),
                1e-12 if dtype == np.float64 else 1e-5,
                scale=scale,
                what=f"reference {(n, m, d)}",
            )


@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_row_split_is_bitwise_independent_of_threads(kernel):
    """With enough rows of X each thread takes whole row panels and every output row is
    summed in the same order (engine.hpp), so 1, 2 and 3 threads give identical bits:
    DESIGN's "same result on any number of threads"."""
    rng = np.random.default_rng(21)
    for k in (2, 20):  # the lane-wise path and the micro-GEMM
        X, Z, V, U = make(rng, 400, 350, 5, k, np.float64)
        one = all_results(kernel, X, Z, V, U, n_jobs=1)
        for n_jobs in (2, 3):
            many = all_results(kernel, X, Z, V, U, n_jobs=n_jobs)
            for key in one:
                np.testing.assert_array_equal(
                    many[key], one[key], err_msg=f"{key} k={k} n_jobs={n_jobs}"
                )


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_repeated_calls_are_bitwise_identical(n_jobs):
    rng = np.random.default_rng(22)
    for n, m in [(3, 5000), (300, 200)]:
        X, Z, V, U = make(rng, n, m, 4, 2, np.float64)
        a = all_results(Matern(nu=2.5), X, Z, V, U, n_jobs=n_jobs)
        b = all_results(Matern(nu=2.5), X, Z, V, U, n_jobs=n_jobs)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@given(data=st.data())
def test_threads_agree_on_drawn_problems(data):
    kernel, X, Z = data.draw(S.problems())
    V = data.draw(S.vectors(Z.shape[0], 2))
    U = data.draw(S.vectors(X.shape[0], 2))
    one = all_results(kernel, X, Z, V, U, n_jobs=1)
    two = all_results(kernel, X, Z, V, U, n_jobs=2)
    sc = scales(kernel, X, Z, V, U)
    sc.pop("gradient", None)  # hypothesis data have near-ties; see test_operators
    one.pop("gradient", None)
    two.pop("gradient", None)
    assert_same(two, one, 1e-13, sc, repr(kernel))


# --- instruction sets --------------------------------------------------------------------


def test_simd_levels_reported():
    assert _core.detected_simd_level() in LEVELS
    assert _core.simd_level() in LEVELS
    assert LEVELS.index(_core.simd_level()) <= LEVELS.index(_core.detected_simd_level())
    assert gramfree.config()["simd_level"] == _core.simd_level()
    assert gramfree.config()["simd_detected"] == _core.detected_simd_level()


def test_set_simd_level_rejects_unknown_and_unsupported(restore_simd):
    with pytest.raises(ValueError, match="simd level"):
        _core.set_simd_level("sse9")
    for level in LEVELS[len(AVAILABLE) :]:  # above what this processor has
        with pytest.raises(ValueError, match=level):
            _core.set_simd_level(level)
    for level in AVAILABLE:
        _core.set_simd_level(level)
        assert _core.simd_level() == level


@pytest.mark.parametrize("level", AVAILABLE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_simd_level_agrees_with_scalar(kernel, dtype, level, restore_simd):
    rng = np.random.default_rng(23)
    # Sizes around the register tiles of every level (6 or 12 rows, 4 to 32 lanes).
    # k = 3: the lane-wise path; k = 26 and 70: the micro-GEMM (padded to whole vectors).
    for n, m, d, k in [
        (1, 1, 1, 3),
        (7, 33, 3, 26),
        (25, 17, 16, 3),
        (64, 65, 9, 70),
        (3, 2000, 5, 3),
        (30, 300, 4, 26),
    ]:
        X, Z, V, U = make(rng, n, m, d, k, dtype)
        _core.set_simd_level("scalar")
        scalar = all_results(kernel, X, Z, V, U)
        _core.set_simd_level(level)
        assert _core.simd_level() == level
        vector = all_results(kernel, X, Z, V, U)
        assert_same(vector, scalar, RTOL[dtype], scales(kernel, X, Z, V, U), f"{level} {(n, m, d)}")
        # Not just agreeing with each other: right.
        ref.assert_rel_close(
            vector["kernel_matrix"],
            ref.kernel_matrix(kernel, X, Z),
            1e-12 if dtype == np.float64 else 1e-5,
            scale=ref.magnitude_matrix(kernel, X, Z),
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
def test_gaussian_direct_difference_path_levels_and_threads(dtype, restore_simd):
    """Points far from the mean of Z with a narrow bandwidth take the Gaussian's
    direct-difference epilogue: the same on every level and thread count, and right."""
    rng = np.random.default_rng(25)
    kernel = Gaussian(gamma=0.5)
    for n, m, d in [(40, 70, 5), (3, 3000, 4), (30, 20, 70)]:
        X, Z, V, U = make(rng, n, m, d, 2, dtype)
        X = X + dtype(15.0)
        Z[: m // 2] += dtype(15.0)
        Z[m // 2 :] -= dtype(15.0)
        _core.set_simd_level("scalar")
        scalar = all_results(kernel, X, Z, V, U, n_jobs=1)
        sc = scales(kernel, X, Z, V, U)
        sc.pop("gradient")
        scalar.pop("gradient")
        ref.assert_rel_close(
            scalar["kernel_matrix"],
            ref.kernel_matrix(kernel, X, Z),
            1e-12 if dtype == np.float64 else 1e-5,
            what="scalar vs reference",
        )
        for level in AVAILABLE:
            _core.set_simd_level(level)
            for n_jobs in (1, 2):
                other = all_results(kernel, X, Z, V, U, n_jobs=n_jobs)
                other.pop("gradient")
                assert_same(other, scalar, RTOL[dtype], sc, f"{level} n_jobs={n_jobs}")


@pytest.mark.parametrize("level", AVAILABLE)
@given(data=st.data())
def test_simd_levels_agree_on_drawn_problems(level, data):
    kernel, X, Z = data.draw(S.problems(max_rows=40, max_features=20))
    V = data.draw(S.vectors(Z.shape[0], 2))
    original = _core.simd_level()
    try:
        _core.set_simd_level("scalar")
        scalar = kernel_matrix(X, Z, kernel), KernelOperator(X, Z, kernel) @ V
        _core.set_simd_level(level)
        vector = kernel_matrix(X, Z, kernel), KernelOperator(X, Z, kernel) @ V
    finally:
        _core.set_simd_level(original)
    ref.assert_rel_close(vector[0], scalar[0], 1e-13, scale=ref.magnitude_matrix(kernel, X, Z))
    ref.assert_rel_close(
        vector[1], scalar[1], 1e-13, scale=ref.magnitudes(kernel, "matvec", X, Z, V)
    )


ENV_VALUES = [*(level for level in AVAILABLE if level != "scalar"), "bogus"]


@pytest.fixture(scope="module")
def config_under_env():
    """``gramfree.config()``'s simd_level and simd_env in a fresh interpreter per value of
    GRAMFREE_SIMD (None: unset), all started at once."""
    code = "import gramfree; c = gramfree.config(); print(repr((c['simd_level'], c['simd_env'])))"
    procs = {}
    for value in ENV_VALUES:
        env = {k: v for k, v in os.environ.items() if k != "GRAMFREE_SIMD"}
        if value is not None:
            env["GRAMFREE_SIMD"] = value
        procs[value] = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for value, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results[value] = eval(out.strip())
        results[value, "stderr"] = err
    return results


@pytest.mark.parametrize("level", [level for level in AVAILABLE if level != "scalar"])
def test_gramfree_simd_selects_level(config_under_env, level):
    assert config_under_env[level] == (level, level)


def test_gramfree_simd_unusable_value_falls_back_to_detected(config_under_env):
    # An unusable value must not make the library unusable (dispatch.cpp): the best level,
    # and import says so (it went unsaid: a review).
    assert config_under_env["bogus"] == (_core.detected_simd_level(), "bogus")
    assert "GRAMFREE_SIMD='bogus' is ignored" in config_under_env["bogus", "stderr"]
    for level in ENV_VALUES[:-1]:  # a level that runs: no warning
        assert "GRAMFREE_SIMD" not in config_under_env[level, "stderr"]


def test_gramfree_simd_literal_command():
    """GRAMFREE_SIMD=scalar python -c "import gramfree; print(gramfree.config()['simd_level'])"
    prints scalar."""
    env = dict(os.environ, GRAMFREE_SIMD="scalar")
    proc = subprocess.run(
        [sys.executable, "-c", "import gramfree; print(gramfree.config()['simd_level'])"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "scalar"

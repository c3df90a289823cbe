"""The core's kernel table (csrc/gramfree/kernel_table.hpp, read through
gramfree.kernels.native_kernels()) drives these tests: every native kernel it lists is
checked against its float64 reference row (tests/reference.py NATIVE) through the CPU
operators, in float64 and float32 and on every instruction set, and must be reachable from
a user-facing kernel class. A new kernel (a table row, a formula, a reference row) is
covered here without editing this file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref

from gramfree import _core
from gramfree.kernels import KERNEL_CLASSES, Gaussian, Laplacian, Matern, native_kernels

KINDS = list(native_kernels())
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
# One value per domain, well inside it.
SAMPLE = {"positive": 0.7, "finite": 0.5, "power": 3}
LEVELS = ["scalar", "avx2", "avx512"]


def params_of(kind: str) -> dict:
    return {name: SAMPLE[domain] for name, domain in native_kernels()[kind].parameters.items()}


def data(dtype, outlier: bool, n: int = 37, m: int = 150, d: int = 7):
    """X (n, d) and Z (m, d) in [-1, 1] / sqrt(d); with ``outlier``, one row of X far from
    Z, which makes the Gaussian sum |x - z|^2 directly instead of by its expansion (and its
    gradient go pair by pair)."""
    rng = np.random.default_rng([n, m, d])
    X = rng.uniform(-1, 1, (n, d)) / math.sqrt(d)
    Z = rng.uniform(-1, 1, (m, d)) / math.sqrt(d)
    if outlier:
        X[0, 0] += 12.0
    return X.astype(dtype), Z.astype(dtype)


def levels() -> list[str]:
    return LEVELS[: LEVELS.index(_core.detected_simd_level()) + 1]


def test_every_native_kernel_has_a_reference_row():
    missing = [kind for kind in KINDS if kind not in ref.NATIVE]
    assert not missing, f"no reference row in tests/reference.py NATIVE for {missing}"
    stale = sorted(set(ref.NATIVE) - set(KINDS))
    assert not stale, f"reference rows for kernels the core does not have: {stale}"


def test_rows_are_well_formed():
    for name, row in native_kernels().items():
        assert row.name == name
        assert row.metric in ("dot", "sqdist", "l1")
        assert set(row.parameters) <= {"gamma", "coef0", "degree", "length_scale"}
        assert set(row.parameters.values()) <= set(SAMPLE)
        assert row.gradient in ("none", "fused", "direct", "constant")
        assert row.has_gradient == (row.gradient != "none")


@pytest.mark.parametrize("outlier", [False, True], ids=["near", "outlier"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("kind", KINDS)
def test_operators_match_reference_row(kind, dtype, outlier):
    """K @ V (one, a few and many right-hand sides) and the stored block K(X, Z)."""
    params = params_of(kind)
    X, Z = data(dtype, outlier)
    K = ref.NATIVE[kind](X, Z, **params)  # from the very same (possibly float32) values
    rng = np.random.default_rng(3)
    saved = _core.simd_level()
    try:
        for level in levels():
            _core.set_simd_level(level)
            what = f"{kind} {dtype.__name__} simd={level}"
            block = _core.kernel_block(X, Z, kind=kind, **params)
            assert block.dtype == dtype
            ref.assert_rel_close(block, K, RTOL[dtype], what=f"{what} block")
            for k in (1, 5, 20):
                V = rng.normal(size=(Z.shape[0], k)).astype(dtype)
                out = _core.kernel_matvec(X, Z, V, kind=kind, **params)
                scale = np.abs(K) @ np.abs(V.astype(np.float64))
                ref.assert_rel_close(out, K @ V, RTOL[dtype], scale=scale, what=f"{what} k={k}")
    finally:
        _core.set_simd_level(saved)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("kind", KINDS)
def test_diagonal_matches_reference_row(kind, dtype):
    params = params_of(kind)
    X, _ = data(dtype, outlier=True)
    expected = np.diag(ref.NATIVE[kind](X, X, **params))
    np.testing.assert_allclose(_core.kernel_diagonal(X, kind=kind, **params), expected, rtol=1e-12)


@pytest.mark.parametrize("outlier", [False, True], ids=["near", "outlier"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradient_matches_reference_row(kind, outlier):
    """Against central differences of the reference row, on points that differ in every
    coordinate (no kink of the L1 distance or at x == z within the step); or, for a kernel
    the table gives no gradient, a ValueError naming it."""
    params = params_of(kind)
    rng = np.random.default_rng(4)
    # Coordinates of X at 0.25 (mod 0.5) from those of Z, give or take 0.1: 0.05 apart.
    X = 0.5 * rng.integers(-2, 3, (9, 4)) + 0.25 + rng.uniform(-0.1, 0.1, (9, 4))
    Z = 0.5 * rng.integers(-2, 3, (11, 4)) + rng.uniform(-0.1, 0.1, (11, 4))
    if outlier:
        X[0, 0] += 12.0
    V = rng.normal(size=(11, 2))
    if not native_kernels()[kind].has_gradient:
        with pytest.raises(ValueError, match=kind):
            _core.kernel_grad_matvec(X, Z, V, kind=kind, **params)
        return
    G = _core.kernel_grad_matvec(X, Z, V, kind=kind, **params).reshape(9, 2, 4)
    h = 1e-6
    fd = np.empty_like(G)
    for t in range(4):
        step = np.zeros(4)
        step[t] = h
        plus = ref.NATIVE[kind](X + step, Z, **params) @ V
        minus = ref.NATIVE[kind](X - step, Z, **params) @ V
        fd[:, :, t] = (plus - minus) / (2 * h)
    ref.assert_rel_close(G, fd, 1e-6, what=f"{kind} gradient")


def examples():
    """Instances of every user-facing kernel class, over the fields that choose the native
    kernel."""
    variants = {
        Laplacian: [{"norm": "l1"}, {"norm": "l2"}],
        Matern: [{"nu": nu} for nu in (0.5, 1.5, 2.5, math.inf)],
    }
    for cls in KERNEL_CLASSES:
        for fields in variants.get(cls, [{}]):
            yield cls(**fields)


def test_every_native_kernel_is_reachable_from_a_class():
    reached = set()
    for kernel in examples():
        spec = kernel.native_spec(5)
        kind = spec.pop("kind")
        assert set(spec) == set(native_kernels()[kind].parameters), repr(kernel)
        reached.add(kind)
    missing = sorted(set(KINDS) - reached)
    assert not missing, f"native kernels no class in gramfree.kernels maps onto: {missing}"


def test_a_class_must_pass_exactly_the_parameters_of_its_native_kernel():
    with pytest.raises(TypeError, match="takes"):
        Gaussian()._native("gaussian", gamma=1.0, length_scale=2.0)
    with pytest.raises(TypeError, match="takes"):
        Gaussian()._native("polynomial", gamma=1.0)

"""Hypothesis strategies: shapes, bounded data and kernels with parameters.

Sizes are drawn both at random in 1..70 (samples) / 1..40 (features) and from a list of
edge sizes around the engine's register tiles (multiples of 8, 16 and 32 and their
neighbours, and 1). Data lie in [-3, 3] and are divided by sqrt(n_features) (by
n_features for the L1 Laplacian), so that distances stay O(10) and the kernels do not all
underflow to 0 for any d.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gramfree.kernels import ArcCosine, Gaussian, Laplacian, Linear, Matern, Polynomial

EDGE_ROWS = (
    1,
    2,
    3,
    5,
    7,
    8,
    9,
    11,
    12,
    13,
    15,
    16,
    17,
    23,
    24,
    25,
    31,
    32,
    33,
    47,
    48,
    49,
    63,
    64,
    65,
    70,
)
EDGE_COLS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40)
BOUND = 3.0


def sizes(lo: int = 1, hi: int = 70) -> st.SearchStrategy[int]:
    edges = [s for s in EDGE_ROWS if lo <= s <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def n_features(lo: int = 1, hi: int = 40) -> st.SearchStrategy[int]:
    edges = [s for s in EDGE_COLS if lo <= s <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


@st.composite
def shapes(draw, max_rows: int = 70, max_features: int = 40):
    """``(n, m, d)``, always including the degenerate n = 1, m = 1, d = 1 as candidates."""
    return draw(sizes(1, max_rows)), draw(sizes(1, max_rows)), draw(n_features(1, max_features))


@st.composite
def matrices(draw, rows: int, cols: int, scale: float | None = None):
    """A float64 array of shape (rows, cols), values in [-3, 3] / sqrt(cols).

    Either hypothesis' own floats (which like 0, the bounds and repeated values: ties,
    zero rows, duplicate points) or seeded numpy draws (uniform, normal clipped,
    a coarse grid with many exact ties)."""
    scale = 1.0 / math.sqrt(cols) if scale is None else scale
    source = draw(st.sampled_from(["hypothesis", "uniform", "normal", "grid"]))
    if source == "hypothesis":
        A = draw(
            hnp.arrays(
                np.float64,
                (rows, cols),
                elements=st.floats(-BOUND, BOUND, allow_nan=False, allow_subnormal=False),
            )
        )
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if source == "uniform":
            A = rng.uniform(-BOUND, BOUND, (rows, cols))
        elif source == "normal":
            A = np.clip(rng.normal(0.0, 1.0, (rows, cols)), -BOUND, BOUND)
        else:
            A = rng.integers(-3, 4, (rows, cols)).astype(np.float64)
    # Values below 1e-6 become exact zeros: 1e-300 or a float32 subnormal tests underflow of
    # the number format (where no relative error bound holds), not the kernels.
    A[np.abs(A) < 1e-6] = 0.0
    return A * scale


@st.composite
def vectors(draw, rows: int, cols: int):
    """Right-hand sides: seeded standard normal, sometimes all ones (no cancellation)."""
    if draw(st.booleans()):
        return np.ones((rows, cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.normal(size=(rows, cols))


gammas = st.one_of(st.none(), st.floats(0.05, 1.0), st.sampled_from([0.1, 0.5, 1.0]))

# One strategy per kernel family: test rows are parametrised by family, hypothesis draws
# the parameters within it.
KERNEL_FAMILIES = {
    "gaussian": st.builds(Gaussian, gamma=gammas),
    "laplacian_l1": st.builds(Laplacian, gamma=gammas, norm=st.just("l1")),
    "laplacian_l2": st.builds(Laplacian, gamma=gammas, norm=st.just("l2")),
    "matern0.5": st.builds(Matern, length_scale=st.floats(0.3, 3.0), nu=st.just(0.5)),
    "matern1.5": st.builds(Matern, length_scale=st.floats(0.3, 3.0), nu=st.just(1.5)),
    "matern2.5": st.builds(Matern, length_scale=st.floats(0.3, 3.0), nu=st.just(2.5)),
    "matern_inf": st.builds(Matern, length_scale=st.floats(0.75, 3.0), nu=st.just(math.inf)),
    "polynomial": st.builds(
        Polynomial,
        degree=st.integers(1, 5),
        gamma=gammas,
        coef0=st.one_of(
            st.sampled_from([0.0, 1.0, -1.0]), st.floats(0.01, 2.0), st.floats(-2.0, -0.01)
        ),
    ),
    "linear": st.just(Linear()),
    "arccos": st.just(ArcCosine()),
}

# Every family with a gradient (all but arc-cosine).
GRADIENT_FAMILIES = [name for name in KERNEL_FAMILIES if name != "arccos"]

kernels = st.one_of(*KERNEL_FAMILIES.values())


def data_scale(kernel, d: int) -> float:
    """Divide the data by this so that the kernel's distance stays O(1) for any d: the L1
    distance grows like d, the Euclidean one like sqrt(d). (A float32 exp(-s) is only as
    accurate as s is, relative error ~ s * eps, so unbounded s would test nothing.)"""
    if isinstance(kernel, Laplacian) and kernel.norm == "l1":
        return 1.0 / d
    return 1.0 / math.sqrt(d)


@st.composite
def problems(draw, family: str | None = None, max_rows: int = 70, max_features: int = 40):
    """``(kernel, X, Z)`` with X (n, d) and Z (m, d) in float64."""
    kernel = draw(KERNEL_FAMILIES[family] if family else kernels)
    n, m, d = draw(shapes(max_rows, max_features))
    X = draw(matrices(n, d, scale=data_scale(kernel, d)))
    Z = draw(matrices(m, d, scale=data_scale(kernel, d)))
    return kernel, X, Z


@st.composite
def separated_pair(draw, max_rows: int = 10, max_features: int = 6):
    """X and Z whose coordinates differ by at least 0.05 in every pair (x_l != z_l, so
    x != z): the non-smooth kernels are differentiable there, and finite differences with
    a step far below 0.05 never cross a kink. X lives near 0.25 + Z/2, Z near Z/2."""
    n = draw(st.integers(1, max_rows))
    m = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_features))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = 0.5 * rng.integers(-5, 5, (n, d)) + 0.25 + rng.uniform(-0.1, 0.1, (n, d))
    Z = 0.5 * rng.integers(-5, 5, (m, d)) + rng.uniform(-0.1, 0.1, (m, d))
    scale = 1.0 / math.sqrt(d)
    return X * scale, Z * scale

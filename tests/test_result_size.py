"""Native calls whose result size the caller controls refuse, before allocating, a result
larger than the machine's memory (or than the address space), with a message naming the
result and how to ask for less -- never a MemoryError deep inside, an overcommitted
allocation killed later, or a wrapped-around size."""

from __future__ import annotations

import numpy as np
import pytest

from gramfree import PathKernelRegressor, _core
from gramfree.pathkernel.network import Network


def _spec(sizes):
    return Network(tuple(sizes), "tanh", "squared").spec(
        learning_rate=0.1, n_steps=2, batch_size=0, alpha=0.0, seed=0, shuffle=False
    )


def test_path_kernel_against_a_huge_set_is_refused():
    """path_kernel(X, Y) is (len(X), len(Y), k): 10^6 x 10^6 doubles is 8 TB."""
    rng = np.random.default_rng(0)
    model = PathKernelRegressor((4,), learning_rate=0.05, n_steps=5, random_state=0).fit(
        rng.normal(size=(20, 2)), rng.normal(size=20)
    )
    big = np.zeros((1_000_000, 2))
    with pytest.raises(
        ValueError,
        match=r"kernel of shape \(1000000, 1000000, 1\) needs .* "
        r"MiB( with its workspace)?, more than this machine's .*fewer rows",
    ):
        model.path_kernel(big, big)
    with pytest.raises(ValueError, match="kernel of shape"):
        model.tangent_kernel(big, big, step=5)


def test_predict_with_huge_output_is_refused():
    """One input feature and 2^16 outputs: 2^20 rows of X (8 MiB) would ask for 512 GiB."""
    sizes = (1, 2, 2**16)
    w = np.zeros(Network(sizes, "tanh", "squared").n_params)
    X = np.zeros((2**20, 1))
    with pytest.raises(ValueError, match=r"predictions of shape \(1048576, 65536\) needs"):
        _core.mlp_predict(_spec(sizes), w, X)


def test_small_results_are_unaffected():
    sizes = (1, 2, 3)
    w = np.arange(Network(sizes, "tanh", "squared").n_params, dtype=float) / 10
    out = _core.mlp_predict(_spec(sizes), w, np.ones((4, 1)))
    assert out.shape == (4, 3) and np.all(np.isfinite(out))


def test_tangent_kernel_counts_its_workspace():
    """tangent_kernel allocates two (len(X), len(Y)) buffers beside its (len(X), len(Y), k)
    result: a result of half the machine's memory passed the check and then needed 1.5
    times the memory (a review measured 3.0x the result's size at k = 1). The workspace is
    counted; the result alone would fit."""
    import math
    import os

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    rows = math.isqrt(int(0.5 * physical / 8))  # a (rows, rows, 1) result: half of memory
    rng = np.random.default_rng(0)
    model = PathKernelRegressor((4,), learning_rate=0.05, n_steps=5, random_state=0).fit(
        rng.normal(size=(20, 2)), rng.normal(size=20)
    )
    big = np.zeros((rows, 2))
    with pytest.raises(ValueError, match=r"kernel of shape .* MiB with its workspace, more than"):
        model.tangent_kernel(big, big, step=5)
    small = model.tangent_kernel(big[:3], big[:4], step=5)  # small ones are unaffected
    assert small.shape == (3, 4) and np.all(np.isfinite(small))


def test_operator_gradient_refusal_names_the_shape_asked_for():
    """KernelOperator.gradient is (n, k, d); the refusal gave the core's flat (n, k * d),
    a shape the caller never asked for (a review)."""
    from gramfree import KernelOperator

    K = KernelOperator(np.zeros((100_000, 100)), np.zeros((10, 100)))
    with pytest.raises(
        ValueError,
        match=r"^result of shape \(100000, 5000, 100\) \(the gradient.* needs \d+ MiB, more than "
        r"this machine's .*fewer columns of V",
    ):
        K.gradient(np.zeros((10, 5000)))

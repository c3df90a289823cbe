"""The GPU operators against the CPU operators, and the device argument everywhere.

Where no GPU is visible (CI, this project's build machines) the tests here check that
``device="cuda"`` refuses clearly, ``"auto"`` falls back to the CPU bit for bit, and bad
device values are named; the comparisons of every GPU operator with its CPU twin run only
where ``gramfree.device.cuda_devices()`` lists a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import gramfree
from gramfree import KernelClassifier, KernelOperator, KernelRegressor, _core, kernel_matrix
from gramfree.device import cuda_devices, resolve_device

HAVE_GPU = _core.cuda_device_count() > 0
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no CUDA device visible")
needs_no_gpu = pytest.mark.skipif(HAVE_GPU, reason="a CUDA device is visible")

# (name, native spec, parameters for gramfree's Python API) for every native kernel.
KERNELS = [
    ("gaussian", {"kernel": "rbf", "gamma": 0.3}),
    ("laplacian_l1", {"kernel": "laplacian", "gamma": 0.2}),
    ("laplacian_l2", {"kernel": "laplacian", "gamma": 0.2, "norm": "l2"}),
    ("matern12", {"kernel": "matern", "nu": 0.5, "length_scale": 1.5}),
    ("matern32", {"kernel": "matern", "nu": 1.5, "length_scale": 1.5}),
    ("matern52", {"kernel": "matern", "nu": 2.5, "length_scale": 1.5}),
    ("polynomial", {"kernel": "poly", "degree": 3, "gamma": 0.1, "coef0": 1.0}),
    ("linear", {"kernel": "linear"}),
    ("arccos1", {"kernel": "arccos"}),
]


def _data(n, m, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    Z = rng.normal(size=(m, d)).astype(dtype)
    V = rng.normal(size=(m, k)).astype(dtype)
    U = rng.normal(size=(n, k)).astype(dtype)
    w = rng.uniform(0.5, 2.0, size=n).astype(dtype)
    return X, Z, V, U, w


def _close(gpu, cpu, dtype):
    # Relative to the largest entry: sums of many terms of both signs.
    scale = max(float(np.max(np.abs(cpu))), 1e-30)
    err = float(np.max(np.abs(gpu - cpu))) / scale
    assert err <= (1e-5 if dtype == np.float32 else 1e-12), err


# ---------------------------------------------------------------- everywhere


def test_config_reports_cuda():
    c = gramfree.config()
    assert isinstance(c["cuda_compiled"], bool)
    assert c["cuda_devices"] == cuda_devices()
    assert len(c["cuda_devices"]) == _core.cuda_device_count()
    if not c["cuda_compiled"]:
        assert c["cuda_runtime"] == 0 and c["cuda_devices"] == []


def test_show_config_names_devices(capsys):
    gramfree.show_config()
    out = capsys.readouterr().out
    assert "cuda devices" in out
    if not HAVE_GPU:
        assert "none visible" in out


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "", 3, ["cuda"]])
def test_bad_device_names_the_argument(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)
    with pytest.raises(ValueError, match="device"):
        KernelOperator(np.ones((3, 2)), device=bad)


def test_device_strings_resolve():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    assert resolve_device(None) == "cpu"
    assert resolve_device("auto") == ("cuda:0" if HAVE_GPU else "cpu")


@needs_no_gpu
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_gpu_refuses_clearly(device):
    X = np.ones((4, 2))
    with pytest.raises(RuntimeError, match=r"device='cuda.*(without CUDA|no CUDA device)"):
        KernelOperator(X, device=device)
    with pytest.raises(RuntimeError, match="device="):
        kernel_matrix(X, device=device)
    with pytest.raises(RuntimeError, match="device="):
        KernelRegressor(device=device).fit(X, np.arange(4.0))


@needs_no_gpu
def test_native_cuda_entry_points_refuse_without_gpu():
    X = np.ones((4, 2))
    V = np.ones((4, 1))
    for fn, args in (
        (_core.cuda_kernel_matvec, (X, X, V)),
        (_core.cuda_kernel_rmatvec, (X, X, V)),
        (_core.cuda_kernel_normal_matvec, (X, X, V)),
        (_core.cuda_kernel_block, (X, X)),
    ):
        with pytest.raises(RuntimeError, match="CUDA"):
            fn(*args, kind="gaussian", gamma=1.0)
    with pytest.raises(RuntimeError, match="CUDA"):
        _core.cuda_device_info(0)


@needs_no_gpu
def test_auto_falls_back_to_the_cpu_bit_for_bit():
    X, Z, V, U, w = _data(300, 70, 5, 3, np.float64)
    a = KernelOperator(X, Z, "rbf", gamma=0.3, device="auto")
    c = KernelOperator(X, Z, "rbf", gamma=0.3)
    assert a.device == "cpu"
    np.testing.assert_array_equal(a @ V, c @ V)
    np.testing.assert_array_equal(a.T @ U, c.T @ U)
    np.testing.assert_array_equal(a.normal_matvec(V, w), c.normal_matvec(V, w))
    np.testing.assert_array_equal(
        kernel_matrix(X, Z, "rbf", gamma=0.3, device="auto"), kernel_matrix(X, Z, "rbf", gamma=0.3)
    )
    y = X[:, 0] - X[:, 1] ** 2
    p_auto = KernelRegressor(gamma=0.3, alpha=1e-2, device="auto").fit(X, y).predict(Z)
    p_cpu = KernelRegressor(gamma=0.3, alpha=1e-2).fit(X, y).predict(Z)
    np.testing.assert_array_equal(p_auto, p_cpu)


def test_estimators_take_device_as_a_parameter():
    from sklearn.base import clone

    est = KernelClassifier(device="auto")
    assert est.get_params()["device"] == "auto"
    assert clone(est).device == "auto"
    assert KernelRegressor().device == "cpu"


# ---------------------------------------------------------------- on a GPU
# Sizes that no tile divides (64 x 64 tiles, 16-deep stages, 32 or 16 columns of V).

SHAPES = [(97, 131, 5, 1), (300, 70, 33, 3), (129, 257, 70, 40), (1, 65, 3, 2)]


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,params", KERNELS, ids=[k[0] for k in KERNELS])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gpu_operators_match_cpu(shape, name, params, dtype):
    n, m, d, k = shape
    X, Z, V, U, w = _data(n, m, d, k, dtype)
    params = dict(params)
    kernel = params.pop("kernel")
    cpu = KernelOperator(X, Z, kernel, **params)
    gpu = KernelOperator(X, Z, kernel, device="cuda", **params)
    _close(gpu @ V, cpu @ V, dtype)
    _close(gpu.T @ U, cpu.T @ U, dtype)
    _close(gpu.normal_matvec(V, w), cpu.normal_matvec(V, w), dtype)
    _close(gpu.normal_matvec(V), cpu.normal_matvec(V), dtype)
    _close(gpu.to_dense(), cpu.to_dense(), dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_tiles_when_the_data_exceed_the_memory_allowed(dtype):
    # A budget of a few hundred KiB forces X tiles, Z chunks and partial sums: the path
    # that lets n exceed the GPU's memory.
    X, Z, V, U, w = _data(5000, 3000, 20, 2, dtype, seed=1)
    spec = {"kind": "gaussian", "gamma": 0.05}
    budget = 400_000
    _close(
        _core.cuda_kernel_matvec(X, Z, V, **spec, max_device_bytes=budget),
        _core.kernel_matvec(X, Z, V, **spec),
        dtype,
    )
    _close(
        _core.cuda_kernel_rmatvec(X, Z, U, **spec, max_device_bytes=budget),
        _core.kernel_rmatvec(X, Z, U, **spec),
        dtype,
    )
    _close(
        _core.cuda_kernel_block(X, Z, **spec, max_device_bytes=budget),
        _core.kernel_block(X, Z, **spec),
        dtype,
    )
    _close(
        _core.cuda_kernel_normal_matvec(
            X, Z, V, **spec, max_device_bytes=1_000_000, sample_weight=w
        ),
        _core.kernel_normal_matvec(X, Z, V, **spec, sample_weight=w),
        dtype,
    )


@needs_gpu
def test_gpu_results_are_deterministic():
    X, Z, V, _, _ = _data(50, 20000, 16, 1, np.float32)
    op = KernelOperator(X, Z, "rbf", gamma=0.1, device="cuda")
    np.testing.assert_array_equal(op @ V, op @ V)


@needs_gpu
def test_gpu_estimator_matches_cpu():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    kw = dict(gamma=1e-3, alpha=1e-3, solver="nystrom-pcg", n_centers=500, random_state=0)
    cpu = KernelClassifier(**kw).fit(X[:1200], y[:1200])
    gpu = KernelClassifier(device="cuda", **kw).fit(X[:1200], y[:1200])
    _close(gpu.decision_function(X[1200:]), cpu.decision_function(X[1200:]), np.float32)


@needs_gpu
def test_gpu_device_index_out_of_range():
    with pytest.raises(ValueError, match="device"):
        KernelOperator(np.ones((3, 2)), device=f"cuda:{_core.cuda_device_count()}")

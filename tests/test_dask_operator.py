"""KernelOperator over a dask X (gramfree._dask_operator): every product is a dask array,
computed chunk by chunk on a real two-process LocalCluster (and on dask's local
scheduler), and equals the in-memory operator's and a float64 numpy reference's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402  (after the skips: the extra may be missing)
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics.pairwise import rbf_kernel  # noqa: E402

from gramfree import KernelOperator  # noqa: E402

GAMMA = 0.05
# Relative agreement (max abs difference over max abs value): with the in-memory operator
# (same per-row kernels; sums over rows in another order) and with sklearn's float64
# kernel matrix (another formula for the distances).
TOL = {np.float64: (1e-12, 1e-10), np.float32: (1e-5, 1e-4)}


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def data():
    X = load_digits().data / 16.0
    rng = np.random.default_rng(0)
    Z = X[np.sort(rng.choice(len(X), size=80, replace=False))]
    return X, Z


def _operands(n, m):
    rng = np.random.default_rng(1)
    return dict(
        v=rng.normal(size=m),
        V=rng.normal(size=(m, 3)),
        u=rng.normal(size=n),
        U=rng.normal(size=(n, 2)),
        w=rng.uniform(0.2, 3.0, size=n),
    )


class Checks:
    """Lazy results and their references; ``run`` computes them all at once (one
    ``dask.compute``: one round trip to the cluster) and compares shape, dtype and values."""

    def __init__(self, dtype):
        self.dtype, self.items = dtype, []

    def __call__(self, result, in_memory, reference):
        assert isinstance(result, da.Array), type(result)
        self.items.append((result, in_memory, reference))

    def run(self):
        dtype = self.dtype
        outs = dask.compute(*(item[0] for item in self.items))
        for k, (out, (_, in_memory, reference)) in enumerate(zip(outs, self.items)):
            tol_mem, tol_ref = TOL[dtype]
            assert isinstance(out, np.ndarray), k
            assert out.shape == in_memory.shape == reference.shape, k
            assert out.dtype == dtype, k
            assert rel(out, in_memory) < tol_mem, k
            assert rel(out, reference) < tol_ref, k
        return len(outs)


def _check_all_products(X, Z, chunks, dtype):
    X, Z = X.astype(dtype), Z.astype(dtype)
    X_before, Z_before = X.copy(), Z.copy()
    ops = _operands(len(X), len(Z))
    saved = {k: a.copy() for k, a in ops.items()}
    v, V, u, U, w = (ops[k] for k in "vVuUw")
    # The float64 reference on the very points the operator sees (float32 ones widened).
    X64, Z64 = X.astype(np.float64), Z.astype(np.float64)
    R = rbf_kernel(X64, Z64, gamma=GAMMA)

    dX = da.from_array(X, chunks=chunks)
    _check = Checks(dtype)
    K = KernelOperator(dX, Z, "rbf", gamma=GAMMA, n_jobs=1)
    M = KernelOperator(X, Z, "rbf", gamma=GAMMA, n_jobs=1)
    assert isinstance(K, KernelOperator)
    assert K.shape == M.shape == (len(X), len(Z)) and K.dtype == M.dtype == dtype
    assert K.T.shape == (len(Z), len(X))
    assert repr(K).startswith(f"<KernelOperator {len(X)}x{len(Z)} Gaussian")
    assert "dask" in repr(K) and "dask" not in repr(M)

    # K @ V: X's row chunks, vector and matrix right-hand sides.
    _check(K @ v, M @ v, R @ v)
    assert (K @ v).chunks == (dX.chunks[0],)
    _check(K.matvec(v), M.matvec(v), R @ v)
    _check(K.matvec(V[:, :1]), M.matvec(V[:, :1]), R @ V[:, :1])
    _check(K @ V, M @ V, R @ V)
    _check(K.matmat(V), M.matmat(V), R @ V)

    # K.T @ U: dask or numpy U, tree-reduced over the chunks.
    du = da.from_array(u, chunks=301)  # other chunks than X's: rechunked
    dU = da.from_array(U, chunks=(dX.chunks[0], 2))
    _check(K.T @ du, M.T @ u, R.T @ u)
    _check(K.rmatvec(u), M.rmatvec(u), R.T @ u)
    _check(K.T @ dU, M.T @ U, R.T @ U)
    _check(K.rmatmat(dU), M.rmatmat(U), R.T @ U)
    _check(K.H @ U, M.H @ U, R.T @ U)
    # Composed lazily: K @ (K^T u), with a dask right-hand side of length m.
    _check(K @ (K.T @ du), M @ (M.T @ u), R @ (R.T @ u))

    # normal_matvec: K^T W K V, weights none, numpy or dask.
    dw = da.from_array(w, chunks=211)
    _check(K.normal_matvec(v), M.normal_matvec(v), R.T @ (R @ v))
    _check(K.normal_matvec(V), M.normal_matvec(V), R.T @ (R @ V))
    _check(
        K.normal_matvec(v, sample_weight=w),
        M.normal_matvec(v, sample_weight=w),
        R.T @ (w * (R @ v)),
    )
    _check(
        K.normal_matvec(V, sample_weight=dw),
        M.normal_matvec(V, sample_weight=w),
        R.T @ (w[:, None] * (R @ V)),
    )
    # K.T's normal product K W K^T u (weights of length m).
    wm = np.abs(v) + 0.5
    _check(K.T.normal_matvec(du, wm), M.T.normal_matvec(u, wm), R @ (wm * (R.T @ u)))

    # to_dense, block by block (and K.T's, transposed lazily).
    _check(K.to_dense(), M.to_dense(), R)
    _check(K.T.to_dense(), M.T.to_dense(), R.T)

    # gradient: d/dx_i sum_j k(x_i, z_j) v_j = -2 g sum_j (x_i - z_j) k(x_i, z_j) v_j.
    G_ref = -2 * GAMMA * (X64 * (R @ v)[:, None] - (R * v) @ Z64)
    _check(K.gradient(v), M.gradient(v), G_ref)
    G3_ref = np.stack([-2 * GAMMA * (X64 * (R @ c)[:, None] - (R * c) @ Z64) for c in V.T], axis=1)
    _check(K.gradient(V), M.gradient(V), G3_ref)
    assert _check.run() == 20

    # The user's arrays are untouched.
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Z, Z_before)
    for k, a in ops.items():
        np.testing.assert_array_equal(a, saved[k])


def test_local_scheduler(data):
    # Before the cluster exists (module order) and with the threads scheduler set.
    X, Z = data
    with dask.config.set(scheduler="threads"):
        _check_all_products(X, Z, (400, 64), np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunks", [(500, 64), (333, 20)])  # the second splits columns too
def test_products_on_cluster(client, data, chunks, dtype):
    X, Z = data
    _check_all_products(X, Z, chunks, dtype)


def test_int_X_and_mixed_precision(client, data):
    X, Z = data
    Xi = (X * 16).astype(np.int64)  # digits' raw 0..16 values
    K = KernelOperator(da.from_array(Xi, chunks=600), Z.astype(np.float32), gamma=GAMMA / 256)
    M = KernelOperator(Xi, Z.astype(np.float32), gamma=GAMMA / 256)
    assert K.dtype == M.dtype == np.float64
    v = np.ones(len(Z))
    _check = Checks(np.float64)
    R = rbf_kernel(
        Xi.astype(np.float64), Z.astype(np.float32).astype(np.float64), gamma=GAMMA / 256
    )
    _check(K @ v, M @ v, R @ v)
    _check.run()


def test_bad_input(data):
    X, Z = data
    dX = da.from_array(X, chunks=500)
    K = KernelOperator(dX, Z, gamma=GAMMA)
    n, m = K.shape
    with pytest.raises(ValueError, match="^Z: must be an in-memory"):
        KernelOperator(dX, da.from_array(Z))
    with pytest.raises(ValueError, match="^Z: must be an in-memory"):
        KernelOperator(X, da.from_array(Z))
    with pytest.raises(ValueError, match="^Z: a dask X needs"):
        KernelOperator(dX)
    with pytest.raises(ValueError, match="^device='cuda'"):
        KernelOperator(dX, Z, device="cuda")
    with pytest.raises(ValueError, match="^X and Z: number of features"):
        KernelOperator(dX, Z[:, :10])
    with pytest.raises(TypeError, match="^X: complex"):
        KernelOperator(dX.astype(np.complex128), Z)
    with pytest.raises(ValueError, match="^X: expected a 2-d"):
        KernelOperator(dX[:, 0], Z[:, :1])
    with pytest.raises(ValueError, match="^Z: contains NaN"):
        KernelOperator(dX, np.full_like(Z, np.nan))
    with pytest.raises(ValueError, match="^n_jobs"):
        KernelOperator(dX, Z, n_jobs=0)
    # Kernel parameters beyond the operator's dtype, refused at construction as in memory
    # (the dask operator accepted them; its chunks' products raised later).
    with pytest.raises(ValueError, match="^gamma"):
        KernelOperator(dX.astype(np.float32), Z.astype(np.float32), gamma=1e39)
    with pytest.raises(ValueError, match="^length_scale"):
        KernelOperator(
            dX.astype(np.float32), Z.astype(np.float32), kernel="matern", length_scale=1e-20
        )
    # Right-hand sides: wrong length or dimensions, named.
    with pytest.raises(ValueError, match=f"^V: has {m + 1} rows, expected {m}"):
        K @ np.ones(m + 1)
    with pytest.raises(ValueError, match="^V: has"):
        K.matmat(da.ones((m - 1, 2)))
    with pytest.raises(ValueError, match="^V: expected a 2-d"):
        K.matmat(np.ones(m))
    with pytest.raises(ValueError, match="^V: expected a vector"):
        K.matvec(np.ones((m, 2)))
    with pytest.raises(ValueError, match="^V: expected a 1-d or 2-d"):
        K @ np.ones((m, 2, 2))
    with pytest.raises(ValueError, match="^U: has"):
        K.T @ da.ones(n - 1)
    with pytest.raises(ValueError, match="^U: has"):
        K.rmatvec(np.ones(n + 3))
    with pytest.raises(ValueError, match="^V: has"):
        K.normal_matvec(np.ones(m + 1))
    with pytest.raises(ValueError, match=f"^sample_weight: has {n - 1} values"):
        K.normal_matvec(np.ones(m), sample_weight=np.ones(n - 1))
    with pytest.raises(ValueError, match="^sample_weight: has"):
        K.normal_matvec(np.ones(m), sample_weight=da.ones(n + 1))
    with pytest.raises(ValueError, match="^sample_weight: has"):
        K.T.normal_matvec(np.ones(n), sample_weight=np.ones(m + 1))
    with pytest.raises(ValueError, match="^out: not supported for dask"):
        K.to_dense(out=np.empty(K.shape))
    with pytest.raises(NotImplementedError, match="^gradient: for K.T"):
        K.T.gradient(np.ones(n))
    with pytest.raises(ValueError, match="the gradient of .* is not implemented"):
        KernelOperator(dX, Z, kernel="arccos").gradient(np.ones(m))
    # Values are checked lazily, in the tasks, still naming the argument.
    bad = X.copy()
    bad[700, 3] = np.nan
    with dask.config.set(scheduler="threads"):
        Kb = KernelOperator(da.from_array(bad, chunks=500), Z, gamma=GAMMA)
        y = Kb @ np.ones(m)  # building the graph does not look at the values
        with pytest.raises(ValueError, match="^X: contains NaN"):
            y.compute()
        v = np.ones(m)
        v[3] = np.inf
        with pytest.raises(ValueError, match="^V: contains NaN"):
            K @ v
        w = np.ones(n)
        w[5] = np.nan
        with pytest.raises(ValueError, match="^sample_weight: contains NaN"):
            K.normal_matvec(np.ones(m), sample_weight=w)


def test_dask_weights_of_the_transposed_normal_product_are_checked(data):
    """K.T.normal_matvec with dask weights (one per row of Z) had only their length
    checked: of shape (m, 1) they broadcast the result to (n, m) in silence, a NaN among
    them was reported as V's, a string dtype failed in numpy (a review). Checked as the
    in-memory operator checks them, the values in their tasks; good ones give its result."""
    X, Z = data
    K = KernelOperator(da.from_array(X, chunks=500), Z, gamma=GAMMA)
    M = KernelOperator(X, Z, gamma=GAMMA)
    n, m = K.shape
    u = np.linspace(-1.0, 1.0, n)
    with pytest.raises(ValueError, match="^sample_weight: expected a 1-d array, got 2"):
        K.T.normal_matvec(u, sample_weight=da.ones((m, 1)))
    with pytest.raises(TypeError, match="^sample_weight: dtype must be numeric"):
        K.T.normal_matvec(u, sample_weight=da.from_array(np.array(["a"] * m)))
    with pytest.raises(ValueError, match=f"^sample_weight: has {m + 1} values, expected {m}"):
        K.T.normal_matvec(u, sample_weight=da.ones(m + 1))
    w = np.linspace(0.0, 2.0, m)
    nan = w.copy()
    nan[3] = np.nan
    with dask.config.set(scheduler="threads"):
        with pytest.raises(ValueError, match="^sample_weight: contains NaN"):
            K.T.normal_matvec(u, sample_weight=da.from_array(nan, chunks=30)).compute()
        got = K.T.normal_matvec(u, sample_weight=da.from_array(w, chunks=30)).compute()
    want = M.T.normal_matvec(u, sample_weight=w)
    assert got.shape == (n,)
    assert rel(got, want) < 1e-12


def test_in_memory_operator_does_not_import_dask():
    code = (
        "import sys, numpy as np, gramfree\n"
        "K = gramfree.KernelOperator(np.eye(3), kernel='linear')\n"
        "assert K._dask is None and (K @ np.ones(3)).tolist() == [1.0, 1.0, 1.0]\n"
        "assert (K.T @ np.ones(3)).shape == (3,) and K.normal_matvec(np.ones(3)).shape == (3,)\n"
        "assert 'dask' not in sys.modules, sorted(m for m in sys.modules if 'dask' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_zero_columns_are_an_empty_product_over_dask_rows_too():
    """Over dask rows, a numpy V of no columns was refused for K @ V, normal_matvec and
    gradient ("V: empty array"), while K.T @ U, U @ K and a dask V of none gave the empty
    product (a review): every entry point now gives it, as in memory."""
    rng = np.random.default_rng(0)
    X, Z = rng.normal(size=(20, 3)), rng.normal(size=(5, 3))
    K = KernelOperator(da.from_array(X, chunks=(10, -1)), Z, "rbf", gamma=0.5)
    local = KernelOperator(X, Z, "rbf", gamma=0.5)
    V0, U0 = np.zeros((5, 0)), np.zeros((20, 0))
    for got, expected in [
        (K @ V0, local @ V0),
        (K.T @ U0, local.T @ U0),
        (U0.T @ K, U0.T @ local),
        (K.normal_matvec(V0), local.normal_matvec(V0)),
        (K.normal_matvec(V0, sample_weight=np.ones(20)), local.normal_matvec(V0)),
        (K.gradient(V0), local.gradient(V0)),
    ]:
        got = got.compute() if hasattr(got, "compute") else got
        assert got.shape == expected.shape and got.dtype == expected.dtype
    with pytest.raises(TypeError, match="V: complex"):
        K @ np.zeros((5, 0), complex)
    with pytest.raises(ValueError, match="V: has 4 rows, expected 5"):
        K @ np.zeros((4, 0))


def test_arrays_times_a_dask_backed_operator_without_scipys_rdot(monkeypatch):
    """U @ K over dask rows deferred to scipy's LinearOperator._rdot, which scipy before
    1.12 lacks: AttributeError on CI's oldest dependencies. Emulated here by removing it;
    the products are this operator's own transposed ones."""
    from scipy.sparse.linalg import LinearOperator

    monkeypatch.delattr(LinearOperator, "_rdot", raising=False)
    rng = np.random.default_rng(1)
    X, Z = rng.normal(size=(20, 3)), rng.normal(size=(5, 3))
    K = KernelOperator(da.from_array(X, chunks=(10, -1)), Z, "rbf", gamma=0.5)
    dense = rbf_kernel(X, Z, gamma=0.5)
    U, u = rng.normal(size=(4, 20)), rng.normal(size=20)
    for got, expected in [
        (U @ K, U @ dense),
        (u @ K, u @ dense),
        (da.from_array(U, chunks=(2, -1)) @ K, U @ dense),
    ]:
        got = got.compute() if hasattr(got, "compute") else got
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"\bU\b"):
        rng.normal(size=(4, 19)) @ K

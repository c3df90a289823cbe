"""Estimators on dask arrays (gramfree._dask): a real two-process LocalCluster fits the same
model as the in-process fit, whatever the chunking; prediction stays lazy; a worker killed
mid-fit does not change the model."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402  (after the skips: the extra may be missing)
from sklearn.datasets import load_diabetes, load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import gramfree  # noqa: E402
from gramfree import KernelClassifier, KernelRegressor  # noqa: E402

# Agreement claimed between a distributed and an in-process fit (float64). The two add the
# same per-row terms in a different order; CG's iterates amplify that rounding by about
# cond(K_MM) / tol (a 1e-15 relative change of each in-process pass moves digits'
# coefficients by 2e-6 at gamma=0.05, cond(K_MM)=4e4, tol=1e-6), so the problems below
# use kernels whose K_MM is well conditioned (cond(K_MM) < 100); diabetes with
# gamma=0.5 and weights already moves by 6e-9 under that 1e-15 change.
RTOL = 1e-10


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    return X, y, w


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


REG = dict(
    solver="nystrom-pcg", n_centers=200, alpha=1e-2, gamma=1.0, tol=1e-6, random_state=0, n_jobs=1
)
CLF = dict(
    solver="nystrom-pcg", n_centers=200, alpha=1e-3, gamma=1.0, tol=1e-6, random_state=0, n_jobs=1
)


SOLVERS = ["nystrom-pcg", "nystrom-direct"]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("weighted", [False, True])
def test_regression_matches_in_process_for_two_chunkings(client, diabetes, weighted, solver):
    X, y, w = diabetes
    sw = w if weighted else None
    params = dict(REG, solver=solver)
    ref = KernelRegressor(**params).fit(X, y, sample_weight=sw)
    assert ref.solver_ == solver
    fits = []
    for rows, cols in [(150, 10), (111, 4)]:  # the second also splits the columns
        dX = da.from_array(X, chunks=(rows, cols))
        dy = da.from_array(y, chunks=rows)
        dw = None if sw is None else da.from_array(sw, chunks=53)  # rechunked to X's rows
        model = KernelRegressor(**params).fit(dX, dy, sample_weight=dw)
        assert model.solver_ == solver
        assert model.solver_info_["dask"]["scheduler"] == "distributed"
        assert model.solver_info_["dask"]["n_chunks"] == -(-len(y) // rows)
        np.testing.assert_array_equal(model.centers_, ref.centers_)
        np.testing.assert_array_equal(model.center_indices_, ref.center_indices_)
        assert model.n_iter_ == ref.n_iter_
        assert rel(model.dual_coef_, ref.dual_coef_) < RTOL
        pred = model.predict(da.from_array(X, chunks=150))
        assert isinstance(pred, da.Array) and pred.shape == (len(y),)
        assert rel(pred.compute(), ref.predict(X)) < RTOL
        np.testing.assert_array_equal(model.center_targets_, ref.center_targets_)
        fits.append(model)
    assert rel(fits[0].dual_coef_, fits[1].dual_coef_) < RTOL
    assert np.max(np.abs(fits[0].dual_coef_ - fits[1].dual_coef_)) > 0  # really two sums


def test_multioutput_regression_and_numpy_y(client, diabetes):
    X, y, _ = diabetes
    Y = np.column_stack([y, np.sqrt(y)])
    ref = KernelRegressor(**REG).fit(X, Y)
    model = KernelRegressor(**REG).fit(da.from_array(X, chunks=(80, 10)), Y)  # y in memory
    assert model.dual_coef_.shape == (200, 2)
    assert rel(model.dual_coef_, ref.dual_coef_) < RTOL
    assert model.predict(da.from_array(X, chunks=150)).shape == (len(y), 2)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("rows", [600, 451])
def test_multiclass_matches_in_process(client, digits, rows, solver):
    X, y = digits
    params = dict(CLF, solver=solver)
    ref = KernelClassifier(**params).fit(X, y)
    model = KernelClassifier(**params).fit(
        da.from_array(X, chunks=(rows, 64)), da.from_array(y, chunks=rows)
    )
    np.testing.assert_array_equal(model.classes_, ref.classes_)
    np.testing.assert_array_equal(model.centers_, ref.centers_)
    assert rel(model.dual_coef_, ref.dual_coef_) < RTOL
    dX = da.from_array(X, chunks=500)
    scores = model.decision_function(dX)
    assert isinstance(scores, da.Array) and scores.shape == (len(y), 10)
    assert rel(scores.compute(), ref.decision_function(X)) < RTOL
    labels = model.predict(dX)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), ref.predict(X))


def test_zero_weight_rows_take_no_centre_as_in_memory(client, diabetes):
    """Centres are drawn among weighted rows on the client, the rows the in-memory fit
    draws; the model is the in-memory one."""
    X, y, w = diabetes
    w = np.where(np.arange(len(y)) % 3 == 0, 0.0, w)
    ref = KernelRegressor(**REG).fit(X, y, sample_weight=w)
    model = KernelRegressor(**REG).fit(
        da.from_array(X, chunks=150), da.from_array(y, chunks=150), da.from_array(w, chunks=150)
    )
    assert np.all(w[ref.center_indices_] > 0)
    np.testing.assert_array_equal(model.center_indices_, ref.center_indices_)
    assert rel(model.dual_coef_, ref.dual_coef_) < RTOL


def test_binary_classifier_with_class_weight(client, digits):
    X, y = digits
    keep = y < 2
    X, y = X[keep], np.where(y[keep] == 1, "one", "zero")
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    params = dict(CLF, n_centers=100, class_weight="balanced")
    ref = KernelClassifier(**params).fit(X, y, sample_weight=w)
    model = KernelClassifier(**params).fit(
        da.from_array(X, chunks=(90, 64)),
        da.from_array(y, chunks=90),
        sample_weight=da.from_array(w, chunks=90),
    )
    assert rel(model.dual_coef_, ref.dual_coef_) < RTOL
    labels = model.predict(da.from_array(X, chunks=150)).compute()
    np.testing.assert_array_equal(labels, ref.predict(X))


def test_local_scheduler_fits_the_same_model(client, diabetes):
    """Without the distributed client (dask's own scheduler), the same graph: the same
    sums in the same order, so the same bits."""
    X, y, w = diabetes
    dX, dy, dw = (da.from_array(a, chunks=150) for a in (X, y, w))
    params = dict(REG, max_iter=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_cluster = KernelRegressor(**params).fit(dX, dy, sample_weight=dw)
        with dask.config.set(scheduler="threads"):
            local = KernelRegressor(**params).fit(dX, dy, sample_weight=dw)
            assert local.solver_info_["dask"]["scheduler"] == "local"
            pred = local.predict(dX).compute()
    np.testing.assert_array_equal(local.dual_coef_, on_cluster.dual_coef_)
    assert rel(pred, on_cluster.predict(X)) < 1e-14


def test_fitted_model_is_the_plain_model(client, diabetes, tmp_path):
    X, y, _ = diabetes
    model = KernelRegressor(**REG).fit(
        da.from_array(X, chunks=(100, 10)), da.from_array(y, chunks=150)
    )
    assert isinstance(model.centers_, np.ndarray) and isinstance(model.dual_coef_, np.ndarray)
    assert model.n_features_in_ == X.shape[1] and model.solver_ == "nystrom-pcg"
    expected = model.predict(X)  # in memory, no dask
    assert isinstance(expected, np.ndarray)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), expected)
    path = tmp_path / "model.gf"
    model.save(path)
    np.testing.assert_array_equal(gramfree.load(path).predict(X), expected)
    # and a model fitted in memory predicts on dask arrays
    ref = KernelRegressor(**REG).fit(X, y)
    assert rel(ref.predict(da.from_array(X, chunks=64)).compute(), ref.predict(X)) < 1e-14


def test_default_centres_and_auto(client, diabetes):
    X, y, _ = diabetes
    dX, dy = da.from_array(X, chunks=150), da.from_array(y, chunks=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KernelRegressor(alpha=1.0, gamma=0.1, random_state=0, n_jobs=1).fit(dX, dy)
    # without n_centers, min(n, 1000) centres: all 442 rows here; auto takes the solver
    # the in-memory cost model prefers for them (the one pass, at this size), says why,
    # and fits what that solver fits in memory
    assert model.n_centers_ == len(y)
    assert (
        model.solver_ == "nystrom-direct" and "chose nystrom-direct" in model.solver_info_["auto"]
    )
    ref = KernelRegressor(
        solver="nystrom-direct", n_centers=len(y), alpha=1.0, gamma=0.1, random_state=0
    ).fit(X, y)
    assert rel(model.predict(X), ref.predict(X)) < 1e-8
    half = KernelRegressor(**dict(REG, n_centers=0.5)).fit(dX, dy)
    assert half.n_centers_ == 221
    # centres given as row indices (any order): only those rows are gathered
    rows = np.array([400, 3, 150, 151, 77, 299])
    given = KernelRegressor(**dict(REG, n_centers=None, centers=rows)).fit(dX, dy)
    ref = KernelRegressor(**dict(REG, n_centers=None, centers=rows)).fit(X, y)
    assert given.solver_ == ref.solver_ == "nystrom-pcg"
    np.testing.assert_array_equal(given.centers_, X[rows])
    np.testing.assert_array_equal(given.center_indices_, rows)
    np.testing.assert_array_equal(given.center_targets_, y[rows])
    assert rel(given.dual_coef_, ref.dual_coef_) < RTOL


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bad_input_is_refused_naming_the_argument(client, diabetes):
    X, y, w = diabetes
    dX, dy = da.from_array(X, chunks=150), da.from_array(y, chunks=150)
    REG = dict(globals()["REG"], max_iter=2)  # what is checked here needs no converged fit
    for solver in ("direct", "eigenpro"):
        with pytest.raises(ValueError, match="solver"):
            KernelRegressor(**dict(REG, solver=solver)).fit(dX, dy)
    with pytest.raises(ValueError, match="loss"):
        KernelClassifier(loss="logistic", n_centers=50).fit(dX, dy > 150)
    with pytest.raises(ValueError, match="y: has 441 rows"):
        KernelRegressor(**REG).fit(dX, dy[:-1])
    with pytest.raises(ValueError, match="X: expected a 2-d"):
        KernelRegressor(**REG).fit(dX[:, :, None], dy)
    with pytest.raises(ValueError, match="X: dtype"):
        KernelRegressor(**REG).fit(dX.astype(np.complex128), dy)
    with warnings.catch_warnings():  # refused before any 0/0 of the weights
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="sample_weight: all weights are zero"):
            KernelRegressor(**REG).fit(dX, dy, sample_weight=da.zeros(len(y), chunks=150))
    nan_w = w.copy()
    nan_w[7] = np.nan  # named as NaN, not as "all weights are zero" (a review)
    with pytest.raises(ValueError, match="sample_weight: contains NaN or infinity"):
        KernelRegressor(**REG).fit(dX, dy, sample_weight=da.from_array(nan_w, chunks=150))
    bad_w = w.copy()
    bad_w[300] = -1.0
    with pytest.raises(ValueError, match="sample_weight: contains negative"):
        KernelRegressor(**REG).fit(dX, dy, sample_weight=da.from_array(bad_w, chunks=150))
    # NaN in a row that is no centre: found by the fit's first pass, on a worker
    centres = KernelRegressor(**REG).fit(X, y).center_indices_
    row = int(np.setdiff1d(np.arange(len(y)), centres)[0])
    bad_X, bad_y = X.copy(), y.copy()
    bad_X[row, 3] = np.nan
    bad_y[row] = np.inf
    with pytest.raises(ValueError, match="X: contains NaN or infinity"):
        KernelRegressor(**REG).fit(da.from_array(bad_X, chunks=150), dy)
    with pytest.raises(ValueError, match="y: contains NaN or infinity"):
        KernelRegressor(**REG).fit(dX, da.from_array(bad_y, chunks=150))
    model = KernelRegressor(**REG).fit(dX, dy)
    with pytest.raises(ValueError, match="X: has 9 features"):
        model.predict(dX[:, :9])
    with pytest.raises(ValueError, match="X: contains NaN"):
        model.predict(da.from_array(bad_X, chunks=150)).compute()
    # integer X is cast to float64, as in memory
    ints = KernelRegressor(**REG).fit(
        da.from_array(np.round(X * 10).astype(np.int64), chunks=150), dy
    )
    assert ints.centers_.dtype == np.float64


def test_worker_killed_during_fit_gives_the_same_model(client, digits):
    """SIGKILL one worker process while the fit runs: the scheduler recomputes its
    chunks (from their graph) on the other, its nanny restarts it, and the fit ends with
    the same model, bit for bit (the sums' order is the graph's, not the workers')."""
    X, y = digits
    X = np.tile(X, (4, 1))  # 7188 rows, 4 chunks, 25 passes: time to kill a worker mid-fit
    y = np.tile(y, 4)
    params = dict(CLF, n_centers=400, tol=0.0, max_iter=25)
    dX = client.persist(da.from_array(X, chunks=(1797, 64)))
    dy = client.persist(da.from_array(y, chunks=1797))
    distributed.wait([dX, dy])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clean = KernelClassifier(**params).fit(dX, dy)
    pids = client.run(os.getpid)
    outcome: dict = {}

    def run() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                outcome["model"] = KernelClassifier(**params).fit(dX, dy)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    start = time.perf_counter()
    thread.start()
    time.sleep(min(0.4 * clean.fit_time_, 1.5))
    assert thread.is_alive(), "the fit ended before the fault; make it longer"
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    thread.join(timeout=60)
    assert not thread.is_alive(), "the fit hangs after a worker died"
    assert "error" not in outcome, f"fit failed: {outcome.get('error')!r}"
    model = outcome["model"]
    np.testing.assert_array_equal(model.dual_coef_, clean.dual_coef_)
    assert time.perf_counter() - start < 60
    client.wait_for_workers(2, timeout=30)


def test_shared_values_outlive_every_worker_that_held_them(client):
    """What a fit sends to the workers (centres, kernel) survives the death of each worker
    that held it, one after the other: it is recomputed from its task. Scattered data
    was not (the scheduler's memory manager drops a broadcast's copies within seconds,
    so the worker killed mid-fit could hold the only one: FutureCancelledError)."""
    from gramfree._dask import _share, fit_scope

    small = (np.arange(12.0).reshape(4, 3), "kernel")
    large = (np.ones((1500, 1000)), "kernel")  # 12 MB: over dask's large-graph threshold
    with fit_scope(client), warnings.catch_warnings():
        warnings.simplefilter("error")  # the large one goes in pieces: no warning
        shared = [_share(value, client) for value in (small, large)]
        distributed.wait(shared)
        for address in list(client.scheduler_info()["workers"]):
            # every copy's holder restarted, empty, before the values are used
            client.restart_workers([address])
        client.wait_for_workers(2, timeout=30)
        got = [client.submit(lambda v: (v[0].sum(), v[1]), s).result(timeout=60) for s in shared]
    assert got == [(66.0, "kernel"), (1.5e6, "kernel")]


def test_concurrent_fits_share_one_weights_array(client, digits):
    """Two threads fit on one client with the same dask weights array: each fit persists
    the weights under keys of its own, so the first to end does not cancel them under the
    other (both failed with FutureCancelledError, and the client's next fit too; a
    review); nor does their sending of centres leave a warning filter behind."""
    X, y = digits
    X, y = X[:900], (y[:900] == 3).astype(float)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    dX, dy = da.from_array(X, chunks=(300, 64)), da.from_array(y, chunks=300)
    dw = da.from_array(w, chunks=300)
    params = dict(REG, n_centers=100, gamma=0.05, tol=1e-8)
    ref = KernelRegressor(**params).fit(X, y, sample_weight=w).predict(X)
    filters = list(warnings.filters)
    out: dict = {}

    def fit(name: str) -> None:
        try:
            out[name] = KernelRegressor(**params).fit(dX, dy, sample_weight=dw).predict(X)
        except Exception as exc:  # noqa: BLE001 - reported below
            out[name] = exc

    threads = [threading.Thread(target=fit, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # nothing of ours left in the filters (other code's catch_warnings in concurrent
    # threads can interleave; a filter around _share's call leaked that way)
    assert [f for f in warnings.filters if f not in filters and "graph" in str(f[1])] == []
    for name in ("t0", "t1", "t2"):
        assert isinstance(out[name], np.ndarray), f"{name}: {out[name]!r}"
        np.testing.assert_allclose(out[name], ref, rtol=1e-6, atol=1e-6)


def test_float32_one_pass_matches_in_process(client, digits):
    """float32 data: the one pass forms float32 kernel blocks and their Gram on each chunk
    (summed in float64), accepted by the same objective check as in memory."""
    X, y = digits
    X32 = X.astype(np.float32)
    params = dict(CLF, solver="nystrom-direct")
    ref = KernelClassifier(**params).fit(X32, y)
    model = KernelClassifier(**params).fit(da.from_array(X32, chunks=(500, 64)), y)
    assert ref.solver_info_["gram_dtype"] == model.solver_info_["gram_dtype"] == "float32"
    assert model.dual_coef_.dtype == ref.dual_coef_.dtype == np.float32
    # float32 kernel values summed per chunk instead of per block: float32 rounding
    assert rel(model.dual_coef_, ref.dual_coef_) < 1e-4
    np.testing.assert_array_equal(model.predict(X32), ref.predict(X32))


def test_float32_pcg_is_refined_on_the_workers(client, digits):
    """float32 products: the workers' passes refine CG from the true residual as the
    in-process solver does, so both reach the float64 optimum on the same centres (a wide
    kernel and a small alpha, where float32 CG alone stopped 1.3x above it)."""
    X, y = digits
    X, y = X[:800], y[:800]
    X32 = X.astype(np.float32)
    params = dict(CLF, gamma=0.5 / 64, n_centers=400, tol=1e-4)
    ref = KernelClassifier(**params).fit(X32, y)
    model = KernelClassifier(**params).fit(da.from_array(X32, chunks=(300, 64)), y)
    f64 = KernelClassifier(**dict(params, tol=1e-10, max_iter=500)).fit(X, y)
    assert model.solver_info_["refinements"] >= 1
    Y = np.zeros((len(y), 10))
    Y[np.arange(len(y)), y] = 1.0

    def objective(m):
        op = gramfree.KernelOperator(X, m.centers_.astype(np.float64), "rbf", gamma=params["gamma"])
        kmm = gramfree.KernelOperator(
            m.centers_.astype(np.float64), None, "rbf", gamma=params["gamma"]
        )
        A = m.dual_coef_.astype(np.float64)
        return (np.sum((op @ A - Y) ** 2) + params["alpha"] * np.sum(A * (kmm @ A))) / len(y)

    best = objective(f64)
    assert objective(ref) == pytest.approx(best, rel=1e-3)
    assert objective(model) == pytest.approx(best, rel=1e-3)


# Run in a child process: the test sends it SIGINT (as Ctrl-C does), which must not reach
# pytest's own process. The fit would run for minutes (tol=0, max_iter=100000); the child
# interrupts it once the cluster is busy and then, still holding the KeyboardInterrupt (as a
# REPL's last traceback does, which keeps every frame's futures alive), counts the
# scheduler's tasks beyond the persisted data until they are gone.
INTERRUPT_SCRIPT = r"""
import json, os, signal, threading, time
import numpy as np, dask.array as da
from distributed import Client, LocalCluster, wait
from gramfree import KernelRegressor

def tasks(dask_scheduler):
    return len(dask_scheduler.tasks)

if __name__ == "__main__":
    # Ctrl-C's usual state, whatever the parent left (see test_interrupt.py's CHILD: a
    # pytest that ignores SIGINT hands that on, and this child would then never stop).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        rng = np.random.default_rng(0)
        X = client.persist(da.from_array(rng.normal(size=(200000, 8)), chunks=(10000, 8)))
        y = client.persist(da.from_array(rng.normal(size=200000), chunks=10000))
        wait([X, y])  # all their keys on the scheduler before it is counted
        client.run(lambda: __import__("gramfree"))
        base = client.run_on_scheduler(tasks)
        report = {"base": base}

        def interrupt():
            busy = 0
            while busy <= 0:  # until the fit's passes run
                time.sleep(0.05)
                busy = client.run_on_scheduler(tasks) - base
            report["busy"] = busy
            time.sleep(1.0)
            report["sent"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        model = KernelRegressor(solver="nystrom-pcg", n_centers=1500, gamma=0.1, alpha=1e-6,
                                tol=0.0, max_iter=100000, n_jobs=1)
        try:
            model.fit(X, y)
            report["outcome"] = "finished"
        except KeyboardInterrupt:
            report["outcome"] = "interrupted"
            report["raise_seconds"] = time.perf_counter() - report["sent"]
            deadline = time.perf_counter() + 30
            left = client.run_on_scheduler(tasks) - base
            while left > 0 and time.perf_counter() < deadline:
                time.sleep(0.1)
                left = client.run_on_scheduler(tasks) - base
            report["left"] = left
            report["left_keys"] = client.run_on_scheduler(
                lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])[-5:]
            report["drain_seconds"] = time.perf_counter() - report["sent"]
        # the client and the cluster still work: a short fit on the same data
        again = KernelRegressor(solver="nystrom-pcg", n_centers=400, gamma=0.1, alpha=1e-6,
                                max_iter=2, n_jobs=1)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again.fit(X, y)
        report["refit_iterations"] = int(again.n_iter_)
        print("REPORT " + json.dumps(report))
"""


def test_ctrl_c_cancels_the_fits_tasks(tmp_path):
    import json
    import subprocess
    import sys

    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(lines[-1][len("REPORT ") :])
    assert report["busy"] > 0  # the interrupt came while the fit's tasks were on the cluster
    assert report["outcome"] == "interrupted"
    assert report["raise_seconds"] < 10  # Ctrl-C is not held up by the cluster
    assert report["left"] == 0, report  # every task of the fit was cancelled
    assert report["refit_iterations"] == 2


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("gamma", [0.005, 0.05, 2.0])  # wide (steep spectrum) to narrow (flat)
def test_all_rows_as_centres_is_exact_kernel_ridge(client, diabetes, solver, gamma):
    """Every row a centre: the Nystrom objective is kernel ridge's, so a dask fit must
    predict what scikit-learn's KernelRidge predicts, on real data, for a wide and a
    narrow kernel. The one pass whitens by K_MM, whose condition number at gamma=0.005
    (all 442 rows) amplifies the Gram's rounding to ~1e-8; PCG iterates to tol."""
    from sklearn.kernel_ridge import KernelRidge

    X, y, _ = diabetes
    y = (y - y.mean()) / y.std()
    exact = KernelRidge(kernel="rbf", gamma=gamma, alpha=0.1).fit(X, y).predict(X)
    model = KernelRegressor(
        solver=solver, gamma=gamma, alpha=0.1, n_centers=len(y), tol=1e-10, max_iter=500
    ).fit(da.from_array(X, chunks=(100, 10)), da.from_array(y, chunks=100))
    assert model.solver_ == solver
    assert rel(model.predict(X), exact) < 1e-6


def test_predict_on_overflowing_chunks_refused(client, diabetes):
    """A dask X is predicted chunk by chunk on the workers; a chunk whose kernel values
    with the centres overflow raises there, naming X, as an in-memory X does."""
    X, y, _ = diabetes
    model = KernelRegressor(kernel="poly", solver="direct").fit(X, y)
    big = np.vstack([X, X * 1e160])
    with pytest.raises(ValueError, match=r"^X: the poly kernel overflows float64 between"):
        model.predict(da.from_array(big, chunks=150)).compute()


# -- found by a review: empty chunks, target and kernel ranges -----------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_empty_row_chunk_fits_and_predicts_as_the_rows_kept(client, diabetes, solver):
    """Boolean indexing (and a filtered dataframe partition) leaves chunks of no rows:
    before, fit and predict raised "X: empty array of shape (0, 10)" (nystrom-direct:
    "range() arg 3 must not be zero")."""
    X, y, _ = diabetes
    mask = np.ones(len(y), bool)
    mask[100:200] = False  # the second chunk keeps no row
    dmask = da.from_array(mask, chunks=100)
    dX = da.from_array(X, chunks=100)[dmask].compute_chunk_sizes()
    dy = da.from_array(y, chunks=100)[dmask].compute_chunk_sizes()
    assert 0 in dX.chunks[0]
    params = dict(REG, solver=solver)
    ref = KernelRegressor(**params).fit(X[mask], y[mask])
    model = KernelRegressor(**params).fit(dX, dy)
    assert rel(model.predict(X), ref.predict(X)) < 1e-8
    np.testing.assert_allclose(ref.predict(dX).compute(), ref.predict(X[mask]), rtol=1e-12)


def test_targets_beyond_the_range_are_refused_as_in_memory(client, diabetes):
    """1e160 times y fitted an all-zero model on dask (only numpy's overflow warnings);
    in memory it is refused, naming y."""
    X, y, _ = diabetes
    dX = da.from_array(X, chunks=150)
    for scale in (1e160, 1e-170):
        with pytest.raises(ValueError, match="y: the largest target magnitude"):
            KernelRegressor(**REG).fit(X, y * scale)
        with pytest.raises(ValueError, match="y: the largest target magnitude"):
            KernelRegressor(**REG).fit(dX, da.from_array(y * scale, chunks=150))


def test_a_kernel_that_overflows_is_refused_naming_X(client, diabetes):
    """poly, degree 3, float32 data of magnitude 1e6: in memory a ValueError names X and
    the row; on dask the fit failed later with "B: contains NaN or infinity"."""
    X, y, _ = diabetes
    X32 = (X * 1e6).astype(np.float32)
    params = dict(REG, solver="nystrom-direct", kernel="poly", degree=3, gamma=1.0, coef0=1.0)
    with pytest.raises(ValueError, match="X: the poly kernel overflows float32") as memory:
        KernelRegressor(**params).fit(X32, y)
    with pytest.raises(ValueError, match="X: the poly kernel overflows float32") as distributed_:
        KernelRegressor(**params).fit(da.from_array(X32, chunks=150), y)
    assert str(distributed_.value) == str(memory.value)  # the same row, named the same


def test_graded_qr_on_the_cluster_matches_memory(client, diabetes):
    """Weights spanning 1e12 (three rows): the graded QR's passes (the bounds' histograms,
    the tail's Gram, the heavy rows gathered) on the cluster; the in-memory model to the
    order of the sums, with no warning."""
    X, y, _ = diabetes
    w = np.ones(len(y))
    w[[3, 100, 300]] = 1e12
    params = dict(REG, solver="nystrom-direct", alpha=1e-6)
    ref = KernelRegressor(**params).fit(X, y, sample_weight=w)
    model = KernelRegressor(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(
            da.from_array(X, chunks=(111, -1)),
            da.from_array(y, chunks=111),
            sample_weight=da.from_array(w, chunks=111),
        )
    assert model.solver_info_["pass"] == ref.solver_info_["pass"] == "graded QR"
    assert model.solver_info_["dask"]["scheduler"] == "distributed"
    assert rel(model.predict(X), ref.predict(X)) < 1e-9

"""One fitted model used from many Python threads at once (a web server's pattern): every
thread's predictions, decision values and path-kernel decompositions are bit-identical to
a serial run. The native calls release the GIL, so the threads really overlap."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

import gramfree
from gramfree import KernelClassifier, KernelRegressor, PathKernelRegressor

THREADS = 8


def _in_threads(fn, batches):
    """fn over each batch, 8 threads at once, every batch submitted 3 times."""
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fn, batches * 3))


def _batches(X, parts=16):
    return [np.ascontiguousarray(b) for b in np.array_split(X, parts)]


def test_classifier_predicts_identically_from_8_threads():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = KernelClassifier(
        gamma=0.05, alpha=0.1, n_centers=300, solver="nystrom-pcg", random_state=0
    ).fit(X[:1200], y[:1200])
    batches = _batches(X[1200:])
    serial = [model.decision_function(b) for b in batches]
    for got, want in zip(_in_threads(model.decision_function, batches), serial * 3):
        np.testing.assert_array_equal(got, want)
    labels = _in_threads(model.predict, batches)
    for got, b in zip(labels, batches * 3):
        np.testing.assert_array_equal(got, model.predict(b))


def test_regressor_float32_predicts_identically_from_8_threads():
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    model = KernelRegressor(gamma=0.02, alpha=1.0).fit(X[:400], y[:400])
    batches = _batches(X[400:], 8)
    serial = [model.predict(b) for b in batches]
    for got, want in zip(_in_threads(model.predict, batches), serial * 3):
        np.testing.assert_array_equal(got, want)


def test_path_kernel_decomposition_identical_from_8_threads():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.sin(X[:, 0]) + 0.1 * X[:, 1]
    model = PathKernelRegressor((8,), learning_rate=0.05, n_steps=60, random_state=0, n_jobs=1).fit(
        X, y
    )
    queries = _batches(rng.normal(size=(24, 3)), 8)

    def contributions(Q):
        return model.decompose(Q).contributions

    serial = [contributions(Q) for Q in queries]
    for got, want in zip(_in_threads(contributions, queries), serial * 3):
        np.testing.assert_array_equal(got, want)
    for got, Q in zip(_in_threads(model.predict, queries), queries * 3):
        np.testing.assert_array_equal(got, model.predict(Q))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX's")
def test_a_child_forked_after_a_thread_team_computes_on_one_thread():
    """GNU libgomp keeps its thread team and has no fork handling: a child forked after
    the parent ran a team of two hung in its next team (a review: a fork pool over
    model.predict never returned). It computes on one thread, bitwise as the parent."""
    import time

    rng = np.random.default_rng(0)
    X, V = rng.normal(size=(2000, 5)), rng.normal(size=2000)
    want = gramfree.KernelOperator(X, X, kernel="rbf", n_jobs=2) @ V
    many = 4 * gramfree._core.max_threads() + 64  # the most n_jobs the parent takes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one line on the pipe, then out without cleanup
        try:
            got = gramfree.KernelOperator(X, X, kernel="rbf", n_jobs=2) @ V
            # n_jobs the parent accepts stays accepted (the child's limit once fell to 68)
            again = gramfree.KernelOperator(X, X, kernel="rbf", n_jobs=many) @ V
            same = np.array_equal(got, want) and np.array_equal(again, want)
            os.write(write, b"same\n" if same else b"differs\n")
        finally:
            os._exit(0)
    os.close(write)
    start = time.monotonic()
    while time.monotonic() - start < 60:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in its thread team")
    with os.fdopen(read) as fh:
        assert fh.read() == "same\n"


_INTERLEAVED_FITS = """
import threading
from threadpoolctl import threadpool_info
from gramfree._threads import blas_threads, small_blas

def counts():
    return sorted(
        (i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"
    )

before = counts()
first_in, second_in, first_out = (threading.Event() for _ in range(3))

def first():  # a fit with n_jobs=1
    with blas_threads(1):
        first_in.set()
        second_in.wait(30)
    first_out.set()

inside = []

def second():  # a fit with the default n_jobs, in its solver's loop
    first_in.wait(30)
    with blas_threads(None), small_blas(0.0):
        second_in.set()
        first_out.wait(30)
        inside.extend(counts())  # its own limit, still in force after the first ended

threads = [threading.Thread(target=first), threading.Thread(target=second)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(60)
assert not any(thread.is_alive() for thread in threads)
print(before == counts() and {c for _, c in inside} == {1}, before, inside, counts())
"""


def test_fits_in_two_threads_leave_blas_thread_counts_as_they_were():
    """Fits in two Python threads (GridSearchCV's threading backend) each limited BLAS, a
    count one per process: threadpoolctl's limits put back on exit the count they found,
    so the fit that entered second and left last restored the first fit's limit, and
    numpy's and scipy's BLAS stayed on one thread for the rest of the process (a review:
    3 of 3 threaded grid searches), while the first to end took the other's limit away.
    Here the exits are forced into that order, in a fresh process (this one's conftest has
    set the counts from its main thread, and threadpoolctl then ignores other threads'
    counts: gramfree._threads._set_threads)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _INTERLEAVED_FITS],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "2"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True"), done.stdout


def test_cv_fits_in_threads_leave_the_warnings_filters_as_they_were(monkeypatch):
    """KernelRegressorCV held each candidate's warnings with warnings.catch_warnings, which
    swaps the warnings module's process-wide state: two fits in threads that exited out of
    order put back one's recorder and its "always" filter, and every later warning of the
    process went to a dead list (a review: 5 of 6 runs). The exits are forced into that
    order here."""
    import threading
    import warnings

    from sklearn.datasets import load_diabetes

    from gramfree import KernelRegressorCV
    from gramfree.estimators import cv as cv_module

    original = cv_module.solve_alpha_path
    first_in, second_in, first_done = (threading.Event() for _ in range(3))

    def paced(*args, **kwargs):
        if threading.current_thread().name == "first":
            first_in.set()
            assert second_in.wait(30)
        else:
            second_in.set()
            assert first_done.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(cv_module, "solve_alpha_path", paced)
    X, y = load_diabetes(return_X_y=True)

    def fit(wait=None):
        if wait is not None:
            assert wait.wait(30)
        KernelRegressorCV(alphas=[1e-2, 1.0], n_centers=50, random_state=0).fit(X, y)

    filters = list(warnings.filters)
    first = threading.Thread(target=fit, name="first")
    second = threading.Thread(target=fit, args=(first_in,), name="second")
    first.start()
    second.start()
    first.join(60)
    first_done.set()
    second.join(60)
    assert not first.is_alive() and not second.is_alive()
    assert list(warnings.filters) == filters


def test_the_blas_controller_is_built_once_by_fits_starting_together(monkeypatch):
    """Fits starting together in several threads built two threadpoolctl controllers, and
    the limits' bookkeeping took one fit's limit for the count before it: BLAS left on one
    thread in 5 of 10 runs (a review). Construction is slowed here to widen the race."""
    import threading
    import time

    import threadpoolctl

    from gramfree import _threads

    built = []
    real = threadpoolctl.ThreadpoolController

    class Slow(real):
        def __init__(self):
            time.sleep(0.05)
            built.append(self)
            super().__init__()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Slow)
    monkeypatch.setattr(_threads, "_controller", None)
    start = threading.Barrier(6)

    def first_use():
        start.wait(10)
        _threads._blas_controller()

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(built) == 1


def test_a_users_threadpoolctl_limit_inside_a_fit_is_honoured():
    """threadpoolctl's own limit restores the count it found on entry: a user's limit
    opened inside a fit's (a callback) was in force again after the fit's inner limit
    ended, until the bookkeeping of limits shared across threads restored the fit's own
    count over it (a review). The latest context restores what it found, as before."""
    from threadpoolctl import threadpool_limits

    from gramfree._threads import blas_threads, small_blas

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_counts()
        with blas_threads(2):
            with threadpool_limits(limits=3, user_api="blas"):
                with small_blas(0.0):
                    assert {count for _, count in _blas_counts()} == {1}
                assert {count for _, count in _blas_counts()} == {3}
        assert _blas_counts() == before


def _blas_counts():
    from threadpoolctl import threadpool_info

    return sorted(
        (info["filepath"], info["num_threads"])
        for info in threadpool_info()
        if info["user_api"] == "blas"
    )

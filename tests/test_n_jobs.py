"""n_jobs governs every thread pool a fit uses: the native operators' (OpenMP) and BLAS's,
the latter through threadpoolctl (gramfree._threads.blas_threads); numpy's own BLAS, where
it is a second library beside scipy's, runs on one thread during a fit."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

import gramfree._threads as threads_module
import gramfree.estimators._base as base_module
import gramfree.solvers.auto as auto_module
import gramfree.solvers.direct as direct_module
import gramfree.solvers.logistic as logistic_module
from gramfree import KernelClassifier, KernelRegressor
from gramfree._threads import blas_threads, numpy_own_blas, small_blas


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def _by_library() -> dict[str, int]:
    return {
        lib["filepath"]: lib["num_threads"]
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    }


def _in_fit(outer: dict[str, int]) -> dict[str, int]:
    """The thread counts a fit with n_jobs=None runs under, from those outside it."""
    own = set(numpy_own_blas())
    return {path: 1 if path in own else count for path, count in outer.items()}


def _recording(monkeypatch, module, *names):
    """Wrap each ``module.name`` so that each call records the BLAS thread counts then."""
    seen = []
    for name in names:
        original = getattr(module, name)

        def wrapper(*args, _original=original, **kwargs):
            seen.append(_by_library())
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)
    return seen


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_blas_threads_context():
    np.linalg.cholesky(np.eye(2))  # BLAS loaded
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    before = _by_library()
    with blas_threads(None):
        assert _by_library() == _in_fit(before)
    assert _by_library() == before
    with blas_threads(1):
        assert _blas_threads() == {1}
        with small_blas(1.0):  # nests: one thread inside, the outer limit after
            assert _blas_threads() == {1}
        assert _blas_threads() == {1}
    assert _by_library() == before
    with pytest.raises(ValueError, match="n_jobs"):
        with blas_threads(0):
            pass


def test_direct_fit_blas_threads_follow_n_jobs(monkeypatch, diabetes):
    X, y = diabetes
    # The factorization of A's triangle in place (float32 or float64), or the jitter retries.
    seen = _recording(monkeypatch, direct_module, "cholesky_upper_in_place", "jittered_cholesky")
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):  # what n_jobs=None must leave
        outer = _by_library()
        ref = KernelRegressor(gamma=0.1, alpha=1e-2, solver="direct").fit(X, y)
        # n_jobs=None: as outside, numpy's own BLAS included (a direct fit makes no numpy
        # BLAS calls between the native operators', so nothing to limit: blas_threads)
        assert seen and seen[-1] == outer
        one = KernelRegressor(gamma=0.1, alpha=1e-2, solver="direct", n_jobs=1).fit(X, y)
        assert set(seen[-1].values()) == {1}
        assert _by_library() == outer  # restored after the fit
    np.testing.assert_allclose(one.predict(X), ref.predict(X), rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=3
@pytest.mark.parametrize(
    "solver, module, name",
    [
        ("eigenpro", base_module, "solve_eigenpro"),
        ("nystrom-pcg", auto_module, "run_nystrom"),  # its centres chosen by auto's loop
        ("auto", direct_module, "cholesky_upper_in_place"),  # n <= DIRECT_ALWAYS: direct
    ],
)
def test_numpy_own_blas_limited_for_the_loops_only(monkeypatch, diabetes, solver, module, name):
    """With n_jobs=None, the iterative solvers run with numpy's own BLAS (a second library)
    on one thread, and a direct fit, which alternates nothing, leaves it as it is: the
    limit needs threadpoolctl's scan of every loaded library, which a direct fit of a
    thousand rows would take as long to make as the whole fit. The scan is not made."""
    X, y = diabetes
    seen = _recording(monkeypatch, module, name)
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    scans = []
    real_controller = threads_module._blas_controller
    monkeypatch.setattr(
        threads_module, "_blas_controller", lambda: scans.append(1) or real_controller()
    )
    with threadpool_limits(limits=2, user_api="blas"):
        outer = _by_library()
        scans.clear()
        KernelRegressor(gamma=0.1, alpha=1e-2, solver=solver, random_state=0, max_iter=3).fit(X, y)
        assert seen
        if solver == "auto":
            assert seen[-1] == outer and not scans
        else:
            assert seen[-1] == _in_fit(outer)
        assert _by_library() == outer  # restored after the fit


def test_logistic_fit_blas_threads_follow_n_jobs(monkeypatch):
    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16.0
    y = y[:400] < 5
    seen = _recording(monkeypatch, logistic_module, "jittered_cholesky")
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    params = dict(
        gamma=0.02, alpha=1e-3, loss="logistic", solver="nystrom-pcg", n_centers=100, random_state=0
    )
    # The first factorization is K_MM's, before the Newton loop (whose calls, all small at
    # 100 centres, run on one BLAS thread by design: gramfree._threads.small_blas).
    with threadpool_limits(limits=2, user_api="blas"):
        outer = _by_library()
        ref = KernelClassifier(**params).fit(X, y)
        assert seen[0] == _in_fit(outer)
        seen.clear()
        one = KernelClassifier(n_jobs=1, **params).fit(X, y)
        assert set(seen[0].values()) == {1}
    np.testing.assert_allclose(
        one.decision_function(X), ref.decision_function(X), rtol=1e-10, atol=1e-10
    )


# direct agrees to rounding (1e-11 measured); the Nystrom solvers' sums, ordered by the
# thread count, pass through the whitening by an ill-conditioned K_MM (3e-7 measured for
# nystrom-direct here) or CG's iterates, so they agree to looser bounds.
@pytest.mark.parametrize(
    "solver, rtol", [("direct", 1e-10), ("nystrom-direct", 1e-5), ("nystrom-pcg", 1e-5)]
)
def test_n_jobs_one_equals_default_on_digits(solver, rtol):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = dict(
        gamma=0.02,
        alpha=1e-3,
        solver=solver,
        random_state=0,
        tol=1e-8,
        n_centers=None if solver == "direct" else 300,
    )
    ref = KernelClassifier(**params).fit(X, y)
    one = KernelClassifier(n_jobs=1, **params).fit(X, y)
    scale = np.abs(ref.decision_function(X)).max()
    np.testing.assert_allclose(
        one.decision_function(X), ref.decision_function(X), rtol=0, atol=rtol * scale
    )


def test_numpy_own_blas_is_numpys_second_library():
    """numpy_own_blas names the BLAS inside numpy's installation, and only when another
    library (scipy's) is loaded beside it; limiting it leaves scipy's BLAS alone."""
    import os

    import scipy.linalg

    scipy.linalg.cholesky(np.eye(2))  # both libraries loaded
    libs = _by_library()
    own = numpy_own_blas()
    package = os.path.realpath(os.path.dirname(np.__file__))
    inside = [
        p
        for p in libs
        if os.path.realpath(p).startswith((package + os.sep, package + ".libs" + os.sep))
    ]
    if 0 < len(inside) < len(libs):
        assert sorted(own) == sorted(inside)
    else:  # one BLAS shared by numpy and scipy (conda, distributions): nothing to limit
        assert own == []
    with threadpool_limits(limits=2, user_api="blas"), blas_threads(None):
        for path, count in _by_library().items():
            assert count == (1 if path in own else 2)

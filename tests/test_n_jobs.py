"""n_jobs governs every thread pool a fit uses: the native operators' (OpenMP) and BLAS's,
the latter through threadpoolctl (gramfree._threads.blas_threads)."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

import gramfree.solvers.direct as direct_module
import gramfree.solvers.logistic as logistic_module
from gramfree import KernelClassifier, KernelRegressor
from gramfree._threads import blas_threads, small_blas


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def _recording(monkeypatch, module, name):
    """Wrap ``module.name`` so that each call records the BLAS thread counts then."""
    seen = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        seen.append(_blas_threads())
        return original(*args, **kwargs)

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
    before = _blas_threads()
    with blas_threads(None):
        assert _blas_threads() == before
    with blas_threads(1):
        assert _blas_threads() == {1}
        with small_blas(1.0):  # nests: one thread inside, the outer limit after
            assert _blas_threads() == {1}
        assert _blas_threads() == {1}
    assert _blas_threads() == before
    with pytest.raises(ValueError, match="n_jobs"):
        with blas_threads(0):
            pass


def test_direct_fit_blas_threads_follow_n_jobs(monkeypatch, diabetes):
    X, y = diabetes
    seen = _recording(monkeypatch, direct_module, "cholesky")
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):  # what n_jobs=None must leave
        outer = _blas_threads()
        ref = KernelRegressor(gamma=0.1, alpha=1e-2, solver="direct").fit(X, y)
        assert seen and seen[-1] == outer
        one = KernelRegressor(gamma=0.1, alpha=1e-2, solver="direct", n_jobs=1).fit(X, y)
        assert seen[-1] == {1}
        assert _blas_threads() == outer  # restored after the fit
    np.testing.assert_allclose(one.predict(X), ref.predict(X), rtol=1e-10, atol=1e-10)


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
        outer = _blas_threads()
        ref = KernelClassifier(**params).fit(X, y)
        assert seen[0] == outer
        seen.clear()
        one = KernelClassifier(n_jobs=1, **params).fit(X, y)
        assert seen[0] == {1}
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

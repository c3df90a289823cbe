"""The symmetric eigensolvers of EigenPro's preconditioner and auto's spectrum estimate
(``gramfree.solvers._common.symmetric_eigh``): where LAPACK's dsyevr, scipy's default
driver, fails ("Internal Error", on some narrow-kernel matrices with OpenBLAS on one
thread), another driver answers. Reference: numpy's eigh (divide and conquer)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from gramfree import KernelClassifier
from gramfree.solvers import _common


@pytest.mark.parametrize("subset", [None, [5, 5]])
@pytest.mark.parametrize("eigvals_only", [False, True])
def test_a_failing_default_driver_falls_back(monkeypatch, subset, eigvals_only):
    rng = np.random.default_rng(0)
    B = rng.standard_normal((6, 6))
    A = B @ B.T
    calls, eigh = [], sla.eigh

    def flaky(a, **kwargs):
        calls.append(kwargs.get("driver"))
        if kwargs.get("driver") is None:
            raise np.linalg.LinAlgError("Internal Error.")
        return eigh(a, **kwargs)

    monkeypatch.setattr(_common.sla, "eigh", flaky)
    out = _common.symmetric_eigh(A, eigvals_only=eigvals_only, subset_by_index=subset)
    assert calls == [None, "evd" if subset is None else "evx"]
    vals, vecs = np.linalg.eigh(A)
    got = out if eigvals_only else out[0]
    want = vals if subset is None else vals[subset[0] : subset[1] + 1]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    if not eigvals_only:  # eigenvectors up to sign
        ref = vecs if subset is None else vecs[:, subset[0] : subset[1] + 1]
        np.testing.assert_allclose(np.abs(out[1].T @ ref), np.eye(ref.shape[1]), atol=1e-10)


def test_eigenpro_on_a_matrix_where_dsyevr_fails():
    """Digits, 1000 standardised rows, rbf gamma 100/64, one thread: EigenPro raised
    LinAlgError from its preconditioner's eigh, where direct fits the same problem. It
    now fits, with direct's training predictions."""
    X, y = load_digits(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:1000], y[:1000]
    params = dict(gamma=100 / 64, alpha=1e-3, n_jobs=1, random_state=0)
    eigenpro = KernelClassifier(solver="eigenpro", **params).fit(X, y)
    direct = KernelClassifier(solver="direct", **params).fit(X, y)
    assert np.mean(eigenpro.predict(X) == direct.predict(X)) == 1.0

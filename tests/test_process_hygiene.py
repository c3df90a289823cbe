"""What importing and fitting does to the process around it: verbose output goes through
logging (logger "gramfree"), the environment is left as the user set it, and OpenMP
thread limits set with threadpoolctl are honoured by the native operators."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
from sklearn.datasets import load_digits

from gramfree import KernelClassifier, KernelRegressorCV


def _python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def test_verbose_fit_logs_to_the_gramfree_logger(caplog, capsys, digits):
    X, y = digits
    with caplog.at_level(logging.INFO, logger="gramfree"):
        KernelClassifier(gamma=1e-3, solver="nystrom-pcg", n_centers=100, verbose=True).fit(X, y)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("gramfree")]
    assert any(m.startswith("[nystrom-pcg] preconditioner") for m in messages)
    assert any(m.startswith("[KernelClassifier] nystrom-pcg:") for m in messages)
    # The caller's handler (pytest's) shows them: no second copy on stderr.
    assert "[KernelClassifier]" not in capsys.readouterr().err
    assert logging.getLogger("gramfree").level == logging.NOTSET  # restored


def test_quiet_fit_logs_nothing(caplog, digits):
    X, y = digits
    with caplog.at_level(logging.DEBUG, logger="gramfree"):
        KernelClassifier(gamma=1e-3, solver="nystrom-pcg", n_centers=100).fit(X, y)
        KernelRegressorCV(gamma=1e-3, alphas=[0.1, 1.0]).fit(X, y.astype(float))
    assert not [r for r in caplog.records if r.name.startswith("gramfree")]


def test_verbose_fit_without_logging_setup_writes_to_stderr():
    out = _python("""
        import logging
        from sklearn.datasets import load_digits
        from gramfree import KernelClassifier
        X, y = load_digits(return_X_y=True)
        KernelClassifier(gamma=1e-3, solver="nystrom-pcg", n_centers=100,
                         verbose=True).fit(X[:400], y[:400])
        log = logging.getLogger("gramfree")
        print([type(h).__name__ for h in log.handlers], log.level)
    """)
    assert "[KernelClassifier] nystrom-pcg:" in out.stderr
    assert out.stdout.strip() == "['NullHandler'] 0"  # the temporary handler is gone


def test_import_leaves_the_environment_as_the_user_set_it():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = _python(
        """
        import os, subprocess, sys
        import gramfree
        child = subprocess.run([sys.executable, "-c",
                                "import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                               capture_output=True, text=True).stdout.strip()
        print(os.environ.get("OMP_WAIT_POLICY"), child)
    """,
        env=env,
    )
    assert out.stdout.split() == ["None", "None"]
    out = _python(
        """
        import os, gramfree
        print(os.environ["OMP_WAIT_POLICY"])
    """,
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
    )
    assert out.stdout.strip() == "ACTIVE"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to see a second thread")
@pytest.mark.parametrize("limited", [False, True], ids=["control", "openmp-limit-1"])
def test_threadpoolctl_openmp_limit_is_honoured(limited):
    # A fresh process: OpenMP starts its workers at the first parallel region, so the
    # threads the operator added show in /proc/self/task.
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = _python(
        f"""
        import os
        import numpy as np
        from threadpoolctl import threadpool_limits
        import gramfree
        X = np.random.default_rng(0).normal(size=(20000, 8))
        before = len(os.listdir("/proc/self/task"))
        if {limited}:
            with threadpool_limits(1, user_api="openmp"):
                threads = gramfree.config()["threads"]
                gramfree.KernelOperator(X, X[:2000], "rbf") @ np.ones(2000)
        else:
            threads = gramfree.config()["threads"]
            gramfree.KernelOperator(X, X[:2000], "rbf") @ np.ones(2000)
        print(threads, len(os.listdir("/proc/self/task")) - before)
    """,
        env=env,
    )
    threads, added = map(int, out.stdout.split())
    if limited:
        assert (threads, added) == (1, 0)
    else:
        assert threads >= 2 and added >= 1

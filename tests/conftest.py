"""Shared pytest set-up: the hypothesis profile, the test directory on sys.path (for
``reference`` and ``strategies``) and the dask tests' cluster."""

from __future__ import annotations

import os
import signal
import sys

# Before gramfree (and its libgomp) loads: OpenMP threads that spin after each parallel
# region compete with the numpy references for this machine's few cores and slow the suite
# several-fold. Only the idle policy changes; results do not depend on it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# A shell without job control starts a background command (`bash .ci/run &`) with SIGINT
# ignored (POSIX), and CPython then leaves it ignored; every process the tests start would
# inherit that, and the tests that send Ctrl-C to a child would wait for it in vain. The
# tests' process takes the handler an interactive session has.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# solver="auto" decides by machine rates that `python -m gramfree calibrate` may have saved
# on a developer's machine; the suite's choices must not depend on that (test_rates.py
# points each of its tests at a file of its own).
os.environ["GRAMFREE_RATES"] = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "no-such-dir", "rates.json"
)

import numpy  # noqa: E402, F401  (loads the BLAS that threadpool_limits finds)
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

# The references multiply small matrices: one BLAS thread, so that it does not compete
# with the library's OpenMP threads either.
_BLAS_LIMIT = threadpool_limits(1, user_api="blas")

# No deadline: the first call of a native operator pays for thread start-up. Few examples
# per test because every kernel x dtype x operation is its own test; raise them with
# HYPOTHESIS_PROFILE=thorough.
settings.register_profile(
    "gramfree",
    deadline=None,
    max_examples=12,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("gramfree"),
    max_examples=150,
)
# CI (CI=true) draws the same examples every run, so that a submission's verdict does not
# depend on the draw; exploring new examples is what the local and thorough runs are for.
settings.register_profile("ci", parent=settings.get_profile("gramfree"), derandomize=True)
_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "gramfree"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))


@pytest.fixture(scope="module")
def client():
    """A real two-process dask.distributed cluster (1 thread per worker, as CI's 2 cores
    allow) and its Client, one per test module, for the dask tests; they skip without the
    dask extra before asking for it."""
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c

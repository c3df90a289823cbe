"""One BLAS thread for the small dense algebra inside the iterative solvers' loops.

A CG iteration alternates the native operator's pass (OpenMP threads) with a few triangular
solves of M x t (BLAS). OpenBLAS's threads, woken for each of those small calls, compete
with the operator's threads and with anything else on the machine. On 2 cores with one
of them busy in another process, a Nystrom-PCG fit of letter (5000 rows, 500 centres)
takes 3.7x as long without this limit, and 1.06x on a quiet machine; a logistic fit of
iris 2.9x quiet (``benchmarks/bench_blas_threads.py``). Work this small gains little
from a second thread even on an idle machine, so the loops run their small algebra on
one BLAS thread (the factorizations outside the loops keep every thread).

:func:`blas_threads` applies an estimator's ``n_jobs`` to BLAS for a whole fit; the loops'
:func:`small_blas` nests inside it (threadpoolctl restores the outer limit on exit).
"""

from __future__ import annotations

from contextlib import nullcontext

# Largest flop count per call of the loop's dense algebra (about 4 M^2 t for the
# preconditioner's triangular solves) that runs on one BLAS thread: 3e7 is ~1 ms of work.
SMALL_BLAS_FLOPS = 3e7

_controller = None


def _blas_controller():
    global _controller
    if _controller is None:  # inspecting the loaded libraries costs ~ms: once per process
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def small_blas(flops_per_call: float):
    """A context in which BLAS runs on one thread when ``flops_per_call`` is small (the
    loop's calls are each about that size); otherwise a no-op context."""
    if flops_per_call > SMALL_BLAS_FLOPS:
        return nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


def blas_threads(n_jobs: int | None):
    """A context in which BLAS (LAPACK: Cholesky, triangular solves, eigh) runs on the
    threads ``n_jobs`` asks for, resolved as for the native operators (-1 all cores, -2
    all but one, ...); ``n_jobs=None`` leaves BLAS as it is (a no-op context)."""
    if n_jobs is None:
        return nullcontext()
    from .operators import _n_threads  # operators imports the native module: lazily

    return _blas_controller().limit(limits=_n_threads(n_jobs), user_api="blas")

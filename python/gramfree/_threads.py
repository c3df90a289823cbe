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
:func:`small_blas` nests inside it (the outer limit is restored on exit; :func:`_blas_limit`
keeps that true across Python threads).

Two BLAS libraries. numpy's and scipy's wheels each bundle their own OpenBLAS, and each
keeps its own worker threads, which spin for a while (OpenBLAS's ``THREAD_TIMEOUT``, about
2^28 cycles, a tenth of a second) after every multi-threaded call before they sleep. A fit
that alternates numpy's ``@`` with scipy's BLAS (:mod:`gramfree._blas`, ``scipy.linalg``)
or with the native operators' OpenMP threads leaves one library's workers spinning on the
cores the other needs (``benchmarks/bench_two_blas.py``: EigenPro on satellite 1.31x with
the limit; ``OPENBLAS_THREAD_TIMEOUT=4`` set before numpy loads removes the spinning too,
but a library cannot count on its environment). So for the duration of a fit
numpy's own BLAS, where it is a second library beside scipy's, runs on one thread: numpy's
products in the solvers are small or memory-bound, and the large ones go through
:mod:`gramfree._blas` (scipy's library, on every thread n_jobs allows).
"""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack, contextmanager, nullcontext
from contextvars import ContextVar

# Largest flop count per call of the loop's dense algebra (about 4 M^2 t for the
# preconditioner's triangular solves) that runs on one BLAS thread: 3e7 is ~1 ms of work.
SMALL_BLAS_FLOPS = 3e7

_controller = None
_controller_lock = threading.Lock()


def _blas_controller():
    """threadpoolctl's controller of the loaded libraries, one per process: fits starting
    together in several threads built two, and the limits' bookkeeping, which knows a
    library by its controller, took one fit's limit for the count before it (a review:
    BLAS left on one thread in 5 of 10 runs)."""
    global _controller
    if _controller is None:  # inspecting the loaded libraries costs ~ms: once per process
        with _controller_lock:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
    return _controller


# The BLAS limits in force, across Python threads, in the order they were entered, and
# each limited library's count before the first of them (below). threadpoolctl's own
# limit() saves the count it finds and puts it back on exit, which is right for nested
# contexts in one thread, but a count is one per process: fits in two Python threads (GridSearchCV with the threading backend) exit out of order, and the last one
# out put back the other's limit, leaving numpy's and scipy's BLAS on one thread for the
# rest of the process (a review: 3 of 3 threaded grid searches, default n_jobs). A first
# version of this bookkeeping (71aab7e, reverted) still lost 3 of 8 restores: threadpoolctl
# (3.6 on) lets only the first Python thread to set an OpenBLAS count set it again while
# that thread lives, and silently ignores the others (_set_threads).
_limits_lock = threading.Lock()
# (token, {library path: [the count found on entry, the context then in force over it,
# the count this context set, as the library reports it]}, threads), in the order entered.
_active_limits: list[tuple[object, dict[str, list], int]] = []
# Per library path: its count before the first limit in force.
_original_threads: dict[str, int | None] = {}


def _set_threads(lib, count: int) -> None:
    """``lib``'s thread count set from this Python thread, whichever thread set it before:
    threadpoolctl's OpenBLAS controller gives control to the first thread that sets a
    count, as long as it lives, and ignores the others in silence (its docstring); control
    is cleared around the call, so that the caller (holding ``_limits_lock``) decides."""
    clear = getattr(type(lib), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(count)
    if clear is not None:
        clear(force=True)


@contextmanager
def _blas_limit(libraries, threads: int):
    """BLAS ``libraries`` (threadpoolctl's controllers) on ``threads`` threads for the
    context. The count is the library's, one per process, so while contexts of several
    Python threads overlap the latest one's holds for all of them. On exit, for each
    library:

    * the last context over it restores the count from before the first;
    * the latest of several restores the count it found on entry where the context in
      force then is still the one before it (the usual nesting in one thread: as
      threadpoolctl's own limit does, so a user's threadpoolctl limit opened inside a fit
      is honoured), else the count of the latest context still open;
    * an earlier one (contexts of other threads ending out of order) leaves the latest
      one's count in force;

    and nothing is restored over a count other than the exiting context's own (a
    threadpoolctl limit of a user's, still in force). A user's threadpoolctl limit in
    another Python thread that overlaps a fit without nesting in it may still be left or
    undone: both save a count that the other may since have changed."""
    token = object()
    libraries = tuple(libraries)
    with _limits_lock:
        found = {}
        for lib in libraries:
            path = lib.filepath
            over = [key for key, entry, _ in _active_limits if path in entry]
            found[path] = [lib.get_num_threads(), over[-1] if over else None, None]
            if not over:
                _original_threads[path] = found[path][0]
        _active_limits.append((token, found, threads))
        for lib in libraries:
            _set_threads(lib, threads)
            # (OpenBLAS caps a count at its build's maximum: what it took, not what was asked)
            found[lib.filepath][2] = lib.get_num_threads()
    try:
        yield
    finally:
        with _limits_lock:
            index = next(i for i, entry in enumerate(_active_limits) if entry[0] is token)
            del _active_limits[index]
            for lib in libraries:
                path = lib.filepath
                if any(path in entry for _, entry, _ in _active_limits[index:]):
                    continue  # a later context's count is in force: it stays
                earlier = [(key, count) for key, entry, count in _active_limits if path in entry]
                if not earlier:
                    count = _original_threads.pop(path)
                elif earlier[-1][0] is found[path][1]:
                    count = found[path][0]
                else:
                    count = earlier[-1][1]
                if count is not None and lib.get_num_threads() == found[path][2]:
                    _set_threads(lib, count)


def _blas_libraries(filepaths=None) -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries (those at ``filepaths``)."""
    return [
        lib
        for lib in _blas_controller().lib_controllers
        if lib.user_api == "blas" and (filepaths is None or lib.filepath in filepaths)
    ]


# Threads of gramfree.linalg's native triangular solves (0: OpenMP's default), set for a
# fit by blas_threads and small_blas as BLAS's are: those solves replace BLAS calls.
_native_linalg_threads: ContextVar[int] = ContextVar("native_linalg_threads", default=0)


def native_linalg_threads() -> int:
    """Threads for :mod:`gramfree.linalg`'s native solves in the current context."""
    return _native_linalg_threads.get()


@contextmanager
def _native_threads(count: int):
    token = _native_linalg_threads.set(count)
    try:
        yield
    finally:
        _native_linalg_threads.reset(token)


def small_blas(flops_per_call: float):
    """A context in which BLAS (and gramfree.linalg's native solves) run on one thread when
    ``flops_per_call`` is small (the loop's calls are each about that size); otherwise a
    no-op context."""
    if flops_per_call > SMALL_BLAS_FLOPS:
        return nullcontext()
    stack = ExitStack()
    stack.enter_context(_blas_limit(_blas_libraries(), 1))
    stack.enter_context(_native_threads(1))
    return stack


_numpy_own: list[str] | None = None
# Whether blas_threads puts numpy's own BLAS on one thread (benchmarks/bench_two_blas.py
# turns it off to measure what it saves).
LIMIT_NUMPY_BLAS = True


def numpy_own_blas() -> list[str]:
    """Paths of the BLAS libraries inside numpy's installation (its wheel's bundled
    OpenBLAS) when another BLAS library (scipy's) is loaded beside them; otherwise empty
    (one library shared by both, as in conda or a distribution's packages)."""
    global _numpy_own
    if _numpy_own is None:
        import numpy as np

        package = os.path.realpath(os.path.dirname(np.__file__))
        roots = (package + os.sep, package + ".libs" + os.sep)  # numpy/.libs, numpy.libs
        libs = [c for c in _blas_controller().lib_controllers if c.user_api == "blas"]
        own = [c.filepath for c in libs if os.path.realpath(c.filepath).startswith(roots)]
        _numpy_own = own if 0 < len(own) < len(libs) else []
    return _numpy_own


# The fit's ExitStack while numpy's BLAS limit waits for the first solver that needs it
# (blas_threads with defer_numpy); None otherwise.
_numpy_limit_pending: ContextVar[ExitStack | None] = ContextVar("numpy_limit_pending", default=None)


def blas_threads(n_jobs: int | None, *, defer_numpy: bool = False):
    """A context for a whole fit: BLAS (LAPACK: Cholesky, triangular solves, eigh) runs on
    the threads ``n_jobs`` asks for, resolved as for the native operators (-1 all cores,
    -2 all but one, ...; ``None`` leaves the count as it is), and numpy's own BLAS, where
    it is a second library, on one thread (module docstring).

    ``defer_numpy``: numpy's limit waits for :func:`limit_numpy_blas_for_loops`, which the
    solvers that alternate BLAS with the native operators call. Finding numpy's library
    takes threadpoolctl's scan of every loaded library (a path resolution for each of the
    hundreds a scikit-learn stack loads), once per process: a direct fit, which makes no
    such alternation, is spared it (with ``n_jobs`` None); a small one run once per
    process was dominated by it."""
    stack = ExitStack()
    if n_jobs is not None:
        from .operators import _n_threads  # operators imports the native module: lazily

        limits = _n_threads(n_jobs)
        stack.enter_context(_blas_limit(_blas_libraries(), limits))
        stack.enter_context(_native_threads(limits))
    if LIMIT_NUMPY_BLAS:
        if defer_numpy:
            token = _numpy_limit_pending.set(stack)
            stack.callback(_numpy_limit_pending.reset, token)
        else:
            _limit_numpy_blas(stack)
    return stack


def _limit_numpy_blas(stack: ExitStack) -> None:
    own = numpy_own_blas()
    if own:
        stack.enter_context(_blas_limit(_blas_libraries(own), 1))


def limit_numpy_blas_for_loops() -> None:
    """Apply the limit a deferring :func:`blas_threads` left pending (for the rest of its
    context); a no-op otherwise or once applied."""
    stack = _numpy_limit_pending.get()
    if stack is not None:
        _numpy_limit_pending.set(None)
        _limit_numpy_blas(stack)

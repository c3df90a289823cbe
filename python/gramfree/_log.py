"""Progress and diagnostics through :mod:`logging` (logger ``"gramfree"``), not prints.

The library emits records at INFO, only where ``verbose`` asks for them. A fit with
``verbose`` runs inside :func:`verbose_output`: the ``"gramfree"`` logger is set to INFO for
its duration and, when no handler of the caller's would show its records (the root logger
and ``"gramfree"`` have none), one that writes the bare messages to stderr is attached for
that time; so ``verbose=True`` prints as before on a default setup, and an application that
configures logging receives the records through its own handlers instead (no duplicates).
tqdm progress bars stay on tqdm when it is installed.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger("gramfree")
logger.addHandler(logging.NullHandler())


def say(message: str) -> None:
    """One verbose line (the caller checks ``verbose``)."""
    logger.info(message)


def _has_visible_handler(start: logging.Logger) -> bool:
    """Whether a handler other than a NullHandler sits on ``start`` or above it."""
    log: logging.Logger | None = start
    while log is not None:
        if any(not isinstance(h, logging.NullHandler) for h in log.handlers):
            return True
        if not log.propagate:
            return False
        log = log.parent
    return False


# Verbose fits running at once (threads) share the logger's settings: the first sets them,
# the last restores them (a review: the first fit to finish silenced the others).
_verbose_lock = threading.Lock()
_verbose_state: dict = {"active": 0, "level": logging.NOTSET, "handler": None}


@contextmanager
def verbose_output(verbose) -> Iterator[None]:
    """The ``"gramfree"`` logger shows INFO records while a verbose fit runs."""
    if not verbose:
        yield
        return
    with _verbose_lock:
        state = _verbose_state
        if state["active"] == 0:
            state["level"], state["handler"] = logger.level, None
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            if not _has_visible_handler(logger):
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("%(message)s"))
                logger.addHandler(handler)
                state["handler"] = handler
        state["active"] += 1
    try:
        yield
    finally:
        with _verbose_lock:
            state["active"] -= 1
            if state["active"] == 0:
                logger.setLevel(state["level"])
                if state["handler"] is not None:
                    logger.removeHandler(state["handler"])
                    state["handler"] = None


# Frames a warning should not name: gramfree's own, scikit-learn's (its fit wrappers sit
# between the user's call and the estimator's fit) and joblib's (cross_val_score and
# GridSearchCV fit through it). Found once: os.sep-terminated, on any platform.
@functools.cache
def _library_dirs() -> tuple[str, ...]:
    import importlib.util
    import os

    dirs = [os.path.dirname(os.path.abspath(__file__))]
    for name in ("sklearn", "joblib"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            dirs.append(os.path.dirname(os.path.abspath(spec.origin)))
    return tuple(d + os.sep for d in dirs)


def caller_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` in the function that calls this, naming the
    first frame outside gramfree, scikit-learn and joblib: the user's line, however deep the
    package's own calls (fixed levels pointed into classifier.py or _dask.py where a
    path had one more call than another: a review). A fit run by a thread's target
    names threading's frame: there is no caller's line in that thread."""
    libraries = _library_dirs()
    frame: FrameType | None = sys._getframe(1)  # the function that warns: level 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(libraries):
        frame = frame.f_back
        level += 1
    return level

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

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def verbose_output(verbose) -> Iterator[None]:
    """The ``"gramfree"`` logger shows INFO records while a verbose fit runs."""
    if not verbose:
        yield
        return
    level = logger.level
    handler = None
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if not _has_visible_handler(logger):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    try:
        yield
    finally:
        logger.setLevel(level)
        if handler is not None:
            logger.removeHandler(handler)

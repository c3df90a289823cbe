"""Ragged lists (rows of different lengths) as errors, whatever numpy's version.

numpy before 1.24 turns a ragged list into an object array with a
``VisibleDeprecationWarning``; later versions raise ``ValueError``. The warning is made an
error only where numpy gives it: catching warnings swaps the warnings module's
process-wide state, which calls from several Python threads can leave swapped (a review
found KernelRegressorCV's fits in threads losing every later warning of the process that
way), and every array conversion of the public API passes here.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

RAGGED = getattr(np, "exceptions", np).VisibleDeprecationWarning
_RAGGED_ONLY_WARNS = np.lib.NumpyVersion(np.__version__) < "1.24.0"


@contextmanager
def ragged_lists_raise():
    """A context in which numpy's conversion of a ragged list raises: ``RAGGED`` (numpy
    before 1.24) or ``ValueError`` (later)."""
    if not _RAGGED_ONLY_WARNS:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", RAGGED)
        yield

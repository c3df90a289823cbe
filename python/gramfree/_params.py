"""Number parameters beyond what the computation holds, refused naming them.

scikit-learn's ``Interval(numbers.Real, ...)`` accepts a Python int of any size, and
``Interval(numbers.Integral, ...)`` one beyond 64 bits: ``alpha=10**400`` failed inside
the fit as ``OverflowError: int too large to convert to float``, and a path-kernel model's
``n_steps=10**30`` as pybind11's "Unable to cast Python instance" (a review). Both
estimator families call :func:`check_number_params` after their constraints, and so does
loading a model file (which validates the stored parameters the same way)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, InvalidParameterError

_LARGEST_FLOAT = int(np.finfo(np.float64).max)
_LARGEST_INT64 = 2**63 - 1


def check_number_params(estimator) -> None:
    """ValueError naming the first parameter whose integer value no float64 (a Real
    parameter) or no 64-bit integer (an Integral one) holds, or that is a number and was
    given True or False (scikit-learn's constraints take a bool for an integer, since bool
    subclasses int: ``alpha=True`` fitted with alpha 1, ``n_jobs=True`` on one thread; a
    model file refuses them, gramfree.io)."""
    owner = type(estimator).__name__
    for name, constraints in type(estimator)._parameter_constraints.items():
        value = getattr(estimator, name, None)
        if isinstance(value, bool):
            if _numeric(constraints) and not {"boolean", "verbose"} & set(map(str, constraints)):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {owner} must be a number, not {value!r}"
                )
            continue
        if not isinstance(value, numbers.Integral):
            continue
        types = {c.type for c in constraints if isinstance(c, Interval)}
        if numbers.Integral in types and abs(int(value)) > _LARGEST_INT64:
            digits = len(str(abs(int(value))))
            raise ValueError(f"{name}: an integer of {digits} digits is beyond 64 bits (2^63 - 1)")
        if numbers.Real in types and abs(int(value)) > _LARGEST_FLOAT:
            raise ValueError(f"{name} must be finite, got an integer beyond float64's range")


def _numeric(constraints) -> bool:
    """Whether a parameter's constraints take numbers: an interval, a number type, or a
    seed ("random_state" takes an int: True seeded 1, and the model file refused it)."""
    return any(
        isinstance(c, Interval)
        or (isinstance(c, type) and issubclass(c, numbers.Number))
        or (isinstance(c, str) and c == "random_state")
        for c in constraints
    )

"""The public API is typed: the package ships ``py.typed`` (PEP 561) and the public
methods and functions annotate every parameter and their return value (mypy checks the
package in CI, .ci/lint.sh)."""

from __future__ import annotations

import inspect
import os

import pytest

import gramfree


def _public_callables():
    out = []
    for name in gramfree.__all__:
        obj = getattr(gramfree, name)
        if inspect.isclass(obj):
            for method, func in inspect.getmembers(obj, inspect.isfunction):
                # Constructors take scikit-learn's documented parameters (numpydoc), as
                # scikit-learn's own estimators; inherited methods are their library's.
                if method.startswith("_") or not func.__module__.startswith("gramfree"):
                    continue
                out.append(pytest.param(func, id=f"{name}.{method}"))
        elif callable(obj):
            out.append(pytest.param(obj, id=name))
    return out


@pytest.mark.parametrize("func", _public_callables())
def test_public_callables_are_annotated(func):
    sig = inspect.signature(func)
    missing = [
        n
        for n, p in sig.parameters.items()
        if n not in ("self", "cls") and p.annotation is inspect.Parameter.empty
    ]
    assert not missing, f"parameters without a type: {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, "no return type"


def test_package_is_marked_typed():
    assert os.path.isfile(os.path.join(os.path.dirname(gramfree.__file__), "py.typed"))

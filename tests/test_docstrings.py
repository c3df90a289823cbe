"""The installed package's docstrings: every example runs (doctest, against the installed
package, so a wheel is checked as users get it) and the public API documents its
parameters, return values and usage in numpydoc sections."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import gramfree

# The command line's entry module runs on import; it has no examples.
_SKIP_MODULES = {"gramfree.__main__"}


def _modules_with_examples() -> list[str]:
    names = ["gramfree"] + [
        info.name
        for info in pkgutil.walk_packages(gramfree.__path__, "gramfree.")
        if info.name not in _SKIP_MODULES
    ]
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional dependency missing: its module has nothing to check
            continue
        if any(test.examples for test in finder.find(module)):
            found.append(name)
    return found


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False
    )
    failures = []
    # Scalars print as 0.5, not np.float64(0.5): numpy 2's legacy mode, numpy 1's default.
    legacy = "1.25" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else False
    with np.printoptions(legacy=legacy):
        for test in finder.find(module):
            if not test.examples:
                continue
            result = runner.run(test, out=failures.append, clear_globs=True)
            if result.failed:
                failures.append(f"^ in {test.name}\n")
    assert not failures, "".join(failures)


def _public_functions():
    return [
        getattr(gramfree, name)
        for name in (
            "load",
            "kernel_matrix",
            "kernel_gradient",
            "get_kernel",
            "show_config",
            "config",
        )
    ]


def _public_classes():
    return [
        getattr(gramfree, name)
        for name in gramfree.__all__
        if inspect.isclass(getattr(gramfree, name))
    ]


def _is_function(obj) -> bool:
    return callable(obj) and not inspect.isclass(obj)  # also functools.cache's wrappers


def _kernels_api(kind):
    """What :mod:`gramfree.kernels` exports of ``kind`` (``inspect.isclass`` or
    ``_is_function``), each once (``RBF`` is ``Gaussian``); ``get_kernel`` is checked as
    ``gramfree.get_kernel``."""
    out = []
    for name in gramfree.kernels.__all__:
        obj = getattr(gramfree.kernels, name)
        if kind(obj) and obj not in out and obj is not gramfree.get_kernel:
            out.append(obj)
    return out


def _kernel_classes():
    return _kernels_api(inspect.isclass)


# Special methods that are public API where gramfree defines them (a kernel's
# ``kernel(X, Z)``).
_PUBLIC_DUNDERS = ("__call__",)


def _public_methods(cls):
    """``(name, function)`` for the public methods a gramfree module defines on ``cls`` or
    its gramfree bases (scikit-learn's and scipy's inherited ones are theirs to document)."""
    out = []
    for name in sorted(dir(cls)):
        if name.startswith("_") and name not in _PUBLIC_DUNDERS:
            continue
        attr = inspect.getattr_static(cls, name)
        # staticmethod / classmethod, and scikit-learn's available_if (predict_proba)
        func = getattr(attr, "__func__", getattr(attr, "fn", attr))
        if isinstance(attr, property):
            continue  # documented as attributes, checked below for a docstring
        if not inspect.isfunction(func) or not func.__module__.startswith("gramfree"):
            continue
        out.append((name, func))
    return out


def _takes_arguments(func) -> bool:
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return bool(params)


def _returns_something(func) -> bool:
    annotation = inspect.signature(func).return_annotation
    return annotation not in (None, "None")


def _api():
    """``(qualname, object)`` for every public function, class and method: gramfree's
    exports (the estimators, the operator, ...) and gramfree.kernels' (the kernel classes,
    ``native_kernels``)."""
    items = [(f"gramfree.{f.__name__}", f) for f in _public_functions()]
    items += [(f"gramfree.kernels.{f.__name__}", f) for f in _kernels_api(_is_function)]
    classes = [("gramfree", cls) for cls in _public_classes()]
    classes += [("gramfree.kernels", cls) for cls in _kernel_classes()]
    for prefix, cls in classes:
        items.append((f"{prefix}.{cls.__name__}", cls))
        items += [(f"{prefix}.{cls.__name__}.{name}", func) for name, func in _public_methods(cls)]
    return [pytest.param(*item, id=item[0]) for item in items]


# Parameters where it takes any, Returns (or Yields) where it returns something, a class's
# Attributes, and Examples everywhere (test_examples_run runs them).
@pytest.mark.parametrize("qualname, obj", _api())
def test_numpydoc_sections(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{qualname} has no docstring"
    missing = []
    if inspect.isclass(obj):
        if _takes_arguments(obj.__init__) and "Parameters\n----------" not in doc:
            missing.append("Parameters")
        if "Attributes\n----------" not in doc and "Returns\n-------" not in doc:
            missing.append("Attributes")
    else:
        if _takes_arguments(obj) and "Parameters\n----------" not in doc:
            missing.append("Parameters")
        always_raises = doc.startswith("Not available") and "Raises\n------" in doc
        if (
            _returns_something(obj)
            and not always_raises
            and "Returns\n-------" not in doc
            and "Yields\n------" not in doc
        ):
            missing.append("Returns")
    if "Examples\n--------" not in doc:
        missing.append("Examples")
    assert not missing, f"{qualname}: no {', '.join(missing)} section"


@pytest.mark.parametrize("cls", _public_classes() + _kernel_classes(), ids=lambda c: c.__name__)
def test_properties_documented(cls):
    undocumented = [
        name
        for name in dir(cls)
        if not name.startswith("_")
        and isinstance(inspect.getattr_static(cls, name), property)
        and not (inspect.getattr_static(cls, name).__doc__ or "").strip()
    ]
    assert not undocumented, f"{cls.__name__}: properties without a docstring {undocumented}"

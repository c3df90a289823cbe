"""The declared run-time requirements admit only versions the code works with."""

from __future__ import annotations

import os
import re

PYPROJECT = os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")


def _lower_bound(package: str) -> tuple[int, ...]:
    with open(PYPROJECT) as fh:
        text = fh.read()
    match = re.search(rf'"{re.escape(package)}>=([0-9.]+)"', text)
    assert match, f"{package} has no lower bound in pyproject.toml"
    return tuple(int(p) for p in match.group(1).split("."))


def test_scikit_learn_bound_admits_only_versions_with_validate_data():
    """The estimators import sklearn.utils.validation.validate_data, new in 1.6: a bound
    below that installs a scikit-learn on which ``import gramfree`` fails."""
    import gramfree.estimators._base as base

    assert "validate_data" in open(base.__file__).read()
    assert _lower_bound("scikit-learn") >= (1, 6)

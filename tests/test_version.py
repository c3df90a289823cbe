"""One version: the package, its native module and the installed metadata read the same
place (python/gramfree/_version.py), which is the only source file that writes it."""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess

import pytest

import gramfree
from gramfree import _core

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_package_core_and_metadata_agree():
    # A stale native module (built from an older checkout) shows here, not as odd behaviour.
    assert _core.__version__ == gramfree.__version__
    assert importlib.metadata.version("gramfree") == gramfree.__version__


def _repository_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def test_version_is_written_in_one_source_file():
    # Prose (README, CHANGELOG) may name the release; code and build files must not restate it.
    files = [
        p
        for p in _repository_files()
        if not p.endswith((".md", ".rst", ".txt")) or p.endswith("CMakeLists.txt")
    ]
    holders = [
        p
        for p in files
        if gramfree.__version__ in (ROOT / p).read_text(encoding="utf-8", errors="ignore")
    ]
    assert holders == ["python/gramfree/_version.py"]

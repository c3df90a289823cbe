#!/usr/bin/env bash
# Lint and type checks, as CI runs them: ruff (lint and format) on the Python sources,
# mypy on the package, clang-format on the C++ and CUDA sources. The code is kept clean:
# any finding fails. Configuration: pyproject.toml ([tool.ruff], [tool.mypy]) and
# .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: a newer ruff may format differently, a newer mypy find new things.
python -m pip install --quiet "ruff==0.17.6" "mypy==2.4.1"
if ! command -v clang-format >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq clang-format >/dev/null
fi

PY_SOURCES=(python tests benchmarks examples docs/conf.py)
echo "lint.sh: ruff check"
ruff check "${PY_SOURCES[@]}"
echo "lint.sh: ruff format --check"
ruff format --check "${PY_SOURCES[@]}"
echo "lint.sh: mypy"
mypy
echo "lint.sh: clang-format"
mapfile -t CXX_SOURCES < <(git ls-files 'csrc/*.cpp' 'csrc/*.hpp' 'csrc/*.inc' 'cuda/*.cu' \
  'cuda/*.cuh' 'tests/cpp/*.cpp' 'tests/cpp/*.hpp' 'benchmarks/cpp/*.cpp')
clang-format --dry-run -Werror "${CXX_SOURCES[@]}"
echo "lint.sh: clean (${#CXX_SOURCES[@]} C++/CUDA files, ruff and mypy)"

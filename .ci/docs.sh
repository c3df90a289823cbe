#!/usr/bin/env bash
# Build the documentation site (Sphinx + numpydoc + sphinx-gallery) with warnings as
# errors. Needs gramfree installed in this Python (the API pages are generated from the
# installed package's docstrings, and the gallery runs the examples against it).
#
#   bash .ci/docs.sh            # -> docs/_build/html/index.html
#
# The gallery runs every examples/plot_*.py (scikit-learn's bundled data sets only, so
# nothing is downloaded); the whole script took 66 s on 2 cores (2026-12-01, the
# examples 35 s of it, with other jobs on the machine). A failing
# example, a broken reference or a malformed docstring fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -r docs/requirements.txt
python -c "import gramfree" || {
    echo "docs.sh: gramfree is not importable; install it first (pip install .)" >&2
    exit 1
}

# A clean build: stale generated pages or gallery output must not hide a warning.
rm -rf docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst
export MPLBACKEND=Agg
start=$(date +%s)
python -m sphinx -W --keep-going -b html docs docs/_build/html
echo "docs.sh: built docs/_build/html in $(( $(date +%s) - start )) s"

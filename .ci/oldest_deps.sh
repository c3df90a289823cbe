#!/usr/bin/env bash
# The oldest supported dependencies: the test suite against the gramfree wheel installed
# beside the lowest versions of numpy, scipy, scikit-learn and threadpoolctl that
# pyproject.toml's `dependencies` admit and that have a binary wheel for this Python.
#
# The floors are read from pyproject.toml, so a changed floor is tested as soon as it is
# written. The exact floor is not always installable: numpy 1.23.0/1.23.1 and scipy
# 1.9.0/1.9.1 have no CPython 3.11 wheels, so on 3.11 the lowest installable are 1.23.2
# and 1.9.2. uv's "lowest-direct" resolution with source builds disallowed finds exactly
# those (the direct dependencies at their lowest; joblib and the test tools at their newest
# compatible). pip has no lowest-version resolution.
#
#   bash .ci/oldest_deps.sh            # reuses /tmp/gramfree-wheelhouse/gramfree-*.whl
#                                      # (.ci/wheel_check.sh), else builds a wheel
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC="$PWD"
PYTHON="${PYTHON:-python}"
WHEELHOUSE="${WHEELHOUSE:-/tmp/gramfree-wheelhouse}"
WORK="$(mktemp -d /tmp/gramfree-oldest-deps.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS
stage() { echo "==> [$((SECONDS - T0))s] $*"; }

stage "tools venv: uv (lowest-version resolution)"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q uv
UV="$WORK/tools/bin/uv"

WHEEL="$(ls "$WHEELHOUSE"/gramfree-*.whl 2>/dev/null | head -1 || true)"
if [[ -n "$WHEEL" ]]; then
  stage "reusing $WHEEL"
else
  stage "no wheel in $WHEELHOUSE: building one (CPU-only, as .ci/wheel_check.sh does)"
  "$UV" build --wheel --python "$("$PYTHON" -c 'import sys; print(sys.executable)')" --out-dir "$WORK/dist" \
    -C build-dir="$WORK/build" -C cmake.define.GRAMFREE_CUDA=OFF . >"$WORK/build.log" 2>&1 ||
    { tail -50 "$WORK/build.log"; exit 1; }
  WHEEL="$(ls "$WORK"/dist/gramfree-*.whl)"
fi

stage "the floors in pyproject.toml and the lowest versions installable here"
"$PYTHON" - "$SRC/pyproject.toml" >"$WORK/floors.in" <<'EOF'
import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
for d in deps:
    assert ">=" in d, f"{d}: no floor"
    print(d)
EOF
sed 's/^/    declared: /' "$WORK/floors.in"
"$PYTHON" -m venv "$WORK/venv"
VENV="$WORK/venv"
"$UV" pip compile -q --resolution lowest-direct --no-build --no-header --no-annotate \
  --python "$VENV/bin/python" "$WORK/floors.in" -o "$WORK/pins.txt"
sed 's/^/    resolved: /' "$WORK/pins.txt"

stage "venv: the wheel, the test extra, everything pinned to the resolution above"
"$UV" pip install -q --python "$VENV/bin/python" --no-build -c "$WORK/pins.txt" "${WHEEL}[test]"
# The test extra must not have lifted a floor package above its pin.
"$VENV/bin/python" - "$WORK/pins.txt" "$WORK/floors.in" <<'EOF'
import re, sys
from importlib.metadata import version
pins = dict(l.strip().split("==") for l in open(sys.argv[1]) if "==" in l)
for line in open(sys.argv[2]):
    name = re.split("[<>=!~ ]", line.strip())[0]
    got = version(name)
    print(f"    installed: {name}=={got}")
    assert got == pins[name], f"{name} {got} is not the pinned {pins[name]}"
EOF

SUITE="$WORK/suite"
mkdir -p "$SUITE" "$WORK/home"
cp -r "$SRC/tests" "$SRC/pyproject.toml" "$SRC/README.md" "$SUITE/"
find "$SUITE" -name __pycache__ -prune -exec rm -rf {} +

stage "test suite (from a copy of tests/, gramfree from the venv)"
cd "$SUITE"
env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$WORK/home" LANG=C.UTF-8 CI="${CI:-true}" \
  MPLBACKEND=Agg python -c "import gramfree, sys; assert gramfree.__file__.startswith(sys.prefix), gramfree.__file__; print('    gramfree from', gramfree.__file__)"
env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$WORK/home" LANG=C.UTF-8 CI="${CI:-true}" \
  MPLBACKEND=Agg python -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-}

stage "oldest dependencies passed"

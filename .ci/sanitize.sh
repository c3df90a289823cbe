#!/usr/bin/env bash
# The C++ tests under AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer,
# in a build directory of their own (no Python module, no CUDA, no benchmarks). Any report
# fails the run: -fno-sanitize-recover turns UB into an abort, ASan aborts on the first
# error, LeakSanitizer fails the process at exit.
#
#   .ci/sanitize.sh                   # uses <repo>/build/sanitize
#   BUILD_DIR=/tmp/s JOBS=8 .ci/sanitize.sh
set -euo pipefail
# -O1, as AddressSanitizer's documentation suggests: the engines' vector code, compiled per
# instruction set, took 116 s per file at -O2 with the sanitizers and 23 s at -O1 (the
# whole step about 11 minutes on two cores at -O2).

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR="${BUILD_DIR:-build/sanitize}"
JOBS="${JOBS:-2}"
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"

echo "==> configure (${BUILD_DIR}): ${FLAGS}"
cmake -S . -B "${BUILD_DIR}" \
  -DGRAMFREE_BUILD_PYTHON=OFF \
  -DGRAMFREE_BUILD_TESTS=ON \
  -DGRAMFREE_BUILD_BENCHMARKS=OFF \
  -DGRAMFREE_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
  -DCMAKE_CXX_FLAGS="${FLAGS}" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"

echo "==> build (-j${JOBS})"
cmake --build "${BUILD_DIR}" -j"${JOBS}"

echo "==> ctest under ASan + UBSan"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "${BUILD_DIR}" --output-on-failure --no-tests=error -j"${JOBS}"
echo "==> sanitize: all passed"

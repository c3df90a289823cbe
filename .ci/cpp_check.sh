#!/usr/bin/env bash
# Builds the C++ core with its tests and benchmarks (no Python, no CUDA), runs the tests,
# and runs every benchmark once at its smallest size so that the harness cannot rot.
#
#   .ci/cpp_check.sh                  # from anywhere; uses <repo>/build/cpp
#   BUILD_DIR=/tmp/b JOBS=8 .ci/cpp_check.sh
#
# Needs cmake >= 3.18, a C++20 compiler with OpenMP, doctest (Debian: doctest-dev) and
# Google Benchmark (Debian: libbenchmark-dev). Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR="${BUILD_DIR:-build/cpp}"
JOBS="${JOBS:-2}"

echo "==> configure (${BUILD_DIR})"
cmake -S . -B "${BUILD_DIR}" \
  -DGRAMFREE_BUILD_PYTHON=OFF \
  -DGRAMFREE_BUILD_TESTS=ON \
  -DGRAMFREE_BUILD_BENCHMARKS=ON \
  -DGRAMFREE_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=Release

echo "==> build (-j${JOBS})"
cmake --build "${BUILD_DIR}" -j"${JOBS}"

echo "==> ctest"
ctest --test-dir "${BUILD_DIR}" --output-on-failure --no-tests=error

echo "==> benchmarks, smallest size, once"
bench="${BUILD_DIR}/benchmarks/cpp/gramfree_bench_operators"
# --benchmark_min_time: a plain number of seconds (Google Benchmark 1.7 reads a double;
# 1.8+ also accepts it, as seconds).
"${bench}" --benchmark_filter='n:512/m:512/' --benchmark_min_time=0.01 \
  --benchmark_out="${BUILD_DIR}/bench_smoke.json" --benchmark_out_format=json
# A benchmark that errors (SkipWithError) does not change the exit status: check the JSON.
# ("Library was built as DEBUG" above refers to the distribution's libbenchmark build.)
json="${BUILD_DIR}/bench_smoke.json"
runs=$(grep -c '"run_type": "iteration"' "${json}" || true)
with_rate=$(grep -c '"items_per_second"' "${json}" || true)
if [[ "${runs}" -eq 0 ]] || grep -q '"error_occurred": true' "${json}" || [[ "${with_rate}" -ne "${runs}" ]]; then
  echo "benchmark smoke run failed: ${runs} runs, ${with_rate} with items_per_second (see ${json})" >&2
  exit 1
fi
echo "benchmark smoke run: ${runs} benchmarks ok"

echo "==> install into a prefix; a program outside the tree finds it (find_package)"
prefix="${BUILD_DIR}/prefix"
rm -rf "${prefix}" "${BUILD_DIR}/consumer"
cmake --install "${BUILD_DIR}" --prefix "${prefix}" >/dev/null
cmake -S tests/cpp/consumer -B "${BUILD_DIR}/consumer" -DCMAKE_PREFIX_PATH="$(pwd)/${prefix}" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "${BUILD_DIR}/consumer" -j"${JOBS}" >/dev/null
"${BUILD_DIR}/consumer/consumer"
echo "==> cpp_check: all passed"

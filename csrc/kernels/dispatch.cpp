// Picks the engine's instruction set once: the best the processor supports, unless the
// environment variable GRAMFREE_SIMD (scalar|avx2|avx512) asks for another.
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine_api.hpp"
#include "gramfree/gramfree.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace gramfree {
namespace {

SimdLevel detect() {
#if defined(GRAMFREE_X86_ISAS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // x86-64-v4 and v3, the levels the two translation units are compiled for.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
      __builtin_cpu_supports("f16c"))
    return SimdLevel::avx2;
#endif
  return SimdLevel::scalar;
}

SimdLevel initial_level() {
  const SimdLevel best = detect();
  const char* env = std::getenv("GRAMFREE_SIMD");
  if (env == nullptr || *env == '\0') return best;
  SimdLevel wanted;
  try {
    wanted = simd_level_from_string(env);
  } catch (const std::invalid_argument&) {
    return best;  // an unknown value must not make the library unusable; show_config tells
  }
  return static_cast<int>(wanted) <= static_cast<int>(best) ? wanted : best;
}

std::atomic<int>& current() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

}  // namespace

SimdLevel detected_simd_level() {
  static const SimdLevel best = detect();
  return best;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(current().load()); }

void set_simd_level(SimdLevel level) {
  if (static_cast<int>(level) < static_cast<int>(SimdLevel::scalar))
    throw std::invalid_argument("simd level: not one of scalar, avx2, avx512");
  if (static_cast<int>(level) > static_cast<int>(detected_simd_level()))
    throw std::invalid_argument(
        "simd level " + to_string(level) +
        " is not supported by this processor (best: " + to_string(detected_simd_level()) + ")");
  current().store(static_cast<int>(level));
}

std::string to_string(SimdLevel level) {
  switch (level) {
    case SimdLevel::scalar:
      return "scalar";
    case SimdLevel::avx2:
      return "avx2";
    case SimdLevel::avx512:
      return "avx512";
  }
  return "unknown";
}

SimdLevel simd_level_from_string(const std::string& name) {
  if (name == "scalar") return SimdLevel::scalar;
  if (name == "avx2") return SimdLevel::avx2;
  if (name == "avx512") return SimdLevel::avx512;
  throw std::invalid_argument("simd level must be 'scalar', 'avx2' or 'avx512', got '" + name +
                              "'");
}

namespace {
// GNU libgomp keeps its thread team across calls and has no fork handling: in a child
// forked after the parent ran a team of more than one thread, the next such team waits
// forever for threads that were not forked (a review: multiprocessing's fork pool over
// model.predict hung). Such a child computes on one thread instead: correct and slower.
std::atomic<bool> team_started{false};
std::atomic<bool> team_lost{false};

void after_fork_in_child() {
  if (team_started.load(std::memory_order_relaxed)) team_lost.store(true);
}

const int fork_handler_registered = pthread_atfork(nullptr, nullptr, after_fork_in_child);
}  // namespace

// What the process's OpenMP would use, also in a forked child (where team_threads gives
// one): n_jobs limits and the choices made from this count stay the parent's, and so do
// the results, which do not depend on the thread count.
int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

namespace detail {
int team_threads(int requested) {
  (void)fork_handler_registered;
  if (team_lost.load(std::memory_order_relaxed)) return 1;
  if (requested > 1) team_started.store(true, std::memory_order_relaxed);
  return requested;
}
}  // namespace detail

namespace detail {
const EngineTable& active_engine() {
  switch (simd_level()) {
#if defined(GRAMFREE_X86_ISAS)
    case SimdLevel::avx512:
      return engine_avx512;
    case SimdLevel::avx2:
      return engine_avx2;
#endif
    default:
      return engine_scalar;
  }
}
}  // namespace detail

}  // namespace gramfree

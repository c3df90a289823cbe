// Benchmarks of the gramfree C++ core, straight from the library (no Python).
//
// Every benchmark reports items_per_second with one item = one kernel entry k(x_i, z_j),
// i.e. n * m per call (the normal operator K^T K V also counts n * m, although it evaluates
// each entry twice). Arguments are n (rows of X), m (rows of Z), d (features) and k
// (columns of V; kernel_block has none). Times are wall-clock (UseRealTime): the operators are
// OpenMP-parallel.
//
//   gramfree_bench_operators                                 # all, default sizes
//   gramfree_bench_operators --benchmark_filter='matvec_gaussian<float>'
//   gramfree_bench_operators --benchmark_filter='n:512/m:512/' --benchmark_min_time=0.01
//   OMP_NUM_THREADS=1 GRAMFREE_SIMD=avx2 gramfree_bench_operators ...
//
// The simd/<level> family times the same Gaussian matvec at every instruction-set level
// this processor supports (set_simd_level), the kind/<name> family every kernel function.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gramfree/gramfree.hpp"

namespace gf = gramfree;

namespace {

template <class T>
std::vector<T> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::vector<T> a(rows * cols);
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (T& v : a) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = T(double(s >> 11) * 0x1p-53 * 2.0 - 1.0);  // U(-1, 1)
  }
  return a;
}

// The problem of one benchmark run, from its arguments n, m, d, k (as registered).
template <class T>
struct Problem {
  std::size_t n, m, d, k;
  std::vector<T> X, Z, V;
  // with_k: the arguments include k (not for kernel_block, which has no V).
  explicit Problem(const benchmark::State& state, bool with_k = true)
      : n(std::size_t(state.range(0))),
        m(std::size_t(state.range(1))),
        d(std::size_t(state.range(2))),
        k(with_k ? std::size_t(state.range(3)) : 1),
        X(random_matrix<T>(n, d, 1)),
        Z(random_matrix<T>(m, d, 2)),
        V(random_matrix<T>(m, k, 3)) {}
  gf::ConstMatrix<T> x() const { return {X.data(), n, d}; }
  gf::ConstMatrix<T> z() const { return {Z.data(), m, d}; }
  gf::ConstMatrix<T> v() const { return {V.data(), m, k}; }
};

gf::KernelSpec spec_for(gf::KernelKind kind, std::size_t d) {
  gf::KernelSpec s;
  s.kind = kind;
  s.gamma = kind == gf::KernelKind::polynomial ? 1.0 / double(d) : 0.5 / double(d);
  return s;
}

void finish(benchmark::State& state, std::size_t n, std::size_t m) {
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n) * std::int64_t(m));
}

template <class T>
void matvec(benchmark::State& state, gf::KernelKind kind) {
  const Problem<T> p(state);
  const gf::KernelSpec spec = spec_for(kind, p.d);
  std::vector<T> out(p.n * p.k);
  for (auto _ : state) {
    gf::kernel_matvec<T>(spec, p.x(), p.z(), p.v(), {out.data(), p.n, p.k});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, p.n, p.m);
}

template <class T>
void BM_matvec_gaussian(benchmark::State& state) {
  matvec<T>(state, gf::KernelKind::gaussian);
}

template <class T>
void BM_normal_matvec_gaussian(benchmark::State& state) {
  const Problem<T> p(state);
  const gf::KernelSpec spec = spec_for(gf::KernelKind::gaussian, p.d);
  std::vector<T> out(p.m * p.k);
  for (auto _ : state) {
    gf::kernel_normal_matvec<T>(spec, p.x(), p.z(), p.v(), {out.data(), p.m, p.k});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, p.n, p.m);
}

template <class T>
void BM_block_gaussian(benchmark::State& state) {
  const Problem<T> p(state, /*with_k=*/false);
  const gf::KernelSpec spec = spec_for(gf::KernelKind::gaussian, p.d);
  std::vector<T> out(p.n * p.m);
  for (auto _ : state) {
    gf::kernel_block<T>(spec, p.x(), p.z(), {out.data(), p.n, p.m});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, p.n, p.m);
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(p.n * p.m * sizeof(T)));
}

// Default sizes: small, so that a full run takes seconds. The first row of every family
// is n:512/m:512/..., which is what .ci/cpp_check.sh runs.
void matvec_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "m", "d", "k"});
  b->Args({512, 512, 16, 1});
  b->Args({2048, 2048, 16, 1});
  b->Args({4096, 1024, 64, 8});
  b->Args({16, 8192, 16, 1});  // few rows: the engine splits Z across threads
}
// Many right-hand sides (one column per class): the time at k over the time at k = 1 is the
// figure (benchmarks/bench_rhs.py has the Python twin, beside numpy's GEMM rate).
void rhs_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "m", "d", "k"});
  for (int k : {1, 4, 10, 26, 64}) b->Args({512, 512, 16, k});
  for (int k : {1, 4, 10, 26, 64}) b->Args({8192, 4096, 16, k});
  for (int k : {1, 4, 10, 26, 64}) b->Args({2048, 1024, 784, k});
}
void normal_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "m", "d", "k"});
  b->Args({512, 512, 16, 1});
  b->Args({8192, 512, 16, 1});
  b->Args({8192, 1024, 64, 8});
}
void block_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "m", "d"});
  b->Args({512, 512, 16});
  b->Args({2048, 2048, 16});
  b->Args({2048, 2048, 128});
}

BENCHMARK_TEMPLATE(BM_matvec_gaussian, float)->Apply(matvec_sizes)->UseRealTime();
BENCHMARK_TEMPLATE(BM_matvec_gaussian, double)->Apply(matvec_sizes)->UseRealTime();
BENCHMARK_TEMPLATE(BM_matvec_gaussian, float)
    ->Name("BM_matvec_rhs<float>")
    ->Apply(rhs_sizes)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_matvec_gaussian, double)
    ->Name("BM_matvec_rhs<double>")
    ->Apply(rhs_sizes)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_normal_matvec_gaussian, float)
    ->Name("BM_normal_rhs<float>")
    ->Apply(rhs_sizes)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_normal_matvec_gaussian, double)
    ->Name("BM_normal_rhs<double>")
    ->Apply(rhs_sizes)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_normal_matvec_gaussian, float)->Apply(normal_sizes)->UseRealTime();
BENCHMARK_TEMPLATE(BM_normal_matvec_gaussian, double)->Apply(normal_sizes)->UseRealTime();
BENCHMARK_TEMPLATE(BM_block_gaussian, float)->Apply(block_sizes)->UseRealTime();
BENCHMARK_TEMPLATE(BM_block_gaussian, double)->Apply(block_sizes)->UseRealTime();

// Every kernel of the table (gramfree/kernel_table.hpp).
constexpr gf::KernelKind kAllKinds[] = {
#define GF_KIND(id, ...) gf::KernelKind::id,
    GRAMFREE_KERNEL_TABLE(GF_KIND)
#undef GF_KIND
};

template <class T>
const char* type_name() {
  return sizeof(T) == 8 ? "double" : "float";
}

// Families whose members depend on run-time facts (the kernel kinds, the SIMD levels this
// processor has), registered before the command line is applied so that filters see them.
template <class T>
void register_dynamic() {
  for (gf::KernelKind kind : kAllKinds) {
    const std::string name =
        "BM_matvec_kind<" + std::string(type_name<T>()) + ">/" + gf::to_string(kind);
    benchmark::RegisterBenchmark(name.c_str(), [kind](benchmark::State& s) { matvec<T>(s, kind); })
        ->ArgNames({"n", "m", "d", "k"})
        ->Args({512, 512, 16, 1})
        ->Args({2048, 2048, 16, 1})
        ->UseRealTime();
  }
  for (int level = 0; level <= static_cast<int>(gf::detected_simd_level()); ++level) {
    const gf::SimdLevel simd = static_cast<gf::SimdLevel>(level);
    const std::string name =
        "BM_matvec_simd<" + std::string(type_name<T>()) + ">/" + gf::to_string(simd);
    benchmark::RegisterBenchmark(name.c_str(),
                                 [simd](benchmark::State& s) {
                                   const gf::SimdLevel saved = gf::simd_level();
                                   gf::set_simd_level(simd);
                                   matvec<T>(s, gf::KernelKind::gaussian);
                                   gf::set_simd_level(saved);
                                 })
        ->ArgNames({"n", "m", "d", "k"})
        ->Args({512, 512, 16, 1})
        ->Args({2048, 2048, 16, 1})
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_dynamic<float>();
  register_dynamic<double>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("gramfree_simd", gf::to_string(gf::simd_level()));
  benchmark::AddCustomContext("gramfree_simd_detected", gf::to_string(gf::detected_simd_level()));
  benchmark::AddCustomContext("gramfree_max_threads", std::to_string(gf::max_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

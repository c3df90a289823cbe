// The public operators: argument checks, workspace, and the composition of engine calls
// (transpose, the one-pass normal operator, gradients). Compiled with baseline flags.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "engine_api.hpp"
#include "formulas_scalar.hpp"
#include "gramfree/gramfree.hpp"
#include "visit_kind.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace gramfree {
namespace detail {
const EngineTable& active_engine();
int team_threads(int requested);  // dispatch.cpp: one thread in a child forked after a team
}  // namespace detail

using detail::EngineArgs;
using detail::Epilogue;

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
    fail(std::string(what) + ": size overflows");
  return a * b;
}

template <class T>
void check_input(ConstMatrix<T> A, const char* name) {
  if (A.data == nullptr && A.rows * A.cols != 0) fail(std::string(name) + ": null data");
  if (A.rows == 0 || A.cols == 0)
    fail(std::string(name) + ": empty array (shape " + std::to_string(A.rows) + " x " +
         std::to_string(A.cols) + ")");
  const std::size_t count = checked_mul(A.rows, A.cols, name);
  for (std::size_t e = 0; e < count; ++e)
    if (!std::isfinite(A.data[e])) fail(std::string(name) + ": contains NaN or infinity");
}

template <class T>
void check_output(Matrix<T> out, std::size_t rows, std::size_t cols, bool strided = false) {
  if (out.rows != rows || out.cols != cols)
    fail("out: shape " + std::to_string(out.rows) + " x " + std::to_string(out.cols) +
         ", expected " + std::to_string(rows) + " x " + std::to_string(cols));
  if (out.data == nullptr) fail("out: null data");
  if (out.ld != 0 && out.ld < out.cols)
    fail("out: row stride " + std::to_string(out.ld) + " is below its " + std::to_string(out.cols) +
         " columns");
  if (!strided && out.ld != 0 && out.ld != out.cols)
    fail("out: a row stride other than its columns is taken by kernel_block only");
}

// The memory [begin, end) of elems values of T from p (nothing for null or no values).
struct Span {
  std::uintptr_t begin = 0, end = 0;
};
template <class T>
Span span_of(const T* p, std::size_t elems) {
  if (p == nullptr || elems == 0) return {};
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  return {begin, begin + elems * sizeof(T)};
}
template <class T>
Span span_of(ConstMatrix<T> A) {
  return span_of(A.data, A.rows * A.cols);
}
template <class T>
Span span_of(Matrix<T> out) {
  if (out.rows == 0 || out.cols == 0) return {};
  return span_of(out.data, (out.rows - 1) * (out.ld == 0 ? out.cols : out.ld) + out.cols);
}

// The core reads its inputs while it writes its output, so an output sharing their memory
// came back wrong in silence (out == V: K @ V 2.2 off where the values are at most 1.7, the
// normal product all zeros; a review of the C++ API).
void check_disjoint(Span out, Span input, const char* name) {
  if (out.begin < input.end && input.begin < out.end)
    fail(std::string("out: overlaps ") + name + " (the result needs memory of its own)");
}

void check_xz(std::size_t xd, std::size_t zd) {
  if (xd != zd)
    fail("X and Z: number of features differ (" + std::to_string(xd) + " vs " + std::to_string(zd) +
         ")");
}

// Rate-limits the user's interrupt callback (which may take the GIL) to every ~20 ms.
struct Poller {
  const std::function<bool()>* fn;
  std::chrono::steady_clock::time_point next;
  static bool call(void* self) noexcept {
    auto* p = static_cast<Poller*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (now < p->next) return false;
    p->next = now + std::chrono::milliseconds(20);
    try {
      return (*p->fn)();
    } catch (...) {
      return true;  // a failing callback must not cross the OpenMP region; stop instead
    }
  }
};

struct AlignedFree {
  void operator()(void* p) const noexcept { std::free(p); }
};

template <class T>
std::unique_ptr<T[], AlignedFree> aligned_buffer(std::size_t elems) {
  const std::size_t bytes = (checked_mul(elems, sizeof(T), "workspace") + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<T[], AlignedFree>(static_cast<T*>(p));
}

int resolve_threads(const Options& options) {
  if (options.n_threads < 0) fail("n_threads: must be >= 0");
  // More threads than a few per processor only oversubscribes; a huge count would make
  // the OpenMP runtime abort when it cannot create them.
  const int limit = 4 * std::max(1, max_threads()) + 64;
  if (options.n_threads > limit)
    fail("n_threads: " + std::to_string(options.n_threads) + " is more than " +
         std::to_string(limit) + " (4 per processor)");
  // One thread in a process forked after a team ran (libgomp's team is lost: dispatch.cpp).
  return detail::team_threads(options.n_threads > 0 ? options.n_threads : max_threads());
}

// One engine call with its workspace; throws interrupted if asked to stop.
template <class T>
void run_engine(EngineArgs<T> args, const Options& options) {
  const auto& engine = detail::active_engine();
  args.n_threads = resolve_threads(options);
  // Waking a second thread costs tens of microseconds (more on a loaded machine): below
  // about 2^18 multiply-adds one thread finishes first. Small calls are the common case
  // inside EigenPro's batches and scikit-learn's estimator checks.
  const std::size_t work = args.n * args.m * (args.d + args.k + 1);
  if (work < (std::size_t(1) << 18)) args.n_threads = 1;
  Poller poller{&options.interrupt, std::chrono::steady_clock::now()};
  if (options.interrupt) {
    args.poll = &Poller::call;
    args.poll_ctx = &poller;
  }
  std::size_t elems;
  int rc;
  if constexpr (std::is_same_v<T, float>) {
    elems = engine.workspace_f32(args);
    auto ws = aligned_buffer<T>(elems);
    args.workspace = ws.get();
    rc = engine.run_f32(args);
  } else {
    elems = engine.workspace_f64(args);
    auto ws = aligned_buffer<T>(elems);
    args.workspace = ws.get();
    rc = engine.run_f64(args);
  }
  if (rc != 0) throw interrupted();
}

// C (+)= op(A) B on the active instruction set: op(A) = A, or A^T with trans_a.
template <class T>
void run_gemm(ConstMatrix<T> A, bool trans_a, ConstMatrix<T> B, T* C, bool accumulate,
              const Options& options) {
  const auto& engine = detail::active_engine();
  detail::GemmArgs<T> g;
  g.A = A.data;
  g.lda = A.cols;
  g.trans_a = trans_a;
  g.n = trans_a ? A.cols : A.rows;
  g.p = trans_a ? A.rows : A.cols;
  g.k = B.cols;
  g.B = B.data;
  g.C = C;
  g.accumulate = accumulate;
  g.n_threads = resolve_threads(options);
  if (g.n * g.p * g.k < (std::size_t(1) << 18)) g.n_threads = 1;
  if constexpr (std::is_same_v<T, float>) {
    auto ws = aligned_buffer<T>(engine.gemm_workspace_f32(g));
    g.workspace = ws.get();
    engine.gemm_f32(g);
  } else {
    auto ws = aligned_buffer<T>(engine.gemm_workspace_f64(g));
    g.workspace = ws.get();
    engine.gemm_f64(g);
  }
}

// Centre of Z: Gaussian tiles use the expansion |x-c|^2 + |z-c|^2 - 2<x-c,z-c>, which loses
// digits in proportion to |x-c|^2 / |x-z|^2; subtracting the mean of Z keeps that small.
template <class T>
std::vector<T> column_mean(ConstMatrix<T> A) {
  std::vector<double> sum(A.cols, 0.0);
  for (std::size_t i = 0; i < A.rows; ++i)
    for (std::size_t t = 0; t < A.cols; ++t) sum[t] += A.data[i * A.cols + t];
  std::vector<T> mean(A.cols);
  for (std::size_t t = 0; t < A.cols; ++t) mean[t] = T(sum[t] / double(A.rows));
  return mean;
}

// The Gaussian's expansion |x-c|^2 + |z-c|^2 - 2<x-c,z-c> has an absolute error of a few
// eps * (|x-c|^2 + |z-c|^2) in the exponent, times the growth of the d-term sums. Up to
// gamma * (that) = 64 the kernel's relative error is below ~100 eps times that growth (a
// review: float32 clusters far from their common mean, d = 1024, gamma S near 64: 6e-5;
// float64 at d = 131072: 1.8e-12); beyond (clusters far from the mean of Z, a narrow
// bandwidth) the engine sums (x - z)^2 directly, which is exact to rounding and costs one
// extra instruction per feature.
template <class T>
bool gaussian_needs_subtraction(ConstMatrix<T> X, ConstMatrix<T> Z, const std::vector<T>& c,
                                double gamma) {
  auto max_sq = [&](ConstMatrix<T> A) {
    double best = 0;
    for (std::size_t i = 0; i < A.rows; ++i) {
      double s = 0;
      for (std::size_t t = 0; t < A.cols; ++t) {
        const double v = double(A.data[i * A.cols + t]) - double(c[t]);
        s += v * v;
      }
      best = std::max(best, s);
    }
    return best;
  };
  return gamma * (max_sq(X) + max_sq(Z)) > 64.0;
}

// The Gaussian's expansion, centred, unless the data sit too far from the centre for it.
template <class T>
Epilogue prepare_gaussian(Epilogue epi, const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                          std::vector<T>& shift) {
  if (epi.kind != detail::kExpandable) return epi;
  shift = column_mean(Z);
  epi.expand = !gaussian_needs_subtraction(X, Z, shift, spec.gamma);
  if (!epi.expand) shift.clear();
  return epi;
}

template <class T>
EngineArgs<T> make_args(const KernelSpec& spec, Epilogue epi, ConstMatrix<T> X, ConstMatrix<T> Z) {
  EngineArgs<T> a;
  a.epilogue = epi;
  a.gamma = T(spec.gamma);
  a.coef0 = T(spec.coef0);
  a.length_scale = T(spec.length_scale);
  a.degree = spec.degree;
  a.X = X.data;
  a.n = X.rows;
  a.Z = Z.data;
  a.m = Z.rows;
  a.d = X.cols;
  return a;
}

// out (+)= K(X,Z) V, the engine call every operator is made of.
template <class T>
void matvec_into(const KernelSpec& spec, Epilogue epi, ConstMatrix<T> X, ConstMatrix<T> Z,
                 ConstMatrix<T> V, T* out, bool accumulate, const Options& options) {
  std::vector<T> shift;
  epi = prepare_gaussian(epi, spec, X, Z, shift);
  EngineArgs<T> a = make_args(spec, epi, X, Z);
  a.shift = shift.empty() ? nullptr : shift.data();
  a.V = V.data;
  a.k = V.cols;
  a.out = out;
  a.accumulate = accumulate;
  run_engine(a, options);
}

// validate() checks the parameters as doubles; the engine computes with them narrowed to T.
// A float gamma of 1e39 is inf there and a length scale of 1e-40 zero (1e-310 in double
// makes sqrt(5) / length_scale inf): k(x, x) came back NaN or exp(-87) in silence from
// the C++ API (a review; the Python layer refuses such scales before).
template <class T>
void validate_in_precision(const KernelSpec& spec) {
  validate(spec);  // the kind among them
  const KernelInfo& row = kernel_table[static_cast<std::size_t>(spec.kind)];
  const char* type = sizeof(T) == sizeof(float) ? "float32" : "float64";
  auto check = [&](Domain domain, double value, const char* name, bool scale) {
    if (domain != Domain::positive && domain != Domain::finite) return;
    const T v = T(value);
    bool ok = std::isfinite(v) && (domain != Domain::positive || v > 0);
    if (ok && scale) ok = std::isfinite(T(2.2360679774997896964) / v);
    if (!ok) {
      char shown[32];
      std::snprintf(shown, sizeof shown, "%.6g", value);
      fail(std::string(name) + ": " + shown + " is beyond what " + type +
           " computes with (there it is no positive finite number" +
           (scale ? ", or its reciprocal overflows" : "") + "); rescale it" +
           (sizeof(T) == sizeof(float) ? " or compute in float64" : ""));
    }
  };
  check(row.gamma, spec.gamma, "gamma", false);
  check(row.coef0, spec.coef0, "coef0", false);
  check(row.length_scale, spec.length_scale, "length_scale", true);
}

template <class T>
void check_operands(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z) {
  validate_in_precision<T>(spec);
  check_input(X, "X");
  check_input(Z, "Z");
  check_xz(X.cols, Z.cols);
}

// With many features a kernel entry costs ~2d flops while reading it back from a cache-sized
// strip costs a few: there the one-pass operator evaluates each block's strip K(X_b, Z)
// once and multiplies it both ways, instead of recomputing it for the transposed product.
constexpr std::size_t kStripMinFeatures = 64;
constexpr std::size_t kStripBytes = std::size_t(16) << 20;  // stays in a shared L3
constexpr std::size_t kStripMinRows = 48;
constexpr std::size_t kStripMaxRows = 4096;

template <class T>
void normal_matvec_strip(const KernelSpec& spec, Epilogue epi, ConstMatrix<T> X, ConstMatrix<T> Z,
                         ConstMatrix<T> V, Matrix<T> out, const Options& options,
                         const T* row_weights) {
  const std::size_t m = Z.rows, k = V.cols;
  // Rows per strip from the byte budget alone (not the thread count), for determinism.
  const std::size_t block =
      std::min(kStripMaxRows, std::max(kStripMinRows, kStripBytes / (m * sizeof(T))));
  std::vector<T> strip(checked_mul(std::min(block, X.rows), m, "strip"));
  std::vector<T> t(std::min(block, X.rows) * k);
  std::vector<T> shift;
  epi = prepare_gaussian(epi, spec, X, Z, shift);
  for (std::size_t e = 0; e < m * k; ++e) out.data[e] = T(0);
  for (std::size_t r0 = 0; r0 < X.rows; r0 += block) {
    const std::size_t rows = std::min(block, X.rows - r0);
    EngineArgs<T> a = make_args(spec, epi, ConstMatrix<T>{X.data + r0 * X.cols, rows, X.cols}, Z);
    a.shift = shift.empty() ? nullptr : shift.data();
    a.out = strip.data();
    run_engine(a, options);
    // T_b = w * (S V), then out += S^T T_b: two register-blocked products on the stored
    // strip (engine.hpp), each output summed in strip order whatever the number of threads.
    const ConstMatrix<T> S{strip.data(), rows, m};
    run_gemm(S, false, V, t.data(), false, options);
    if (row_weights != nullptr)
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t c = 0; c < k; ++c) t[i * k + c] *= row_weights[r0 + i];
    run_gemm(S, true, ConstMatrix<T>{t.data(), rows, k}, out.data, true, options);
  }
}

}  // namespace

template <class T>
void triangular_solve_lower(const T* L, std::size_t lda, std::size_t n, T* X, std::size_t ldx,
                            std::size_t k, bool trans, const Options& options) {
  if (lda < std::max<std::size_t>(n, 1)) fail("lda: must be at least max(n, 1)");
  if (ldx < std::max<std::size_t>(n, 1)) fail("ldx: must be at least max(n, 1)");
  if (n == 0 || k == 0) return;
  if (L == nullptr || X == nullptr) fail("L, X: null data");
  checked_mul(lda, n, "L");
  checked_mul(ldx, k, "X");
  const Span solved = span_of(X, (k - 1) * ldx + n);
  const Span factor = span_of(L, (n - 1) * lda + n);
  if (solved.begin < factor.end && factor.begin < solved.end)
    fail("X: overlaps L (X is solved in place, L read throughout)");
  detail::TrsmArgs<T> a;
  a.L = L;
  a.lda = lda;
  a.n = n;
  a.X = X;
  a.ldx = ldx;
  a.k = k;
  a.trans = trans;
  a.n_threads = resolve_threads(options);
  // As for the operators: below ~2^18 multiply-adds one thread finishes first.
  if (double(n) * double(n) * double(k) < double(1 << 19)) a.n_threads = 1;
  const auto& engine = detail::active_engine();
  // The workspace (a packed chunk of L per thread, ~1 MiB) is kept per calling thread
  // and reused: solves come in loops (four per CG iteration), and an allocation of that
  // size is a fresh mapping each time. (A scratch timing showed no measurable gain at
  // 1000 rows; it is kept because it costs nothing and bounds page-fault churn.)
  thread_local std::unique_ptr<double[], AlignedFree> cache;
  thread_local std::size_t cache_doubles = 0;
  std::size_t elems;
  if constexpr (std::is_same_v<T, float>)
    elems = engine.trsm_workspace_f32(a);
  else
    elems = engine.trsm_workspace_f64(a);
  const std::size_t doubles = (checked_mul(elems, sizeof(T), "workspace") + 7) / 8;
  if (doubles > cache_doubles) {
    cache.reset();  // before allocating: the old and the new buffer are never both held
    cache_doubles = 0;
    cache = aligned_buffer<double>(doubles);  // if this throws, the cache stays empty
    cache_doubles = doubles;
  }
  a.workspace = reinterpret_cast<T*>(cache.get());
  if constexpr (std::is_same_v<T, float>)
    engine.trsm_f32(a);
  else
    engine.trsm_f64(a);
}

namespace {

// Both public entries: over K's rows 0..n-1 (rows null, n_used = n) or over the n_used rows
// that rows names.
template <class T>
void curvature_over(const T* K, std::size_t ldk, std::size_t n, std::size_t M,
                    const std::int64_t* rows, std::size_t n_used, const double* V, std::size_t k,
                    const double* w, const double* P, const double* z, double* out,
                    const Options& options) {
  if (ldk < std::max<std::size_t>(M, 1)) fail("ldk: must be at least max(M, 1)");
  const int threads = resolve_threads(options);
  if (M == 0 || k == 0) return;
  if (V == nullptr || out == nullptr) fail("V, out: null data");
  if (n_used > 0 && (K == nullptr || w == nullptr)) fail("K, w: null data");
  if (rows != nullptr || n_used != n) {
    if (n_used > 0 && rows == nullptr) fail("rows: null data");
    for (std::size_t i = 0; i < n_used; ++i)
      if (rows[i] < 0 || std::uint64_t(rows[i]) >= n) fail("rows: an index outside K's rows");
  }
  checked_mul(n, ldk, "K");
  const std::size_t mk = checked_mul(M, k, "V");
  if (n_used == 0) {
    std::fill(out, out + mk, 0.0);
    return;
  }
  const Span result = span_of(out, mk);
  check_disjoint(result, span_of(K, (n - 1) * ldk + M), "K");
  check_disjoint(result, span_of(w, n_used), "w");
  check_disjoint(result, span_of(P, checked_mul(n_used, k, "P")), "P");
  check_disjoint(result, span_of(P == nullptr ? nullptr : z, k), "z");
  check_disjoint(result, span_of(rows, rows == nullptr ? 0 : n_used), "rows");
  n = n_used;
  detail::CurvatureArgs<T> a;
  a.K = K;
  a.ldk = ldk;
  a.n = n;
  a.rows = rows;
  a.M = M;
  a.k = k;
  a.w = w;
  a.P = P;
  a.z = P == nullptr ? nullptr : z;
  a.out = out;
  // As for the operators: below ~2^18 multiply-adds one thread finishes first; and no
  // more threads than 8-row blocks (each thread's accumulator is k x M).
  a.n_threads = double(n) * double(M) * double(k) < double(1 << 18)
                    ? 1
                    : int(std::min<std::size_t>(std::size_t(threads), (n + 7) / 8));
  const auto& engine = detail::active_engine();
  std::size_t elems;
  if constexpr (std::is_same_v<T, float>)
    elems = engine.curvature_workspace_f32(a);
  else
    elems = engine.curvature_workspace_f64(a);
  // V transposed (k x M, each class's column contiguous, as the engine's vectors run
  // along M), then the engine's workspace, 64-byte aligned after it.
  const std::size_t vt = (mk + 7) / 8 * 8;
  if (elems > std::numeric_limits<std::size_t>::max() - vt) fail("workspace: size overflows");
  auto buffer = aligned_buffer<double>(vt + elems);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t c = 0; c < k; ++c) buffer[c * M + m] = V[m * k + c];
  a.VT = buffer.get();
  a.workspace = buffer.get() + vt;
  if constexpr (std::is_same_v<T, float>)
    engine.curvature_f32(a);
  else
    engine.curvature_f64(a);
}

}  // namespace

template <class T>
void curvature_product(const T* K, std::size_t ldk, std::size_t n, std::size_t M, const double* V,
                       std::size_t k, const double* w, const double* P, const double* z,
                       double* out, const Options& options) {
  curvature_over<T>(K, ldk, n, M, nullptr, n, V, k, w, P, z, out, options);
}

template <class T>
void curvature_product_rows(const T* K, std::size_t ldk, std::size_t n, std::size_t M,
                            const std::int64_t* rows, std::size_t n_rows, const double* V,
                            std::size_t k, const double* w, const double* P, const double* z,
                            double* out, const Options& options) {
  if (n_rows > 0 && rows == nullptr) fail("rows: null data");
  curvature_over<T>(K, ldk, n, M, rows, n_rows, V, k, w, P, z, out, options);
}

namespace {

const KernelInfo& row_of(KernelKind kind) {
  const auto index = static_cast<std::size_t>(kind);
  if (index >= kernel_count) fail("kernel: unknown kind");
  return kernel_table[index];
}

void check_domain(Domain domain, double value, const char* name) {
  switch (domain) {
    case Domain::unused:
      return;
    case Domain::positive:
      if (!(std::isfinite(value) && value > 0))
        fail(std::string(name) + ": must be a positive finite number, got " +
             std::to_string(value));
      return;
    case Domain::finite:
      if (!std::isfinite(value)) fail(std::string(name) + ": must be finite");
      return;
    case Domain::power:
      if (!(value >= 1 && value <= kMaxDegree))
        fail(std::string(name) + ": must be an integer in [1, " + std::to_string(kMaxDegree) +
             "], got " + std::to_string(int(value)));
      return;
  }
}

}  // namespace

void validate(const KernelSpec& spec) {
  const KernelInfo& row = row_of(spec.kind);
  check_domain(row.gamma, spec.gamma, "gamma");
  check_domain(row.coef0, spec.coef0, "coef0");
  check_domain(row.degree, spec.degree, "degree");
  check_domain(row.length_scale, spec.length_scale, "length_scale");
}

std::string to_string(KernelKind kind) {
  const auto index = static_cast<std::size_t>(kind);
  return index < kernel_count ? kernel_table[index].name : "unknown";
}

KernelKind kernel_kind_from_string(const std::string& name) {
  for (const KernelInfo& row : kernel_table)
    if (name == row.name) return row.kind;
  fail("kernel: unknown kind '" + name + "'");
}

template <class T>
void kernel_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                   Matrix<T> out, const Options& options) {
  check_operands(spec, X, Z);
  check_input(V, "V");
  if (V.rows != Z.rows)
    fail("V: has " + std::to_string(V.rows) + " rows, Z has " + std::to_string(Z.rows));
  check_output(out, X.rows, V.cols);
  check_disjoint(span_of(out), span_of(X), "X");
  check_disjoint(span_of(out), span_of(Z), "Z");
  check_disjoint(span_of(out), span_of(V), "V");
  matvec_into(spec, Epilogue{spec.kind}, X, Z, V, out.data, false, options);
}

template <class T>
void kernel_rmatvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> U,
                    Matrix<T> out, const Options& options) {
  check_operands(spec, X, Z);
  check_input(U, "U");
  if (U.rows != X.rows)
    fail("U: has " + std::to_string(U.rows) + " rows, X has " + std::to_string(X.rows));
  check_output(out, Z.rows, U.cols);
  check_disjoint(span_of(out), span_of(X), "X");
  check_disjoint(span_of(out), span_of(Z), "Z");
  check_disjoint(span_of(out), span_of(U), "U");
  // Every kernel here is symmetric, k(x, z) = k(z, x), so K(X,Z)^T = K(Z,X).
  matvec_into(spec, Epilogue{spec.kind}, Z, X, U, out.data, false, options);
}

template <class T>
void kernel_normal_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                          ConstMatrix<T> V, Matrix<T> out, const Options& options,
                          const T* row_weights) {
  check_operands(spec, X, Z);
  check_input(V, "V");
  if (V.rows != Z.rows)
    fail("V: has " + std::to_string(V.rows) + " rows, Z has " + std::to_string(Z.rows));
  check_output(out, Z.rows, V.cols);
  check_disjoint(span_of(out), span_of(X), "X");
  check_disjoint(span_of(out), span_of(Z), "Z");
  check_disjoint(span_of(out), span_of(V), "V");
  check_disjoint(span_of(out), span_of(row_weights, X.rows), "row_weights");
  // Signed weights are allowed (the logistic solvers' curvature); NaN or infinity would
  // reach every output in silence.
  if (row_weights != nullptr)
    for (std::size_t i = 0; i < X.rows; ++i)
      if (!std::isfinite(row_weights[i])) fail("row_weights: contains NaN or infinity");
  // One pass over X in blocks of rows: T_b = K(X_b, Z) V, then out += K(X_b, Z)^T T_b.
  // The block's kernel tiles are recomputed in the second product rather than stored, so
  // the extra memory is the block's T_b (block x k) and the engine's panels; the block is
  // large enough that both products keep every thread busy.
  const Epilogue epi = Epilogue{spec.kind};
  const std::size_t k = V.cols;
  // The strip needs at least one row panel per thread within its byte budget.
  if (X.cols >= kStripMinFeatures && kStripBytes / (Z.rows * sizeof(T)) >= kStripMinRows)
    return normal_matvec_strip(spec, epi, X, Z, V, out, options, row_weights);
  // A fixed block (not one scaled by the thread count) keeps the sums' order, and so the
  // result, the same on any number of threads.
  const std::size_t block = 4096;
  std::vector<T> t(std::min(block, X.rows) * k);
  for (std::size_t e = 0; e < Z.rows * k; ++e) out.data[e] = T(0);
  for (std::size_t r0 = 0; r0 < X.rows; r0 += block) {
    const std::size_t rows = std::min(block, X.rows - r0);
    const ConstMatrix<T> Xb{X.data + r0 * X.cols, rows, X.cols};
    matvec_into(spec, epi, Xb, Z, V, t.data(), false, options);
    if (row_weights != nullptr)
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t c = 0; c < k; ++c) t[i * k + c] *= row_weights[r0 + i];
    matvec_into(spec, epi, Z, Xb, ConstMatrix<T>{t.data(), rows, k}, out.data, true, options);
  }
}

namespace {

// K(X, Z) stored into out: of T, or (T = float, O = double) widened as it is stored.
template <class T, class O>
void store_block(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, Matrix<O> out,
                 const Options& options) {
  check_operands(spec, X, Z);
  check_output(out, X.rows, Z.rows, true);
  check_disjoint(span_of(out), span_of(X), "X");
  check_disjoint(span_of(out), span_of(Z), "Z");
  std::vector<T> shift;
  const Epilogue epi = prepare_gaussian(Epilogue{spec.kind}, spec, X, Z, shift);
  EngineArgs<T> a = make_args(spec, epi, X, Z);
  a.shift = shift.empty() ? nullptr : shift.data();
  a.ldo = out.ld == 0 ? Z.rows : out.ld;
  if constexpr (std::is_same_v<T, O>)
    a.out = out.data;
  else
    a.out_wide = out.data;
  run_engine(a, options);
}

}  // namespace

template <class T>
void kernel_block(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, Matrix<T> out,
                  const Options& options) {
  store_block(spec, X, Z, out, options);
}

void kernel_block_widened(const KernelSpec& spec, ConstMatrix<float> X, ConstMatrix<float> Z,
                          Matrix<double> out, const Options& options) {
  store_block(spec, X, Z, out, options);
}

template <class T>
void kernel_diagonal(const KernelSpec& spec, ConstMatrix<T> X, double* out) {
  validate_in_precision<T>(spec);
  check_input(X, "X");
  if (out == nullptr) fail("out: null data");
  check_disjoint(span_of(out, X.rows), span_of(X), "X");
  detail::visit_kind(spec.kind, [&](auto kind) {
    constexpr KernelKind K = decltype(kind)::value;
    using F = scalar::Formula<K>;
    const scalar::Params<double> p{spec.gamma, spec.coef0, spec.length_scale, spec.degree};
    for (std::size_t i = 0; i < X.rows; ++i) {
      const T* x = X.data + i * X.cols;
      double sq = 0;
      for (std::size_t t = 0; t < X.cols; ++t) sq += double(x[t]) * double(x[t]);
      // A point's distance to itself is 0; its inner product with itself, |x|^2.
      const double s = kernel_row<K>.metric == Metric::dot ? sq : 0.0;
      if constexpr (kernel_row<K>.needs_norms)
        out[i] = F::value(s, std::sqrt(sq), std::sqrt(sq), p);
      else
        out[i] = F::value(s, p);
    }
  });
}

namespace {

template <class T>
scalar::Params<T> scalar_params(const KernelSpec& spec) {
  return {T(spec.gamma), T(spec.coef0), T(spec.length_scale), spec.degree};
}

// Gradients summed pair by pair, from the slope dk/ds of the formula: grad_x k =
// 2 dk/ds (x - z) for the squared distance, dk/ds sign(x - z) for the L1 distance (not a
// product of row and column factors). For the kernels whose slope is singular at x == z,
// and for the fused ones when data sit far from the mean of Z (see
// gaussian_needs_subtraction), where the centred expansion would cancel two large terms.
// A direct loop, parallel over rows of X; the zero subgradient at x == z.
template <KernelKind K, class T>
void direct_grad(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                 Matrix<T> out, const Options& options) {
  constexpr Metric metric = kernel_row<K>.metric;
  static_assert(metric != Metric::dot, "pairwise gradients are written for distances");
  const std::size_t n = X.rows, m = Z.rows, d = X.cols, k = V.cols;
  const scalar::Params<T> p = scalar_params<T>(spec);
  const int threads = resolve_threads(options);
  Poller poller{&options.interrupt, std::chrono::steady_clock::now()};
  int stop = 0;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::size_t i = 0; i < n; ++i) {
    if (__atomic_load_n(&stop, __ATOMIC_RELAXED)) continue;
#if defined(_OPENMP)
    const bool poller_thread = omp_get_thread_num() == 0;
#else
    const bool poller_thread = true;
#endif
    if (poller_thread && options.interrupt && Poller::call(&poller))
      __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    const T* x = X.data + i * d;
    T* o = out.data + i * k * d;
    for (std::size_t e = 0; e < k * d; ++e) o[e] = T(0);
    for (std::size_t j = 0; j < m; ++j) {
      const T* z = Z.data + j * d;
      T dist = 0;
      for (std::size_t t = 0; t < d; ++t) {
        const T diff = x[t] - z[t];
        dist += metric == Metric::l1 ? std::abs(diff) : diff * diff;
      }
      if (dist == T(0)) continue;
      // Per unit of (x - z) (squared distance) or of sign(x - z) (L1).
      const T slope = scalar::Formula<K>::slope(dist, p);
      const T scale = metric == Metric::l1 ? slope : T(2) * slope;
      for (std::size_t c = 0; c < k; ++c) {
        const T w = scale * V.data[j * k + c];
        for (std::size_t t = 0; t < d; ++t) {
          const T diff = x[t] - z[t];
          const T dir = metric == Metric::l1 ? (diff > 0 ? T(1) : (diff < 0 ? T(-1) : T(0))) : diff;
          o[c * d + t] += w * dir;
        }
      }
    }
  }
  if (stop) throw interrupted();
}

// d/dx <x, z> = z: the same row sum(V[:, c] * Z) for every x.
template <class T>
void constant_grad(ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V, Matrix<T> out) {
  const std::size_t n = X.rows, m = Z.rows, d = X.cols, k = V.cols;
  std::vector<T> g(k * d, T(0));
  for (std::size_t j = 0; j < m; ++j)
    for (std::size_t c = 0; c < k; ++c)
      for (std::size_t t = 0; t < d; ++t) g[c * d + t] += V.data[j * k + c] * Z.data[j * d + t];
  for (std::size_t i = 0; i < n; ++i) std::copy(g.begin(), g.end(), out.data + i * k * d);
}

// One engine call with the kernel's slope as the epilogue. Radial kernels k = f(|x-z|^2):
// grad_x = 2 f'(|x-z|^2) (x - z), so
//   G[i,c,:] = 2 ( (x_i - s) sum_j f'_ij V_jc  -  sum_j f'_ij V_jc (z_j - s) ),
// one engine call on the right-hand sides W = [V | V (x) (Z - s)] (s: the mean of Z, to
// keep the difference well conditioned). Dot-product kernels k = h(<x,z>): grad_x =
// h'(<x,z>) z, so only the second block (with s = 0) and no factor -2.
template <KernelKind K, class T>
void fused_grad(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                Matrix<T> out, const Options& options) {
  constexpr bool radial = kernel_row<K>.metric == Metric::sqdist;
  static_assert(radial || kernel_row<K>.metric == Metric::dot, "no fused gradient for L1");
  const std::size_t n = X.rows, m = Z.rows, d = X.cols, k = V.cols;
  const std::vector<T> s = radial ? column_mean(Z) : std::vector<T>(d, T(0));
  const std::size_t first = radial ? k : 0;
  const std::size_t width = first + checked_mul(k, d, "V");
  std::vector<T> W(checked_mul(m, width, "V"));
  for (std::size_t j = 0; j < m; ++j) {
    T* w = W.data() + j * width;
    for (std::size_t c = 0; c < k; ++c) {
      const T v = V.data[j * k + c];
      if (radial) w[c] = v;
      for (std::size_t t = 0; t < d; ++t) w[first + c * d + t] = v * (Z.data[j * d + t] - s[t]);
    }
  }
  std::vector<T> R(checked_mul(n, width, "out"));
  matvec_into(spec, Epilogue{K, true}, X, Z, ConstMatrix<T>{W.data(), m, width}, R.data(), false,
              options);
  for (std::size_t i = 0; i < n; ++i) {
    const T* r = R.data() + i * width;
    T* o = out.data + i * k * d;
    for (std::size_t c = 0; c < k; ++c)
      for (std::size_t t = 0; t < d; ++t)
        o[c * d + t] = radial ? T(2) * ((X.data[i * d + t] - s[t]) * r[c] - r[first + c * d + t])
                              : r[first + c * d + t];
  }
}

// The table's method for the kernel's gradient.
template <KernelKind K, class T>
void grad_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                 Matrix<T> out, const Options& options) {
  constexpr Gradient method = kernel_row<K>.gradient;
  if constexpr (method == Gradient::none) {
    fail("kernel: the gradient of " + to_string(K) + " is not implemented");
  } else if constexpr (method == Gradient::constant) {
    constant_grad(X, Z, V, out);
  } else if constexpr (method == Gradient::direct) {
    direct_grad<K>(spec, X, Z, V, out, options);
  } else {
    if constexpr (kernel_row<K>.metric == Metric::sqdist) {
      const double rate = scalar::Formula<K>::sq_rate(scalar_params<double>(spec));
      if (gaussian_needs_subtraction(X, Z, column_mean(Z), rate))
        return direct_grad<K>(spec, X, Z, V, out, options);
    }
    fused_grad<K>(spec, X, Z, V, out, options);
  }
}

}  // namespace

template <class T>
void kernel_grad_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                        ConstMatrix<T> V, Matrix<T> out, const Options& options) {
  check_operands(spec, X, Z);
  check_input(V, "V");
  if (V.rows != Z.rows)
    fail("V: has " + std::to_string(V.rows) + " rows, Z has " + std::to_string(Z.rows));
  check_output(out, X.rows, checked_mul(V.cols, X.cols, "out"));
  check_disjoint(span_of(out), span_of(X), "X");
  check_disjoint(span_of(out), span_of(Z), "Z");
  check_disjoint(span_of(out), span_of(V), "V");
  resolve_threads(options);  // rejects n_threads < 0 on every path
  detail::visit_kind(spec.kind, [&](auto kind) {
    grad_matvec<decltype(kind)::value>(spec, X, Z, V, out, options);
  });
}

bool cuda_compiled() {
#if defined(GRAMFREE_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

#define GRAMFREE_INSTANTIATE(T)                                                                \
  template void kernel_matvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,            \
                                 ConstMatrix<T>, Matrix<T>, const Options&);                   \
  template void kernel_rmatvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,           \
                                  ConstMatrix<T>, Matrix<T>, const Options&);                  \
  template void kernel_normal_matvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,     \
                                        ConstMatrix<T>, Matrix<T>, const Options&, const T*);  \
  template void kernel_block<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>, Matrix<T>,  \
                                const Options&);                                               \
  template void kernel_diagonal<T>(const KernelSpec&, ConstMatrix<T>, double*);                \
  template void kernel_grad_matvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,       \
                                      ConstMatrix<T>, Matrix<T>, const Options&);              \
  template void triangular_solve_lower<T>(const T*, std::size_t, std::size_t, T*, std::size_t, \
                                          std::size_t, bool, const Options&);                  \
  template void curvature_product<T>(const T*, std::size_t, std::size_t, std::size_t,          \
                                     const double*, std::size_t, const double*, const double*, \
                                     const double*, double*, const Options&);                  \
  template void curvature_product_rows<T>(const T*, std::size_t, std::size_t, std::size_t,     \
                                          const std::int64_t*, std::size_t, const double*,     \
                                          std::size_t, const double*, const double*,           \
                                          const double*, double*, const Options&);
GRAMFREE_INSTANTIATE(float)
GRAMFREE_INSTANTIATE(double)
#undef GRAMFREE_INSTANTIATE

}  // namespace gramfree

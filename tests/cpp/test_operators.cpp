// Tests of the gramfree C++ core against an independent, naive double-precision reference.
//
// The reference below is written from the formulas in gramfree.hpp only: direct loops over
// i and j, libm exp/sqrt/acos/pow, no tiling, no expansion of ||x - z||^2, no SIMD.
//
// Error measure. Every output entry is compared to the reference relative to the natural
// scale of the quantity it is a sum of, i.e. componentwise:
//   kernel_block          |out_ij - K_ij| / M_ij
//   kernel_matvec         |out_ic - (K V)_ic| / (M |V|)_ic
//   kernel_rmatvec        |out_jc - (K^T U)_jc| / (M^T |U|)_jc
//   kernel_normal_matvec  |out_jc - (K^T K V)_jc| / (M^T M |V|)_jc
// where M_ij is the magnitude of the kernel entry's terms, i.e. what rounding errors are
// relative to. Radial kernels, k = f(a) e^{-a} with a = gamma ||x-z||^2, gamma ||x-z||_1,
// gamma ||x-z||, sqrt(3) ||x-z|| / length_scale, ...: M = |K_ij| (1 + a), since a relative
// error eps in the distance is an error a eps in e^{-a} (the condition number of exp; no
// implementation in precision T can do better). Polynomial: (gamma sum_t |x_t z_t| +
// |coef0|)^degree; linear: sum_t |x_t z_t|; arc-cosine: ||x|| ||z|| (inner products can
// cancel). Scales are floored at numeric_limits<T>::min() / epsilon (below that not even the
// inputs are relatively exact). Tolerances: 1e-12 (double), 1e-5 (float).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <limits>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "gramfree/gramfree.hpp"
#include "simd_levels.hpp"
#include "kernels/engine_api.hpp"

namespace gf = gramfree;
using gf::KernelKind;
using gf::KernelSpec;
using gf::SimdLevel;
using std::size_t;

namespace {

// ---------------------------------------------------------------------------------------
// Helpers: data, views, SIMD levels.

// Every kernel of the table (gramfree/kernel_table.hpp).
constexpr KernelKind kAllKinds[] = {
#define GF_KIND(id, ...) KernelKind::id,
    GRAMFREE_KERNEL_TABLE(GF_KIND)
#undef GF_KIND
};

const gf::KernelInfo& row_of(KernelKind kind) { return gf::kernel_table[size_t(kind)]; }
bool has_gradient(KernelKind kind) { return row_of(kind).gradient != gf::Gradient::none; }
bool is_radial(KernelKind kind) { return row_of(kind).metric != gf::Metric::dot; }

// A value well inside each domain, and values outside it.
double inside(gf::Domain domain) {
  switch (domain) {
    case gf::Domain::positive:
      return 0.7;
    case gf::Domain::finite:
      return -0.5;
    case gf::Domain::power:
      return 3;
    case gf::Domain::unused:
      break;
  }
  return 1;
}
std::vector<double> outside(gf::Domain domain) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (domain) {
    case gf::Domain::positive:
      return {-1.0, 0.0, nan, inf, -inf};
    case gf::Domain::finite:
      return {nan, inf, -inf};
    case gf::Domain::power:
      return {0, -1, gf::kMaxDegree + 1};
    case gf::Domain::unused:
      break;
  }
  return {};
}

constexpr size_t kSizes[] = {1, 7, 33, 130};
constexpr size_t kDims[] = {1, 5, 17};

// splitmix64: a fixed generator, so that the data are the same on every platform.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * double(next() >> 11) * 0x1p-53; }
};

std::vector<double> random_matrix(size_t rows, size_t cols, std::uint64_t seed, double lo = -1.0,
                                  double hi = 1.0) {
  Rng rng(seed);
  std::vector<double> a(rows * cols);
  for (double& v : a) v = rng.uniform(lo, hi);
  return a;
}

template <class T>
std::vector<T> cast(const std::vector<double>& a) {
  return std::vector<T>(a.begin(), a.end());
}
template <class T>
std::vector<double> widen(const std::vector<T>& a) {
  return std::vector<double>(a.begin(), a.end());
}

template <class T>
gf::ConstMatrix<T> cview(const std::vector<T>& a, size_t rows, size_t cols) {
  return {a.data(), rows, cols};
}
template <class T>
gf::Matrix<T> view(std::vector<T>& a, size_t rows, size_t cols) {
  return {a.data(), rows, cols};
}

template <class T>
constexpr double tol() {
  return std::is_same_v<T, double> ? 1e-12 : 1e-5;
}
template <class T>
std::string type_name() {
  return std::is_same_v<T, double> ? "double" : "float";
}

using gramfree_test::SimdScope;
using gramfree_test::supported_levels;

std::string describe(const KernelSpec& s) {
  std::ostringstream o;
  o << gf::to_string(s.kind) << "(gamma=" << s.gamma << " coef0=" << s.coef0
    << " degree=" << s.degree << " length_scale=" << s.length_scale << ")";
  return o.str();
}

// Parameter sets per kernel, covering small and large kernel values.
std::vector<KernelSpec> specs_for(KernelKind kind, size_t d) {
  const double dd = double(d);
  auto spec = [kind](double gamma, double coef0, int degree, double length_scale) {
    KernelSpec s;
    s.kind = kind;
    s.gamma = gamma;
    s.coef0 = coef0;
    s.degree = degree;
    s.length_scale = length_scale;
    return s;
  };
  switch (kind) {
    case KernelKind::gaussian:
      return {spec(0.5 / dd, 1, 3, 1), spec(3.0, 1, 3, 1)};
    case KernelKind::laplacian_l1:
      return {spec(0.5 / dd, 1, 3, 1), spec(2.0, 1, 3, 1)};
    case KernelKind::laplacian_l2:
      return {spec(0.5, 1, 3, 1), spec(3.0, 1, 3, 1)};
    case KernelKind::matern12:
    case KernelKind::matern32:
    case KernelKind::matern52:
      return {spec(1, 1, 3, 0.8), spec(1, 1, 3, 3.0)};
    case KernelKind::polynomial:
      return {spec(1.0 / dd, 1.0, 3, 1), spec(0.7, -0.25, 2, 1), spec(1.0 / dd, 0.5, 1, 1),
              spec(0.5 / dd, 1.0, 9, 1)};
    case KernelKind::linear:
    case KernelKind::arccos1:
      return {spec(1, 1, 3, 1)};
    default:
      break;
  }
  // A kernel new to the table: one spec from its domains.
  for (const gf::KernelInfo& row : gf::kernel_table)
    if (row.kind == kind)
      return {spec(inside(row.gamma), inside(row.coef0), int(inside(row.degree)),
                   inside(row.length_scale))};
  return {};
}

// ---------------------------------------------------------------------------------------
// The naive reference (double precision, straight from the formulas in gramfree.hpp).

double dot(const double* x, const double* z, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += x[t] * z[t];
  return s;
}
double abs_dot(const double* x, const double* z, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += std::abs(x[t] * z[t]);
  return s;
}
double sqdist(const double* x, const double* z, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += (x[t] - z[t]) * (x[t] - z[t]);
  return s;
}
double l1dist(const double* x, const double* z, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; ++t) s += std::abs(x[t] - z[t]);
  return s;
}

double ref_kernel(const KernelSpec& s, const double* x, const double* z, size_t d) {
  switch (s.kind) {
    case KernelKind::gaussian:
      return std::exp(-s.gamma * sqdist(x, z, d));
    case KernelKind::laplacian_l1:
      return std::exp(-s.gamma * l1dist(x, z, d));
    case KernelKind::laplacian_l2:
      return std::exp(-s.gamma * std::sqrt(sqdist(x, z, d)));
    case KernelKind::matern12:
      return std::exp(-std::sqrt(sqdist(x, z, d)) / s.length_scale);
    case KernelKind::matern32: {
      const double a = std::sqrt(3.0) * std::sqrt(sqdist(x, z, d)) / s.length_scale;
      return (1 + a) * std::exp(-a);
    }
    case KernelKind::matern52: {
      const double r = std::sqrt(sqdist(x, z, d)) / s.length_scale;
      return (1 + std::sqrt(5.0) * r + 5 * r * r / 3) * std::exp(-std::sqrt(5.0) * r);
    }
    case KernelKind::polynomial:
      return std::pow(s.gamma * dot(x, z, d) + s.coef0, s.degree);
    case KernelKind::linear:
      return dot(x, z, d);
    case KernelKind::arccos1: {
      const double nx = std::sqrt(dot(x, x, d)), nz = std::sqrt(dot(z, z, d));
      if (nx == 0 || nz == 0) return 0;
      const double c = std::clamp(dot(x, z, d) / (nx * nz), -1.0, 1.0);
      const double t = std::acos(c);
      return nx * nz * (std::sin(t) + (std::numbers::pi - t) * std::cos(t)) / std::numbers::pi;
    }
  }
  return std::nan("");
}

// The argument a >= 0 of the exponential of a radial kernel (0 for the others).
double exp_argument(const KernelSpec& s, const double* x, const double* z, size_t d) {
  switch (s.kind) {
    case KernelKind::gaussian:
      return s.gamma * sqdist(x, z, d);
    case KernelKind::laplacian_l1:
      return s.gamma * l1dist(x, z, d);
    case KernelKind::laplacian_l2:
      return s.gamma * std::sqrt(sqdist(x, z, d));
    case KernelKind::matern12:
      return std::sqrt(sqdist(x, z, d)) / s.length_scale;
    case KernelKind::matern32:
      return std::sqrt(3 * sqdist(x, z, d)) / s.length_scale;
    case KernelKind::matern52:
      return std::sqrt(5 * sqdist(x, z, d)) / s.length_scale;
    default:
      return 0;
  }
}

// The magnitude M_ij described at the top of the file.
double ref_magnitude(const KernelSpec& s, const double* x, const double* z, size_t d, double k) {
  switch (s.kind) {
    case KernelKind::polynomial:
      return std::pow(s.gamma * abs_dot(x, z, d) + std::abs(s.coef0), s.degree);
    case KernelKind::linear:
      return abs_dot(x, z, d);
    case KernelKind::arccos1:
      return std::sqrt(dot(x, x, d)) * std::sqrt(dot(z, z, d));
    default:
      return std::abs(k) * (1 + exp_argument(s, x, z, d));
  }
}

// Gradient of k(x, z) in x, component l, and the magnitude of its terms. At x == z the
// non-differentiable kernels use the zero subgradient (as documented).
void ref_grad(const KernelSpec& s, const double* x, const double* z, size_t d, size_t l, double& g,
              double& mag) {
  const double diff = x[l] - z[l];
  const double scale = std::abs(x[l]) + std::abs(z[l]);
  const double k = ref_kernel(s, x, z, d);
  const double r = std::sqrt(sqdist(x, z, d));
  double h = 0;  // radial kernels: grad = h (x - z)
  switch (s.kind) {
    case KernelKind::gaussian:
      h = -2 * s.gamma * k;
      break;
    case KernelKind::laplacian_l1:
      g = -s.gamma * k * (diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0));
      mag = s.gamma * k * (1 + exp_argument(s, x, z, d));
      return;
    case KernelKind::laplacian_l2:
      h = r > 0 ? -s.gamma * k / r : 0.0;
      break;
    case KernelKind::matern12: {
      const double ls = s.length_scale;
      h = r > 0 ? -std::exp(-r / ls) / (ls * r) : 0.0;
      break;
    }
    case KernelKind::matern32: {
      const double ls = s.length_scale, a = std::sqrt(3.0) * r / ls;
      h = -3 * std::exp(-a) / (ls * ls);
      break;
    }
    case KernelKind::matern52: {
      const double ls = s.length_scale, a = std::sqrt(5.0) * r / ls;
      h = -(5.0 / 3.0) * (1 + a) * std::exp(-a) / (ls * ls);
      break;
    }
    case KernelKind::polynomial: {
      const double base = s.gamma * dot(x, z, d) + s.coef0;
      const double base_mag = s.gamma * abs_dot(x, z, d) + std::abs(s.coef0);
      g = s.degree * s.gamma * std::pow(base, s.degree - 1) * z[l];
      mag = s.degree * s.gamma * std::pow(base_mag, s.degree - 1) * std::abs(z[l]);
      return;
    }
    case KernelKind::linear:
      g = z[l];
      mag = std::abs(z[l]);
      return;
    case KernelKind::arccos1:
      g = mag = std::nan("");
      return;
  }
  g = h * diff;
  mag = std::abs(h) * scale * (1 + exp_argument(s, x, z, d));
}

// K (n x m) and M (n x m) of the reference for one problem.
struct RefKernel {
  size_t n, m, d;
  std::vector<double> K, M;
};

RefKernel reference_kernel(const KernelSpec& s, const std::vector<double>& X,
                           const std::vector<double>& Z, size_t n, size_t m, size_t d) {
  RefKernel r{n, m, d, std::vector<double>(n * m), std::vector<double>(n * m)};
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < m; ++j) {
      const double k = ref_kernel(s, &X[i * d], &Z[j * d], d);
      r.K[i * m + j] = k;
      r.M[i * m + j] = ref_magnitude(s, &X[i * d], &Z[j * d], d, k);
    }
  return r;
}

// A reference result: values and the scale each entry is compared against.
struct RefOut {
  std::vector<double> value, scale;
};

// C = op(A) B with op = identity or transpose; A is r x c (row-major), B has k columns.
// Also |op(A')| |B| for the scale, where A' is the magnitude matrix.
RefOut ref_product(const std::vector<double>& A, const std::vector<double>& Amag, size_t r,
                   size_t c, bool transpose, const std::vector<double>& B,
                   const std::vector<double>& Bscale, size_t k) {
  const size_t out_rows = transpose ? c : r, inner = transpose ? r : c;
  RefOut o{std::vector<double>(out_rows * k, 0.0), std::vector<double>(out_rows * k, 0.0)};
  for (size_t i = 0; i < out_rows; ++i)
    for (size_t q = 0; q < inner; ++q) {
      const size_t e = transpose ? q * c + i : i * c + q;
      for (size_t col = 0; col < k; ++col) {
        o.value[i * k + col] += A[e] * B[q * k + col];
        o.scale[i * k + col] += Amag[e] * Bscale[q * k + col];
      }
    }
  return o;
}

std::vector<double> abs_of(const std::vector<double>& a) {
  std::vector<double> r(a.size());
  for (size_t e = 0; e < a.size(); ++e) r[e] = std::abs(a[e]);
  return r;
}

RefOut ref_matvec(const RefKernel& rk, const std::vector<double>& V, size_t k) {
  return ref_product(rk.K, rk.M, rk.n, rk.m, false, V, abs_of(V), k);
}
RefOut ref_rmatvec(const RefKernel& rk, const std::vector<double>& U, size_t k) {
  return ref_product(rk.K, rk.M, rk.n, rk.m, true, U, abs_of(U), k);
}
RefOut ref_normal(const RefKernel& rk, const std::vector<double>& V, size_t k) {
  const RefOut t = ref_matvec(rk, V, k);
  return ref_product(rk.K, rk.M, rk.n, rk.m, true, t.value, t.scale, k);
}
RefOut ref_block(const RefKernel& rk) { return {rk.K, rk.M}; }

RefOut ref_grad_matvec(const KernelSpec& s, const std::vector<double>& X,
                       const std::vector<double>& Z, const std::vector<double>& V, size_t n,
                       size_t m, size_t d, size_t k) {
  RefOut o{std::vector<double>(n * k * d, 0.0), std::vector<double>(n * k * d, 0.0)};
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < m; ++j)
      for (size_t l = 0; l < d; ++l) {
        double g, mag;
        ref_grad(s, &X[i * d], &Z[j * d], d, l, g, mag);
        for (size_t c = 0; c < k; ++c) {
          o.value[i * k * d + c * d + l] += g * V[j * k + c];
          o.scale[i * k * d + c * d + l] += mag * std::abs(V[j * k + c]);
        }
      }
  return o;
}

// Largest componentwise error of got against want (see the top of the file); +inf when
// got holds a NaN or an infinity the reference does not have.
template <class T>
double max_error(const std::vector<T>& got, const std::vector<double>& want,
                 const std::vector<double>& scale) {
  REQUIRE(got.size() == want.size());
  const double floor = double(std::numeric_limits<T>::min()) / std::numeric_limits<T>::epsilon();
  double worst = 0;
  for (size_t e = 0; e < got.size(); ++e) {
    const double err = std::abs(double(got[e]) - want[e]) / std::max(scale[e], floor);
    if (!(err <= worst)) worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
  }
  return worst;
}

// Error of got against other (same type), relative to the reference scale.
template <class T>
double max_difference(const std::vector<T>& got, const std::vector<T>& other,
                      const std::vector<double>& scale) {
  return max_error(got, widen(other), scale);
}

// ---------------------------------------------------------------------------------------
// One problem: inputs in T, the same inputs widened to double for the reference.

enum class Op { matvec, rmatvec, normal, block, grad };
constexpr Op kValueOps[] = {Op::matvec, Op::rmatvec, Op::normal, Op::block};

std::string op_name(Op op) {
  switch (op) {
    case Op::matvec:
      return "kernel_matvec";
    case Op::rmatvec:
      return "kernel_rmatvec";
    case Op::normal:
      return "kernel_normal_matvec";
    case Op::block:
      return "kernel_block";
    case Op::grad:
      return "kernel_grad_matvec";
  }
  return "?";
}

template <class T>
struct Problem {
  size_t n, m, d, k;
  std::vector<T> X, Z, V, U;
  std::vector<double> Xd, Zd, Vd, Ud;  // the T values, exactly, in double

  Problem(size_t n_, size_t m_, size_t d_, size_t k_, std::uint64_t seed, double lo = -1,
          double hi = 1)
      : n(n_), m(m_), d(d_), k(k_) {
    X = cast<T>(random_matrix(n, d, seed * 4 + 0, lo, hi));
    Z = cast<T>(random_matrix(m, d, seed * 4 + 1, lo, hi));
    V = cast<T>(random_matrix(m, k, seed * 4 + 2));
    U = cast<T>(random_matrix(n, k, seed * 4 + 3));
    widen_all();
  }
  void widen_all() { Xd = widen(X), Zd = widen(Z), Vd = widen(V), Ud = widen(U); }

  size_t out_rows(Op op) const {
    return op == Op::matvec || op == Op::block || op == Op::grad ? n : m;
  }
  size_t out_cols(Op op) const { return op == Op::block ? m : (op == Op::grad ? k * d : k); }

  std::vector<T> run(Op op, const KernelSpec& s, const gf::Options& o = {}) const {
    std::vector<T> out(out_rows(op) * out_cols(op), std::numeric_limits<T>::quiet_NaN());
    const auto x = cview(X, n, d), z = cview(Z, m, d);
    const auto res = view(out, out_rows(op), out_cols(op));
    switch (op) {
      case Op::matvec:
        gf::kernel_matvec<T>(s, x, z, cview(V, m, k), res, o);
        break;
      case Op::rmatvec:
        gf::kernel_rmatvec<T>(s, x, z, cview(U, n, k), res, o);
        break;
      case Op::normal:
        gf::kernel_normal_matvec<T>(s, x, z, cview(V, m, k), res, o);
        break;
      case Op::block:
        gf::kernel_block<T>(s, x, z, res, o);
        break;
      case Op::grad:
        gf::kernel_grad_matvec<T>(s, x, z, cview(V, m, k), res, o);
        break;
    }
    return out;
  }

  RefOut reference(Op op, const KernelSpec& s, const RefKernel& rk) const {
    switch (op) {
      case Op::matvec:
        return ref_matvec(rk, Vd, k);
      case Op::rmatvec:
        return ref_rmatvec(rk, Ud, k);
      case Op::normal:
        return ref_normal(rk, Vd, k);
      case Op::block:
        return ref_block(rk);
      case Op::grad:
        return ref_grad_matvec(s, Xd, Zd, Vd, n, m, d, k);
    }
    return {};
  }

  std::string describe() const {
    std::ostringstream o;
    o << type_name<T>() << " n=" << n << " m=" << m << " d=" << d << " k=" << k;
    return o.str();
  }
};

// Runs the operators of `ops` on p at every supported SIMD level and checks them against
// the reference. Returns the largest error seen.
template <class T>
double check_problem(const Problem<T>& p, const KernelSpec& spec, std::initializer_list<Op> ops,
                     double tolerance = tol<T>()) {
  const RefKernel rk = reference_kernel(spec, p.Xd, p.Zd, p.n, p.m, p.d);
  double worst = 0;
  for (Op op : ops) {
    const RefOut want = p.reference(op, spec, rk);
    for (SimdLevel level : supported_levels()) {
      SimdScope scope(level);
      const double err = max_error(p.run(op, spec), want.value, want.scale);
      INFO(op_name(op), " ", describe(spec), " ", p.describe(), " simd=", gf::to_string(level));
      CHECK(err <= tolerance);
      worst = std::max(worst, err);
    }
  }
  return worst;
}

template <class T>
void check_against_reference(KernelKind kind) {
  double worst = 0;
  std::uint64_t seed = 1;
  for (size_t d : kDims)
    for (const KernelSpec& spec : specs_for(kind, d))
      for (size_t n : kSizes)
        for (size_t m : kSizes)
          for (size_t k : {size_t(1), size_t(3)}) {
            const Problem<T> p(n, m, d, k, seed++);
            worst = std::max(
                worst, check_problem(p, spec, {Op::matvec, Op::rmatvec, Op::normal, Op::block}));
          }
  MESSAGE(gf::to_string(kind), " ", type_name<T>(), ": largest error ", worst, " (tolerance ",
          tol<T>(), ")");
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Values against the reference: every kernel, both types, awkward sizes, every SIMD level.

#define GF_REFERENCE_CASE(KIND, ...)                         \
  TEST_CASE_TEMPLATE("reference " #KIND, T, float, double) { \
    check_against_reference<T>(KernelKind::KIND);            \
  }
GRAMFREE_KERNEL_TABLE(GF_REFERENCE_CASE)
#undef GF_REFERENCE_CASE

TEST_CASE_TEMPLATE("reference kernel_grad_matvec", T, float, double) {
  std::uint64_t seed = 1000;
  for (KernelKind kind : kAllKinds) {
    if (!has_gradient(kind)) continue;
    double worst = 0;
    for (size_t d : kDims)
      for (const KernelSpec& spec : specs_for(kind, d))
        for (size_t n : {size_t(1), size_t(7), size_t(33)})
          for (size_t m : kSizes) {
            const Problem<T> p(n, m, d, 2, seed++);
            worst = std::max(worst, check_problem(p, spec, {Op::grad}));
          }
    MESSAGE("grad ", gf::to_string(kind), " ", type_name<T>(), ": largest error ", worst);
  }
}

TEST_CASE_TEMPLATE("reference large d and k: several chunks of Z", T, float, double) {
  // d = 300 with k = 7 makes the engine's packed chunk of Z smaller than m, so the loop
  // over chunks (and the row panels within each) is exercised.
  for (KernelKind kind : kAllKinds)
    for (const KernelSpec& spec : specs_for(kind, 300)) {
      const Problem<T> p(50, 421, 300, 7, 77);
      check_problem(p, spec, {Op::matvec, Op::rmatvec, Op::normal, Op::block});
    }
}

TEST_CASE_TEMPLATE("reference self kernel: Z == X", T, float, double) {
  // Exact zero distances: radial kernels must give 1 on the diagonal, the subgradient 0,
  // and the arc-cosine kernel (whose angle is then 0) must stay accurate; with d = 1 every
  // pair is parallel or antiparallel.
  for (size_t d : kDims)
    for (size_t n : {size_t(7), size_t(33)}) {
      Problem<T> p(n, n, d, 2, 500 + n + d);
      p.Z = p.X;
      p.widen_all();
      for (KernelKind kind : kAllKinds)
        for (const KernelSpec& spec : specs_for(kind, d)) {
          check_problem(p, spec, {Op::matvec, Op::rmatvec, Op::normal, Op::block});
          if (has_gradient(kind)) check_problem(p, spec, {Op::grad});
          if (!is_radial(kind)) continue;
          const std::vector<T> K = p.run(Op::block, spec);
          for (size_t i = 0; i < n; ++i) {
            INFO(describe(spec), " ", p.describe(), " i=", i);
            CHECK(double(K[i * n + i]) == doctest::Approx(1.0).epsilon(tol<T>()));
          }
        }
    }
}

TEST_CASE_TEMPLATE("reference data far from the origin", T, float, double) {
  // Points at 1000 + U(-1, 1): the distances are O(1) while the norms are O(1e3), so a
  // kernel that expanded ||x - z||^2 without centring would lose every digit.
  for (size_t d : kDims)
    for (KernelKind kind : kAllKinds) {
      if (!is_radial(kind)) continue;
      for (const KernelSpec& spec : specs_for(kind, d)) {
        const Problem<T> p(33, 130, d, 2, 900 + d, 999.0, 1001.0);
        check_problem(p, spec, {Op::matvec, Op::rmatvec, Op::normal, Op::block});
      }
    }
}

TEST_CASE_TEMPLATE("reference zero rows", T, float, double) {
  // Zero vectors: the arc-cosine kernel is 0 there (not NaN), the others are finite.
  Problem<T> p(7, 33, 5, 2, 4242);
  for (size_t t = 0; t < p.d; ++t) {
    p.X[2 * p.d + t] = T(0);
    p.Z[5 * p.d + t] = T(0);
    p.Z[30 * p.d + t] = T(0);
  }
  p.widen_all();
  for (KernelKind kind : kAllKinds)
    for (const KernelSpec& spec : specs_for(kind, p.d))
      check_problem(p, spec, {Op::matvec, Op::rmatvec, Op::normal, Op::block});
}

// ---------------------------------------------------------------------------------------
// SIMD levels agree with the scalar engine.

TEST_CASE_TEMPLATE("simd levels agree with scalar", T, float, double) {
  const auto levels = supported_levels();
  MESSAGE("detected simd level: ", gf::to_string(gf::detected_simd_level()));
  // Different vector widths sum in different orders and may contract into FMA, so the
  // agreement is to rounding, measured like the reference errors.
  const double agree = std::is_same_v<T, double> ? 1e-13 : 2e-6;
  double worst = 0;
  std::uint64_t seed = 3000;
  for (KernelKind kind : kAllKinds)
    for (size_t d : kDims)
      for (size_t n : kSizes)
        for (size_t m : kSizes) {
          const KernelSpec spec = specs_for(kind, d).front();
          const Problem<T> p(n, m, d, 3, seed++);
          const RefKernel rk = reference_kernel(spec, p.Xd, p.Zd, n, m, d);
          for (Op op : {Op::matvec, Op::rmatvec, Op::normal, Op::block, Op::grad}) {
            if (op == Op::grad && !has_gradient(kind)) continue;
            const RefOut want = p.reference(op, spec, rk);
            std::vector<T> scalar;
            {
              SimdScope scope(SimdLevel::scalar);
              scalar = p.run(op, spec);
            }
            for (SimdLevel level : levels) {
              if (level == SimdLevel::scalar) continue;
              SimdScope scope(level);
              const double diff = max_difference(p.run(op, spec), scalar, want.scale);
              INFO(op_name(op), " ", describe(spec), " ", p.describe(),
                   " simd=", gf::to_string(level));
              CHECK(diff <= agree);
              worst = std::max(worst, diff);
            }
          }
        }
  MESSAGE(type_name<T>(), ": largest difference from scalar ", worst);
}

TEST_CASE("simd level control") {
  const SimdLevel best = gf::detected_simd_level();
  CHECK(static_cast<int>(gf::simd_level()) <= static_cast<int>(best));
  for (SimdLevel level : supported_levels()) {
    SimdScope scope(level);
    CHECK(gf::simd_level() == level);
    CHECK(gf::simd_level_from_string(gf::to_string(level)) == level);
  }
  if (best != SimdLevel::avx512) {
    const SimdLevel before = gf::simd_level();
    CHECK_THROWS_AS(gf::set_simd_level(SimdLevel::avx512), std::invalid_argument);
    CHECK(gf::simd_level() == before);
  }
  CHECK_THROWS_AS(gf::simd_level_from_string("sse9"), std::invalid_argument);
  CHECK_THROWS_AS(gf::simd_level_from_string(""), std::invalid_argument);
}

// Registered by CMake a second time with GRAMFREE_SIMD set in the environment; checks that
// the level chosen at start-up honours it (an unknown or unsupported value: the best one).
TEST_CASE("simd GRAMFREE_SIMD environment") {
  const char* env = std::getenv("GRAMFREE_SIMD");
  const SimdLevel best = gf::detected_simd_level();
  SimdLevel expected = best;
  if (env != nullptr && *env != '\0') {
    try {
      const SimdLevel wanted = gf::simd_level_from_string(env);
      if (static_cast<int>(wanted) <= static_cast<int>(best)) expected = wanted;
    } catch (const std::invalid_argument&) {
    }
  }
  INFO("GRAMFREE_SIMD=", env ? env : "(unset)");
  CHECK(gf::simd_level() == expected);
}

// ---------------------------------------------------------------------------------------
// Threads.

TEST_CASE_TEMPLATE("n_threads 1 and 2 agree", T, float, double) {
  // Shapes that take each of the engine's work splits: rows of X per thread, columns of Z
  // per thread (few rows, many columns; results reduced across threads), and the normal
  // operator's blocks of X (n above one block).
  struct Shape {
    size_t n, m, d, k;
  };
  // {3, 40000, 64, 2}: 85 chunks of Z, so a matvec's split reduces over many rounds.
  const Shape shapes[] = {{130, 130, 5, 3}, {7, 700, 5, 2},   {1, 1000, 17, 1}, {2, 600, 1, 4},
                          {33, 1, 17, 2},   {5000, 40, 5, 2}, {1, 1, 1, 1},     {3, 40000, 64, 2}};
  const double agree = std::is_same_v<T, double> ? 1e-13 : 1e-6;
  double worst = 0;
  std::uint64_t seed = 7000;
  for (const Shape& sh : shapes) {
    const Problem<T> p(sh.n, sh.m, sh.d, sh.k, seed++);
    for (KernelKind kind : kAllKinds) {
      const KernelSpec spec = specs_for(kind, sh.d).front();
      const RefKernel rk = reference_kernel(spec, p.Xd, p.Zd, p.n, p.m, p.d);
      for (Op op : {Op::matvec, Op::rmatvec, Op::normal, Op::block, Op::grad}) {
        if (op == Op::grad && !has_gradient(kind)) continue;
        const RefOut want = p.reference(op, spec, rk);
        for (SimdLevel level : supported_levels()) {
          SimdScope scope(level);
          gf::Options one, two, three;
          one.n_threads = 1;
          two.n_threads = 2;
          three.n_threads = 3;
          const std::vector<T> r1 = p.run(op, spec, one);
          INFO(op_name(op), " ", describe(spec), " ", p.describe(), " simd=", gf::to_string(level));
          CHECK(max_error(r1, want.value, want.scale) <= tol<T>());
          const double d2 = max_difference(p.run(op, spec, two), r1, want.scale);
          const double d3 = max_difference(p.run(op, spec, three), r1, want.scale);
          CHECK(d2 <= agree);
          CHECK(d3 <= agree);
          worst = std::max({worst, d2, d3});
        }
      }
    }
  }
  MESSAGE(type_name<T>(), ": largest difference between thread counts ", worst);
}

TEST_CASE("kernel_block_widened: exactly kernel_block<float>'s values, in double") {
  // The engine stores the float32 values widened (the one-pass Nystrom solver's blocks):
  // every kernel, each SIMD level and thread count, the row split and the split of Z
  // (few rows, many columns), partial panels, data far from the origin.
  struct Shape {
    size_t n, m, d;
    double lo, hi;
  };
  // {3, 20000, 5} and {5, 3000, 600}: enough work for two threads, which split Z;
  // {300, 300, 30}: two threads splitting the rows.
  const Shape shapes[] = {{130, 130, 5, -1, 1}, {7, 700, 5, -1, 1},    {1, 1000, 17, -1, 1},
                          {33, 1, 17, -1, 1},   {1, 1, 1, -1, 1},      {40, 37, 3, 999, 1001},
                          {3, 20000, 5, -1, 1}, {5, 3000, 600, -1, 1}, {300, 300, 30, -1, 1}};
  std::uint64_t seed = 7500;
  for (const Shape& sh : shapes) {
    const Problem<float> p(sh.n, sh.m, sh.d, 1, seed++, sh.lo, sh.hi);
    for (KernelKind kind : kAllKinds)
      for (const KernelSpec& spec : specs_for(kind, sh.d))
        for (SimdLevel level : supported_levels())
          for (int threads : {1, 2}) {
            SimdScope scope(level);
            gf::Options o;
            o.n_threads = threads;
            const std::vector<float> narrow = p.run(Op::block, spec, o);
            std::vector<double> wide(p.n * p.m, std::numeric_limits<double>::quiet_NaN());
            gf::kernel_block_widened(spec, cview(p.X, p.n, p.d), cview(p.Z, p.m, p.d),
                                     gf::Matrix<double>{wide.data(), p.n, p.m}, o);
            INFO(describe(spec), " ", p.describe(), " simd=", gf::to_string(level),
                 " threads=", threads);
            size_t differ = 0;
            for (size_t e = 0; e < wide.size(); ++e) differ += wide[e] != double(narrow[e]);
            CHECK(differ == 0);
          }
  }
}

TEST_CASE("kernel_block_widened: bad shapes and null data throw") {
  {
    const Problem<float> p(4, 3, 2, 1, 1);
    std::vector<double> out(12);
    const auto X = cview(p.X, 4, 2), Z = cview(p.Z, 3, 2);
    const KernelSpec spec = specs_for(KernelKind::gaussian, 2).front();
    CHECK_THROWS_AS(gf::kernel_block_widened(spec, X, Z, gf::Matrix<double>{out.data(), 3, 4}),
                    std::invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block_widened(spec, X, Z, gf::Matrix<double>{nullptr, 4, 3}),
                    std::invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block_widened(spec, X, gf::ConstMatrix<float>{p.Z.data(), 2, 3},
                                             gf::Matrix<double>{out.data(), 4, 2}),
                    std::invalid_argument);
  }
}

TEST_CASE("kernel_block: a row stride writes the block into part of a larger matrix") {
  // out.ld > m: the direct solver's upper triangle, block row by block row. Exactly the
  // contiguous block's values in the view, nothing written between its rows or after,
  // both thread splits (rows, and Z for few rows), widened too; other operations refuse
  // a stride, and a stride below the columns is refused.
  struct Shape {
    size_t n, m, d, ld;
  };
  const Shape shapes[] = {
      {130, 70, 5, 75}, {3, 20000, 5, 20003}, {300, 300, 30, 512}, {1, 9, 2, 9}};
  std::uint64_t seed = 9100;
  for (const Shape& sh : shapes) {
    const Problem<float> p(sh.n, sh.m, sh.d, 1, seed++);
    const KernelSpec spec = specs_for(KernelKind::gaussian, sh.d).front();
    for (int threads : {1, 2}) {
      gf::Options o;
      o.n_threads = threads;
      const std::vector<float> whole = p.run(Op::block, spec, o);
      std::vector<float> big(sh.n * sh.ld + 5, -7.0f);
      gf::kernel_block<float>(spec, cview(p.X, p.n, p.d), cview(p.Z, p.m, p.d),
                              gf::Matrix<float>{big.data(), p.n, p.m, sh.ld}, o);
      std::vector<double> wide(sh.n * sh.ld + 5, -7.0);
      gf::kernel_block_widened(spec, cview(p.X, p.n, p.d), cview(p.Z, p.m, p.d),
                               gf::Matrix<double>{wide.data(), p.n, p.m, sh.ld}, o);
      INFO(p.describe(), " ld=", sh.ld, " threads=", threads);
      size_t differ = 0, touched = 0;
      for (size_t e = 0; e < big.size(); ++e) {
        const size_t i = e / sh.ld, j = e % sh.ld;
        if (i < sh.n && j < sh.m) {
          differ += big[e] != whole[i * sh.m + j];
          differ += wide[e] != double(whole[i * sh.m + j]);
        } else {
          touched += big[e] != -7.0f;
          touched += wide[e] != -7.0;
        }
      }
      CHECK(differ == 0);
      CHECK(touched == 0);
    }
  }
  const Problem<double> p(6, 4, 3, 2, 1);
  const KernelSpec spec;
  std::vector<double> out(64);
  const auto X = cview(p.X, 6, 3), Z = cview(p.Z, 4, 3);
  CHECK_THROWS_AS(gf::kernel_block<double>(spec, X, Z, gf::Matrix<double>{out.data(), 6, 4, 3}),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::kernel_matvec<double>(spec, X, Z, cview(p.V, 4, 2),
                                            gf::Matrix<double>{out.data(), 6, 2, 3}),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::kernel_rmatvec<double>(spec, X, Z, cview(p.U, 6, 2),
                                             gf::Matrix<double>{out.data(), 4, 2, 5}),
                  std::invalid_argument);
}

TEST_CASE("workspace: independent of n and m, also when threads split Z") {
  // The engine's own workspace (engine.hpp, workspace_elems): per-thread packing buffers
  // and, when threads split the columns of Z, one n x k buffer per thread -- not one per
  // chunk of Z, which grew with m (n = 3, m = 10^7: 21000 chunks).
  namespace d = gf::detail;
  static const double v = 0;
  auto ws = [](std::size_t n, std::size_t m) {
    d::EngineArgs<double> a{};
    a.n = n;
    a.m = m;
    a.d = 16;
    a.k = 3;
    a.V = &v;
    a.n_threads = 4;
    return d::engine_scalar.workspace_f64(a);
  };
  CHECK(ws(3, 100'000) == ws(3, 10'000'000));                          // few rows: threads split Z
  CHECK(ws(100'000, 100'000) == ws(1'000'000, 10'000'000));            // rows split among threads
  CHECK(ws(3, 10'000'000) * sizeof(double) < (std::size_t(8) << 20));  // 4 threads' 1 MiB chunks
}

TEST_CASE("n_threads: 0 means OpenMP's default and negative is rejected") {
  CHECK(gf::max_threads() >= 1);
  const Problem<double> p(40, 30, 3, 2, 11);
  const KernelSpec spec;
  gf::Options deflt, bad;
  bad.n_threads = -1;
  const auto a = p.run(Op::matvec, spec, deflt);
  const RefKernel rk = reference_kernel(spec, p.Xd, p.Zd, p.n, p.m, p.d);
  const RefOut want = ref_matvec(rk, p.Vd, p.k);
  CHECK(max_error(a, want.value, want.scale) <= tol<double>());
  for (Op op : {Op::matvec, Op::rmatvec, Op::normal, Op::block, Op::grad}) {
    INFO(op_name(op));
    CHECK_THROWS_AS(p.run(op, spec, bad), std::invalid_argument);
  }
}

// ---------------------------------------------------------------------------------------
// Interruption.

namespace {

// A problem large enough that every thread has many row panels to do.
const Problem<double>& large_problem() {
  static const Problem<double> p(2000, 2000, 8, 2, 31337);
  return p;
}

}  // namespace

TEST_CASE("interrupt: a callback returning true stops every operator") {
  const Problem<double>& p = large_problem();
  for (KernelKind kind : {KernelKind::gaussian, KernelKind::laplacian_l1, KernelKind::matern32,
                          KernelKind::polynomial}) {
    KernelSpec spec;
    spec.kind = kind;
    for (int threads : {1, 2}) {
      for (Op op : {Op::matvec, Op::rmatvec, Op::normal, Op::block, Op::grad}) {
        std::atomic<int> calls{0};
        gf::Options o;
        o.n_threads = threads;
        o.interrupt = [&calls] {
          ++calls;
          return true;
        };
        INFO(op_name(op), " ", gf::to_string(kind), " threads=", threads);
        CHECK_THROWS_AS(p.run(op, spec, o), gf::interrupted);
        CHECK(calls.load() >= 1);
      }
    }
  }
  // The library is still usable after an interruption.
  const Problem<double> small(33, 7, 5, 2, 5);
  const KernelSpec spec;
  const RefKernel rk = reference_kernel(spec, small.Xd, small.Zd, small.n, small.m, small.d);
  const RefOut want = ref_matvec(rk, small.Vd, small.k);
  CHECK(max_error(small.run(Op::matvec, spec), want.value, want.scale) <= tol<double>());
}

TEST_CASE("interrupt: a throwing callback stops the call, nothing escapes OpenMP") {
  // Options::interrupt must not throw; if it does anyway, the call must neither terminate
  // the process (an exception leaving an OpenMP region) nor leak that exception.
  const Problem<double>& p = large_problem();
  KernelSpec spec;
  for (int threads : {1, 2})
    for (Op op : {Op::matvec, Op::normal, Op::block}) {
      gf::Options o;
      o.n_threads = threads;
      o.interrupt = []() -> bool { throw std::runtime_error("from the callback"); };
      INFO(op_name(op), " threads=", threads);
      CHECK_THROWS_AS(p.run(op, spec, o), gf::interrupted);
    }
  spec.kind = KernelKind::laplacian_l1;  // the gradient's own parallel loop
  gf::Options o;
  o.n_threads = 2;
  o.interrupt = []() -> bool { throw 42; };
  CHECK_THROWS_AS(p.run(Op::grad, spec, o), gf::interrupted);
}

TEST_CASE("interrupt: a callback returning false changes nothing") {
  const Problem<double> p(700, 500, 6, 3, 99);
  for (KernelKind kind : {KernelKind::gaussian, KernelKind::laplacian_l1, KernelKind::arccos1}) {
    KernelSpec spec;
    spec.kind = kind;
    for (Op op : kValueOps) {
      std::atomic<int> calls{0};
      gf::Options quiet, polled;
      quiet.n_threads = polled.n_threads = 2;
      polled.interrupt = [&calls] {
        ++calls;
        return false;
      };
      const auto a = p.run(op, spec, quiet);
      const auto b = p.run(op, spec, polled);
      INFO(op_name(op), " ", gf::to_string(kind));
      CHECK(calls.load() >= 1);
      CHECK(a == b);  // polling does not touch the arithmetic
    }
  }
}

TEST_CASE("interrupt: a long call stops promptly once asked") {
  // The callback asks to stop 30 ms into calls that would take seconds; the call must
  // throw, and soon (it is polled every few milliseconds of work).
  using clock = std::chrono::steady_clock;
  struct Case {
    Op op;
    size_t n, m, d;
  };
  for (const Case& c : {Case{Op::matvec, 20000, 20000, 128}, Case{Op::normal, 30000, 3000, 64},
                        Case{Op::block, 3000, 3000, 1024}}) {
    const Problem<double> p(c.n, c.m, c.d, 1, 4711);
    const KernelSpec spec;
    const auto start = clock::now();
    gf::Options o;
    o.interrupt = [start] { return clock::now() - start > std::chrono::milliseconds(30); };
    INFO(op_name(c.op), " ", p.describe());
    CHECK_THROWS_AS(p.run(c.op, spec, o), gf::interrupted);
    const double seconds = std::chrono::duration<double>(clock::now() - start).count();
    MESSAGE(op_name(c.op), ": interrupted after ", seconds, " s");
    CHECK(seconds < 2.0);
  }
}

// ---------------------------------------------------------------------------------------
// Invalid input.

TEST_CASE_TEMPLATE("invalid input throws std::invalid_argument", T, float, double) {
  const size_t n = 6, m = 5, d = 3, k = 2;
  const Problem<T> p(n, m, d, k, 123);
  const KernelSpec spec;
  std::vector<T> out(n * m * k * d + 64, T(7));
  const std::vector<T> untouched = out;
  const auto X = cview(p.X, n, d), Z = cview(p.Z, m, d), V = cview(p.V, m, k), U = cview(p.U, n, k);
  auto o = [&](size_t rows, size_t cols) { return gf::Matrix<T>{out.data(), rows, cols}; };
  using std::invalid_argument;

  SUBCASE("mismatched number of features") {
    // Views of the same storage with d + 1 and 2 d features (no more elements than there are).
    const auto Z2 = gf::ConstMatrix<T>{p.Z.data(), 3, d + 1};
    const auto X2 = gf::ConstMatrix<T>{p.X.data(), n / 2, d * 2};
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z2, cview(p.V, 3, k), o(n, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_rmatvec<T>(spec, X, Z2, U, o(3, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z2, cview(p.V, 3, k), o(3, k)),
                    invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, X2, Z, o(n / 2, m)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(spec, X2, Z, V, o(n / 2, k * d * 2)),
                    invalid_argument);
  }
  SUBCASE("parameters beyond the working precision") {
    // validate() checks doubles: narrowed to float, gamma 1e39 is inf and a length scale
    // of 1e-40 zero; 1e-310 makes sqrt(5) / length_scale inf in double too. k(x, x) came
    // back NaN or exp(-87) (a review).
    gf::KernelSpec wide = spec, tiny;
    wide.gamma = 1e39;
    tiny.kind = gf::KernelKind::matern52;
    tiny.length_scale = sizeof(T) == sizeof(float) ? 1e-40 : 1e-310;
    double diag[n];
    for (const gf::KernelSpec& s : {wide, tiny}) {
      if (s.kind == gf::KernelKind::gaussian && sizeof(T) == sizeof(double)) {
        CHECK_NOTHROW(gf::kernel_diagonal<T>(s, X, diag));  // 1e39 is a double
        CHECK(diag[0] == 1.0);
        continue;
      }
      CHECK_THROWS_AS(gf::kernel_matvec<T>(s, X, Z, V, o(n, k)), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_block<T>(s, X, Z, o(n, m)), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_diagonal<T>(s, X, diag), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(s, X, Z, V, o(n, k * d)), invalid_argument);
    }
    gf::KernelSpec small = tiny;
    small.length_scale = 1e-20;  // its reciprocal is finite in float: computed (k(x, x) = 1)
    gf::kernel_diagonal<T>(small, X, diag);
    CHECK(diag[0] == 1.0);
  }
  SUBCASE("empty arrays") {
    const gf::ConstMatrix<T> no_rows{p.X.data(), 0, d}, no_cols{p.X.data(), n, 0};
    const gf::ConstMatrix<T> null_empty{nullptr, 0, 0};
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, no_rows, Z, V, o(0, k)), invalid_argument);
    CHECK_THROWS_AS(
        gf::kernel_matvec<T>(spec, no_cols, gf::ConstMatrix<T>{p.Z.data(), m, 0}, V, o(n, k)),
        invalid_argument);
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, gf::ConstMatrix<T>{p.Z.data(), 0, d},
                                         gf::ConstMatrix<T>{p.V.data(), 0, k}, o(n, k)),
                    invalid_argument);
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z, gf::ConstMatrix<T>{p.V.data(), m, 0}, o(n, 0)),
                    invalid_argument);
    CHECK_THROWS_AS(
        gf::kernel_rmatvec<T>(spec, X, Z, gf::ConstMatrix<T>{p.U.data(), n, 0}, o(m, 0)),
        invalid_argument);
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, no_rows, Z, V, o(m, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, null_empty, Z, o(0, m)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(spec, X, no_rows, V, o(n, k * d)), invalid_argument);
  }
  SUBCASE("an output sharing an input's memory") {
    // The core reads its inputs while it writes out: out == V gave K @ V 2.2 off (values at
    // most 1.7) and the normal product all zeros, in silence (a review of the C++ API).
    std::vector<T> shared(p.V.begin(), p.V.end());  // m x k: V, and the output over it
    const gf::ConstMatrix<T> on_input{shared.data(), m, k};
    const gf::Matrix<T> on_output{shared.data(), m, k};
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, Z, Z, on_input, on_output), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_rmatvec<T>(spec, Z, Z, on_input, on_output), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z, on_input, on_output), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z, V, gf::Matrix<T>{out.data(), m, k}, {},
                                                out.data() + m * k - 1),
                    invalid_argument);  // row weights inside the output's last element
    CHECK(shared == p.V);
    // One element in common: the block's last value and X's first.
    std::vector<T> joint(n * m + n * d - 1);
    std::copy(p.X.begin(), p.X.end(), joint.begin() + n * m - 1);
    const gf::ConstMatrix<T> X_in_joint{joint.data() + n * m - 1, n, d};
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, X_in_joint, Z, gf::Matrix<T>{joint.data(), n, m}),
                    invalid_argument);
    CHECK_THROWS_AS(
        gf::kernel_grad_matvec<T>(spec, X, Z, V, gf::Matrix<T>{const_cast<T*>(V.data), n, k * d}),
        invalid_argument);
    if constexpr (std::is_same_v<T, double>) {
      std::vector<double> rows(p.X.begin(), p.X.end());
      CHECK_THROWS_AS(gf::kernel_diagonal<double>(spec, cview(rows, n, d), rows.data() + 1),
                      invalid_argument);
    }
    // Memory just past an input is the output's own: computed as usual.
    std::vector<T> adjacent(n * m + n * d);
    std::copy(p.X.begin(), p.X.end(), adjacent.begin() + n * m);
    CHECK_NOTHROW(gf::kernel_block<T>(spec, gf::ConstMatrix<T>{adjacent.data() + n * m, n, d}, Z,
                                      gf::Matrix<T>{adjacent.data(), n, m}));
  }
  SUBCASE("non-finite row weights of the normal operator") {
    // A review: NaN or infinity reached every output in silence (signed weights are valid).
    std::vector<T> w(n, T(1));
    w[n / 2] = std::numeric_limits<T>::quiet_NaN();
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z, V, o(m, k), {}, w.data()),
                    invalid_argument);
    w[n / 2] = std::numeric_limits<T>::infinity();
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z, V, o(m, k), {}, w.data()),
                    invalid_argument);
    w[n / 2] = T(-1);
    std::vector<T> fine(m * k);
    CHECK_NOTHROW(
        gf::kernel_normal_matvec<T>(spec, X, Z, V, gf::Matrix<T>{fine.data(), m, k}, {}, w.data()));
  }
  SUBCASE("wrong output shape") {
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z, V, o(n + 1, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z, V, o(n, k + 1)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z, V, o(k, n)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_rmatvec<T>(spec, X, Z, U, o(n, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z, V, o(n, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, X, Z, o(m, n)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, X, Z, o(n, m - 1)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(spec, X, Z, V, o(n, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z, V, gf::Matrix<T>{nullptr, n, k}),
                    invalid_argument);
  }
  SUBCASE("right-hand side with the wrong number of rows") {
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, X, Z, cview(p.V, m - 1, k), o(n, k)),
                    invalid_argument);
    CHECK_THROWS_AS(gf::kernel_rmatvec<T>(spec, X, Z, cview(p.U, n - 1, k), o(m, k)),
                    invalid_argument);
    CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(spec, X, Z, U, o(m, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(spec, X, Z, U, o(n, k * d)), invalid_argument);
  }
  SUBCASE("null data and sizes that overflow") {
    const gf::ConstMatrix<T> null_x{nullptr, n, d};
    CHECK_THROWS_AS(gf::kernel_matvec<T>(spec, null_x, Z, V, o(n, k)), invalid_argument);
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, X, gf::ConstMatrix<T>{nullptr, m, d}, o(n, m)),
                    invalid_argument);
    const size_t huge = std::numeric_limits<size_t>::max() / 2 + 1;
    CHECK_THROWS_AS(gf::kernel_block<T>(spec, gf::ConstMatrix<T>{p.X.data(), huge, 4},
                                        gf::ConstMatrix<T>{p.Z.data(), m, 4}, o(huge, m)),
                    invalid_argument);
  }
  SUBCASE("kernel parameters out of their domain") {
    auto bad = [&](KernelSpec s) {
      INFO(describe(s));
      CHECK_THROWS_AS(gf::validate(s), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_matvec<T>(s, X, Z, V, o(n, k)), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_rmatvec<T>(s, X, Z, U, o(m, k)), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_normal_matvec<T>(s, X, Z, V, o(m, k)), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_block<T>(s, X, Z, o(n, m)), invalid_argument);
      CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(s, X, Z, V, o(n, k * d)), invalid_argument);
    };
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (KernelKind kind :
         {KernelKind::gaussian, KernelKind::laplacian_l1, KernelKind::laplacian_l2}) {
      for (double g : {-1.0, 0.0, nan, inf, -inf}) {
        KernelSpec s;
        s.kind = kind;
        s.gamma = g;
        bad(s);
      }
    }
    for (KernelKind kind : {KernelKind::matern12, KernelKind::matern32, KernelKind::matern52})
      for (double ls : {-2.0, 0.0, nan, inf}) {
        KernelSpec s;
        s.kind = kind;
        s.length_scale = ls;
        bad(s);
      }
    KernelSpec poly;
    poly.kind = KernelKind::polynomial;
    for (int degree : {0, -1, 65}) {
      KernelSpec s = poly;
      s.degree = degree;
      bad(s);
    }
    for (double g : {-0.5, 0.0, nan}) {
      KernelSpec s = poly;
      s.gamma = g;
      bad(s);
    }
    for (double c : {nan, inf}) {
      KernelSpec s = poly;
      s.coef0 = c;
      bad(s);
    }
    KernelSpec unknown;
    unknown.kind = static_cast<KernelKind>(99);
    bad(unknown);
    // Valid edge values are accepted.
    KernelSpec ok = poly;
    ok.degree = 1;
    CHECK_NOTHROW(gf::validate(ok));
    ok.degree = 64;
    CHECK_NOTHROW(gf::validate(ok));
    ok.coef0 = -3.0;
    CHECK_NOTHROW(gf::validate(ok));
  }
  SUBCASE("gradient of a kernel the table gives none") {
    for (KernelKind kind : kAllKinds) {
      if (has_gradient(kind)) continue;
      KernelSpec s;
      s.kind = kind;
      INFO(gf::to_string(kind));
      CHECK_THROWS_AS(gf::kernel_grad_matvec<T>(s, X, Z, V, o(n, k * d)), invalid_argument);
    }
  }
  // A call that throws has written nothing.
  CHECK(out == untouched);
}

TEST_CASE("kernel names") {
  for (KernelKind kind : kAllKinds) CHECK(gf::kernel_kind_from_string(gf::to_string(kind)) == kind);
  CHECK(gf::to_string(KernelKind::gaussian) == "gaussian");
  CHECK(gf::to_string(KernelKind::arccos1) == "arccos1");
  CHECK_THROWS_AS(gf::kernel_kind_from_string("rbf"), std::invalid_argument);
  CHECK_THROWS_AS(gf::kernel_kind_from_string(""), std::invalid_argument);
  CHECK_THROWS_AS(gf::kernel_kind_from_string("Gaussian"), std::invalid_argument);
  const bool compiled = gf::cuda_compiled();
  MESSAGE("cuda_compiled: ", compiled);
}

TEST_CASE("kernel table: names round-trip and validate() follows the domains") {
  CHECK(gf::kernel_count == std::size(kAllKinds));
  // The parameters of KernelSpec, the table's column for each, and a value that no domain
  // of a used parameter allows (an unused parameter is not looked at).
  struct Param {
    const char* name;
    gf::Domain gf::KernelInfo::*column;
    void (*set)(KernelSpec&, double);
    double unused_value;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Param params[] = {
      {"gamma", &gf::KernelInfo::gamma, [](KernelSpec& s, double v) { s.gamma = v; }, nan},
      {"coef0", &gf::KernelInfo::coef0, [](KernelSpec& s, double v) { s.coef0 = v; }, nan},
      {"degree", &gf::KernelInfo::degree, [](KernelSpec& s, double v) { s.degree = int(v); }, 0},
      {"length_scale", &gf::KernelInfo::length_scale,
       [](KernelSpec& s, double v) { s.length_scale = v; }, nan},
  };
  for (size_t i = 0; i < gf::kernel_count; ++i) {
    const gf::KernelInfo& row = gf::kernel_table[i];
    INFO(row.name);
    CHECK(size_t(row.kind) == i);  // the table is indexed by KernelKind
    CHECK(gf::to_string(row.kind) == row.name);
    CHECK(gf::kernel_kind_from_string(row.name) == row.kind);
    KernelSpec ok;
    ok.kind = row.kind;
    for (const Param& p : params) p.set(ok, inside(row.*p.column));
    CHECK_NOTHROW(gf::validate(ok));
    for (const Param& p : params) {
      INFO(p.name);
      const gf::Domain domain = row.*p.column;
      KernelSpec s = ok;
      if (domain == gf::Domain::unused) {
        p.set(s, p.unused_value);
        CHECK_NOTHROW(gf::validate(s));
        continue;
      }
      for (double v : outside(domain)) {
        INFO(v);
        p.set(s, v);
        CHECK_THROWS_AS(gf::validate(s), std::invalid_argument);
      }
    }
  }
  const auto past_the_end = static_cast<KernelKind>(gf::kernel_count);
  CHECK(gf::to_string(past_the_end) == "unknown");
  KernelSpec unknown;
  unknown.kind = past_the_end;
  CHECK_THROWS_AS(gf::validate(unknown), std::invalid_argument);
}

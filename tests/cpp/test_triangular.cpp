// gramfree::triangular_solve_lower against an independent reference: substitution in long
// double, row by row, written from the definition (no blocking, no SIMD). Every instruction
// set and thread count is compared; the blocked solve's sums run in an order that does not
// depend on the number of threads, so those results must be identical, bit for bit.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "gramfree/gramfree.hpp"
#include "simd_levels.hpp"

namespace gf = gramfree;
using gf::SimdLevel;
using std::size_t;

namespace {

using gramfree_test::SimdScope;
using gramfree_test::supported_levels;

// A well-conditioned lower triangle (diagonal in [1, 2], the rest N(0, 1/n)), column-major
// with leading dimension lda; the strict upper triangle and the padding rows hold NaN, which
// the solve must never read.
template <class T>
std::vector<T> make_lower(size_t n, size_t lda, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0 / std::sqrt(double(n)));
  std::uniform_real_distribution<double> diag(1.0, 2.0);
  std::vector<T> L(lda * n, std::numeric_limits<T>::quiet_NaN());
  for (size_t c = 0; c < n; ++c)
    for (size_t r = c; r < n; ++r) L[r + c * lda] = T(r == c ? diag(rng) : normal(rng));
  return L;
}

// X := L^-1 X or L^-T X by plain substitution in long double.
template <class T>
std::vector<long double> reference(const std::vector<T>& L, size_t lda, size_t n,
                                   const std::vector<T>& B, size_t ldx, size_t k, bool trans) {
  std::vector<long double> X(n * k);
  for (size_t q = 0; q < k; ++q) {
    long double* x = X.data() + q * n;
    for (size_t r = 0; r < n; ++r) x[r] = B[r + q * ldx];
    if (!trans) {
      for (size_t r = 0; r < n; ++r) {
        long double s = x[r];
        for (size_t j = 0; j < r; ++j) s -= (long double)L[r + j * lda] * x[j];
        x[r] = s / L[r + r * lda];
      }
    } else {
      for (size_t c = n; c-- > 0;) {
        long double s = x[c];
        for (size_t r = c + 1; r < n; ++r) s -= (long double)L[r + c * lda] * x[r];
        x[c] = s / L[c + c * lda];
      }
    }
  }
  return X;
}

template <class T>
std::vector<T> solve(const std::vector<T>& L, size_t lda, size_t n, const std::vector<T>& B,
                     size_t ldx, size_t k, bool trans, int threads) {
  std::vector<T> X = B;
  gf::Options options;
  options.n_threads = threads;
  gf::triangular_solve_lower<T>(L.data(), lda, n, X.data(), ldx, k, trans, options);
  return X;
}

struct Case {
  size_t n, k, lda_pad, ldx_pad;
};

// Sizes around every boundary of the blocking: the register tiles (8/16/32 rows), the
// diagonal sub-blocks, the 512-row blocks and the right-hand-side tiles (6, 13, 14).
const Case kCases[] = {{1, 1, 0, 0},
                       {2, 3, 1, 0},
                       {5, 2, 0, 3},
                       {17, 6, 0, 0},
                       {31, 7, 2, 1},
                       {33, 13, 0, 0},
                       {100, 14, 0, 0},
                       {255, 15, 1, 0},
                       {511, 26, 0, 2},
                       {512, 5, 0, 0},
                       {513, 26, 3, 0},
                       {700, 1, 0, 0},
                       {1100, 40, 1, 1},
                       {1100, 64, 0, 0},
                       {1536, 29, 0, 0},
                       {600, 100, 0, 0},
                       // Fewer right-hand sides than threads, still multi-threaded (n^2 k
                       // above the one-thread bound); more than one group of 64 (backward).
                       {1100, 1, 0, 0},
                       {900, 2, 1, 0},
                       {700, 130, 0, 1}};

}  // namespace

TEST_CASE_TEMPLATE("triangular_solve_lower: every simd level and thread count", T, float, double) {
  // Forward error of a solve with this well-conditioned triangle: a few hundred ulps of
  // the solution's scale.
  const double tol = std::is_same_v<T, double> ? 1e-12 : 2e-5;
  std::uint64_t seed = 11;
  double worst = 0;
  for (const Case& c : kCases) {
    const size_t lda = c.n + c.lda_pad, ldx = c.n + c.ldx_pad;
    const std::vector<T> L = make_lower<T>(c.n, lda, seed++);
    std::mt19937_64 rng(seed++);
    std::normal_distribution<double> normal;
    // Padding rows of B hold a sentinel that must come back untouched.
    std::vector<T> B(ldx * c.k, T(-7.25));
    for (size_t q = 0; q < c.k; ++q)
      for (size_t r = 0; r < c.n; ++r) B[r + q * ldx] = T(normal(rng));
    for (bool trans : {false, true}) {
      const std::vector<long double> want = reference(L, lda, c.n, B, ldx, c.k, trans);
      long double scale = 0;
      for (long double v : want) scale = std::max(scale, std::fabs(v));
      for (SimdLevel level : supported_levels()) {
        SimdScope scope(level);
        const std::vector<T> one = solve(L, lda, c.n, B, ldx, c.k, trans, 1);
        INFO("n=", c.n, " k=", c.k, " lda=", lda, " ldx=", ldx, " trans=", trans,
             " simd=", gf::to_string(level));
        double err = 0;
        bool padding_kept = true;
        for (size_t q = 0; q < c.k; ++q) {
          for (size_t r = 0; r < c.n; ++r) {
            const double e = double(std::fabs(one[r + q * ldx] - want[r + q * c.n]) / scale);
            err = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(err, e);
          }
          for (size_t r = c.n; r < ldx; ++r) padding_kept &= one[r + q * ldx] == T(-7.25);
        }
        CHECK(err <= tol);
        CHECK(padding_kept);
        worst = std::max(worst, err);
        for (int threads : {2, 3}) CHECK(solve(L, lda, c.n, B, ldx, c.k, trans, threads) == one);
      }
    }
  }
  MESSAGE("largest error relative to the solution's scale: ", worst);
}

TEST_CASE("triangular_solve_lower: empty systems and bad arguments") {
  std::vector<double> L(16, 1.0), X(8, 1.0);
  CHECK_NOTHROW(gf::triangular_solve_lower<double>(nullptr, 1, 0, nullptr, 1, 3, false));
  CHECK_NOTHROW(gf::triangular_solve_lower<double>(L.data(), 4, 4, X.data(), 4, 0, true));
  CHECK(X == std::vector<double>(8, 1.0));
  CHECK_THROWS_AS(gf::triangular_solve_lower<double>(L.data(), 3, 4, X.data(), 4, 2, false),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::triangular_solve_lower<double>(L.data(), 4, 4, X.data(), 3, 2, false),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::triangular_solve_lower<double>(nullptr, 4, 4, X.data(), 4, 2, false),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::triangular_solve_lower<double>(L.data(), 4, 4, nullptr, 4, 2, false),
                  std::invalid_argument);
  gf::Options negative;
  negative.n_threads = -1;
  CHECK_THROWS_AS(
      gf::triangular_solve_lower<double>(L.data(), 4, 4, X.data(), 4, 2, false, negative),
      std::invalid_argument);
  // X solved in place over L's own memory: L changes under the solve (a review).
  CHECK_THROWS_AS(gf::triangular_solve_lower<double>(L.data(), 4, 4, L.data() + 8, 4, 2, false),
                  std::invalid_argument);
  CHECK(L == std::vector<double>(16, 1.0));
}

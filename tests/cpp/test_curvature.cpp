// gramfree::curvature_product against an independent reference written from its
// definition in long double: U = K V row by row, W_i = S_i (u_i - z) with S_i the softmax's
// curvature w_i (diag p_i - p_i p_i^T) (or w_i alone), out = K^T W. Every instruction set,
// both storage types, shapes around the engine's tiles (4-row groups, 8-row blocks, vector
// widths, class tiles of up to 6) and padded rows (ldk > M), on 1 to 3 threads.
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

struct Problem {
  size_t n, M, k, ldk;
  std::vector<double> V, w, P, z;
};

template <class T>
std::vector<T> make_K(const Problem& p, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  // Padding columns hold NaN: the product must never read them.
  std::vector<T> K(p.n * p.ldk, std::numeric_limits<T>::quiet_NaN());
  for (size_t i = 0; i < p.n; ++i)
    for (size_t m = 0; m < p.M; ++m) K[i * p.ldk + m] = T(normal(rng));
  return K;
}

Problem make_problem(size_t n, size_t M, size_t k, size_t pad, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Problem p{n, M, k, M + pad, {}, {}, {}, {}};
  for (size_t e = 0; e < M * k; ++e) p.V.push_back(normal(rng));
  for (size_t i = 0; i < n; ++i) p.w.push_back(uniform(rng));
  for (size_t i = 0; i < n; ++i) {
    double total = 0;
    for (size_t c = 0; c < k; ++c) p.P.push_back(uniform(rng) + 1e-3), total += p.P.back();
    for (size_t c = 0; c < k; ++c) p.P[i * k + c] /= total;
  }
  for (size_t c = 0; c < k; ++c) p.z.push_back(normal(rng));
  return p;
}

template <class T>
std::vector<long double> reference(const std::vector<T>& K, const Problem& p, bool softmax,
                                   bool shift) {
  std::vector<long double> out(p.M * p.k, 0.0L), u(p.k);
  for (size_t i = 0; i < p.n; ++i) {
    for (size_t c = 0; c < p.k; ++c) {
      long double s = 0;
      for (size_t m = 0; m < p.M; ++m) s += (long double)K[i * p.ldk + m] * p.V[m * p.k + c];
      u[c] = s - (softmax && shift ? p.z[c] : 0.0);
    }
    if (softmax) {
      long double dot = 0;
      for (size_t c = 0; c < p.k; ++c) dot += p.P[i * p.k + c] * u[c];
      for (size_t c = 0; c < p.k; ++c) u[c] = p.w[i] * p.P[i * p.k + c] * (u[c] - dot);
    } else {
      for (size_t c = 0; c < p.k; ++c) u[c] *= p.w[i];
    }
    for (size_t m = 0; m < p.M; ++m)
      for (size_t c = 0; c < p.k; ++c) out[m * p.k + c] += (long double)K[i * p.ldk + m] * u[c];
  }
  return out;
}

template <class T>
std::vector<double> product(const std::vector<T>& K, const Problem& p, bool softmax, bool shift,
                            int threads) {
  std::vector<double> out(p.M * p.k, -7.25);
  gf::Options options;
  options.n_threads = threads;
  gf::curvature_product<T>(K.data(), p.ldk, p.n, p.M, p.V.data(), p.k, p.w.data(),
                           softmax ? p.P.data() : nullptr, shift ? p.z.data() : nullptr, out.data(),
                           options);
  return out;
}

struct Case {
  size_t n, M, k, pad;
};

const Case kCases[] = {{1, 1, 1, 0},
                       {3, 5, 2, 1},
                       {4, 8, 6, 0},
                       {7, 9, 7, 3},
                       {8, 16, 12, 0},
                       {9, 17, 13, 2},
                       {33, 31, 3, 0},
                       {100, 64, 10, 0},
                       {257, 100, 1, 5},
                       {513, 129, 26, 0},
                       {1000, 40, 4, 0},
                       {3001, 50, 3, 1},
                       // Few rows, many columns: threaded (n M k above the one-thread bound)
                       // with fewer 8-row blocks than some thread counts.
                       {9, 3000, 13, 1},
                       {17, 2000, 11, 0}};

}  // namespace

TEST_CASE_TEMPLATE("curvature_product: every simd level and thread count", T, float, double) {
  std::uint64_t seed = 5;
  double worst = 0;
  for (const Case& c : kCases) {
    const Problem p = make_problem(c.n, c.M, c.k, c.pad, seed++);
    const std::vector<T> K = make_K<T>(p, seed++);
    for (int mode = 0; mode < 3; ++mode) {
      const bool softmax = mode > 0, shift = mode == 2;
      const std::vector<long double> want = reference(K, p, softmax, shift);
      long double scale = 1e-300L;
      for (long double v : want) scale = std::max(scale, std::fabs(v));
      for (SimdLevel level : supported_levels()) {
        SimdScope scope(level);
        for (int threads : {1, 2, 3, 0}) {  // 0: OpenMP's default
          const std::vector<double> got = product(K, p, softmax, shift, threads);
          INFO("n=", c.n, " M=", c.M, " k=", c.k, " ldk=", p.ldk, " mode=", mode,
               " simd=", gf::to_string(level), " threads=", threads);
          double err = 0;
          for (size_t e = 0; e < got.size(); ++e) {
            const double d = double(std::fabs(got[e] - want[e]) / scale);
            err = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(err, d);
          }
          // float64 arithmetic on the stored values, whatever T: sums of n M terms.
          CHECK(err <= 1e-13);
          worst = std::max(worst, err);
        }
      }
    }
  }
  MESSAGE("largest error relative to the product's scale: ", worst);
}

TEST_CASE("curvature_product: empty shapes and bad arguments") {
  std::vector<double> K(12, 1.0), V(8, 1.0), w(3, 1.0), out(8, -1.0);
  // No rows: zeros. No centres or no classes: nothing written.
  CHECK_NOTHROW(gf::curvature_product<double>(nullptr, 4, 0, 4, V.data(), 2, nullptr, nullptr,
                                              nullptr, out.data()));
  CHECK(out == std::vector<double>(8, 0.0));
  std::vector<double> untouched(8, -1.0);
  CHECK_NOTHROW(gf::curvature_product<double>(K.data(), 4, 3, 4, V.data(), 0, w.data(), nullptr,
                                              nullptr, untouched.data()));
  CHECK(untouched == std::vector<double>(8, -1.0));
  CHECK_THROWS_AS(gf::curvature_product<double>(K.data(), 3, 3, 4, V.data(), 2, w.data(), nullptr,
                                                nullptr, out.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::curvature_product<double>(nullptr, 4, 3, 4, V.data(), 2, w.data(), nullptr,
                                                nullptr, out.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::curvature_product<double>(K.data(), 4, 3, 4, V.data(), 2, nullptr, nullptr,
                                                nullptr, out.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::curvature_product<double>(K.data(), 4, 3, 4, nullptr, 2, w.data(), nullptr,
                                                nullptr, out.data()),
                  std::invalid_argument);
  gf::Options negative;
  negative.n_threads = -1;
  CHECK_THROWS_AS(gf::curvature_product<double>(K.data(), 4, 3, 4, V.data(), 2, w.data(), nullptr,
                                                nullptr, out.data(), negative),
                  std::invalid_argument);
  // The output over an input read while it is written (a review of the C++ API).
  CHECK_THROWS_AS(gf::curvature_product<double>(K.data(), 4, 3, 4, V.data(), 2, w.data(), nullptr,
                                                nullptr, K.data()),
                  std::invalid_argument);
  std::vector<double> weights_after(8 + 3, 1.0);
  CHECK_THROWS_AS(
      gf::curvature_product<double>(K.data(), 4, 3, 4, V.data(), 2, weights_after.data() + 7,
                                    nullptr, nullptr, weights_after.data()),
      std::invalid_argument);
}

TEST_CASE_TEMPLATE("curvature_product_rows: a subset of K's rows, by index", T, float, double) {
  std::uint64_t seed = 101;
  for (const Case& c : kCases) {
    // The product over n_used of K's c.n rows, drawn with repeats and out of order: the
    // same as the product over those rows copied out (the reference's K).
    const size_t n_used = c.n + c.n / 2;
    const Problem used = make_problem(n_used, c.M, c.k, c.pad, seed++);
    Problem whole = used;
    whole.n = c.n;
    const std::vector<T> K = make_K<T>(whole, seed++);
    std::mt19937_64 rng(seed++);
    std::vector<std::int64_t> rows(n_used);
    std::vector<T> copied(n_used * used.ldk);
    for (size_t j = 0; j < n_used; ++j) {
      rows[j] = std::int64_t(rng() % c.n);
      for (size_t m = 0; m < used.ldk; ++m)
        copied[j * used.ldk + m] = K[size_t(rows[j]) * used.ldk + m];
    }
    for (int mode = 0; mode < 3; ++mode) {
      const bool softmax = mode > 0, shift = mode == 2;
      const std::vector<long double> want = reference(copied, used, softmax, shift);
      long double scale = 1e-300L;
      for (long double v : want) scale = std::max(scale, std::fabs(v));
      for (SimdLevel level : supported_levels()) {
        SimdScope scope(level);
        for (int threads : {1, 3}) {
          std::vector<double> got(used.M * used.k, -7.25);
          gf::Options options;
          options.n_threads = threads;
          gf::curvature_product_rows<T>(K.data(), used.ldk, c.n, used.M, rows.data(), n_used,
                                        used.V.data(), used.k, used.w.data(),
                                        softmax ? used.P.data() : nullptr,
                                        shift ? used.z.data() : nullptr, got.data(), options);
          INFO("n=", c.n, " used=", n_used, " M=", c.M, " k=", c.k, " mode=", mode,
               " simd=", gf::to_string(level), " threads=", threads);
          double err = 0;
          for (size_t e = 0; e < got.size(); ++e) {
            const double d = double(std::fabs(got[e] - want[e]) / scale);
            err = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(err, d);
          }
          CHECK(err <= 1e-13);
        }
      }
    }
  }
  // An index outside K's rows, or no indices for rows to read: std::invalid_argument.
  std::vector<double> K(12, 1.0), V(8, 1.0), w(2, 1.0), out(8, -1.0);
  const std::int64_t outside[] = {0, 3}, negative[] = {-1, 0};
  CHECK_THROWS_AS(gf::curvature_product_rows<double>(K.data(), 4, 3, 4, outside, 2, V.data(), 2,
                                                     w.data(), nullptr, nullptr, out.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::curvature_product_rows<double>(K.data(), 4, 3, 4, negative, 2, V.data(), 2,
                                                     w.data(), nullptr, nullptr, out.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(gf::curvature_product_rows<double>(K.data(), 4, 3, 4, nullptr, 2, V.data(), 2,
                                                     w.data(), nullptr, nullptr, out.data()),
                  std::invalid_argument);
  CHECK_NOTHROW(gf::curvature_product_rows<double>(K.data(), 4, 3, 4, nullptr, 0, V.data(), 2,
                                                   w.data(), nullptr, nullptr, out.data()));
  CHECK(out == std::vector<double>(8, 0.0));
}

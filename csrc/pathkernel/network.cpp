#include "pathkernel/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gramfree::pathkernel {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }
}  // namespace

Activation activation_from_string(const std::string& name) {
  if (name == "identity") return Activation::identity;
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  if (name == "softplus") return Activation::softplus;
  if (name == "gelu") return Activation::gelu;
  fail("activation: unknown '" + name + "' (identity, relu, tanh, softplus, gelu)");
}

Loss loss_from_string(const std::string& name) {
  if (name == "squared") return Loss::squared;
  if (name == "softmax") return Loss::softmax;
  if (name == "logistic") return Loss::logistic;
  fail("loss: unknown '" + name + "' (squared, softmax, logistic)");
}

std::string to_string(Activation a) {
  switch (a) {
    case Activation::identity:
      return "identity";
    case Activation::relu:
      return "relu";
    case Activation::tanh:
      return "tanh";
    case Activation::softplus:
      return "softplus";
    case Activation::gelu:
      return "gelu";
  }
  return "?";
}

std::string to_string(Loss l) {
  switch (l) {
    case Loss::squared:
      return "squared";
    case Loss::softmax:
      return "softmax";
    case Loss::logistic:
      return "logistic";
  }
  return "?";
}

std::size_t Architecture::n_params() const {
  std::size_t p = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) p += (sizes[l] + 1) * sizes[l + 1];
  return p;
}

std::size_t Architecture::weight_offset(std::size_t layer) const {
  std::size_t p = 0;
  for (std::size_t l = 0; l < layer; ++l) p += (sizes[l] + 1) * sizes[l + 1];
  return p;
}

std::size_t Architecture::bias_offset(std::size_t layer) const {
  return weight_offset(layer) + sizes[layer] * sizes[layer + 1];
}

void validate(const Architecture& arch) {
  if (arch.sizes.size() < 2) fail("layer sizes: need at least inputs and outputs");
  for (std::size_t s : arch.sizes)
    if (s == 0) fail("layer sizes: every layer needs at least one unit");
  // The parameter count must not wrap around size_t (it sizes every buffer).
  std::size_t total = 0;
  for (std::size_t l = 0; l + 1 < arch.sizes.size(); ++l) {
    const std::size_t a = arch.sizes[l], b = arch.sizes[l + 1];
    if (a > (SIZE_MAX - 1) || b > SIZE_MAX / (a + 1) || (a + 1) * b > SIZE_MAX - total)
      fail("layer sizes: the parameter count overflows");
    total += (a + 1) * b;
  }
  const int act = static_cast<int>(arch.activation), loss = static_cast<int>(arch.loss);
  if (act < static_cast<int>(Activation::identity) || act > static_cast<int>(Activation::gelu))
    fail("activation: not one of identity, relu, tanh, softplus, gelu");
  if (loss < static_cast<int>(Loss::squared) || loss > static_cast<int>(Loss::logistic))
    fail("loss: not one of the Loss values");
  if (arch.loss == Loss::softmax && arch.n_outputs() < 2)
    fail("loss 'softmax' needs at least 2 outputs");
  if (arch.loss == Loss::logistic && arch.n_outputs() != 1)
    fail("loss 'logistic' needs exactly 1 output");
}

void validate(const TrainConfig& c, std::size_t n_samples) {
  if (!(c.learning_rate > 0) || !std::isfinite(c.learning_rate))
    fail("learning_rate: must be a finite number > 0");
  if (c.n_steps < 1) fail("n_steps: must be >= 1");
  if (!(c.alpha >= 0) || !std::isfinite(c.alpha)) fail("alpha: must be a finite number >= 0");
  if (n_samples < 1) fail("training set: needs at least one example");
}

namespace detail {

void gemm_nt(const double* A, std::size_t m, const double* B, std::size_t n, std::size_t p,
             double* C, const Options& options) {
  if (m == 0 || n == 0) return;
  if (p == 0) {
    std::fill(C, C + m * n, 0.0);
    return;
  }
  static const KernelSpec linear{KernelKind::linear, 1.0, 0.0, 1, 1.0};
  kernel_block<double>(linear, ConstMatrix<double>{A, m, p}, ConstMatrix<double>{B, n, p},
                       Matrix<double>{C, m, n}, options);
}

void transpose(const double* in, std::size_t rows, std::size_t cols, double* out) {
  constexpr std::size_t tile = 32;
  for (std::size_t i0 = 0; i0 < rows; i0 += tile)
    for (std::size_t j0 = 0; j0 < cols; j0 += tile)
      for (std::size_t i = i0; i < std::min(rows, i0 + tile); ++i)
        for (std::size_t j = j0; j < std::min(cols, j0 + tile); ++j)
          out[j * rows + i] = in[i * cols + j];
}

namespace {
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

double logistic(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}
}  // namespace

double activate(Activation a, double z) {
  switch (a) {
    case Activation::identity:
      return z;
    case Activation::relu:
      return z > 0 ? z : 0.0;
    case Activation::tanh:
      return std::tanh(z);
    case Activation::softplus:
      return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
    case Activation::gelu:
      return z * 0.5 * std::erfc(-z * kInvSqrt2);
  }
  return z;
}

double activation_derivative(Activation a, double z) {
  switch (a) {
    case Activation::identity:
      return 1.0;
    case Activation::relu:
      return z > 0 ? 1.0 : 0.0;
    case Activation::tanh: {
      const double t = std::tanh(z);
      return 1.0 - t * t;
    }
    case Activation::softplus:
      return logistic(z);
    case Activation::gelu:
      return 0.5 * std::erfc(-z * kInvSqrt2) + z * kInvSqrt2Pi * std::exp(-0.5 * z * z);
  }
  return 1.0;
}

void activate_all(Activation act, const double* z, std::size_t count, double* a, double* da) {
  switch (act) {
    case Activation::tanh:
      for (std::size_t i = 0; i < count; ++i) {
        const double t = std::tanh(z[i]);
        a[i] = t;
        da[i] = 1.0 - t * t;
      }
      return;
    case Activation::relu:
      for (std::size_t i = 0; i < count; ++i) {
        a[i] = z[i] > 0 ? z[i] : 0.0;
        da[i] = z[i] > 0 ? 1.0 : 0.0;
      }
      return;
    case Activation::identity:
      for (std::size_t i = 0; i < count; ++i) {
        a[i] = z[i];
        da[i] = 1.0;
      }
      return;
    default:
      for (std::size_t i = 0; i < count; ++i) {
        a[i] = activate(act, z[i]);
        da[i] = activation_derivative(act, z[i]);
      }
  }
}

void TransposedWeights::assign(const Architecture& arch, const double* params) {
  Wt.resize(arch.n_layers());
  for (std::size_t l = 0; l < arch.n_layers(); ++l) {
    const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
    Wt[l].resize(fi * fo);
    transpose(params + arch.weight_offset(l), fi, fo, Wt[l].data());
  }
}

void forward(const Architecture& arch, const double* params, const TransposedWeights& wt,
             const double* X, std::size_t rows, ForwardCache& cache, const Options& options,
             const double* delta, const TransposedWeights* dwt, const double* s) {
  const std::size_t L = arch.n_layers();
  cache.rows = rows;
  cache.A.resize(L);
  cache.Z.resize(L);
  cache.dA.resize(L);
  cache.A[0].assign(X, X + rows * arch.sizes[0]);
  std::vector<double> tmp;
  for (std::size_t l = 0; l < L; ++l) {
    const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
    std::vector<double>& Z = cache.Z[l];
    Z.resize(rows * fo);
    gemm_nt(cache.A[l].data(), rows, wt.Wt[l].data(), fo, fi, Z.data(), options);
    const double* b = params + arch.bias_offset(l);
    if (s != nullptr) {
      tmp.resize(rows * fo);
      gemm_nt(cache.A[l].data(), rows, dwt->Wt[l].data(), fo, fi, tmp.data(), options);
      const double* db = delta + arch.bias_offset(l);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < fo; ++j)
          Z[r * fo + j] += s[r] * tmp[r * fo + j] + (b[j] + s[r] * db[j]);
    } else {
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < fo; ++j) Z[r * fo + j] += b[j];
    }
    if (l + 1 < L) {
      cache.A[l + 1].resize(rows * fo);
      cache.dA[l].resize(rows * fo);
      activate_all(arch.activation, Z.data(), rows * fo, cache.A[l + 1].data(), cache.dA[l].data());
    }
  }
}

void backward(const Architecture& arch, const double* params, const ForwardCache& cache,
              const double* top, std::size_t rep, std::vector<std::vector<double>>& D,
              const Options& options, const double* delta, const double* s) {
  const std::size_t L = arch.n_layers(), k = arch.n_outputs(), rows = cache.rows;
  const std::size_t R = rows * rep;
  D.resize(L);
  D[L - 1].assign(top, top + R * k);
  std::vector<double> tmp;
  for (std::size_t l = L - 1; l > 0; --l) {
    const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
    std::vector<double>& Dn = D[l - 1];
    Dn.resize(R * fi);
    // d/dA[l] = D[l] W^T: W (fi x fo) row-major is already the "B" of gemm_nt.
    gemm_nt(D[l].data(), R, params + arch.weight_offset(l), fi, fo, Dn.data(), options);
    if (s != nullptr) {
      tmp.resize(R * fi);
      gemm_nt(D[l].data(), R, delta + arch.weight_offset(l), fi, fo, tmp.data(), options);
      for (std::size_t r = 0; r < R; ++r) {
        const double sr = s[r / rep];
        for (std::size_t j = 0; j < fi; ++j) Dn[r * fi + j] += sr * tmp[r * fi + j];
      }
    }
    const std::vector<double>& dAp = cache.dA[l - 1];
    for (std::size_t r = 0; r < R; ++r) {
      const double* da = dAp.data() + (r / rep) * fi;
      for (std::size_t j = 0; j < fi; ++j) Dn[r * fi + j] *= da[j];
    }
  }
}

double loss_and_derivative(Loss loss, const double* f, const double* Y, std::size_t rows,
                           std::size_t k, double* g, const double* row_weight) {
  double total = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const double* fr = f + r * k;
    const double* yr = Y + r * k;
    double* gr = g + r * k;
    // Multiplying by 1.0 is exact, so the unweighted sums keep their bits; the weighted
    // ones keep the same order of summation.
    const double v = row_weight ? row_weight[r] : 1.0;
    switch (loss) {
      case Loss::squared:
        for (std::size_t o = 0; o < k; ++o) {
          const double e = fr[o] - yr[o];
          gr[o] = v * e;
          total += v * (0.5 * e * e);
        }
        break;
      case Loss::softmax: {
        const double mx = *std::max_element(fr, fr + k);
        double sum = 0;
        for (std::size_t o = 0; o < k; ++o) sum += std::exp(fr[o] - mx);
        const double lse = mx + std::log(sum);
        for (std::size_t o = 0; o < k; ++o) {
          gr[o] = v * (std::exp(fr[o] - lse) - yr[o]);
          total -= v * (yr[o] * (fr[o] - lse));
        }
        break;
      }
      case Loss::logistic: {
        const double z = fr[0];
        gr[0] = v * (logistic(z) - yr[0]);
        // softplus(z) - y z, stable for large |z|
        total += v * ((z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z))) - yr[0] * z);
        break;
      }
    }
  }
  return total;
}

}  // namespace detail
}  // namespace gramfree::pathkernel

// Tests of the path-kernel engine from C++ (the Python tests hold the numpy reference): the
// batch schedule, the quadrature and root finding it relies on, and the decomposition's
// identity b + sum C + reg = f on small networks of every activation.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "gramfree/pathkernel.hpp"
#include "pathkernel/segments.hpp"

using namespace gramfree;
using namespace gramfree::pathkernel;

TEST_CASE("batch schedule: every epoch is a permutation, batches as scikit-learn's") {
  TrainConfig c;
  c.batch_size = 4;
  c.seed = 7;
  BatchSchedule s(10, c);
  std::vector<std::size_t> sizes, epoch;
  for (int t = 0; t < 6; ++t) {
    const auto& b = s.next();
    sizes.push_back(b.size());
    if (t < 3) epoch.insert(epoch.end(), b.begin(), b.end());
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2, 4, 4, 2});
  std::sort(epoch.begin(), epoch.end());
  for (std::size_t i = 0; i < 10; ++i) CHECK(epoch[i] == i);
  TrainConfig full;
  BatchSchedule f(5, full);
  CHECK(f.next() == std::vector<std::size_t>{0, 1, 2, 3, 4});
}

TEST_CASE("Gauss-Legendre on [0, 1] integrates degree 2n - 1 exactly") {
  for (int n = 1; n <= 8; ++n) {
    std::vector<double> x, w;
    detail::gauss_legendre_01(n, x, w);
    for (int deg = 0; deg <= 2 * n - 1; ++deg) {
      double q = 0;
      for (int j = 0; j < n; ++j) q += w[j] * std::pow(x[j], deg);
      CHECK(q == doctest::Approx(1.0 / (deg + 1)).epsilon(1e-14));
    }
  }
}

TEST_CASE("roots_in finds sign changes of polynomials, ascending") {
  // (s - 0.2)(s - 0.5)(s - 0.7) = s^3 - 1.4 s^2 + 0.59 s - 0.07
  auto r = detail::roots_in({-0.07, 0.59, -1.4, 1.0}, 0.0, 1.0);
  REQUIRE(r.size() == 3);
  CHECK(r[0] == doctest::Approx(0.2).epsilon(1e-13));
  CHECK(r[1] == doctest::Approx(0.5).epsilon(1e-13));
  CHECK(r[2] == doctest::Approx(0.7).epsilon(1e-13));
  CHECK(detail::roots_in({-0.07, 0.59, -1.4, 1.0}, 0.3, 0.6).size() == 1);
  CHECK(detail::roots_in({0.25, -1.0, 1.0}, 0.0, 1.0).empty());  // (s - 0.5)^2 touches zero
  CHECK(detail::roots_in({1.0}, 0.0, 1.0).empty());
}

namespace {
// weighted: sample weights in [0, 2), every fourth one 0.
double reconstruction_error(Activation act, Loss loss, std::size_t k, std::size_t batch,
                            bool weighted = false) {
  std::mt19937_64 gen(3);
  std::normal_distribution<double> normal;
  const std::size_t n = 20, d = 3, q = 4;
  Architecture arch{{d, 6, 5, k}, act, loss};
  std::vector<double> X(n * d), Y(n * k, 0.0), Q(q * d), w0(arch.n_params());
  for (double& v : X) v = normal(gen);
  for (double& v : Q) v = normal(gen);
  for (double& v : w0) v = 0.5 * normal(gen);
  for (std::size_t i = 0; i < n; ++i) {
    if (loss == Loss::squared)
      Y[i * k] = std::sin(X[i * d]);
    else if (loss == Loss::logistic)
      Y[i] = X[i * d] > 0;
    else
      Y[i * k + i % k] = 1.0;
  }
  TrainConfig c;
  c.learning_rate = 0.1;
  c.n_steps = 15;
  c.batch_size = batch;
  c.alpha = 0.01;
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i % 4 == 0 ? 0.0 : 1.0 + std::tanh(normal(gen));
  Dataset data{{X.data(), n, d}, {Y.data(), n, k}};
  if (weighted) data.weights = v.data();
  const Decomposition r = decompose(arch, c, data, w0, {Q.data(), q, d}, DecomposeConfig{});
  const TrainResult t = train(arch, c, data, w0);
  std::vector<double> f(q * k);
  predict(arch, t.params, {Q.data(), q, d}, {f.data(), q, k});
  double worst = 0, scale = 0;
  for (std::size_t a = 0; a < q; ++a)
    for (std::size_t o = 0; o < k; ++o) {
      double total = r.initial[a * k + o] + r.reg[a * k + o];
      for (std::size_t i = 0; i < n; ++i) {
        total += r.contributions[(a * n + i) * k + o];
        if (weighted && v[i] == 0) CHECK(r.contributions[(a * n + i) * k + o] == 0.0);
      }
      worst = std::max(worst, std::abs(total - f[a * k + o]));
      scale = std::max(scale, std::abs(f[a * k + o]));
      CHECK(r.final[a * k + o] == f[a * k + o]);  // replay reproduces training bit for bit
    }
  return worst / scale;
}
}  // namespace

TEST_CASE("decomposition reproduces the trained network") {
  for (Activation act : {Activation::tanh, Activation::relu, Activation::softplus, Activation::gelu,
                         Activation::identity}) {
    CAPTURE(to_string(act));
    CHECK(reconstruction_error(act, Loss::squared, 2, 0) < 1e-9);
    CHECK(reconstruction_error(act, Loss::softmax, 3, 7) < 1e-9);
    CHECK(reconstruction_error(act, Loss::logistic, 1, 6) < 1e-9);
    CHECK(reconstruction_error(act, Loss::squared, 2, 0, true) < 1e-9);
    CHECK(reconstruction_error(act, Loss::softmax, 3, 7, true) < 1e-9);
    CHECK(reconstruction_error(act, Loss::logistic, 1, 6, true) < 1e-9);
  }
}

TEST_CASE("zero queries decompose to nothing, and predict refuses a strided out") {
  // A review: decompose with zero query rows divided by zero (SIGFPE) in its chunking, and
  // predict wrote row 1 inside the padding of an out with a row stride.
  Architecture arch{{2, 3, 1}, Activation::tanh, Loss::squared};
  std::vector<double> X = {0.3, -0.2, 0.1, 0.5}, Y = {1, 0}, w0(arch.n_params(), 0.1);
  TrainConfig c;
  c.n_steps = 2;
  const Dataset data{{X.data(), 2, 2}, {Y.data(), 2, 1}};
  const Decomposition r =
      decompose(arch, c, data, w0, ConstMatrix<double>{X.data(), 0, 2}, DecomposeConfig{});
  CHECK(r.n_queries == 0);
  CHECK(r.contributions.empty());
  CHECK(r.reg.empty());
  CHECK(r.path_norm.size() == 2);
  Architecture two{{2, 3, 2}, Activation::tanh, Loss::squared};
  std::vector<double> w(two.n_params(), 0.1), out(2 * 5, -7.0);
  CHECK_THROWS_AS(predict(two, w, {X.data(), 2, 2}, {out.data(), 2, 2, 5}), std::invalid_argument);
  predict(two, w, {X.data(), 2, 2}, {out.data(), 2, 2, 2});
  CHECK(out[4] == -7.0);
}

TEST_CASE("unit sample weights train bit for bit as none") {
  Architecture arch{{2, 4, 3}, Activation::tanh, Loss::softmax};
  std::vector<double> X(20), Y(30, 0.0), w0(arch.n_params()), ones(10, 1.0);
  for (std::size_t e = 0; e < X.size(); ++e) X[e] = std::sin(1.0 + double(e));
  for (std::size_t i = 0; i < 10; ++i) Y[i * 3 + i % 3] = 1.0;
  for (std::size_t e = 0; e < w0.size(); ++e) w0[e] = 0.3 * std::cos(double(e));
  TrainConfig c;
  c.n_steps = 12;
  c.batch_size = 4;
  c.alpha = 0.1;
  Dataset data{{X.data(), 10, 2}, {Y.data(), 10, 3}};
  const TrainResult plain = train(arch, c, data, w0);
  data.weights = ones.data();
  const TrainResult unit = train(arch, c, data, w0);
  CHECK(plain.params == unit.params);
  CHECK(plain.loss_curve == unit.loss_curve);
}

TEST_CASE("bad input is refused with std::invalid_argument") {
  Architecture arch{{2, 3, 1}, Activation::tanh, Loss::squared};
  std::vector<double> X(8, 0.5), Y(4, 1.0), w0(arch.n_params(), 0.1);
  const Dataset data{{X.data(), 4, 2}, {Y.data(), 4, 1}};
  TrainConfig c;
  c.learning_rate = 0;
  CHECK_THROWS_AS(train(arch, c, data, w0), std::invalid_argument);
  c.learning_rate = 0.1;
  c.n_steps = 0;
  CHECK_THROWS_AS(train(arch, c, data, w0), std::invalid_argument);
  c.n_steps = 3;
  std::vector<double> short_w(3, 0.0);
  CHECK_THROWS_AS(train(arch, c, data, short_w), std::invalid_argument);
  Architecture bad{{2, 3, 1}, Activation::tanh, Loss::softmax};
  CHECK_THROWS_AS(train(bad, c, data, w0), std::invalid_argument);
  CHECK_THROWS_AS(activation_from_string("swish"), std::invalid_argument);
  std::vector<double> v(4, 1.0);
  Dataset weighted = data;
  weighted.weights = v.data();
  for (double bad : {-1.0, double(NAN), double(INFINITY)}) {
    v[2] = bad;
    CHECK_THROWS_WITH_AS(train(arch, c, weighted, w0), doctest::Contains("sample_weight"),
                         std::invalid_argument);
  }
  v.assign(4, 0.0);
  CHECK_THROWS_WITH_AS(train(arch, c, weighted, w0), "sample_weight: all weights are zero",
                       std::invalid_argument);
  X[3] = NAN;
  CHECK_THROWS_AS(train(arch, c, data, w0), std::invalid_argument);
}

TEST_CASE("the path-kernel API refuses null data, bad enums and targets with invalid_argument") {
  // A review: these segfaulted (null pointers) or trained in silence (bad enums, targets).
  const std::size_t n = 6, d = 2, k = 1;
  Architecture arch{{d, 3, k}, Activation::tanh, Loss::squared};
  std::vector<double> X(n * d, 0.5), Y(n * k, 0.25), w0(arch.n_params(), 0.1), out(n * k);
  TrainConfig c;
  c.learning_rate = 0.1;
  c.n_steps = 2;
  const Dataset good{{X.data(), n, d}, {Y.data(), n, k}};
  CHECK_THROWS_AS(train(arch, c, Dataset{{nullptr, n, d}, {Y.data(), n, k}}, w0),
                  std::invalid_argument);
  CHECK_THROWS_AS(train(arch, c, Dataset{{X.data(), n, d}, {nullptr, n, k}}, w0),
                  std::invalid_argument);
  CHECK_THROWS_AS(predict(arch, w0, {nullptr, n, d}, {out.data(), n, k}), std::invalid_argument);
  CHECK_THROWS_AS(predict(arch, w0, {X.data(), n, d}, {nullptr, n, k}), std::invalid_argument);
  CHECK_THROWS_AS(decompose(arch, c, good, w0, {nullptr, 2, d}, DecomposeConfig{}),
                  std::invalid_argument);
  DecomposeConfig infinite;
  infinite.tol = INFINITY;
  CHECK_THROWS_AS(decompose(arch, c, good, w0, {X.data(), 2, d}, infinite), std::invalid_argument);
  CHECK_THROWS_AS(
      tangent_kernel(arch, c, good, w0, 0, {nullptr, 2, d}, {X.data(), 2, d}, 0, false, out.data()),
      std::invalid_argument);
  CHECK_THROWS_AS(
      tangent_kernel(arch, c, good, w0, 0, {X.data(), 2, d}, {X.data(), 2, d}, 0, false, nullptr),
      std::invalid_argument);
  Architecture bad_activation{{d, 3, k}, static_cast<Activation>(42), Loss::squared};
  CHECK_THROWS_AS(train(bad_activation, c, good, w0), std::invalid_argument);
  Architecture bad_loss{{d, 3, k}, Activation::tanh, static_cast<Loss>(42)};
  CHECK_THROWS_AS(train(bad_loss, c, good, w0), std::invalid_argument);
  Architecture huge{{SIZE_MAX / 2, 2, 1}, Activation::tanh, Loss::squared};
  CHECK_THROWS_AS(validate(huge), std::invalid_argument);
  Architecture logistic{{d, 3, 1}, Activation::tanh, Loss::logistic};
  std::vector<double> five(n, 5.0);
  CHECK_THROWS_AS(train(logistic, c, Dataset{{X.data(), n, d}, {five.data(), n, 1}}, w0),
                  std::invalid_argument);
  Architecture softmax{{d, 3, 2}, Activation::tanh, Loss::softmax};
  std::vector<double> halves(n * 2, 0.25), w2(softmax.n_params(), 0.1);  // rows sum to 0.5
  CHECK_THROWS_AS(train(softmax, c, Dataset{{X.data(), n, d}, {halves.data(), n, 2}}, w2),
                  std::invalid_argument);
  CHECK_NOTHROW(train(arch, c, good, w0));
}

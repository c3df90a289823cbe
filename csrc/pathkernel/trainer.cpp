#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "pathkernel/replay.hpp"

namespace gramfree::pathkernel {

namespace {
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void check_data(const Architecture& arch, const Dataset& data) {
  if (data.X.data == nullptr && data.X.rows * data.X.cols > 0)
    throw std::invalid_argument("X: null data");
  if (data.Y.data == nullptr && data.Y.rows * data.Y.cols > 0)
    throw std::invalid_argument("y: null data");
  if (data.X.rows != data.Y.rows)
    throw std::invalid_argument("X and y: different numbers of rows (" +
                                std::to_string(data.X.rows) + " vs " + std::to_string(data.Y.rows) +
                                ")");
  if (data.X.cols != arch.n_inputs())
    throw std::invalid_argument("X: " + std::to_string(data.X.cols) +
                                " features, the network expects " +
                                std::to_string(arch.n_inputs()));
  if (data.Y.cols != arch.n_outputs())
    throw std::invalid_argument("y: " + std::to_string(data.Y.cols) + " columns, the network has " +
                                std::to_string(arch.n_outputs()) + " outputs");
  for (std::size_t e = 0; e < data.X.rows * data.X.cols; ++e)
    if (!std::isfinite(data.X.data[e])) throw std::invalid_argument("X: contains NaN or inf");
  for (std::size_t e = 0; e < data.Y.rows * data.Y.cols; ++e)
    if (!std::isfinite(data.Y.data[e])) throw std::invalid_argument("y: contains NaN or inf");
  // The classification losses' targets: probabilities (0/1, one-hot rows), else the loss
  // is not the one documented (a review trained logistic on y = 5 without a word).
  if (arch.loss != Loss::squared) {
    const std::size_t k = data.Y.cols;
    for (std::size_t i = 0; i < data.Y.rows; ++i) {
      double sum = 0;
      for (std::size_t o = 0; o < k; ++o) {
        const double v = data.Y.data[i * k + o];
        if (v < 0 || v > 1)
          throw std::invalid_argument("y: " + to_string(arch.loss) +
                                      " loss targets must lie in [0, 1], got " + std::to_string(v) +
                                      " at row " + std::to_string(i));
        sum += v;
      }
      if (arch.loss == Loss::softmax && std::abs(sum - 1.0) > 1e-9)
        throw std::invalid_argument("y: softmax loss targets must be one-hot rows (row " +
                                    std::to_string(i) + " sums to " + std::to_string(sum) + ")");
    }
  }
  if (data.weights) {
    bool any_positive = false;
    for (std::size_t i = 0; i < data.X.rows; ++i) {
      const double v = data.weights[i];
      if (!std::isfinite(v) || v < 0)
        throw std::invalid_argument("sample_weight: must be finite and >= 0, got " +
                                    std::to_string(v) + " at row " + std::to_string(i));
      any_positive = any_positive || v > 0;
    }
    if (!any_positive) throw std::invalid_argument("sample_weight: all weights are zero");
  }
}

}  // namespace

BatchSchedule::BatchSchedule(std::size_t n, const TrainConfig& c)
    : n_(n),
      batch_(c.batch_size == 0 || c.batch_size >= n ? n : c.batch_size),
      shuffle_(c.shuffle && batch_ < n),
      state_(c.seed),
      order_(n) {
  std::iota(order_.begin(), order_.end(), std::size_t(0));
  position_ = n_;  // start a new epoch on the first call
}

const std::vector<std::size_t>& BatchSchedule::next() {
  if (position_ >= n_) {
    position_ = 0;
    if (shuffle_) {
      for (std::size_t i = n_ - 1; i > 0; --i) {
        const unsigned __int128 wide = static_cast<unsigned __int128>(splitmix64(state_)) * (i + 1);
        std::swap(order_[i], order_[static_cast<std::size_t>(wide >> 64)]);
      }
    }
  }
  const std::size_t end = std::min(n_, position_ + batch_);
  current_.assign(order_.begin() + position_, order_.begin() + end);
  position_ = end;
  return current_;
}

namespace detail {

Replay::Replay(const Architecture& arch, const TrainConfig& config, const Dataset& data,
               const std::vector<double>& initial, const Options& options, std::size_t first_step)
    : arch_(arch),
      config_(config),
      data_(data),
      options_(options),
      schedule_(data.X.rows, config),
      step_(first_step),
      w_(initial) {
  validate(arch);
  validate(config, data.X.rows);
  check_data(arch, data);
  if (initial.size() != arch.n_params())
    throw std::invalid_argument("initial parameters: " + std::to_string(initial.size()) +
                                " values, the network has " + std::to_string(arch.n_params()));
  for (double v : initial)
    if (!std::isfinite(v)) throw std::invalid_argument("initial parameters: NaN or inf");
  if (first_step > config.n_steps)
    throw std::invalid_argument("first step " + std::to_string(first_step) + " is past n_steps");
  for (std::size_t t = 0; t < first_step; ++t) schedule_.next();  // the batches already seen
  wt_.assign(arch_, w_.data());
  if (data.weights) {
    weight_sum_ = 0;  // in index order: every replay sums the same way
    for (std::size_t i = 0; i < data.X.rows; ++i) weight_sum_ += data.weights[i];
    if (!std::isfinite(weight_sum_))
      throw std::invalid_argument("sample_weight: the weights' sum overflows; rescale them");
  }
}

namespace {
bool all_finite(const std::vector<double>& values) {
  for (double x : values)
    if (!std::isfinite(x)) return false;
  return true;
}
}  // namespace

void Replay::diverged() const {
  // At step 0 the weights are the finite start: a forward pass, loss or loss derivative
  // that overflows there is the data's size, which no learning rate changes (a review: y
  // times 1e160 was told to use a smaller learning_rate).
  bool forward_overflowed = !data_loss_finite_ || !all_finite(top_);
  for (const auto* layers : {&cache_.A, &cache_.Z})
    for (const auto& values : *layers)
      forward_overflowed = forward_overflowed || !all_finite(values);
  if (step_ == 0 && forward_overflowed)
    throw std::runtime_error(
        "training cannot start: the network's outputs or its loss at the starting weights "
        "overflow float64 (step 0); " +
        std::string(data_.weights ? "X, y or sample_weight is too large: standardise X and y, "
                                    "or rescale sample_weight (only its ratios change the "
                                    "model)"
                                  : "X or y is too large: standardise them"));
  throw std::runtime_error("training diverged at step " + std::to_string(step_) +
                           " (the loss or the parameters are no longer finite): use a "
                           "smaller learning_rate");
}

void Replay::compute() {
  try {
    compute_step();
  } catch (const std::invalid_argument&) {
    // The inputs and w_t were checked finite, so a non-finite value inside the step is an
    // overflow of the step's own products (the engine's input check caught it): the
    // training diverged. Any other invalid_argument is a real error and keeps its message.
    if (step_overflowed()) diverged();
    throw;
  }
}

bool Replay::step_overflowed() const {
  for (const auto* layers : {&cache_.A, &cache_.Z, &cache_.dA, &D_})
    for (const auto& values : *layers)
      if (!all_finite(values)) return true;
  return !all_finite(top_) || !all_finite(w_next_);
}

void Replay::compute_step() {
  const std::size_t d = arch_.n_inputs(), k = arch_.n_outputs(), L = arch_.n_layers();
  batch_ = schedule_.next();
  const std::size_t B = batch_.size();
  Xb_.resize(B * d);
  Yb_.resize(B * k);
  for (std::size_t r = 0; r < B; ++r) {
    std::copy_n(data_.X.data + batch_[r] * d, d, Xb_.data() + r * d);
    std::copy_n(data_.Y.data + batch_[r] * k, k, Yb_.data() + r * k);
  }
  // Sample weights scale each row's loss derivative (top_), so the factors D_, the
  // gradient and every replay's per-example share carry them, and divide the step by the
  // batch's expected weight B * wbar. Written B * (sum v) / n rather than B * mean(v):
  // full batch it is sum v exactly (integers: the repeated rows' count), unit weights B.
  const double* row_weight = nullptr;
  double batch_mass = double(B);
  if (data_.weights) {
    Wb_.resize(B);
    for (std::size_t r = 0; r < B; ++r) Wb_[r] = data_.weights[batch_[r]];
    row_weight = Wb_.data();
    batch_mass = double(B) * weight_sum_ / double(data_.X.rows);
    // Weights near float64's top overflow B * sum v before the division (the step would
    // silently become 0: no training); the mean first is finite there.
    if (!std::isfinite(batch_mass)) batch_mass = double(B) * (weight_sum_ / double(data_.X.rows));
  }
  forward(arch_, w_.data(), wt_, Xb_.data(), B, cache_, options_);
  top_.resize(B * k);
  loss_ = loss_and_derivative(arch_.loss, cache_.Z[L - 1].data(), Yb_.data(), B, k, top_.data(),
                              row_weight);
  data_loss_finite_ = std::isfinite(loss_);
  for (double g : top_)
    if (!std::isfinite(g)) diverged();
  backward(arch_, w_.data(), cache_, top_.data(), 1, D_, options_);

  step_scale_ = config_.learning_rate / batch_mass;
  const double scale = step_scale_;
  double penalty = 0;
  w_next_.resize(w_.size());
  delta_.resize(w_.size());
  for (std::size_t l = 0; l < L; ++l) {
    const std::size_t fi = arch_.sizes[l], fo = arch_.sizes[l + 1];
    // Sum over the batch of A-row outer D-row, (A^T)(D^T)^T, in blocks of rows: the engine
    // has no blocking of the reduction, so a short one stays in cache (a one-off timing,
    // not a benchmark, showed 256-row blocks faster than 10000 rows). Fixed block order.
    constexpr std::size_t kRows = 256;
    grad_.assign(fi * fo, 0.0);
    part_.resize(fi * fo);
    for (std::size_t r0 = 0; r0 < B; r0 += kRows) {
      const std::size_t nr = std::min(kRows, B - r0);
      At_.resize(fi * nr);
      Dt_.resize(fo * nr);
      transpose(cache_.A[l].data() + r0 * fi, nr, fi, At_.data());
      transpose(D_[l].data() + r0 * fo, nr, fo, Dt_.data());
      gemm_nt(At_.data(), fi, Dt_.data(), fo, nr, part_.data(), options_);
      for (std::size_t e = 0; e < fi * fo; ++e) grad_[e] += part_[e];
    }
    const std::size_t wo = arch_.weight_offset(l), bo = arch_.bias_offset(l);
    for (std::size_t e = 0; e < fi * fo; ++e) {
      const double w = w_[wo + e];
      penalty += w * w;
      w_next_[wo + e] = w - scale * (grad_[e] + config_.alpha * w);
    }
    part_.assign(fo, 0.0);  // bias gradient: row sums of D, read row by row
    for (std::size_t r = 0; r < B; ++r)
      for (std::size_t j = 0; j < fo; ++j) part_[j] += D_[l][r * fo + j];
    for (std::size_t j = 0; j < fo; ++j) w_next_[bo + j] = w_[bo + j] - scale * part_[j];
  }
  loss_ = (loss_ + 0.5 * config_.alpha * penalty) / batch_mass;
  for (std::size_t e = 0; e < w_.size(); ++e) {
    delta_[e] = w_next_[e] - w_[e];
    if (!std::isfinite(w_next_[e])) loss_ = NAN;
  }
  if (!std::isfinite(loss_)) diverged();
}

void Replay::commit() {
  w_.swap(w_next_);
  wt_.assign(arch_, w_.data());
  ++step_;
}

}  // namespace detail

TrainResult train(const Architecture& arch, const TrainConfig& config, const Dataset& data,
                  const std::vector<double>& initial, const Options& options,
                  const StepCallback& callback, std::size_t checkpoint_every) {
  detail::Replay replay(arch, config, data, initial, options);
  detail::StepPoller poller(options);
  TrainResult result;
  result.loss_curve.reserve(config.n_steps);
  while (!replay.done()) {
    poller.poll();
    replay.compute();
    result.loss_curve.push_back(replay.loss());
    if (callback) callback(replay.step(), replay.loss());
    replay.commit();
    if (checkpoint_every > 0 && replay.step() % checkpoint_every == 0 && !replay.done())
      result.checkpoints.push_back(replay.params());
  }
  result.params = replay.params();
  return result;
}

void predict(const Architecture& arch, const std::vector<double>& params,
             ConstMatrix<double> queries, Matrix<double> out, const Options& options) {
  validate(arch);
  if (params.size() != arch.n_params())
    throw std::invalid_argument("parameters: wrong count for this network");
  if (queries.cols != arch.n_inputs())
    throw std::invalid_argument("X: " + std::to_string(queries.cols) +
                                " features, the network expects " +
                                std::to_string(arch.n_inputs()));
  if (out.rows != queries.rows || out.cols != arch.n_outputs())
    throw std::invalid_argument("out: wrong shape");
  // The rows are written contiguously: a larger stride put row 1 inside row 0's padding
  // (a review), as the other operations refuse it (Matrix::ld).
  if (out.ld != 0 && out.ld != out.cols)
    throw std::invalid_argument(
        "out: a row stride other than its columns is taken by "
        "kernel_block only");
  if (queries.rows == 0) return;
  if (queries.data == nullptr) throw std::invalid_argument("X: null data");
  if (out.data == nullptr) throw std::invalid_argument("out: null data");
  for (std::size_t e = 0; e < queries.rows * queries.cols; ++e)
    if (!std::isfinite(queries.data[e])) throw std::invalid_argument("X: contains NaN or inf");
  for (double w : params)
    if (!std::isfinite(w)) throw std::invalid_argument("parameters: contain NaN or inf");
  detail::TransposedWeights wt;
  wt.assign(arch, params.data());
  detail::ForwardCache cache;
  detail::forward(arch, params.data(), wt, queries.data, queries.rows, cache, options);
  std::copy(cache.Z.back().begin(), cache.Z.back().end(), out.data);
}

}  // namespace gramfree::pathkernel

// One step of plain gradient descent, exposed piece by piece so that training and every later
// replay of it (decomposition, kernels) run the very same arithmetic and so the same bits.
#pragma once

#include <chrono>
#include <vector>

#include "pathkernel/network.hpp"

namespace gramfree::pathkernel::detail {

// Polls options.interrupt from the calling thread, at most every 20 ms (between steps).
class StepPoller {
 public:
  explicit StepPoller(const Options& o) : o_(o), last_(std::chrono::steady_clock::now()) {}
  void poll() {
    if (!o_.interrupt) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(20)) return;
    last_ = now;
    if (o_.interrupt()) throw interrupted();
  }

 private:
  const Options& o_;
  std::chrono::steady_clock::time_point last_;
};

class Replay {
 public:
  Replay(const Architecture& arch, const TrainConfig& config, const Dataset& data,
         const std::vector<double>& params, const Options& options, std::size_t first_step = 0);

  std::size_t step() const { return step_; }  // t: params() is w_t
  bool done() const { return step_ >= config_.n_steps; }
  const TrainConfig& config() const { return config_; }
  const std::vector<double>& params() const { return w_; }
  const TransposedWeights& transposed() const { return wt_; }

  // Forward and backward of step t's batch at w_t; fills batch(), cache(), factors(),
  // loss(), next() = w_{t+1} and delta() = w_{t+1} - w_t. Throws std::runtime_error when the
  // loss or the new parameters are not finite.
  void compute();
  // w_t <- w_{t+1}.
  void commit();

  const std::vector<std::size_t>& batch() const { return batch_; }
  const ForwardCache& cache() const { return cache_; }
  // D[l]: the per-example loss gradient's factor at layer l (B x sizes[l+1]); the example's
  // gradient of W_l is A[l]^T-row outer D[l]-row, of b_l the D[l] row.
  const std::vector<std::vector<double>>& factors() const { return D_; }
  double loss() const { return loss_; }
  const std::vector<double>& next() const { return w_next_; }
  const std::vector<double>& delta() const { return delta_; }
  double learning_rate() const { return config_.learning_rate; }
  // lr / (B wbar) of the step compute() made (lr / B without sample weights): Delta_t =
  // -step_scale() * (sum of the batch's weighted loss gradients + alpha W_t).
  double step_scale() const { return step_scale_; }
  double alpha() const { return config_.alpha; }

 private:
  void compute_step();
  [[noreturn]] void diverged() const;
  // Whether any value the current step computed so far is NaN or infinite.
  bool step_overflowed() const;

  const Architecture& arch_;
  TrainConfig config_;
  Dataset data_;
  Options options_;
  BatchSchedule schedule_;
  std::size_t step_ = 0;
  std::vector<double> w_, w_next_, delta_;
  TransposedWeights wt_;
  std::vector<std::size_t> batch_;
  std::vector<double> Xb_, Yb_, Wb_, top_, grad_, part_, At_, Dt_;
  ForwardCache cache_;
  std::vector<std::vector<double>> D_;
  double loss_ = 0;
  bool data_loss_finite_ = true;  // the batch's loss before the penalty (diverged())
  double weight_sum_ = 0;         // sum of the n sample weights (unused without weights)
  double step_scale_ = 0;
};

}  // namespace gramfree::pathkernel::detail

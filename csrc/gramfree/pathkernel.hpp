// Public C++ API of the path-kernel engine: multilayer perceptrons trained by plain gradient
// descent, and the exact decomposition of their predictions over the training examples.
//
// The maths (DESIGN.md, "The path kernel"): with w_{t+1} = w_t + Delta_t, the change of the
// network's output at a query x over one step is exactly
//     f(x; w_{t+1}) - f(x; w_t) = gbar_t(x) . Delta_t,   gbar_t(x) = int_0^1 grad f(x; w_t + s
//     Delta_t) ds,
// and Delta_t = -(lr / (B wbar)) [sum_{i in batch} v_i grad_w loss_i(w_t) + alpha W_t], with
// v_i the example's sample weight (1 without weights) and wbar the mean of all n weights
// (1 without). So every training example's share of the step is
// -(lr / (B wbar)) v_i gbar_t(x) . grad loss_i(w_t), and weight decay's share belongs to no
// example. Full batch, this is gradient descent on (sum_i v_i loss_i + alpha/2 |W|^2) / sum_i v_i,
// so integer weights train as the data with rows repeated; a mini-batch's step is an unbiased
// estimate of that one. Replay::step_scale() is lr / (B wbar). For a dense layer with bias the
// gradient inner product of two inputs is (a . a' + 1)(delta . delta'): the engine works in that
// factored form and never forms per-example gradients (n x P) nor the n x n kernel.
//
// Everything here is float64: the decomposition is meant to hold to 1e-9 relative.
// Training is deterministic (the batch order comes from a seeded generator specified below and
// every product has a fixed summation order), so replaying it from the initial weights gives
// the same trajectory bit for bit; that is how the engine recovers w_t without storing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gramfree/gramfree.hpp"

namespace gramfree::pathkernel {

enum class Activation { identity, relu, tanh, softplus, gelu };
enum class Loss {
  squared,   // (1 / 2B) sum_i ||f(x_i) - y_i||^2
  softmax,   // (1 / B) sum_i -log softmax(f(x_i))[y_i], Y one-hot, >= 2 outputs
  logistic,  // (1 / B) sum_i -[y log s(f) + (1 - y) log(1 - s(f))], one output, y in {0, 1}
};           // with sample weights v: sum_i v_i loss_i / (B wbar), wbar the mean of all n weights

Activation activation_from_string(const std::string& name);  // throws std::invalid_argument
Loss loss_from_string(const std::string& name);
std::string to_string(Activation a);
std::string to_string(Loss l);

// Layer widths [d, h_1, ..., h_L, k]; the hidden layers use `activation`, the output is the
// pre-activation f (the loss applies its own link). Parameters are one flat vector, layer by
// layer: W_l (fan_in x fan_out, row-major, as scikit-learn's coefs_) then b_l (fan_out).
struct Architecture {
  std::vector<std::size_t> sizes;
  Activation activation = Activation::tanh;
  Loss loss = Loss::squared;

  std::size_t n_layers() const { return sizes.size() - 1; }
  std::size_t n_inputs() const { return sizes.front(); }
  std::size_t n_outputs() const { return sizes.back(); }
  std::size_t n_params() const;
  std::size_t weight_offset(std::size_t layer) const;  // index of W_layer[0, 0]
  std::size_t bias_offset(std::size_t layer) const;    // index of b_layer[0]
};
void validate(const Architecture& arch);

// Plain gradient descent: w <- w - lr * (grad of the batch loss + (alpha / (B wbar)) W), no
// momentum (wbar: the mean sample weight, 1 without weights; see the top of this file).
// Batches: batch_size == 0 or >= n is full batch (every step sees all n examples in index
// order). Otherwise each epoch is a permutation of 0..n-1 (when shuffle) cut into consecutive
// batches of batch_size, the last one smaller when batch_size does not divide n (as
// scikit-learn's MLP). The permutation is a Fisher-Yates shuffle driven by splitmix64 seeded
// with `seed` (one stream for the whole run; the j-th draw for position i is
// floor(u64 * (i + 1) / 2^64)).
struct TrainConfig {
  double learning_rate = 0.01;
  std::size_t n_steps = 100;
  std::size_t batch_size = 0;
  double alpha = 0.0;  // L2 penalty on the weights (not the biases), scikit-learn's convention
  std::uint64_t seed = 0;
  bool shuffle = true;
};
void validate(const TrainConfig& config, std::size_t n_samples);

// The batch indices of every step, in order, computed on demand.
class BatchSchedule {
 public:
  BatchSchedule(std::size_t n_samples, const TrainConfig& config);
  // Indices of the next step's batch (valid until the next call).
  const std::vector<std::size_t>& next();

 private:
  std::size_t n_, batch_, position_ = 0;
  bool shuffle_;
  std::uint64_t state_;
  std::vector<std::size_t> order_, current_;
};

struct Dataset {
  ConstMatrix<double> X;  // n x d
  ConstMatrix<double> Y;  // n x k targets (one-hot for softmax, 0/1 for logistic)
  // n sample weights, finite, >= 0, not all zero; nullptr: unweighted (every weight 1).
  const double* weights = nullptr;
};

// Called once per step with (step, batch loss). To stop early, set options.interrupt.
using StepCallback = std::function<void(std::size_t step, double loss)>;

struct TrainResult {
  std::vector<double> params;      // w_T
  std::vector<double> loss_curve;  // batch loss at w_t, t = 0..T-1
  // w_c, w_2c, ... (c = checkpoint_every, steps < T): replay can start at any of them.
  std::vector<std::vector<double>> checkpoints;
};

// Throws std::invalid_argument on bad input, std::runtime_error when the loss becomes
// non-finite (a learning rate too large), gramfree::interrupted when options.interrupt says.
TrainResult train(const Architecture& arch, const TrainConfig& config, const Dataset& data,
                  const std::vector<double>& initial_params, const Options& options = {},
                  const StepCallback& callback = {}, std::size_t checkpoint_every = 0);

// out[q, k] = f(queries; params)
void predict(const Architecture& arch, const std::vector<double>& params,
             ConstMatrix<double> queries, Matrix<double> out, const Options& options = {});

struct DecomposeConfig {
  int n_nodes = 4;         // Gauss-Legendre nodes per segment (1: start of step only, TracIn)
  double tol = 1e-12;      // per-step residual allowed, relative to max_q |f_t(x_q)|
  int max_refine = 8;      // halvings of a segment the self-check may add (0: none)
  bool self_only = false;  // queries are the training set; only C[i, i] (self-influence)
  // Steps first_step .. last_step - 1 only (last_step 0: to the end); the parameters passed
  // are then w_first_step (a checkpoint). Ranges add up: contributions are per step.
  std::size_t first_step = 0, last_step = 0;
};

struct Decomposition {
  std::size_t n_queries = 0, n_train = 0, n_outputs = 0;
  std::vector<double> initial;        // f(x_q; w_0)                       [q, k]
  std::vector<double> final;          // f(x_q; w_T), recomputed           [q, k]
  std::vector<double> final_params;   // w_T as the replay reached it      [P]
  std::vector<double> contributions;  // C[q, i, o] (self_only: C[i, i, o]) [q, n, k] or [n, k]
  // Weight decay's share [q, k]. With self_only and mini-batches, the share of example i's
  // own steps only (those whose batch holds it), not of every step as for queries.
  std::vector<double> reg;
  // sqrt(sum_t lr/(B wbar) ||v_i grad loss_i(w_t)||^2) over i's steps: the norm of what
  // the example pushed with, its weight included, so contribution / path_norm does not
  // depend on the weight (a row of weight m scores as each of m repeated copies would). [n]
  std::vector<double> path_norm;
  double worst_step_residual = 0;  // max over steps of the self-check residual, relative
  double worst_step_residual_before_refine = 0;
  std::size_t refined_segments = 0;  // (query, step) pairs that needed more nodes
  std::size_t relu_pieces = 0;       // extra pieces from ReLU switching points
};

Decomposition decompose(const Architecture& arch, const TrainConfig& config, const Dataset& data,
                        const std::vector<double>& initial_params, ConstMatrix<double> queries,
                        const DecomposeConfig& dconfig, const Options& options = {});

// Tangent kernel at w_step (first_step <= step <= T): out[a, b, o] = grad f_o(A_a) . grad f_o(B_b).
// With `path` set, Domingos' path kernel instead: sum_{t < T} lr * (tangent kernel at w_t).
// params are w_first_step (w_0 or a checkpoint). replayed (if not null) receives the
// parameters the replay reached: w_step, or with `path` w_T, which the caller compares with
// the recorded ones (a changed training set or checkpoint replays to other weights).
void tangent_kernel(const Architecture& arch, const TrainConfig& config, const Dataset& data,
                    const std::vector<double>& params, std::size_t first_step,
                    ConstMatrix<double> A, ConstMatrix<double> B, std::size_t step, bool path,
                    double* out, const Options& options = {},
                    std::vector<double>* replayed = nullptr);

}  // namespace gramfree::pathkernel

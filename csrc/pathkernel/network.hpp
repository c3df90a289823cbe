// Internal building blocks of the path-kernel engine: dense products, activations, the batched
// forward and backward passes of an MLP, and the loss derivatives. float64 throughout.
#pragma once

#include <cstddef>
#include <vector>

#include "gramfree/pathkernel.hpp"

namespace gramfree::pathkernel::detail {

// C[m, n] = A[m, p] B[n, p]^T through the core's tiled engine (linear kernel block), whose
// summation order is fixed: the same inputs give the same bits on any number of threads,
// which deterministic replay relies on. Empty operands give zeros.
void gemm_nt(const double* A, std::size_t m, const double* B, std::size_t n, std::size_t p,
             double* C, const Options& options);

// out[cols, rows] = in[rows, cols]^T
void transpose(const double* in, std::size_t rows, std::size_t cols, double* out);

double activate(Activation a, double z);
double activation_derivative(Activation a, double z);

// Weights of every layer, transposed (fan_out x fan_in), as gemm_nt wants them.
struct TransposedWeights {
  std::vector<std::vector<double>> Wt;
  void assign(const Architecture& arch, const double* params);
};

// Inputs and pre-activations of every layer for `rows` inputs:
//   A[l]: rows x sizes[l] (A[0] the inputs), Z[l]: rows x sizes[l+1] (Z.back() the output f).
// Rows may sit at different points of a segment w + s_r * Delta (`s` given): then
//   Z[l] = A[l] W + s_r (A[l] dW) + b + s_r db,
// computed with two products instead of a parameter vector per row.
struct ForwardCache {
  std::size_t rows = 0;
  std::vector<std::vector<double>> A, Z;
  std::vector<std::vector<double>> dA;  // dA[l] = activation'(Z[l]) for the hidden layers
};

// a[i] = act(z[i]) and da[i] = act'(z[i]) in one pass (tanh's derivative from its value).
void activate_all(Activation act, const double* z, std::size_t count, double* a, double* da);

void forward(const Architecture& arch, const double* params, const TransposedWeights& wt,
             const double* X, std::size_t rows, ForwardCache& cache, const Options& options,
             const double* delta = nullptr, const TransposedWeights* dwt = nullptr,
             const double* s = nullptr);

// Backpropagates top[rows * rep, k] (row r * rep + j belongs to input row r) through the
// network: D[l] (rows * rep x sizes[l+1]) is d(top . f) / dZ[l]. rep = 1 with the loss
// derivative on top gives the per-example loss gradients' factors; rep = k with the identity
// on top gives each output's gradient factors. Along a segment (s given) W is W + s_r dW.
void backward(const Architecture& arch, const double* params, const ForwardCache& cache,
              const double* top, std::size_t rep, std::vector<std::vector<double>>& D,
              const Options& options, const double* delta = nullptr, const double* s = nullptr);

// Loss of each batch row's output f against Y, summed (not averaged), and its derivative
// with respect to f: out_grad[r, k]. With row_weight, row r's loss and derivative are both
// multiplied by row_weight[r]; without, by nothing (a weight of 1 gives the same bits, x * 1
// being exact).
double loss_and_derivative(Loss loss, const double* f, const double* Y, std::size_t rows,
                           std::size_t k, double* out_grad, const double* row_weight = nullptr);

}  // namespace gramfree::pathkernel::detail

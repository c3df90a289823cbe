// Public C++ API of the gramfree core: fused, Gram-free kernel operators.
// Usable without Python; every function throws std::invalid_argument on bad input,
// including an output whose memory overlaps an input it reads (the result needs memory of
// its own; triangular_solve_lower's X is solved in place, apart from L).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>

#include "gramfree/kernel_table.hpp"

namespace gramfree {

// A kernel and its parameters; each kernel uses those its row of gramfree/kernel_table.hpp
// names. Every kernel is an epilogue of the one tiled engine (csrc/kernels/engine.hpp),
// chosen at compile time inside the engine's loops.
struct KernelSpec {
  KernelKind kind = KernelKind::gaussian;
  double gamma = 1.0;
  double coef0 = 1.0;
  int degree = 3;
  double length_scale = 1.0;
};

// Throws std::invalid_argument when a parameter the kernel uses is out of its domain (the
// table's); the others are not looked at.
void validate(const KernelSpec& spec);
std::string to_string(KernelKind kind);
KernelKind kernel_kind_from_string(const std::string& name);  // throws std::invalid_argument

// Row-major, C-contiguous views; the core never copies or owns the caller's data.
template <class T>
struct ConstMatrix {
  const T* data = nullptr;
  std::size_t rows = 0, cols = 0;
};
template <class T>
struct Matrix {
  T* data = nullptr;
  std::size_t rows = 0, cols = 0;
  // Elements from one row's start to the next; 0 means cols (contiguous). Only the stored
  // blocks (kernel_block, kernel_block_widened) take a larger stride -- a block written
  // into part of a larger matrix, e.g. one triangle of a symmetric one, block row by block
  // row; the other operations refuse it.
  std::size_t ld = 0;
};

struct Options {
  int n_threads = 0;  // 0: OpenMP's default
  // Polled on the calling thread every few milliseconds of work; returning true stops
  // the call, which then throws gramfree::interrupted. Must not throw.
  std::function<bool()> interrupt;
};

// Thrown when Options::interrupt asked the call to stop.
struct interrupted : std::exception {
  const char* what() const noexcept override { return "gramfree: interrupted"; }
};

// The operators below refuse empty inputs (n, m, d or k of 0) and NaN or infinity in them.

// out[n,k] = K(X,Z) @ V              X[n,d], Z[m,d], V[m,k]
template <class T>
void kernel_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                   Matrix<T> out, const Options& options = {});

// out[m,k] = K(X,Z)^T @ U            U[n,k]
template <class T>
void kernel_rmatvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> U,
                    Matrix<T> out, const Options& options = {});

// out[m,k] = K(X,Z)^T diag(w) (K(X,Z) @ V) in one pass over X (the Nystrom-PCG step);
// row_weights: n values w, or nullptr for w = 1.
template <class T>
void kernel_normal_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                          ConstMatrix<T> V, Matrix<T> out, const Options& options = {},
                          const T* row_weights = nullptr);

// out[n,m] = K(X,Z), rows out.ld apart (out.ld >= m, or 0 for m)
template <class T>
void kernel_block(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, Matrix<T> out,
                  const Options& options = {});

// out[n,m] = K(X,Z) computed in float32 and stored widened to float64: the values of
// kernel_block<float>, for a float64 product on them without a float32 block in memory.
void kernel_block_widened(const KernelSpec& spec, ConstMatrix<float> X, ConstMatrix<float> Z,
                          Matrix<double> out, const Options& options = {});

// out[i] = K(X_i, X_i), n values: the kernel's formula at the metric of a point with itself,
// no pairs evaluated; in double whatever T, like a reduction.
template <class T>
void kernel_diagonal(const KernelSpec& spec, ConstMatrix<T> X, double* out);

// out[n, k*d] (row i holds the k gradients, each of length d, one after another):
// out[i, c*d + l] = d/dX[i,l] (K(X,Z) @ V)[i,c]
// Every kernel with a gradient in the table (all but arccos1); at x == z the
// non-differentiable kernels (laplacian, matern12) use the zero subgradient.
template <class T>
void kernel_grad_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                        ConstMatrix<T> V, Matrix<T> out, const Options& options = {});

// X := L^-1 X, or L^-T X with trans, in place, for the lower triangle of L. Column-major,
// as LAPACK's trsm (side left, lower, non-unit): L[r + c*lda] is n x n, X[r + q*ldx] is
// n x k; the strict upper triangle of L is not read. Meant for few right-hand sides (k up
// to a few dozen), where it runs near the GEMM rate; any k is solved. Throws
// std::invalid_argument for lda or ldx < n, or a null pointer with n * k > 0. A zero on
// L's diagonal gives infinities, as LAPACK's trsm (the caller checks first).
template <class T>
void triangular_solve_lower(const T* L, std::size_t lda, std::size_t n, T* X, std::size_t ldx,
                            std::size_t k, bool trans, const Options& options = {});

// out (M x k, row-major, float64) = K^T S (K V - 1 z^T) for a kernel block K held in memory:
// K[i * ldk + m] (n x M, float32 or float64 values; arithmetic in float64), V (M x k,
// row-major), S row-local: per row i, with P (n x k, row-major probabilities),
// w_i (diag p_i - p_i p_i^T), the softmax's curvature; with P null, w_i (a weighted normal
// product K^T diag(w) K V; z is then not read). z: k values, or null for zero. One pass
// over K (the Newton-CG logistic solver's Hessian product), with a k x M float64
// accumulator per thread. Throws std::invalid_argument for ldk < max(M, 1), a negative
// n_threads or a null pointer where data is read; n = 0 gives zeros.
template <class T>
void curvature_product(const T* K, std::size_t ldk, std::size_t n, std::size_t M, const double* V,
                       std::size_t k, const double* w, const double* P, const double* z,
                       double* out, const Options& options = {});

// The same product over a subset of K's n rows, in a given order (repeats allowed): the
// n_rows indices rows[0..n_rows) into K, with w and P of n_rows rows each, row j of them
// going with K's row rows[j] (the logistic solver's sampled Hessian, without copying the
// rows out of K). Also throws std::invalid_argument for an index outside [0, n).
template <class T>
void curvature_product_rows(const T* K, std::size_t ldk, std::size_t n, std::size_t M,
                            const std::int64_t* rows, std::size_t n_rows, const double* V,
                            std::size_t k, const double* w, const double* P, const double* z,
                            double* out, const Options& options = {});

// Instruction-set dispatch: chosen once from CPUID, overridable by GRAMFREE_SIMD.
enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2 };
SimdLevel detected_simd_level();       // the best the processor supports
SimdLevel simd_level();                // the one in use
void set_simd_level(SimdLevel level);  // throws std::invalid_argument if unsupported here
std::string to_string(SimdLevel level);
SimdLevel simd_level_from_string(const std::string& name);

int max_threads();     // what OpenMP will use when Options::n_threads == 0
bool cuda_compiled();  // the CUDA kernels were built into this library

}  // namespace gramfree

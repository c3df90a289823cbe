// The contract between the dispatcher (operators.cpp, baseline flags) and the tiled engine,
// which is compiled once per instruction set (engine_scalar/avx2/avx512.cpp).
// Plain data only: nothing here may instantiate a template function, because an inline
// function emitted by the AVX-512 translation unit could be picked by the linker for all.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gramfree/kernel_table.hpp"

namespace gramfree::detail {

// What is applied to each tile of inner products / distances before it leaves registers:
// a kernel of the table (gramfree/kernel_table.hpp) or, for the fused gradients, its
// derivative in the metric value (operators.cpp).
struct Epilogue {
  KernelKind kind = KernelKind::gaussian;
  bool slope = false;  // dk/ds instead of k; only kernels whose gradient is fused have one
  // The Gaussian by the expansion |x|^2 + |z|^2 - 2<x,z> of its squared distance (a GEMM);
  // without it, |x - z|^2 summed directly, for data whose offset from the centre is large
  // next to the bandwidth, where the expansion would lose digits.
  bool expand = false;
};

// The one kernel the engine may expand: smooth in |x-z|^2, so the expansion's error near
// x == z stays small, where a square root (Matern, the Euclidean Laplacian) would amplify it.
inline constexpr KernelKind kExpandable = KernelKind::gaussian;

template <class T>
struct EngineArgs {
  Epilogue epilogue;
  T gamma = 1, coef0 = 1, length_scale = 1;
  int degree = 1;
  const T* X = nullptr;  // n x d
  std::size_t n = 0;
  const T* Z = nullptr;  // m x d
  std::size_t m = 0;
  std::size_t d = 0;
  const T* V = nullptr;  // m x k; nullptr: store K(X,Z) itself into out (n x m)
  std::size_t k = 0;
  T* out = nullptr;     // n x k (or n x m)
  std::size_t ldo = 0;  // stored block only: row stride of out / out_wide (0: m)
  // Stored block only, T = float: K(X,Z) widened into this n x m float64 array in place of
  // out (float32 kernel values for a float64 product, with no float32 block in memory).
  double* out_wide = nullptr;
  bool accumulate = false;   // out += instead of out =
  const T* shift = nullptr;  // d values subtracted from every row while packing, or nullptr
  int n_threads = 1;
  bool (*poll)(void*) = nullptr;  // called from thread 0 between tiles; true: stop
  void* poll_ctx = nullptr;
  T* workspace = nullptr;  // 64-byte aligned, workspace_elems(args) elements
};

// A dense product C (n x k) = op(A) B (or +=), op(A) = A (n x p, row stride lda) or, with
// trans_a, the transpose of A (p x n, row stride lda); B is p x k, C n x k, both contiguous.
// For products with a stored kernel block (the normal operator's strips) at the same
// register-blocked speed as the fused engine, without a BLAS.
template <class T>
struct GemmArgs {
  const T* A = nullptr;
  std::size_t lda = 0;
  bool trans_a = false;
  std::size_t n = 0, p = 0, k = 0;
  const T* B = nullptr;
  T* C = nullptr;
  bool accumulate = false;
  int n_threads = 1;
  T* workspace = nullptr;  // 64-byte aligned, gemm_workspace(args) elements
};

// A triangular solve in place, L X = B or (trans) L^T X = B, for lower-triangular L:
// column-major as LAPACK, L[r + c lda] (n x n, the strict upper triangle not read) and
// X[r + q ldx] (n x k). For few right-hand sides (trsm_engine.hpp).
template <class T>
struct TrsmArgs {
  const T* L = nullptr;
  std::size_t lda = 0;
  std::size_t n = 0;
  T* X = nullptr;
  std::size_t ldx = 0;
  std::size_t k = 0;
  bool trans = false;
  int n_threads = 1;
  T* workspace = nullptr;  // 64-byte aligned, trsm_workspace(args) elements
};

// out (M x k, row-major) = K^T S (K V - 1 z^T) for a kernel block K held in memory (n x M,
// row stride ldk, float32 or float64 values), in float64 arithmetic and one pass over K
// (curvature_engine.hpp). S per row i: with P, w_i (diag p_i - p_i p_i^T) (the softmax's
// curvature, P n x k row-major); without, w_i (z is then not read).
template <class T>
struct CurvatureArgs {
  const T* K = nullptr;
  std::size_t ldk = 0, n = 0, M = 0;   // n: the rows the product runs over
  const std::int64_t* rows = nullptr;  // n indices into K's rows, or nullptr: rows 0..n-1
  const double* VT = nullptr;          // k x M: V transposed, contiguous
  std::size_t k = 0;
  const double* w = nullptr;  // n
  const double* P = nullptr;  // n x k, or nullptr
  const double* z = nullptr;  // k, or nullptr (zero)
  double* out = nullptr;      // M x k
  int n_threads = 1;
  double* workspace = nullptr;  // 64-byte aligned, curvature_workspace(args) doubles
};

// Per instruction set: how much workspace a call needs, and the call itself
// (returns 0, or 1 when poll asked to stop).
struct EngineTable {
  const char* name;
  std::size_t (*workspace_f32)(const EngineArgs<float>&);
  int (*run_f32)(const EngineArgs<float>&);
  std::size_t (*workspace_f64)(const EngineArgs<double>&);
  int (*run_f64)(const EngineArgs<double>&);
  std::size_t (*gemm_workspace_f32)(const GemmArgs<float>&);
  int (*gemm_f32)(const GemmArgs<float>&);
  std::size_t (*gemm_workspace_f64)(const GemmArgs<double>&);
  int (*gemm_f64)(const GemmArgs<double>&);
  std::size_t (*trsm_workspace_f32)(const TrsmArgs<float>&);
  int (*trsm_f32)(const TrsmArgs<float>&);
  std::size_t (*trsm_workspace_f64)(const TrsmArgs<double>&);
  int (*trsm_f64)(const TrsmArgs<double>&);
  std::size_t (*curvature_workspace_f32)(const CurvatureArgs<float>&);
  int (*curvature_f32)(const CurvatureArgs<float>&);
  std::size_t (*curvature_workspace_f64)(const CurvatureArgs<double>&);
  int (*curvature_f64)(const CurvatureArgs<double>&);
};

extern const EngineTable engine_scalar;
extern const EngineTable engine_avx2;
extern const EngineTable engine_avx512;

}  // namespace gramfree::detail

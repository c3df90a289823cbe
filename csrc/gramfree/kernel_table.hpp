// The kernels of gramfree, one row each. Everything that lists kernels is generated from this
// table: KernelKind, the names (to_string, kernel_kind_from_string), validate(), the CPU
// engine's and the CUDA tiles' dispatch and metric, the gradient's method, and
// gramfree._core.kernel_table() for Python.
//
// Adding a kernel:
//   1. a row below, at the end (KernelKind's values are public; the name is the id);
//   2. its formula in csrc/kernels/kernel_formulas.inc: the kernel as a function of the
//      metric value, and its derivative in that value if the gradient column is fused or
//      direct;
//   3. its float64 reference: a row of NATIVE in tests/reference.py and a case of
//      ref_kernel() in tests/cpp/test_operators.cpp (both test suites iterate this table
//      and fail on a kernel without one);
//   4. if it has a new user-facing name, a class in python/gramfree/kernels.py, listed in
//      KERNEL_CLASSES (a test checks that every row is reachable from some class).
//
// Pure data: the per-instruction-set engine units include this, and an inline function
// compiled there with AVX-512 flags could be linked into the baseline path.
#pragma once

#include <cstddef>

namespace gramfree {

// What a kernel is a function of: the inner product <x, z>, the squared Euclidean distance
// |x - z|^2 or the L1 distance |x - z|_1 (the value s of kernel_formulas.inc).
enum class Metric { dot, sqdist, l1 };

// Where a parameter of KernelSpec must lie for a kernel; unused ones are not looked at.
enum class Domain {
  unused,
  positive,  // finite and > 0
  finite,
  power,  // an integer in [1, kMaxDegree]
};
inline constexpr int kMaxDegree = 64;

// How kernel_grad_matvec differentiates a kernel.
enum class Gradient {
  none,      // not implemented
  fused,     // the engine with the derivative of the kernel in s as its epilogue (one pass)
  direct,    // pair by pair: the derivative is singular at x == z, or not a product of row
             // and column factors
  constant,  // d/dx k(x, z) does not depend on x (sum_j V_j z_j, no kernel evaluations)
};

// One row per kernel:
//   X(id, metric, gamma, coef0, degree, length_scale, norms, gradient)
// gamma..length_scale: the Domain of each KernelSpec parameter; norms: the formula also
// takes |x| and |z|. The comment above each row is the kernel, in terms of the metric.
#define GRAMFREE_KERNEL_TABLE(X)                                                           \
  /* exp(-gamma |x-z|^2) */                                                                \
  X(gaussian, sqdist, positive, unused, unused, unused, false, fused)                      \
  /* exp(-gamma |x-z|_1) */                                                                \
  X(laplacian_l1, l1, positive, unused, unused, unused, false, direct)                     \
  /* exp(-gamma |x-z|) */                                                                  \
  X(laplacian_l2, sqdist, positive, unused, unused, unused, false, direct)                 \
  /* exp(-r), r = |x-z| / length_scale */                                                  \
  X(matern12, sqdist, unused, unused, unused, positive, false, direct)                     \
  /* (1 + sqrt3 r) exp(-sqrt3 r) */                                                        \
  X(matern32, sqdist, unused, unused, unused, positive, false, fused)                      \
  /* (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r) */                                            \
  X(matern52, sqdist, unused, unused, unused, positive, false, fused)                      \
  /* (gamma <x,z> + coef0)^degree */                                                       \
  X(polynomial, dot, positive, finite, power, unused, false, fused)                        \
  /* <x,z> */                                                                              \
  X(linear, dot, unused, unused, unused, unused, false, constant)                          \
  /* Cho & Saul order 1: |x||z| (sin t + (pi - t) cos t) / pi, cos t = <x,z> / (|x||z|) */ \
  X(arccos1, dot, unused, unused, unused, unused, true, none)

enum class KernelKind {
#define GRAMFREE_KERNEL_ENUM(id, ...) id,
  GRAMFREE_KERNEL_TABLE(GRAMFREE_KERNEL_ENUM)
#undef GRAMFREE_KERNEL_ENUM
};

struct KernelInfo {
  KernelKind kind;
  const char* name;
  Metric metric;
  Domain gamma, coef0, degree, length_scale;
  bool needs_norms;
  Gradient gradient;
};

// The table as data, indexed by KernelKind.
inline constexpr KernelInfo kernel_table[] = {
#define GRAMFREE_KERNEL_ROW(id, metric, gamma, coef0, degree, length_scale, norms, gradient)     \
  {KernelKind::id,       #id,   Metric::metric,    Domain::gamma, Domain::coef0, Domain::degree, \
   Domain::length_scale, norms, Gradient::gradient},
    GRAMFREE_KERNEL_TABLE(GRAMFREE_KERNEL_ROW)
#undef GRAMFREE_KERNEL_ROW
};
inline constexpr std::size_t kernel_count = sizeof(kernel_table) / sizeof(kernel_table[0]);

// A row at compile time (a variable, not a function: see the top of the file).
template <KernelKind K>
inline constexpr const KernelInfo& kernel_row = kernel_table[static_cast<std::size_t>(K)];

}  // namespace gramfree

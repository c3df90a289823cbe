// The kernel formulas (kernel_formulas.inc) on plain scalars, for the host code that
// evaluates a kernel pair by pair: the pairwise gradient and the diagonal (operators.cpp).
#pragma once

#include <cmath>

#include "gramfree/kernel_table.hpp"

namespace gramfree::scalar {

template <class T>
using vec_t = T;
template <class T>
inline T vbroadcast(T x) {
  return x;
}
template <class T>
inline T vmax(T a, T b) {
  return a > b ? a : b;
}
template <class T>
inline T vmin(T a, T b) {
  return a < b ? a : b;
}
template <class T>
inline T vexp(T x) {
  return std::exp(x);
}
template <class T>
inline T vsqrt(T x) {
  return std::sqrt(x);
}
template <class T>
inline T vacos(T x) {
  return std::acos(x);
}

#define GRAMFREE_FORMULA inline
#include "kernel_formulas.inc"
#undef GRAMFREE_FORMULA

}  // namespace gramfree::scalar

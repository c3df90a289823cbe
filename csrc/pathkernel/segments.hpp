// Where along a step's segment w_t + s * Delta_t (s in [0, 1]) the query gradient is sampled:
// Gauss-Legendre nodes on pieces of [0, 1], the pieces split where a ReLU unit switches.
#pragma once

#include <utility>
#include <vector>

#include "gramfree/pathkernel.hpp"

namespace gramfree::pathkernel::detail {

// Nodes and weights of the n-point Gauss-Legendre rule on [0, 1] (exact for polynomials of
// degree 2n - 1).
void gauss_legendre_01(int n, std::vector<double>& nodes, std::vector<double>& weights);

// Sorted points of (0, 1) where a hidden unit's pre-activation changes sign along the segment
// for input x. Between them every hidden pre-activation of a ReLU network is a polynomial in
// s (of degree l + 1 at hidden layer l), so the query gradient is a polynomial of degree
// (number of hidden layers) there and Gauss-Legendre integrates it exactly.
std::vector<double> relu_switch_points(const Architecture& arch, const double* w,
                                       const double* delta, const double* x);

// Real roots of the polynomial sum_j c[j] s^j in the open interval (a, b), ascending; roots
// where the polynomial touches zero without changing sign are not reported.
std::vector<double> roots_in(std::vector<double> c, double a, double b);

}  // namespace gramfree::pathkernel::detail

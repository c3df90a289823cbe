#include "pathkernel/segments.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gramfree::pathkernel::detail {

void gauss_legendre_01(int n, std::vector<double>& nodes, std::vector<double>& weights) {
  if (n < 1) throw std::invalid_argument("quadrature: needs at least one node");
  nodes.assign(n, 0.0);
  weights.assign(n, 0.0);
  for (int i = 0; i < n; ++i) {
    double x = std::cos(M_PI * (i + 0.75) / (n + 0.5)), dp = 1;
    for (int it = 0; it < 100; ++it) {
      double p0 = 1, p1 = x;
      for (int j = 2; j <= n; ++j) {
        const double p2 = ((2 * j - 1) * x * p1 - (j - 1) * p0) / j;
        p0 = p1;
        p1 = p2;
      }
      if (n == 1) p0 = 1;  // P_0
      dp = n * (x * p1 - p0) / (x * x - 1);
      const double step = p1 / dp;
      x -= step;
      if (std::abs(step) < 1e-16) break;
    }
    nodes[n - 1 - i] = 0.5 * (1 + x);
    weights[n - 1 - i] = 1.0 / ((1 - x * x) * dp * dp);  // (2 / ((1-x^2) P'^2)) / 2
  }
}

namespace {

double horner(const std::vector<double>& c, double s) {
  double v = 0;
  for (std::size_t j = c.size(); j-- > 0;) v = v * s + c[j];
  return v;
}

// A sign change of p on [u, v] (p(u) p(v) < 0) narrowed to the last representable point.
double bisect(const std::vector<double>& c, double u, double v, double fu) {
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (u + v);
    if (mid <= u || mid >= v) break;
    const double fm = horner(c, mid);
    if (fm == 0) return mid;
    if ((fm < 0) == (fu < 0)) {
      u = mid;
      fu = fm;
    } else {
      v = mid;
    }
  }
  return 0.5 * (u + v);
}

}  // namespace

std::vector<double> roots_in(std::vector<double> c, double a, double b) {
  while (!c.empty() && c.back() == 0) c.pop_back();
  std::vector<double> roots;
  if (c.size() < 2 || !(a < b)) return roots;
  if (c.size() == 2) {
    const double r = -c[0] / c[1];
    if (r > a && r < b) roots.push_back(r);
    return roots;
  }
  // Between consecutive critical points the polynomial is monotone: at most one root each.
  std::vector<double> dc(c.size() - 1);
  for (std::size_t j = 1; j < c.size(); ++j) dc[j - 1] = c[j] * double(j);
  std::vector<double> pts{a};
  for (double r : roots_in(dc, a, b)) pts.push_back(r);
  pts.push_back(b);
  for (std::size_t i = 0; i + 1 < pts.size(); ++i) {
    const double fu = horner(c, pts[i]), fv = horner(c, pts[i + 1]);
    if ((fu < 0 && fv > 0) || (fu > 0 && fv < 0))
      roots.push_back(bisect(c, pts[i], pts[i + 1], fu));
  }
  return roots;
}

std::vector<double> relu_switch_points(const Architecture& arch, const double* w,
                                       const double* delta, const double* x) {
  // A point this close after the piece's start is the switch that started it, found again.
  constexpr double kSame = 1e-12;
  constexpr int kMaxPieces = 100000;
  const std::size_t L = arch.n_layers();
  std::vector<double> points;
  double lo = 0;
  // Polynomial of every unit of a layer: coef[j * width + u] multiplies s^j.
  std::vector<double> a, z, cu;
  for (int piece = 0; piece < kMaxPieces && lo < 1; ++piece) {
    double hi = 1;
    std::size_t degree = 0;  // of a
    a.assign(x, x + arch.sizes[0]);
    for (std::size_t l = 0; l + 1 < L; ++l) {
      const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
      const double* W = w + arch.weight_offset(l);
      const double* dW = delta + arch.weight_offset(l);
      const double* b = w + arch.bias_offset(l);
      const double* db = delta + arch.bias_offset(l);
      z.assign((degree + 2) * fo, 0.0);
      for (std::size_t e = 0; e <= degree; ++e)
        for (std::size_t u = 0; u < fi; ++u) {
          const double av = a[e * fi + u];
          if (av == 0) continue;
          double* z0 = z.data() + e * fo;
          double* z1 = z.data() + (e + 1) * fo;
          const double* Wu = W + u * fo;
          const double* dWu = dW + u * fo;
          for (std::size_t j = 0; j < fo; ++j) {
            z0[j] += av * Wu[j];
            z1[j] += av * dWu[j];
          }
        }
      for (std::size_t j = 0; j < fo; ++j) {
        z[j] += b[j];
        z[fo + j] += db[j];
      }
      ++degree;
      const double layer_hi = hi;
      std::vector<char> on(fo);
      for (std::size_t j = 0; j < fo; ++j) {
        cu.resize(degree + 1);
        for (std::size_t e = 0; e <= degree; ++e) cu[e] = z[e * fo + j];
        const std::vector<double> r = roots_in(cu, lo + kSame, layer_hi);
        const double until = r.empty() ? layer_hi : r.front();
        hi = std::min(hi, until);
        on[j] = horner(cu, 0.5 * (lo + until)) > 0;
      }
      a.assign((degree + 1) * fo, 0.0);
      for (std::size_t e = 0; e <= degree; ++e)
        for (std::size_t j = 0; j < fo; ++j)
          if (on[j]) a[e * fo + j] = z[e * fo + j];
    }
    if (hi >= 1 || hi <= lo) break;
    points.push_back(hi);
    lo = hi;
  }
  return points;
}

}  // namespace gramfree::pathkernel::detail

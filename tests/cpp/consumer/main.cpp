// K(X, Z) V by the installed library against a plain double loop; exits 1 on a mismatch.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "gramfree/gramfree.hpp"

int main() {
  const std::size_t n = 37, m = 29, d = 5, k = 3;
  std::vector<double> X(n * d), Z(m * d), V(m * k), out(n * k);
  for (std::size_t i = 0; i < X.size(); ++i) X[i] = std::sin(0.7 * double(i));
  for (std::size_t i = 0; i < Z.size(); ++i) Z[i] = std::cos(0.3 * double(i));
  for (std::size_t i = 0; i < V.size(); ++i) V[i] = 1.0 / double(i + 1);
  gramfree::KernelSpec spec;  // Gaussian
  spec.gamma = 0.5;
  gramfree::kernel_matvec<double>(spec, {X.data(), n, d}, {Z.data(), m, d}, {V.data(), m, k},
                                  {out.data(), n, k});
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) {
      double sum = 0;
      for (std::size_t j = 0; j < m; ++j) {
        double sq = 0;
        for (std::size_t t = 0; t < d; ++t)
          sq += (X[i * d + t] - Z[j * d + t]) * (X[i * d + t] - Z[j * d + t]);
        sum += std::exp(-spec.gamma * sq) * V[j * k + c];
      }
      worst = std::max(worst, std::abs(sum - out[i * k + c]));
    }
  try {
    gramfree::kernel_matvec<double>(spec, {nullptr, n, d}, {Z.data(), m, d}, {V.data(), m, k},
                                    {out.data(), n, k});
    std::puts("consumer: a null X was not refused");
    return 1;
  } catch (const std::invalid_argument&) {
  }
  std::printf("consumer: K(X, Z) V against a double loop, max error %.3g\n", worst);
  return worst < 1e-12 ? 0 : 1;
}

// The C++ tests' way to run a check on every instruction set the processor supports.
#pragma once

#include <vector>

#include "gramfree/gramfree.hpp"

namespace gramfree_test {

inline std::vector<gramfree::SimdLevel> supported_levels() {
  std::vector<gramfree::SimdLevel> out;
  for (int l = 0; l <= static_cast<int>(gramfree::detected_simd_level()); ++l)
    out.push_back(static_cast<gramfree::SimdLevel>(l));
  return out;
}

// Sets the engine's instruction set for a scope and restores it afterwards.
struct SimdScope {
  gramfree::SimdLevel saved;
  explicit SimdScope(gramfree::SimdLevel level) : saved(gramfree::simd_level()) {
    gramfree::set_simd_level(level);
  }
  ~SimdScope() { gramfree::set_simd_level(saved); }
  SimdScope(const SimdScope&) = delete;
  SimdScope& operator=(const SimdScope&) = delete;
};

}  // namespace gramfree_test

// A run-time KernelKind as a compile-time constant, for the host code that instantiates
// per kernel (operators.cpp, cuda/operators.cu): the switch over the table's rows.
#pragma once

#include <stdexcept>
#include <type_traits>

#include "gramfree/kernel_table.hpp"

namespace gramfree::detail {

// Returns f(std::integral_constant<KernelKind, kind>{}); throws std::invalid_argument for a
// value that is no row of the table.
template <class F>
decltype(auto) visit_kind(KernelKind kind, F&& f) {
  switch (kind) {
#define GRAMFREE_VISIT(id, ...) \
  case KernelKind::id:          \
    return f(std::integral_constant<KernelKind, KernelKind::id>{});
    GRAMFREE_KERNEL_TABLE(GRAMFREE_VISIT)
#undef GRAMFREE_VISIT
  }
  throw std::invalid_argument("kernel: unknown kind");
}

}  // namespace gramfree::detail

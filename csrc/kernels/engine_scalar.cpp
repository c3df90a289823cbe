// The tiled engine compiled for the scalar instruction set (flags set in CMakeLists.txt).
#define GRAMFREE_ISA_NS isa_scalar
#include "engine.hpp"

namespace gramfree::detail {
const EngineTable engine_scalar = {"scalar", isa_scalar::workspace_f32, isa_scalar::run_f32,
                                   isa_scalar::workspace_f64, isa_scalar::run_f64};
}  // namespace gramfree::detail

// The tiled engine compiled for the scalar instruction set (flags set in CMakeLists.txt).
#define GRAMFREE_ISA_NS isa_scalar
#include "engine.hpp"

namespace gramfree::detail {
const EngineTable engine_scalar = GRAMFREE_ENGINE_TABLE("scalar", isa_scalar);
}  // namespace gramfree::detail

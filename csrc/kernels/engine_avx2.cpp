// The tiled engine compiled for the avx2 instruction set (flags set in CMakeLists.txt).
#define GRAMFREE_ISA_NS isa_avx2
#include "engine.hpp"

namespace gramfree::detail {
const EngineTable engine_avx2 = GRAMFREE_ENGINE_TABLE("avx2", isa_avx2);
}  // namespace gramfree::detail

// The tiled engine compiled for the avx512 instruction set (flags set in CMakeLists.txt).
#define GRAMFREE_ISA_NS isa_avx512
#include "engine.hpp"

namespace gramfree::detail {
const EngineTable engine_avx512 = GRAMFREE_ENGINE_TABLE("avx512", isa_avx512);
}  // namespace gramfree::detail

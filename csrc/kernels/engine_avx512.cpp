// The tiled engine compiled for the avx512 instruction set (flags set in CMakeLists.txt).
#define GRAMFREE_ISA_NS isa_avx512
#include "engine.hpp"

namespace gramfree::detail {
const EngineTable engine_avx512 = {"avx512", isa_avx512::workspace_f32, isa_avx512::run_f32,
                                   isa_avx512::workspace_f64, isa_avx512::run_f64};
}  // namespace gramfree::detail

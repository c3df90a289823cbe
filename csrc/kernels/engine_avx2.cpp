// The tiled engine compiled for the avx2 instruction set (flags set in CMakeLists.txt).
#define GRAMFREE_ISA_NS isa_avx2
#include "engine.hpp"

namespace gramfree::detail {
const EngineTable engine_avx2 = {"avx2", isa_avx2::workspace_f32, isa_avx2::run_f32,
                                   isa_avx2::workspace_f64, isa_avx2::run_f64};
}  // namespace gramfree::detail

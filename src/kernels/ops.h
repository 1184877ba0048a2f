#pragma once
// Declarations for every table entry; included by registry.cpp and by each kernel file
// (so the definitions there get external linkage).
#include "kernels/op.h"

namespace rg {
#define RG_OP(name) extern const OpDef kOp_##name;
#include "kernels/ops.def"
#undef RG_OP
#define RG_FAST(name) extern const FastDef kFast_##name;
#include "kernels/fast_ops.def"
#undef RG_FAST
}  // namespace rg

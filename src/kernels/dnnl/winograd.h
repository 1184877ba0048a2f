#pragma once
// Winograd F(4x4, 3x3) / F(2x2, 3x3) convolution on AVX2 (oneDNN's own Winograd is
// AVX-512 only).
#include <memory>

#include "kernels/op.h"

namespace rg {

// A 3x3 stride-1 fp32 convolution (group 1, channels a multiple of 8, constant weights,
// at least 16 output tiles of 4x4 or 2x2 per image) with ReLU/clip/residual post-ops;
// null otherwise.
std::unique_ptr<Kernel> make_winograd_conv(const CompileCtx& c);

}  // namespace rg

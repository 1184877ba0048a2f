#pragma once
// Winograd F(4x4, 3x3) / F(2x2, 3x3) convolution on AVX2 and AVX-512.
#include <memory>

#include "kernels/op.h"

namespace rg {

// A 3x3 stride-1 fp32 convolution (group 1, input channels a multiple of the vector
// width, outputs of two vectors, constant weights, enough output tiles per image: see
// make_for) with ReLU/clip/leaky/residual post-ops; null otherwise.
std::unique_ptr<Kernel> make_winograd_conv(const CompileCtx& c);

}  // namespace rg

#pragma once
// Grouped 3x3 convolution with 8 channels per group on AVX2 (RegNet's, ResNeXt-style
// blocks): one nChw8c block is one group. oneDNN 2.6's AVX2 kernel runs these at about
// half the speed of its dense ones.
#include <memory>

#include "kernels/op.h"

namespace rg {

// A 3x3 fp32 convolution with 8 input and 8 output channels per group, stride 1 or 2,
// no dilation, constant weights and bias, with ReLU/clip/leaky/residual post-ops; null
// otherwise.
std::unique_ptr<Kernel> make_group8_conv(const CompileCtx& c);

}  // namespace rg

#pragma once
// Sliding-window geometry shared by Conv, ConvTranspose and the pooling operators, in the
// reference kernels and the oneDNN ones: one place decides kernel size, strides,
// dilations, padding (explicit or from auto_pad) and the output size, so every
// implementation of an operator agrees on its output shape.
//
// Shapes are ONNX's NC[D1..Dk] layout. "Spatial" vectors below have k entries (one per
// spatial dim), "pads" follow ONNX: pads_begin[i] = pads[i], pads_end[i] = pads[k + i].
//
// Forward windows (Conv, pools): output position o reads input positions
//     o * stride - pads_begin + t * dilation,   t = 0 .. kernel - 1;
// positions outside [0, in) are padding. The output size is
//     out = floor_or_ceil((in + pads_begin + pads_end - ((kernel - 1) * dilation + 1)) / stride) + 1
//   * auto_pad SAME_UPPER / SAME_LOWER: out = ceil(in / stride) and the padding needed for
//     that is split evenly, the odd one going to the end (UPPER) or the beginning (LOWER);
//   * auto_pad VALID: no padding;
//   * ceil_mode (pools): ceil instead of floor, but a last window that would start in the
//     end padding is dropped (as PyTorch and newer ONNX do), so no window is empty
//     because of ceil_mode alone.
//
// Transposed windows (ConvTranspose): input position i scatters into output positions
//     i * stride - pads_begin + t * dilation,   t = 0 .. kernel - 1,
// and the output size is
//     out = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - pads_begin - pads_end.
//   When the `output_shape` attribute is given (or auto_pad is SAME_*, which asks for
//   out = in * stride) the pads are derived from it, as in the ONNX reference
//   implementation: total = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - out,
//   SAME_UPPER: begin = total // 2, end = total - begin; otherwise end = total // 2,
//   begin = total - end (// is floor division, so a negative total, i.e. an output larger
//   than the natural one, extends the end). Pads may then be negative; output positions
//   no input reaches receive only the bias. For oneDNN's deconvolution the right padding
//   is pads_end - output_padding.
//
// Every attribute problem (wrong lengths, zero strides, unknown auto_pad, a kernel larger
// than the padded input, a non-positive output size) throws rg::Error naming the node.
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace rg {

struct WindowParams {
  std::vector<int64_t> kernel;          // spatial kernel sizes (undilated)
  std::vector<int64_t> strides;         // >= 1
  std::vector<int64_t> dilations;       // >= 1
  std::vector<int64_t> pads_begin;      // >= 0 for forward windows; may be < 0 when transposed
  std::vector<int64_t> pads_end;
  std::vector<int64_t> output_padding;  // transposed only (zeros otherwise)
  std::vector<int64_t> in;              // input spatial sizes
  std::vector<int64_t> out;             // output spatial sizes (>= 1)

  int spatial() const { return (int)kernel.size(); }
  // (kernel - 1) * dilation + 1: the extent one window covers.
  int64_t effective_kernel(int i) const { return (kernel[i] - 1) * dilations[i] + 1; }
};

// The spatial kernel size of a node: its `kernel_shape` attribute, checked against the
// weight's spatial dims when `weight` is given (Conv's W is [M, C/group, k...],
// ConvTranspose's [C, M/group, k...]), else taken from the weight. Pools pass no weight
// and then need the attribute.
std::vector<int64_t> window_kernel(const Node& n, int spatial, const Shape* weight = nullptr);

// Full window geometry for input shape `in` (N, C, spatial...) and spatial kernel
// `kernel_spatial`. Reads strides, dilations, pads, auto_pad and, when `transposed`,
// output_padding and output_shape from the node. `ceil_mode` applies to forward windows.
WindowParams window_params(const Node& n, const Shape& in, const std::vector<int64_t>& kernel_spatial,
                           bool ceil_mode = false, bool transposed = false);

}  // namespace rg

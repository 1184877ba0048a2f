#pragma once
// Helpers shared by the data-movement kernels (shape_ops, gather_slice, pad_tile, resize,
// misc_ops). Data movement never looks at element values, so most of it dispatches on the
// element SIZE only: one instantiation per width serves float, int, bool, f16 alike.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/ref/common.h"

namespace rg {

// Calls f with a typed null pointer of an unsigned type as wide as one element of `t`.
template <typename F>
void dispatch_bytes(DType t, const Node& n, F&& f) {
  switch (dtype_size(t)) {
    case 1: f((uint8_t*)nullptr); break;
    case 2: f((uint16_t*)nullptr); break;
    case 4: f((uint32_t*)nullptr); break;
    case 8: f((uint64_t*)nullptr); break;
    default:
      fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", n.label(), dtype_name(t));
  }
}

// Largest tensor a shape-computing op may produce. Shapes come from data (Expand's shape,
// Range's limit, ConstantOfShape) so a hostile or broken input must not reach the
// allocator (or overflow int64 while counting). 2^40 bytes is far beyond any real model.
constexpr int64_t kMaxOutputBytes = int64_t(1) << 40;

// Validates a computed output shape: non-negative dims and a sane total size, with the
// element count computed without overflow. invalid_input otherwise.
void check_output_shape(const Node& n, const Shape& s, DType t);

// Output 0 = input 0's bytes (Reshape & co): copies unless both share one buffer.
void copy_through(KernelCtx& c);

// Slice's window, from its attributes (opset < 10) or constant inputs: the output shape
// and, per input dim, the first index and the step (negative walks backwards).
struct SliceSpec {
  Shape out;
  std::vector<int64_t> start, step;
};
SliceSpec slice_spec(const InferCtx& c);

// Copies a strided view into a contiguous buffer: out[i0..ik] = in[sum(i_d * strides[d])].
// `in` points at the view's first element; strides are in elements and may be 0 (broadcast)
// or negative (reversal). Slice, Transpose, Expand, Tile, DepthToSpace, SpaceToDepth are all
// this one loop with different strides.
void strided_copy(size_t esize, void* out, const void* in, const Shape& shape, const std::vector<int64_t>& strides);

// One element of dtype `t` holding `v` (converted like a C cast; f16/bf16 rounded),
// as raw bytes in the low end of a uint64. Constant padding values and EyeLike's ones.
uint64_t scalar_bits(DType t, double v, const Node& n);

// "[2, -1, 0]": integer lists as written (shape_str would print -1 as "?").
std::string ints_str(const std::vector<int64_t>& v);

// Wraps a possibly negative index against `dim`; invalid_input naming `what` when still out
// of range (ONNX: negative indices count from the end, once).
inline int64_t wrap_index(int64_t i, int64_t dim, const Node& n, const char* what) {
  int64_t j = i < 0 ? i + dim : i;
  if (j < 0 || j >= dim)
    fail(ErrorCode::invalid_input, "{}: {} {} is out of range for a dimension of size {}", n.label(), what, i, dim);
  return j;
}

// Normalises a list of axes against `rank`: wraps negatives, rejects duplicates and
// out-of-range values (invalid_model).
std::vector<int> norm_axes(const std::vector<int64_t>& axes, int rank, const Node& n);

// Reads integer values of optional input i (opset >= N form) or, for older opsets, the
// attribute `attr`. `present` tells whether either was given.
std::vector<int64_t> ints_input_or_attr(const InferCtx& c, int i, const char* attr, bool from_input, bool* present);

// An inference context over a kernel's actual inputs, so a kernel can recompute the
// parameters its infer function derived (Slice's clamped starts, Pad's pads) with the
// same code instead of a second copy of the rules.
InferCtx infer_ctx_of(const KernelCtx& c);

}  // namespace rg

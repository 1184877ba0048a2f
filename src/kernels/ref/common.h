#pragma once
// Helpers shared by the reference kernels: axis handling, broadcasting, dtype dispatch.
#include <cmath>
#include <cstring>

#include "kernels/ops.h"

namespace rg {

// Normalises a possibly negative axis against `rank`; invalid_model when out of range.
int norm_axis(int64_t axis, int rank, const Node& n);

// Numpy-style broadcast of two shapes; invalid_model when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& n);

// Element strides of `in` broadcast to `out` (0 along broadcast dims), right-aligned.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Calls f(out_index, a_index, b_index) over every element of `out`, with a and b
// broadcast to it. Contiguous fast paths for equal shapes and scalars.
template <typename F>
void for_each_broadcast2(const Shape& out, const Shape& a, const Shape& b, F&& f) {
  int64_t n = shape_numel(out);
  if (n == 0) return;
  int64_t na = shape_numel(a), nb = shape_numel(b);
  if (na == n && nb == n) {
    for (int64_t i = 0; i < n; i++) f(i, i, i);
    return;
  }
  if (na == n && nb == 1) {
    for (int64_t i = 0; i < n; i++) f(i, i, 0);
    return;
  }
  if (na == 1 && nb == n) {
    for (int64_t i = 0; i < n; i++) f(i, 0, i);
    return;
  }
  int r = (int)out.size();
  std::vector<int64_t> sa = broadcast_strides(a, out), sb = broadcast_strides(b, out);
  std::vector<int64_t> idx(r, 0);
  int64_t ia = 0, ib = 0;
  // The innermost dim runs in a tight loop; the odometer handles the rest.
  int64_t inner = r ? out[r - 1] : 1;
  int64_t sai = r ? sa[r - 1] : 0, sbi = r ? sb[r - 1] : 0;
  for (int64_t o = 0; o < n; o += inner) {
    for (int64_t k = 0; k < inner; k++) f(o + k, ia + k * sai, ib + k * sbi);
    for (int d = r - 2; d >= 0; d--) {
      idx[d]++;
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      idx[d] = 0;
    }
  }
}

// Same for three operands (Where, Clip with tensor bounds).
template <typename F>
void for_each_broadcast3(const Shape& out, const Shape& a, const Shape& b, const Shape& c, F&& f) {
  int64_t n = shape_numel(out);
  if (n == 0) return;
  int r = (int)out.size();
  std::vector<int64_t> sa = broadcast_strides(a, out), sb = broadcast_strides(b, out),
                       sc = broadcast_strides(c, out);
  std::vector<int64_t> idx(r, 0);
  int64_t ia = 0, ib = 0, ic = 0;
  for (int64_t o = 0; o < n; o++) {
    f(o, ia, ib, ic);
    for (int d = r - 1; d >= 0; d--) {
      idx[d]++;
      ia += sa[d];
      ib += sb[d];
      ic += sc[d];
      if (idx[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      ic -= sc[d] * out[d];
      idx[d] = 0;
    }
  }
}

// Dispatch on a runtime dtype to a generic lambda taking a typed null pointer:
//   dispatch_numeric(t, [&](auto tag) { using T = std::remove_pointer_t<decltype(tag)>; ... });
template <typename F>
void dispatch_numeric(DType t, const Node& n, F&& f) {
  switch (t) {
    case DType::f32: f((float*)nullptr); break;
    case DType::f64: f((double*)nullptr); break;
    case DType::i8: f((int8_t*)nullptr); break;
    case DType::u8: f((uint8_t*)nullptr); break;
    case DType::i16: f((int16_t*)nullptr); break;
    case DType::u16: f((uint16_t*)nullptr); break;
    case DType::i32: f((int32_t*)nullptr); break;
    case DType::u32: f((uint32_t*)nullptr); break;
    case DType::i64: f((int64_t*)nullptr); break;
    case DType::u64: f((uint64_t*)nullptr); break;
    default:
      fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", n.label(), dtype_name(t));
  }
}

// Same, plus bool (for data-movement ops that only copy elements).
template <typename F>
void dispatch_any(DType t, const Node& n, F&& f) {
  if (t == DType::boolean) {
    f((bool*)nullptr);
    return;
  }
  if (t == DType::f16 || t == DType::bf16) {
    f((uint16_t*)nullptr);
    return;
  }
  dispatch_numeric(t, n, f);
}

// Reads an optional integer input's values (axes, shape, ...) from the inference context.
std::vector<int64_t> ints_of(const InferCtx& c, int i);

}  // namespace rg

#include "kernels/ref/movement.h"

#include <cmath>
#include <limits>

namespace rg {

void check_output_shape(const Node& n, const Shape& s, DType t) {
  int64_t total = 1;
  bool zero = false;
  int64_t limit = kMaxOutputBytes / (int64_t)std::max<size_t>(dtype_size(t), 1);
  for (int64_t d : s) {
    if (d < 0) fail(ErrorCode::invalid_input, "{}: negative output dimension in {}", n.label(), ints_str(s));
    if (d == 0) zero = true;
  }
  if (zero) return;
  for (int64_t d : s) {
    if (d > limit / total)
      fail(ErrorCode::invalid_input, "{}: output shape {} is too large", n.label(), shape_str(s));
    total *= d;
  }
}

namespace {

template <typename T>
void strided_rows(T* out, const T* in, const Shape& sh, const std::vector<int64_t>& st, int64_t n) {
  int r = (int)sh.size();
  // The body covers the last two dims so that a small innermost dim (a transpose moving
  // the last axis) still amortises the index decomposition.
  int64_t d1 = sh[r - 1], s1 = st[r - 1];
  int64_t d0 = r >= 2 ? sh[r - 2] : 1, s0 = r >= 2 ? st[r - 2] : 0;
  int outer_dims = r >= 2 ? r - 2 : 0;
  int64_t outer = n / (d0 * d1);
#pragma omp parallel for if (n > (1 << 18))
  for (int64_t o = 0; o < outer; o++) {
    int64_t rem = o, off = 0;
    for (int d = outer_dims - 1; d >= 0; d--) {
      off += (rem % sh[d]) * st[d];
      rem /= sh[d];
    }
    T* dst = out + o * d0 * d1;
    for (int64_t a = 0; a < d0; a++, dst += d1) {
      const T* src = in + off + a * s0;
      if (s1 == 1) {
        std::memcpy(dst, src, (size_t)d1 * sizeof(T));
      } else {
        for (int64_t k = 0; k < d1; k++) dst[k] = src[k * s1];
      }
    }
  }
}

}  // namespace

void strided_copy(size_t esize, void* out, const void* in, const Shape& shape, const std::vector<int64_t>& strides) {
  // Drop unit dims and merge dims that are contiguous with their inner neighbour: fewer,
  // longer rows (a Slice on axis 0 becomes one memcpy per kept row block).
  Shape sh;
  std::vector<int64_t> st;
  int64_t n = 1;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return;
    n *= shape[d];
    if (shape[d] == 1) continue;
    if (!sh.empty() && st.back() == strides[d] * shape[d]) {
      sh.back() *= shape[d];
      st.back() = strides[d];
    } else {
      sh.push_back(shape[d]);
      st.push_back(strides[d]);
    }
  }
  if (sh.empty()) {
    std::memcpy(out, in, esize);
    return;
  }
  switch (esize) {
    case 1: strided_rows((uint8_t*)out, (const uint8_t*)in, sh, st, n); break;
    case 2: strided_rows((uint16_t*)out, (const uint16_t*)in, sh, st, n); break;
    case 4: strided_rows((uint32_t*)out, (const uint32_t*)in, sh, st, n); break;
    case 8: strided_rows((uint64_t*)out, (const uint64_t*)in, sh, st, n); break;
    default: fail(ErrorCode::internal, "strided_copy: element size {}", esize);
  }
}

namespace {
// double -> integer without the undefined behaviour of an out-of-range cast: saturate.
template <typename I>
I saturate(double v) {
  if (std::isnan(v)) return 0;
  if (v <= (double)std::numeric_limits<I>::lowest()) return std::numeric_limits<I>::lowest();
  if (v >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
  return (I)v;
}
}  // namespace

uint64_t scalar_bits(DType t, double v, const Node& n) {
  uint64_t bits = 0;
  auto put = [&](auto x) { std::memcpy(&bits, &x, sizeof(x)); };
  switch (t) {
    case DType::f32: put((float)v); break;
    case DType::f64: put(v); break;
    case DType::f16: put(float_to_half((float)v)); break;
    case DType::bf16: put(float_to_bf16((float)v)); break;
    case DType::i8: put(saturate<int8_t>(v)); break;
    case DType::u8: put(saturate<uint8_t>(v)); break;
    case DType::i16: put(saturate<int16_t>(v)); break;
    case DType::u16: put(saturate<uint16_t>(v)); break;
    case DType::i32: put(saturate<int32_t>(v)); break;
    case DType::u32: put(saturate<uint32_t>(v)); break;
    case DType::i64: put(saturate<int64_t>(v)); break;
    case DType::u64: put(saturate<uint64_t>(v)); break;
    case DType::boolean: put((uint8_t)(v != 0)); break;
    default:
      fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", n.label(), dtype_name(t));
  }
  return bits;
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string r = "[";
  for (size_t i = 0; i < v.size(); i++) r += (i ? ", " : "") + std::to_string(v[i]);
  return r + "]";
}

std::vector<int> norm_axes(const std::vector<int64_t>& axes, int rank, const Node& n) {
  std::vector<int> r;
  std::vector<bool> seen(rank, false);
  for (int64_t a : axes) {
    int64_t b = a < 0 ? a + rank : a;
    if (b < 0 || b >= rank)
      fail(ErrorCode::invalid_model, "{}: axis {} is out of range for rank {}", n.label(), a, rank);
    if (seen[b]) fail(ErrorCode::invalid_model, "{}: axis {} is repeated", n.label(), a);
    seen[b] = true;
    r.push_back((int)b);
  }
  return r;
}

std::vector<int64_t> ints_input_or_attr(const InferCtx& c, int i, const char* attr, bool from_input, bool* present) {
  if (from_input) {
    *present = c.has_input(i);
    return *present ? ints_of(c, i) : std::vector<int64_t>{};
  }
  *present = c.node.has_attr(attr);
  return c.node.attr_ints(attr);
}

InferCtx infer_ctx_of(const KernelCtx& c) {
  InferCtx ic(c.node, c.opset);
  for (size_t i = 0; i < c.in.size(); i++) {
    const Tensor* t = c.in[i];
    ic.in_types.push_back(t ? t->dtype() : DType::undefined);
    ic.in_shapes.push_back(t ? t->shape() : Shape{});
    ic.in_values.push_back(t);
  }
  return ic;
}

}  // namespace rg

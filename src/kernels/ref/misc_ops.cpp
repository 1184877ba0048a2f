// Generators and selectors: Constant, ConstantOfShape, Range, EyeLike, OneHot, Trilu, TopK,
// NonZero, ReverseSequence.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/ref/movement.h"

namespace rg {
namespace {

// ---- Constant -------------------------------------------------------------------------------

Tensor constant_value(const Node& n) {
  if (n.has_attr("sparse_value"))
    fail(ErrorCode::unsupported_op, "{}: sparse constants are not supported", n.label());
  if (n.has_attr("value_string") || n.has_attr("value_strings"))
    fail(ErrorCode::unsupported_op, "{}: string constants are not supported", n.label());
  if (const Tensor* t = n.attr_t("value")) return *t;
  if (n.has_attr("value_float")) return Tensor::scalar<float>(n.attr_f("value_float", 0.f));
  if (n.has_attr("value_int")) return Tensor::scalar<int64_t>(n.attr_i("value_int", 0));
  if (n.has_attr("value_floats")) {
    std::vector<float> v = n.attr_floats("value_floats");
    return Tensor::from_vector<float>({(int64_t)v.size()}, v);
  }
  if (n.has_attr("value_ints")) {
    std::vector<int64_t> v = n.attr_ints("value_ints");
    return Tensor::from_vector<int64_t>({(int64_t)v.size()}, v);
  }
  fail(ErrorCode::invalid_model, "{}: no value attribute", n.label());
}

void infer_Constant(InferCtx& c) {
  c.require_inputs(0, 0);
  Tensor v = constant_value(c.node);
  if (!v.defined()) fail(ErrorCode::invalid_model, "{}: value has no element type", c.node.label());
  c.set_output(0, v.dtype(), v.shape());
}
void ref_Constant(KernelCtx& c) {
  Tensor v = constant_value(c.node);
  if (v.nbytes()) std::memcpy(c.output(0).raw(), v.raw(), v.nbytes());
}

// ---- ConstantOfShape ------------------------------------------------------------------------

Tensor fill_value(const Node& n) {
  const Tensor* v = n.attr_t("value");
  if (!v) return Tensor::scalar<float>(0.f);
  if (v->numel() != 1) fail(ErrorCode::invalid_model, "{}: value must hold one element, has {}", n.label(), v->numel());
  return *v;
}

void infer_ConstantOfShape(InferCtx& c) {
  c.require_inputs(1, 1);
  Shape s = ints_of(c, 0);
  Tensor v = fill_value(c.node);
  check_output_shape(c.node, s, v.dtype());
  c.set_output(0, v.dtype(), s);
}
void ref_ConstantOfShape(KernelCtx& c) {
  Tensor v = fill_value(c.node);
  Tensor& y = c.output(0);
  dispatch_bytes(y.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T fill;
    std::memcpy(&fill, v.raw(), sizeof(T));
    std::fill_n(static_cast<T*>(y.raw()), y.numel(), fill);
  });
}

// ---- Range ------------------------------------------------------------------------------------

int64_t range_count(const InferCtx& c) {
  c.require_inputs(3, 3);
  DType t = c.type(0);
  if (t != DType::f32 && t != DType::f64 && t != DType::i16 && t != DType::i32 && t != DType::i64)
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(t));
  for (int i = 0; i < 3; i++)
    if (c.type(i) != t || shape_numel(c.shape(i)) != 1)
      fail(ErrorCode::invalid_model, "{}: start, limit and delta must be scalars of one type", c.node.label());
  double count;
  if (dtype_is_float(t)) {
    std::vector<double> v{c.value(0).to_doubles()[0], c.value(1).to_doubles()[0], c.value(2).to_doubles()[0]};
    if (v[2] == 0 || !std::isfinite(v[0]) || !std::isfinite(v[1]) || !std::isfinite(v[2]))
      fail(ErrorCode::invalid_input, "{}: invalid range start={} limit={} delta={}", c.node.label(), v[0], v[1], v[2]);
    count = std::ceil((v[1] - v[0]) / v[2]);
  } else {
    // 128-bit so that limit - start cannot overflow.
    __int128 s = ints_of(c, 0)[0], l = ints_of(c, 1)[0], d = ints_of(c, 2)[0];
    if (d == 0) fail(ErrorCode::invalid_input, "{}: delta is 0", c.node.label());
    __int128 diff = l - s, q = diff / d;
    if (q * d != diff && (diff > 0) == (d > 0)) q++;  // ceil for same signs
    count = (double)q;
  }
  count = std::max(count, 0.0);
  if (count > (double)(kMaxOutputBytes / (int64_t)dtype_size(t)))
    fail(ErrorCode::invalid_input, "{}: range of {} elements is too large", c.node.label(), count);
  return (int64_t)count;
}

void infer_Range(InferCtx& c) { c.set_output(0, c.type(0), {range_count(c)}); }
void ref_Range(KernelCtx& c) {
  Tensor& y = c.output(0);
  int64_t n = y.numel();
  if (dtype_is_float(y.dtype())) {
    double s = c.input(0).to_doubles()[0], d = c.input(2).to_doubles()[0];
    dispatch_numeric(y.dtype(), c.node, [&](auto tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      T* p = static_cast<T*>(y.raw());
      for (int64_t i = 0; i < n; i++) p[i] = T(s + (double)i * d);
    });
  } else {
    __int128 s = c.input(0).to_int64s()[0], d = c.input(2).to_int64s()[0];
    dispatch_numeric(y.dtype(), c.node, [&](auto tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      T* p = static_cast<T*>(y.raw());
      for (int64_t i = 0; i < n; i++) p[i] = T(s + (__int128)i * d);  // stays within [start, limit)
    });
  }
}

// ---- EyeLike -----------------------------------------------------------------------------------

DType eyelike_type(const Node& n, DType in) {
  if (!n.has_attr("dtype")) return in;
  DType t = dtype_from_onnx((int)n.attr_i("dtype", 0));
  if (t == DType::undefined) fail(ErrorCode::unsupported_op, "{}: unsupported dtype {}", n.label(), n.attr_i("dtype", 0));
  return t;
}

void infer_EyeLike(InferCtx& c) {
  c.require_inputs(1, 1);
  if (c.rank(0) != 2) fail(ErrorCode::invalid_input, "{}: input must be 2-D, got {}", c.node.label(), shape_str(c.shape(0)));
  c.set_output(0, eyelike_type(c.node, c.type(0)), c.shape(0));
}
void ref_EyeLike(KernelCtx& c) {
  Tensor& y = c.output(0);
  int64_t rows = y.dim(0), cols = y.dim(1), k = c.node.attr_i("k", 0);
  size_t es = dtype_size(y.dtype());
  if (y.nbytes()) std::memset(y.raw(), 0, y.nbytes());
  if (k >= cols || k <= -rows) return;
  uint64_t one = scalar_bits(y.dtype(), 1.0, c.node);
  char* p = static_cast<char*>(y.raw());
  for (int64_t i = std::max<int64_t>(0, -k); i < rows && i + k < cols; i++) std::memcpy(p + (i * cols + i + k) * es, &one, es);
}

// ---- OneHot ----------------------------------------------------------------------------------

int onehot_axis(const Node& n, int in_rank) {
  int64_t a = n.attr_i("axis", -1), r = in_rank + 1;
  if (a < -r || a >= r) fail(ErrorCode::invalid_model, "{}: axis {} is out of range for output rank {}", n.label(), a, r);
  return (int)(a < 0 ? a + r : a);
}

void infer_OneHot(InferCtx& c) {
  c.require_inputs(3, 3);
  if (shape_numel(c.shape(2)) != 2)
    fail(ErrorCode::invalid_model, "{}: values must hold [off, on], got {}", c.node.label(), shape_str(c.shape(2)));
  const Tensor& dv = c.value(1);
  if (dv.numel() != 1) fail(ErrorCode::invalid_model, "{}: depth must be a scalar", c.node.label());
  double depth = dv.to_doubles()[0];
  if (!(depth >= 1) || depth > 1e15) fail(ErrorCode::invalid_input, "{}: invalid depth {}", c.node.label(), depth);
  Shape out = c.shape(0);
  out.insert(out.begin() + onehot_axis(c.node, c.rank(0)), (int64_t)depth);
  check_output_shape(c.node, out, c.type(2));
  c.set_output(0, c.type(2), out);
}
void ref_OneHot(KernelCtx& c) {
  const Tensor& ind = c.input(0);
  Tensor& y = c.output(0);
  int axis = onehot_axis(c.node, ind.rank());
  int64_t depth = y.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ind.rank(); d++) (d < axis ? outer : inner) *= ind.dim(d);
  std::vector<double> idx = ind.to_doubles();
  dispatch_bytes(y.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* vals = static_cast<const T*>(c.input(2).raw());
    T* p = static_cast<T*>(y.raw());
    std::fill_n(p, y.numel(), vals[0]);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        double v = std::trunc(idx[o * inner + i]);  // ONNX casts indices to int
        if (v < 0) v += (double)depth;
        // Out-of-range (or NaN) indices give an all-off row, as the spec says.
        if (!(v >= 0 && v < (double)depth)) continue;
        p[(o * depth + (int64_t)v) * inner + i] = vals[1];
      }
  });
}

// ---- Trilu --------------------------------------------------------------------------------------

void infer_Trilu(InferCtx& c) {
  c.require_inputs(1, 2);
  if (c.rank(0) < 2) fail(ErrorCode::invalid_input, "{}: input must have rank >= 2, got {}", c.node.label(), shape_str(c.shape(0)));
  if (c.has_input(1) && shape_numel(c.shape(1)) != 1) fail(ErrorCode::invalid_model, "{}: k must be a scalar", c.node.label());
  c.set_output(0, c.type(0), c.shape(0));
}
void ref_Trilu(KernelCtx& c) {
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  int64_t N = x.dim(-2), M = x.dim(-1);
  int64_t k = c.has_input(1) ? c.input(1).to_int64s()[0] : 0;
  k = std::clamp<int64_t>(k, -(N + 1), M + 1);  // beyond that nothing changes; avoids overflow
  bool upper = c.node.attr_i("upper", 1) != 0;
  size_t es = dtype_size(x.dtype());
  int64_t mats = N * M != 0 ? x.numel() / (N * M) : 0;
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(y.raw());
  for (int64_t m = 0; m < mats; m++)
    for (int64_t i = 0; i < N; i++) {
      // Upper keeps columns j >= i + k, lower keeps j <= i + k: one kept run per row.
      int64_t lo = upper ? std::clamp<int64_t>(i + k, 0, M) : 0;
      int64_t hi = upper ? M : std::clamp<int64_t>(i + k + 1, 0, M);
      size_t row = (size_t)((m * N + i) * M) * es;
      std::memset(dst + row, 0, (size_t)M * es);
      if (hi > lo) std::memcpy(dst + row + lo * es, src + row + lo * es, (size_t)(hi - lo) * es);
    }
}

// ---- TopK ---------------------------------------------------------------------------------------

int64_t topk_k(const InferCtx& c) {
  if (c.opset < 10) {
    c.require_inputs(1, 1);
    return c.node.attr_i("k", -1);
  }
  c.require_inputs(2, 2);
  std::vector<int64_t> k = ints_of(c, 1);
  if (k.size() != 1) fail(ErrorCode::invalid_model, "{}: K must hold one value, has {}", c.node.label(), k.size());
  return k[0];
}

void infer_TopK(InferCtx& c) {
  int64_t k = topk_k(c);
  Shape s = c.shape(0);
  if (s.empty()) fail(ErrorCode::invalid_input, "{}: input must have rank >= 1", c.node.label());
  int axis = norm_axis(c.node.attr_i("axis", -1), (int)s.size(), c.node);
  if (k < 0 || k > s[axis])
    fail(ErrorCode::invalid_input, "{}: k={} is out of range for axis {} of size {}", c.node.label(), k, axis, s[axis]);
  s[axis] = k;
  c.set_output(0, c.type(0), s);
  c.set_output(1, DType::i64, s);
}

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}
// A total order with NaN above everything, so sorting is well defined on any input.
template <typename T>
bool less_nan_max(T a, T b) {
  return !is_nan(a) && (is_nan(b) || a < b);
}

void ref_TopK(KernelCtx& c) {
  const Tensor& x = c.input(0);
  int axis = norm_axis(c.node.attr_i("axis", -1), x.rank(), c.node);
  bool largest = c.node.attr_i("largest", 1) != 0;
  int64_t dim = x.dim(axis), k = c.output(0).dim(axis);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x.rank(); d++)
    if (d != axis) (d < axis ? outer : inner) *= x.dim(d);
  int64_t* oi = c.output(1).data<int64_t>();
  dispatch_numeric(x.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* in = x.data<T>();
    T* ov = c.output(0).data<T>();
    const bool big = largest;  // a local copy: clang cannot capture the outer one in an OpenMP region
#pragma omp parallel
    {
      std::vector<int64_t> order(dim);  // one buffer per thread
#pragma omp for
      for (int64_t line = 0; line < outer * inner; line++) {
        int64_t o = line / inner, i = line % inner;
        const T* v = in + o * dim * inner + i;
        std::iota(order.begin(), order.end(), 0);
        // Ties keep the lower index first (ONNX spec); the result is always sorted.
        auto cmp = [&](int64_t a, int64_t b) {
          T va = v[a * inner], vb = v[b * inner];
          bool before = big ? less_nan_max(vb, va) : less_nan_max(va, vb);
          bool after = big ? less_nan_max(va, vb) : less_nan_max(vb, va);
          return before || (!after && a < b);
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
        for (int64_t j = 0; j < k; j++) {
          int64_t out = (o * k + j) * inner + i;
          ov[out] = v[order[j] * inner];
          oi[out] = order[j];
        }
      }
    }
  });
}

// ---- NonZero -------------------------------------------------------------------------------------

// Calls f(i) for each nonzero element index. -0.0 is zero; NaN is nonzero.
template <typename F>
void for_each_nonzero(const Tensor& x, const Node& n, F&& f) {
  int64_t total = x.numel();
  if (x.dtype() == DType::f16 || x.dtype() == DType::bf16) {
    const uint16_t* p = static_cast<const uint16_t*>(x.raw());
    for (int64_t i = 0; i < total; i++)
      if (p[i] & 0x7fff) f(i);
    return;
  }
  dispatch_any(x.dtype(), n, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if constexpr (std::is_same_v<T, bool>) {
      const uint8_t* p = static_cast<const uint8_t*>(x.raw());
      for (int64_t i = 0; i < total; i++)
        if (p[i]) f(i);
    } else {
      const T* p = static_cast<const T*>(x.raw());
      for (int64_t i = 0; i < total; i++)
        if (p[i] != T(0)) f(i);
    }
  });
}

void infer_NonZero(InferCtx& c) {
  c.require_inputs(1, 1);
  const Tensor& x = c.value(0);
  int64_t count = 0;
  for_each_nonzero(x, c.node, [&](int64_t) { count++; });
  // A scalar counts as a 1-element vector (numpy's behaviour, ORT's too).
  c.set_output(0, DType::i64, {std::max(x.rank(), 1), count});
}
void ref_NonZero(KernelCtx& c) {
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  int64_t count = y.dim(1), j = 0;
  int r = x.rank();
  std::vector<int64_t> st = shape_strides(x.shape());
  int64_t* p = y.data<int64_t>();
  for_each_nonzero(x, c.node, [&](int64_t i) {
    if (j >= count) return;  // cannot happen: infer counted the same tensor
    if (r == 0) p[j] = 0;
    for (int d = 0; d < r; d++) p[d * count + j] = (i / st[d]) % x.dim(d);
    j++;
  });
}

// ---- ReverseSequence -----------------------------------------------------------------------------

void rs_axes(const Node& n, int& time, int& batch) {
  time = (int)n.attr_i("time_axis", 0);
  batch = (int)n.attr_i("batch_axis", 1);
  if ((time != 0 && time != 1) || (batch != 0 && batch != 1) || time == batch)
    fail(ErrorCode::invalid_model, "{}: time_axis {} and batch_axis {} must be 0 and 1 in some order", n.label(),
         n.attr_i("time_axis", 0), n.attr_i("batch_axis", 1));
}

void infer_ReverseSequence(InferCtx& c) {
  c.require_inputs(2, 2);
  int time, batch;
  rs_axes(c.node, time, batch);
  if (c.rank(0) < 2) fail(ErrorCode::invalid_input, "{}: input must have rank >= 2", c.node.label());
  if (c.shape(1) != Shape{c.shape(0)[batch]} || !dtype_is_int(c.type(1)))
    fail(ErrorCode::invalid_input, "{}: sequence_lens must be an integer vector of {} elements, got {}", c.node.label(),
         c.shape(0)[batch], shape_str(c.shape(1)));
  c.set_output(0, c.type(0), c.shape(0));
}
void ref_ReverseSequence(KernelCtx& c) {
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  int time, batch;
  rs_axes(c.node, time, batch);
  std::vector<int64_t> lens = c.input(1).to_int64s();
  int64_t T = x.dim(time), B = x.dim(batch), inner = x.numel() / std::max<int64_t>(T * B, 1);
  size_t es = dtype_size(x.dtype()), chunk = (size_t)inner * es;
  if (!y.same_buffer(x) && x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(y.raw());
  auto at = [&](int64_t t, int64_t b) { return (size_t)(time == 0 ? t * B + b : b * T + t) * chunk; };
  for (int64_t b = 0; b < B; b++) {
    int64_t L = lens[b];
    if (L < 0 || L > T)
      fail(ErrorCode::invalid_input, "{}: sequence length {} is out of range [0, {}]", c.node.label(), L, T);
    for (int64_t t = 0; t < L; t++) std::memcpy(dst + at(t, b), src + at(L - 1 - t, b), chunk);
  }
}

}  // namespace

const OpDef kOp_Constant{"Constant", infer_Constant, ref_Constant};
const OpDef kOp_ConstantOfShape{"ConstantOfShape", infer_ConstantOfShape, ref_ConstantOfShape};
const OpDef kOp_Range{"Range", infer_Range, ref_Range};
const OpDef kOp_EyeLike{"EyeLike", infer_EyeLike, ref_EyeLike};
const OpDef kOp_OneHot{"OneHot", infer_OneHot, ref_OneHot};
const OpDef kOp_Trilu{"Trilu", infer_Trilu, ref_Trilu};
const OpDef kOp_TopK{"TopK", infer_TopK, ref_TopK};
const OpDef kOp_NonZero{"NonZero", infer_NonZero, ref_NonZero};
const OpDef kOp_ReverseSequence{"ReverseSequence", infer_ReverseSequence, ref_ReverseSequence};

}  // namespace rg

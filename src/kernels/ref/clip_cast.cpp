// Clip, Shrink (the clamping family), Cast and CastLike.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "kernels/ref/widen.h"

namespace rg {
namespace {

// ---- Clip: bounds are attributes before opset 11, optional scalar inputs from 11 on.

void infer_clip(InferCtx& c) {
  if (c.opset < 11) {
    c.require_inputs(1, 1);
    if (!dtype_is_float(c.type(0)))  // float-only before opset 11 (and the attributes are floats)
      fail(ErrorCode::unsupported_op, "{}: element type {} is not supported before opset 11", c.node.label(),
           dtype_name(c.type(0)));
  } else {
    c.require_inputs(1, 3);
    for (int i = 1; i <= 2; i++)
      if (c.has_input(i) && c.type(i) != c.type(0))
        fail(ErrorCode::invalid_model, "{}: bound {} is {} but the input is {}", c.node.label(), i,
             dtype_name(c.type(i)), dtype_name(c.type(0)));
  }
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  c.set_output(0, c.type(0), c.shape(0));
}

void ref_Clip(KernelCtx& c) {
  if (run_widened(c, ref_Clip)) return;
  const Tensor& X = c.input(0);
  Tensor& Y = c.output(0);
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    // No bound means the whole range (infinities included for floats).
    T lo = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
    T hi = std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
    if (c.opset < 11) {
      // Opset 6 documents the float32 range as the defaults.
      lo = (T)c.node.attr_f("min", std::numeric_limits<float>::lowest());
      hi = (T)c.node.attr_f("max", std::numeric_limits<float>::max());
    } else {
      for (int k = 1; k <= 2; k++) {
        if (!c.has_input(k)) continue;
        const Tensor& b = c.input(k);
        if (b.numel() != 1)
          fail(ErrorCode::invalid_input, "{}: bound {} must hold one value, has shape {}", c.node.label(), k,
               shape_str(b.shape()));
        (k == 1 ? lo : hi) = b.data<T>()[0];
      }
    }
    const T* x = X.data<T>();
    T* y = Y.data<T>();
    int64_t n = X.numel();
    // min > max gives max everywhere (the ONNX rule); NaN passes through both tests.
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
      T v = x[i] < lo ? lo : x[i];
      y[i] = v > hi ? hi : v;
    }
  });
}

// ---- Shrink: y = x + bias below -lambd, x - bias above lambd, 0 in between.

void infer_shrink(InferCtx& c) {
  c.require_inputs(1, 1);
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  c.set_output(0, c.type(0), c.shape(0));
}

void ref_Shrink(KernelCtx& c) {
  if (run_widened(c, ref_Shrink)) return;
  double lambd = c.node.attr_f("lambd", 0.5f), bias = c.node.attr_f("bias", 0.f);
  dispatch_numeric(c.input(0).dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = c.input(0).data<T>();
    T* y = c.output(0).data<T>();
    int64_t n = c.input(0).numel();
    for (int64_t i = 0; i < n; i++) {
      double v = (double)x[i];
      double r = v < -lambd ? v + bias : v > lambd ? v - bias : 0.0;
      if constexpr (std::is_integral_v<T>)  // truncated toward zero and saturated: no UB
        r = std::min(std::max(r, (double)std::numeric_limits<T>::lowest()), (double)std::numeric_limits<T>::max());
      y[i] = (T)r;
    }
  });
}

// ---- Cast: every pair of numeric types, bool, float16 and bfloat16.

// Tags for the two half types, whose storage is uint16_t.
struct Half {};
struct BF16 {};
template <typename T> struct Storage { using type = T; };
template <> struct Storage<Half> { using type = uint16_t; };
template <> struct Storage<BF16> { using type = uint16_t; };
template <> struct Storage<bool> { using type = uint8_t; };

template <typename F>
void dispatch_cast(DType t, const Node& n, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    case DType::f16: f(Half{}); break;
    case DType::bf16: f(BF16{}); break;
    case DType::i8: f(int8_t{}); break;
    case DType::u8: f(uint8_t{}); break;
    case DType::i16: f(int16_t{}); break;
    case DType::u16: f(uint16_t{}); break;
    case DType::i32: f(int32_t{}); break;
    case DType::u32: f(uint32_t{}); break;
    case DType::i64: f(int64_t{}); break;
    case DType::u64: f(uint64_t{}); break;
    case DType::boolean: f(bool{}); break;
    default: fail(ErrorCode::unsupported_op, "{}: cannot cast {}", n.label(), dtype_name(t));
  }
}

// Stored value -> an arithmetic C++ value (halves widen to float, bools to bool).
template <typename S>
auto decode(typename Storage<S>::type v) {
  if constexpr (std::is_same_v<S, Half>) return half_to_float(v);
  else if constexpr (std::is_same_v<S, BF16>) return bf16_to_float(v);
  else if constexpr (std::is_same_v<S, bool>) return v != 0;
  else return v;
}

// Floating value -> integer D without undefined behaviour: truncates toward zero, NaN gives
// 0, and the result wraps modulo 2^bits through int64 (what numpy does on x86 for values
// in int64's range).
template <typename D>
D float_to_int(double v) {
  if (std::isnan(v)) return 0;
  double t = std::trunc(v);
  if constexpr (std::is_same_v<D, uint64_t>)
    if (t >= 0) return t >= 18446744073709551616.0 ? std::numeric_limits<uint64_t>::max() : (uint64_t)t;
  if (t >= 9223372036854775807.0) return (D)std::numeric_limits<int64_t>::max();
  if (t <= -9223372036854775808.0) return (D)std::numeric_limits<int64_t>::min();
  return (D)(int64_t)t;
}

template <typename D, typename X>
typename Storage<D>::type encode(X x) {
  if constexpr (std::is_same_v<D, bool>) return x != 0;
  else if constexpr (std::is_same_v<D, Half>) return float_to_half((float)x);
  else if constexpr (std::is_same_v<D, BF16>) return float_to_bf16((float)x);
  else if constexpr (std::is_floating_point_v<D>) return (D)x;
  else if constexpr (std::is_floating_point_v<X>) return float_to_int<D>((double)x);
  else return (D)x;  // integers and bools: modulo conversion
}

void cast_tensor(const Tensor& X, Tensor& Y, const Node& n) {
  if (X.dtype() == Y.dtype()) {
    std::memcpy(Y.raw(), X.raw(), X.nbytes());
    return;
  }
  int64_t cnt = X.numel();
  dispatch_cast(X.dtype(), n, [&](auto stag) {
    using S = decltype(stag);
    dispatch_cast(Y.dtype(), n, [&](auto dtag) {
      using D = decltype(dtag);
      const auto* x = static_cast<const typename Storage<S>::type*>(X.raw());
      auto* y = static_cast<typename Storage<D>::type*>(Y.raw());
      for (int64_t i = 0; i < cnt; i++) y[i] = encode<D>(decode<S>(x[i]));
    });
  });
}

// Cast's target: an ONNX type code, or (opset 1-5) its name.
DType cast_target(const Node& n) {
  auto it = n.attrs.find("to");
  if (it == n.attrs.end()) fail(ErrorCode::invalid_model, "{}: attribute 'to' is missing", n.label());
  int code = 0;
  if (it->second.kind == Attribute::Kind::s) {
    static const char* const names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
                                        "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
                                        "COMPLEX128", "BFLOAT16"};
    code = -1;
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
      if (it->second.s == names[i]) code = i;
    if (code < 0) fail(ErrorCode::invalid_model, "{}: unknown type name '{}'", n.label(), it->second.s);
  } else {
    code = (int)n.attr_i("to", 0);
  }
  DType t = dtype_from_onnx(code);
  if (t == DType::undefined)
    fail(ErrorCode::unsupported_op, "{}: casting to ONNX type {} is not supported{}", n.label(), code,
         code == 8 ? " (strings)" : "");
  return t;
}

void infer_cast(InferCtx& c) {
  c.require_inputs(1, 1);
  c.set_output(0, cast_target(c.node), c.shape(0));
}
void ref_Cast(KernelCtx& c) { cast_tensor(c.input(0), c.output(0), c.node); }

void infer_castlike(InferCtx& c) {
  c.require_inputs(2, 2);
  c.set_output(0, c.type(1), c.shape(0));
}
void ref_CastLike(KernelCtx& c) { cast_tensor(c.input(0), c.output(0), c.node); }

}  // namespace

const OpDef kOp_Clip{"Clip", infer_clip, ref_Clip};
const OpDef kOp_Shrink{"Shrink", infer_shrink, ref_Shrink};
const OpDef kOp_Cast{"Cast", infer_cast, ref_Cast};
const OpDef kOp_CastLike{"CastLike", infer_castlike, ref_CastLike};

}  // namespace rg

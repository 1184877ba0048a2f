// Variadic element-wise operators (Min, Max, Sum, Mean: any number of inputs, all broadcast
// together), and the broadcasting selectors Where and PRelu.
#include <limits>
#include <type_traits>

#include "kernels/ref/widen.h"

namespace rg {
namespace {

void infer_variadic(InferCtx& c) {
  c.require_inputs(1);
  DType t = c.type(0);
  if (!dtype_is_float(t) && !dtype_is_int(t))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(t));
  Shape s = c.shape(0);
  for (int i = 1; i < c.num_inputs(); i++) {
    if (c.type(i) != t)
      fail(ErrorCode::invalid_model, "{}: input {} is {} but input 0 is {}", c.node.label(), i,
           dtype_name(c.type(i)), dtype_name(t));
    s = broadcast_shapes(s, c.shape(i), c.node);
  }
  c.set_output(0, t, s);
}

// y = x0 broadcast, then y = op(y, xk) for every further input (the output shape already is
// the broadcast of all of them, so each step broadcasts one input against it).
template <typename Op>
void fold_inputs(KernelCtx& c, Op op, bool mean) {
  Tensor& Y = c.output(0);
  const Shape& os = Y.shape();
  int n = (int)c.in.size();
  dispatch_numeric(Y.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* y = Y.data<T>();
    const T* x0 = c.input(0).template data<T>();
    for_each_broadcast2(os, os, c.input(0).shape(), [&](int64_t o, int64_t, int64_t i) { y[o] = x0[i]; });
    for (int k = 1; k < n; k++) {
      const T* xk = c.input(k).template data<T>();
      for_each_broadcast2(os, os, c.input(k).shape(), [&](int64_t o, int64_t, int64_t i) { y[o] = op(y[o], xk[i]); });
    }
    if (mean) {
      int64_t m = Y.numel();
      for (int64_t i = 0; i < m; i++) {
        if constexpr (std::is_integral_v<T>)  // T(n) itself could overflow a small type
          y[i] = T(std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>(y[i]) / n);
        else
          y[i] = y[i] / T(n);
      }
    }
  });
}

// NaN propagates through Min and Max, as numpy's minimum/maximum do.
template <typename T>
T max_(T a, T b) {
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  return a < b ? b : a;
}
template <typename T>
T min_(T a, T b) {
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  return b < a ? b : a;
}
// Sums wrap for integers (computed unsigned: signed overflow is undefined in C++).
template <typename T>
T sum_(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using W = std::conditional_t<(sizeof(T) <= 4), uint32_t, uint64_t>;
    return T(W(a) + W(b));
  } else {
    return a + b;
  }
}

void ref_Max(KernelCtx& c) {
  if (run_widened(c, ref_Max)) return;
  fold_inputs(c, [](auto a, auto b) { return max_(a, b); }, false);
}
void ref_Min(KernelCtx& c) {
  if (run_widened(c, ref_Min)) return;
  fold_inputs(c, [](auto a, auto b) { return min_(a, b); }, false);
}
void ref_Sum(KernelCtx& c) {
  if (run_widened(c, ref_Sum)) return;
  fold_inputs(c, [](auto a, auto b) { return sum_(a, b); }, false);
}
void ref_Mean(KernelCtx& c) {
  if (run_widened(c, ref_Mean)) return;
  fold_inputs(c, [](auto a, auto b) { return sum_(a, b); }, true);
}

// ---- Where(condition, X, Y): all three broadcast together.

void infer_where(InferCtx& c) {
  c.require_inputs(3, 3);
  if (c.type(0) != DType::boolean)
    fail(ErrorCode::invalid_model, "{}: condition must be bool, got {}", c.node.label(), dtype_name(c.type(0)));
  if (c.type(1) != c.type(2))
    fail(ErrorCode::invalid_model, "{}: X is {} but Y is {}", c.node.label(), dtype_name(c.type(1)),
         dtype_name(c.type(2)));
  Shape s = broadcast_shapes(broadcast_shapes(c.shape(0), c.shape(1), c.node), c.shape(2), c.node);
  c.set_output(0, c.type(1), s);
}

void ref_Where(KernelCtx& c) {
  const Tensor &C = c.input(0), &X = c.input(1), &Yin = c.input(2);
  Tensor& Out = c.output(0);
  const uint8_t* cond = static_cast<const uint8_t*>(C.raw());
  // Only moves elements: f16/bf16 are copied as their bits, bools as their bytes.
  dispatch_any(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = static_cast<const T*>(X.raw());
    const T* y = static_cast<const T*>(Yin.raw());
    T* o = static_cast<T*>(Out.raw());
    for_each_broadcast3(Out.shape(), C.shape(), X.shape(), Yin.shape(),
                        [&](int64_t i, int64_t ic, int64_t ix, int64_t iy) { o[i] = cond[ic] ? x[ix] : y[iy]; });
  });
}

// ---- PRelu(X, slope): slope broadcasts to X (unidirectionally).

// Before opset 7 a 1-D slope of X's channel count applies per channel (axis 1), not along
// the last axis as numpy broadcasting would place it.
Shape prelu_slope_shape(const Node& n, int64_t opset, const Shape& x, const Shape& s) {
  Shape eff = s;
  if (opset < 7 && s.size() == 1 && x.size() >= 2 && s[0] == x[1] && s[0] != 1) {
    eff.assign(x.size() - 1, 1);
    eff[0] = s[0];
  }
  if (broadcast_shapes(x, eff, n) != x)
    fail(ErrorCode::invalid_model, "{}: slope {} does not broadcast to X {}", n.label(), shape_str(s), shape_str(x));
  return eff;
}

void infer_prelu(InferCtx& c) {
  c.require_inputs(2, 2);
  if (c.type(0) != c.type(1))
    fail(ErrorCode::invalid_model, "{}: X is {} but slope is {}", c.node.label(), dtype_name(c.type(0)),
         dtype_name(c.type(1)));
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  prelu_slope_shape(c.node, c.opset, c.shape(0), c.shape(1));
  c.set_output(0, c.type(0), c.shape(0));
}

void ref_PRelu(KernelCtx& c) {
  if (run_widened(c, ref_PRelu)) return;
  const Tensor &X = c.input(0), &S = c.input(1);
  Tensor& Y = c.output(0);
  Shape ss = prelu_slope_shape(c.node, c.opset, X.shape(), S.shape());
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = X.data<T>();
    const T* s = S.data<T>();
    T* y = Y.data<T>();
    for_each_broadcast2(X.shape(), X.shape(), ss, [&](int64_t o, int64_t i, int64_t j) {
      if constexpr (std::is_integral_v<T>) {
        using W = std::conditional_t<(sizeof(T) <= 4), uint32_t, uint64_t>;  // wraps, no UB
        y[o] = x[i] < 0 ? T(W(s[j]) * W(x[i])) : x[i];
      } else {
        y[o] = x[i] < 0 ? s[j] * x[i] : x[i];
      }
    });
  });
}

}  // namespace

#define DEF(Name, infer) const OpDef kOp_##Name{#Name, infer, ref_##Name};
DEF(Max, infer_variadic)
DEF(Min, infer_variadic)
DEF(Sum, infer_variadic)
DEF(Mean, infer_variadic)
DEF(Where, infer_where)
DEF(PRelu, infer_prelu)
#undef DEF

}  // namespace rg

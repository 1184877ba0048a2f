// Reductions along one axis that are not plain folds: ArgMax, ArgMin (indices, int64) and
// CumSum (a running sum with the input's shape).
#include <type_traits>

#include "kernels/ref/widen.h"

namespace rg {
namespace {

// Extents around one axis: the tensor is [outer, len, inner] with the axis in the middle.
struct Span3 {
  int64_t outer = 1, len = 1, inner = 1;
};

Span3 span_at(const Shape& s, int a) {
  Span3 sp;
  for (int i = 0; i < (int)s.size(); i++) (i < a ? sp.outer : i == a ? sp.len : sp.inner) *= s[i];
  return sp;
}

// ---- ArgMax / ArgMin

void infer_arg(InferCtx& c) {
  c.require_inputs(1, 1);
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  const Shape& s = c.shape(0);
  if (s.empty()) fail(ErrorCode::invalid_model, "{}: input must have rank >= 1", c.node.label());
  int a = norm_axis(c.node.attr_i("axis", 0), (int)s.size(), c.node);
  Shape o = s;
  o[a] = 1;
  if (s[a] == 0 && shape_numel(o) > 0)
    fail(ErrorCode::invalid_input, "{}: cannot take the arg along an empty axis", c.node.label());
  if (!c.node.attr_i("keepdims", 1)) o.erase(o.begin() + a);
  c.set_output(0, DType::i64, o);
}

void arg(KernelCtx& c, bool is_max) {
  const Tensor& X = c.input(0);
  int64_t* y = c.output(0).data<int64_t>();
  int a = norm_axis(c.node.attr_i("axis", 0), X.rank(), c.node);
  bool last = c.node.attr_i("select_last_index", 0) != 0;
  Span3 sp = span_at(X.shape(), a);
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = X.data<T>();
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t i = 0; i < sp.inner; i++) {
        const T* xl = x + o * sp.len * sp.inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < sp.len; k++) {
          T v = xl[k * sp.inner], b = xl[best * sp.inner];
          // A NaN is the extreme value, as in numpy: the first one wins (the last one with
          // select_last_index).
          bool better;
          if (b != b) better = last && v != v;
          else if (v != v) better = true;
          else better = is_max ? (v > b || (last && v == b)) : (v < b || (last && v == b));
          if (better) best = k;
        }
        y[o * sp.inner + i] = best;
      }
  });
}

void ref_ArgMax(KernelCtx& c) {
  if (run_widened(c, ref_ArgMax)) return;
  arg(c, true);
}
void ref_ArgMin(KernelCtx& c) {
  if (run_widened(c, ref_ArgMin)) return;
  arg(c, false);
}

// ---- CumSum(x, axis): attributes exclusive (start from 0, not x[0]) and reverse.

void infer_cumsum(InferCtx& c) {
  c.require_inputs(2, 2);
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  if (!dtype_is_int(c.type(1)))
    fail(ErrorCode::invalid_model, "{}: axis must be an integer tensor, got {}", c.node.label(), dtype_name(c.type(1)));
  if (shape_numel(c.shape(1)) != 1)
    fail(ErrorCode::invalid_model, "{}: axis must hold one value, has shape {}", c.node.label(), shape_str(c.shape(1)));
  if (c.rank(0) == 0) fail(ErrorCode::invalid_model, "{}: input must have rank >= 1", c.node.label());
  c.set_output(0, c.type(0), c.shape(0));
}

void ref_CumSum(KernelCtx& c) {
  if (run_widened(c, ref_CumSum)) return;
  const Tensor& X = c.input(0);
  std::vector<int64_t> av = c.input(1).to_int64s();
  if (av.size() != 1) fail(ErrorCode::invalid_input, "{}: axis must hold one value", c.node.label());
  int a = norm_axis(av[0], X.rank(), c.node);
  bool exclusive = c.node.attr_i("exclusive", 0) != 0, reverse = c.node.attr_i("reverse", 0) != 0;
  Span3 sp = span_at(X.shape(), a);
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    // Integer sums wrap (computed unsigned: signed overflow is undefined in C++).
    using Acc = std::conditional_t<std::is_floating_point_v<T>, T, uint64_t>;
    const T* x = X.data<T>();
    T* y = c.output(0).template data<T>();
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t i = 0; i < sp.inner; i++) {
        int64_t base = o * sp.len * sp.inner + i;
        Acc acc = 0;
        for (int64_t j = 0; j < sp.len; j++) {
          int64_t k = base + (reverse ? sp.len - 1 - j : j) * sp.inner;
          if (exclusive) {
            y[k] = (T)acc;
            acc = acc + (Acc)x[k];
          } else {
            acc = acc + (Acc)x[k];
            y[k] = (T)acc;
          }
        }
      }
  });
}

}  // namespace

const OpDef kOp_ArgMax{"ArgMax", infer_arg, ref_ArgMax};
const OpDef kOp_ArgMin{"ArgMin", infer_arg, ref_ArgMin};
const OpDef kOp_CumSum{"CumSum", infer_cumsum, ref_CumSum};

}  // namespace rg

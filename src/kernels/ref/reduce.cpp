// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
// ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
//
// The axes are an attribute until ReduceSum-13 / the others-18, then an optional input.
// Empty axes reduce everything, unless noop_with_empty_axes=1, which reduces nothing (each
// element alone: the identity for Sum/Max/..., x^2 for SumSquare). Reducing over an empty
// dimension gives the operation's identity (0 for Sum, 1 for Prod, -inf for Max, NaN for
// Mean, as numpy does).
//
// Every reduction is one accumulation loop: the input is walked in order and each element
// is combined into acc[o], where o is its position in the keepdims-shaped output (the
// output "broadcast" back to the input shape). Floats accumulate in double.
#include <limits>
#include <type_traits>

#include "kernels/ref/widen.h"

namespace rg {
namespace {

bool axes_are_input(const Node& n, int64_t opset) {
  return n.op_type == "ReduceSum" ? opset >= 13 : opset >= 18;
}

// Which dimensions are reduced.
std::vector<bool> reduce_mask(const Node& n, int rank, const std::vector<int64_t>& axes) {
  std::vector<bool> m(rank, false);
  if (axes.empty()) {
    if (n.attr_i("noop_with_empty_axes", 0) == 0) m.assign(rank, true);
    return m;
  }
  for (int64_t a : axes) {
    if (rank == 0 && (a == 0 || a == -1)) continue;  // a scalar "reduced" along its only position
    int k = norm_axis(a, rank, n);
    if (m[k]) fail(ErrorCode::invalid_model, "{}: axis {} is listed twice", n.label(), a);
    m[k] = true;
  }
  return m;
}

Shape keep_shape(const Shape& s, const std::vector<bool>& m) {
  Shape k = s;
  for (size_t i = 0; i < s.size(); i++)
    if (m[i]) k[i] = 1;
  return k;
}

Shape out_shape(const Node& n, const Shape& s, const std::vector<bool>& m) {
  if (n.attr_i("keepdims", 1)) return keep_shape(s, m);
  Shape o;
  for (size_t i = 0; i < s.size(); i++)
    if (!m[i]) o.push_back(s[i]);
  return o;
}

enum class Op { sum, mean, max, min, prod, l1, l2, sum_square, log_sum, log_sum_exp };

Op op_of(const std::string& t) {
  if (t == "ReduceSum") return Op::sum;
  if (t == "ReduceMean") return Op::mean;
  if (t == "ReduceMax") return Op::max;
  if (t == "ReduceMin") return Op::min;
  if (t == "ReduceProd") return Op::prod;
  if (t == "ReduceL1") return Op::l1;
  if (t == "ReduceL2") return Op::l2;
  if (t == "ReduceSumSquare") return Op::sum_square;
  if (t == "ReduceLogSum") return Op::log_sum;
  return Op::log_sum_exp;
}

bool float_only(Op op) { return op == Op::l2 || op == Op::log_sum || op == Op::log_sum_exp; }

void infer_reduce(InferCtx& c) {
  bool input_axes = axes_are_input(c.node, c.opset);
  c.require_inputs(1, input_axes ? 2 : 1);
  DType t = c.type(0);
  bool ok = dtype_is_float(t) || (dtype_is_int(t) && !float_only(op_of(c.node.op_type)));
  if (!ok)
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(t));
  std::vector<int64_t> axes = input_axes ? (c.has_input(1) ? ints_of(c, 1) : std::vector<int64_t>())
                                         : c.node.attr_ints("axes");
  c.set_output(0, t, out_shape(c.node, c.shape(0), reduce_mask(c.node, c.rank(0), axes)));
}

// acc[o] = comb(acc[o], x[i]) over the input, then y[o] = fin(acc[o]).
template <typename T, typename Acc, typename Comb, typename Fin>
void reduce_loop(const Tensor& X, Tensor& Y, const Shape& keep, Acc init, Comb comb, Fin fin) {
  std::vector<Acc> acc((size_t)shape_numel(keep), init);
  const T* x = X.data<T>();
  for_each_broadcast2(X.shape(), X.shape(), keep, [&](int64_t i, int64_t, int64_t o) { acc[o] = comb(acc[o], x[i]); });
  T* y = Y.data<T>();
  for (size_t o = 0; o < acc.size(); o++) y[o] = fin(acc[o]);
}

// Integer results of floating computations, without undefined behaviour.
template <typename T>
T to_t(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return (T)v;
  } else {
    if (std::isnan(v)) return 0;
    if (v <= (double)std::numeric_limits<T>::lowest()) return std::numeric_limits<T>::lowest();
    if (v >= (double)std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
    return (T)v;
  }
}

template <typename T>
void reduce_typed(const Tensor& X, Tensor& Y, const Shape& keep, Op op, int64_t count) {
  constexpr bool is_f = std::is_floating_point_v<T>;
  // Integer sums and products wrap (computed in uint64: signed overflow is undefined).
  using Acc = std::conditional_t<is_f, double, uint64_t>;
  auto as_t = [](Acc a) { return is_f ? (T)a : (T)(int64_t)a; };
  auto same = [&](Acc a) { return as_t(a); };
  switch (op) {
    case Op::sum:
      return reduce_loop<T>(X, Y, keep, Acc(0), [](Acc a, T v) { return a + (Acc)v; }, same);
    case Op::sum_square:
      return reduce_loop<T>(X, Y, keep, Acc(0), [](Acc a, T v) { return a + (Acc)v * (Acc)v; }, same);
    case Op::l1:
      return reduce_loop<T>(X, Y, keep, Acc(0), [](Acc a, T v) { return a + (v < 0 ? Acc(0) - (Acc)v : (Acc)v); }, same);
    case Op::prod:
      return reduce_loop<T>(X, Y, keep, Acc(1), [](Acc a, T v) { return a * (Acc)v; }, same);
    case Op::mean:
      return reduce_loop<T>(X, Y, keep, Acc(0), [](Acc a, T v) { return a + (Acc)v; }, [&](Acc a) {
        if constexpr (is_f) return (T)(a / (double)count);  // 0/0 = NaN for an empty reduction
        else return count == 0 ? T(0) : (T)((int64_t)a / count);
      });
    case Op::max:
    case Op::min: {
      bool mx = op == Op::max;
      T init = is_f ? (mx ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity())
                    : (mx ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max());
      // NaN wins, as in numpy: once acc is NaN no comparison replaces it.
      return reduce_loop<T>(X, Y, keep, init, [mx](T a, T v) {
        if (v != v) return v;
        return (mx ? v > a : v < a) ? v : a;
      }, [](T a) { return a; });
    }
    case Op::l2:
      return reduce_loop<T>(X, Y, keep, 0.0, [](double a, T v) { return a + (double)v * v; },
                            [](double a) { return to_t<T>(std::sqrt(a)); });
    case Op::log_sum:
      return reduce_loop<T>(X, Y, keep, 0.0, [](double a, T v) { return a + (double)v; },
                            [](double a) { return to_t<T>(std::log(a)); });
    case Op::log_sum_exp: {
      // Shift by the maximum so exp() cannot overflow.
      std::vector<double> mx((size_t)shape_numel(keep), -INFINITY);
      const T* x = X.data<T>();
      for_each_broadcast2(X.shape(), X.shape(), keep, [&](int64_t i, int64_t, int64_t o) {
        if (!std::isnan(mx[o]) && !((double)x[i] <= mx[o])) mx[o] = (double)x[i];  // NaN sticks
      });
      for (double& m : mx)
        if (!std::isfinite(m) && !std::isnan(m)) m = m > 0 ? m : 0;  // all -inf: shift by 0
      std::vector<double> acc(mx.size(), 0.0);
      for_each_broadcast2(X.shape(), X.shape(), keep, [&](int64_t i, int64_t, int64_t o) {
        acc[o] += std::exp((double)x[i] - mx[o]);
      });
      T* y = Y.data<T>();
      for (size_t o = 0; o < acc.size(); o++)
        y[o] = to_t<T>(std::isinf(mx[o]) ? mx[o] : mx[o] + std::log(acc[o]));
      return;
    }
  }
}

void ref_Reduce(KernelCtx& c) {
  if (run_widened(c, ref_Reduce)) return;
  const Tensor& X = c.input(0);
  std::vector<int64_t> axes = axes_are_input(c.node, c.opset)
                                  ? (c.has_input(1) ? c.input(1).to_int64s() : std::vector<int64_t>())
                                  : c.node.attr_ints("axes");
  std::vector<bool> m = reduce_mask(c.node, X.rank(), axes);
  Shape keep = keep_shape(X.shape(), m);
  int64_t count = 1;
  for (int i = 0; i < X.rank(); i++)
    if (m[i]) count *= X.dim(i);
  Op op = op_of(c.node.op_type);
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if constexpr (std::is_integral_v<T>) {
      if (float_only(op))
        fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(X.dtype()));
    }
    reduce_typed<T>(X, c.output(0), keep, op, count);
  });
}

}  // namespace

#define DEF(Name) const OpDef kOp_##Name{#Name, infer_reduce, ref_Reduce};
DEF(ReduceSum)
DEF(ReduceMean)
DEF(ReduceMax)
DEF(ReduceMin)
DEF(ReduceProd)
DEF(ReduceL1)
DEF(ReduceL2)
DEF(ReduceSumSquare)
DEF(ReduceLogSum)
DEF(ReduceLogSumExp)
#undef DEF

}  // namespace rg

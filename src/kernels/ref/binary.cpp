// Element-wise binary operators with numpy broadcasting: arithmetic (Add, Sub, Mul, Div,
// Pow, Mod), comparisons, logical and bit-shift operators.
//
// Integer arithmetic wraps around like ONNX Runtime and numpy, but is computed on unsigned
// types so that overflow is defined behaviour in C++; integer division and modulo by zero
// give 0 instead of trapping (numpy does the same, with a warning).
#include <limits>
#include <type_traits>

#include "kernels/ref/widen.h"

namespace rg {
namespace {

// Pre-opset-7 models broadcast only with `broadcast=1`, and then align B at `axis` of A
// (default: B's dims are A's trailing dims). Returns B's shape padded with 1s so that numpy
// broadcasting does the same thing.
Shape legacy_b_shape(const Node& n, int64_t opset, const Shape& a, const Shape& b) {
  if (opset >= 7) return b;
  if (n.attr_i("broadcast", 0) == 0) {
    if (a != b)
      fail(ErrorCode::invalid_model, "{}: shapes {} and {} differ and broadcast is not set (opset {})",
           n.label(), shape_str(a), shape_str(b), opset);
    return b;
  }
  int ra = (int)a.size(), rb = (int)b.size();
  int64_t axis = n.has_attr("axis") ? n.attr_i("axis", 0) : ra - rb;
  if (axis < 0) axis += ra;
  if (rb > ra || axis < 0 || axis + rb > ra)
    fail(ErrorCode::invalid_model, "{}: cannot broadcast {} onto {} at axis {}", n.label(), shape_str(b),
         shape_str(a), axis);
  Shape s(ra, 1);
  for (int i = 0; i < rb; i++) s[axis + i] = b[i];
  return s;
}

// Output shape of a binary node; `b_eff` receives B's (possibly legacy-adjusted) shape.
Shape binary_shape(const Node& n, int64_t opset, const Shape& a, const Shape& b, Shape* b_eff = nullptr) {
  Shape bb = legacy_b_shape(n, opset, a, b);
  Shape out = broadcast_shapes(a, bb, n);
  if (opset < 7 && out != a)
    fail(ErrorCode::invalid_model, "{}: legacy broadcast of {} onto {} must keep A's shape", n.label(),
         shape_str(b), shape_str(a));
  if (b_eff) *b_eff = bb;
  return out;
}

bool is_numeric(DType t) { return dtype_is_float(t) || dtype_is_int(t); }

void require_same_types(const InferCtx& c) {
  for (int i = 1; i < c.num_inputs(); i++)
    if (c.type(i) != c.type(0))
      fail(ErrorCode::invalid_model, "{}: input {} is {} but input 0 is {}", c.node.label(), i,
           dtype_name(c.type(i)), dtype_name(c.type(0)));
}

// Add, Sub, Mul, Div, Mod: two inputs of one numeric type, output of that type.
void infer_arith(InferCtx& c) {
  c.require_inputs(2, 2);
  require_same_types(c);
  if (!is_numeric(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  c.set_output(0, c.type(0), binary_shape(c.node, c.opset, c.shape(0), c.shape(1)));
}

// Calls y[o] = op(a[i], b[j]) over the broadcast output, with T the input type.
template <typename Op>
void arith(KernelCtx& c, Op op) {
  const Tensor &A = c.input(0), &B = c.input(1);
  Tensor& Y = c.output(0);
  Shape bs;
  binary_shape(c.node, c.opset, A.shape(), B.shape(), &bs);
  dispatch_numeric(A.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* a = A.data<T>();
    const T* b = B.data<T>();
    T* y = Y.data<T>();
    for_each_broadcast2(Y.shape(), A.shape(), bs, [&](int64_t o, int64_t i, int64_t j) { y[o] = op(a[i], b[j]); });
  });
}

// Unsigned type wide enough that integer arithmetic on T never promotes to signed int.
template <typename T>
using Wide = std::conditional_t<(sizeof(T) <= 4), uint32_t, uint64_t>;

template <typename T>
T add_(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(Wide<T>(a) + Wide<T>(b));
  else return a + b;
}
template <typename T>
T sub_(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(Wide<T>(a) - Wide<T>(b));
  else return a - b;
}
template <typename T>
T mul_(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(Wide<T>(a) * Wide<T>(b));
  else return a * b;
}
template <typename T>
T div_(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>)
      if (b == -1) return T(Wide<T>(0) - Wide<T>(a));  // MIN / -1 overflows
    return T(a / b);  // truncates toward zero, as ONNX Runtime does
  } else {
    return a / b;
  }
}

// Mod: fmod=0 takes the divisor's sign (Python's %), fmod=1 the dividend's (C's fmod).
template <typename T>
T mod_(T a, T b, bool fmod) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == -1) return 0;
      T r = T(a % b);
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = T(r + b);
      return r;
    } else {
      return T(a % b);
    }
  } else {
    T r = std::fmod(a, b);
    if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  }
}

void ref_Add(KernelCtx& c) {
  if (run_widened(c, ref_Add)) return;
  arith(c, [](auto a, auto b) { return add_(a, b); });
}
void ref_Sub(KernelCtx& c) {
  if (run_widened(c, ref_Sub)) return;
  arith(c, [](auto a, auto b) { return sub_(a, b); });
}
void ref_Mul(KernelCtx& c) {
  if (run_widened(c, ref_Mul)) return;
  arith(c, [](auto a, auto b) { return mul_(a, b); });
}
void ref_Div(KernelCtx& c) {
  if (run_widened(c, ref_Div)) return;
  arith(c, [](auto a, auto b) { return div_(a, b); });
}
void ref_Mod(KernelCtx& c) {
  if (run_widened(c, ref_Mod)) return;
  bool fmod = c.node.attr_i("fmod", 0) != 0;
  arith(c, [fmod](auto a, auto b) { return mod_(a, b, fmod); });
}

// ---- Pow: the exponent may have another type; the output has the base's type.

void infer_pow(InferCtx& c) {
  c.require_inputs(2, 2);
  for (int i = 0; i < 2; i++)
    if (!is_numeric(c.type(i)))
      fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(i)));
  c.set_output(0, c.type(0), binary_shape(c.node, c.opset, c.shape(0), c.shape(1)));
}

// double -> T without undefined behaviour: NaN becomes 0, integers saturate.
template <typename T>
T from_double(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return (T)v;
  } else {
    if (std::isnan(v)) return 0;
    if (v <= (double)std::numeric_limits<T>::lowest()) return std::numeric_limits<T>::lowest();
    if (v >= (double)std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
    return (T)v;
  }
}

// Integer power by squaring (wrapping); negative exponents truncate 1/x^n toward zero.
template <typename T>
T ipow(T base, int64_t e) {
  if (e < 0) {
    if (base == 1) return 1;
    if constexpr (std::is_signed_v<T>)
      if (base == -1) return (e & 1) ? T(-1) : T(1);
    return 0;
  }
  T r = 1;
  while (e) {
    if (e & 1) r = mul_(r, base);
    base = mul_(base, base);
    e >>= 1;
  }
  return r;
}

void ref_Pow(KernelCtx& c) {
  if (run_widened(c, ref_Pow)) return;
  const Tensor &A = c.input(0), &B = c.input(1);
  Tensor& Y = c.output(0);
  Shape bs;
  binary_shape(c.node, c.opset, A.shape(), B.shape(), &bs);
  bool int_exp = dtype_is_int(B.dtype());
  // One conversion of the exponents per call keeps the double dispatch out of the loop.
  std::vector<double> e = B.to_doubles();
  std::vector<int64_t> ei = int_exp ? B.to_int64s() : std::vector<int64_t>();
  dispatch_numeric(A.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* a = A.data<T>();
    T* y = Y.data<T>();
    for_each_broadcast2(Y.shape(), A.shape(), bs, [&](int64_t o, int64_t i, int64_t j) {
      if constexpr (std::is_integral_v<T>) {
        if (int_exp) {
          y[o] = ipow(a[i], ei[j]);
          return;
        }
      }
      if constexpr (std::is_same_v<T, float>) {
        if (A.dtype() == B.dtype()) {  // float ** float in float, as numpy computes it
          y[o] = std::pow(a[i], (float)e[j]);
          return;
        }
      }
      y[o] = from_double<T>(std::pow((double)a[i], e[j]));
    });
  });
}

// ---- Comparisons: numeric (or bool, for Equal) inputs of one type, bool output.

void infer_compare(InferCtx& c) {
  c.require_inputs(2, 2);
  require_same_types(c);
  bool ok = is_numeric(c.type(0)) || (c.type(0) == DType::boolean && c.node.op_type == "Equal");
  if (!ok)
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  c.set_output(0, DType::boolean, binary_shape(c.node, c.opset, c.shape(0), c.shape(1)));
}

template <typename Op>
void compare(KernelCtx& c, Op op) {
  const Tensor &A = c.input(0), &B = c.input(1);
  Tensor& Y = c.output(0);
  Shape bs;
  binary_shape(c.node, c.opset, A.shape(), B.shape(), &bs);
  uint8_t* y = static_cast<uint8_t*>(Y.raw());
  // Bools are compared as their 0/1 bytes.
  DType t = A.dtype() == DType::boolean ? DType::u8 : A.dtype();
  dispatch_numeric(t, c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* a = static_cast<const T*>(A.raw());
    const T* b = static_cast<const T*>(B.raw());
    for_each_broadcast2(Y.shape(), A.shape(), bs, [&](int64_t o, int64_t i, int64_t j) { y[o] = op(a[i], b[j]); });
  });
}

void ref_Equal(KernelCtx& c) {
  if (run_widened(c, ref_Equal)) return;
  compare(c, [](auto a, auto b) { return a == b; });
}
void ref_Less(KernelCtx& c) {
  if (run_widened(c, ref_Less)) return;
  compare(c, [](auto a, auto b) { return a < b; });
}
void ref_Greater(KernelCtx& c) {
  if (run_widened(c, ref_Greater)) return;
  compare(c, [](auto a, auto b) { return a > b; });
}
void ref_LessOrEqual(KernelCtx& c) {
  if (run_widened(c, ref_LessOrEqual)) return;
  compare(c, [](auto a, auto b) { return a <= b; });
}
void ref_GreaterOrEqual(KernelCtx& c) {
  if (run_widened(c, ref_GreaterOrEqual)) return;
  compare(c, [](auto a, auto b) { return a >= b; });
}

// ---- Logical operators on bools.

void infer_logical(InferCtx& c) {
  c.require_inputs(2, 2);
  for (int i = 0; i < 2; i++)
    if (c.type(i) != DType::boolean)
      fail(ErrorCode::invalid_model, "{}: input {} must be bool, got {}", c.node.label(), i, dtype_name(c.type(i)));
  c.set_output(0, DType::boolean, binary_shape(c.node, c.opset, c.shape(0), c.shape(1)));
}

template <typename Op>
void logical(KernelCtx& c, Op op) {
  const Tensor &A = c.input(0), &B = c.input(1);
  Tensor& Y = c.output(0);
  Shape bs;
  binary_shape(c.node, c.opset, A.shape(), B.shape(), &bs);
  const uint8_t* a = static_cast<const uint8_t*>(A.raw());
  const uint8_t* b = static_cast<const uint8_t*>(B.raw());
  uint8_t* y = static_cast<uint8_t*>(Y.raw());
  for_each_broadcast2(Y.shape(), A.shape(), bs,
                      [&](int64_t o, int64_t i, int64_t j) { y[o] = op(a[i] != 0, b[j] != 0); });
}

void ref_And(KernelCtx& c) { logical(c, [](bool a, bool b) { return a && b; }); }
void ref_Or(KernelCtx& c) { logical(c, [](bool a, bool b) { return a || b; }); }
void ref_Xor(KernelCtx& c) { logical(c, [](bool a, bool b) { return a != b; }); }

// ---- BitShift on unsigned integers.

bool shift_left(const Node& n) {
  std::string d = n.attr_s("direction", "");
  if (d != "LEFT" && d != "RIGHT")
    fail(ErrorCode::invalid_model, "{}: direction must be LEFT or RIGHT, got '{}'", n.label(), d);
  return d == "LEFT";
}

void infer_bitshift(InferCtx& c) {
  c.require_inputs(2, 2);
  require_same_types(c);
  DType t = c.type(0);
  if (t != DType::u8 && t != DType::u16 && t != DType::u32 && t != DType::u64)
    fail(ErrorCode::invalid_model, "{}: BitShift needs an unsigned integer type, got {}", c.node.label(), dtype_name(t));
  shift_left(c.node);
  c.set_output(0, t, binary_shape(c.node, c.opset, c.shape(0), c.shape(1)));
}

void ref_BitShift(KernelCtx& c) {
  bool left = shift_left(c.node);
  // Shifting by the bit width or more is undefined in C++; every bit is shifted out.
  arith(c, [left](auto a, auto b) -> decltype(a) {
    using T = decltype(a);
    if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      if ((uint64_t)b >= sizeof(T) * 8) return 0;
      return left ? T(Wide<T>(a) << b) : T(a >> b);
    } else {
      return a;  // not reached: infer admits unsigned types only
    }
  });
}

}  // namespace

#define DEF(Name, infer) const OpDef kOp_##Name{#Name, infer, ref_##Name};
DEF(Add, infer_arith)
DEF(Sub, infer_arith)
DEF(Mul, infer_arith)
DEF(Div, infer_arith)
DEF(Mod, infer_arith)
DEF(Pow, infer_pow)
DEF(Equal, infer_compare)
DEF(Less, infer_compare)
DEF(Greater, infer_compare)
DEF(LessOrEqual, infer_compare)
DEF(GreaterOrEqual, infer_compare)
DEF(And, infer_logical)
DEF(Or, infer_logical)
DEF(Xor, infer_logical)
DEF(BitShift, infer_bitshift)
#undef DEF

}  // namespace rg

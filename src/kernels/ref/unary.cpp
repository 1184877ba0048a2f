// Element-wise unary operators: activations and math functions.
// All follow one pattern: same shape out as in, one scalar function per element.
#include <cmath>

#include "kernels/ref/common.h"

namespace rg {
namespace {

void infer_same_float(InferCtx& c) {
  c.require_inputs(1, 1);
  c.require_float(0);
  c.set_output(0, c.type(0), c.shape(0));
}

void infer_same_numeric(InferCtx& c) {
  c.require_inputs(1, 1);
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  c.set_output(0, c.type(0), c.shape(0));
}

template <typename F>
void map_f32(KernelCtx& c, F f) {
  const float* x = c.input(0).data<float>();
  float* y = c.output(0).data<float>();
  int64_t n = c.input(0).numel();
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
}

// Numeric ops defined for ints too (Abs, Neg, Sign).
template <typename F>
void map_numeric(KernelCtx& c, F f) {
  dispatch_numeric(c.input(0).dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = c.input(0).data<T>();
    T* y = c.output(0).data<T>();
    int64_t n = c.input(0).numel();
    for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
  });
}

float sigmoid(float x) { return x >= 0 ? 1.f / (1.f + std::exp(-x)) : std::exp(x) / (1.f + std::exp(x)); }

#define UNARY_F32(Name, expr)                          \
  void ref_##Name(KernelCtx& c) {                      \
    const Node& node = c.node;                         \
    (void)node;                                        \
    map_f32(c, [&](float x) -> float { return expr; }); \
  }

// NaN stays NaN, as in oneDNN's relu and PyTorch's: a fault that makes one must reach the
// output as a DUE whichever kernel ran, not be reset to 0 by the reference alone.
UNARY_F32(Relu, x < 0 ? 0.f : x)
UNARY_F32(Sigmoid, sigmoid(x))
UNARY_F32(Tanh, std::tanh(x))
UNARY_F32(Erf, std::erf(x))
UNARY_F32(Exp, std::exp(x))
UNARY_F32(Log, std::log(x))
UNARY_F32(Sqrt, std::sqrt(x))
UNARY_F32(Reciprocal, 1.f / x)
UNARY_F32(Floor, std::floor(x))
UNARY_F32(Ceil, std::ceil(x))
UNARY_F32(Round, std::nearbyint(x))  // ONNX rounds half to even, as nearbyint does by default
UNARY_F32(Sin, std::sin(x))
UNARY_F32(Cos, std::cos(x))
UNARY_F32(Tan, std::tan(x))
UNARY_F32(Asin, std::asin(x))
UNARY_F32(Acos, std::acos(x))
UNARY_F32(Atan, std::atan(x))
UNARY_F32(Sinh, std::sinh(x))
UNARY_F32(Cosh, std::cosh(x))
UNARY_F32(Asinh, std::asinh(x))
UNARY_F32(Acosh, std::acosh(x))
UNARY_F32(Atanh, std::atanh(x))
UNARY_F32(Softsign, x / (1.f + std::fabs(x)))
// log(1+exp(x)) without overflow for large x.
UNARY_F32(Softplus, x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)))
UNARY_F32(Mish, x * std::tanh(x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x))))
// Not an ONNX operator in the opsets we load: the recognize_activations pass creates it
// from x * Sigmoid(x) so the fast kernels can fuse it.
UNARY_F32(Swish, x * sigmoid(node.attr_f("alpha", 1.f) * x))
UNARY_F32(HardSwish, x * std::max(0.f, std::min(1.f, x / 6.f + 0.5f)))
UNARY_F32(LeakyRelu, x >= 0 ? x : x * node.attr_f("alpha", 0.01f))
UNARY_F32(Elu, x >= 0 ? x : node.attr_f("alpha", 1.f) * (std::exp(x) - 1.f))
UNARY_F32(Celu, std::max(0.f, x) + std::min(0.f, node.attr_f("alpha", 1.f) *
                                                   (std::exp(x / node.attr_f("alpha", 1.f)) - 1.f)))
UNARY_F32(Selu, node.attr_f("gamma", 1.05070102f) *
                    (x > 0 ? x : node.attr_f("alpha", 1.67326319f) * (std::exp(x) - 1.f)))
UNARY_F32(ThresholdedRelu, x > node.attr_f("alpha", 1.f) ? x : 0.f)
UNARY_F32(HardSigmoid, std::max(0.f, std::min(1.f, node.attr_f("alpha", 0.2f) * x + node.attr_f("beta", 0.5f))))

void ref_Gelu(KernelCtx& c) {
  std::string approx = c.node.attr_s("approximate", "none");
  if (approx == "tanh") {
    const float k = std::sqrt(2.f / (float)M_PI);
    map_f32(c, [&](float x) { return 0.5f * x * (1.f + std::tanh(k * (x + 0.044715f * x * x * x))); });
  } else {
    map_f32(c, [](float x) { return 0.5f * x * (1.f + std::erf(x * (float)M_SQRT1_2)); });
  }
}

void ref_Abs(KernelCtx& c) {
  map_numeric(c, [](auto x) { return x < 0 ? decltype(x)(-x) : x; });
}
void ref_Neg(KernelCtx& c) {
  map_numeric(c, [](auto x) { return decltype(x)(-x); });
}
void ref_Sign(KernelCtx& c) {
  map_numeric(c, [](auto x) { return decltype(x)(x > 0 ? 1 : (x < 0 ? -1 : 0)); });
}

void infer_not(InferCtx& c) {
  c.require_inputs(1, 1);
  if (c.type(0) != DType::boolean)
    fail(ErrorCode::invalid_model, "{}: Not needs a bool input, got {}", c.node.label(), dtype_name(c.type(0)));
  c.set_output(0, DType::boolean, c.shape(0));
}
void ref_Not(KernelCtx& c) {
  const uint8_t* x = static_cast<const uint8_t*>(c.input(0).raw());
  uint8_t* y = static_cast<uint8_t*>(c.output(0).raw());
  for (int64_t i = 0; i < c.input(0).numel(); i++) y[i] = !x[i];
}

void infer_isx(InferCtx& c) {
  c.require_inputs(1, 1);
  c.require_float(0);
  c.set_output(0, DType::boolean, c.shape(0));
}
void ref_IsNaN(KernelCtx& c) {
  const float* x = c.input(0).data<float>();
  uint8_t* y = static_cast<uint8_t*>(c.output(0).raw());
  for (int64_t i = 0; i < c.input(0).numel(); i++) y[i] = std::isnan(x[i]);
}
void ref_IsInf(KernelCtx& c) {
  bool pos = c.node.attr_i("detect_positive", 1) != 0, neg = c.node.attr_i("detect_negative", 1) != 0;
  const float* x = c.input(0).data<float>();
  uint8_t* y = static_cast<uint8_t*>(c.output(0).raw());
  for (int64_t i = 0; i < c.input(0).numel(); i++)
    y[i] = std::isinf(x[i]) && ((x[i] > 0 && pos) || (x[i] < 0 && neg));
}

// Identity and Dropout (inference mode) pass data through; passes remove them, but a
// graph output that is an Identity keeps its node.
void infer_identity(InferCtx& c) {
  c.require_inputs(1, 1);
  c.set_output(0, c.type(0), c.shape(0));
}
void ref_Identity(KernelCtx& c) {
  std::memcpy(c.output(0).raw(), c.input(0).raw(), c.input(0).nbytes());
}

void infer_dropout(InferCtx& c) {
  c.require_inputs(1, 3);
  // training_mode may be a runtime input: value() defers this check to run time then.
  // Training with ratio 0 keeps every element, so it is the identity and allowed.
  bool training = c.has_input(2) && c.value(2).numel() > 0 && c.value(2).to_doubles()[0] != 0;
  double ratio = c.has_input(1) ? c.value(1).to_doubles().at(0) : 0.5;
  if (training && ratio != 0)
    fail(ErrorCode::unsupported_op, "{}: training_mode=true is not supported (inference only)", c.node.label());
  c.set_output(0, c.type(0), c.shape(0));
  if (c.node.outputs.size() > 1 && !c.node.outputs[1].empty()) c.set_output(1, DType::boolean, c.shape(0));
}
void ref_Dropout(KernelCtx& c) {
  std::memcpy(c.output(0).raw(), c.input(0).raw(), c.input(0).nbytes());
  if (c.out.size() > 1 && c.out[1]) std::memset(c.output(1).raw(), 1, c.output(1).nbytes());
}

}  // namespace

#define DEF(Name, infer) const OpDef kOp_##Name{#Name, infer, ref_##Name};
DEF(Relu, infer_same_float)
DEF(Sigmoid, infer_same_float)
DEF(Tanh, infer_same_float)
DEF(Erf, infer_same_float)
DEF(Exp, infer_same_float)
DEF(Log, infer_same_float)
DEF(Sqrt, infer_same_float)
DEF(Reciprocal, infer_same_float)
DEF(Floor, infer_same_float)
DEF(Ceil, infer_same_float)
DEF(Round, infer_same_float)
DEF(Sin, infer_same_float)
DEF(Cos, infer_same_float)
DEF(Tan, infer_same_float)
DEF(Asin, infer_same_float)
DEF(Acos, infer_same_float)
DEF(Atan, infer_same_float)
DEF(Sinh, infer_same_float)
DEF(Cosh, infer_same_float)
DEF(Asinh, infer_same_float)
DEF(Acosh, infer_same_float)
DEF(Atanh, infer_same_float)
DEF(Softsign, infer_same_float)
DEF(Softplus, infer_same_float)
DEF(Mish, infer_same_float)
DEF(HardSwish, infer_same_float)
DEF(Swish, infer_same_float)
DEF(LeakyRelu, infer_same_float)
DEF(Elu, infer_same_float)
DEF(Celu, infer_same_float)
DEF(Selu, infer_same_float)
DEF(ThresholdedRelu, infer_same_float)
DEF(HardSigmoid, infer_same_float)
DEF(Gelu, infer_same_float)
DEF(Abs, infer_same_numeric)
DEF(Neg, infer_same_numeric)
DEF(Sign, infer_same_numeric)
DEF(Not, infer_not)
DEF(IsNaN, infer_isx)
DEF(IsInf, infer_isx)
DEF(Identity, infer_identity)
DEF(Dropout, infer_dropout)
#undef DEF

}  // namespace rg

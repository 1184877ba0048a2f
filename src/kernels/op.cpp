#include "kernels/op.h"

#include <cmath>

namespace rg {

void* Scratch::get() {
  if (allocated_ < size_) {
    buf_ = aligned_buffer(size_);
    allocated_ = size_;
  }
  return buf_.get();
}

const Shape& InferCtx::shape(int i) const {
  if (!has_input(i)) fail(ErrorCode::invalid_model, "{}: input {} is missing", node.label(), i);
  return in_shapes[i];
}

DType InferCtx::type(int i) const {
  if (!has_input(i)) fail(ErrorCode::invalid_model, "{}: input {} is missing", node.label(), i);
  return in_types[i];
}

const Tensor& InferCtx::value(int i) const {
  if (!has_input(i)) fail(ErrorCode::invalid_model, "{}: input {} is missing", node.label(), i);
  if (!in_values[i]) throw NeedsValue{};
  return *in_values[i];
}

void InferCtx::set_output(int i, DType t, Shape s) {
  for (int64_t d : s)
    if (d < 0) fail(ErrorCode::invalid_model, "{}: computed a negative output dimension {}", node.label(), shape_str(s));
  if ((int)out_types.size() <= i) {
    out_types.resize(i + 1, DType::undefined);
    out_shapes.resize(i + 1);
  }
  out_types[i] = t;
  out_shapes[i] = std::move(s);
}

void InferCtx::require_inputs(int min, int max) const {
  int n = 0;
  for (int i = 0; i < num_inputs(); i++)
    if (has_input(i)) n = i + 1;
  if (n < min || (max >= 0 && n > max)) {
    if (max == min)
      fail(ErrorCode::invalid_model, "{}: expects {} inputs, has {}", node.label(), min, n);
    fail(ErrorCode::invalid_model, "{}: expects {} to {} inputs, has {}", node.label(), min,
         max < 0 ? std::string("any") : std::to_string(max), n);
  }
  for (int i = 0; i < min; i++)
    if (!has_input(i)) fail(ErrorCode::invalid_model, "{}: required input {} is missing", node.label(), i);
}

void InferCtx::require_float(int i) const {
  if (type(i) != DType::f32)
    fail(ErrorCode::unsupported_op, "{}: input {} is {}; only float32 is supported for this operator",
         node.label(), i, dtype_name(type(i)));
}

bool clip_bounds(const Node& n, const std::vector<const Tensor*>& in, float& lo, float& hi) {
  lo = n.attr_f("min", -INFINITY);
  hi = n.attr_f("max", INFINITY);
  for (int k = 1; k <= 2; k++) {
    if (!n.has_input(k)) continue;
    if (k >= (int)in.size() || !in[k] || in[k]->dtype() != DType::f32 || in[k]->numel() != 1) return false;
    (k == 1 ? lo : hi) = in[k]->data<float>()[0];
  }
  return true;
}

const Tensor& KernelCtx::input(int i) const {
  if (!has_input(i)) fail(ErrorCode::invalid_model, "{}: input {} is missing", node.label(), i);
  return *in[i];
}

std::vector<Tensor> eval_node(const Node& n, int64_t opset, const std::vector<const Tensor*>& inputs) {
  const OpDef* def = find_op(n.domain, n.op_type);
  if (!def)
    fail(ErrorCode::unsupported_op, "unsupported operator {} (node '{}', opset {})", n.op_type, n.name, opset);
  InferCtx ic(n, opset);
  for (const Tensor* t : inputs) {
    ic.in_types.push_back(t ? t->dtype() : DType::undefined);
    ic.in_shapes.push_back(t ? t->shape() : Shape{});
    ic.in_values.push_back(t);
  }
  try {
    def->infer(ic);
  } catch (const NeedsValue&) {
    fail(ErrorCode::internal, "{}: inference needs a value although all inputs are known", n.label());
  }
  std::vector<Tensor> outs;
  KernelCtx kc(n, opset);
  kc.in = inputs;
  for (size_t i = 0; i < ic.out_types.size(); i++) outs.emplace_back(ic.out_types[i], ic.out_shapes[i]);
  for (auto& t : outs) kc.out.push_back(&t);
  def->ref(kc);
  return outs;
}

}  // namespace rg

// RangeGuard(x, lo, hi) -> (y, count): range supervision in one pass. Not an ONNX
// operator: the recognize_range_guards pass builds it from the standard-ONNX check that
// `rangeguard protect` writes (Clip / Min(Max) / Where plus the out-of-range counter),
// so the protected model costs one pass per site here instead of six.
//   mode "clamp": y = min(max(x, lo), hi)   (NaN stays NaN, as Clip/Max/Min do)
//   mode "zero":  y = out_of_range(x) ? 0 : x
//   count = number of x < lo, x > hi or NaN (int64 scalar; optional output), plus the
//           optional 4th input `prev` (int64 scalar): the running total of the sites
//           before, so the detector's sum needs no Add step per site
// lo and hi are constants broadcastable to x (a scalar or per channel).
#include "kernels/ref/common.h"

namespace rg {
namespace {

void infer_RangeGuard(InferCtx& c) {
  c.require_inputs(3, 4);
  for (int i = 0; i < 3; i++) c.require_float(i);
  if (c.has_input(3) && (c.type(3) != DType::i64 || shape_numel(c.shape(3)) != 1))
    fail(ErrorCode::invalid_model, "RangeGuard '{}': the running count must be an int64 scalar", c.node.name);
  broadcast_shapes(c.shape(0), broadcast_shapes(c.shape(1), c.shape(2), c.node), c.node);
  c.set_output(0, DType::f32, c.shape(0));
  if (c.node.outputs.size() > 1 && !c.node.outputs[1].empty()) c.set_output(1, DType::i64, {});
}

void ref_RangeGuard(KernelCtx& c) {
  const Tensor& x = c.input(0);
  const float* px = x.data<float>();
  const float* lo = c.input(1).data<float>();
  const float* hi = c.input(2).data<float>();
  float* y = c.output(0).data<float>();
  bool zero = c.node.attr_s("mode", "clamp") == "zero";
  int64_t count = 0;
  for_each_broadcast3(x.shape(), x.shape(), c.input(1).shape(), c.input(2).shape(),
                      [&](int64_t o, int64_t i, int64_t l, int64_t h) {
                        float v = px[i];
                        bool out = v < lo[l] || v > hi[h] || v != v;
                        count += out;
                        y[o] = zero ? (out ? 0.f : v) : (v != v ? v : std::min(std::max(v, lo[l]), hi[h]));
                      });
  if (c.in.size() > 3 && c.in[3]) count += c.input(3).data<int64_t>()[0];
  if (c.out.size() > 1 && c.out[1]) c.output(1).data<int64_t>()[0] = count;
}

}  // namespace

const OpDef kOp_RangeGuard{"RangeGuard", infer_RangeGuard, ref_RangeGuard};

}  // namespace rg

// Rewrites the plan makes once shapes are concrete (graph passes run before they are).
#include <cstdio>

#include "runtime/plan.h"

namespace rg {

// Squeeze-and-excite ends in y = Conv(Mul(x, s), W): x scaled per channel by s, one value
// per channel of a single image ([1, C, 1, 1], computed at run time), then a 1x1
// projection. That equals Conv(x, W * s): the scale moves onto the weights (O * C values)
// instead of the activation (C * H * W), and x is read once, by the convolution, instead of
// being read and written by the Mul first. Only where the weights are the smaller (early
// blocks of EfficientNet and MobileNetV3: 96 x 56 x 56 values against 24 x 96) and at
// batch 1 (each image has its own s). The Mul then computes W * s into a new value; a
// fault campaign's weight flip still reaches it (Plan::refresh_constant), since W stays
// the Mul's constant input.
void Plan::move_scale_into_weights(int ni) {
  Node& mul = graph_.nodes[ni];
  // fp32 only: in bf16 the activation's Mul moves half the bytes, and W * s ran the
  // reference kernel (the scale arrives in bf16), which cost more than the Mul it replaced
  // (mobilenet_v3_small 1.14x).
  if (!opts_.fast_kernels || !opts_.fuse || opts_.precision != Precision::fp32)
    return;
  if (mul.op_type != "Mul" || !mul.domain.empty() || mul.inputs.size() != 2 || mul.outputs.size() != 1 ||
      mul.inputs[0] == mul.inputs[1])
    return;
  const std::string& out = mul.outputs[0];
  auto users = consumers_.find(out);
  if (users == consumers_.end() || users->second.size() != 1 || graph_.is_graph_output(out) ||
      opts_.keep_values.count(out))
    return;
  int ci = users->second[0];
  Node& conv = graph_.nodes[ci];
  if (conv.op_type != "Conv" || !conv.domain.empty() || conv.inputs.size() < 2 || conv.inputs[0] != out ||
      conv.attr_i("group", 1) != 1)
    return;
  int ws = slot_of(conv.inputs[1]);
  if (ws < 0 || !slots_[ws].is_const || slots_[ws].type != DType::f32) return;
  const Shape& w = slots_[ws].shape;
  if (w.size() != 4 || w[2] != 1 || w[3] != 1) return;
  // Which operand is the per-channel scale: [1, C, 1, 1], not a constant (a constant one
  // would fold W * s into a new constant that a weight fault no longer reaches).
  for (int k = 0; k < 2; k++) {
    int xs = slot_of(mul.inputs[k]), ss = slot_of(mul.inputs[1 - k]);
    if (xs < 0 || ss < 0 || !slots_[xs].shape_known || !slots_[ss].shape_known || slots_[ss].is_const ||
        slots_[xs].type != DType::f32 || slots_[ss].type != DType::f32)
      continue;
    const Shape& x = slots_[xs].shape;
    if (x.size() != 4 || x[0] != 1 || x[1] != w[1] || slots_[ss].shape != Shape{1, w[1], 1, 1}) continue;
    // Scaling O * C weights (and reordering them, each run) must cost well under the
    // C * H * W activation's read and write: a step costs a few microseconds however
    // small, and at 80 x 240 weights against 240 x 14 x 14 values (EfficientNet's stage 4)
    // the two took the same time.
    if (w[0] * 8 > x[2] * x[3]) return;
    std::string xname = mul.inputs[k], sname = mul.inputs[1 - k], wname = conv.inputs[1];
    std::string scaled = wname + "#scaled_by:" + sname;
    auto swap_user = [&](const std::string& v, int from, int to) {
      for (int& u : consumers_[v])
        if (u == from) u = to;
    };
    swap_user(xname, ni, ci);
    swap_user(wname, ci, ni);
    consumers_.erase(out);
    producers_.erase(out);
    consumers_[scaled] = {ci};
    producers_[scaled] = ni;
    mul.inputs = {wname, sname};
    mul.outputs = {scaled};
    conv.inputs[0] = xname;
    conv.inputs[1] = scaled;
    if (opts_.verbose)
      std::fprintf(stderr, "plan: %s scales %s's weights instead\n", mul.label().c_str(), conv.label().c_str());
    return;
  }
}

}  // namespace rg

#include "runtime/model_info.h"

#include <set>

#include "kernels/op.h"
#include "runtime/session.h"

namespace rg {

int64_t node_flops(const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  if (out.empty()) return 0;
  int64_t on = shape_numel(out[0]);
  const std::string& t = n.op_type;
  if ((t == "Conv" || t == "ConvTranspose") && in.size() >= 2 && in[1].size() >= 3) {
    // Each output (Conv) / input (ConvTranspose) element is a dot product over C/g * kernel.
    int64_t k = shape_numel(in[1]) / in[1][0];
    if (t == "Conv") return 2 * on * k;
    return 2 * shape_numel(in[0]) * (shape_numel(in[1]) / in[1][0]);
  }
  if ((t == "Gemm" || t == "MatMul") && in.size() >= 2 && !in[0].empty()) {
    int64_t kdim = in[0].back();
    if (t == "Gemm" && n.attr_i("transA", 0)) kdim = in[0][0];
    return 2 * on * kdim;
  }
  if ((t == "MaxPool" || t == "AveragePool") && n.has_attr("kernel_shape"))
    return on * shape_numel(n.attr_ints("kernel_shape"));
  if (t == "GlobalAveragePool" || t == "GlobalMaxPool" || t.rfind("Reduce", 0) == 0)
    return in.empty() ? 0 : shape_numel(in[0]);
  static const std::set<std::string> kMoves = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
      "Concat", "Split", "Slice", "Gather", "Shape", "Cast", "Constant", "ConstantOfShape", "Expand",
      "Tile", "Pad", "Identity", "Dropout", "Range", "Size"};
  if (kMoves.count(t)) return 0;
  return on;  // element-wise and normalisation: about one operation per output
}

ModelInfo inspect_model(const Graph& g, const SessionOptions& o) {
  ModelInfo mi;
  mi.producer = g.producer_name + (g.producer_version.empty() ? "" : " " + g.producer_version);
  mi.ir_version = g.ir_version;
  mi.opset = g.opset();
  mi.inputs = g.inputs;
  mi.outputs = g.outputs;
  mi.nodes = (int64_t)g.nodes.size();
  for (const auto& n : g.nodes) mi.op_histogram[n.domain.empty() ? n.op_type : n.domain + "." + n.op_type]++;
  mi.parameters = g.parameter_count();
  mi.unsupported = unsupported_nodes(g);
  try {
    check_supported(g);
  } catch (const Error& e) {
    mi.unsupported_reason = e.what();
  }
  if (!mi.unsupported_reason.empty()) return mi;
  try {
    Session s(g, o);
    mi.planned_input_shapes = s.default_input_shapes(1);
    Plan& p = s.plan(mi.planned_input_shapes);
    mi.nodes_after_passes = (int64_t)p.steps().size();
    for (const auto& st : p.steps()) {
      std::vector<Shape> ins, outs;
      for (int i : st.in) ins.push_back(i < 0 ? Shape{} : p.slots()[i].shape);
      for (int i : st.out) outs.push_back(i < 0 ? Shape{} : p.slots()[i].shape);
      if (st.node) mi.flops += node_flops(*st.node, ins, outs);
      for (const Node* f : st.fused) mi.flops += node_flops(*f, {outs[0]}, {outs[0]});  // element-wise
      mi.kernel_impls[st.fast ? st.fast->impl() : "ref"]++;
      mi.fused_nodes += (int64_t)st.fused.size();
    }
    mi.activation_bytes = p.activation_bytes();
    mi.scratch_bytes = p.scratch_bytes();
    mi.isa = fast_isa();
    mi.planned = true;
  } catch (const Error& e) {
    mi.plan_error = e.what();
  }
  return mi;
}

}  // namespace rg

// Attention scales its queries by a constant before the score MatMul (q / sqrt(d), as
// PyTorch exports it). Scaling the MatMul's output instead gives the same values and
// fuses into the MatMul as an output post-op, so the separate pass over q disappears.
#include "passes/passes.h"

namespace rg {
namespace {

// The constant of x * c, c * x or x / c when it is one float (rank <= 1, so it cannot
// change x's shape by broadcasting); `x` gets the other input.
const Tensor* scalar_scale(const Graph& g, const Node& d, std::string& x) {
  if (!d.domain.empty() || (d.op_type != "Div" && d.op_type != "Mul") || d.inputs.size() != 2) return nullptr;
  for (int k : {1, 0}) {
    if (k == 0 && d.op_type == "Div") break;
    const Tensor* c = g.initializer(d.inputs[k]);
    if (c && c->dtype() == DType::f32 && c->numel() == 1 && c->rank() <= 1 && !g.initializer(d.inputs[1 - k])) {
      x = d.inputs[1 - k];
      return c;
    }
  }
  return nullptr;
}

}  // namespace

int move_scale_after_matmul(Graph& g) {
  int changes = 0;
  for (int mi = 0; mi < (int)g.nodes.size(); mi++) {
    const Node& m = g.nodes[mi];
    // Between two activations only: a Linear layer's constant weights take its bias Add,
    // which must stay first after the MatMul.
    if (m.op_type != "MatMul" || !m.domain.empty() || m.inputs.size() != 2 || g.initializer(m.inputs[0]) ||
        g.initializer(m.inputs[1]))
      continue;
    auto producers = g.producers();
    auto consumers = g.consumers();
    for (int k = 0; k < 2; k++) {
      auto p = producers.find(m.inputs[k]);
      if (p == producers.end() || consumers[m.inputs[k]].size() != 1 || g.is_graph_output(m.inputs[k])) continue;
      std::string x;
      if (!scalar_scale(g, g.nodes[p->second], x)) continue;
      Node scale = g.nodes[p->second];
      std::string out = m.outputs[0], raw = g.unique_name(out + "/unscaled");
      Node& mm = g.nodes[mi];
      mm.inputs[k] = x;
      mm.outputs[0] = raw;
      const std::string c = scale.inputs[scale.inputs[0] == x ? 1 : 0];
      scale.inputs = {raw, c};
      scale.outputs = {out};
      g.nodes.erase(g.nodes.begin() + p->second);  // before the MatMul, which moves up one
      g.nodes.insert(g.nodes.begin() + mi, std::move(scale));
      changes++;
      mi -= 2;  // look at the MatMul (now at mi - 1) again: its other input may be scaled too
      break;
    }
  }
  return changes;
}

}  // namespace rg

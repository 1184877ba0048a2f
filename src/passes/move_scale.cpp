// Attention scales its queries by a constant before the score MatMul (q / sqrt(d), as
// PyTorch exports it). Scaling the MatMul's output instead gives the same values and
// fuses into the MatMul as an output post-op, so the separate pass over q disappears.
// Likewise a per-channel scale after a Transpose (ConvNeXt's layer scale, applied after
// the permute back to NCHW) moves before it, next to the Linear layer it then fuses into.
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

// The one axis (of a rank-`rank` result, right-aligned broadcasting) along which constant
// `c` varies; -1 when it varies along none or more than one.
int varying_axis(const Tensor& c, int rank) {
  int axis = -1;
  for (int d = 0; d < c.rank(); d++) {
    if (c.shape()[d] == 1) continue;
    if (axis >= 0) return -1;
    axis = rank - c.rank() + d;
  }
  return axis;
}

}  // namespace

int move_scale_before_transpose(Graph& g) {
  int changes = 0;
  for (int ti = 0; ti < (int)g.nodes.size(); ti++) {
    const Node& t = g.nodes[ti];
    if (t.op_type != "Transpose" || !t.domain.empty() || t.inputs.size() != 1 || t.outputs.size() != 1) continue;
    const std::vector<int64_t> perm = t.attr_ints("perm");
    auto consumers = g.consumers();
    const auto& users = consumers[t.outputs[0]];
    if (perm.empty() || users.size() != 1 || g.is_graph_output(t.outputs[0])) continue;
    const int mi = users[0];
    const Node& m = g.nodes[mi];
    if (m.op_type != "Mul" || !m.domain.empty() || m.inputs.size() != 2 || m.inputs[0] == m.inputs[1]) continue;
    const int k = m.inputs[0] == t.outputs[0] ? 1 : 0;
    const Tensor* c = g.initializer(m.inputs[k]);
    if (!c || c->dtype() != DType::f32 || c->numel() < 2 || c->rank() > (int)perm.size()) continue;
    const int axis = varying_axis(*c, (int)perm.size());
    if (axis < 0 || perm[axis] < 0 || perm[axis] >= (int64_t)perm.size()) continue;
    // The same values along input axis perm[axis]: shape [n, 1, ...] reaching the last dim.
    Shape moved(perm.size() - perm[axis], 1);
    moved[0] = c->numel();
    const std::string cname = g.unique_name(m.inputs[k] + "/moved"), raw = g.unique_name(t.outputs[0] + "/scaled");
    g.initializers[cname] = c->reshaped(moved);
    Node scale = m;
    scale.inputs = {t.inputs[0], cname};
    scale.outputs = {raw};
    g.nodes[ti].inputs[0] = raw;
    g.nodes[ti].outputs[0] = g.nodes[mi].outputs[0];
    g.nodes.erase(g.nodes.begin() + mi);  // after the Transpose: ti stays valid
    g.nodes.insert(g.nodes.begin() + ti, std::move(scale));
    changes++;
    ti++;  // the Transpose, now one further on
  }
  return changes;
}

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

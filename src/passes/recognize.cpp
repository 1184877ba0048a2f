// Rewrites decomposed activations (x*Sigmoid(x), the Erf GELU formula, ...) into one node
// each, so the fast kernels can run them in one pass or fuse them into the Conv/MatMul
// before them. Matching is shared with range supervision (patterns.h).
#include "passes/passes.h"
#include "passes/patterns.h"

namespace rg {

int recognize_activations(Graph& g) {
  std::vector<ActivationMatch> found = find_activations(g);
  std::vector<bool> drop(g.nodes.size(), false);
  std::map<int, Node> replace;  // at the index of the pattern's last node
  for (const auto& a : found) {
    if (a.nodes.size() < 2) continue;
    Node n;
    n.name = a.node_name;
    n.inputs = {a.input};
    n.outputs = {a.output};
    if (a.kind == "swish") {
      n.op_type = "Swish";
    } else if (a.kind == "hardswish") {
      n.op_type = "HardSwish";
    } else if (a.kind == "mish") {
      n.op_type = "Mish";
    } else if (a.kind == "gelu") {
      n.op_type = "Gelu";
      if (a.tanh_approx) n.attrs["approximate"] = Attribute::of_string("tanh");
    } else {
      continue;
    }
    for (int k : a.nodes) drop[k] = true;
    replace[a.nodes.back()] = n;
  }
  if (replace.empty()) return 0;
  std::vector<Node> out;
  for (size_t i = 0; i < g.nodes.size(); i++) {
    auto it = replace.find((int)i);
    if (it != replace.end()) out.push_back(it->second);
    else if (!drop[i]) out.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(out);
  return (int)replace.size();
}

}  // namespace rg

// Evaluates nodes whose inputs are all initializers and replaces them with initializers.
// Shape-dependent chains (Shape -> Gather -> Unsqueeze -> Concat) fold later, in the
// planner, once input shapes are concrete.
#include "passes/passes.h"

namespace rg {

int fold_constants(Graph& g, const Evaluator& eval) {
  int changes = 0;
  std::vector<Node> kept;
  for (auto& n : g.nodes) {
    bool all_const = n.domain.empty() && !n.outputs.empty();
    std::vector<const Tensor*> ins;
    for (const auto& in : n.inputs) {
      if (in.empty()) {
        ins.push_back(nullptr);
        continue;
      }
      const Tensor* t = g.initializer(in);
      if (!t) all_const = false;
      ins.push_back(t);
    }
    // Random generators must run per inference; graph outputs keep their producer so the
    // output name stays attached to a node.
    static const std::set<std::string> kNever = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                                 "RandomUniformLike", "Multinomial", "Bernoulli"};
    bool is_output = false;
    for (const auto& o : n.outputs) is_output |= g.is_graph_output(o);
    if (!all_const || kNever.count(n.op_type) || is_output) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<Tensor> outs;
    try {
      outs = eval(n, ins);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::internal) throw;
      kept.push_back(std::move(n));  // let the planner report it with full context
      continue;
    }
    for (size_t i = 0; i < n.outputs.size() && i < outs.size(); i++)
      if (!n.outputs[i].empty()) g.initializers[n.outputs[i]] = std::move(outs[i]);
    changes++;
  }
  g.nodes = std::move(kept);
  return changes;
}

}  // namespace rg

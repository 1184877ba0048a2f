// Structural clean-ups: Identity/Dropout (and zero Pad) removal and dead-node elimination.
#include <unordered_set>

#include "passes/passes.h"
#include "passes/patterns.h"

namespace rg {

static void rename_uses(Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes)
    for (auto& in : n.inputs)
      if (in == from) in = to;
}

// A Pad that adds nothing: torch's exporter writes one before every AveragePool of a
// DenseNet transition. Left in, it copied the tensor into plain layout and sent the pool
// to oneDNN's slowest kernel.
static bool zero_pad(const Graph& g, const Node& n) {
  if (n.op_type != "Pad") return false;
  std::vector<int64_t> pads;
  if (n.has_attr("pads")) {  // opset < 11
    pads = n.attr_ints("pads");
  } else {
    const Tensor* t = n.inputs.size() > 1 ? constant_tensor(g, n.inputs[1]) : nullptr;
    if (!t || t->dtype() != DType::i64) return false;
    pads = t->to_int64s();
  }
  for (int64_t p : pads)
    if (p != 0) return false;
  return true;
}

int remove_identity(Graph& g) {
  int changes = 0;
  auto producers = g.producers();
  for (size_t i = 0; i < g.nodes.size();) {
    Node& n = g.nodes[i];
    bool passthrough = n.domain.empty() && (n.op_type == "Identity" || zero_pad(g, n) ||
        (n.op_type == "Dropout" && !n.has_input(2) && (n.outputs.size() < 2 || n.outputs[1].empty())));
    // A node without an output (a malformed model the fuzzer wrote) passes nothing on.
    if (!passthrough || n.inputs.empty() || n.inputs[0].empty() || n.outputs.empty() || n.outputs[0].empty()) {
      i++;
      continue;
    }
    std::string in = n.inputs[0], out = n.outputs[0];
    if (!g.is_graph_output(out)) {
      rename_uses(g, out, in);
    } else if (producers.count(in) && !g.is_graph_output(in)) {
      // The output name is part of the model's interface: keep it, rename the producer's output.
      Node& p = g.nodes[producers[in]];
      for (auto& o : p.outputs)
        if (o == in) o = out;
      rename_uses(g, in, out);
    } else {
      i++;  // input is a graph input, initializer or another output: keep the copy
      continue;
    }
    g.nodes.erase(g.nodes.begin() + (long)i);
    producers = g.producers();
    changes++;
  }
  return changes;
}

int remove_dead_nodes(Graph& g) {
  std::unordered_set<std::string> live;
  for (const auto& o : g.outputs) live.insert(o.name);
  std::vector<bool> keep(g.nodes.size(), false);
  for (int i = (int)g.nodes.size() - 1; i >= 0; i--) {
    for (const auto& o : g.nodes[i].outputs)
      if (live.count(o)) keep[i] = true;
    if (keep[i])
      for (const auto& in : g.nodes[i].inputs) live.insert(in);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); i++)
    if (keep[i]) kept.push_back(std::move(g.nodes[i]));
  int removed = (int)(g.nodes.size() - kept.size());
  g.nodes = std::move(kept);
  // Initializers nobody reads any more (folded weights) are dropped too.
  for (auto it = g.initializers.begin(); it != g.initializers.end();)
    it = live.count(it->first) ? std::next(it) : g.initializers.erase(it);
  return removed;
}

}  // namespace rg

#include "protect/sites.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "passes/patterns.h"

namespace rg {

const std::vector<std::string>& activation_kinds() {
  static const std::vector<std::string> k = {"relu",    "leakyrelu", "prelu",     "elu",         "selu",
                                             "celu",    "sigmoid",   "hardsigmoid", "tanh",      "gelu",
                                             "swish",   "hardswish", "softplus",  "mish",        "relu6",
                                             "thresholdedrelu"};
  return k;
}

namespace {

// Walks back from `value` through element-wise and data-movement ops to the layer that
// made it: Conv-like layers put channels on axis 1 (returns 1), MatMul/Gemm on the last
// axis (returns -2); -1 when undecided.
int layer_axis(const Graph& g, const std::unordered_map<std::string, int>& prod, std::string value) {
  for (int hops = 0; hops < 16; hops++) {
    auto it = prod.find(value);
    if (it == prod.end()) return -1;
    const Node& n = g.nodes[it->second];
    const std::string& t = n.op_type;
    if (t == "Conv" || t == "ConvTranspose" || t == "BatchNormalization" || t == "InstanceNormalization" ||
        t == "MaxPool" || t == "AveragePool" || t == "GlobalAveragePool")
      return 1;
    if (t == "MatMul" || t == "Gemm" || t == "LayerNormalization") return -2;
    if (n.inputs.empty() || n.inputs[0].empty()) return -1;
    // Element-wise ops keep the layout: follow the first non-constant operand.
    value = n.inputs[0];
    if (g.initializer(value) && n.inputs.size() > 1) value = n.inputs[1];
  }
  return -1;
}

}  // namespace

std::vector<Site> find_sites(const Graph& g, const SiteOptions& o) {
  for (const auto& k : o.kinds) {
    bool known = false;
    for (const auto& a : activation_kinds()) known |= a == k;
    if (!known) {
      std::string all;
      for (const auto& a : activation_kinds()) all += (all.empty() ? "" : ", ") + a;
      fail(ErrorCode::invalid_input, "unknown activation kind '{}'; known kinds: {}", k, all);
    }
  }
  // The ops after which Ranger also clamps: they move or pool values without creating
  // new ones, so the activation's bounds still describe their output.
  static const std::unordered_set<std::string> kFollow = {
      "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape", "Flatten",
      "Concat",  "Transpose",   "Squeeze",           "Unsqueeze",     "Identity"};
  auto consumers = g.consumers();
  auto producers = g.producers();
  std::vector<Site> sites;
  std::unordered_set<std::string> seen;
  for (const auto& a : find_activations(g)) {
    if (!o.kinds.empty() && !o.kinds.count(a.kind)) continue;
    int axis = layer_axis(g, producers, a.input);
    if (seen.insert(a.output).second) sites.push_back({a.output, a.kind, a.node_name, a.input, axis});
    if (!o.after_following_ops) continue;
    auto it = consumers.find(a.output);
    if (it == consumers.end() || it->second.size() != 1) continue;
    const Node& next = g.nodes[it->second[0]];
    if (!next.domain.empty() || !kFollow.count(next.op_type) || next.outputs.empty()) continue;
    if (seen.insert(next.outputs[0]).second)
      sites.push_back({next.outputs[0], "follow:" + next.op_type, next.name, a.output,
                       next.op_type == "Flatten" || next.op_type == "Reshape" || next.op_type == "Transpose" ? -1 : axis});
  }
  return sites;
}

int channel_axis(const Site& s, int rank) {
  if (rank <= 1) return 0;
  if (s.channel_axis == 1 || s.channel_axis == 0) return std::min(s.channel_axis, rank - 1);
  if (s.channel_axis == -2) return rank - 1;
  return rank >= 4 ? 1 : rank - 1;
}


}  // namespace rg

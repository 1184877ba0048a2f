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

using Consumers = std::unordered_map<std::string, std::vector<int>>;

// The node that alone reads `v`, or null.
const Node* only_consumer(const Graph& g, const Consumers& cons, const std::string& v) {
  auto it = cons.find(v);
  return it == cons.end() || it->second.size() != 1 ? nullptr : &g.nodes[it->second[0]];
}

bool is_constant(const Graph& g, const std::unordered_map<std::string, int>& prod, const std::string& v) {
  if (g.initializer(v)) return true;
  auto it = prod.find(v);
  return it != prod.end() && g.nodes[it->second].op_type == "Constant";
}

// Layers whose weights a fault can hit: Conv/ConvTranspose/Gemm, and MatMul by a constant.
bool is_weight_layer(const Graph& g, const std::unordered_map<std::string, int>& prod, const Node& n) {
  if (!n.domain.empty() || n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  if (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm") return is_constant(g, prod, n.inputs[1]);
  return n.op_type == "MatMul" && (is_constant(g, prod, n.inputs[0]) || is_constant(g, prod, n.inputs[1]));
}

// A layer's output after what belongs to it: a bias Add (MatMul + Add from a Linear), a
// BatchNormalization, a scale by a constant. These keep the layout and the layer's
// fault visible, so the check goes after them (and fuses with the layer there).
std::string layer_value(const Graph& g, const std::unordered_map<std::string, int>& prod, const Consumers& cons,
                        std::string v) {
  static const std::unordered_set<std::string> kAffine = {"Add", "Sub", "Mul", "Div"};
  for (int hops = 0; hops < 4; hops++) {
    const Node* n = only_consumer(g, cons, v);
    if (!n || g.is_graph_output(v) || !n->domain.empty() || n->outputs.size() != 1) break;
    bool affine = kAffine.count(n->op_type) && n->inputs.size() == 2 &&
                  is_constant(g, prod, n->inputs[0] == v ? n->inputs[1] : n->inputs[0]);
    if (!affine && n->op_type != "BatchNormalization") break;
    v = n->outputs[0];
  }
  return v;
}

// A layer value that flows through Adds (a residual join) into an activation whose check
// keeps a fault visible is covered by that check: a ResNet branch needs none of its own,
// and without one its Add still fuses into the conv.
bool covered(const Graph& g, const Consumers& cons, const std::unordered_set<std::string>& checked_after,
             std::string v) {
  for (int hops = 0; hops < 4 && !checked_after.count(v); hops++) {
    const Node* n = only_consumer(g, cons, v);
    if (!n || g.is_graph_output(v) || !n->domain.empty() || (n->op_type != "Add" && n->op_type != "Sub") ||
        n->outputs.size() != 1)
      return false;
    v = n->outputs[0];
  }
  return checked_after.count(v) > 0;
}

// Activations whose output saturates, so a huge input leaves no out-of-range trace after
// them: their layer-output check goes before them.
bool saturates(const std::string& kind) { return kind == "sigmoid" || kind == "hardsigmoid" || kind == "tanh"; }

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
  std::unordered_set<std::string> checked_after;  // inputs of protected activations that keep a fault visible
  for (const auto& a : find_activations(g)) {
    if (!o.kinds.empty() && !o.kinds.count(a.kind)) continue;
    if (!saturates(a.kind)) checked_after.insert(a.input);
    int axis = layer_axis(g, producers, a.input);
    if (seen.insert(a.output).second) sites.push_back({a.output, a.kind, a.node_name, a.input, axis});
    if (!o.after_following_ops) continue;
    const Node* next = only_consumer(g, consumers, a.output);
    if (!next || !next->domain.empty() || !kFollow.count(next->op_type) || next->outputs.empty()) continue;
    if (seen.insert(next->outputs[0]).second)
      sites.push_back({next->outputs[0], "follow:" + next->op_type, next->name, a.output,
                       next->op_type == "Flatten" || next->op_type == "Reshape" || next->op_type == "Transpose" ? -1 : axis});
  }
  if (o.layer_outputs) {
    for (const auto& n : g.nodes) {
      if (!is_weight_layer(g, producers, n)) continue;
      std::string v = layer_value(g, producers, consumers, n.outputs[0]);
      if (covered(g, consumers, checked_after, v) || !seen.insert(v).second) continue;
      sites.push_back({v, "layer:" + n.op_type, g.nodes[producers.at(v)].name, n.inputs[0], n.op_type == "MatMul" || n.op_type == "Gemm" ? -2 : 1});
    }
    // Graph order, so a bounds file reads from input to output.
    std::stable_sort(sites.begin(), sites.end(),
                     [&](const Site& a, const Site& b) { return producers.at(a.tensor) < producers.at(b.tensor); });
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

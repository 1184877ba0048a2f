#include "ir/graph.h"

#include <deque>
#include <set>
#include <unordered_set>

namespace rg {

static const char* kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::f: return "float";
    case Attribute::Kind::i: return "int";
    case Attribute::Kind::s: return "string";
    case Attribute::Kind::t: return "tensor";
    case Attribute::Kind::floats_: return "floats";
    case Attribute::Kind::ints_: return "ints";
    case Attribute::Kind::strings_: return "strings";
    case Attribute::Kind::graph: return "graph";
  }
  return "?";
}

static const Attribute* typed(const Node& n, const std::string& k, Attribute::Kind want) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return nullptr;
  if (it->second.kind != want)
    fail(ErrorCode::invalid_model, "{}: attribute '{}' is {}, expected {}", n.label(), k,
         kind_name(it->second.kind), kind_name(want));
  return &it->second;
}

int64_t Node::attr_i(const std::string& k, int64_t def) const {
  const Attribute* a = typed(*this, k, Attribute::Kind::i);
  return a ? a->i : def;
}
float Node::attr_f(const std::string& k, float def) const {
  auto it = attrs.find(k);
  // Some exporters write integer-valued float attributes as ints; accept both.
  if (it != attrs.end() && it->second.kind == Attribute::Kind::i) return (float)it->second.i;
  const Attribute* a = typed(*this, k, Attribute::Kind::f);
  return a ? a->f : def;
}
std::string Node::attr_s(const std::string& k, const std::string& def) const {
  const Attribute* a = typed(*this, k, Attribute::Kind::s);
  return a ? a->s : def;
}
std::vector<int64_t> Node::attr_ints(const std::string& k, std::vector<int64_t> def) const {
  const Attribute* a = typed(*this, k, Attribute::Kind::ints_);
  return a ? a->ints : def;
}
std::vector<float> Node::attr_floats(const std::string& k, std::vector<float> def) const {
  const Attribute* a = typed(*this, k, Attribute::Kind::floats_);
  return a ? a->floats : def;
}
const Tensor* Node::attr_t(const std::string& k) const {
  const Attribute* a = typed(*this, k, Attribute::Kind::t);
  return a ? &a->t : nullptr;
}

std::string Node::label() const {
  return name.empty() ? op_type + " (unnamed, output '" + (outputs.empty() ? "" : outputs[0]) + "')"
                      : op_type + " '" + name + "'";
}

std::string ValueInfo::shape_text() const {
  if (!has_shape) return "(no shape)";
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) {
    if (i) s += ", ";
    if (shape[i] >= 0) s += std::to_string(shape[i]);
    else s += i < dim_names.size() && !dim_names[i].empty() ? dim_names[i] : "?";
  }
  return s + "]";
}

int64_t Graph::opset() const {
  auto it = opsets.find("");
  return it == opsets.end() ? 0 : it->second;
}

const Tensor* Graph::initializer(const std::string& name) const {
  auto it = initializers.find(name);
  return it == initializers.end() ? nullptr : &it->second;
}

bool Graph::is_graph_output(const std::string& value) const {
  for (const auto& o : outputs)
    if (o.name == value) return true;
  return false;
}

const ValueInfo* Graph::input_info(const std::string& name) const {
  for (const auto& i : inputs)
    if (i.name == name) return &i;
  return nullptr;
}

std::string Graph::unique_name(const std::string& base) const {
  std::unordered_set<std::string> used;
  for (const auto& n : nodes) {
    used.insert(n.name);
    for (const auto& v : n.inputs) used.insert(v);
    for (const auto& v : n.outputs) used.insert(v);
  }
  for (const auto& kv : initializers) used.insert(kv.first);
  for (const auto& v : inputs) used.insert(v.name);
  for (const auto& v : outputs) used.insert(v.name);
  if (!used.count(base)) return base;
  for (int i = 1;; i++) {
    std::string c = base + "_" + std::to_string(i);
    if (!used.count(c)) return c;
  }
}

std::unordered_map<std::string, int> Graph::producers() const {
  std::unordered_map<std::string, int> p;
  for (size_t i = 0; i < nodes.size(); i++)
    for (const auto& o : nodes[i].outputs)
      if (!o.empty()) p[o] = (int)i;
  return p;
}

std::unordered_map<std::string, std::vector<int>> Graph::consumers() const {
  std::unordered_map<std::string, std::vector<int>> c;
  for (size_t i = 0; i < nodes.size(); i++)
    for (const auto& in : nodes[i].inputs)
      if (!in.empty()) c[in].push_back((int)i);
  return c;
}

void Graph::sort_and_validate() {
  std::unordered_map<std::string, int> producer;
  for (size_t i = 0; i < nodes.size(); i++)
    for (const auto& o : nodes[i].outputs) {
      if (o.empty()) continue;
      if (producer.count(o) || initializers.count(o) || input_info(o))
        fail(ErrorCode::invalid_model, "value '{}' is produced more than once ({})", o,
             nodes[i].label());
      producer[o] = (int)i;
    }
  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<int>> users(nodes.size());
  for (size_t i = 0; i < nodes.size(); i++) {
    std::set<int> deps;
    for (const auto& in : nodes[i].inputs) {
      if (in.empty()) continue;
      auto it = producer.find(in);
      if (it != producer.end()) {
        deps.insert(it->second);
      } else if (!initializers.count(in) && !input_info(in)) {
        fail(ErrorCode::invalid_model, "{}: input '{}' is not produced by any node, initializer or graph input",
             nodes[i].label(), in);
      }
    }
    for (int d : deps) users[d].push_back((int)i);
    pending[i] = (int)deps.size();
  }
  std::deque<int> ready;
  for (size_t i = 0; i < nodes.size(); i++)
    if (pending[i] == 0) ready.push_back((int)i);
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  while (!ready.empty()) {
    int i = ready.front();
    ready.pop_front();
    for (int u : users[i])
      if (--pending[u] == 0) ready.push_back(u);
    sorted.push_back(std::move(nodes[i]));
  }
  if (sorted.size() != nodes.size()) fail(ErrorCode::invalid_model, "the graph has a cycle");
  nodes = std::move(sorted);
  for (const auto& o : outputs)
    if (!producer.count(o.name) && !initializers.count(o.name) && !input_info(o.name))
      fail(ErrorCode::invalid_model, "graph output '{}' is not produced by any node", o.name);
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const auto& kv : initializers)
    if (dtype_is_float(kv.second.dtype())) n += kv.second.numel();
  return n;
}

}  // namespace rg

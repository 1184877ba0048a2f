#include "passes/patterns.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <functional>
#include <set>
#include <unordered_map>

namespace rg {
namespace {

std::optional<float> tensor_scalar(const Tensor& t) {
  if (t.numel() != 1 || !dtype_is_float(t.dtype())) return std::nullopt;
  return (float)t.to_doubles()[0];
}

bool near(std::optional<float> v, double want) { return v && std::fabs(*v - want) <= 1e-4 * std::max(1.0, std::fabs(want)); }

class Matcher {
 public:
  explicit Matcher(const Graph& g) : g_(g), prod_(g.producers()), cons_(g.consumers()) {}

  // The node producing `v` if it is `op` (default domain), else null.
  const Node* op(const std::string& v, const char* type) const {
    auto it = prod_.find(v);
    if (it == prod_.end()) return nullptr;
    const Node& n = g_.nodes[it->second];
    return n.op_type == type && n.domain.empty() ? &n : nullptr;
  }
  int index(const Node* n) const { return (int)(n - &g_.nodes[0]); }
  std::optional<float> scalar(const std::string& v) const { return scalar_constant(g_, v); }
  // The operand of binary node n that is not `v` (for commutative ops), or "".
  static std::string other(const Node& n, const std::string& v) {
    if (n.inputs.size() != 2) return "";
    if (n.inputs[0] == v) return n.inputs[1];
    if (n.inputs[1] == v) return n.inputs[0];
    return "";
  }
  // Leaves of a tree of Mul nodes rooted at the producer of `v`; inner values must be
  // used only inside the tree. `nodes` receives the Mul nodes.
  void mul_factors(const std::string& v, bool root, std::vector<std::string>& leaves, std::vector<int>& nodes) const {
    const Node* m = op(v, "Mul");
    if (m && (root || single_use(v)) && m->inputs.size() == 2) {
      nodes.push_back(index(m));
      mul_factors(m->inputs[0], false, leaves, nodes);
      mul_factors(m->inputs[1], false, leaves, nodes);
      return;
    }
    leaves.push_back(v);
  }
  bool single_use(const std::string& v) const {
    auto it = cons_.find(v);
    return it != cons_.end() && it->second.size() == 1 && !g_.is_graph_output(v);
  }

 private:
  const Graph& g_;
  std::unordered_map<std::string, int> prod_;
  std::unordered_map<std::string, std::vector<int>> cons_;
};

using Found = std::optional<ActivationMatch>;

// x * Sigmoid(x)
Found match_swish(const Matcher& m, const Node& mul) {
  for (int i = 0; i < 2; i++) {
    const Node* s = m.op(mul.inputs[i], "Sigmoid");
    if (s && s->inputs[0] == mul.inputs[1 - i])
      return ActivationMatch{"swish", {m.index(s)}, s->inputs[0], "", ""};
  }
  return std::nullopt;
}

// x * Tanh(Softplus(x))
Found match_mish(const Matcher& m, const Node& mul) {
  for (int i = 0; i < 2; i++) {
    const Node* t = m.op(mul.inputs[i], "Tanh");
    const Node* sp = t ? m.op(t->inputs[0], "Softplus") : nullptr;
    if (sp && sp->inputs[0] == mul.inputs[1 - i])
      return ActivationMatch{"mish", {m.index(sp), m.index(t)}, sp->inputs[0], "", ""};
  }
  return std::nullopt;
}

// x * HardSigmoid(x) with alpha 1/6, beta 0.5
Found match_hardswish_hs(const Matcher& m, const Node& mul) {
  for (int i = 0; i < 2; i++) {
    const Node* h = m.op(mul.inputs[i], "HardSigmoid");
    if (h && h->inputs[0] == mul.inputs[1 - i] && near(h->attr_f("alpha", 0.2f), 1.0 / 6) &&
        near(h->attr_f("beta", 0.5f), 0.5))
      return ActivationMatch{"hardswish", {m.index(h)}, h->inputs[0], "", ""};
  }
  return std::nullopt;
}

// Clip(x + 3, 0, 6) -> x, with the nodes used.
std::optional<std::string> relu6_of_x_plus_3(const Matcher& m, const Graph& g, const std::string& v, std::vector<int>& nodes) {
  const Node* c = m.op(v, "Clip");
  if (!c) return std::nullopt;
  std::optional<float> lo = c->has_attr("min") ? std::optional<float>(c->attr_f("min", 0)) : (c->has_input(1) ? m.scalar(c->inputs[1]) : std::nullopt);
  std::optional<float> hi = c->has_attr("max") ? std::optional<float>(c->attr_f("max", 0)) : (c->has_input(2) ? m.scalar(c->inputs[2]) : std::nullopt);
  if (!near(lo, 0) || !near(hi, 6)) return std::nullopt;
  const Node* a = m.op(c->inputs[0], "Add");
  if (!a || a->inputs.size() != 2) return std::nullopt;
  for (int i = 0; i < 2; i++)
    if (near(m.scalar(a->inputs[i]), 3)) {
      nodes.push_back(m.index(a));
      nodes.push_back(m.index(c));
      return a->inputs[1 - i];
    }
  (void)g;
  return std::nullopt;
}

// The Erf / Tanh GELU formulas and x*Clip(x+3,0,6)/6, as a product of factors:
//   gelu:      {x, 0.5, 1 + Erf(x / sqrt(2))}
//   gelu-tanh: {x, 0.5, 1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3))}
//   hardswish: {x, 1/6, Clip(x + 3, 0, 6)}      (or the product divided by 6)
Found match_product(const Matcher& m, const Graph& g, const Node& root) {
  std::vector<std::string> leaves;
  std::vector<int> muls;
  std::string out = root.outputs[0];
  float divisor = 1;
  std::string top = out;
  if (root.op_type == "Div") {
    std::optional<float> d = m.scalar(root.inputs[1]);
    if (!d || !m.single_use(root.inputs[0])) return std::nullopt;
    divisor = *d;
    top = root.inputs[0];
  }
  m.mul_factors(top, root.op_type == "Mul", leaves, muls);
  if (leaves.size() < 2 || leaves.size() > 4) return std::nullopt;
  double scale = 1.0 / divisor;
  std::vector<std::string> rest;
  for (const auto& l : leaves) {
    if (auto s = m.scalar(l)) scale *= *s;
    else rest.push_back(l);
  }
  if (rest.size() != 2) return std::nullopt;
  for (int i = 0; i < 2; i++) {
    const std::string& x = rest[i];
    const std::string& f = rest[1 - i];
    std::vector<int> nodes = muls;
    if (root.op_type == "Div") nodes.push_back(m.index(&root));
    if (auto cx = relu6_of_x_plus_3(m, g, f, nodes); cx && *cx == x && near((float)scale, 1.0 / 6))
      return ActivationMatch{"hardswish", nodes, x, "", ""};
    const Node* add = m.op(f, "Add");
    if (!add || add->inputs.size() != 2 || !near((float)scale, 0.5)) continue;
    for (int j = 0; j < 2; j++) {
      if (!near(m.scalar(add->inputs[j]), 1)) continue;
      const std::string& inner = add->inputs[1 - j];
      if (const Node* erf = m.op(inner, "Erf")) {
        const Node* d = m.op(erf->inputs[0], "Div");
        const Node* s = m.op(erf->inputs[0], "Mul");
        bool ok = (d && d->inputs[0] == x && near(m.scalar(d->inputs[1]), std::sqrt(2.0))) ||
                  (s && Matcher::other(*s, x) != "" && near(m.scalar(Matcher::other(*s, x)), std::sqrt(0.5)));
        if (ok) {
          nodes.insert(nodes.end(), {m.index(d ? d : s), m.index(erf), m.index(add)});
          return ActivationMatch{"gelu", nodes, x, "", ""};
        }
      }
      if (const Node* th = m.op(inner, "Tanh")) {
        // sqrt(2/pi) * (x + 0.044715 * x^3), x^3 as Pow(x, 3) or x * (x * x)
        const Node* sc = m.op(th->inputs[0], "Mul");
        if (!sc) continue;
        std::string poly;
        for (int k = 0; k < 2; k++)
          if (near(m.scalar(sc->inputs[k]), std::sqrt(2.0 / M_PI))) poly = sc->inputs[1 - k];
        const Node* pa = poly.empty() ? nullptr : m.op(poly, "Add");
        std::string cubic_term = pa ? Matcher::other(*pa, x) : "";
        if (cubic_term.empty()) continue;
        std::vector<std::string> cl;
        std::vector<int> cn;
        m.mul_factors(cubic_term, true, cl, cn);
        double k3 = 1;
        int xs = 0;
        std::vector<int> extra;
        for (const auto& l : cl) {
          if (auto s = m.scalar(l)) k3 *= *s;
          else if (l == x) xs++;
          else if (const Node* p = m.op(l, "Pow"); p && p->inputs[0] == x && near(m.scalar(p->inputs[1]), 3)) {
            xs += 3;
            extra.push_back(m.index(p));
          } else xs = -100;
        }
        if (xs != 3 || !near((float)k3, 0.044715)) continue;
        nodes.insert(nodes.end(), cn.begin(), cn.end());
        nodes.insert(nodes.end(), extra.begin(), extra.end());
        nodes.insert(nodes.end(), {m.index(pa), m.index(sc), m.index(th), m.index(add)});
        ActivationMatch a{"gelu", nodes, x, "", ""};
        a.tanh_approx = true;
        return a;
      }
    }
  }
  return std::nullopt;
}

const std::map<std::string, std::string>& single_op_kinds() {
  static const std::map<std::string, std::string> k = {
      {"Relu", "relu"}, {"LeakyRelu", "leakyrelu"}, {"PRelu", "prelu"}, {"Elu", "elu"}, {"Selu", "selu"},
      {"Celu", "celu"}, {"Sigmoid", "sigmoid"}, {"HardSigmoid", "hardsigmoid"}, {"Tanh", "tanh"},
      {"Gelu", "gelu"}, {"HardSwish", "hardswish"}, {"Softplus", "softplus"}, {"Mish", "mish"},
      {"Swish", "swish"}, {"ThresholdedRelu", "thresholdedrelu"}};
  return k;
}

}  // namespace

const Tensor* constant_tensor(const Graph& g, const std::string& value) {
  if (const Tensor* t = g.initializer(value)) return t;
  for (const auto& n : g.nodes)
    if (n.op_type == "Constant" && !n.outputs.empty() && n.outputs[0] == value) return n.attr_t("value");
  return nullptr;
}

std::optional<float> scalar_constant(const Graph& g, const std::string& value) {
  if (const Tensor* t = constant_tensor(g, value)) return tensor_scalar(*t);
  for (const auto& n : g.nodes)
    if (n.op_type == "Constant" && !n.outputs.empty() && n.outputs[0] == value && n.has_attr("value_float"))
      return n.attr_f("value_float", 0);
  return std::nullopt;
}

std::vector<ActivationMatch> find_activations(const Graph& g) {
  Matcher m(g);
  std::vector<ActivationMatch> found;
  std::set<int> inside;  // nodes already part of a reported pattern
  // Multi-node patterns first, tried from each candidate root, so their inner nodes
  // (Sigmoid of a Swish, Tanh of a Mish) are claimed before single-op matching.
  for (size_t i = 0; i < g.nodes.size(); i++) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || n.outputs.size() != 1) continue;
    Found f;
    if (n.op_type == "Mul" && n.inputs.size() == 2) {
      f = match_swish(m, n);
      if (!f) f = match_mish(m, n);
      if (!f) f = match_hardswish_hs(m, n);
    }
    if (!f && (n.op_type == "Mul" || n.op_type == "Div") && n.inputs.size() == 2) f = match_product(m, g, n);
    if (!f) continue;
    // The root is appended last; matchers may have listed it among the inner nodes.
    f->nodes.erase(std::remove(f->nodes.begin(), f->nodes.end(), (int)i), f->nodes.end());
    std::sort(f->nodes.begin(), f->nodes.end());
    f->nodes.erase(std::unique(f->nodes.begin(), f->nodes.end()), f->nodes.end());
    bool clash = inside.count((int)i) > 0;
    for (int k : f->nodes) clash |= inside.count(k) > 0;
    // Inner values must not leak out of the pattern (else clamping its output alone
    // would not cover them, and a rewrite would lose them).
    for (int k : f->nodes)
      for (const auto& o : g.nodes[k].outputs) clash |= !m.single_use(o);
    if (clash) continue;
    f->nodes.push_back((int)i);
    for (int k : f->nodes) inside.insert(k);
    f->output = n.outputs[0];
    f->node_name = n.name;
    found.push_back(*f);
  }
  // Then single operators, including Relu6-style Clip (lower bound 0).
  for (size_t i = 0; i < g.nodes.size(); i++) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || inside.count((int)i) || n.outputs.empty() || n.inputs.empty()) continue;
    std::string kind;
    auto it = single_op_kinds().find(n.op_type);
    if (it != single_op_kinds().end()) kind = it->second;
    if (n.op_type == "Clip") {
      std::optional<float> lo = n.has_attr("min") ? std::optional<float>(n.attr_f("min", 0))
                                                  : (n.has_input(1) ? m.scalar(n.inputs[1]) : std::nullopt);
      if (near(lo, 0)) kind = "relu6";
    }
    if (kind.empty()) continue;
    found.push_back(ActivationMatch{kind, {(int)i}, n.inputs[0], n.outputs[0], n.name});
  }
  std::sort(found.begin(), found.end(), [](const ActivationMatch& a, const ActivationMatch& b) {
    return a.nodes.back() < b.nodes.back();
  });
  return found;
}

}  // namespace rg

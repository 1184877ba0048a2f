#include "support/builder.h"

#include <algorithm>
#include <cmath>

namespace rg::test {

Tensor random_tensor(const Shape& s, std::mt19937& rng, float lo, float hi) {
  Tensor t(DType::f32, s);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); i++) t.data<float>()[i] = u(rng);
  return t;
}

GraphBuilder::GraphBuilder(int64_t opset) {
  g_.opsets[""] = opset;
  g_.name = "test";
}

std::string GraphBuilder::input(const std::string& name, const Shape& shape, DType t) {
  ValueInfo vi;
  vi.name = name;
  vi.dtype = t;
  vi.shape = shape;
  vi.dim_names.assign(shape.size(), "");
  vi.has_shape = true;
  g_.inputs.push_back(vi);
  return name;
}

std::string GraphBuilder::constant(const std::string& name, Tensor t) {
  g_.initializers[name] = std::move(t);
  return name;
}

std::string GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                               std::map<std::string, Attribute> attrs, int num_outputs) {
  Node n;
  n.op_type = op;
  n.name = op + "_" + std::to_string(counter_++);
  n.inputs = inputs;
  n.attrs = std::move(attrs);
  for (int i = 0; i < num_outputs; i++) n.outputs.push_back(n.name + "_out" + std::to_string(i));
  g_.nodes.push_back(n);
  return n.outputs[0];
}

void GraphBuilder::output(const std::string& value) {
  ValueInfo vi;
  vi.name = value;
  vi.dtype = DType::f32;
  g_.outputs.push_back(vi);
}

Graph GraphBuilder::build() const {
  Graph g = g_;
  g.sort_and_validate();
  return g;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  std::vector<double> x = a.to_doubles(), y = b.to_doubles();
  double m = 0, d = 0;
  for (size_t i = 0; i < x.size(); i++) {
    m = std::max(m, std::fabs(y[i]));
    if (std::isnan(x[i]) != std::isnan(y[i])) return INFINITY;
    if (!std::isnan(x[i])) d = std::max(d, std::fabs(x[i] - y[i]));
  }
  return m == 0 ? d : d / m;
}

double fast_vs_ref(const Graph& g, const std::vector<Tensor>& inputs, SessionOptions fast) {
  SessionOptions ref = fast;
  ref.fast_kernels = false;
  fast.fast_kernels = true;
  Session sf(g, fast), sr(g, ref);
  std::vector<Tensor> of = sf.run(inputs), orf = sr.run(inputs);
  double worst = 0;
  for (size_t i = 0; i < of.size(); i++) worst = std::max(worst, max_rel_diff(of[i], orf[i]));
  return worst;
}

std::vector<std::string> fast_ops(const Graph& g, const std::vector<Tensor>& inputs, SessionOptions o) {
  Session s(g, o);
  std::vector<Shape> shapes;
  for (const auto& t : inputs) shapes.push_back(t.shape());
  std::vector<std::string> r;
  for (const auto& st : s.plan(shapes).steps()) {
    if (!st.node || !st.fast) continue;
    std::string name = st.node->op_type;
    for (const Node* f : st.fused) name += "+" + f->op_type;
    r.push_back(name);
  }
  return r;
}

}  // namespace rg::test

#pragma once
// Test helpers: build small graphs in code, seeded random tensors, tolerant comparison.
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/session.h"

namespace rg::test {

Tensor random_tensor(const Shape& s, std::mt19937& rng, float lo = -1.f, float hi = 1.f);

class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 17);
  std::string input(const std::string& name, const Shape& shape, DType t = DType::f32);
  std::string constant(const std::string& name, Tensor t);
  // Adds a node; returns its first output's name (outputs are named "<name>_out<i>").
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   std::map<std::string, Attribute> attrs = {}, int num_outputs = 1);
  void output(const std::string& value);
  Graph build() const;

 private:
  Graph g_;
  int counter_ = 0;
};

// Largest |a - b| relative to max|b| (0 when both are all zero).
double max_rel_diff(const Tensor& a, const Tensor& b);

// Runs `g` with the fast kernels and with the reference kernels only, on `inputs`, and
// returns the largest relative difference over all outputs (shapes must match).
double fast_vs_ref(const Graph& g, const std::vector<Tensor>& inputs, SessionOptions fast = {});

// The op types that ran on a fast kernel in g's plan for these inputs (fused nodes are
// listed after their head as "Conv+Relu").
std::vector<std::string> fast_ops(const Graph& g, const std::vector<Tensor>& inputs, SessionOptions o = {});

}  // namespace rg::test

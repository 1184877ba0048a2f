#pragma once
// Session: a loaded model ready to run. It applies the graph passes once, then compiles
// a Plan per distinct set of input shapes (cached), so repeated runs only bind and execute.
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/options.h"
#include "runtime/plan.h"

namespace rg {

class Session {
 public:
  explicit Session(Graph g, SessionOptions o = {});
  static Session load(const std::string& path, SessionOptions o = {});

  const Graph& graph() const { return graph_; }  // after the graph passes
  const SessionOptions& options() const { return opts_; }

  // Inputs in graph-input order, or by name. Validates names, types and shapes
  // (invalid_input) before anything runs.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs);

  // The plan for these input shapes (compiled on first use).
  Plan& plan(const std::vector<Shape>& input_shapes);
  // A new plan of its own, for one more concurrent executor (a stream): it shares the
  // reordered weights with the others but has its own activation buffers. Thread-safe.
  // `threads` > 0 overrides the session's intra-op thread count for this plan.
  std::unique_ptr<Plan> new_plan(const std::vector<Shape>& input_shapes, int threads = 0) const;
  // Concrete shapes for the declared inputs, dynamic dims replaced by `dynamic_dim`.
  std::vector<Shape> default_input_shapes(int64_t dynamic_dim = 1) const;

  // Fault injection: element `index` of weight `name` (an initializer as the model file
  // has it) becomes `value` in every compiled plan, including weights a pass derived from
  // it (BatchNorm folding): only what the change touches is redone, nothing recompiles.
  // Restore by writing the original value back. Not thread-safe with runs in flight.
  // Returns the constants changed (the weight and those derived from it), for
  // Plan::first_step_reading.
  std::vector<std::string> set_weight_element(const std::string& name, int64_t index, float value);

  // Checks one input against its declaration; throws invalid_input with a clear reason.
  void check_input(size_t index, const Tensor& t) const;
  std::vector<Tensor> order_inputs(const std::map<std::string, Tensor>& named) const;

 private:
  Graph graph_;
  SessionOptions opts_;
  std::list<std::pair<std::vector<Shape>, std::unique_ptr<Plan>>> plans_;  // most recent first
  std::set<std::string> read_initializers_;  // filled on the first set_weight_element
};

// Nodes whose operator has no kernel: (op_type, node name) for `info`.
std::vector<std::pair<std::string, std::string>> unsupported_nodes(const Graph& g);
// Throws unsupported_op for the first unsupported node or opset outside what we implement.
void check_supported(const Graph& g);

}  // namespace rg

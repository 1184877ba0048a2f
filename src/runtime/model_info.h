#pragma once
// What `rangeguard info` reports about a model, computed without running it.
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/options.h"

namespace rg {

struct ModelInfo {
  std::string producer;
  int64_t ir_version = 0, opset = 0;
  std::vector<ValueInfo> inputs, outputs;
  std::map<std::string, int> op_histogram;  // of the model as stored (before passes)
  int64_t nodes = 0;
  int64_t parameters = 0;
  std::vector<std::pair<std::string, std::string>> unsupported;  // (op, node name)
  std::string unsupported_reason;  // e.g. an opset outside the supported range
  // From a plan with dynamic dims set to 1 (absent when the model cannot be planned).
  bool planned = false;
  std::string plan_error;
  std::vector<Shape> planned_input_shapes;
  int64_t flops = 0;              // multiply-add counted as 2
  int64_t nodes_after_passes = 0;
  std::map<std::string, int> kernel_impls;  // "dnnl:..." / "ref" -> step count
  int64_t fused_nodes = 0;                  // nodes run inside another node's kernel
  size_t activation_bytes = 0;              // peak activation memory: arena (reused by liveness)
  size_t scratch_bytes = 0;                 //   plus the kernels' shared scratch (scratchpads, converted inputs)
  std::string isa;                          // instruction set oneDNN dispatches
};

ModelInfo inspect_model(const Graph& g, const SessionOptions& o);

// Estimated floating-point operations of one node given its operand shapes.
int64_t node_flops(const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out);

}  // namespace rg

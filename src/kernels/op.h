#pragma once
// The operator contract shared by every kernel.
//
// Each ONNX operator is one OpDef: a shape/type inference function and a reference kernel
// (plain loops, the oracle). Fast oneDNN kernels are separate FastDefs keyed by op type;
// the runtime tries the fast one first and falls back to the reference kernel.
//
// Inference runs once per input shape when a plan is compiled. An input whose *value* it
// needs (Reshape's shape, Slice's starts) is available there when that value is constant
// at plan time; otherwise `value()` throws NeedsValue and the runtime re-infers that node at
// run time with the real tensors (a "dynamic" step).
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace rg {

// Thrown by InferCtx::value() when an input's data is not known yet (not an error).
struct NeedsValue {};

struct InferCtx {
  const Node& node;
  int64_t opset;
  std::vector<DType> in_types;
  std::vector<Shape> in_shapes;
  std::vector<const Tensor*> in_values;  // known data or null
  std::vector<DType> out_types;          // filled by the op's infer function
  std::vector<Shape> out_shapes;

  InferCtx(const Node& n, int64_t op) : node(n), opset(op) {}
  int num_inputs() const { return (int)in_types.size(); }
  bool has_input(int i) const { return i < num_inputs() && in_types[i] != DType::undefined; }
  const Shape& shape(int i) const;
  DType type(int i) const;
  int rank(int i) const { return (int)shape(i).size(); }
  bool value_known(int i) const { return has_input(i) && in_values[i] != nullptr; }
  const Tensor& value(int i) const;  // throws NeedsValue when unknown
  void set_output(int i, DType t, Shape s);
  // Requires exactly/at least these many inputs, or an invalid_model error naming the node.
  void require_inputs(int min, int max = -1) const;
  void require_float(int i) const;  // float32 input, or an unsupported_op error
};

struct KernelCtx {
  const Node& node;
  int64_t opset;
  std::vector<const Tensor*> in;  // null for omitted optional inputs
  std::vector<Tensor*> out;       // allocated by the runtime with the inferred shapes

  KernelCtx(const Node& n, int64_t op) : node(n), opset(op) {}
  bool has_input(int i) const { return i < (int)in.size() && in[i] != nullptr; }
  const Tensor& input(int i) const;
  Tensor& output(int i) const { return *out.at(i); }
};

using InferFn = void (*)(InferCtx&);
using RefFn = void (*)(KernelCtx&);

struct OpDef {
  const char* op_type;
  InferFn infer;
  RefFn ref;
};

// Everything a fast kernel may look at when it is built for one plan.
struct CompileCtx {
  const Node& node;
  int64_t opset;
  std::vector<DType> in_types;
  std::vector<Shape> in_shapes;
  std::vector<const Tensor*> in_values;  // constant inputs (weights), else null
  std::vector<DType> out_types;
  std::vector<Shape> out_shapes;
  bool bf16 = false;  // compute in bf16 where the op allows it

  CompileCtx(const Node& n, int64_t op) : node(n), opset(op) {}
};

// A compiled kernel: built once per plan, run many times.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(KernelCtx& ctx) = 0;
  // Short description for `info`/profiling ("dnnl:brg:avx512_core", "ref").
  virtual std::string impl() const = 0;
};

// Returns null when this configuration is not one it handles (the reference runs instead).
using FastFactory = std::unique_ptr<Kernel> (*)(const CompileCtx&);

struct FastDef {
  const char* op_type;
  FastFactory make;
};

// Registry lookups (domain "" / "ai.onnx" only).
const OpDef* find_op(const std::string& domain, const std::string& op_type);
const FastDef* find_fast(const std::string& op_type);
std::vector<std::string> supported_ops();

// Runs inference for a node whose inputs are all known tensors, then the reference
// kernel: the evaluator constant folding and the node tests use.
std::vector<Tensor> eval_node(const Node& n, int64_t opset, const std::vector<const Tensor*>& inputs);

}  // namespace rg

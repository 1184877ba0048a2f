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

#include <oneapi/dnnl/dnnl_types.h>

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

// Memory layout of a value inside a plan. A zeroed descriptor (ndims == 0) means the ONNX
// layout and dtype (dense, row-major); anything else is a oneDNN descriptor (blocked
// layouts, bf16) that only fast kernels understand. The planner converts at boundaries.
using Layout = dnnl_memory_desc_t;
inline Layout plain_layout() { return Layout{}; }
inline bool is_plain(const Layout& l) { return l.ndims == 0; }
size_t layout_bytes(const Layout& l);  // buffer size a non-plain layout needs
bool same_layout(const Layout& a, const Layout& b);

// Scratch memory shared by all kernels of a plan (they run one at a time): each kernel
// reserves what it needs while compiling; the plan allocates the maximum once.
class Scratch {
 public:
  void reserve(size_t bytes) { size_ = bytes > size_ ? bytes : size_; }
  size_t size() const { return size_; }
  void* get();  // valid after all kernels have reserved

 private:
  size_t size_ = 0;
  std::shared_ptr<void> buf_;
  size_t allocated_ = 0;
};

// A node fused after a compute op. Clip's bounds are resolved by the planner (they may be
// constant inputs from opset 11 on).
struct PostOp {
  const Node* node = nullptr;
  float clip_lo = 0, clip_hi = 0;
  // An Add of this constant right after a MatMul/Gemm (a Linear layer's bias, shape [N]
  // along the last dim): it becomes the matmul's bias argument.
  const Tensor* bias = nullptr;
  // Max/Min with a constant (a range check's bound, `rangeguard protect`), PRelu's
  // slope, or a Mul's per-feature scale after a MatMul/Gemm: scalar or one value per
  // channel. `operand_axis` is the output axis it varies along; -1 = scalar.
  const Tensor* operand = nullptr;
  int operand_axis = -1;
  bool lower = false;  // the operand is a lower bound (Max), else an upper one (Min)
  // A Mul or Div by a constant scalar after a MatMul/Gemm: x * scale.
  float scale = 1.f;
  // A BatchNormalization after a Concat: its constant scale, bias, mean and variance.
  const Tensor* norm[4] = {};
};

// Clip's bounds from attributes (opset < 11) or constant inputs; false when an input
// bound is not constant.
bool clip_bounds(const Node& n, const std::vector<const Tensor*>& in_values, float& lo, float& hi);

// Everything a fast kernel may look at when it is built for one plan.
struct CompileCtx {
  const Node& node;
  int64_t opset;
  std::vector<DType> in_types;
  std::vector<Shape> in_shapes;
  std::vector<const Tensor*> in_values;  // constant inputs (weights), else null
  std::vector<Layout> in_layouts;        // how each input will arrive
  std::vector<DType> out_types;
  std::vector<Shape> out_shapes;
  bool bf16 = false;          // compute in bf16 where the op allows it
  bool winograd = true;       // 3x3 stride-1 convolutions may use Winograd (fewer FLOPs)
  bool blocked_1x1 = false;   // 1x1 convolutions take and give nChw16c (SessionOptions)
  bool plain_output = false;  // the output must be in the ONNX layout (graph output, observed)
  // Nodes fused after this one, in order: activations (Relu, Clip, ...) and at most one
  // Add whose other operand is appended as the last input ("sum" post-op). A kernel that
  // cannot fuse them returns null and the planner retries without.
  std::vector<PostOp> post_ops;
  Scratch* scratch = nullptr;
  // Inputs a kernel converts to another layout on the way in live here, also shared by
  // the plan's kernels: a converted copy is only read while its kernel runs. Kept apart
  // from `scratch`, which a kernel's primitive uses at the same time.
  Scratch* staging = nullptr;

  CompileCtx(const Node& n, int64_t op) : node(n), opset(op) {}
};

// A compiled kernel: built once per plan, run many times.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(KernelCtx& ctx) = 0;
  // Short description for `info`/profiling ("dnnl:brg:avx512_core", "ref").
  virtual std::string impl() const = 0;
  // The layout output i is produced in; plain unless a fast kernel chose a blocked one.
  virtual Layout out_layout(int i) const { return plain_layout(); }
  // Re-derives anything computed from constant inputs (reordered weights) after the
  // caller changed a constant in place (fault injection).
  virtual void refresh_constants() {}
  // True when output 0 may share input 0's buffer (same shape, type and layout): the
  // planner then aliases them where nothing reads the input afterwards.
  virtual bool may_run_in_place() const { return false; }
  // True when output 0 holds input 0's bytes unchanged (Reshape, a Transpose that keeps
  // the element order): the planner gives both one buffer where nothing reads the input
  // afterwards, and run() then has nothing to do.
  virtual bool same_bytes() const { return false; }
  // True when input i's bytes are, unchanged, output 0's bytes from `offset` on (a join
  // whose part is one contiguous run of its result): the planner may then have input i's
  // producer write straight there, and run() skips the copy for a part found in place.
  virtual bool input_at_offset(int i, size_t& offset) const { return false; }
  // True when per-channel clamps in the fused chain (protect's RangeGuard checks) cost
  // nothing extra: the kernel applies them to values still in registers before its store.
  virtual bool clamps_in_store() const { return false; }
};

// Returns null when this configuration is not one it handles (the reference runs instead).
using FastFactory = std::unique_ptr<Kernel> (*)(const CompileCtx&);

struct FastDef {
  const char* op_type;
  FastFactory make;
};

// A kernel converting a value from a fast kernel's layout to the ONNX layout (or between
// two layouts); the planner inserts it where a reference kernel or the caller needs one.
std::unique_ptr<Kernel> make_reorder(const Layout& from, const Layout& to, const Shape& shape, DType type);

// The instruction set oneDNN dispatches on this CPU ("avx512_core_bf16", "avx2", ...).
std::string fast_isa();
// True when the CPU computes bf16 natively (AVX512-BF16 or AMX).
bool fast_bf16_native();
// oneDNN's version, e.g. "2.6.3".
std::string fast_library_version();

// Waits for fast kernels submitted on this thread's stream: once per inference.
void wait_fast_kernels();

// Registry lookups (domain "" / "ai.onnx" only).
const OpDef* find_op(const std::string& domain, const std::string& op_type);
const FastDef* find_fast(const std::string& op_type);
std::vector<std::string> supported_ops();

// Runs inference for a node whose inputs are all known tensors, then the reference
// kernel: the evaluator constant folding and the node tests use.
std::vector<Tensor> eval_node(const Node& n, int64_t opset, const std::vector<const Tensor*>& inputs);

}  // namespace rg

#pragma once
// A Plan is a model compiled for one set of concrete input shapes (DESIGN.md 6):
// shapes inferred, shape-only subgraphs folded to constants, activations fused into the
// op before them, kernels chosen and built, layouts decided, buffers allocated. Running
// it only binds input pointers and executes the steps.
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kernels/op.h"
#include "runtime/options.h"

namespace rg {

struct Slot {
  std::string name;
  DType type = DType::undefined;
  Shape shape;
  bool shape_known = false;  // false downstream of a data-dependent shape
  bool is_const = false;     // initializer or folded at plan time
  Layout layout = plain_layout();
  int plain_twin = -1;       // slot holding this value in the ONNX layout, once made
  Tensor value;              // constant value, bound input, or preallocated buffer
};

struct Step {
  const Node* node = nullptr;  // null for a layout conversion the planner inserted
  const OpDef* op = nullptr;
  std::unique_ptr<Kernel> fast;  // null: the reference kernel runs
  std::vector<int> in, out;      // slot indices, -1 for omitted optional values
  std::vector<const Node*> fused;  // nodes folded into this step (activations, residual Add)
  bool dynamic = false;            // shapes known only at run time
  int threads = 0;                 // 1 when timing showed one thread is faster; 0 = the plan's
  std::unique_ptr<CompileCtx> compile;  // how the fast kernel was built (to rebuild it)
  std::unique_ptr<KernelCtx> ctx;
};

// Called after a step produced `value` (calibration, activation fault injection).
using Observer = std::function<void(const std::string& value, Tensor& t)>;

class Plan {
 public:
  Plan(const Graph& g, const std::vector<Shape>& input_shapes, const SessionOptions& o);
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // Inputs in graph-input order; they are bound, not copied. Outputs are new tensors.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  // Runs without copying the outputs: read them with output(i) until the next execute.
  // Allocation-free in steady state (the benchmark and the server use this).
  void execute(const std::vector<Tensor>& inputs);
  const Tensor& output(size_t i) const { return slots_[output_slots_.at(i)].value; }
  size_t num_outputs() const { return output_slots_.size(); }

  // Watches values by name. Only values listed in SessionOptions::keep_values (and graph
  // inputs/outputs) are guaranteed to exist; others may have been fused away.
  void observe(const std::vector<std::string>& values, Observer fn);
  void clear_observers() { observers_.clear(); }
  // Re-derives what the kernels computed from constant `name` after it changed in place.
  void refresh_constant(const std::string& name);

  // Resuming mid-plan (fault campaigns): a weight changed in place alters only the steps
  // from the first one that reads it, and an activation fault only those from its
  // producer. The first such step; steps().size() when no step reads or writes it.
  size_t first_step_reading(const std::string& constant) const;
  size_t first_step_writing(const std::string& value) const;
  // False when some buffers live outside the activation arena (data-dependent shapes).
  bool resumable() const;
  // With an empty `snapshot`: runs every step, copying the arena as it stands before
  // step `from` into `snapshot`. Otherwise restores the arena from it (taken with the
  // same `from` and the same inputs) and runs only steps from `from` on. Outputs as execute.
  void execute_resume(const std::vector<Tensor>& inputs, size_t from, std::vector<char>& snapshot);

  // Per-step timing (off by default: it adds two clock reads per step).
  void set_profiling(bool on);
  const std::vector<int64_t>& step_ns() const { return step_ns_; }  // cumulative, per step
  int64_t profiled_runs() const { return profiled_runs_; }
  // FLOPs below which autotuning put a step on one thread (0: none, huge: all).
  double single_thread_below() const { return tuned_threshold_; }
  // True where SessionOptions::blocked_1x1 could change this plan's speed: it has
  // Winograd convolutions and 1x1 convolutions, and no shapes decided at run time.
  bool has_layout_choice() const;
  // The fastest of `runs` whole runs on zeroed inputs (after two warm-up runs), in ns;
  // INT64_MAX when a kernel rejects zeroed data (an index, say).
  int64_t fastest_zero_run(int runs);

  const Graph& graph() const { return graph_; }
  const std::vector<Step>& steps() const { return steps_; }
  const std::deque<Slot>& slots() const { return slots_; }
  int slot_of(const std::string& value) const;  // -1 when unknown
  int64_t opset() const { return opset_; }
  // Bytes of the activation arena (buffers reused by liveness) and of the kernels' shared
  // scratch (oneDNN scratchpads, inputs converted to another layout): together the
  // plan's peak activation memory, weights excluded.
  size_t activation_bytes() const { return activation_bytes_; }
  size_t scratch_bytes() const { return scratch_.size() + staging_.size(); }

 private:
  void build(const std::vector<Shape>& input_shapes);
  int add_slot(const std::string& name);
  void plan_node(int ni);
  void move_scale_into_weights(int ni);  // plan_rewrite.cpp
  bool fold_node(const Node& n, const InferCtx& ic, const std::vector<int>& in, const std::vector<int>& out);
  std::vector<PostOp> fusion_chain(int ni, const InferCtx& ic);
  PostOp bound_post_op(const Node& n, int slot, bool lower, const Shape& out_shape) const;
  int plain_twin(int slot);
  void allocate();
  template <class ArenaSlot>
  void place_parts_in_join(int i, std::vector<int>& first, std::vector<int>& last, std::vector<int>& alias,
                           std::vector<size_t>& alias_at, const ArenaSlot& arena_slot) const;
  void autotune_threads();
  void infer_dynamic(Step& s);
  size_t first_step_with(const std::string& value, std::vector<int> Step::*side) const;
  // Runs steps [from, end); with `save`, copies the arena into it just before step save_at.
  void run_steps(const std::vector<Tensor>& inputs, size_t from, size_t save_at, std::vector<char>* save);

  Graph graph_;
  SessionOptions opts_;
  int64_t opset_ = 0;
  std::deque<Slot> slots_;  // deque: kernels keep pointers to slot values
  std::map<std::string, int> slot_index_;
  std::vector<Step> steps_;
  std::vector<int> input_slots_, output_slots_;
  struct Watch {
    int slot;          // the value's slot, or its plain twin
    std::string name;  // the name asked for (a twin's slot has its own)
    Observer fn;
  };
  std::vector<Watch> observers_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::unordered_map<std::string, int> producers_;
  std::vector<bool> absorbed_;  // nodes fused into an earlier step
  Scratch scratch_, staging_;  // shared by the kernels: see CompileCtx
  std::shared_ptr<void> arena_;
  int threads_ = 1;  // the plan's intra-op threads (resolved)
  double tuned_threshold_ = 0;  // steps below this many FLOPs run on one thread
  bool profiling_ = false;
  std::vector<int64_t> step_ns_;
  int64_t profiled_runs_ = 0;
  size_t activation_bytes_ = 0;
};

}  // namespace rg

#pragma once
// Shared oneDNN plumbing for the fast kernels, used the way oneDNN's own examples do:
// forward_inference, format_tag::any for the heavy ops, weights reordered once at
// compile time, user scratchpad shared per plan, post-ops for fused activations.
#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/op.h"

namespace rg::dnnl_util {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& engine();
// One stream per thread: concurrent executors (streams of the bench and the server) never
// share one, and nothing needs to be threaded through the kernel interface.
dnnl::stream& stream();

// Maps a DType to oneDNN's; undef when oneDNN has none (int64, ...).
dt to_dt(DType t);
memory::dims to_dims(const Shape& s);
// Dense row-major descriptor for a shape (rank 0 becomes [1]).
memory::desc plain_desc(const Shape& s, dt type);
// The descriptor an input arrives in: its plan layout, or plain with its ONNX dtype.
memory::desc arrival_desc(const CompileCtx& c, int i);

// One oneDNN eltwise step.
struct Eltwise {
  dnnl::algorithm alg;
  float alpha = 0, beta = 0;
};
// Translates an activation into oneDNN eltwise steps; false when it has no exact oneDNN
// equivalent (then it is neither fused nor run by oneDNN). `clip_lo/hi` are Clip's bounds.
bool eltwise_of(const Node& n, float clip_lo, float clip_hi, std::vector<Eltwise>& out);
// Builds post-ops from c.post_ops; `sum_ok` says whether a residual Add may become a
// sum post-op. Per-channel Max/Min become binary post-ops on a destination of `dst_rank`
// dims whose channels lie along `channel_axis`; their constant operands are added to
// `args` (the primitive's execution arguments). Returns false when any fused node
// cannot be expressed.
bool build_post_ops(const CompileCtx& c, bool sum_ok, int dst_rank, int channel_axis, dnnl::post_ops& po,
                    bool& has_sum, std::unordered_map<int, memory>& args);

// The channel block of an aBcd16b-like layout (one block of channels innermost, and after
// each block all spatial positions), or 0 for any other layout.
int64_t channel_block(const dnnl_memory_desc_t& d);
// True when a [N, C, 1, ...] descriptor puts element (n, c) at n * C + c, as the plain
// [N, C] tensor does, and is no larger: nChw8c/16c without channel padding (padding would
// be written past the plain buffer), channels-last, plain.
bool stores_as_nc(const dnnl_memory_desc_t& d);
// The implementation oneDNN picked, e.g. "jit:avx512_core".
std::string impl_name(const dnnl::primitive_desc_base& pd);
// Attribute with user scratchpad (shared per plan) and, for bf16 plans, bf16 math allowed.
dnnl::primitive_attr base_attr(bool bf16);
// Reserves the scratchpad a primitive needs in the plan's shared scratch.
void reserve_scratch(const CompileCtx& c, const dnnl::primitive_desc_base& pd);

// Where one kernel's converted inputs go: consecutive regions of the plan's staging
// memory (CompileCtx::staging), so that they never overlap within the kernel. A private
// buffer per converted input made densenet121's plan 111 MB larger at batch 2.
struct Staging {
  explicit Staging(const CompileCtx& c) : scratch(c.staging) {}
  Scratch* scratch;  // null outside a plan: each port then has a buffer of its own
  size_t used = 0;
};

// An input that may need converting from how it arrives to how a primitive wants it.
// Built once; run() returns the memory to pass to the primitive.
class InputPort {
 public:
  InputPort() = default;
  InputPort(const memory::desc& arrival, const memory::desc& wanted, Staging* staging = nullptr);
  const memory& bind(void* data);  // converts if needed, returns the memory to use
  bool converts() const { return (bool)reorder_; }
  // The memory the primitive reads (the same object on every run; bind() may re-point it).
  const memory& target() const { return internal_; }

 private:
  memory user_, internal_;
  dnnl::reorder reorder_;
  std::unordered_map<int, memory> args_;  // built once: no allocation per run
  std::shared_ptr<void> buf_;
  Scratch* staging_ = nullptr;  // internal_ lies at staging_->get() + offset_
  size_t offset_ = 0;
  void* bound_ = nullptr;
};

// Constant weights reordered once into the layout a primitive wants. refresh() redoes
// it from the (possibly modified) source tensor.
class ConstPort {
 public:
  ConstPort() = default;
  // `src_desc` describes the source tensor's data as stored (plain, maybe reshaped).
  ConstPort(const Tensor* src, const memory::desc& src_desc, const memory::desc& wanted);
  void refresh();
  const memory& mem() const { return mem_; }

 private:
  void fill(bool keep_reorder);

  const Tensor* src_ = nullptr;
  memory::desc src_desc_;
  memory mem_;
  dnnl::reorder reorder_;  // made on the first refresh(): fault campaigns refresh per trial
  std::shared_ptr<void> buf_;
};

// Base of the single-primitive kernels: the argument map is built once at compile time;
// a run only re-points memory handles and executes (no allocation per inference).
class PrimKernel : public Kernel {
 public:
  std::string impl() const override { return impl_; }
  Layout out_layout(int) const override { return layout_; }

 protected:
  // Records the primitive's name and reserves its scratchpad in the plan's shared scratch.
  void set_primitive(const CompileCtx& c, const dnnl::primitive& p, const dnnl::primitive_desc_base& pd);
  // Memory for argument `arg` described by `md`; its data handle is set per run.
  memory& arg(int arg, const memory::desc& md);
  void execute();  // binds the scratchpad (once) and runs the primitive

  dnnl::primitive prim_;
  std::unordered_map<int, memory> args_;
  std::string impl_;
  Layout layout_ = plain_layout();

 private:
  Scratch* scratch_ = nullptr;
  memory::desc scratch_md_;
  void* scratch_bound_ = nullptr;
};

// Layout to report for a primitive's output: plain when oneDNN chose exactly the ONNX
// layout and dtype, else its descriptor.
Layout layout_of(const memory::desc& md, const Shape& shape);

}  // namespace rg::dnnl_util

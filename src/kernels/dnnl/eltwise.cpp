// oneDNN element-wise activations. They run in whatever layout their input arrives in
// (blocked or plain), so a chain of oneDNN ops never falls back to plain for them.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

// Multi-step activations (Selu, HardSigmoid) run as a chain of primitives, the later
// ones in place on the destination: oneDNN 2.6's eltwise does not apply eltwise post-ops.
class EltwiseKernel : public Kernel {
 public:
  EltwiseKernel(const CompileCtx& c, const std::vector<Eltwise>& steps) : scratch_(c.scratch) {
    memory::desc md = arrival_desc(c, 0);
    src_ = memory(md, engine(), DNNL_MEMORY_NONE);
    dst_ = memory(md, engine(), DNNL_MEMORY_NONE);
    for (size_t i = 0; i < steps.size(); i++) {
      const Eltwise& e = steps[i];
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, e.alg, md, e.alpha, e.beta);
      dnnl::eltwise_forward::primitive_desc pd(d, base_attr(false), engine());
      reserve_scratch(c, pd);
      impl_ = "dnnl:" + impl_name(pd);
      prims_.emplace_back(pd);
      scratch_mds_.push_back(pd.scratchpad_desc());
      args_.push_back({{DNNL_ARG_SRC, i == 0 ? src_ : dst_}, {DNNL_ARG_DST, dst_}});
    }
    if (!c.in_layouts.empty() && !is_plain(c.in_layouts[0])) layout_ = md.data;
  }

  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    if (scratch_->get() != scratch_bound_) {
      scratch_bound_ = scratch_->get();
      for (size_t i = 0; i < prims_.size(); i++)
        if (scratch_mds_[i].get_size()) args_[i][DNNL_ARG_SCRATCHPAD] = memory(scratch_mds_[i], engine(), scratch_bound_);
    }
    for (size_t i = 0; i < prims_.size(); i++) prims_[i].execute(stream(), args_[i]);
  }
  std::string impl() const override { return impl_; }
  Layout out_layout(int) const override { return layout_; }

 private:
  std::vector<memory::desc> scratch_mds_;
  std::vector<std::unordered_map<int, memory>> args_;
  memory src_, dst_;
  std::vector<dnnl::eltwise_forward> prims_;
  Scratch* scratch_;
  void* scratch_bound_ = nullptr;
  std::string impl_;
  Layout layout_ = plain_layout();
};

std::unique_ptr<Kernel> make_eltwise(const CompileCtx& c) {
  if (c.in_types.empty() || c.in_types[0] != DType::f32 || !c.post_ops.empty()) return nullptr;
  float lo = 0, hi = 0;
  if (c.node.op_type == "Clip" && !clip_bounds(c.node, c.in_values, lo, hi)) return nullptr;
  std::vector<Eltwise> steps;
  if (!eltwise_of(c.node, lo, hi, steps)) return nullptr;
  return std::make_unique<EltwiseKernel>(c, steps);
}

// PRelu with constant slopes (one, or one per channel) on the layout its input arrives
// in. Fused into a convolution it is a prelu post-op, which oneDNN 2.6's AVX2 direct
// convolutions run in their reference kernel; rangeguard's Winograd takes it (plan.cpp).
class PReluKernel : public PrimKernel {
 public:
  PReluKernel(const CompileCtx& c) {
    memory::desc src = arrival_desc(c, 0);
    Shape w = c.in_shapes[1];  // right-aligned against the input, as ONNX broadcasts
    w.insert(w.begin(), c.in_shapes[0].size() - w.size(), 1);
    // Slopes in the layout oneDNN picks to match the input's (its jit kernel wants the
    // same blocking; plain slopes against nChw8c get its reference kernel).
    memory::desc any(to_dims(w), dt::f32, tag::any);
    dnnl::prelu_forward::desc d(dnnl::prop_kind::forward_inference, src, any);
    dnnl::prelu_forward::primitive_desc pd(d, base_attr(false), engine());
    set_primitive(c, dnnl::prelu_forward(pd), pd);
    src_ = arg(DNNL_ARG_SRC, src);
    dst_ = arg(DNNL_ARG_DST, pd.dst_desc());
    slopes_ = ConstPort(c.in_values[1], plain_desc(w, dt::f32), pd.weights_desc());
    args_[DNNL_ARG_WEIGHTS] = slopes_.mem();
    layout_ = layout_of(pd.dst_desc(), c.out_shapes[0]);
  }
  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    execute();
  }

  void refresh_constants() override { slopes_.refresh(); }

 private:
  memory src_, dst_;
  ConstPort slopes_;
};

std::unique_ptr<Kernel> make_prelu(const CompileCtx& c) {
  if (c.in_types.size() != 2 || c.in_types[0] != DType::f32 || c.in_types[1] != DType::f32 || !c.in_values[1]) return nullptr;
  if (!c.post_ops.empty() || c.in_shapes[1].size() > c.in_shapes[0].size() || c.out_shapes[0] != c.in_shapes[0])
    return nullptr;
  try {
    return std::make_unique<PReluKernel>(c);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_PRelu{"PRelu", make_prelu};

#define FAST(Name) const FastDef kFast_##Name{#Name, make_eltwise};
FAST(Relu)
FAST(LeakyRelu)
FAST(Elu)
FAST(Selu)
FAST(Sigmoid)
FAST(Tanh)
FAST(HardSwish)
FAST(HardSigmoid)
FAST(Gelu)
FAST(Mish)
FAST(Swish)
FAST(Clip)
#undef FAST

}  // namespace rg

// oneDNN concat: inputs may arrive in oneDNN layouts (conv outputs in a DenseNet or
// Inception block) and the result stays in one, so the block needs no conversions.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

class ConcatKernel : public Kernel {
 public:
  ConcatKernel(const CompileCtx& c, int axis) : scratch_(c.scratch) {
    std::vector<memory::desc> srcs;
    for (size_t i = 0; i < c.in_shapes.size(); i++) {
      if (shape_numel(c.in_shapes[i]) == 0) {
        skip_.push_back((int)i);
        continue;
      }
      srcs.push_back(arrival_desc(c, (int)i));
      inputs_.push_back((int)i);
    }
    // Mixed data types (bf16 next to f32) or layouts: let oneDNN pick one destination.
    dnnl::concat::primitive_desc pd(axis, srcs, engine(), base_attr(false));
    impl_ = "dnnl:" + impl_name(pd);
    reserve_scratch(c, pd);
    scratch_md_ = pd.scratchpad_desc();
    prim_ = dnnl::concat(pd);
    for (const auto& s : srcs) srcs_.push_back(memory(s, engine(), DNNL_MEMORY_NONE));
    dst_ = memory(pd.dst_desc(), engine(), DNNL_MEMORY_NONE);
    if (!(pd.dst_desc() == plain_desc(c.out_shapes[0], dt::f32))) layout_ = pd.dst_desc().data;
  }
  void run(KernelCtx& c) override {
    std::unordered_map<int, memory> args;
    for (size_t k = 0; k < inputs_.size(); k++) {
      srcs_[k].set_data_handle(const_cast<void*>(c.input(inputs_[k]).raw()));
      args[DNNL_ARG_MULTIPLE_SRC + (int)k] = srcs_[k];
    }
    dst_.set_data_handle(c.output(0).raw());
    args[DNNL_ARG_DST] = dst_;
    args[DNNL_ARG_SCRATCHPAD] = memory(scratch_md_, engine(), scratch_->get());
    prim_.execute(stream(), args);
  }
  std::string impl() const override { return impl_; }
  Layout out_layout(int) const override { return layout_; }

 private:
  Scratch* scratch_;
  memory::desc scratch_md_;
  std::vector<int> inputs_, skip_;
  std::vector<memory> srcs_;
  memory dst_;
  dnnl::concat prim_;
  std::string impl_;
  Layout layout_ = plain_layout();
};

std::unique_ptr<Kernel> make_concat(const CompileCtx& c) {
  const Shape& out = c.out_shapes[0];
  if (out.empty() || shape_numel(out) == 0 || out.size() > 12) return nullptr;
  int nonempty = 0;
  for (size_t i = 0; i < c.in_types.size(); i++) {
    if (c.in_types[i] != DType::f32) return nullptr;
    nonempty += shape_numel(c.in_shapes[i]) != 0;
  }
  if (nonempty == 0) return nullptr;
  int64_t axis = c.node.attr_i("axis", 1);
  if (axis < 0) axis += (int64_t)out.size();
  try {
    return std::make_unique<ConcatKernel>(c, (int)axis);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_Concat{"Concat", make_concat};

}  // namespace rg

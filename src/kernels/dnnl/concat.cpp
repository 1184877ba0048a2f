// oneDNN concat: inputs may arrive in oneDNN layouts (conv outputs in a DenseNet or
// Inception block) and the result stays in one, so the block needs no conversions.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

class ConcatKernel : public PrimKernel {
 public:
  ConcatKernel(const CompileCtx& c, int axis) {
    std::vector<memory::desc> srcs;
    bool plain = true;
    for (size_t i = 0; i < c.in_shapes.size(); i++) {
      if (shape_numel(c.in_shapes[i]) == 0) continue;  // oneDNN rejects empty parts
      srcs.push_back(arrival_desc(c, (int)i));
      inputs_.push_back((int)i);
      plain &= is_plain(c.in_layouts[i]);  // (make_concat takes f32 parts only)
    }
    // Parts in different layouts: oneDNN picks one destination layout. Plain parts give a
    // plain result: left to pick, oneDNN may order a size-1 dim differently (a ViT's class
    // token [N, 1, D] joining the patches), and every consumer then needs a reorder or
    // its reference kernel.
    dnnl::concat::primitive_desc pd = plain ? dnnl::concat::primitive_desc(plain_desc(c.out_shapes[0], dt::f32), axis, srcs, engine(), base_attr(false))
                                            : dnnl::concat::primitive_desc(axis, srcs, engine(), base_attr(false));
    set_primitive(c, dnnl::concat(pd), pd);
    for (size_t k = 0; k < srcs.size(); k++) srcs_.push_back(arg(DNNL_ARG_MULTIPLE_SRC + (int)k, srcs[k]));
    dst_ = arg(DNNL_ARG_DST, pd.dst_desc());
    layout_ = layout_of(pd.dst_desc(), c.out_shapes[0]);
  }
  void run(KernelCtx& c) override {
    for (size_t k = 0; k < inputs_.size(); k++) srcs_[k].set_data_handle(const_cast<void*>(c.input(inputs_[k]).raw()));
    dst_.set_data_handle(c.output(0).raw());
    execute();
  }

 private:
  std::vector<int> inputs_;
  std::vector<memory> srcs_;
  memory dst_;
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

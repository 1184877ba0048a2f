// oneDNN concat of parts in oneDNN layouts (conv outputs in a DenseNet or Inception
// block): the result stays in one, so the block needs no conversions.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

class ConcatKernel : public PrimKernel {
 public:
  ConcatKernel(const CompileCtx& c, int axis) {
    std::vector<memory::desc> srcs;
    for (size_t i = 0; i < c.in_shapes.size(); i++) {
      if (shape_numel(c.in_shapes[i]) == 0) continue;  // oneDNN rejects empty parts
      srcs.push_back(arrival_desc(c, (int)i));
      inputs_.push_back((int)i);
    }
    dnnl::concat::primitive_desc pd(axis, srcs, engine(), base_attr(false));
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
  // Plain parts: the reference kernel's one memcpy per part and outer index. oneDNN's
  // took 29 us to join a ViT's class token to its 64 patches (ours: 1 us), and left to
  // pick a destination it may order the size-1 dim differently, so that every consumer
  // then needs a reorder.
  bool plain = true;
  for (const Layout& l : c.in_layouts) plain &= is_plain(l);
  if (plain) return nullptr;
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

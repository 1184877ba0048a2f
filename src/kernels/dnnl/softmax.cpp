// oneDNN softmax and log-softmax along one axis (plain layout).
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

class SoftmaxKernel : public PrimKernel {
 public:
  SoftmaxKernel(const CompileCtx& c, bool log, int axis) {
    memory::desc md = plain_desc(c.in_shapes[0], dt::f32);
    dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                     log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate, md, md,
                                     axis);
    dnnl::softmax_v2_forward::primitive_desc pd(d, base_attr(false), engine());
    set_primitive(c, dnnl::softmax_v2_forward(pd), pd);
    src_ = arg(DNNL_ARG_SRC, md);
    dst_ = arg(DNNL_ARG_DST, md);
  }
  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    execute();
  }

 private:
  memory src_, dst_;
};

std::unique_ptr<Kernel> make_softmax(const CompileCtx& c) {
  if (c.in_types[0] != DType::f32 || c.in_shapes[0].empty() || shape_numel(c.in_shapes[0]) == 0) return nullptr;
  int r = (int)c.in_shapes[0].size();
  int64_t axis = c.node.attr_i("axis", c.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return nullptr;
  // Before opset 13 the input is coerced to 2-D at `axis`: the same as a softmax along
  // one axis only when that axis is the last.
  if (c.opset < 13 && axis != r - 1) return nullptr;
  try {
    return std::make_unique<SoftmaxKernel>(c, c.node.op_type == "LogSoftmax", (int)axis);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_Softmax{"Softmax", make_softmax};
const FastDef kFast_LogSoftmax{"LogSoftmax", make_softmax};

}  // namespace rg

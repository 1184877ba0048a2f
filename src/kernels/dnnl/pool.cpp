// oneDNN pooling: MaxPool, AveragePool and the global pools. Pooling runs in the layout
// its input arrives in (a conv's blocked layout) and produces the same layout.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

using namespace dnnl_util;

class PoolKernel : public PrimKernel {
 public:
  PoolKernel(const CompileCtx& c, dnnl::algorithm alg, const WindowParams& wp) {
    int sp = wp.spatial();
    memory::dims strides, kernel, dil, pl, pr;
    for (int i = 0; i < sp; i++) {
      strides.push_back(wp.strides[i]);
      kernel.push_back(wp.kernel[i]);
      dil.push_back(wp.dilations[i] - 1);
      pl.push_back(wp.pads_begin[i]);
      // oneDNN sizes the output with floor(); ceil_mode's extra window becomes end padding.
      pr.push_back((wp.out[i] - 1) * wp.strides[i] + wp.effective_kernel(i) - wp.in[i] - wp.pads_begin[i]);
    }
    memory::desc src = arrival_desc(c, 0);
    memory::desc dst(to_dims(c.out_shapes[0]), src.data_type(), tag::any);
    dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst, strides, kernel, dil, pl, pr);
    dnnl::pooling_v2_forward::primitive_desc pd(d, base_attr(false), engine());
    set_primitive(c, dnnl::pooling_v2_forward(pd), pd);
    src_ = arg(DNNL_ARG_SRC, src);
    dst_ = arg(DNNL_ARG_DST, pd.dst_desc());
    layout_ = layout_of(pd.dst_desc(), c.out_shapes[0]);
  }
  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    execute();
  }

 private:
  memory src_, dst_;
};

std::unique_ptr<Kernel> make_pool(const CompileCtx& c) {
  const Node& n = c.node;
  const Shape& x = c.in_shapes[0];
  int sp = (int)x.size() - 2;
  if (c.in_types[0] != DType::f32 || sp < 1 || sp > 3) return nullptr;
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) return nullptr;  // MaxPool Indices
  try {
    bool global = n.op_type.rfind("Global", 0) == 0;
    WindowParams wp;
    if (global) {
      Node g;  // a window covering the whole spatial extent
      g.op_type = n.op_type;
      wp = window_params(g, x, std::vector<int64_t>(x.begin() + 2, x.end()));
    } else {
      wp = window_params(n, x, window_kernel(n, sp), n.attr_i("ceil_mode", 0) != 0);
    }
    dnnl::algorithm alg;
    if (n.op_type == "MaxPool" || n.op_type == "GlobalMaxPool") {
      alg = dnnl::algorithm::pooling_max;
    } else if (n.attr_i("count_include_pad", 0)) {
      // With ceil_mode the extra end window must not count padding oneDNN would count.
      for (int i = 0; i < sp; i++)
        if ((wp.out[i] - 1) * wp.strides[i] + wp.effective_kernel(i) > wp.in[i] + wp.pads_begin[i] + wp.pads_end[i])
          return nullptr;
      alg = dnnl::algorithm::pooling_avg_include_padding;
    } else {
      alg = dnnl::algorithm::pooling_avg_exclude_padding;
    }
    return std::make_unique<PoolKernel>(c, alg, wp);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_MaxPool{"MaxPool", make_pool};
const FastDef kFast_AveragePool{"AveragePool", make_pool};
const FastDef kFast_GlobalAveragePool{"GlobalAveragePool", make_pool};
const FastDef kFast_GlobalMaxPool{"GlobalMaxPool", make_pool};

}  // namespace rg

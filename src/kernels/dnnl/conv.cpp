// oneDNN Conv and ConvTranspose with fused post-ops: activations as eltwise post-ops and
// a residual Add as a sum post-op. Source and destination use format_tag::any so oneDNN
// picks its blocked layout; the destination stays in it for the next oneDNN op. Weights
// are reordered once when the plan is compiled.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/group_conv.h"
#include "kernels/dnnl/winograd.h"
#include "kernels/ops.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

using namespace dnnl_util;

// Plain-storage descriptor of ONNX conv weights for oneDNN's logical [g,] o, i, k... order.
memory::desc weight_source_desc(const Shape& w, int64_t group, bool transposed) {
  int sp = (int)w.size() - 2;
  memory::dims d;
  // ONNX Conv W: [M, C/g, k...]; ConvTranspose W: [C, M/g, k...].
  int64_t oc = transposed ? w[1] * group : w[0];
  int64_t ic = transposed ? w[0] : w[1] * group;
  if (group > 1) d.push_back(group);
  d.push_back(oc / group);
  d.push_back(ic / group);
  for (int i = 0; i < sp; i++) d.push_back(w[2 + i]);
  if (!transposed) return plain_desc(Shape(d.begin(), d.end()), dt::f32);
  // Transposed storage is [g][i][o][k...]: swap the o and i strides of a plain layout.
  memory::dims store = d;
  int o = group > 1 ? 1 : 0;
  std::swap(store[o], store[o + 1]);
  memory::dims st(store.size(), 1);
  for (int i = (int)store.size() - 2; i >= 0; i--) st[i] = st[i + 1] * store[i + 1];
  std::swap(st[o], st[o + 1]);
  return memory::desc(d, dt::f32, st);
}

class ConvKernel : public PrimKernel {
 public:
  ConvKernel(const CompileCtx& c, bool transposed, bool winograd) {
    const Shape& x = c.in_shapes[0];
    const Shape& w = c.in_shapes[1];
    int sp = (int)x.size() - 2;
    int64_t group = c.node.attr_i("group", 1);
    WindowParams wp = window_params(c.node, x, window_kernel(c.node, sp, &w), false, transposed);
    memory::dims strides(wp.strides.begin(), wp.strides.end()), dil, pl, pr;
    for (int i = 0; i < sp; i++) {
      dil.push_back(wp.dilations[i] - 1);
      pl.push_back(wp.pads_begin[i]);
      pr.push_back(wp.pads_end[i] - (transposed ? wp.output_padding[i] : 0));
    }
    dt act = c.bf16 ? dt::bf16 : dt::f32;
    memory::desc wsrc = weight_source_desc(w, group, transposed);
    bool blocked = c.blocked_1x1 && !transposed && !winograd && sp == 2 && w[2] == 1 && w[3] == 1 &&
                   group == 1 && x[1] % 16 == 0 && c.out_shapes[0][1] % 16 == 0 && !c.plain_output;
    tag act_tag = blocked ? tag::nChw16c : tag::any;
    memory::desc src_any(to_dims(x), act, act_tag);
    memory::desc w_any(wsrc.dims(), act, tag::any);
    memory::desc dst_md = c.plain_output ? plain_desc(c.out_shapes[0], dt::f32)
                                         : memory::desc(to_dims(c.out_shapes[0]), act, act_tag);
    has_bias_ = c.node.has_input(2);
    memory::desc b_md = has_bias_ ? plain_desc(c.in_shapes[2], dt::f32) : memory::desc();

    dnnl::post_ops po;
    if (!build_post_ops(c, !transposed, (int)c.out_shapes[0].size(), 1, po, has_sum_, args_))
      throw dnnl::error(dnnl_unimplemented, "post-ops");
    dnnl::primitive_attr attr = base_attr(c.bf16);
    attr.set_post_ops(po);
    auto prop = dnnl::prop_kind::forward_inference;
    dnnl::primitive_desc_base pd;
    if (!transposed) {
      auto calg = winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
      dnnl::convolution_forward::desc d(prop, calg, src_any, w_any, b_md, dst_md,
                                        strides, dil, pl, pr);
      dnnl::convolution_forward::primitive_desc cpd(d, attr, engine());
      set_primitive(c, dnnl::convolution_forward(cpd), cpd);
      pd = cpd;
    } else {
      dnnl::deconvolution_forward::desc d(prop, dnnl::algorithm::deconvolution_direct, src_any, w_any, b_md,
                                          dst_md, strides, dil, pl, pr);
      dnnl::deconvolution_forward::primitive_desc dpd(d, attr, engine());
      set_primitive(c, dnnl::deconvolution_forward(dpd), dpd);
      pd = dpd;
    }
    memory::desc dst = pd.query_md(dnnl::query::dst_md);
    Staging staging(c);
    src_ = InputPort(arrival_desc(c, 0), pd.query_md(dnnl::query::src_md), &staging);
    args_[DNNL_ARG_SRC] = src_.target();
    memory::desc wt = pd.query_md(dnnl::query::weights_md);
    if (c.in_values[1]) {
      weights_ = ConstPort(c.in_values[1], wsrc, wt);
      args_[DNNL_ARG_WEIGHTS] = weights_.mem();
    } else {
      // Weights computed at run time (Plan::move_scale_into_weights) arrive in whatever
      // layout their producer gave.
      wport_ = InputPort(group == 1 && !transposed ? arrival_desc(c, 1) : wsrc, wt, &staging);
      args_[DNNL_ARG_WEIGHTS] = wport_.target();
    }
    if (has_bias_) {
      if (c.in_values[2]) {
        bias_ = ConstPort(c.in_values[2], b_md, b_md);
        args_[DNNL_ARG_BIAS] = bias_.mem();
      } else {
        bport_ = InputPort(b_md, b_md);
        args_[DNNL_ARG_BIAS] = bport_.target();
      }
    }
    if (has_sum_) {  // residual (last input) copied into dst before the sum post-op adds to it
      res_ = memory(arrival_desc(c, (int)c.in_shapes.size() - 1), engine(), DNNL_MEMORY_NONE);
      res_reorder_ = dnnl::reorder(res_, memory(dst, engine(), DNNL_MEMORY_NONE));
    }
    dst_ = arg(DNNL_ARG_DST, dst);
    res_args_ = {{DNNL_ARG_FROM, res_}, {DNNL_ARG_TO, dst_}};
    layout_ = layout_of(dst, c.out_shapes[0]);
  }

  void run(KernelCtx& c) override {
    dst_.set_data_handle(c.output(0).raw());
    if (has_sum_) {
      res_.set_data_handle(const_cast<void*>(c.in.back()->raw()));
      if (res_.get_data_handle() != dst_.get_data_handle()) res_reorder_.execute(stream(), res_args_);
    }
    src_.bind(const_cast<void*>(c.input(0).raw()));
    if (!weights_.mem()) wport_.bind(const_cast<void*>(c.input(1).raw()));
    if (has_bias_ && !bias_.mem()) bport_.bind(const_cast<void*>(c.input(2).raw()));
    execute();
  }
  void refresh_constants() override {
    if (weights_.mem()) weights_.refresh();
    if (bias_.mem()) bias_.refresh();
  }

 private:
  InputPort src_, wport_, bport_;
  ConstPort weights_, bias_;
  memory dst_, res_;
  dnnl::reorder res_reorder_;
  std::unordered_map<int, memory> res_args_;
  bool has_sum_ = false, has_bias_ = false;
};

// Explicit padding wider than the whole (dilated) kernel: outputs that see nothing but
// padding. Legal, but oneDNN spent over a minute choosing a blocking for the width it
// gives (a fuzzed model: pads 16777215 on a 5-wide input), so the reference kernel takes it.
bool pads_past_kernel(const CompileCtx& c) {
  const Shape& x = c.in_shapes[0];
  int sp = (int)x.size() - 2;
  WindowParams wp = window_params(c.node, x, window_kernel(c.node, sp, &c.in_shapes[1]), false, false);
  for (int i = 0; i < sp; i++)
    if (wp.pads_begin[i] > wp.effective_kernel(i) || wp.pads_end[i] > wp.effective_kernel(i)) return true;
  return false;
}

std::unique_ptr<Kernel> make_conv_like(const CompileCtx& c, bool transposed) {
  if (c.in_types[0] != DType::f32 || c.in_types[1] != DType::f32) return nullptr;
  if (c.in_shapes[0].size() < 3 || c.in_shapes[0].size() > 5) return nullptr;
  if (!transposed && pads_past_kernel(c)) return nullptr;
  // Winograd first for 3x3 stride-1 fp32 convolutions: 2.25x (F(2,3)) to 4x (F(4,3))
  // fewer multiplies, error well inside the parity tolerance; everything else runs direct.
  // rangeguard's own where it applies (AVX2, where oneDNN has none; AVX-512, where it beat
  // oneDNN's F(2,3) on every resnet50 layer it takes: docs/speed.md), else oneDNN's.
  if (!transposed && c.winograd && !c.bf16) {
    if (auto k = make_winograd_conv(c)) return k;
    // oneDNN's (AVX-512) not on small images (ResNet's 7x7 stage): there a layer waits
    // for its weights to stream in, and F(2,3)'s are 16/9 the direct ones (512 channels,
    // weights cold: 1.67 ms Winograd, 1.58 direct; scripts/conv_weights_bench.cpp,
    // docs/speed.md).
    const Shape& y = c.out_shapes[0];
    if (y.size() != 4 || y[2] * y[3] >= 64) {
      try {
        return std::make_unique<ConvKernel>(c, transposed, true);
      } catch (const dnnl::error&) {
      }
    }
  }
  if (!transposed)
    if (auto k = make_group8_conv(c)) return k;  // ours where oneDNN's AVX2 kernel is slow
  try {
    return std::make_unique<ConvKernel>(c, transposed, false);
  } catch (const dnnl::error&) {
    return nullptr;  // a configuration oneDNN does not implement: the reference runs
  }
}

std::unique_ptr<Kernel> make_conv(const CompileCtx& c) { return make_conv_like(c, false); }
std::unique_ptr<Kernel> make_conv_transpose(const CompileCtx& c) { return make_conv_like(c, true); }

}  // namespace

const FastDef kFast_Conv{"Conv", make_conv};
const FastDef kFast_ConvTranspose{"ConvTranspose", make_conv_transpose};

}  // namespace rg

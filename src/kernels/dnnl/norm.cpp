// oneDNN BatchNormalization (inference, global statistics; the ones graph passes could not
// fold into a Conv/Gemm) and LayerNormalization.
#include <deque>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;
using F = dnnl::normalization_flags;

class NormKernel : public PrimKernel {
 public:
  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    for (auto& p : inputs_) p.second.bind(const_cast<void*>(c.input(p.first).raw()));
    execute();
  }
  void refresh_constants() override {
    for (auto& p : ports_) p.refresh();
  }

 protected:
  // Binds operand `input` of the node to oneDNN argument `a` (constant: copied once).
  void operand(const CompileCtx& c, int a, int input, const memory::desc& md) {
    if (c.in_values[input]) {
      ports_.emplace_back(c.in_values[input], md, md);
      args_[a] = ports_.back().mem();
    } else {
      inputs_.emplace_back(input, InputPort(md, md));
      args_[a] = inputs_.back().second.target();
    }
  }
  void finish(const memory::desc& data) {
    src_ = arg(DNNL_ARG_SRC, data);
    dst_ = arg(DNNL_ARG_DST, data);
  }

  std::deque<ConstPort> ports_;
  std::deque<std::pair<int, InputPort>> inputs_;
  std::vector<std::shared_ptr<void>> bufs_;
  memory src_, dst_;
};

class BatchNormKernel : public NormKernel {
 public:
  explicit BatchNormKernel(const CompileCtx& c) {
    memory::desc data = arrival_desc(c, 0);
    float eps = c.node.attr_f("epsilon", 1e-5f);
    auto flags = F::use_global_stats | F::use_scale | F::use_shift;
    if (!c.post_ops.empty()) flags |= F::fuse_norm_relu;  // make_batchnorm admits a Relu only
    dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_inference, data, eps, flags);
    dnnl::batch_normalization_forward::primitive_desc pd(d, base_attr(false), engine());
    set_primitive(c, dnnl::batch_normalization_forward(pd), pd);
    memory::desc ch = plain_desc({c.in_shapes[0][1]}, dt::f32);
    operand(c, DNNL_ARG_SCALE, 1, ch);
    operand(c, DNNL_ARG_SHIFT, 2, ch);
    operand(c, DNNL_ARG_MEAN, 3, ch);
    operand(c, DNNL_ARG_VARIANCE, 4, ch);
    finish(data);
    if (!is_plain(c.in_layouts[0])) layout_ = data.data;
  }
};

class LayerNormKernel : public NormKernel {
 public:
  LayerNormKernel(const CompileCtx& c, int axis) {
    // oneDNN normalises over the last dim: view the tensor as [outer, inner].
    const Shape& x = c.in_shapes[0];
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < (int)x.size(); i++) (i < axis ? outer : inner) *= x[i];
    memory::desc data = plain_desc({outer, inner}, dt::f32);
    float eps = c.node.attr_f("epsilon", 1e-5f);
    auto flags = F::use_scale | (c.node.has_input(2) ? F::use_shift : F::none);
    dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_inference, data, eps, flags);
    dnnl::layer_normalization_forward::primitive_desc pd(d, base_attr(false), engine());
    set_primitive(c, dnnl::layer_normalization_forward(pd), pd);
    memory::desc ch = plain_desc({inner}, dt::f32);
    operand(c, DNNL_ARG_SCALE, 1, ch);
    if (c.node.has_input(2)) operand(c, DNNL_ARG_SHIFT, 2, ch);
    for (int arg : {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE}) {  // statistics scratch, unused after
      memory::desc md = pd.query_md(dnnl::query::dst_md, arg == DNNL_ARG_MEAN ? 1 : 2);
      if (md.get_size() == 0) continue;
      bufs_.push_back(aligned_buffer(md.get_size()));
      args_[arg] = memory(md, engine(), bufs_.back().get());
    }
    finish(data);
  }
};

std::unique_ptr<Kernel> make_batchnorm(const CompileCtx& c) {
  if (c.in_types[0] != DType::f32 || c.in_shapes[0].size() < 2 || c.in_shapes[0].size() > 5) return nullptr;
  if (c.node.attr_i("training_mode", 0) || c.node.attr_i("spatial", 1) != 1) return nullptr;
  for (size_t i = 1; i < c.node.outputs.size(); i++)
    if (!c.node.outputs[i].empty()) return nullptr;
  for (int i = 1; i <= 4; i++)
    if (c.in_types[i] != DType::f32 || shape_numel(c.in_shapes[i]) != c.in_shapes[0][1]) return nullptr;
  // A following Relu fuses (DenseNet's pre-activation BN -> Relu -> Conv, where the BN
  // comes after a Concat and cannot fold); oneDNN's batch normalization takes no other.
  if (c.post_ops.size() > 1 || (c.post_ops.size() == 1 && c.post_ops[0].node->op_type != "Relu")) return nullptr;
  try {
    return std::make_unique<BatchNormKernel>(c);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

std::unique_ptr<Kernel> make_layernorm(const CompileCtx& c) {
  const Shape& x = c.in_shapes[0];
  int r = (int)x.size();
  int64_t axis = c.node.attr_i("axis", -1);
  if (axis < 0) axis += r;
  if (c.in_types[0] != DType::f32 || r == 0 || axis < 0 || axis >= r || !is_plain(c.in_layouts[0])) return nullptr;
  for (size_t i = 1; i < c.node.outputs.size(); i++)
    if (!c.node.outputs[i].empty()) return nullptr;
  int64_t inner = 1;
  for (int i = (int)axis; i < r; i++) inner *= x[i];
  for (int i = 1; i <= 2 && i < (int)c.in_types.size(); i++)
    if (c.node.has_input(i) && (c.in_types[i] != DType::f32 || shape_numel(c.in_shapes[i]) != inner)) return nullptr;
  if (!c.node.has_input(1)) return nullptr;
  try {
    return std::make_unique<LayerNormKernel>(c, (int)axis);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_BatchNormalization{"BatchNormalization", make_batchnorm};
const FastDef kFast_LayerNormalization{"LayerNormalization", make_layernorm};

}  // namespace rg

// oneDNN matmul for MatMul (batched, broadcast) and Gemm (transposes, alpha, beta, bias),
// with fused activations as post-ops. Constant right-hand operands (weights) are
// reordered once into the layout oneDNN prefers; the output is always plain float32,
// because what follows a matmul (Add, Softmax, Reshape) is usually a reference op.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

// Descriptor of a plain row-major [.., R, C] tensor, optionally viewed transposed.
memory::desc matrix_desc(const Shape& s, bool transposed) {
  memory::desc d = plain_desc(s, dt::f32);
  if (!transposed) return d;
  memory::dims dims = d.dims(), st(dims.size());
  int r = (int)dims.size();
  std::vector<int64_t> strides = shape_strides(s);
  for (int i = 0; i < r; i++) st[i] = strides[i];
  std::swap(dims[r - 1], dims[r - 2]);
  std::swap(st[r - 1], st[r - 2]);
  return memory::desc(dims, dt::f32, st);
}

class MatMulKernel : public PrimKernel {
 public:
  // a, b: operand shapes promoted to equal rank >= 2; out: the promoted output shape.
  // `bias` (may be null) is added after scaling by `bias_scale`; shape [1|M, 1|N].
  MatMulKernel(const CompileCtx& c, const Shape& a, bool ta, const Shape& b, bool tb, const Shape& out,
               float alpha, const Tensor* bias, float bias_scale)
      : bias_src_(bias), bias_scale_(bias_scale) {
    memory::desc a_src = matrix_desc(a, ta), b_src = matrix_desc(b, tb);
    dt act = c.bf16 ? dt::bf16 : dt::f32;
    memory::desc a_md = c.bf16 ? memory::desc(a_src.dims(), act, tag::any) : a_src;
    memory::desc b_md(b_src.dims(), act, tag::any);
    if (!c.in_values[1] && !c.bf16) b_md = b_src;
    memory::desc dst = plain_desc(out, dt::f32);
    memory::desc bias_md;
    if (bias) {
      Shape bs(out.size(), 1);  // per output column, or Gemm's [M, N] / [1, N] / [M, 1]
      // By its shape, not its count: Gemm's C [M, 1] with M == N is per row.
      if (bias->numel() != out.back() || bias->shape().empty() || bias->shape().back() != out.back()) {
        bs = bias->shape();
        bs.insert(bs.begin(), out.size() - bs.size(), 1);
      } else {
        bs.back() = out.back();
      }
      bias_t_ = Tensor(DType::f32, bs);
      scale_bias();
      bias_md = plain_desc(bs, dt::f32);
    }
    dnnl::post_ops po;
    bool sum = false;
    CompileCtx rest = c;  // post-ops after a fused bias Add
    if (!rest.post_ops.empty() && rest.post_ops[0].bias) rest.post_ops.erase(rest.post_ops.begin());
    // A constant scale right after the product (and bias) joins the output scale, which
    // oneDNN's gemm applies as it accumulates; as an eltwise post-op it cost more than the
    // separate Div it replaced. oneDNN scales the bias too: s * (A * B + bias).
    while (!rest.post_ops.empty() && !rest.post_ops[0].operand &&
           (rest.post_ops[0].node->op_type == "Mul" || rest.post_ops[0].node->op_type == "Div")) {
      alpha *= rest.post_ops[0].scale;
      rest.post_ops.erase(rest.post_ops.begin());
    }
    if (!build_post_ops(rest, false, (int)out.size(), (int)out.size() - 1, po, sum, args_))
      throw dnnl::error(dnnl_unimplemented, "post-ops");
    dnnl::primitive_attr attr = base_attr(c.bf16);
    if (alpha != 1.f) attr.set_output_scales(0, {alpha});
    attr.set_post_ops(po);
    dnnl::matmul::desc d(a_md, b_md, bias_md, dst);
    dnnl::matmul::primitive_desc pd(d, attr, engine());
    memory::desc src_md = pd.src_desc(), wei_md = pd.weights_desc();
    if (impl_name(pd) != "gemm:jit" || !as_conv(c, rest, a, ta, tb, out, alpha, bias_md, a_src, b_src, src_md, wei_md, dst))
      set_primitive(c, dnnl::matmul(pd), pd);
    // An operand arriving in a conv's blocked layout is converted on the way in
    // (make_matmul takes such an operand only with its shape unchanged).
    auto arrival = [&](int i, const memory::desc& plain) { return is_plain(c.in_layouts[i]) ? plain : arrival_desc(c, i); };
    Staging staging(c);
    a_ = InputPort(arrival(0, a_src), src_md, &staging);
    args_[DNNL_ARG_SRC] = a_.target();
    if (c.in_values[1]) {
      b_const_ = ConstPort(c.in_values[1], b_src, wei_md);
      args_[DNNL_ARG_WEIGHTS] = b_const_.mem();
    } else {
      b_ = InputPort(arrival(1, b_src), wei_md, &staging);
      args_[DNNL_ARG_WEIGHTS] = b_.target();
    }
    if (bias) {
      bias_ = ConstPort(&bias_t_, bias_md, bias_md);
      args_[DNNL_ARG_BIAS] = bias_.mem();
    }
    dst_ = arg(DNNL_ARG_DST, dst);
  }

  void run(KernelCtx& c) override {
    dst_.set_data_handle(c.output(0).raw());
    a_.bind(const_cast<void*>(c.input(0).raw()));
    if (!b_const_.mem()) b_.bind(const_cast<void*>(c.input(1).raw()));
    execute();
  }
  void refresh_constants() override {
    if (b_const_.mem()) b_const_.refresh();
    if (bias_.mem()) {
      scale_bias();
      bias_.refresh();
    }
  }

 private:
  // A Linear layer (constant [K, N] weights, A [M, K] plain, bias per column) is a 1x1
  // convolution over M positions in channels-last layout, on the same bytes. Where
  // oneDNN's matmul has only its gemm:jit path (AVX2), its 1x1 convolution is up to 2.8x
  // faster on these shapes, most where M is small: ConvNeXt's 14x14 and 7x7 stages
  // (M 196, K 384, N 1536 at 1 thread: 11.0 -> 4.1 ms; docs/speed.md). On success the
  // convolution is this kernel's primitive and the descriptors describe its operands.
  bool as_conv(const CompileCtx& c, const CompileCtx& rest, const Shape& a, bool ta, bool tb, const Shape& out,
               float alpha, memory::desc& bias_md, memory::desc& a_src, memory::desc& b_src,
               memory::desc& src_md, memory::desc& wei_md, memory::desc& dst) {
    // Not with a scale: as an eltwise post-op before another (Selu) it gave wrong results
    // in oneDNN 2.6's 1x1 kernel (found by the random-graph test).
    if (!c.in_values[1] || c.bf16 || ta || alpha != 1.f || a.size() != 2 || !is_plain(c.in_layouts[0])) return false;
    const int64_t M = a[0], K = a[1], N = out[1];
    if (!bias_md.is_zero() && bias_md.dims() != memory::dims{1, N}) return false;  // per row, or [M, N]
    dnnl::post_ops po;
    std::unordered_map<int, memory> args;
    bool sum = false;
    if (!build_post_ops(rest, false, 4, 1, po, sum, args)) return false;
    dnnl::primitive_attr attr = base_attr(false);
    attr.set_post_ops(po);
    memory::desc src({1, K, M, 1}, dt::f32, tag::nhwc), out_md({1, N, M, 1}, dt::f32, tag::nhwc);
    memory::desc wei({N, K, 1, 1}, dt::f32, tb ? memory::dims{K, 1, 1, 1} : memory::dims{1, N, 1, 1});
    memory::desc bias = bias_md.is_zero() ? memory::desc() : memory::desc({N}, dt::f32, tag::a);
    try {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                        memory::desc(wei.dims(), dt::f32, tag::any), bias, out_md, {1, 1}, {0, 0}, {0, 0});
      dnnl::convolution_forward::primitive_desc pd(d, attr, engine());
      if (pd.src_desc() != src || pd.dst_desc() != out_md || impl_name(pd).find("ref") != std::string::npos) return false;
      set_primitive(c, dnnl::convolution_forward(pd), pd);
      args_ = std::move(args);
      a_src = src_md = src;
      b_src = wei;
      wei_md = pd.weights_desc();
      bias_md = bias;
      dst = out_md;
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }
  void scale_bias() {
    for (int64_t i = 0; i < bias_t_.numel(); i++) bias_t_.data<float>()[i] = bias_src_->data<float>()[i] * bias_scale_;
  }
  const Tensor* bias_src_;
  float bias_scale_;
  Tensor bias_t_;
  InputPort a_, b_;
  ConstPort b_const_, bias_;
  memory dst_;
};

// The bias of a fused `Add` right after the matmul, or null.
const Tensor* fused_bias(const CompileCtx& c) {
  return !c.post_ops.empty() && c.post_ops[0].bias ? c.post_ops[0].bias : nullptr;
}

std::unique_ptr<Kernel> make_matmul(const CompileCtx& c) {
  if (c.in_types[0] != DType::f32 || c.in_types[1] != DType::f32) return nullptr;
  Shape a = c.in_shapes[0], b = c.in_shapes[1];
  if (a.empty() || b.empty()) return nullptr;
  // numpy promotion: a 1-D left operand is a row, a 1-D right operand a column.
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  size_t r = std::max(a.size(), b.size());
  if (r > 12) return nullptr;
  a.insert(a.begin(), r - a.size(), 1);
  b.insert(b.begin(), r - b.size(), 1);
  Shape out(r);
  for (size_t i = 0; i + 2 < r; i++) out[i] = std::max(a[i], b[i]);
  out[r - 2] = a[r - 2];
  out[r - 1] = b[r - 1];
  if (shape_numel(out) != shape_numel(c.out_shapes[0]) || shape_numel(out) == 0) return nullptr;
  for (int i = 0; i < 2; i++)
    if (!is_plain(c.in_layouts[i]) && (i == 0 ? a : b) != c.in_shapes[i]) return nullptr;
  // oneDNN broadcasts batch dims of the weights but not of the source.
  for (size_t i = 0; i + 2 < r; i++)
    if (a[i] != out[i]) return nullptr;
  // Weights without batch dims (a Linear layer): fold A's batch dims into M, so oneDNN
  // runs one [B*M, K] x [K, N] product instead of B tiny ones.
  bool b_batched = false;
  for (size_t i = 0; i + 2 < r; i++) b_batched |= b[i] != 1;
  if (!b_batched && r > 2 && is_plain(c.in_layouts[0])) {
    int64_t rows = shape_numel(a) / a[r - 1];
    a = {rows, a[r - 1]};
    b = {b[r - 2], b[r - 1]};
    out = {rows, out[r - 1]};
  }
  try {
    return std::make_unique<MatMulKernel>(c, a, false, b, false, out, 1.f, fused_bias(c), 1.f);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

std::unique_ptr<Kernel> make_gemm(const CompileCtx& c) {
  const Node& n = c.node;
  if (c.in_types[0] != DType::f32 || c.in_types[1] != DType::f32) return nullptr;
  if (c.in_shapes[0].size() != 2 || c.in_shapes[1].size() != 2) return nullptr;
  bool ta = n.attr_i("transA", 0) != 0, tb = n.attr_i("transB", 0) != 0;
  float alpha = n.attr_f("alpha", 1.f), beta = n.attr_f("beta", 1.f);
  const Shape& out = c.out_shapes[0];
  const Tensor* bias = nullptr;
  if (n.has_input(2) && beta != 0.f) {
    // A constant bias broadcast per row or column joins oneDNN's bias argument. oneDNN
    // applies the output scale (alpha) to the bias too, so it is stored as C * beta / alpha.
    bias = c.in_values[2];
    if (!bias || bias->dtype() != DType::f32 || bias->rank() > 2 || alpha == 0.f) return nullptr;
    Shape cs = bias->shape();
    cs.insert(cs.begin(), 2 - cs.size(), 1);
    if ((cs[0] != 1 && cs[0] != out[0]) || (cs[1] != 1 && cs[1] != out[1])) return nullptr;
  }
  Shape a = c.in_shapes[0], b = c.in_shapes[1];
  float bias_scale = alpha != 0.f ? beta / alpha : 0.f;
  if (!bias && fused_bias(c)) {
    bias = fused_bias(c);  // added after alpha * A * B, so it too is pre-divided by alpha
    if (alpha == 0.f) return nullptr;
    bias_scale = 1.f / alpha;
  }
  try {
    return std::make_unique<MatMulKernel>(c, a, ta, b, tb, out, alpha, bias, bias_scale);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_MatMul{"MatMul", make_matmul};
const FastDef kFast_Gemm{"Gemm", make_gemm};

}  // namespace rg

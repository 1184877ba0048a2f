// Layout conversion between a fast kernel's layout and the ONNX layout, and Transpose,
// which is a reorder too: the input written through the output's strides, permuted.
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"
#include "kernels/ref/movement.h"

namespace rg {
namespace {

using namespace dnnl_util;

class ReorderKernel : public Kernel {
 public:
  ReorderKernel(const memory::desc& from, const memory::desc& to)
      : src_(from, engine(), DNNL_MEMORY_NONE), dst_(to, engine(), DNNL_MEMORY_NONE), prim_(src_, dst_) {
    args_ = {{DNNL_ARG_FROM, src_}, {DNNL_ARG_TO, dst_}};
  }
  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    prim_.execute(stream(), args_);
  }
  std::string impl() const override { return "dnnl:reorder"; }
  Layout out_layout(int) const override { return to_; }
  Layout to_ = plain_layout();

 private:
  memory src_, dst_;
  dnnl::reorder prim_;
  std::unordered_map<int, memory> args_;
};

// Reshape, Flatten, Squeeze, Unsqueeze, Identity and a Transpose that keeps the element
// order (it moves only size-1 dims, as a ViT's [1,S,D] -> [S,1,D] at batch 1 does): the
// output is the input's bytes, so the planner usually gives both one buffer.
// `layout`: the output's, when the input's bytes read in it are the output (see
// make_transpose).
class SameBytes : public Kernel {
 public:
  explicit SameBytes(Layout layout = plain_layout()) : layout_(layout) {}
  void run(KernelCtx& c) override { copy_through(c); }
  std::string impl() const override { return "rg:view"; }
  bool same_bytes() const override { return true; }
  Layout out_layout(int) const override { return layout_; }

 private:
  Layout layout_;
};

std::unique_ptr<Kernel> make_view(const CompileCtx& c) {
  if (!is_plain(c.in_layouts[0]) || c.out_types.empty() || c.out_types[0] != c.in_types[0] ||
      shape_numel(c.out_shapes[0]) != shape_numel(c.in_shapes[0]))
    return nullptr;
  return std::make_unique<SameBytes>();
}

// True when `perm` moves only size-1 dims relative to the others.
bool keeps_order(const Shape& in, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  for (int64_t p : perm) {
    if (in[p] == 1) continue;
    if (p < last) return false;
    last = p;
  }
  return true;
}

// Transpose as a reorder: the destination is described over the input's dims with
// the output's plain strides permuted back (input dim perm[j] steps by output stride j).
// The reference kernel took 11% of vit_small at batch 8 (attention heads split, joined).
std::unique_ptr<Kernel> make_transpose(const CompileCtx& c) {
  const Shape& in = c.in_shapes[0];
  dt type = to_dt(c.in_types[0]);
  if (type == dt::undef || in.empty() || in.size() > 12 || shape_numel(in) == 0) return nullptr;
  std::vector<int64_t> perm = c.node.attr_ints("perm");
  if (perm.empty())
    for (int64_t i = (int64_t)in.size() - 1; i >= 0; i--) perm.push_back(i);
  if (perm.size() != in.size()) return nullptr;
  for (int64_t p : perm)
    if (p < 0 || p >= (int64_t)in.size()) return nullptr;
  if (is_plain(c.in_layouts[0]) && keeps_order(in, perm)) return make_view(c);
  memory::dims strides(in.size(), 0);
  int64_t step = 1;
  for (int64_t j = (int64_t)in.size() - 1; j >= 0; j--) {
    if (strides[perm[j]] != 0) return nullptr;  // not a permutation
    strides[perm[j]] = step;
    step *= std::max<int64_t>(in[perm[j]], 1);
  }
  try {
    const memory::desc from = arrival_desc(c, 0), to(to_dims(in), type, strides);
    // ConvNeXt permutes each block's depthwise convolution output to NHWC for its
    // LayerNorm and Linear layers, and back to NCHW after them (44 reorders, 3.4 ms of 75
    // at 1 thread). Where the convolution gave channels-last, the NHWC tensor is its bytes
    // as they are; and NHWC permuted back to NCHW is the same bytes read as channels-last.
    // Both are views.
    if (!is_plain(c.in_layouts[0]) && from == to) return std::make_unique<SameBytes>();
    if (is_plain(c.in_layouts[0]) && in.size() == 4) {
      const Shape& out = c.out_shapes[0];
      const std::vector<int64_t> in_strides = shape_strides(in);
      memory::dims out_strides;
      for (int64_t p : perm) out_strides.push_back(in_strides[p]);
      const memory::desc as_is(to_dims(out), type, out_strides), last(to_dims(out), type, tag::acdb);
      if (as_is == last) return std::make_unique<SameBytes>(layout_of(last, out));
    }
    return std::make_unique<ReorderKernel>(from, to);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

// Slice with positive steps as a reorder from a strided view of the input (a ViT splits
// its qkv projection into three this way, 12 slices per inference).
std::unique_ptr<Kernel> make_slice(const CompileCtx& c) {
  const Shape& in = c.in_shapes[0];
  dt type = to_dt(c.in_types[0]);
  if (type == dt::undef || in.empty() || in.size() > 12 || (!c.in_layouts.empty() && !is_plain(c.in_layouts[0])))
    return nullptr;
  InferCtx ic(c.node, c.opset);
  ic.in_types = c.in_types;
  ic.in_shapes = c.in_shapes;
  ic.in_values = c.in_values;
  for (size_t i = 1; i < c.in_types.size(); i++)
    if (c.in_types[i] != DType::undefined && !c.in_values[i]) return nullptr;  // bounds known at run time only
  SliceSpec sp = slice_spec(ic);
  if (shape_numel(sp.out) == 0) return nullptr;
  std::vector<int64_t> in_strides = shape_strides(in);
  memory::dims strides(in.size());
  int64_t offset = 0;
  for (size_t d = 0; d < in.size(); d++) {
    if (sp.step[d] <= 0) return nullptr;
    strides[d] = in_strides[d] * sp.step[d];
    offset += sp.start[d] * in_strides[d];
  }
  try {  // oneDNN 2.6 rejects some strides (a step over a dim of size 3): the reference runs
    memory::desc view(to_dims(sp.out), type, strides);
    view.data.offset0 = offset;
    return std::make_unique<ReorderKernel>(view, plain_desc(sp.out, type));
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_Transpose{"Transpose", make_transpose};
const FastDef kFast_Reshape{"Reshape", make_view};
const FastDef kFast_Flatten{"Flatten", make_view};
const FastDef kFast_Squeeze{"Squeeze", make_view};
const FastDef kFast_Unsqueeze{"Unsqueeze", make_view};
const FastDef kFast_Identity{"Identity", make_view};
const FastDef kFast_Slice{"Slice", make_slice};

std::unique_ptr<Kernel> make_reorder(const Layout& from, const Layout& to, const Shape& shape, DType type) {
  memory::desc plain = plain_desc(shape, to_dt(type));
  memory::desc f = is_plain(from) ? plain : memory::desc(from);
  memory::desc t = is_plain(to) ? plain : memory::desc(to);
  auto k = std::make_unique<ReorderKernel>(f, t);
  k->to_ = to;
  return k;
}

}  // namespace rg

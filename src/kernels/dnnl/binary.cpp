// oneDNN binary ops (Add, Sub, Mul, Div, Min, Max). The first operand may be in a oneDNN
// layout (a conv output) and the result keeps it; oneDNN broadcasts only the second
// operand, so commutative ops swap operands when the first is the broadcast one. When
// both operands arrive in different oneDNN layouts (a residual Add joining a Winograd
// conv's nChw16c with a 1x1 conv's nhwc, once range checks sit between them and the Add
// no longer fuses as a sum), oneDNN has only its reference kernel for the pair (45% of a
// protected resnet_swish's time): the second is reordered into the destination first and
// the op runs in place there, as the conv's sum post-op does with its residual.
// The broadcast operand may be blocked too: a squeeze-excite scale [N, C, 1, 1] from a
// 1x1 conv arrives in nChw8c, and oneDNN's jit takes it so; refusing it sent each SE Mul
// through two reorders and the reference kernel (efficientnet_b0 1.18x slower).
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

class BinaryKernel : public PrimKernel {
 public:
  BinaryKernel(const CompileCtx& c, dnnl::algorithm alg, int first) : first_(first) {
    int second = 1 - first;
    const Shape& out = c.out_shapes[0];
    memory::desc s0 = arrival_desc(c, first);
    memory::desc s1;
    if (is_plain(c.in_layouts[second])) {
      Shape b = c.in_shapes[second];  // right-aligned broadcast: pad leading dims with 1
      b.insert(b.begin(), out.size() - b.size(), 1);
      s1 = plain_desc(b, dt::f32);
    } else if (c.in_shapes[second] != out) {  // a blocked per-channel operand (channels padded)
      s1 = arrival_desc(c, second);
    } else if (memory::desc from = arrival_desc(c, second); from == s0) {
      s1 = from;
    } else {  // dst <- reorder(second); dst <- dst (op) first
      pre_from_ = memory(from, engine(), DNNL_MEMORY_NONE);
      pre_to_ = memory(s0, engine(), DNNL_MEMORY_NONE);
      pre_ = dnnl::reorder(pre_from_, pre_to_);
      s1 = s0;
    }
    memory::desc dst = pre_ ? s0 : memory::desc(to_dims(out), s0.data_type(), tag::any);
    dnnl::binary::desc d(alg, s0, s1, dst);
    dnnl::binary::primitive_desc pd(d, base_attr(false), engine());
    set_primitive(c, dnnl::binary(pd), pd);
    src0_ = arg(DNNL_ARG_SRC_0, s0);
    src1_ = arg(DNNL_ARG_SRC_1, s1);
    dst_ = arg(DNNL_ARG_DST, pd.dst_desc());
    layout_ = layout_of(pd.dst_desc(), out);
  }
  void run(KernelCtx& c) override {
    void* out = c.output(0).raw();
    dst_.set_data_handle(out);
    if (pre_) {
      pre_from_.set_data_handle(const_cast<void*>(c.input(1 - first_).raw()));
      pre_to_.set_data_handle(out);
      pre_.execute(stream(), pre_from_, pre_to_);
      src0_.set_data_handle(out);
      src1_.set_data_handle(const_cast<void*>(c.input(first_).raw()));
    } else {
      src0_.set_data_handle(const_cast<void*>(c.input(first_).raw()));
      src1_.set_data_handle(const_cast<void*>(c.input(1 - first_).raw()));
    }
    execute();
  }

 private:
  int first_;
  memory src0_, src1_, dst_;
  dnnl::reorder pre_;  // set when the operands' layouts differ
  memory pre_from_, pre_to_;
};

std::unique_ptr<Kernel> make_binary(const CompileCtx& c) {
  using A = dnnl::algorithm;
  const std::string& t = c.node.op_type;
  if (c.in_types.size() != 2 || c.in_types[0] != DType::f32 || c.in_types[1] != DType::f32) return nullptr;
  if (c.node.has_attr("broadcast") || c.out_shapes[0].empty() || c.out_shapes[0].size() > 12) return nullptr;
  A alg = t == "Add" ? A::binary_add : t == "Sub" ? A::binary_sub : t == "Mul" ? A::binary_mul
        : t == "Div" ? A::binary_div : t == "Min" ? A::binary_min : A::binary_max;
  bool commutative = t != "Sub" && t != "Div";
  int first = 0;
  if (c.in_shapes[0] != c.out_shapes[0]) {
    if (!commutative || c.in_shapes[1] != c.out_shapes[0]) return nullptr;
    first = 1;
  }
  // A oneDNN-layout operand to broadcast must have the output's rank.
  if (!is_plain(c.in_layouts[1 - first]) && c.in_shapes[1 - first].size() != c.out_shapes[0].size()) return nullptr;
  // A full-size second operand in another layout than the first: the reorder-then-in-place
  // path computes second (op) first, wrong for Sub and Div (x - conv(x) gave conv(x) - x).
  if (!commutative && !is_plain(c.in_layouts[1]) && c.in_shapes[1] == c.out_shapes[0] &&
      arrival_desc(c, 0) != arrival_desc(c, 1))
    return nullptr;
  try {
    return std::make_unique<BinaryKernel>(c, alg, first);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_Add{"Add", make_binary};
const FastDef kFast_Sub{"Sub", make_binary};
const FastDef kFast_Mul{"Mul", make_binary};
const FastDef kFast_Div{"Div", make_binary};
const FastDef kFast_Min{"Min", make_binary};
const FastDef kFast_Max{"Max", make_binary};

}  // namespace rg

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
// oneDNN's jit broadcasts into a blocked first operand only from a second operand blocked
// the same way, so a plain per-channel or scalar second operand (Conv -> Mul(x, 0.5),
// a per-channel Add after a fused Relu) is reordered into that layout: once when it is a
// constant, else per run (C values). Left plain, the pair ran oneDNN's reference kernel.
#include <omp.h>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/lanes.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

// The first operand's channel blocking for a second operand of shape `b` that broadcasts
// per channel or as a scalar over `out`; an empty desc when that does not apply.
memory::desc blocked_like(const memory::desc& first, const Shape& b, const Shape& out) {
  int64_t block = channel_block(first.data);
  if ((block != 8 && block != 16) || b == out || b.size() < 3 || b.size() > 5) return {};
  for (size_t d = 0; d < b.size(); d++)
    if (b[d] != 1 && !(d == 1 && b[d] == out[1]) && !(d == 0 && b[d] == out[0])) return {};
  static const tag k8[] = {tag::aBc8b, tag::aBcd8b, tag::aBcde8b};
  static const tag k16[] = {tag::aBc16b, tag::aBcd16b, tag::aBcde16b};
  return memory::desc(to_dims(b), dt::f32, (block == 8 ? k8 : k16)[b.size() - 3]);
}

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
      memory::desc blocked = blocked_like(s0, b, out);
      if (!blocked.is_zero()) {
        if (c.in_values[second]) {
          const_second_ = ConstPort(c.in_values[second], s1, blocked);
        } else {
          Staging staging(c);
          second_port_ = InputPort(s1, blocked, &staging);
        }
        s1 = blocked;
      }
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
      void* second = const_cast<void*>(c.input(1 - first_).raw());
      if (const_second_.mem()) second = const_second_.mem().get_data_handle();
      else if (second_port_.target()) second = second_port_.bind(second).get_data_handle();
      src1_.set_data_handle(second);
    }
    execute();
  }
  void refresh_constants() override {
    if (const_second_.mem()) const_second_.refresh();
  }

 private:
  int first_;
  memory src0_, src1_, dst_;
  dnnl::reorder pre_;  // set when the operands' layouts differ
  memory pre_from_, pre_to_;
  ConstPort const_second_;  // a plain constant second operand, in the first's blocking
  InputPort second_port_;   // the same for a computed one
};

// y = x (op) s with s one value per channel (and image), both in the same channel blocks:
// a squeeze-excite Mul after RegNet's grouped convolutions, which give nChw8c on AVX-512,
// where oneDNN has only its reference kernel for the pair (with the reorder to plain, 0.9
// ms of regnet_y_400mf's 12.6 at 1 thread; in bf16 the reference kernel ran in fp32, after
// reorders to and from plain fp32, 1 ms of 6.7). One pass over x, a block of lanes per pixel.

// n values from x to y, value i combined with s[i % 16]; T is float or bf16 bits,
// computed in fp32 (lanes.h). s repeats its block of 8 or 16 lanes over 16 values so that
// the loop runs whole 16-value vectors: a loop over a block of 8 ran scalar under AVX-512.
template <class T>
__attribute__((always_inline)) inline void channel_rows(int alg, const T* x, const float* s, T* y, int64_t n) {
  auto each = [&](auto f) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
#pragma omp simd
      for (int k = 0; k < 16; k++) narrow(f(widen(x[i + k]), s[k]), y[i + k]);
    }
    for (int k = 0; i + k < n; k++) narrow(f(widen(x[i + k]), s[k]), y[i + k]);
  };
  switch (alg) {
    case 0: return each([](float a, float b) { return a + b; });
    case 1: return each([](float a, float b) { return a - b; });
    case 2: return each([](float a, float b) { return a * b; });
    default: return each([](float a, float b) { return a / b; });
  }
}

// Cloned per instruction set: the baseline build has only SSE2, where the bf16 rounding
// runs scalar. Called once per image and channel block.
__attribute__((target_clones("avx512f", "avx2", "default")))
void channel_rows_f32(int alg, const float* x, const float* s, float* y, int64_t n) {
  channel_rows(alg, x, s, y, n);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void channel_rows_bf16(int alg, const uint16_t* x, const float* s, uint16_t* y, int64_t n) {
  channel_rows(alg, x, s, y, n);
}

// The same where the CPU has AVX512-BF16 (where oneDNN runs bf16 natively): one
// instruction rounds 16 floats to bf16, nearest even, against about twenty for the
// portable rounding (0.36 ms for regnet_y_400mf's 16 Muls on AMX, a third of fp32's speed).
RG_BF16_NATIVE
void channel_rows_bf16_native(int alg, const uint16_t* x, const float* s, uint16_t* y, int64_t n) {
  const __m512 sv = _mm512_loadu_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = widen16(x + i, 0xffff);
    v = alg == 0 ? _mm512_add_ps(v, sv) : alg == 1 ? _mm512_sub_ps(v, sv) : alg == 2 ? _mm512_mul_ps(v, sv)
                                                                                      : _mm512_div_ps(v, sv);
    narrow16(v, y + i, 0xffff);
  }
  if (i < n) channel_rows_bf16(alg, x + i, s, y + i, n - i);  // a last half block of 8
}

class BlockedChannelBinary : public Kernel {
 public:
  BlockedChannelBinary(int alg, int first, int64_t block, const Shape& out, bool s_per_image, bool x_bf16,
                       bool s_bf16, Layout layout)
      : alg_(alg), first_(first), block_(block), images_(out[0]), blocks_(out[1] / block),
        pixels_(shape_numel(out) / (out[0] * out[1])), s_per_image_(s_per_image), x_bf16_(x_bf16),
        s_bf16_(s_bf16), layout_(layout) {}
  void run(KernelCtx& c) override {
    const char* x = static_cast<const char*>(c.input(first_).raw());
    const void* s = c.input(1 - first_).raw();
    char* y = static_cast<char*>(c.output(0).raw());
    const int64_t rows = images_ * blocks_, run = pixels_ * block_ * (x_bf16_ ? 2 : 4);
    auto one = [&](int64_t r) {  // image r / blocks_, channel block r % blocks_
      const int64_t at = (s_per_image_ ? r : r % blocks_) * block_;
      float sv[16];
      for (int64_t k = 0; k < 16; k++) {
        const int64_t i = at + k % block_;
        sv[k] = s_bf16_ ? widen(static_cast<const uint16_t*>(s)[i]) : static_cast<const float*>(s)[i];
      }
      if (x_bf16_)
        (bf16_native() ? channel_rows_bf16_native : channel_rows_bf16)(
            alg_, reinterpret_cast<const uint16_t*>(x + r * run), sv, reinterpret_cast<uint16_t*>(y + r * run),
            pixels_ * block_);
      else
        channel_rows_f32(alg_, reinterpret_cast<const float*>(x + r * run), sv, reinterpret_cast<float*>(y + r * run),
                         pixels_ * block_);
    };
    if (omp_get_max_threads() > 1 && rows * pixels_ * block_ >= (1 << 15)) {
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; r++) one(r);
    } else {
      for (int64_t r = 0; r < rows; r++) one(r);
    }
  }
  std::string impl() const override { return "rg:channel_binary"; }
  Layout out_layout(int) const override { return layout_; }

 private:
  int alg_;  // 0 add, 1 sub, 2 mul, 3 div
  int first_;
  int64_t block_, images_, blocks_, pixels_;
  bool s_per_image_, x_bf16_, s_bf16_;
  Layout layout_;
};

// The pair BlockedChannelBinary takes: fp32 or bf16, the full operand in whole channel
// blocks of 8 or 16 (no padding lanes to keep zero), the other [N or 1, C, 1...], fp32 or
// bf16, stored as n * C + c. Null otherwise.
std::unique_ptr<Kernel> make_channel_binary(const CompileCtx& c, dnnl::algorithm alg, int first) {
  const Shape& out = c.out_shapes[0];
  const int second = 1 - first;
  if (is_plain(c.in_layouts[first]) || out.size() < 3) return nullptr;
  memory::desc x = arrival_desc(c, first), s = arrival_desc(c, second);
  const int64_t block = channel_block(x.data);
  const auto xt = x.data.data_type, st = s.data.data_type;
  if ((block != 8 && block != 16) || out[1] % block != 0 || (xt != dnnl_f32 && xt != dnnl_bf16)) return nullptr;
  if (layout_bytes(c.in_layouts[first]) != (size_t)shape_numel(out) * (xt == dnnl_bf16 ? 2 : 4)) return nullptr;
  const Shape& b = c.in_shapes[second];
  if (b.size() != out.size() || b[1] != out[1] || (b[0] != 1 && b[0] != out[0])) return nullptr;
  for (size_t d = 2; d < b.size(); d++)
    if (b[d] != 1) return nullptr;
  if (!is_plain(c.in_layouts[second]) && ((st != dnnl_f32 && st != dnnl_bf16) || !stores_as_nc(s.data)))
    return nullptr;
  using A = dnnl::algorithm;
  const int op = alg == A::binary_add ? 0 : alg == A::binary_sub ? 1 : alg == A::binary_mul ? 2
               : alg == A::binary_div ? 3 : -1;
  if (op < 0) return nullptr;
  return std::make_unique<BlockedChannelBinary>(op, first, block, out, b[0] != 1, xt == dnnl_bf16,
                                                !is_plain(c.in_layouts[second]) && st == dnnl_bf16,
                                                c.in_layouts[first]);
}

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
    auto k = std::make_unique<BinaryKernel>(c, alg, first);
    // oneDNN's reference binary computes every element's offset in each layout: 170 ms
    // for a Mul on [1, 32, 112, 112] (nChw8c) where rangeguard's, after reorders, takes
    // under 1 ms. A per-channel operand on whole channel blocks gets rangeguard's blocked
    // kernel; anything else is left to the reference kernel, after reorders.
    if (k->impl().find(":ref") != std::string::npos) return make_channel_binary(c, alg, first);
    return k;
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

// oneDNN pooling: MaxPool, AveragePool and the global pools. Pooling runs in the layout
// its input arrives in (a conv's blocked layout) and produces the same layout. On AVX2
// hosts a 2D MaxPool on nChw8c/16c runs rangeguard's own loop instead: oneDNN's took
// 0.8-0.9 ms for ResNet's 3x3/2 pool at 1 and at 2 threads (ONNX Runtime's: 0.26 ms); a
// 3x3 window inside the image is unrolled (0.14-0.21 ms at 1 thread, 0.09 at 2).
#include <immintrin.h>

#include <algorithm>
#include <cfloat>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

using namespace dnnl_util;

class PoolKernel : public PrimKernel {
 public:
  // `fp32`: pool in fp32 whatever the input's type, converting it on the way in.
  PoolKernel(const CompileCtx& c, dnnl::algorithm alg, const WindowParams& wp, bool fp32 = false) {
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
    const memory::desc arrival = arrival_desc(c, 0);
    memory::desc source = arrival;
    if (fp32) {
      dnnl_memory_desc_t d = arrival.data;
      d.data_type = dnnl_f32;
      source = memory::desc(d);
    }
    auto make_pd = [&](const memory::desc& src) {
      memory::desc dst(to_dims(c.out_shapes[0]), src.data_type(), tag::any);
      dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst, strides, kernel, dil, pl,
                                       pr);
      return dnnl::pooling_v2_forward::primitive_desc(d, base_attr(false), engine());
    };
    dnnl::pooling_v2_forward::primitive_desc pd = make_pd(source);
    // oneDNN's jit pooling does not take every blocked layout (bf16 in nChw8c, a RegNet
    // grouped convolution's output on AMX), and its reference kernel was 25 ms of
    // regnet_y_400mf's 37 in bf16. Converting the input to channels-last first costs one
    // copy of it.
    if (impl_name(pd).find("ref") != std::string::npos && sp >= 1 && sp <= 3) {
      const tag last[] = {tag::nwc, tag::nhwc, tag::ndhwc};
      memory::desc alt(arrival.dims(), source.data_type(), last[sp - 1]);
      try {
        auto alt_pd = make_pd(alt);
        if (impl_name(alt_pd).find("ref") == std::string::npos) pd = alt_pd;
      } catch (const dnnl::error&) {
      }
    }
    set_primitive(c, dnnl::pooling_v2_forward(pd), pd);
    Staging staging(c);
    src_ = InputPort(arrival, pd.src_desc(), &staging);
    args_[DNNL_ARG_SRC] = src_.target();
    dst_ = arg(DNNL_ARG_DST, pd.dst_desc());
    layout_ = layout_of(pd.dst_desc(), c.out_shapes[0]);
  }
  void run(KernelCtx& c) override {
    src_.bind(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    execute();
  }
  // The output's bytes are those of its plain ONNX shape (see stores_as_nc).
  void set_plain_output() { layout_ = plain_layout(); }

 private:
  InputPort src_;
  memory dst_;
};

// Max over one window whose taps (rows h_lo..h_hi, columns w_lo..w_hi) are inside the
// image, 8 channels per vector. max(tap, best) keeps `best` when the tap is NaN, as the
// reference kernel's `tap > best` does, so both agree on NaNs too.
__attribute__((target("avx2"))) inline void max_window(const float* at, int64_t W, int64_t B, int64_t h_lo,
                                                       int64_t h_hi, int64_t w_lo, int64_t w_hi, float* out) {
  for (int64_t v = 0; v < B; v += 8) {
    if (h_lo >= h_hi || w_lo >= w_hi) {  // a window wholly in padding
      _mm256_storeu_ps(out + v, _mm256_set1_ps(-FLT_MAX));
      continue;
    }
    __m256 best = _mm256_loadu_ps(at + (h_lo * W + w_lo) * B + v);
    for (int64_t kh = h_lo; kh < h_hi; kh++)
      for (int64_t kw = kh == h_lo ? w_lo + 1 : w_lo; kw < w_hi; kw++)
        best = _mm256_max_ps(_mm256_loadu_ps(at + (kh * W + kw) * B + v), best);
    _mm256_storeu_ps(out + v, best);
  }
}

// ResNet's 3x3 pool on a window inside the image: the nine taps unrolled, in the order
// max_window takes them. The general loop's variable bounds made this pool 2-4x slower
// than ONNX Runtime's.
// B = 0: the channel stride comes at run time (`b`; channels-last, where it is C).
template <int B_>
__attribute__((target("avx2"))) inline void max_3x3(const float* at, int64_t W, int64_t b, float* out) {
  const int64_t B = B_ ? B_ : b;
  for (int64_t v = 0; v < B; v += 8) {
    const float* r0 = at + v;
    const float* r1 = r0 + W * B;
    const float* r2 = r1 + W * B;
    __m256 best = _mm256_loadu_ps(r0);
    best = _mm256_max_ps(_mm256_loadu_ps(r0 + B), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r0 + 2 * B), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r1), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r1 + B), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r1 + 2 * B), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r2), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r2 + B), best);
    best = _mm256_max_ps(_mm256_loadu_ps(r2 + 2 * B), best);
    _mm256_storeu_ps(out + v, best);
  }
}

// Output row `oh` of plane `p`.
__attribute__((target("avx2"))) void max_pool_row(const WindowParams& wp, int64_t B, int64_t p, int64_t oh,
                                                  const float* x, float* y) {
  const int64_t H = wp.in[0], W = wp.in[1], OH = wp.out[0], OW = wp.out[1];
  const int64_t sw = wp.strides[1], pw = wp.pads_begin[1];
  int64_t ih0 = oh * wp.strides[0] - wp.pads_begin[0];
  int64_t h_lo = std::max<int64_t>(0, -ih0), h_hi = std::min(wp.kernel[0], H - ih0);
  const float* xp = x + p * H * W * B;
  float* yp = y + (p * OH + oh) * OW * B;
  auto general = [&](int64_t ow) {
    int64_t iw0 = ow * sw - pw;
    int64_t w_lo = std::max<int64_t>(0, -iw0), w_hi = std::min(wp.kernel[1], W - iw0);
    max_window(xp + (ih0 * W + iw0) * B, W, B, h_lo, h_hi, w_lo, w_hi, yp + ow * B);
  };
  // Columns [ow_lo, ow_hi) of a row whose 3x3 windows lie inside the image go unrolled.
  int64_t ow_lo = OW, ow_hi = OW;
  if (wp.kernel[0] == 3 && wp.kernel[1] == 3 && h_lo == 0 && h_hi == 3 && W >= 3) {
    ow_lo = std::min(OW, (pw + sw - 1) / sw);
    ow_hi = std::max(ow_lo, std::min(OW, (W - 3 + pw) / sw + 1));
  }
  for (int64_t ow = 0; ow < ow_lo; ow++) general(ow);
  for (int64_t ow = ow_lo; ow < ow_hi; ow++) {
    const float* at = xp + (ih0 * W + ow * sw - pw) * B;
    if (B == 8)
      max_3x3<8>(at, W, B, yp + ow * B);
    else if (B == 16)
      max_3x3<16>(at, W, B, yp + ow * B);
    else
      max_3x3<0>(at, W, B, yp + ow * B);
  }
  for (int64_t ow = ow_hi; ow < OW; ow++) general(ow);
}

// Channels-last is the same loop with one block of all C channels per image.
class BlockedMaxPool : public Kernel {
 public:
  BlockedMaxPool(const WindowParams& wp, const Shape& x, int64_t block, const dnnl_memory_desc_t& in, const Shape& out)
      : wp_(wp), block_(block), planes_(x[0] * in.padded_dims[1] / block), nhwc_(block == x[1] && block > 16) {
    memory::dims d = to_dims(out);
    layout_ = memory::desc(d, dt::f32, nhwc_ ? tag::nhwc : block == 8 ? tag::aBcd8b : tag::aBcd16b).data;
  }
  // The parallel loop stays outside the AVX2 function: clang's OpenMP outlining does not
  // carry a target attribute into the loop body.
  void run(KernelCtx& c) override {
    const float* x = static_cast<const float*>(c.input(0).raw());
    float* y = static_cast<float*>(c.output(0).raw());
    const int64_t OH = wp_.out[0];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < planes_ * OH; r++) max_pool_row(wp_, block_, r / OH, r % OH, x, y);
  }
  std::string impl() const override { return nhwc_ ? "rg:maxpool_nhwc:avx2" : "rg:maxpool_blocked:avx2"; }
  Layout out_layout(int) const override { return layout_; }

 private:
  WindowParams wp_;
  int64_t block_, planes_;
  bool nhwc_;
  Layout layout_;
};

// On nChw8c/16c where oneDNN dispatches AVX2; on channels-last (C a multiple of 8, more
// than 16) wherever the CPU has AVX2: oneDNN 2.6's AVX-512 pooling took resnet50's stem
// pool (64 x 112 x 112, channels-last after the AVX-512 stem) 0.28 ms at 1 and at 2
// threads, ONNX Runtime 0.10 at 2 (docs/speed.md).
std::unique_ptr<Kernel> make_blocked_max_pool(const CompileCtx& c, const WindowParams& wp) {
  if (wp.spatial() != 2 || c.in_layouts.empty() || !__builtin_cpu_supports("avx2")) return nullptr;
  if (wp.dilations[0] != 1 || wp.dilations[1] != 1) return nullptr;
  const dnnl_memory_desc_t& in = c.in_layouts[0];
  const Shape& x = c.in_shapes[0];
  if (x[1] % 8 == 0 && x[1] > 16 && memory::desc(in) == memory::desc(to_dims(x), dt::f32, tag::nhwc))
    return std::make_unique<BlockedMaxPool>(wp, x, x[1], in, c.out_shapes[0]);
  int64_t block = channel_block(in);
  if (fast_isa().rfind("avx2", 0) != 0 || (block != 8 && block != 16)) return nullptr;
  // The standard strides of that block format only (what oneDNN's convolutions give).
  memory::desc standard(to_dims(x), dt::f32, block == 8 ? tag::aBcd8b : tag::aBcd16b);
  if (memory::desc(in) != standard) return nullptr;
  return std::make_unique<BlockedMaxPool>(wp, x, block, in, c.out_shapes[0]);
}

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
      if (n.op_type == "MaxPool")
        if (auto k = make_blocked_max_pool(c, wp)) return k;
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

// ReduceMean over every spatial axis (torch's x.mean((2, 3)), ShuffleNet's head) is a
// global average pool: it runs on the blocked layout its input arrives in instead of the
// reference reduction after a conversion to plain. Without keepdims its [N, C] output must
// be plain, so the pool's output must have the same bytes (no channel padding); oneDNN's
// pool into a plain destination from a blocked source was its slow reference kernel.
std::unique_ptr<Kernel> make_reduce_mean(const CompileCtx& c) {
  const Shape& x = c.in_shapes[0];
  const int64_t r = (int64_t)x.size();
  if (c.in_types[0] != DType::f32 || r < 3 || r > 5) return nullptr;
  std::vector<int64_t> axes;
  if (c.node.has_attr("axes")) {
    axes = c.node.attr_ints("axes");
  } else if (c.node.has_input(1)) {  // opset 18: a constant input
    const Tensor* t = c.in_values.size() > 1 ? c.in_values[1] : nullptr;
    if (!t || c.in_types[1] != DType::i64) return nullptr;
    axes.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  }
  for (auto& a : axes) a = a < 0 ? a + r : a;
  std::sort(axes.begin(), axes.end());
  std::vector<int64_t> spatial;
  for (int64_t i = 2; i < r; i++) spatial.push_back(i);
  if (axes != spatial) return nullptr;
  CompileCtx pc = c;
  pc.out_shapes = {Shape(x.begin(), x.begin() + 2)};
  pc.out_shapes[0].resize(r, 1);  // the pooled shape [N, C, 1, ...]
  bool keep = c.node.attr_i("keepdims", 1) != 0;
  Node g;  // a window covering the whole spatial extent
  g.op_type = "GlobalAveragePool";
  try {
    WindowParams wp = window_params(g, x, std::vector<int64_t>(x.begin() + 2, x.end()));
    auto k = std::make_unique<PoolKernel>(pc, dnnl::algorithm::pooling_avg_exclude_padding, wp);
    if (keep) return k;
    // A bf16 input (a bf16 plan's last convolution) is pooled in fp32, after a conversion:
    // the [N, C] result must be fp32. Left to the reference reduction it was 0.17 ms of
    // ShuffleNet's 5.5 (AMX, 1 thread).
    if (!is_plain(k->out_layout(0)) && k->out_layout(0).data_type != dnnl_f32)
      k = std::make_unique<PoolKernel>(pc, dnnl::algorithm::pooling_avg_exclude_padding, wp, true);
    // The pooled [N, C, 1, ...] must hold the plain [N, C]'s bytes, in fp32 (a bf16 plan's
    // pool writes bf16, which read as the fp32 output gave ShuffleNet garbage, max rel err
    // 1.37).
    const Layout& pooled = k->out_layout(0);
    if (!is_plain(pooled) && (pooled.data_type != dnnl_f32 || !stores_as_nc(pooled))) return nullptr;
    k->set_plain_output();
    return k;
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_ReduceMean{"ReduceMean", make_reduce_mean};
const FastDef kFast_MaxPool{"MaxPool", make_pool};
const FastDef kFast_AveragePool{"AveragePool", make_pool};
const FastDef kFast_GlobalAveragePool{"GlobalAveragePool", make_pool};
const FastDef kFast_GlobalMaxPool{"GlobalMaxPool", make_pool};

}  // namespace rg

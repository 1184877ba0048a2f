// oneDNN softmax and log-softmax along one axis, in the layout the input arrives in. A
// softmax along the last axis of a plain input runs rangeguard's own AVX2 loop instead:
// oneDNN's took 30 us for each of a small ViT's [4,65,65] attention softmaxes on an AVX2
// host (1.8 ns per element), and gave other results than the reference kernel for rows
// holding an infinity or NaN.
#include <immintrin.h>

#include <cmath>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

class SoftmaxKernel : public PrimKernel {
 public:
  SoftmaxKernel(const CompileCtx& c, bool log, int axis) {
    // In the layout the input arrives in (a conv's blocked one, for a per-pixel softmax
    // over channels), and the output in the same.
    memory::desc md = arrival_desc(c, 0);
    if (!is_plain(c.in_layouts[0])) layout_ = md.data;
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
  Layout out_layout(int) const override { return layout_; }

 private:
  memory src_, dst_;
  Layout layout_ = plain_layout();
};

// exp(x) for x <= 0 (inputs less their row's maximum): 2^n * e^r with |r| <= ln2/2 and a
// degree-6 polynomial for e^r, within 2 ulp of std::exp. NaN stays NaN; below -87.3 the
// result is 0 rather than a denormal.
__attribute__((target("avx2,fma"))) inline __m256 exp_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(lo, x);  // NaN stays in x: max returns its second operand then
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 in two parts
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  for (float k : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(k));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// One row of `len` contiguous values. The last len % 8 are read with a masked load and
// written through a stack buffer (AMD's masked stores are microcoded and slow). A row
// holding an infinity or NaN is recomputed as the reference kernel does (std::exp, a
// double sum), so both agree on those too.
__attribute__((target("avx2,fma"))) void softmax_row(const float* x, float* y, int64_t len) {
  static const int32_t kLanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t full = len / 8 * 8, rest = len - full;
  const __m256i mask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLanes + 8 - rest));
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  const __m256 xt = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + full, mask), _mm256_castsi256_ps(mask));
  alignas(32) float tail[8];
  __m256 vmax = xt;
  for (int64_t k = 0; k < full; k += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + k));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  const float mx = _mm_cvtss_f32(m4);
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 sum = exp_nonpositive(_mm256_sub_ps(xt, vm));  // 0 in the lanes past the row
  _mm256_store_ps(tail, sum);
  for (int64_t k = 0; k < full; k += 8) {
    __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + k), vm));
    _mm256_storeu_ps(y + k, e);
    sum = _mm256_add_ps(sum, e);
  }
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  s4 = _mm_hadd_ps(s4, s4);
  s4 = _mm_hadd_ps(s4, s4);
  const float total = _mm_cvtss_f32(s4);
  if (!std::isfinite(mx) || !std::isfinite(total)) {
    double d = 0;
    for (int64_t k = 0; k < len; k++) d += y[k] = std::exp(x[k] - mx);
    const float inv = (float)(1.0 / d);
    for (int64_t k = 0; k < len; k++) y[k] *= inv;
    return;
  }
  const float inv = 1.f / total;
  const __m256 vinv = _mm256_set1_ps(inv);
  for (int64_t k = 0; k < full; k += 8) _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_loadu_ps(y + k), vinv));
  for (int64_t k = 0; k < rest; k++) y[full + k] = tail[k] * inv;
}

class LastAxisSoftmax : public Kernel {
 public:
  LastAxisSoftmax(int64_t rows, int64_t len) : rows_(rows), len_(len) {}
  // The parallel loop stays outside the AVX2 function (see pool.cpp).
  void run(KernelCtx& c) override {
    const float* x = static_cast<const float*>(c.input(0).raw());
    float* y = static_cast<float*>(c.output(0).raw());
#pragma omp parallel for schedule(static) if (rows_ * len_ >= (1 << 14))
    for (int64_t r = 0; r < rows_; r++) softmax_row(x + r * len_, y + r * len_, len_);
  }
  std::string impl() const override { return "rg:softmax:avx2"; }

 private:
  int64_t rows_, len_;
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
  if (c.node.op_type == "Softmax" && axis == r - 1 && is_plain(c.in_layouts[0]) && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma")) {
    int64_t len = c.in_shapes[0].back();
    return std::make_unique<LastAxisSoftmax>(shape_numel(c.in_shapes[0]) / len, len);
  }
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

// Grouped 3x3 convolution, 8 channels per group, on AVX2. In nChw8c one group is one
// block, so a group's output pixel is an 8-lane vector and its input pixel 8 scalars:
// each output pixel takes 9 taps x 8 input channels of broadcast-multiply-adds against an
// 8-lane weight vector (oneDNN 2.6's jit:avx2 kernel reaches about 30 GF/s on these,
// half its dense 3x3 rate).
//
// Per task (image, group, band of output rows) each row is done in tiles of up to 10
// output pixels, whose accumulators stay in registers. Along a row an input pixel feeds up
// to 3 taps (kw = 0, 1, 2), so it is broadcast once for all of them. Taps above or below
// the image are skipped, and so are the padded columns of a tile at the left or right
// border (a variant of the tile compiled for borders); interior tiles have no border
// tests. Small stride-1 planes (most of them) are copied into a zero-padded buffer first,
// so that all their tiles are interior ones.
#include "kernels/dnnl/group_conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/dnnl/avx2_post.h"
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

using namespace dnnl_util;

constexpr int kLanes = 8;   // channels per vector and per group
constexpr size_t kCopyBytes = 64 << 10;  // input planes up to this size are padded in a copy (see run_band)
constexpr int kMaxTile = 10;  // output pixels per tile: 10 accumulators + 3 weights + 1 input of 16 registers (12 made GCC spill)

struct Geometry {
  int64_t n, groups, h, w, oh, ow, stride, pt, pl;
};

// One tile of U output pixels of one row over taps kh0 <= kh < kh1 (the rows inside the
// image). `x` is the input row of tap kh0, `xs` the row stride in floats, `iw` the input
// column of the tile's first tap, `w` the group's weights [kh][kw][ic][oc]; the sums go to
// acc. At a border (Edge) only input columns [0, width) are read: the padding is zero and
// adds nothing, so skipping it replaces a padded copy.
template <int U, int S, bool Edge>
RG_AVX2 __attribute__((noinline)) void tile_sums(const float* x, int64_t xs, int kh0, int kh1, int64_t iw, int64_t width, const float* w,
                              __m256 bias, __m256* acc) {
  constexpr int J = (U - 1) * S + 3;  // input pixels the tile reads per row
  __m256 a[U];
#pragma GCC unroll 12
  for (int u = 0; u < U; u++) a[u] = bias;
  for (int kh = kh0; kh < kh1; kh++) {
    const float* r = x + (kh - kh0) * xs + iw * kLanes;
    const float* wk = w + kh * 3 * kLanes * kLanes;
    for (int ic = 0; ic < kLanes; ic++) {
      const __m256 w0 = _mm256_loadu_ps(wk + ic * kLanes);
      const __m256 w1 = _mm256_loadu_ps(wk + (kLanes + ic) * kLanes);
      const __m256 w2 = _mm256_loadu_ps(wk + (2 * kLanes + ic) * kLanes);
#pragma GCC unroll 40
      for (int j = 0; j < J; j++) {
        if (Edge && (iw + j < 0 || iw + j >= width)) continue;
        const __m256 v = _mm256_broadcast_ss(r + j * kLanes + ic);
        // Output u reads input j at tap kw = j - u * S.
        if (j % S == 0 && j / S < U) a[j / S] = _mm256_fmadd_ps(v, w0, a[j / S]);
        if ((j - 1) % S == 0 && j >= 1 && (j - 1) / S < U) a[(j - 1) / S] = _mm256_fmadd_ps(v, w1, a[(j - 1) / S]);
        if ((j - 2) % S == 0 && j >= 2 && (j - 2) / S < U) a[(j - 2) / S] = _mm256_fmadd_ps(v, w2, a[(j - 2) / S]);
      }
    }
  }
#pragma GCC unroll 12
  for (int u = 0; u < U; u++) acc[u] = a[u];
}

template <int S, bool Edge>
RG_AVX2 void tile_dispatch(int u, const float* x, int64_t xs, int kh0, int kh1, int64_t iw, int64_t width,
                           const float* w, __m256 bias, __m256* acc) {
  switch (u) {
#define RG_CASE(n) \
  case n: tile_sums<n, S, Edge>(x, xs, kh0, kh1, iw, width, w, bias, acc); break;
    RG_CASE(1) RG_CASE(2) RG_CASE(3) RG_CASE(4) RG_CASE(5) RG_CASE(6)
    RG_CASE(7) RG_CASE(8) RG_CASE(9) RG_CASE(10)
#undef RG_CASE
    default: break;
  }
}

class Group8Conv : public Kernel {
 public:
  Group8Conv(const CompileCtx& c, const Geometry& g, std::vector<Post> post, bool has_sum)
      : g_(g), post_(std::move(post)), weights_(c.in_values[1]),
        bias_src_(c.node.has_input(2) ? c.in_values[2] : nullptr), has_sum_(has_sum) {
    memory::desc act(to_dims(c.in_shapes[0]), dt::f32, tag::nChw8c);
    memory::desc dst(to_dims(c.out_shapes[0]), dt::f32, tag::nChw8c);
    Staging staging(c);
    src_ = InputPort(arrival_desc(c, 0), act, &staging);
    if (has_sum) res_ = InputPort(arrival_desc(c, (int)c.in_shapes.size() - 1), dst, &staging);
    layout_ = layout_of(dst, c.out_shapes[0]);
    refresh_constants();
  }

  std::string impl() const override { return "rg:group8_conv:avx2"; }
  bool clamps_in_store() const override { return true; }
  Layout out_layout(int) const override { return layout_; }

  // ONNX W[g * 8 + oc][ic][kh][kw] packed as [g][kh][kw][ic][oc]: one load per tap and
  // input channel gives the 8 output channels' weights.
  void refresh_constants() override {
    const float* w = weights_->data<float>();
    packed_.assign(g_.groups * 9 * kLanes * kLanes, 0.f);
    for (int64_t g = 0; g < g_.groups; g++)
      for (int oc = 0; oc < kLanes; oc++)
        for (int ic = 0; ic < kLanes; ic++)
          for (int t = 0; t < 9; t++)
            packed_[((g * 9 + t) * kLanes + ic) * kLanes + oc] = w[((g * kLanes + oc) * kLanes + ic) * 9 + t];
    bias_.assign(g_.groups * kLanes, 0.f);
    if (bias_src_) std::memcpy(bias_.data(), bias_src_->data<float>(), bias_.size() * sizeof(float));
  }

  void run(KernelCtx& c) override {
    const float* x = static_cast<const float*>(src_.bind(const_cast<void*>(c.input(0).raw())).get_data_handle());
    float* y = static_cast<float*>(c.output(0).raw());
    const float* res = nullptr;
    if (has_sum_) res = static_cast<const float*>(res_.bind(const_cast<void*>(c.in.back()->raw())).get_data_handle());
    // Bands of rows so that every thread gets several tasks even with few groups.
    const int64_t planes = g_.n * g_.groups, threads = omp_get_max_threads();
    const int64_t bands = std::min(g_.oh, std::max<int64_t>(1, (4 * threads + planes - 1) / planes));
    const int64_t band = (g_.oh + bands - 1) / bands;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t p = 0; p < planes; p++)
      for (int64_t b = 0; b < bands; b++) {
        int64_t oh0 = b * band, oh1 = std::min(g_.oh, oh0 + band);
        if (oh0 < oh1) run_band(x, res, y, p / g_.groups, p % g_.groups, oh0, oh1);
      }
  }

 private:
  RG_AVX2 void run_band(const float* x, const float* res, float* y, int64_t n, int64_t g, int64_t oh0, int64_t oh1) const {
    const int64_t s = g_.stride;
    const float* plane = x + (n * g_.groups + g) * g_.h * g_.w * kLanes;
    // Small stride-1 planes: the band's rows copied once into a zero-padded buffer (one
    // per thread, grown once), so that every tile is an interior one. Large planes and
    // stride 2 (which reads 4x its output) are read in place: there the copy costs more
    // than the border tests it saves (measured on RegNet's layers).
    const bool copy = s == 1 && g_.h * g_.w * kLanes * sizeof(float) <= kCopyBytes;
    int64_t h = g_.h, w = g_.w, pt = g_.pt, pl = g_.pl, row0 = 0;
    static thread_local std::vector<float> pad;
    if (copy) {
      w = (g_.ow - 1) * s + 3;
      h = (oh1 - oh0 - 1) * s + 3;
      row0 = oh0 * s;  // band row 0 is padded row oh0 * s
      if ((int64_t)pad.size() < h * w * kLanes) pad.resize(h * w * kLanes);
      for (int64_t r = 0; r < h; r++) {
        float* dst = pad.data() + r * w * kLanes;
        std::memset(dst, 0, w * kLanes * sizeof(float));
        int64_t ih = row0 + r - g_.pt, c1 = std::min(w, g_.pl + g_.w);
        if (ih >= 0 && ih < g_.h && c1 > g_.pl)
          std::memcpy(dst + g_.pl * kLanes, plane + ih * g_.w * kLanes, (c1 - g_.pl) * kLanes * sizeof(float));
      }
      plane = pad.data();
      pt = pl = 0;
    }
    const int64_t xs = w * kLanes;
    const float* wg = packed_.data() + g * 9 * kLanes * kLanes;
    const __m256 bias = _mm256_loadu_ps(bias_.data() + g * kLanes);
    const BlockPost bp = block_post(post_, g * kLanes);
    // Tiles of equal size: 14 pixels as 7 + 7 rather than 12 + 2.
    const int64_t tiles = (g_.ow + kMaxTile - 1) / kMaxTile;
    const int64_t out_plane = (n * g_.groups + g) * g_.oh * g_.ow * kLanes;
    __m256 acc[kMaxTile];
    for (int64_t oh = oh0; oh < oh1; oh++) {
      const int64_t ih = oh * s - pt - row0;
      const int kh0 = (int)std::max<int64_t>(0, -ih), kh1 = (int)std::min<int64_t>(3, h - ih);
      const float* xr = plane + std::max<int64_t>(0, ih + kh0) * xs;
      for (int64_t t = 0, ow0 = 0; t < tiles; t++) {
        int u = (int)((g_.ow - ow0 + (tiles - t) - 1) / (tiles - t));
        const int64_t iw = ow0 * s - pl;
        const bool edge = iw < 0 || iw + (u - 1) * s + 3 > w;
        if (s == 1 && !edge) tile_dispatch<1, false>(u, xr, xs, kh0, kh1, iw, w, wg, bias, acc);
        else if (s == 1) tile_dispatch<1, true>(u, xr, xs, kh0, kh1, iw, w, wg, bias, acc);
        else if (!edge) tile_dispatch<2, false>(u, xr, xs, kh0, kh1, iw, w, wg, bias, acc);
        else tile_dispatch<2, true>(u, xr, xs, kh0, kh1, iw, w, wg, bias, acc);
        int64_t at = out_plane + (oh * g_.ow + ow0) * kLanes;
        for (int i = 0; i < u; i++, at += kLanes) {
          __m256 v = acc[i];
          if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + at));
          _mm256_storeu_ps(y + at, apply_post(v, bp));
        }
        ow0 += u;
      }
    }
  }

  Geometry g_;
  std::vector<Post> post_;
  const Tensor* weights_;
  const Tensor* bias_src_;
  bool has_sum_;
  std::vector<float> packed_, bias_;
  InputPort src_, res_;
  Layout layout_ = plain_layout();
};

}  // namespace

std::unique_ptr<Kernel> make_group8_conv(const CompileCtx& c) {
  // Only where oneDNN dispatches AVX2; with AVX-512 its own kernels run.
  if (fast_isa().rfind("avx2", 0) != 0 || !__builtin_cpu_supports("fma")) return nullptr;
  if (c.bf16 || c.plain_output) return nullptr;
  const Shape& x = c.in_shapes[0];
  const Shape& w = c.in_shapes[1];
  if (x.size() != 4 || w.size() != 4 || w[1] != kLanes || w[2] != 3 || w[3] != 3 || !c.in_values[1]) return nullptr;
  if (x[1] != w[0] || x[1] % kLanes || c.node.attr_i("group", 1) != x[1] / kLanes) return nullptr;
  if (c.node.has_input(2) && !c.in_values[2]) return nullptr;
  WindowParams wp = window_params(c.node, x, {3, 3}, false, false);
  if (wp.strides[0] != wp.strides[1] || wp.strides[0] < 1 || wp.strides[0] > 2) return nullptr;
  if (wp.dilations[0] != 1 || wp.dilations[1] != 1) return nullptr;
  std::vector<Post> post;
  bool has_sum = false;
  if (!build_post(c, w[0], post, has_sum)) return nullptr;
  Geometry g{x[0], x[1] / kLanes, x[2], x[3], wp.out[0], wp.out[1], wp.strides[0], wp.pads_begin[0], wp.pads_begin[1]};
  if (g.oh < 1 || g.ow < 1) return nullptr;
  return std::make_unique<Group8Conv>(c, g, std::move(post), has_sum);
}

}  // namespace rg

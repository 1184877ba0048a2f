// Winograd convolution, rangeguard's own, for AVX2 (oneDNN 2.x has Winograd for AVX-512
// only) and AVX-512 (where this one measured faster than oneDNN's F(2,3) at batch 1).
// 3x3 stride-1 convolutions are most of a ResNet's time; F(4x4, 3x3) does their
// multiplies as 36 matrix products of 1/4 the direct count, at fp32 error well inside the
// parity tolerance; F(2x2, 3x3), 16 products of 4/9 the count, takes small images.
//
// Per run: (1) the input transform B^T d B of each T x T input tile (T = 6 or 4), L
// channels per vector (8 or 16), into V[T^2][tiles][C]; (2) T^2 matrix products V x U ->
// M[T^2][tiles][K] (gemm_panel), U = G g G^T being the weights transformed once at compile
// time (and on refresh, for fault injection); (3) the output transform A^T m A of each
// tile, with the bias, the residual sum and ReLU/clip post-ops applied before the store.
// Activations are read and written in the layout the neighbours use (AVX2: nChw8c, as
// oneDNN's AVX2 kernels give; AVX-512: nChw16c or channels-last), so they need no reorder.
// The vector code is winograd_isa.inc, compiled once per instruction set.
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/dnnl/avx2_post.h"
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/simd.h"
#include "kernels/dnnl/winograd.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

using namespace dnnl_util;

// The weight transform G of F(M x M, 3 x 3), in double.
template <int M>
struct Tile;

template <>
struct Tile<4> {
  static constexpr int T = 6;
  static constexpr double G[T][3] = {{0.25, 0, 0},         {-1 / 6., -1 / 6., -1 / 6.}, {-1 / 6., 1 / 6., -1 / 6.},
                                     {1 / 24., 1 / 12., 1 / 6.}, {1 / 24., -1 / 12., 1 / 6.}, {0, 0, 1}};
};

// F(2x2, 3x3): 16 products of 4/9 the direct multiplies. For small images (ResNet's 7x7
// stage), where 4x4 tiles would be too few and their weights 4x the direct ones.
template <>
struct Tile<2> {
  static constexpr int T = 4;
  static constexpr double G[T][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

// Sizes in channel blocks of L lanes and tiles, and where an element lies: activations
// are L-channel blocked (nChw8c, nChw16c: a block per plane, L floats per pixel) or
// channels-last (C floats per pixel, blocks L apart), whichever the neighbours use.
struct Geometry {
  int64_t n, cb, kb, h, w, oh, ow, th, tw, pt, pl;
  int64_t in_n, in_cb, in_px, out_n, out_kb, out_px;  // element strides: per image, block, pixel
  int64_t tiles() const { return n * th * tw; }
};

#define RG_WINO_NAME Avx2
#define RG_WINO_V simd::V8
#define RG_WINO_TARGET RG_AVX2
#include "kernels/dnnl/winograd_isa.inc"
#undef RG_WINO_NAME
#undef RG_WINO_V
#undef RG_WINO_TARGET

#define RG_WINO_NAME Avx512
#define RG_WINO_V simd::V16
#define RG_WINO_TARGET RG_AVX512
#include "kernels/dnnl/winograd_isa.inc"
#undef RG_WINO_NAME
#undef RG_WINO_V
#undef RG_WINO_TARGET

// Transformed weights shared by every kernel built on the same weight tensor: a plan
// compiles each step again for one thread to time it (autotune), and streams compile
// their own plans; each copy of U would be T^2/9 times the weights again.
std::shared_ptr<void> shared_weights(const Tensor* w, int tile, size_t bytes, bool& fresh) {
  static std::mutex mu;
  static std::map<std::pair<const Tensor*, int>, std::weak_ptr<void>> cache;
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<void>& slot = cache[{w, tile}];
  std::shared_ptr<void> u = slot.lock();
  fresh = !u;
  if (fresh) slot = u = aligned_buffer(bytes);
  return u;
}

template <int M, class Isa>
class WinogradConv : public Kernel {
  static constexpr int T = Tile<M>::T, P = T * T;  // tile side, number of products
  static constexpr int L = Isa::L, kPanel = Isa::kPanel;

 public:
  // `act` and `dst`: the layouts the input is read in and the output written in.
  WinogradConv(const CompileCtx& c, const Geometry& g, const memory::desc& act, const memory::desc& dst,
               std::vector<Post> post, bool has_sum)
      : g_(g), post_(std::move(post)), weights_(c.in_values[1]), bias_src_(c.node.has_input(2) ? c.in_values[2] : nullptr),
        scratch_(c.scratch), has_sum_(has_sum) {
    Staging staging(c);
    src_ = InputPort(arrival_desc(c, 0), act, &staging);
    if (has_sum) res_ = InputPort(arrival_desc(c, (int)c.in_shapes.size() - 1), dst, &staging);
    // AVX-512 passes over one image at a time: the whole batch's transformed tiles (V and
    // M, 29 MB for resnet50's first layers at batch 8) left L2 and L3 behind, and batch-8
    // throughput fell below oneDNN's Winograd (docs/speed.md). AVX2 runs as measured.
    pass_tiles_ = L == 16 ? g.th * g.tw : g.tiles();
    int64_t t = pass_tiles_, ci = g.cb * L, ko = g.kb * L;
    v_floats_ = (P * t * ci + 15) / 16 * 16;
    scratch_->reserve((v_floats_ + P * t * ko) * sizeof(float));
    bool fresh = false;
    u_ = shared_weights(weights_, M * 100 + L, P * ci * ko * sizeof(float), fresh);
    layout_ = layout_of(dst, c.out_shapes[0]);
    if (fresh) refresh_constants();
    else fill_bias();
  }

  std::string impl() const override {
    return std::string(M == 4 ? "rg:wino_f43:" : "rg:wino_f23:") + (L == 8 ? "avx2" : "avx512");
  }
  bool clamps_in_store() const override { return true; }
  Layout out_layout(int) const override { return layout_; }

  // U = G g G^T per (output, input) channel pair, in double, packed [P][K/kPanel][C][kPanel]
  // for gemm_panel; the bias copied.
  void refresh_constants() override {
    const auto& G = Tile<M>::G;
    int64_t ci = g_.cb * L, ko = g_.kb * L;
    const float* w = weights_->data<float>();
    float* u = static_cast<float*>(u_.get());
#pragma omp parallel for
    for (int64_t k = 0; k < ko; k++)
      for (int64_t c = 0; c < ci; c++) {
        const float* gk = w + (k * ci + c) * 9;
        double tmp[T][3];
        for (int i = 0; i < T; i++)
          for (int j = 0; j < 3; j++) tmp[i][j] = G[i][0] * gk[j] + G[i][1] * gk[3 + j] + G[i][2] * gk[6 + j];
        for (int i = 0; i < T; i++)
          for (int j = 0; j < T; j++) {
            int64_t at = (((i * T + j) * (ko / kPanel) + k / kPanel) * ci + c) * kPanel + k % kPanel;
            u[at] = (float)(tmp[i][0] * G[j][0] + tmp[i][1] * G[j][1] + tmp[i][2] * G[j][2]);
          }
      }
    fill_bias();
  }

  void run(KernelCtx& c) override {
    const float* x = static_cast<const float*>(src_.bind(const_cast<void*>(c.input(0).raw())).get_data_handle());
    float* y = static_cast<float*>(c.output(0).raw());
    const float* res = nullptr;
    if (has_sum_) res = static_cast<const float*>(res_.bind(const_cast<void*>(c.in.back()->raw())).get_data_handle());
    float* v = static_cast<float*>(scratch_->get());
    float* m = v + v_floats_;
    const float* u = static_cast<const float*>(u_.get());
    const int64_t t = pass_tiles_, ci = g_.cb * L, ko = g_.kb * L, panels = ko / kPanel;
    for (int64_t t0 = 0; t0 < g_.tiles(); t0 += t) {  // tiles [t0, t0 + t) per pass
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t i = 0; i < t; i++)
        for (int64_t cb = 0; cb < g_.cb; cb++)
          Isa::template input_tile<M>(g_, x, t0 + i, cb, v + i * ci + cb * L, t * ci);
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t e = 0; e < P; e++)
        for (int64_t p = 0; p < panels; p++) {
          const float* up = u + (e * panels + p) * ci * kPanel;
          const float* next = e * panels + p + 1 < P * panels ? up + ci * kPanel : nullptr;
          Isa::gemm_panel(v + e * t * ci, t, ci, up, m + e * t * ko + p * kPanel, ko, next);
        }
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t i = 0; i < t; i++)
        for (int64_t kb = 0; kb < g_.kb; kb++)
          Isa::template output_tile<M>(g_, m + i * ko + kb * L, t * ko, t0 + i, kb, bias_.data(), res, post_, y);
    }
  }

 private:
  void fill_bias() {
    bias_.assign(g_.kb * L, 0.f);
    if (bias_src_) std::memcpy(bias_.data(), bias_src_->data<float>(), bias_.size() * sizeof(float));
  }

  Geometry g_;
  std::vector<Post> post_;
  const Tensor* weights_;
  const Tensor* bias_src_;
  Scratch* scratch_;
  bool has_sum_;
  std::vector<float> bias_;
  std::shared_ptr<void> u_;
  int64_t v_floats_ = 0, pass_tiles_ = 0;
  InputPort src_, res_;
  Layout layout_ = plain_layout();
};

// Element strides of an L-channel-blocked or a channels-last activation of shape s.
void set_strides(const Shape& s, int64_t lanes, bool channels_last, int64_t& per_n, int64_t& per_block,
                 int64_t& per_px) {
  int64_t plane = s[2] * s[3];
  per_n = s[1] * plane;
  per_block = channels_last ? lanes : lanes * plane;
  per_px = channels_last ? s[1] : lanes;
}

template <class Isa>
std::unique_ptr<Kernel> make_for(const CompileCtx& c, const WindowParams& wp, std::vector<Post> post, bool has_sum) {
  constexpr int L = Isa::L;
  const Shape& x = c.in_shapes[0];
  const Shape& w = c.in_shapes[1];
  const Shape& y = c.out_shapes[0];
  if (x[1] % L || w[0] % Isa::kPanel) return nullptr;
  // Read the input as it arrives when that is channels-last or L-blocked (the layouts
  // oneDNN's neighbouring kernels give), and write the output the same way; anything
  // else is converted to the blocked layout.
  const tag blocked = L == 8 ? tag::nChw8c : tag::nChw16c;
  memory::desc arrival = arrival_desc(c, 0);
  bool nhwc = arrival == memory::desc(to_dims(x), dt::f32, tag::nhwc);
  memory::desc act(to_dims(x), dt::f32, nhwc ? tag::nhwc : blocked);
  memory::desc dst(to_dims(y), dt::f32, nhwc ? tag::nhwc : blocked);
  // 4x4 output tiles where an image has enough of them, else 2x2 tiles: fewer tiles make
  // each product a thin one that streams its transformed weights (T^2/9 the direct ones)
  // for little work, and direct is faster. AVX2 keeps 7x7 images (16 tiles of 2x2).
  // AVX-512 multiplies twice as fast against the same memory, so it needs more tiles per
  // weight: resnet50 at batch 1 (docs/speed.md) measured F(4,3) ahead of oneDNN's F(2,3)
  // at 28x28 (49 tiles) but behind at 14x14 (16 tiles), where F(2,3) (49 tiles) wins, and
  // both behind the direct kernel at 7x7.
  const int64_t min_tiles = L == 8 ? 16 : 36;
  auto geometry = [&](int64_t m) {
    Geometry g{x[0], x[1] / L, w[0] / L, x[2], x[3], wp.out[0], wp.out[1], (wp.out[0] + m - 1) / m,
               (wp.out[1] + m - 1) / m, wp.pads_begin[0], wp.pads_begin[1], 0, 0, 0, 0, 0, 0};
    set_strides(x, L, nhwc, g.in_n, g.in_cb, g.in_px);
    set_strides(y, L, nhwc, g.out_n, g.out_kb, g.out_px);
    return g;
  };
  Geometry g4 = geometry(4), g2 = geometry(2);
  int tile = g4.th * g4.tw >= min_tiles ? 4 : g2.th * g2.tw >= min_tiles ? 2 : 0;
  if (tile == 4) return std::make_unique<WinogradConv<4, Isa>>(c, g4, act, dst, std::move(post), has_sum);
  if (tile == 2) return std::make_unique<WinogradConv<2, Isa>>(c, g2, act, dst, std::move(post), has_sum);
  return nullptr;
}

}  // namespace

std::unique_ptr<Kernel> make_winograd_conv(const CompileCtx& c) {
  const std::string isa = fast_isa();
  const bool avx512 = isa.rfind("avx512", 0) == 0 && __builtin_cpu_supports("avx512f");
  const bool avx2 = isa.rfind("avx2", 0) == 0 && __builtin_cpu_supports("fma");
  if (!avx512 && !avx2) return nullptr;
  if (c.bf16 || !c.winograd || c.plain_output || c.scratch == nullptr) return nullptr;
  const Shape& x = c.in_shapes[0];
  const Shape& w = c.in_shapes[1];
  if (x.size() != 4 || w.size() != 4 || w[2] != 3 || w[3] != 3 || !c.in_values[1]) return nullptr;
  if (c.node.attr_i("group", 1) != 1 || x[1] != w[1]) return nullptr;
  if (c.node.has_input(2) && !c.in_values[2]) return nullptr;
  if (x[1] < 16 || w[0] < 16) return nullptr;
  WindowParams wp = window_params(c.node, x, {3, 3}, false, false);
  for (int i = 0; i < 2; i++)
    if (wp.strides[i] != 1 || wp.dilations[i] != 1) return nullptr;
  std::vector<Post> post;
  bool has_sum = false;
  if (!build_post(c, w[0], post, has_sum)) return nullptr;
  if (avx512) return make_for<Avx512>(c, wp, std::move(post), has_sum);
  return make_for<Avx2>(c, wp, std::move(post), has_sum);
}

}  // namespace rg

// Winograd convolution for CPUs where oneDNN has none (AVX2: oneDNN 2.x implements
// Winograd for AVX-512 only). 3x3 stride-1 convolutions are most of a ResNet's time;
// F(4x4, 3x3) does their multiplies as 36 matrix products of 1/4 the direct count, at fp32
// error well inside the parity tolerance (oneDNN's AVX-512 Winograd uses the same tile);
// F(2x2, 3x3), 16 products of 4/9 the count, takes small images (7x7).
//
// Per run: (1) the input transform B^T d B of each T x T input tile (T = 6 or 4), 8
// channels per vector, into V[T^2][tiles][C]; (2) T^2 matrix products V x U ->
// M[T^2][tiles][K] (gemm_panel), U = G g G^T being the weights transformed once at compile
// time (and on refresh, for fault injection); (3) the output transform A^T m A of each
// tile, with the bias, the residual sum and ReLU/clip post-ops applied before the store.
// Activations are nChw8c, the layout oneDNN's AVX2 kernels use, so neighbours need no
// reorder.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/dnnl/avx2_post.h"
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/winograd.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

using namespace dnnl_util;

constexpr int kLanes = 8;          // channels per vector (nChw8c)
constexpr int64_t kMinTiles = 16;  // per image; below it the direct kernel wins (see make_winograd_conv)

// F(M x M, 3 x 3) (Lavin & Gray): M x M outputs from a T x T input tile, T = M + 2. Its
// 1D transforms work on 8-channel vectors; G transforms the weights (in double).
template <int M>
struct Tile;

template <>
struct Tile<4> {
  static constexpr int T = 6;
  static constexpr double G[T][3] = {{0.25, 0, 0},         {-1 / 6., -1 / 6., -1 / 6.}, {-1 / 6., 1 / 6., -1 / 6.},
                                     {1 / 24., 1 / 12., 1 / 6.}, {1 / 24., -1 / 12., 1 / 6.}, {0, 0, 1}};
  RG_AVX2 static void input_1d(const __m256* d, __m256* t) {  // B^T d
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f);
    __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
    __m256 b = _mm256_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
    __m256 c = _mm256_sub_ps(d[4], d[2]);           // d4 - d2
    __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    t[0] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[2], d[4]), _mm256_mul_ps(four, d[0]));
    t[1] = _mm256_add_ps(a, b);
    t[2] = _mm256_sub_ps(a, b);
    t[3] = _mm256_add_ps(c, e);
    t[4] = _mm256_sub_ps(c, e);
    t[5] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[3], d[5]), _mm256_mul_ps(four, d[1]));
  }
  RG_AVX2 static void output_1d(const __m256* m, __m256* y) {  // A^T m
    __m256 p = _mm256_add_ps(m[1], m[2]), q = _mm256_sub_ps(m[1], m[2]);
    __m256 r = _mm256_add_ps(m[3], m[4]), s = _mm256_sub_ps(m[3], m[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], p), r);
    y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.f), s, q);
    y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.f), r, p);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.f), s, q), m[5]);
  }
};

// F(2x2, 3x3): 16 products of 4/9 the direct multiplies. For small images (ResNet's 7x7
// stage), where 4x4 tiles would be too few and their weights 4x the direct ones.
template <>
struct Tile<2> {
  static constexpr int T = 4;
  static constexpr double G[T][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  RG_AVX2 static void input_1d(const __m256* d, __m256* t) {
    t[0] = _mm256_sub_ps(d[0], d[2]);
    t[1] = _mm256_add_ps(d[1], d[2]);
    t[2] = _mm256_sub_ps(d[2], d[1]);
    t[3] = _mm256_sub_ps(d[1], d[3]);
  }
  RG_AVX2 static void output_1d(const __m256* m, __m256* y) {
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], m[1]), m[2]);
    y[1] = _mm256_sub_ps(_mm256_sub_ps(m[1], m[2]), m[3]);
  }
};

struct Geometry {
  int64_t n, cb, kb, h, w, oh, ow, th, tw, pt, pl;
  int64_t tiles() const { return n * th * tw; }
};

// B^T d B of one T x T tile of 8 channels into V (row stride `vs` floats between the T^2
// matrices).
template <int M>
RG_AVX2 void input_tile(const Geometry& g, const float* x, int64_t tile, int64_t cb, float* v, int64_t vs) {
  constexpr int T = Tile<M>::T;
  int64_t n = tile / (g.th * g.tw), r = tile % (g.th * g.tw);
  int64_t h0 = (r / g.tw) * M - g.pt, w0 = (r % g.tw) * M - g.pl;
  const float* base = x + (n * g.cb + cb) * g.h * g.w * kLanes;
  __m256 d[T][T];
  bool inside = h0 >= 0 && w0 >= 0 && h0 + T <= g.h && w0 + T <= g.w;
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) {
      int64_t hh = h0 + i, ww = w0 + j;
      d[i][j] = inside || (hh >= 0 && hh < g.h && ww >= 0 && ww < g.w)
                    ? _mm256_loadu_ps(base + (hh * g.w + ww) * kLanes)
                    : _mm256_setzero_ps();
    }
  __m256 t[T][T], col[T], out[T];
  for (int j = 0; j < T; j++) {  // columns: t = B^T d
    for (int i = 0; i < T; i++) col[i] = d[i][j];
    Tile<M>::input_1d(col, out);
    for (int i = 0; i < T; i++) t[i][j] = out[i];
  }
  for (int i = 0; i < T; i++) {  // rows: (B^T d) B
    Tile<M>::input_1d(t[i], out);
    for (int j = 0; j < T; j++) _mm256_storeu_ps(v + (i * T + j) * vs, out[j]);
  }
}

// A^T m A of one tile of 8 output channels, then bias, residual and post-ops; stores the
// outputs that fall inside the image.
template <int M>
RG_AVX2 void output_tile(const Geometry& g, const float* m, int64_t ms, int64_t tile, int64_t kb, const float* bias,
                         const float* res, const std::vector<Post>& post, float* y) {
  constexpr int T = Tile<M>::T;
  __m256 t[M][T], row[T], out[T];
  for (int j = 0; j < T; j++) {  // columns: A^T m
    for (int i = 0; i < T; i++) row[i] = _mm256_loadu_ps(m + (i * T + j) * ms);
    Tile<M>::output_1d(row, out);
    for (int i = 0; i < M; i++) t[i][j] = out[i];
  }
  int64_t n = tile / (g.th * g.tw), r = tile % (g.th * g.tw);
  int64_t h0 = (r / g.tw) * M, w0 = (r % g.tw) * M;
  int64_t plane = (n * g.kb + kb) * g.oh * g.ow * kLanes;
  __m256 b = _mm256_loadu_ps(bias + kb * kLanes);
  const BlockPost bp = block_post(post, kb * kLanes);
  for (int i = 0; i < M && h0 + i < g.oh; i++) {
    Tile<M>::output_1d(t[i], out);  // rows: (A^T m) A
    for (int j = 0; j < M && w0 + j < g.ow; j++) {
      int64_t at = plane + ((h0 + i) * g.ow + w0 + j) * kLanes;
      __m256 v = _mm256_add_ps(out[j], b);
      if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + at));
      _mm256_storeu_ps(y + at, apply_post(v, bp));
    }
  }
}

// M[t][k0..k0+16) = sum_c V[t][c] U[c][k0..k0+16) for R rows of tiles: R x 2 accumulators
// of 8 lanes stay in registers over all C (R = 6 uses 12 of AVX2's 16). U is packed per
// 16-column panel, [C][16], so the inner loop reads it sequentially, and is read once per
// R rows (not copied per call, as a generic GEMM packs its operand).
template <int R>
RG_AVX2 void gemm_rows(const float* v, int64_t c_n, const float* u, float* m, int64_t ko) {
  // Named accumulators: GCC keeps an __m256 array on the stack, storing it every step.
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00,
         a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  for (int64_t c = 0; c < c_n; c++) {
    __m256 b0 = _mm256_loadu_ps(u + c * 16), b1 = _mm256_loadu_ps(u + c * 16 + 8), a;
#define RG_ROW(r)                                    \
  if constexpr (R > r) {                             \
    a = _mm256_broadcast_ss(v + r * c_n + c);        \
    a##r##0 = _mm256_fmadd_ps(a, b0, a##r##0);       \
    a##r##1 = _mm256_fmadd_ps(a, b1, a##r##1);       \
  }
    RG_ROW(0) RG_ROW(1) RG_ROW(2) RG_ROW(3) RG_ROW(4) RG_ROW(5)
#undef RG_ROW
  }
  const __m256 acc[6][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
  for (int r = 0; r < R; r++) {
    _mm256_storeu_ps(m + r * ko, acc[r][0]);
    _mm256_storeu_ps(m + r * ko + 8, acc[r][1]);
  }
}

// One 16-column panel of one of the 36 products, over all tiles.
RG_AVX2 void gemm_panel(const float* v, int64_t t_n, int64_t c_n, const float* u, float* m, int64_t ko) {
  int64_t t = 0;
  for (; t + 6 <= t_n; t += 6) gemm_rows<6>(v + t * c_n, c_n, u, m + t * ko, ko);
  switch (t_n - t) {
    case 5: gemm_rows<5>(v + t * c_n, c_n, u, m + t * ko, ko); break;
    case 4: gemm_rows<4>(v + t * c_n, c_n, u, m + t * ko, ko); break;
    case 3: gemm_rows<3>(v + t * c_n, c_n, u, m + t * ko, ko); break;
    case 2: gemm_rows<2>(v + t * c_n, c_n, u, m + t * ko, ko); break;
    case 1: gemm_rows<1>(v + t * c_n, c_n, u, m + t * ko, ko); break;
    default: break;
  }
}

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

template <int M>
class WinogradConv : public Kernel {
  static constexpr int T = Tile<M>::T, P = T * T;  // tile side, number of products

 public:
  WinogradConv(const CompileCtx& c, const Geometry& g, std::vector<Post> post, bool has_sum)
      : g_(g), post_(std::move(post)), weights_(c.in_values[1]), bias_src_(c.node.has_input(2) ? c.in_values[2] : nullptr),
        scratch_(c.scratch), has_sum_(has_sum) {
    memory::desc act(to_dims(c.in_shapes[0]), dt::f32, tag::nChw8c);
    memory::desc dst(to_dims(c.out_shapes[0]), dt::f32, tag::nChw8c);
    Staging staging(c);
    src_ = InputPort(arrival_desc(c, 0), act, &staging);
    if (has_sum) res_ = InputPort(arrival_desc(c, (int)c.in_shapes.size() - 1), dst, &staging);
    int64_t t = g.tiles(), ci = g.cb * kLanes, ko = g.kb * kLanes;
    v_floats_ = (P * t * ci + 15) / 16 * 16;
    scratch_->reserve((v_floats_ + P * t * ko) * sizeof(float));
    bool fresh = false;
    u_ = shared_weights(weights_, M, P * ci * ko * sizeof(float), fresh);
    layout_ = layout_of(dst, c.out_shapes[0]);
    if (fresh) refresh_constants();
    else fill_bias();
  }

  std::string impl() const override { return M == 4 ? "rg:wino_f43:avx2" : "rg:wino_f23:avx2"; }
  bool clamps_in_store() const override { return true; }
  Layout out_layout(int) const override { return layout_; }

  // U = G g G^T per (output, input) channel pair, in double, packed [P][K/16][C][16] for
  // gemm_panel; the bias copied.
  void refresh_constants() override {
    const auto& G = Tile<M>::G;
    int64_t ci = g_.cb * kLanes, ko = g_.kb * kLanes;
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
            int64_t at = (((i * T + j) * (ko / 16) + k / 16) * ci + c) * 16 + k % 16;
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
    const int64_t t = g_.tiles(), ci = g_.cb * kLanes, ko = g_.kb * kLanes, panels = ko / 16;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < t; i++)
      for (int64_t cb = 0; cb < g_.cb; cb++) input_tile<M>(g_, x, i, cb, v + i * ci + cb * kLanes, t * ci);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t e = 0; e < P; e++)
      for (int64_t p = 0; p < panels; p++)
        gemm_panel(v + e * t * ci, t, ci, u + (e * panels + p) * ci * 16, m + e * t * ko + p * 16, ko);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < t; i++)
      for (int64_t kb = 0; kb < g_.kb; kb++)
        output_tile<M>(g_, m + i * ko + kb * kLanes, t * ko, i, kb, bias_.data(), res, post_, y);
  }

 private:
  void fill_bias() {
    bias_.assign(g_.kb * kLanes, 0.f);
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
  int64_t v_floats_ = 0;
  InputPort src_, res_;
  Layout layout_ = plain_layout();
};

}  // namespace

std::unique_ptr<Kernel> make_winograd_conv(const CompileCtx& c) {
  // Only where oneDNN dispatches AVX2: with AVX-512 its own Winograd and direct kernels
  // run (what the AVX-512 figures in docs/speed.md measured).
  if (fast_isa().rfind("avx2", 0) != 0 || !__builtin_cpu_supports("fma")) return nullptr;
  if (c.bf16 || !c.winograd || c.plain_output || c.scratch == nullptr) return nullptr;
  const Shape& x = c.in_shapes[0];
  const Shape& w = c.in_shapes[1];
  if (x.size() != 4 || w.size() != 4 || w[2] != 3 || w[3] != 3 || !c.in_values[1]) return nullptr;
  if (c.node.attr_i("group", 1) != 1 || x[1] != w[1] || x[1] % kLanes || w[0] % 16) return nullptr;
  if (c.node.has_input(2) && !c.in_values[2]) return nullptr;
  if (x[1] < 16 || w[0] < 16) return nullptr;
  WindowParams wp = window_params(c.node, x, {3, 3}, false, false);
  for (int i = 0; i < 2; i++)
    if (wp.strides[i] != 1 || wp.dilations[i] != 1) return nullptr;
  // 4x4 output tiles where an image has at least 16 of them; 2x2 tiles down to 16 of
  // those (7x7 images): fewer tiles make each product a thin one that streams its
  // transformed weights (T^2/9 the direct ones) for little work, and direct is faster.
  auto geometry = [&](int64_t m) {
    return Geometry{x[0], x[1] / kLanes, w[0] / kLanes, x[2], x[3], wp.out[0], wp.out[1],
                    (wp.out[0] + m - 1) / m, (wp.out[1] + m - 1) / m, wp.pads_begin[0], wp.pads_begin[1]};
  };
  Geometry g4 = geometry(4), g2 = geometry(2);
  int tile = g4.th * g4.tw >= kMinTiles ? 4 : g2.th * g2.tw >= kMinTiles ? 2 : 0;
  if (!tile) return nullptr;
  std::vector<Post> post;
  bool has_sum = false;
  if (!build_post(c, w[0], post, has_sum)) return nullptr;
  if (tile == 4) return std::make_unique<WinogradConv<4>>(c, g4, std::move(post), has_sum);
  return std::make_unique<WinogradConv<2>>(c, g2, std::move(post), has_sum);
}

}  // namespace rg

// Convolutions: Conv, ConvTranspose, ConvInteger.
//
// All run as im2col + matrix product per (image, group): the columns for a tile of output
// rows are gathered into a buffer (so the matrix product reads contiguous memory), then
// Y[Mg x cols] += W[Mg x Cg*K] * col[Cg*K x cols]. ConvTranspose is the adjoint:
// col = W^T * X, then col2im scatters-adds into Y. 1-D and 2-D are handled as 3-D with
// unit leading dims, so one loop nest serves all three.
//
// Threads: with many (image, group) pairs (batches, depthwise) each thread takes whole
// pairs with its own buffer. Otherwise Conv gives each thread whole tiles of output rows
// (im2col and product for its columns, no barrier in between); when there are too few
// rows for that, and in ConvTranspose (whose tiles overlap in Y), the pairs and tiles run
// in turn and im2col / the matrix product / col2im split their rows across threads.
#include <omp.h>

#include "kernels/ref/common.h"
#include "kernels/ref/sgemm.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

// Window geometry padded to 3 spatial dims (D, H, W).
struct Geom3 {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
};

Geom3 geom3(const WindowParams& w, const Node& n) {
  const int sp = w.spatial();
  if (sp > 3)
    fail(ErrorCode::unsupported_op, "{}: {} spatial dims are not supported (at most 3)", n.label(), sp);
  Geom3 g;
  for (int i = 0; i < sp; i++) {
    int j = 3 - sp + i;
    g.in[j] = w.in[i];
    g.out[j] = w.out[i];
    g.k[j] = w.kernel[i];
    g.s[j] = w.strides[i];
    g.d[j] = w.dilations[i];
    g.pb[j] = w.pads_begin[i];
  }
  return g;
}

// Channel bookkeeping plus window geometry, validated once for inference and kernel.
struct ConvDims {
  WindowParams win;
  int64_t N = 0, C = 0, M = 0, G = 1;
};

ConvDims conv_dims(const Node& n, const Shape& x, const Shape& w, const Shape* bias, bool transposed) {
  if (x.size() < 3)
    fail(ErrorCode::invalid_model, "{}: input has shape {}, expected N, C and spatial dims", n.label(), shape_str(x));
  ConvDims d;
  d.N = x[0];
  d.C = x[1];
  d.G = n.attr_i("group", 1);
  if (d.G < 1) fail(ErrorCode::invalid_model, "{}: group {} must be >= 1", n.label(), d.G);
  std::vector<int64_t> k = window_kernel(n, (int)x.size() - 2, &w);  // also checks W's rank
  if (d.C % d.G != 0)
    fail(ErrorCode::invalid_model, "{}: {} input channels are not divisible by group {}", n.label(), d.C, d.G);
  if (!transposed) {
    // W is [M, C / group, k...].
    d.M = w[0];
    if (w[1] != d.C / d.G)
      fail(ErrorCode::invalid_model, "{}: weight {} expects {} input channels per group, input {} has {} (group {})",
           n.label(), shape_str(w), w[1], shape_str(x), d.C / d.G, d.G);
    if (d.M % d.G != 0)
      fail(ErrorCode::invalid_model, "{}: {} output channels are not divisible by group {}", n.label(), d.M, d.G);
  } else {
    // W is [C, M / group, k...].
    if (w[0] != d.C)
      fail(ErrorCode::invalid_model, "{}: weight {} expects {} input channels, input {} has {}", n.label(),
           shape_str(w), w[0], shape_str(x), d.C);
    d.M = w[1] * d.G;
  }
  if (bias && (bias->size() != 1 || (*bias)[0] != d.M))
    fail(ErrorCode::invalid_model, "{}: bias has shape {}, expected [{}]", n.label(), shape_str(*bias), d.M);
  d.win = window_params(n, x, k, false, transposed);
  return d;
}

Shape out_shape(const ConvDims& d) {
  Shape s{d.N, d.M};
  s.insert(s.end(), d.win.out.begin(), d.win.out.end());
  return s;
}

// Rows of `col` for output rows [r0, r1) (a row = one (d, h) pair, W values wide):
// row (c, kd, kh, kw) holds the input value each output position reads through that tap,
// `pad` where it reads padding.
template <typename T>
void im2col(const T* x, int64_t Cg, const Geom3& g, int64_t r0, int64_t r1, T pad, T* col, bool parallel) {
  const int64_t KS = g.k_size(), OW = g.out[2], OH = g.out[1], cols = (r1 - r0) * OW;
  const int64_t D = g.in[0], H = g.in[1], W = g.in[2], IS = g.in_size();
#pragma omp parallel for schedule(static) if (parallel && Cg * KS * cols > (1 << 15))
  for (int64_t r = 0; r < Cg * KS; r++) {
    const int64_t c = r / KS, kk = r % KS;
    const int64_t kd = kk / (g.k[1] * g.k[2]), kh = kk / g.k[2] % g.k[1], kw = kk % g.k[2];
    const T* xc = x + c * IS;
    T* dst = col + r * cols;
    // Output columns whose tap lands inside [0, W): ow in [lo, hi).
    const int64_t iw0 = kw * g.d[2] - g.pb[2], sw = g.s[2];
    const int64_t lo = iw0 >= 0 ? 0 : std::min(OW, (-iw0 + sw - 1) / sw);
    const int64_t hi = iw0 >= W ? 0 : std::min(OW, (W - 1 - iw0) / sw + 1);
    for (int64_t orow = r0; orow < r1; orow++, dst += OW) {
      const int64_t id = orow / OH * g.s[0] - g.pb[0] + kd * g.d[0];
      const int64_t ih = orow % OH * g.s[1] - g.pb[1] + kh * g.d[1];
      if (id < 0 || id >= D || ih < 0 || ih >= H || hi <= lo) {
        std::fill(dst, dst + OW, pad);
        continue;
      }
      // Indices stay relative to the row start: iw0 may be negative.
      const T* src = xc + (id * H + ih) * W;
      std::fill(dst, dst + lo, pad);
      if (sw == 1)
        std::copy(src + (iw0 + lo), src + (iw0 + hi), dst + lo);
      else
        for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[iw0 + ow * sw];
      std::fill(dst + hi, dst + OW, pad);
    }
  }
}

// Output rows per im2col tile: about 1M floats of columns, at least one row.
int64_t tile_rows(int64_t col_rows, const Geom3& g) {
  const int64_t rows = g.out[0] * g.out[1];
  return std::max<int64_t>(1, std::min(rows, (int64_t(1) << 20) / std::max<int64_t>(1, col_rows * g.out[2])));
}

// Runs body(n, group, parallel_inside) for every (image, group) pair, choosing where the
// threads go (see the file comment). `scratch` is a per-thread buffer of `scratch_len`.
template <typename F>
void for_each_image_group(int64_t N, int64_t G, size_t scratch_len, F&& body) {
  const int64_t pairs = N * G;
  const int nt = omp_get_max_threads();
  if (nt > 1 && pairs >= 2 * nt) {
#pragma omp parallel
    {
      std::vector<float> scratch(scratch_len);
#pragma omp for schedule(dynamic)
      for (int64_t p = 0; p < pairs; p++) body(p / G, p % G, false, scratch.data());
    }
  } else {
    std::vector<float> scratch(scratch_len);
    for (int64_t p = 0; p < pairs; p++) body(p / G, p % G, true, scratch.data());
  }
}

void fill_bias(float* y, int64_t channels, int64_t size, const float* bias) {
  for (int64_t m = 0; m < channels; m++) std::fill(y + m * size, y + (m + 1) * size, bias ? bias[m] : 0.f);
}

void infer_conv_like(InferCtx& c, bool transposed) {
  c.require_inputs(2, 3);
  c.require_float(0);
  c.require_float(1);
  if (c.has_input(2)) c.require_float(2);
  ConvDims d = conv_dims(c.node, c.shape(0), c.shape(1), c.has_input(2) ? &c.shape(2) : nullptr, transposed);
  c.set_output(0, DType::f32, out_shape(d));
}
void infer_Conv(InferCtx& c) { infer_conv_like(c, false); }
void infer_ConvTranspose(InferCtx& c) { infer_conv_like(c, true); }

void ref_Conv(KernelCtx& c) {
  const Tensor& X = c.input(0);
  const Tensor& Wt = c.input(1);
  const bool has_b = c.has_input(2);
  ConvDims d = conv_dims(c.node, X.shape(), Wt.shape(), has_b ? &c.input(2).shape() : nullptr, false);
  const Geom3 g = geom3(d.win, c.node);
  const float* x = X.data<float>();
  const float* w = Wt.data<float>();
  const float* b = has_b ? c.input(2).data<float>() : nullptr;
  float* y = c.output(0).data<float>();
  const int64_t Cg = d.C / d.G, Mg = d.M / d.G, KS = g.k_size(), Kdim = Cg * KS;
  const int64_t IS = g.in_size(), OS = g.out_size(), OW = g.out[2];
  // A 1x1 window with unit strides and no padding reads X as it is: no im2col needed.
  bool direct = KS == 1 && OS == IS;
  for (int i = 0; i < 3; i++) direct = direct && g.s[i] == 1 && g.pb[i] == 0;
  const int64_t rows = g.out[0] * g.out[1];
  const int nt = omp_get_max_threads();
  // With few (image, group) pairs, a pair's output-row tiles are spread over the threads,
  // each gathering its own columns: one parallel region per pair instead of two per tile
  // (fewer barriers, which matters when the cores are shared). Tile counts are rounded up
  // to a multiple of the thread count to balance the work.
  const bool by_tiles = !direct && nt > 1 && d.N * d.G < 2 * nt && rows >= nt;
  int64_t ntiles = (rows + tile_rows(Kdim, g) - 1) / tile_rows(Kdim, g);
  if (by_tiles) ntiles = (ntiles + nt - 1) / nt * nt;
  const int64_t trows = (rows + ntiles - 1) / ntiles;
  ntiles = (rows + trows - 1) / trows;
  const size_t scratch = direct ? 0 : (size_t)(Kdim * trows * OW);

  auto run_tile = [&](const float* xg, float* yg, const float* wg, int64_t t, float* col, bool par) {
    const int64_t r0 = t * trows, r1 = std::min(rows, r0 + trows), cols = (r1 - r0) * OW;
    im2col(xg, Cg, g, r0, r1, 0.f, col, par);
    sgemm(false, false, Mg, cols, Kdim, 1.f, wg, Kdim, col, cols, 1.f, yg + r0 * OW, OS, par);
  };
  if (by_tiles) {
    for (int64_t p = 0; p < d.N * d.G; p++) {
      const int64_t n = p / d.G, grp = p % d.G;
      const float* xg = x + (n * d.C + grp * Cg) * IS;
      float* yg = y + (n * d.M + grp * Mg) * OS;
      fill_bias(yg, Mg, OS, b ? b + grp * Mg : nullptr);
#pragma omp parallel
      {
        std::vector<float> col(scratch);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntiles; t++) run_tile(xg, yg, w + grp * Mg * Kdim, t, col.data(), false);
      }
    }
    return;
  }
  for_each_image_group(d.N, d.G, scratch, [&](int64_t n, int64_t grp, bool par, float* col) {
    const float* xg = x + (n * d.C + grp * Cg) * IS;
    float* yg = y + (n * d.M + grp * Mg) * OS;
    const float* wg = w + grp * Mg * Kdim;
    fill_bias(yg, Mg, OS, b ? b + grp * Mg : nullptr);
    if (direct) {
      sgemm(false, false, Mg, OS, Kdim, 1.f, wg, Kdim, xg, IS, 1.f, yg, OS, par);
      return;
    }
    for (int64_t t = 0; t < ntiles; t++) run_tile(xg, yg, wg, t, col, par);
  });
}

// ConvTranspose: input rows [r0, r1) (a row = one (d, h) input pair) of col = W^T X are
// scattered-added into Y. Rows of col for one output channel m touch only Y's channel m,
// so the loop over m is what runs in parallel.
void col2im(const float* col, int64_t Mg, const Geom3& g, int64_t r0, int64_t r1, float* y, bool parallel) {
  const int64_t KS = g.k_size(), IW = g.in[2], IH = g.in[1], cols = (r1 - r0) * IW;
  const int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2], OS = g.out_size();
#pragma omp parallel for schedule(static) if (parallel && Mg * KS * cols > (1 << 15))
  for (int64_t m = 0; m < Mg; m++) {
    float* ym = y + m * OS;
    for (int64_t kk = 0; kk < KS; kk++) {
      const int64_t kd = kk / (g.k[1] * g.k[2]), kh = kk / g.k[2] % g.k[1], kw = kk % g.k[2];
      const float* src = col + (m * KS + kk) * cols;
      const int64_t ow0 = kw * g.d[2] - g.pb[2], sw = g.s[2];
      // Input columns whose output lands inside [0, OW): iw in [lo, hi).
      const int64_t lo = ow0 >= 0 ? 0 : std::min(IW, (-ow0 + sw - 1) / sw);
      const int64_t hi = ow0 >= OW ? 0 : std::min(IW, (OW - 1 - ow0) / sw + 1);
      for (int64_t irow = r0; irow < r1; irow++, src += IW) {
        const int64_t od = irow / IH * g.s[0] - g.pb[0] + kd * g.d[0];
        const int64_t oh = irow % IH * g.s[1] - g.pb[1] + kh * g.d[1];
        if (od < 0 || od >= OD || oh < 0 || oh >= OH) continue;
        float* dst = ym + (od * OH + oh) * OW;
        for (int64_t iw = lo; iw < hi; iw++) dst[ow0 + iw * sw] += src[iw];
      }
    }
  }
}

void ref_ConvTranspose(KernelCtx& c) {
  const Tensor& X = c.input(0);
  const Tensor& Wt = c.input(1);
  const bool has_b = c.has_input(2);
  ConvDims d = conv_dims(c.node, X.shape(), Wt.shape(), has_b ? &c.input(2).shape() : nullptr, true);
  const Geom3 g = geom3(d.win, c.node);
  const float* x = X.data<float>();
  const float* w = Wt.data<float>();
  const float* b = has_b ? c.input(2).data<float>() : nullptr;
  float* y = c.output(0).data<float>();
  const int64_t Cg = d.C / d.G, Mg = d.M / d.G, KS = g.k_size(), Kdim = Mg * KS;
  const int64_t IS = g.in_size(), OS = g.out_size(), IW = g.in[2], rows = g.in[0] * g.in[1];
  const int64_t trows =
      std::max<int64_t>(1, std::min(rows, (int64_t(1) << 20) / std::max<int64_t>(1, Kdim * IW)));

  for_each_image_group(d.N, d.G, (size_t)(Kdim * trows * IW), [&](int64_t n, int64_t grp, bool par, float* col) {
    const float* xg = x + (n * d.C + grp * Cg) * IS;
    float* yg = y + (n * d.M + grp * Mg) * OS;
    const float* wg = w + grp * Cg * Kdim;  // [Cg, Mg * KS]
    fill_bias(yg, Mg, OS, b ? b + grp * Mg : nullptr);
    for (int64_t r0 = 0; r0 < rows; r0 += trows) {
      const int64_t r1 = std::min(rows, r0 + trows), cols = (r1 - r0) * IW;
      // col[Mg*KS x cols] = Wg^T [Mg*KS x Cg] * Xg[Cg x cols]
      sgemm(true, false, Kdim, cols, Cg, 1.f, wg, Kdim, xg + r0 * IW, IS, 0.f, col, cols, par);
      col2im(col, Mg, g, r0, r1, yg, par);
    }
  });
}

// ConvInteger: uint8/int8 data and weights with zero points, int32 result. Values are
// shifted by their zero points first, so padding (0 after the shift) stands for the input
// zero point, as ONNX specifies.
void infer_ConvInteger(InferCtx& c) {
  c.require_inputs(2, 4);
  for (int i = 0; i < 2; i++)
    if (c.type(i) != DType::u8 && c.type(i) != DType::i8)
      fail(ErrorCode::unsupported_op, "{}: input {} is {}, expected uint8 or int8", c.node.label(), i,
           dtype_name(c.type(i)));
  ConvDims d = conv_dims(c.node, c.shape(0), c.shape(1), nullptr, false);
  c.set_output(0, DType::i32, out_shape(d));
}

// Zero point of input i: 0 when omitted, one value, or (weights only) one per channel.
std::vector<int32_t> zero_points(const KernelCtx& c, int i, int64_t per) {
  std::vector<int32_t> zp(per, 0);
  if (!c.has_input(i)) return zp;
  std::vector<double> v = c.input(i).to_doubles();
  if (v.size() == 1) std::fill(zp.begin(), zp.end(), (int32_t)v[0]);
  else if ((int64_t)v.size() == per) for (int64_t j = 0; j < per; j++) zp[j] = (int32_t)v[j];
  else fail(ErrorCode::invalid_model, "{}: zero point {} has {} values, expected 1 or {}", c.node.label(), i, v.size(), per);
  return zp;
}

void ref_ConvInteger(KernelCtx& c) {
  const Tensor& X = c.input(0);
  const Tensor& Wt = c.input(1);
  ConvDims d = conv_dims(c.node, X.shape(), Wt.shape(), nullptr, false);
  const Geom3 g = geom3(d.win, c.node);
  const int64_t Cg = d.C / d.G, Mg = d.M / d.G, KS = g.k_size(), Kdim = Cg * KS;
  const int64_t IS = g.in_size(), OS = g.out_size(), rows = g.out[0] * g.out[1];
  const int32_t xzp = zero_points(c, 2, 1)[0];
  const std::vector<int32_t> wzp = zero_points(c, 3, d.M);
  // Everything shifted to int32 up front; int32 columns for one whole image and group.
  std::vector<int32_t> xs(X.numel()), ws(Wt.numel()), col((size_t)(Kdim * OS));
  std::vector<double> xv = X.to_doubles(), wv = Wt.to_doubles();
  for (size_t i = 0; i < xs.size(); i++) xs[i] = (int32_t)xv[i] - xzp;
  for (size_t i = 0; i < ws.size(); i++) ws[i] = (int32_t)wv[i] - wzp[i / Kdim];
  int32_t* y = c.output(0).data<int32_t>();
  for (int64_t n = 0; n < d.N; n++)
    for (int64_t grp = 0; grp < d.G; grp++) {
      im2col<int32_t>(xs.data() + (n * d.C + grp * Cg) * IS, Cg, g, 0, rows, 0, col.data(), false);
      gemm_int<int32_t>(Mg, OS, Kdim, ws.data() + grp * Mg * Kdim, col.data(), y + (n * d.M + grp * Mg) * OS);
    }
}

}  // namespace

const OpDef kOp_Conv{"Conv", infer_Conv, ref_Conv};
const OpDef kOp_ConvTranspose{"ConvTranspose", infer_ConvTranspose, ref_ConvTranspose};
const OpDef kOp_ConvInteger{"ConvInteger", infer_ConvInteger, ref_ConvInteger};

}  // namespace rg

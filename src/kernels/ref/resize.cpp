// Resize (opsets 10-19) and Upsample (opsets 7-9): N-D nearest, (multi)linear and cubic
// interpolation.
//
// Interpolation is separable: each output coordinate along an axis reads a few input
// positions ("taps") with weights. The taps are computed once per axis (a table the size
// of the output dim), then each output element sums the products of its axes' taps. This
// matches the ONNX reference implementation, which interpolates axis by axis recursively
// (including edge clamping and, for tf_crop_and_resize, the extrapolation value: weights sum
// to 1, so a row of extrapolated values interpolates to the extrapolation value).
//
// Conventions follow the ONNX 1.12 reference (the golden node-test data): the "resized
// length" used by align_corners / pytorch_half_pixel is scale * input_length (not the
// rounded output length) when scales are given. Upsample and Resize-10 have no
// coordinate_transformation_mode; they use asymmetric coordinates and ONNX Runtime's legacy
// nearest rounding (truncate when upsampling, ceil when downsampling).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/ref/movement.h"

namespace rg {
namespace {

struct ResizeSpec {
  Shape out;
  std::vector<double> scale, len, roi_s, roi_e;  // per input dim; len = resized length
  std::string mode, coord, nearest;
  double cubic_a = -0.75, extrapolation = 0;
  bool exclude_outside = false;
};

const char* const kCoordModes[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                   "asymmetric", "tf_half_pixel_for_nearest", "tf_crop_and_resize"};
const char* const kNearestModes[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "legacy"};

ResizeSpec resize_spec(const InferCtx& c, bool upsample) {
  const Node& n = c.node;
  const Shape& s = c.shape(0);
  int r = (int)s.size();
  ResizeSpec sp;
  sp.mode = n.attr_s("mode", "nearest");
  if (sp.mode == "bilinear" || sp.mode == "trilinear") sp.mode = "linear";  // Upsample-7 spellings
  if (sp.mode != "nearest" && sp.mode != "linear" && sp.mode != "cubic")
    fail(ErrorCode::invalid_model, "{}: unknown mode '{}'", n.label(), sp.mode);
  sp.out = s;
  sp.scale.assign(r, 1.0);
  sp.roi_s.assign(r, 0.0);
  sp.roi_e.assign(r, 1.0);
  std::vector<int> axes(r);
  std::iota(axes.begin(), axes.end(), 0);
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  bool by_sizes = false;
  if (upsample || c.opset < 11) {
    if (upsample && c.opset < 7) fail(ErrorCode::unsupported_op, "{}: Upsample before opset 7 is not supported", n.label());
    sp.coord = "asymmetric";
    sp.nearest = "legacy";
    if (sp.mode == "cubic") fail(ErrorCode::invalid_model, "{}: cubic needs opset 11", n.label());
    if (upsample && c.opset < 9) {
      c.require_inputs(1, 1);
      for (float v : n.attr_floats("scales")) scales.push_back(v);
    } else {
      c.require_inputs(2, 2);
      scales = c.value(1).to_doubles();
    }
  } else {
    c.require_inputs(1, 4);
    sp.coord = n.attr_s("coordinate_transformation_mode", "half_pixel");
    if (sp.coord == "tf_half_pixel_for_nn") sp.coord = "tf_half_pixel_for_nearest";  // opset 11's spelling
    sp.nearest = n.attr_s("nearest_mode", "round_prefer_floor");
    sp.cubic_a = n.attr_f("cubic_coeff_a", -0.75f);
    sp.exclude_outside = n.attr_i("exclude_outside", 0) != 0;
    sp.extrapolation = n.attr_f("extrapolation_value", 0.f);
    if (n.attr_i("antialias", 0) != 0)
      fail(ErrorCode::unsupported_op, "{}: antialias=1 is not supported", n.label());
    if (c.opset >= 18 && n.has_attr("axes")) axes = norm_axes(n.attr_ints("axes"), r, n);
    // Opsets 11-12 pass an empty tensor for the unused one of scales/sizes; 13+ omit it.
    bool has_scales = c.has_input(2) && shape_numel(c.shape(2)) > 0;
    by_sizes = c.has_input(3) && shape_numel(c.shape(3)) > 0;
    if (has_scales == by_sizes) fail(ErrorCode::invalid_model, "{}: exactly one of scales and sizes must be given", n.label());
    if (has_scales) scales = c.value(2).to_doubles();
    else sizes = ints_of(c, 3);
    if (sp.coord == "tf_crop_and_resize") {
      std::vector<double> roi = c.value(1).to_doubles();
      if (roi.size() != 2 * axes.size())
        fail(ErrorCode::invalid_model, "{}: roi has {} values, expected {}", n.label(), roi.size(), 2 * axes.size());
      for (size_t k = 0; k < axes.size(); k++) {
        sp.roi_s[axes[k]] = roi[k];
        sp.roi_e[axes[k]] = roi[k + axes.size()];
      }
    }
  }
  if (std::find(std::begin(kCoordModes), std::end(kCoordModes), sp.coord) == std::end(kCoordModes))
    fail(ErrorCode::invalid_model, "{}: unknown coordinate_transformation_mode '{}'", n.label(), sp.coord);
  if (std::find(std::begin(kNearestModes), std::end(kNearestModes), sp.nearest) == std::end(kNearestModes))
    fail(ErrorCode::invalid_model, "{}: unknown nearest_mode '{}'", n.label(), sp.nearest);
  size_t given = by_sizes ? sizes.size() : scales.size();
  if (given != axes.size())
    fail(ErrorCode::invalid_model, "{}: {} {} for {} axes", n.label(), given, by_sizes ? "sizes" : "scales", axes.size());
  sp.len.assign(s.begin(), s.end());
  if (by_sizes) {
    std::string policy = n.attr_s("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
      fail(ErrorCode::invalid_model, "{}: unknown keep_aspect_ratio_policy '{}'", n.label(), policy);
    double common = policy == "not_larger" ? INFINITY : 0;
    for (size_t k = 0; k < axes.size(); k++) {
      if (sizes[k] < 0) fail(ErrorCode::invalid_input, "{}: negative size {}", n.label(), sizes[k]);
      if (s[axes[k]] == 0) continue;
      double f = (double)sizes[k] / (double)s[axes[k]];
      common = policy == "not_larger" ? std::min(common, f) : std::max(common, f);
    }
    for (size_t k = 0; k < axes.size(); k++) {
      int a = axes[k];
      if (policy == "stretch") {
        sp.out[a] = sizes[k];
      } else {
        double o = std::nearbyint(common * (double)s[a]);
        if (!(o <= (double)(int64_t(1) << 50))) fail(ErrorCode::invalid_input, "{}: output too large", n.label());
        sp.out[a] = (int64_t)o;
      }
      sp.scale[a] = s[a] ? (double)sp.out[a] / (double)s[a] : 1.0;
      sp.len[a] = (double)sp.out[a];
    }
  } else {
    for (size_t k = 0; k < axes.size(); k++) {
      int a = axes[k];
      double v = scales[k];
      if (!(v > 0) || !std::isfinite(v)) fail(ErrorCode::invalid_input, "{}: invalid scale {}", n.label(), v);
      double o = (double)s[a] * v;
      if (sp.coord == "tf_crop_and_resize") o *= sp.roi_e[a] - sp.roi_s[a];
      if (!(o >= 0 && o <= (double)(int64_t(1) << 50)))
        fail(ErrorCode::invalid_input, "{}: scale {} gives an invalid output size on axis {}", n.label(), v, a);
      sp.out[a] = (int64_t)std::floor(o);
      sp.scale[a] = v;
      // The ONNX reference uses the unrounded length; tf_crop_and_resize the real one.
      sp.len[a] = sp.coord == "tf_crop_and_resize" ? (double)sp.out[a] : (double)s[a] * v;
    }
  }
  for (int a = 0; a < r; a++)
    if (s[a] == 0 && sp.out[a] > 0)
      fail(ErrorCode::invalid_input, "{}: cannot resize an empty axis {} to {}", n.label(), a, sp.out[a]);
  check_output_shape(n, sp.out, c.type(0));
  if (sp.mode != "nearest" && c.type(0) != DType::f32 && c.type(0) != DType::f64)
    fail(ErrorCode::unsupported_op, "{}: {} interpolation of {} is not supported", n.label(), sp.mode,
         dtype_name(c.type(0)));
  return sp;
}

void infer_Resize(InferCtx& c) { c.set_output(0, c.type(0), resize_spec(c, false).out); }
void infer_Upsample(InferCtx& c) { c.set_output(0, c.type(0), resize_spec(c, true).out); }

// Input positions (already multiplied by the axis stride) and weights for one output
// coordinate; n == 0 means "outside the crop: use the extrapolation value".
struct Tap {
  int n = 0;
  int64_t off[4];
  double w[4];
};

double original_coord(const ResizeSpec& sp, int a, int64_t x, int64_t in) {
  double scale = sp.scale[a], len = sp.len[a], xr = (double)x;
  const std::string& m = sp.coord;
  if (m == "half_pixel") return (xr + 0.5) / scale - 0.5;
  if (m == "half_pixel_symmetric") {
    double adj = (double)sp.out[a] / (scale * (double)in), center = (double)in / 2;
    return center * (1 - adj) + (xr + 0.5) / scale - 0.5;
  }
  if (m == "pytorch_half_pixel") return len == 1 ? -0.5 : (xr + 0.5) / scale - 0.5;
  if (m == "align_corners") return len == 1 ? 0.0 : xr * (double)(in - 1) / (len - 1);
  if (m == "asymmetric") return xr / scale;
  if (m == "tf_half_pixel_for_nearest") return (xr + 0.5) / scale;
  // tf_crop_and_resize
  double s0 = sp.roi_s[a], s1 = sp.roi_e[a];
  if (len == 1) return (s1 - s0) * (double)(in - 1) / 2 + s0 * (double)(in - 1);
  return xr * (s1 - s0) * (double)(in - 1) / (len - 1) + s0 * (double)(in - 1);
}

double cubic_kernel(double s, double A) {
  s = std::fabs(s);
  if (s <= 1) return ((A + 2) * s - (A + 3)) * s * s + 1;
  if (s < 2) return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A;
  return 0;
}

Tap make_tap(const ResizeSpec& sp, int a, int64_t x, int64_t in, int64_t stride) {
  Tap t;
  double xo = original_coord(sp, a, x, in);
  if (sp.coord == "tf_crop_and_resize" && (xo < 0 || xo > (double)(in - 1))) return t;  // extrapolate
  auto clampi = [&](double v) { return (int64_t)std::clamp(v, 0.0, (double)(in - 1)); };
  if (sp.mode == "nearest") {
    double i;
    if (sp.nearest == "round_prefer_floor") i = std::ceil(xo - 0.5);
    else if (sp.nearest == "round_prefer_ceil") i = std::floor(xo + 0.5);
    else if (sp.nearest == "floor") i = std::floor(xo);
    else if (sp.nearest == "ceil") i = std::ceil(xo);
    else i = sp.scale[a] < 1 ? std::ceil(xo) : std::trunc(xo);  // legacy (ONNX Runtime's "simple")
    t.n = 1;
    t.off[0] = clampi(i) * stride;
    t.w[0] = 1;
  } else if (sp.mode == "linear") {
    double xc = std::clamp(xo, 0.0, (double)(in - 1)), x0 = std::floor(xc), r = xc - x0;
    t.n = r > 0 ? 2 : 1;
    t.off[0] = clampi(x0) * stride;
    t.w[0] = 1 - r;
    t.off[1] = clampi(x0 + 1) * stride;
    t.w[1] = r;
  } else {
    double x0 = std::floor(xo), r = xo - x0, sum = 0;
    t.n = 4;
    for (int k = 0; k < 4; k++) {
      double p = x0 - 1 + k;
      t.w[k] = cubic_kernel(r + 1 - k, sp.cubic_a);
      if (sp.exclude_outside && (p < 0 || p > (double)(in - 1))) t.w[k] = 0;
      sum += t.w[k];
      t.off[k] = clampi(p) * stride;  // edge padding
    }
    if (sp.exclude_outside && sum != 0)
      for (double& w : t.w) w /= sum;
  }
  return t;
}

void ref_resize(KernelCtx& c, bool upsample) {
  InferCtx ic = infer_ctx_of(c);
  ResizeSpec sp = resize_spec(ic, upsample);
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  int r = x.rank();
  if (y.numel() == 0) return;
  if (r == 0) {
    std::memcpy(y.raw(), x.raw(), dtype_size(x.dtype()));
    return;
  }
  std::vector<int64_t> st = shape_strides(x.shape());
  std::vector<std::vector<Tap>> taps(r);
  for (int a = 0; a < r; a++)
    for (int64_t o = 0; o < sp.out[a]; o++) taps[a].push_back(make_tap(sp, a, o, x.dim(a), st[a]));
  int64_t inner = sp.out[r - 1], rows = y.numel() / inner;
  const std::vector<Tap>& last = taps[r - 1];

  if (sp.mode == "nearest") {
    uint64_t ebits = scalar_bits(x.dtype(), sp.extrapolation, c.node);
    dispatch_bytes(x.dtype(), c.node, [&](auto tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      T e;
      std::memcpy(&e, &ebits, sizeof(T));
      const T* in = static_cast<const T*>(x.raw());
      T* out = static_cast<T*>(y.raw());
#pragma omp parallel for if (y.numel() > (1 << 16))
      for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = 0;
        bool outside = false;
        for (int d = r - 2; d >= 0; d--) {
          const Tap& t = taps[d][rem % sp.out[d]];
          rem /= sp.out[d];
          if (t.n == 0) outside = true;
          else off += t.off[0];
        }
        T* dst = out + row * inner;
        for (int64_t k = 0; k < inner; k++) dst[k] = outside || last[k].n == 0 ? e : in[off + last[k].off[0]];
      }
    });
    return;
  }

  auto run = [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* in = static_cast<const T*>(x.raw());
    T* out = static_cast<T*>(y.raw());
    T e = (T)sp.extrapolation;
#pragma omp parallel if (y.numel() > (1 << 14))
    {
      // (offset, weight) of every combination of the outer axes' taps for one row;
      // per-thread buffers, reused across rows.
      std::vector<int64_t> coff, noff;
      std::vector<double> cw, nw;
#pragma omp for
      for (int64_t row = 0; row < rows; row++) {
        coff.assign(1, 0);
        cw.assign(1, 1.0);
        int64_t rem = row;
        bool outside = false;
        for (int d = r - 2; d >= 0; d--) {
          const Tap& t = taps[d][rem % sp.out[d]];
          rem /= sp.out[d];
          if (t.n == 0) {
            outside = true;
            break;
          }
          noff.clear();
          nw.clear();
          for (size_t i = 0; i < coff.size(); i++)
            for (int j = 0; j < t.n; j++) {
              if (t.w[j] == 0) continue;
              noff.push_back(coff[i] + t.off[j]);
              nw.push_back(cw[i] * t.w[j]);
            }
          coff.swap(noff);
          cw.swap(nw);
        }
        T* dst = out + row * inner;
        for (int64_t k = 0; k < inner; k++) {
          const Tap& t = last[k];
          if (outside || t.n == 0) {
            dst[k] = e;
            continue;
          }
          double acc = 0;
          for (size_t i = 0; i < coff.size(); i++) {
            double part = 0;
            for (int j = 0; j < t.n; j++) part += t.w[j] * (double)in[coff[i] + t.off[j]];
            acc += cw[i] * part;
          }
          dst[k] = (T)acc;
        }
      }
    }
  };
  if (x.dtype() == DType::f32) run((float*)nullptr);
  else run((double*)nullptr);
}

void ref_Resize(KernelCtx& c) { ref_resize(c, false); }
void ref_Upsample(KernelCtx& c) { ref_resize(c, true); }

}  // namespace

const OpDef kOp_Resize{"Resize", infer_Resize, ref_Resize};
const OpDef kOp_Upsample{"Upsample", infer_Upsample, ref_Upsample};

}  // namespace rg

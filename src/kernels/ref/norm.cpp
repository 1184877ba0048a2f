// Normalisations: BatchNormalization (inference form), InstanceNormalization,
// LayerNormalization, LRN and MeanVarianceNormalization.
//
// Statistics accumulate in double: these kernels are the oracle, and float32 sums over
// large spatial extents lose digits the fast kernels are compared against.
#include <cmath>

#include "kernels/ref/common.h"

namespace rg {
namespace {

// [N, C, spatial...] -> N, C and the spatial size S.
void ncs(const Shape& s, int64_t& n, int64_t& ch, int64_t& sp) {
  n = s[0];
  ch = s[1];
  sp = 1;
  for (size_t i = 2; i < s.size(); i++) sp *= s[i];
}

void require_rank(const InferCtx& c, int min_rank) {
  if (c.rank(0) < min_rank)
    fail(ErrorCode::invalid_model, "{}: input must have rank >= {}, has shape {}", c.node.label(), min_rank,
         shape_str(c.shape(0)));
}

// ---- BatchNormalization: y = (x - mean) / sqrt(var + eps) * scale + B, per channel.

void infer_batchnorm(InferCtx& c) {
  c.require_inputs(5, 5);
  for (int i = 0; i < 5; i++) c.require_float(i);
  require_rank(c, 2);
  // Training is training_mode=1, or asking for the running statistics (the extra outputs
  // of every opset). Old models' is_test flag is ignored: with only Y requested, the
  // inference formula is what exporters meant.
  bool training = c.node.attr_i("training_mode", 0) != 0;
  for (size_t i = 1; i < c.node.outputs.size(); i++) training |= !c.node.outputs[i].empty();
  if (training)
    fail(ErrorCode::unsupported_op, "{}: training mode (batch statistics, running-mean outputs) is not supported",
         c.node.label());
  int64_t n, ch, sp;
  ncs(c.shape(0), n, ch, sp);
  // Per channel; or, for the opset < 9 spatial=0 form, per channel and position (all
  // four parameters alike: the kernel indexes them the same way).
  int64_t k = shape_numel(c.shape(1));
  for (int i = 1; i < 5; i++) {
    if (shape_numel(c.shape(i)) != k || (k != ch && !(c.opset < 9 && c.node.attr_i("spatial", 1) == 0 && k == ch * sp)))
      fail(ErrorCode::invalid_model, "{}: input {} has shape {}, expected [{}]", c.node.label(), i,
           shape_str(c.shape(i)), ch);
  }
  c.set_output(0, DType::f32, c.shape(0));
}

void ref_BatchNormalization(KernelCtx& c) {
  const Tensor& X = c.input(0);
  int64_t n, ch, sp;
  ncs(X.shape(), n, ch, sp);
  double eps = c.node.attr_f("epsilon", 1e-5f);
  const float *scale = c.input(1).data<float>(), *bias = c.input(2).data<float>(),
              *mean = c.input(3).data<float>(), *var = c.input(4).data<float>();
  int64_t per = c.input(1).numel() == ch ? 1 : sp;  // parameters per channel
  // Folded into y = x * a + b per parameter.
  std::vector<float> a(ch * per), b(ch * per);
  for (int64_t i = 0; i < ch * per; i++) {
    double s = scale[i] / std::sqrt((double)var[i] + eps);
    a[i] = (float)s;
    b[i] = (float)(bias[i] - mean[i] * s);
  }
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
#pragma omp parallel for if (n * ch * sp > (1 << 16))
  for (int64_t nc = 0; nc < n * ch; nc++) {
    int64_t k = nc % ch;
    const float* xp = x + nc * sp;
    float* yp = y + nc * sp;
    if (per == 1)
      for (int64_t s = 0; s < sp; s++) yp[s] = xp[s] * a[k] + b[k];
    else
      for (int64_t s = 0; s < sp; s++) yp[s] = xp[s] * a[k * sp + s] + b[k * sp + s];
  }
}

// ---- InstanceNormalization: statistics per (n, c) over the spatial dims.

void infer_instancenorm(InferCtx& c) {
  c.require_inputs(3, 3);
  for (int i = 0; i < 3; i++) c.require_float(i);
  require_rank(c, 2);
  for (int i = 1; i < 3; i++)
    if (shape_numel(c.shape(i)) != c.shape(0)[1])
      fail(ErrorCode::invalid_model, "{}: input {} has shape {}, expected [{}]", c.node.label(), i,
           shape_str(c.shape(i)), c.shape(0)[1]);
  c.set_output(0, DType::f32, c.shape(0));
}

// Population mean and 1/sqrt(var + eps) of p[0..n).
void moments(const float* p, int64_t n, double eps, double& mean, double& inv_std) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += p[i];
  mean = n ? s / n : 0;
  double v = 0;
  for (int64_t i = 0; i < n; i++) v += (p[i] - mean) * (p[i] - mean);
  v = n ? v / n : 0;
  inv_std = 1.0 / std::sqrt(v + eps);
}

void ref_InstanceNormalization(KernelCtx& c) {
  const Tensor& X = c.input(0);
  int64_t n, ch, sp;
  ncs(X.shape(), n, ch, sp);
  double eps = c.node.attr_f("epsilon", 1e-5f);
  const float *scale = c.input(1).data<float>(), *bias = c.input(2).data<float>();
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
#pragma omp parallel for if (n * ch * sp > (1 << 16))
  for (int64_t nc = 0; nc < n * ch; nc++) {
    int64_t k = nc % ch;
    double mean, inv;
    moments(x + nc * sp, sp, eps, mean, inv);
    for (int64_t s = 0; s < sp; s++) y[nc * sp + s] = (float)((x[nc * sp + s] - mean) * inv * scale[k] + bias[k]);
  }
}

// ---- LayerNormalization (opset 17): statistics per row of X flattened at `axis`;
// Scale and B broadcast to X.shape[axis:]. Optional outputs Mean and InvStdDev have shape
// X.shape[:axis] + [1] * (rank - axis).

// Scale/B's shape aligned to the normalised shape (extra leading 1s dropped).
Shape param_shape(const Node& n, const Shape& p, const Shape& norm) {
  Shape s = p;
  while (s.size() > norm.size() && s[0] == 1) s.erase(s.begin());
  if (s.size() > norm.size() || broadcast_shapes(norm, s, n) != norm)
    fail(ErrorCode::invalid_model, "{}: parameter shape {} does not broadcast to {}", n.label(), shape_str(p),
         shape_str(norm));
  return s;
}

void infer_layernorm(InferCtx& c) {
  c.require_inputs(2, 3);
  for (int i = 0; i < 3; i++)
    if (c.has_input(i)) c.require_float(i);
  require_rank(c, 1);
  int r = c.rank(0);
  int a = norm_axis(c.node.attr_i("axis", -1), r, c.node);
  Shape norm(c.shape(0).begin() + a, c.shape(0).end());
  for (int i = 1; i < 3; i++)
    if (c.has_input(i)) param_shape(c.node, c.shape(i), norm);
  c.set_output(0, DType::f32, c.shape(0));
  Shape stat(c.shape(0).begin(), c.shape(0).begin() + a);
  stat.resize(r, 1);
  for (int i = 1; i < 3; i++)
    if ((int)c.node.outputs.size() > i && !c.node.outputs[i].empty()) c.set_output(i, DType::f32, stat);
}

// Expands a parameter to one value per position of the normalised shape.
std::vector<float> expand_param(const Node& n, const Tensor& p, const Shape& norm) {
  std::vector<float> r((size_t)shape_numel(norm));
  const float* v = p.data<float>();
  for_each_broadcast2(norm, norm, param_shape(n, p.shape(), norm),
                      [&](int64_t o, int64_t, int64_t j) { r[o] = v[j]; });
  return r;
}

void ref_LayerNormalization(KernelCtx& c) {
  const Tensor& X = c.input(0);
  int a = norm_axis(c.node.attr_i("axis", -1), X.rank(), c.node);
  Shape norm(X.shape().begin() + a, X.shape().end());
  int64_t cols = shape_numel(norm), rows = cols ? X.numel() / cols : shape_numel(Shape(X.shape().begin(), X.shape().begin() + a));
  double eps = c.node.attr_f("epsilon", 1e-5f);
  std::vector<float> w = expand_param(c.node, c.input(1), norm);
  std::vector<float> b = c.has_input(2) ? expand_param(c.node, c.input(2), norm) : std::vector<float>(cols, 0.f);
  float* mean_out = c.out.size() > 1 && c.out[1] ? c.out[1]->data<float>() : nullptr;
  float* inv_out = c.out.size() > 2 && c.out[2] ? c.out[2]->data<float>() : nullptr;
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
#pragma omp parallel for if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; r++) {
    double mean, inv;
    moments(x + r * cols, cols, eps, mean, inv);
    for (int64_t j = 0; j < cols; j++) y[r * cols + j] = (float)((x[r * cols + j] - mean) * inv) * w[j] + b[j];
    if (mean_out) mean_out[r] = (float)mean;
    if (inv_out) inv_out[r] = (float)inv;
  }
}

// ---- LRN: y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta.

void infer_lrn(InferCtx& c) {
  c.require_inputs(1, 1);
  c.require_float(0);
  require_rank(c, 2);
  if (c.node.attr_i("size", 0) < 1)
    fail(ErrorCode::invalid_model, "{}: attribute size must be >= 1", c.node.label());
  c.set_output(0, DType::f32, c.shape(0));
}

void ref_LRN(KernelCtx& c) {
  const Tensor& X = c.input(0);
  int64_t n, ch, sp;
  ncs(X.shape(), n, ch, sp);
  int64_t size = c.node.attr_i("size", 1);
  double alpha = c.node.attr_f("alpha", 1e-4f), beta = c.node.attr_f("beta", 0.75f),
         bias = c.node.attr_f("bias", 1.f);
  // The window is [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to the channels.
  int64_t before = (size - 1) / 2, after = size - 1 - before;
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
#pragma omp parallel for if (n * ch * sp > (1 << 16))
  for (int64_t nc = 0; nc < n * ch; nc++) {
    int64_t b = nc / ch, k = nc % ch;
    int64_t lo = std::max<int64_t>(0, k - before), hi = std::min<int64_t>(ch - 1, k + after);
    for (int64_t s = 0; s < sp; s++) {
      double sq = 0;
      for (int64_t j = lo; j <= hi; j++) {
        double v = x[(b * ch + j) * sp + s];
        sq += v * v;
      }
      y[nc * sp + s] = (float)(x[nc * sp + s] / std::pow(bias + alpha / size * sq, beta));
    }
  }
}

// ---- MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) over `axes`
// (default [0, 2, 3]), with the ONNX function's epsilon added to the standard deviation.

Shape mvn_keep(const Node& n, const Shape& s) {
  Shape k = s;
  std::vector<bool> seen(s.size(), false);
  for (int64_t a : n.attr_ints("axes", {0, 2, 3})) {
    int i = norm_axis(a, (int)s.size(), n);
    if (seen[i]) fail(ErrorCode::invalid_model, "{}: axis {} is listed twice", n.label(), a);
    seen[i] = true;
    k[i] = 1;
  }
  return k;
}

void infer_mvn(InferCtx& c) {
  c.require_inputs(1, 1);
  c.require_float(0);
  mvn_keep(c.node, c.shape(0));
  c.set_output(0, DType::f32, c.shape(0));
}

void ref_MeanVarianceNormalization(KernelCtx& c) {
  const Tensor& X = c.input(0);
  const Shape& s = X.shape();
  Shape keep = mvn_keep(c.node, s);
  int64_t groups = shape_numel(keep), count = groups ? X.numel() / groups : 0;
  std::vector<double> mean(groups, 0.0), var(groups, 0.0);
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
  for_each_broadcast2(s, s, keep, [&](int64_t i, int64_t, int64_t g) { mean[g] += x[i]; });
  for (double& m : mean) m /= count;
  for_each_broadcast2(s, s, keep, [&](int64_t i, int64_t, int64_t g) { var[g] += (x[i] - mean[g]) * (x[i] - mean[g]); });
  for (double& v : var) v = std::sqrt(v / count) + 1e-9;
  for_each_broadcast2(s, s, keep, [&](int64_t i, int64_t, int64_t g) { y[i] = (float)((x[i] - mean[g]) / var[g]); });
}

}  // namespace

const OpDef kOp_BatchNormalization{"BatchNormalization", infer_batchnorm, ref_BatchNormalization};
const OpDef kOp_InstanceNormalization{"InstanceNormalization", infer_instancenorm, ref_InstanceNormalization};
const OpDef kOp_LayerNormalization{"LayerNormalization", infer_layernorm, ref_LayerNormalization};
const OpDef kOp_LRN{"LRN", infer_lrn, ref_LRN};
const OpDef kOp_MeanVarianceNormalization{"MeanVarianceNormalization", infer_mvn, ref_MeanVarianceNormalization};

}  // namespace rg

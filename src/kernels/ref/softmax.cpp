// Softmax, LogSoftmax and Hardmax.
//
// Before opset 13 these coerce the input to 2-D at `axis` (default 1) and normalise each
// row of the flattened [prod(dims[:axis]), prod(dims[axis:])] matrix; from opset 13 they
// normalise along the single dimension `axis` (default -1). Both are "outer x len x inner"
// loops, with inner == 1 in the old form.
#include <cmath>

#include "kernels/ref/common.h"

namespace rg {
namespace {

struct Span3 {
  int64_t outer = 1, len = 1, inner = 1;
};

Span3 softmax_span(const Node& n, int64_t opset, const Shape& s) {
  int r = (int)s.size();
  Span3 sp;
  if (opset < 13) {
    int a = r == 0 ? 0 : norm_axis(n.attr_i("axis", 1), r, n);
    for (int i = 0; i < r; i++) (i < a ? sp.outer : sp.len) *= s[i];
  } else {
    int a = norm_axis(n.attr_i("axis", -1), r, n);
    if (r == 0) fail(ErrorCode::invalid_model, "{}: input must have rank >= 1", n.label());
    for (int i = 0; i < r; i++) (i < a ? sp.outer : i == a ? sp.len : sp.inner) *= s[i];
  }
  return sp;
}

void infer_softmax(InferCtx& c) {
  c.require_inputs(1, 1);
  c.require_float(0);
  softmax_span(c.node, c.opset, c.shape(0));  // validates axis
  c.set_output(0, c.type(0), c.shape(0));
}

enum class Kind { softmax, log_softmax, hardmax };

void run(KernelCtx& c, Kind kind) {
  const Tensor& X = c.input(0);
  Tensor& Y = c.output(0);
  Span3 sp = softmax_span(c.node, c.opset, X.shape());
  const float* x = X.data<float>();
  float* y = Y.data<float>();
  const int64_t len = sp.len, inner = sp.inner, lines = sp.outer * sp.inner;
  if (len == 0) return;
#pragma omp parallel for if (lines * len > (1 << 15))
  for (int64_t l = 0; l < lines; l++) {
    int64_t base = (l / inner) * len * inner + l % inner;
    const float* xl = x + base;
    float* yl = y + base;
    // Subtracting the maximum keeps exp() from overflowing (the large_number tests).
    float mx = xl[0];
    int64_t arg = 0;
    for (int64_t k = 1; k < len; k++)
      if (xl[k * inner] > mx) mx = xl[k * inner], arg = k;
    if (kind == Kind::hardmax) {
      for (int64_t k = 0; k < len; k++) yl[k * inner] = k == arg ? 1.f : 0.f;
      continue;
    }
    double sum = 0;
    for (int64_t k = 0; k < len; k++) {
      float e = std::exp(xl[k * inner] - mx);
      if (kind == Kind::softmax) yl[k * inner] = e;
      sum += e;
    }
    if (kind == Kind::softmax) {
      float inv = (float)(1.0 / sum);
      for (int64_t k = 0; k < len; k++) yl[k * inner] *= inv;
    } else {
      // (x - max) - log(sum), not x - (max + log(sum)): the latter loses the small result
      // in the rounding of a large max.
      float ls = (float)std::log(sum);
      for (int64_t k = 0; k < len; k++) yl[k * inner] = (xl[k * inner] - mx) - ls;
    }
  }
}

void ref_Softmax(KernelCtx& c) { run(c, Kind::softmax); }
void ref_LogSoftmax(KernelCtx& c) { run(c, Kind::log_softmax); }
void ref_Hardmax(KernelCtx& c) { run(c, Kind::hardmax); }

}  // namespace

const OpDef kOp_Softmax{"Softmax", infer_softmax, ref_Softmax};
const OpDef kOp_LogSoftmax{"LogSoftmax", infer_softmax, ref_LogSoftmax};
const OpDef kOp_Hardmax{"Hardmax", infer_softmax, ref_Hardmax};

}  // namespace rg

// Pooling: MaxPool (with Indices), AveragePool, LpPool, their Global forms, MaxUnpool.
//
// One window walker serves the windowed pools: spatial dims are padded to 3 (D, H, W) with
// unit leading dims, each (image, channel) plane is one parallel work item, and for every
// output position the walker visits the in-bounds taps. Pads must be narrower than the
// window; a window that still covers no input (dilation stepping over a small input) gives
// the lowest value (index -1) for MaxPool and 0 for the other pools.
#include <cmath>
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/ref/window.h"

namespace rg {
namespace {

struct Pool3 {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
};

Pool3 pool3(const WindowParams& w, const Node& n) {
  const int sp = w.spatial();
  if (sp > 3) fail(ErrorCode::unsupported_op, "{}: {} spatial dims are not supported (at most 3)", n.label(), sp);
  Pool3 g;
  for (int i = 0; i < sp; i++) {
    int j = 3 - sp + i;
    g.in[j] = w.in[i];
    g.out[j] = w.out[i];
    g.k[j] = w.kernel[i];
    g.s[j] = w.strides[i];
    g.d[j] = w.dilations[i];
    g.pb[j] = w.pads_begin[i];
    g.pe[j] = w.pads_end[i];
  }
  return g;
}

WindowParams pool_window(const Node& n, const Shape& x) {
  if (x.size() < 3)
    fail(ErrorCode::invalid_model, "{}: input has shape {}, expected N, C and spatial dims", n.label(), shape_str(x));
  std::vector<int64_t> k = window_kernel(n, (int)x.size() - 2);
  WindowParams w = window_params(n, x, k, n.attr_i("ceil_mode", 0) != 0, false);
  // A pad as wide as the window makes border windows that see only padding (PyTorch
  // even requires pad <= kernel / 2); no exporter writes that, so it is a model error.
  for (int i = 0; i < w.spatial(); i++)
    if (w.pads_begin[i] >= w.effective_kernel(i) || w.pads_end[i] >= w.effective_kernel(i))
      fail(ErrorCode::invalid_model, "{}: pads {}/{} must be smaller than the window extent {} (spatial dim {})",
           n.label(), w.pads_begin[i], w.pads_end[i], w.effective_kernel(i), i);
  return w;
}

// Element types the max-based ops handle (dispatch_numeric's set).
void require_numeric(const InferCtx& c, int i) {
  DType t = c.type(i);
  if (t == DType::f16 || t == DType::bf16 || (!dtype_is_float(t) && !dtype_is_int(t)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(t));
}

Shape pooled_shape(const Shape& x, const std::vector<int64_t>& spatial) {
  Shape s{x[0], x[1]};
  s.insert(s.end(), spatial.begin(), spatial.end());
  return s;
}

// The in-bounds taps of one window.
struct Taps {
  int64_t lo[3], hi[3];  // valid tap index range per dim: t in [lo, hi)
  int64_t org[3];        // input coordinate of tap 0
};

// Valid taps of the window at output coordinate o in dim i: t with 0 <= org + t*d < in.
inline void tap_range(const Pool3& g, int i, int64_t o, Taps& t) {
  const int64_t org = o * g.s[i] - g.pb[i], d = g.d[i];
  t.org[i] = org;
  t.lo[i] = org >= 0 ? 0 : std::min(g.k[i], (-org + d - 1) / d);
  t.hi[i] = org >= g.in[i] ? 0 : std::min(g.k[i], (g.in[i] - 1 - org) / d + 1);
  if (t.hi[i] < t.lo[i]) t.hi[i] = t.lo[i];
}

// Runs f(plane, out_offset, taps) over all (plane, output position) pairs, planes in parallel.
template <typename F>
void walk(const Pool3& g, int64_t planes, F&& f) {
#pragma omp parallel for schedule(static) if (planes * g.out_size() > (1 << 12))
  for (int64_t p = 0; p < planes; p++) {
    Taps t;
    int64_t o = 0;
    for (int64_t od = 0; od < g.out[0]; od++) {
      tap_range(g, 0, od, t);
      for (int64_t oh = 0; oh < g.out[1]; oh++) {
        tap_range(g, 1, oh, t);
        for (int64_t ow = 0; ow < g.out[2]; ow++, o++) {
          tap_range(g, 2, ow, t);
          f(p, o, t);
        }
      }
    }
  }
}

// Input offset of tap (a, b, c) within a plane.
inline int64_t tap_index(const Pool3& g, const Taps& t, int64_t a, int64_t b, int64_t c) {
  return ((t.org[0] + a * g.d[0]) * g.in[1] + (t.org[1] + b * g.d[1])) * g.in[2] + (t.org[2] + c * g.d[2]);
}

void infer_MaxPool(InferCtx& c) {
  c.require_inputs(1, 1);
  require_numeric(c, 0);
  WindowParams w = pool_window(c.node, c.shape(0));
  Shape out = pooled_shape(c.shape(0), w.out);
  c.set_output(0, c.type(0), out);
  if (c.node.outputs.size() > 1 && !c.node.outputs[1].empty()) c.set_output(1, DType::i64, out);
}

void ref_MaxPool(KernelCtx& c) {
  const Tensor& X = c.input(0);
  WindowParams w = pool_window(c.node, X.shape());
  const Pool3 g = pool3(w, c.node);
  const int64_t planes = X.dim(0) * X.dim(1), IS = g.in_size(), OS = g.out_size();
  const bool col_major = c.node.attr_i("storage_order", 0) != 0;
  int64_t* ind = c.out.size() > 1 && c.out[1] ? c.output(1).data<int64_t>() : nullptr;
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = X.data<T>();
    T* y = c.output(0).data<T>();
    walk(g, planes, [&](int64_t p, int64_t o, const Taps& t) {
      const T* xp = x + p * IS;
      T best = std::numeric_limits<T>::lowest();
      int64_t at = -1;
      for (int64_t a = t.lo[0]; a < t.hi[0]; a++)
        for (int64_t b = t.lo[1]; b < t.hi[1]; b++)
          for (int64_t cc = t.lo[2]; cc < t.hi[2]; cc++) {
            int64_t i = tap_index(g, t, a, b, cc);
            if (at < 0 || xp[i] > best) {
              best = xp[i];
              at = i;
            }
          }
      y[p * OS + o] = best;
      if (ind) {
        int64_t idx = at;
        if (at >= 0 && col_major) {
          // Column-major over the spatial dims: the first spatial dim varies fastest.
          int64_t id = at / (g.in[1] * g.in[2]), ih = at / g.in[2] % g.in[1], iw = at % g.in[2];
          idx = (iw * g.in[1] + ih) * g.in[0] + id;
        }
        ind[p * OS + o] = at >= 0 ? p * IS + idx : -1;
      }
    });
  });
}

void infer_pool_float(InferCtx& c) {
  c.require_inputs(1, 1);
  c.require_float(0);
  WindowParams w = pool_window(c.node, c.shape(0));
  c.set_output(0, DType::f32, pooled_shape(c.shape(0), w.out));
}

void ref_AveragePool(KernelCtx& c) {
  const Tensor& X = c.input(0);
  WindowParams w = pool_window(c.node, X.shape());
  const Pool3 g = pool3(w, c.node);
  const int64_t planes = X.dim(0) * X.dim(1), IS = g.in_size(), OS = g.out_size();
  const bool include_pad = c.node.attr_i("count_include_pad", 0) != 0;
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
  walk(g, planes, [&](int64_t p, int64_t o, const Taps& t) {
    const float* xp = x + p * IS;
    float sum = 0;
    for (int64_t a = t.lo[0]; a < t.hi[0]; a++)
      for (int64_t b = t.lo[1]; b < t.hi[1]; b++)
        for (int64_t cc = t.lo[2]; cc < t.hi[2]; cc++) sum += xp[tap_index(g, t, a, b, cc)];
    int64_t count = 1;
    for (int i = 0; i < 3; i++) {
      if (!include_pad) {
        count *= t.hi[i] - t.lo[i];
        continue;
      }
      // Taps inside the padded input [-pads_begin, in + pads_end); the part of a ceil_mode
      // window hanging past the end padding does not count.
      int64_t n = 0;
      for (int64_t k = 0; k < g.k[i]; k++) {
        int64_t pos = t.org[i] + k * g.d[i];
        n += pos >= -g.pb[i] && pos < g.in[i] + g.pe[i];
      }
      count *= n;
    }
    y[p * OS + o] = count > 0 ? sum / (float)count : 0.f;
  });
}

void ref_LpPool(KernelCtx& c) {
  const Tensor& X = c.input(0);
  WindowParams w = pool_window(c.node, X.shape());
  const Pool3 g = pool3(w, c.node);
  const int64_t planes = X.dim(0) * X.dim(1), IS = g.in_size(), OS = g.out_size();
  const float p_norm = (float)c.node.attr_i("p", 2);
  const float* x = X.data<float>();
  float* y = c.output(0).data<float>();
  walk(g, planes, [&](int64_t p, int64_t o, const Taps& t) {
    const float* xp = x + p * IS;
    float sum = 0;
    for (int64_t a = t.lo[0]; a < t.hi[0]; a++)
      for (int64_t b = t.lo[1]; b < t.hi[1]; b++)
        for (int64_t cc = t.lo[2]; cc < t.hi[2]; cc++) sum += std::pow(std::fabs(xp[tap_index(g, t, a, b, cc)]), p_norm);
    y[p * OS + o] = std::pow(sum, 1.f / p_norm);
  });
}

// Global pools: one value per (image, channel) plane; output keeps the rank, spatial dims 1.
void infer_global(InferCtx& c) {
  c.require_inputs(1, 1);
  if (c.node.op_type == "GlobalMaxPool") {
    require_numeric(c, 0);
  } else {
    c.require_float(0);
  }
  const Shape& x = c.shape(0);
  if (x.size() < 2)
    fail(ErrorCode::invalid_model, "{}: input has shape {}, expected N, C and spatial dims", c.node.label(), shape_str(x));
  Shape out = x;
  for (size_t i = 2; i < out.size(); i++) out[i] = 1;
  c.set_output(0, c.type(0), out);
}

template <typename T, typename F>
void global_reduce(KernelCtx& c, F&& reduce) {
  const Tensor& X = c.input(0);
  const int64_t planes = X.dim(0) * X.dim(1), IS = planes ? X.numel() / planes : 0;
  const T* x = X.data<T>();
  T* y = c.output(0).data<T>();
#pragma omp parallel for schedule(static) if (X.numel() > (1 << 15))
  for (int64_t p = 0; p < planes; p++) y[p] = reduce(x + p * IS, IS);
}

void ref_GlobalAveragePool(KernelCtx& c) {
  global_reduce<float>(c, [](const float* x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return n ? s / (float)n : 0.f;
  });
}

void ref_GlobalMaxPool(KernelCtx& c) {
  dispatch_numeric(c.input(0).dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    global_reduce<T>(c, [](const T* x, int64_t n) {
      T m = std::numeric_limits<T>::lowest();
      for (int64_t i = 0; i < n; i++) m = i == 0 || x[i] > m ? x[i] : m;
      return m;
    });
  });
}

void ref_GlobalLpPool(KernelCtx& c) {
  const float p_norm = (float)c.node.attr_i("p", 2);
  global_reduce<float>(c, [p_norm](const float* x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += std::pow(std::fabs(x[i]), p_norm);
    return std::pow(s, 1.f / p_norm);
  });
}

// MaxUnpool: scatter X into a zero tensor at the positions given by I (MaxPool's Indices).
// Indices are flat positions in the "natural" unpooled shape, the inverse of the pooling
// window: (in - 1) * stride + kernel - pads_begin - pads_end per spatial dim. When the
// optional output_shape input asks for a larger shape (MaxPool's floor mode dropped a
// border), each position keeps its coordinates there, as the ONNX reference does.
Shape unpool_natural_shape(const Node& n, const Shape& x) {
  if (x.size() < 3)
    fail(ErrorCode::invalid_model, "{}: input has shape {}, expected N, C and spatial dims", n.label(), shape_str(x));
  const int sp = (int)x.size() - 2;
  std::vector<int64_t> k = window_kernel(n, sp);
  std::vector<int64_t> strides = n.attr_ints("strides", std::vector<int64_t>(sp, 1));
  std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * sp, 0));
  if ((int)strides.size() != sp || (int)pads.size() != 2 * sp)
    fail(ErrorCode::invalid_model, "{}: strides and pads need {} and {} values", n.label(), sp, 2 * sp);
  Shape out = x;
  for (int i = 0; i < sp; i++) {
    if (strides[i] < 1 || pads[i] < 0 || pads[sp + i] < 0)
      fail(ErrorCode::invalid_model, "{}: strides must be >= 1 and pads >= 0", n.label());
    out[2 + i] = (x[2 + i] - 1) * strides[i] + k[i] - pads[i] - pads[sp + i];
    if (out[2 + i] < 1) fail(ErrorCode::invalid_model, "{}: pads leave no output in spatial dim {}", n.label(), i);
  }
  return out;
}

void infer_MaxUnpool(InferCtx& c) {
  c.require_inputs(2, 3);
  require_numeric(c, 0);
  if (c.type(1) != DType::i64)
    fail(ErrorCode::invalid_model, "{}: indices must be int64, got {}", c.node.label(), dtype_name(c.type(1)));
  if (c.shape(1) != c.shape(0))
    fail(ErrorCode::invalid_input, "{}: indices shape {} differs from input shape {}", c.node.label(),
         shape_str(c.shape(1)), shape_str(c.shape(0)));
  Shape natural = unpool_natural_shape(c.node, c.shape(0));
  if (!c.has_input(2)) {
    c.set_output(0, c.type(0), natural);
    return;
  }
  std::vector<int64_t> s = ints_of(c, 2);
  if (s.size() != natural.size() || s[0] != natural[0] || s[1] != natural[1])
    fail(ErrorCode::invalid_input, "{}: output_shape {} does not fit input {} (rank, N and C must match)",
         c.node.label(), shape_str(s), shape_str(c.shape(0)));
  c.set_output(0, c.type(0), s);
}

void ref_MaxUnpool(KernelCtx& c) {
  const Tensor& X = c.input(0);
  const int64_t* idx = c.input(1).data<int64_t>();
  Tensor& Y = c.output(0);
  const Shape natural = unpool_natural_shape(c.node, X.shape());
  const Shape& out = Y.shape();
  const int64_t n = X.numel(), natural_total = shape_numel(natural), total = Y.numel();
  dispatch_numeric(X.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* x = X.data<T>();
    T* y = Y.data<T>();
    std::fill(y, y + total, T(0));
    for (int64_t i = 0; i < n; i++) {
      if (idx[i] < 0 || idx[i] >= natural_total)
        fail(ErrorCode::invalid_input, "{}: index {} is outside the unpooled shape {}", c.node.label(), idx[i],
             shape_str(natural));
      // Re-encode the coordinates of idx (in `natural`) in the output shape.
      int64_t rest = idx[i], pos = 0, scale = 1;
      for (int d = (int)natural.size() - 1; d >= 0; d--) {
        const int64_t coord = rest % natural[d];
        rest /= natural[d];
        if (coord >= out[d])
          fail(ErrorCode::invalid_input, "{}: index {} falls outside output_shape {}", c.node.label(), idx[i],
               shape_str(out));
        pos += coord * scale;
        scale *= out[d];
      }
      y[pos] = x[i];
    }
  });
}

}  // namespace

const OpDef kOp_MaxPool{"MaxPool", infer_MaxPool, ref_MaxPool};
const OpDef kOp_AveragePool{"AveragePool", infer_pool_float, ref_AveragePool};
const OpDef kOp_LpPool{"LpPool", infer_pool_float, ref_LpPool};
const OpDef kOp_GlobalAveragePool{"GlobalAveragePool", infer_global, ref_GlobalAveragePool};
const OpDef kOp_GlobalMaxPool{"GlobalMaxPool", infer_global, ref_GlobalMaxPool};
const OpDef kOp_GlobalLpPool{"GlobalLpPool", infer_global, ref_GlobalLpPool};
const OpDef kOp_MaxUnpool{"MaxUnpool", infer_MaxUnpool, ref_MaxUnpool};

}  // namespace rg

// Indexed data movement: Slice, Gather, GatherElements, GatherND, ScatterElements (and its
// deprecated twin Scatter), ScatterND, Compress.
// Indices come from data, so every one is range-checked (negative ones wrap once) and a bad
// one is an invalid_input error, never an out-of-bounds access.
#include <algorithm>
#include <limits>
#include <numeric>

#include "kernels/ref/movement.h"

namespace rg {
namespace {

int64_t prod(const Shape& s, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; i++) p *= s[i];
  return p;
}

void require_index_type(const InferCtx& c, int i) {
  if (c.type(i) != DType::i64 && c.type(i) != DType::i32)
    fail(ErrorCode::invalid_model, "{}: indices must be int32 or int64, got {}", c.node.label(), dtype_name(c.type(i)));
}

}  // namespace

// ---- Slice ------------------------------------------------------------------------------

SliceSpec slice_spec(const InferCtx& c) {
  const Node& n = c.node;
  const Shape& s = c.shape(0);
  int r = (int)s.size();
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_axes, has_steps = false;
  if (c.opset < 10) {
    c.require_inputs(1, 1);
    starts = n.attr_ints("starts");
    ends = n.attr_ints("ends");
    has_axes = n.has_attr("axes");
    axes = n.attr_ints("axes");
  } else {
    c.require_inputs(3, 5);
    starts = ints_of(c, 1);
    ends = ints_of(c, 2);
    has_axes = c.has_input(3);
    if (has_axes) axes = ints_of(c, 3);
    has_steps = c.has_input(4);
    if (has_steps) steps = ints_of(c, 4);
  }
  if (!has_axes) {
    axes.resize(starts.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (!has_steps) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    fail(ErrorCode::invalid_model, "{}: starts, ends, axes and steps have different lengths ({}, {}, {}, {})", n.label(),
         starts.size(), ends.size(), axes.size(), steps.size());
  SliceSpec sp{s, std::vector<int64_t>(r, 0), std::vector<int64_t>(r, 1)};
  std::vector<int> ax = norm_axes(axes, r, n);
  for (size_t k = 0; k < ax.size(); k++) {
    int a = ax[k];
    int64_t d = s[a], st = steps[k], b = starts[k], e = ends[k];
    if (st == 0) fail(ErrorCode::invalid_input, "{}: step 0 on axis {}", n.label(), a);
    if (b < 0) b += d;
    if (e < 0) e += d;
    int64_t len = 0;
    if (d == 0) {
      b = 0;
    } else if (st > 0) {
      b = std::clamp<int64_t>(b, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      len = e > b ? (e - b - 1) / st + 1 : 0;
    } else {
      // Negative steps walk from start down to (excluding) end; end may be -1 ("before 0").
      b = std::clamp<int64_t>(b, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      len = b > e ? (st == std::numeric_limits<int64_t>::min() ? 1 : (b - e - 1) / -st + 1) : 0;
    }
    sp.out[a] = len;
    sp.start[a] = b;
    sp.step[a] = len > 1 ? st : 1;  // a step never taken must not overflow the stride product
  }
  return sp;
}

namespace {

void infer_Slice(InferCtx& c) {
  SliceSpec sp = slice_spec(c);
  c.set_output(0, c.type(0), sp.out);
}
void ref_Slice(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  SliceSpec sp = slice_spec(ic);
  const Tensor& x = c.input(0);
  if (shape_numel(sp.out) == 0) return;
  std::vector<int64_t> st = shape_strides(x.shape());
  int64_t off = 0;
  for (size_t d = 0; d < st.size(); d++) {
    off += sp.start[d] * st[d];
    st[d] *= sp.step[d];
  }
  size_t es = dtype_size(x.dtype());
  strided_copy(es, c.output(0).raw(), static_cast<const char*>(x.raw()) + off * es, sp.out, st);
}

// ---- Gather -----------------------------------------------------------------------------

void infer_Gather(InferCtx& c) {
  c.require_inputs(2, 2);
  require_index_type(c, 1);
  const Shape& s = c.shape(0);
  if (s.empty()) fail(ErrorCode::invalid_input, "{}: cannot gather from a scalar", c.node.label());
  int axis = norm_axis(c.node.attr_i("axis", 0), (int)s.size(), c.node);
  Shape out(s.begin(), s.begin() + axis);
  out.insert(out.end(), c.shape(1).begin(), c.shape(1).end());
  out.insert(out.end(), s.begin() + axis + 1, s.end());
  c.set_output(0, c.type(0), out);
}
void ref_Gather(KernelCtx& c) {
  const Tensor& x = c.input(0);
  const Shape& s = x.shape();
  int axis = norm_axis(c.node.attr_i("axis", 0), (int)s.size(), c.node);
  std::vector<int64_t> idx = c.input(1).to_int64s();
  int64_t d = s[axis];
  for (auto& i : idx) i = wrap_index(i, d, c.node, "index");
  int64_t outer = prod(s, 0, axis), inner = prod(s, axis + 1, s.size()), ni = (int64_t)idx.size();
  dispatch_bytes(x.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* src = static_cast<const T*>(x.raw());
    T* dst = static_cast<T*>(c.output(0).raw());
#pragma omp parallel for if (outer * ni * inner > (1 << 18))
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < ni; j++) {
        const T* from = src + (o * d + idx[j]) * inner;
        T* to = dst + (o * ni + j) * inner;
        if (inner == 1) *to = *from;
        else std::memcpy(to, from, (size_t)inner * sizeof(T));
      }
  });
}

// ---- GatherElements / ScatterElements ----------------------------------------------------
// Both walk the indices tensor; element i of it addresses data at its own coordinates with
// the coordinate along `axis` replaced by the index value.

int elements_axis(const InferCtx& c, int idx_input) {
  const Shape& s = c.shape(0);
  const Shape& is = c.shape(idx_input);
  require_index_type(c, idx_input);
  if (s.empty() || is.size() != s.size())
    fail(ErrorCode::invalid_input, "{}: data {} and indices {} must have the same rank >= 1", c.node.label(),
         shape_str(s), shape_str(is));
  int axis = norm_axis(c.node.attr_i("axis", 0), (int)s.size(), c.node);
  for (size_t d = 0; d < s.size(); d++)
    if ((int)d != axis && is[d] > s[d])
      fail(ErrorCode::invalid_input, "{}: indices {} exceed data {} on axis {}", c.node.label(), shape_str(is),
           shape_str(s), d);
  return axis;
}

// Calls f(i, data_offset) for every element i of an index tensor of shape `is`.
template <typename F>
void walk_elements(const Shape& data, const Shape& is, int axis, const std::vector<int64_t>& idx, const Node& n, F&& f) {
  int r = (int)is.size();
  int64_t total = shape_numel(is);
  if (total == 0) return;
  std::vector<int64_t> dst = shape_strides(data), cnt(r, 0);
  int64_t base = 0;  // offset of the current coordinates, excluding the axis
  for (int64_t i = 0; i < total; i++) {
    int64_t v = wrap_index(idx[i], data[axis], n, "index");
    f(i, base + v * dst[axis]);
    for (int d = r - 1; d >= 0; d--) {
      cnt[d]++;
      if (d != axis) base += dst[d];
      if (cnt[d] < is[d]) break;
      if (d != axis) base -= dst[d] * is[d];
      cnt[d] = 0;
    }
  }
}

void infer_GatherElements(InferCtx& c) {
  c.require_inputs(2, 2);
  elements_axis(c, 1);
  c.set_output(0, c.type(0), c.shape(1));
}
void ref_GatherElements(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  int axis = elements_axis(ic, 1);
  const Tensor& x = c.input(0);
  std::vector<int64_t> idx = c.input(1).to_int64s();
  dispatch_bytes(x.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* src = static_cast<const T*>(x.raw());
    T* dst = static_cast<T*>(c.output(0).raw());
    walk_elements(x.shape(), c.input(1).shape(), axis, idx, c.node, [&](int64_t i, int64_t off) { dst[i] = src[off]; });
  });
}

// Applies `reduction` ("none", "add", "mul", "max", "min") of u into *y.
template <typename F>
void with_reduction(const KernelCtx& c, DType t, F&& f) {
  std::string red = c.node.attr_s("reduction", "none");
  if (red == "none") {
    dispatch_bytes(t, c.node, [&](auto tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      f(tag, [](T& y, T u) { y = u; });
    });
    return;
  }
  if (red != "add" && red != "mul" && red != "max" && red != "min")
    fail(ErrorCode::invalid_model, "{}: unknown reduction '{}'", c.node.label(), red);
  dispatch_numeric(t, c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (red == "add") f(tag, [](T& y, T u) { y = T(y + u); });
    else if (red == "mul") f(tag, [](T& y, T u) { y = T(y * u); });
    else if (red == "max") f(tag, [](T& y, T u) { y = std::max(y, u); });
    else f(tag, [](T& y, T u) { y = std::min(y, u); });
  });
}

void infer_ScatterElements(InferCtx& c) {
  c.require_inputs(3, 3);
  elements_axis(c, 1);
  if (c.shape(2) != c.shape(1) || c.type(2) != c.type(0))
    fail(ErrorCode::invalid_input, "{}: updates ({} {}) must match indices {} in shape and data in type", c.node.label(),
         dtype_name(c.type(2)), shape_str(c.shape(2)), shape_str(c.shape(1)));
  c.set_output(0, c.type(0), c.shape(0));
}
void ref_ScatterElements(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  int axis = elements_axis(ic, 1);
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  if (!y.same_buffer(x)) std::memcpy(y.raw(), x.raw(), x.nbytes());
  std::vector<int64_t> idx = c.input(1).to_int64s();
  with_reduction(c, x.dtype(), [&](auto tag, auto op) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* upd = static_cast<const T*>(c.input(2).raw());
    T* dst = static_cast<T*>(y.raw());
    walk_elements(x.shape(), c.input(1).shape(), axis, idx, c.node, [&](int64_t i, int64_t off) { op(dst[off], upd[i]); });
  });
}

// ---- GatherND / ScatterND -----------------------------------------------------------------

struct NdSpec {
  int64_t batches, tuples, m, slice, batch_stride;
};

// Indices [b..., tuples..., m] address slices of data [b..., m dims..., slice dims...].
NdSpec nd_spec(const InferCtx& c, int64_t b) {
  const Shape& s = c.shape(0);
  const Shape& is = c.shape(1);
  require_index_type(c, 1);
  int64_t r = (int64_t)s.size(), q = (int64_t)is.size();
  if (q < 1 || r < 1 || b < 0 || b >= std::min(q, r))
    fail(ErrorCode::invalid_input, "{}: data {} / indices {} / batch_dims {} are inconsistent", c.node.label(),
         shape_str(s), shape_str(is), b);
  int64_t m = is[q - 1];
  if (m < 1 || m > r - b)
    fail(ErrorCode::invalid_input, "{}: index tuples of length {} for data {} with batch_dims {}", c.node.label(), m,
         shape_str(s), b);
  for (int64_t d = 0; d < b; d++)
    if (s[d] != is[d])
      fail(ErrorCode::invalid_input, "{}: batch dims of data {} and indices {} differ", c.node.label(), shape_str(s),
           shape_str(is));
  return NdSpec{prod(s, 0, b), prod(is, b, q - 1), m, prod(s, b + m, r), prod(s, b, r)};
}

// Data offset of index tuple t (tuples are counted across batches).
int64_t nd_offset(const int64_t* tuple, const NdSpec& sp, const Shape& s, const std::vector<int64_t>& st, int64_t b,
                  int64_t batch, const Node& n) {
  int64_t off = batch * sp.batch_stride;
  for (int64_t k = 0; k < sp.m; k++) off += wrap_index(tuple[k], s[b + k], n, "index") * st[b + k];
  return off;
}

void infer_GatherND(InferCtx& c) {
  c.require_inputs(2, 2);
  int64_t b = c.node.attr_i("batch_dims", 0);
  NdSpec sp = nd_spec(c, b);
  const Shape& s = c.shape(0);
  const Shape& is = c.shape(1);
  Shape out(is.begin(), is.end() - 1);
  out.insert(out.end(), s.begin() + b + sp.m, s.end());
  c.set_output(0, c.type(0), out);
}
void ref_GatherND(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  int64_t b = c.node.attr_i("batch_dims", 0);
  NdSpec sp = nd_spec(ic, b);
  const Tensor& x = c.input(0);
  std::vector<int64_t> idx = c.input(1).to_int64s(), st = shape_strides(x.shape());
  size_t es = dtype_size(x.dtype()), chunk = (size_t)sp.slice * es;
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(c.output(0).raw());
  for (int64_t bi = 0; bi < sp.batches; bi++)
    for (int64_t t = 0; t < sp.tuples; t++) {
      int64_t j = bi * sp.tuples + t;
      int64_t off = nd_offset(&idx[j * sp.m], sp, x.shape(), st, b, bi, c.node);
      if (chunk) std::memcpy(dst + j * chunk, src + off * es, chunk);
    }
}

void infer_ScatterND(InferCtx& c) {
  c.require_inputs(3, 3);
  NdSpec sp = nd_spec(c, 0);
  const Shape& s = c.shape(0);
  const Shape& is = c.shape(1);
  Shape want(is.begin(), is.end() - 1);
  want.insert(want.end(), s.begin() + sp.m, s.end());
  if (c.shape(2) != want || c.type(2) != c.type(0))
    fail(ErrorCode::invalid_input, "{}: updates are {} {}, expected {} {}", c.node.label(), dtype_name(c.type(2)),
         shape_str(c.shape(2)), dtype_name(c.type(0)), shape_str(want));
  c.set_output(0, c.type(0), s);
}
void ref_ScatterND(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  NdSpec sp = nd_spec(ic, 0);
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  if (!y.same_buffer(x)) std::memcpy(y.raw(), x.raw(), x.nbytes());
  std::vector<int64_t> idx = c.input(1).to_int64s(), st = shape_strides(x.shape());
  with_reduction(c, x.dtype(), [&](auto tag, auto op) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* upd = static_cast<const T*>(c.input(2).raw());
    T* dst = static_cast<T*>(y.raw());
    for (int64_t t = 0; t < sp.tuples; t++) {
      int64_t off = nd_offset(&idx[t * sp.m], sp, x.shape(), st, 0, 0, c.node);
      for (int64_t k = 0; k < sp.slice; k++) op(dst[off + k], upd[t * sp.slice + k]);
    }
  });
}

// ---- Compress -----------------------------------------------------------------------------

// Kept positions along the axis (or the flattened input without one).
std::vector<int64_t> compress_keep(const InferCtx& c, int& axis) {
  c.require_inputs(2, 2);
  const Tensor& cond = c.value(1);
  if (cond.dtype() != DType::boolean || cond.rank() != 1)
    fail(ErrorCode::invalid_model, "{}: condition must be a 1-D bool tensor, got {} {}", c.node.label(),
         dtype_name(cond.dtype()), shape_str(cond.shape()));
  const Shape& s = c.shape(0);
  axis = c.node.has_attr("axis") ? norm_axis(c.node.attr_i("axis", 0), (int)s.size(), c.node) : -1;
  if (axis >= 0 && s.empty()) fail(ErrorCode::invalid_input, "{}: axis given for a scalar input", c.node.label());
  int64_t dim = axis >= 0 ? s[axis] : shape_numel(s);
  const uint8_t* cv = static_cast<const uint8_t*>(cond.raw());
  std::vector<int64_t> keep;
  // A shorter condition drops the remaining slices; a longer one may only add falses.
  for (int64_t i = 0; i < cond.numel(); i++) {
    if (!cv[i]) continue;
    if (i >= dim)
      fail(ErrorCode::invalid_input, "{}: condition selects position {} of a dimension of size {}", c.node.label(), i, dim);
    keep.push_back(i);
  }
  return keep;
}

void infer_Compress(InferCtx& c) {
  int axis;
  std::vector<int64_t> keep = compress_keep(c, axis);
  Shape out = axis >= 0 ? c.shape(0) : Shape{0};
  out[axis >= 0 ? axis : 0] = (int64_t)keep.size();
  c.set_output(0, c.type(0), out);
}
void ref_Compress(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  int axis;
  std::vector<int64_t> keep = compress_keep(ic, axis);
  const Tensor& x = c.input(0);
  const Shape& s = x.shape();
  int64_t outer = axis >= 0 ? prod(s, 0, axis) : 1, dim = axis >= 0 ? s[axis] : x.numel();
  int64_t inner = axis >= 0 ? prod(s, axis + 1, s.size()) : 1;
  size_t es = dtype_size(x.dtype()), chunk = (size_t)inner * es;
  if (!chunk) return;
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(c.output(0).raw());
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k : keep) {
      std::memcpy(dst, src + (o * dim + k) * chunk, chunk);
      dst += chunk;
    }
}

}  // namespace

const OpDef kOp_Slice{"Slice", infer_Slice, ref_Slice};
const OpDef kOp_Gather{"Gather", infer_Gather, ref_Gather};
const OpDef kOp_GatherElements{"GatherElements", infer_GatherElements, ref_GatherElements};
const OpDef kOp_GatherND{"GatherND", infer_GatherND, ref_GatherND};
const OpDef kOp_ScatterElements{"ScatterElements", infer_ScatterElements, ref_ScatterElements};
// Scatter (opsets 9-10) is ScatterElements without reductions under its old name.
const OpDef kOp_Scatter{"Scatter", infer_ScatterElements, ref_ScatterElements};
const OpDef kOp_ScatterND{"ScatterND", infer_ScatterND, ref_ScatterND};
const OpDef kOp_Compress{"Compress", infer_Compress, ref_Compress};

}  // namespace rg

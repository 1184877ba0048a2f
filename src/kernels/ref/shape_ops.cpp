// Shape manipulation: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze (metadata only:
// the data is copied unchanged), and Transpose, Concat, Split (data rearranged).
#include <algorithm>
#include <numeric>

#include "kernels/ref/movement.h"

namespace rg {

void copy_through(KernelCtx& c) {
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  if (!y.same_buffer(x) && x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
}

namespace {

// ---- Shape, Size --------------------------------------------------------------------
// Both read only the input's shape (the planner may hand them a data-less placeholder).

void shape_range(const Node& n, int64_t opset, int rank, int64_t& start, int64_t& end) {
  start = 0;
  end = rank;
  if (opset >= 15) {
    start = n.attr_i("start", 0);
    end = n.attr_i("end", rank);
  }
  // Opset 15: negative values count from the back, then both are clamped to [0, rank].
  auto clampv = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  start = clampv(start);
  end = std::max(clampv(end), start);
}

void infer_Shape(InferCtx& c) {
  c.require_inputs(1, 1);
  int64_t s, e;
  shape_range(c.node, c.opset, c.rank(0), s, e);
  c.set_output(0, DType::i64, {e - s});
}
void ref_Shape(KernelCtx& c) {
  const Shape& sh = c.input(0).shape();
  int64_t s, e;
  shape_range(c.node, c.opset, (int)sh.size(), s, e);
  int64_t* y = c.output(0).data<int64_t>();
  for (int64_t i = s; i < e; i++) y[i - s] = sh[i];
}

void infer_Size(InferCtx& c) {
  c.require_inputs(1, 1);
  c.set_output(0, DType::i64, {});
}
void ref_Size(KernelCtx& c) { c.output(0).data<int64_t>()[0] = shape_numel(c.input(0).shape()); }

// ---- Reshape --------------------------------------------------------------------------

void infer_Reshape(InferCtx& c) {
  std::vector<int64_t> spec;
  if (c.opset < 5) {
    c.require_inputs(1, 1);
    spec = c.node.attr_ints("shape");
  } else {
    c.require_inputs(2, 2);
    if (c.rank(1) != 1) fail(ErrorCode::invalid_model, "{}: shape must be 1-D, got {}", c.node.label(), shape_str(c.shape(1)));
    spec = ints_of(c, 1);
  }
  bool allowzero = c.node.attr_i("allowzero", 0) != 0;
  const Shape& in = c.shape(0);
  int64_t total = shape_numel(in);
  Shape out(spec.size());
  int infer_at = -1;
  int64_t known = 1;  // product of the explicit dims, saturated at total + 1
  for (size_t i = 0; i < spec.size(); i++) {
    int64_t v = spec[i];
    if (v == -1) {
      if (infer_at >= 0) fail(ErrorCode::invalid_input, "{}: shape {} has more than one -1", c.node.label(), ints_str(spec));
      infer_at = (int)i;
      continue;
    }
    if (v == 0 && !allowzero) {
      // 0 copies the input's dim at the same position.
      if (i >= in.size())
        fail(ErrorCode::invalid_input, "{}: shape {} copies dim {} (0) but the input {} has rank {}", c.node.label(),
             ints_str(spec), i, shape_str(in), in.size());
      v = in[i];
    }
    if (v < 0) fail(ErrorCode::invalid_input, "{}: invalid dimension {} in shape {}", c.node.label(), v, ints_str(spec));
    out[i] = v;
    known = (v != 0 && known > total / v) ? total + 1 : known * v;
  }
  if (infer_at >= 0) {
    if (allowzero && std::count(spec.begin(), spec.end(), 0))
      fail(ErrorCode::invalid_input, "{}: shape {} has both 0 and -1 with allowzero=1", c.node.label(), ints_str(spec));
    if (known == 0 || total % known != 0)
      fail(ErrorCode::invalid_input, "{}: cannot reshape {} ({} elements) to {}", c.node.label(), shape_str(in), total,
           ints_str(spec));
    out[infer_at] = total / known;
  } else if (known != total) {
    fail(ErrorCode::invalid_input, "{}: cannot reshape {} ({} elements) to {}", c.node.label(), shape_str(in), total,
         shape_str(out));
  }
  c.set_output(0, c.type(0), out);
}

// ---- Flatten ----------------------------------------------------------------------------

void infer_Flatten(InferCtx& c) {
  c.require_inputs(1, 1);
  int r = c.rank(0);
  int64_t axis = c.node.attr_i("axis", 1);
  if (axis < 0) axis += r;
  // axis == rank is allowed: everything goes to the outer dim.
  if (axis < 0 || axis > r)
    fail(ErrorCode::invalid_model, "{}: axis {} is out of range for rank {}", c.node.label(), c.node.attr_i("axis", 1), r);
  const Shape& s = c.shape(0);
  int64_t a = std::accumulate(s.begin(), s.begin() + axis, int64_t(1), std::multiplies<int64_t>());
  int64_t b = std::accumulate(s.begin() + axis, s.end(), int64_t(1), std::multiplies<int64_t>());
  c.set_output(0, c.type(0), {a, b});
}

// ---- Squeeze / Unsqueeze ----------------------------------------------------------------

void infer_Squeeze(InferCtx& c) {
  c.require_inputs(1, c.opset >= 13 ? 2 : 1);
  bool given;
  std::vector<int64_t> axes = ints_input_or_attr(c, 1, "axes", c.opset >= 13, &given);
  const Shape& s = c.shape(0);
  std::vector<bool> drop(s.size(), false);
  if (given && !axes.empty()) {  // an empty axes tensor means "all unit dims", as omitting it
    for (int a : norm_axes(axes, (int)s.size(), c.node)) {
      if (s[a] != 1)
        fail(ErrorCode::invalid_input, "{}: cannot squeeze axis {} of size {} (input {})", c.node.label(), a, s[a],
             shape_str(s));
      drop[a] = true;
    }
  } else {
    for (size_t i = 0; i < s.size(); i++) drop[i] = s[i] == 1;
  }
  Shape out;
  for (size_t i = 0; i < s.size(); i++)
    if (!drop[i]) out.push_back(s[i]);
  c.set_output(0, c.type(0), out);
}

void infer_Unsqueeze(InferCtx& c) {
  c.require_inputs(1, c.opset >= 13 ? 2 : 1);
  bool given;
  std::vector<int64_t> axes = ints_input_or_attr(c, 1, "axes", c.opset >= 13, &given);
  if (!given) fail(ErrorCode::invalid_model, "{}: axes are required", c.node.label());
  const Shape& s = c.shape(0);
  int r = (int)(s.size() + axes.size());
  // Axes refer to the OUTPUT's dims.
  std::vector<bool> inserted(r, false);
  for (int a : norm_axes(axes, r, c.node)) inserted[a] = true;
  Shape out;
  size_t k = 0;
  for (int i = 0; i < r; i++) out.push_back(inserted[i] ? 1 : s[k++]);
  c.set_output(0, c.type(0), out);
}

// ---- Transpose --------------------------------------------------------------------------

std::vector<int> transpose_perm(const Node& n, int rank) {
  std::vector<int64_t> p = n.attr_ints("perm");
  if (!n.has_attr("perm")) {
    for (int i = rank - 1; i >= 0; i--) p.push_back(i);
  }
  if ((int)p.size() != rank)
    fail(ErrorCode::invalid_model, "{}: perm has {} entries for rank {}", n.label(), p.size(), rank);
  return norm_axes(p, rank, n);  // rejects repeats, so it is a permutation
}

void infer_Transpose(InferCtx& c) {
  c.require_inputs(1, 1);
  std::vector<int> p = transpose_perm(c.node, c.rank(0));
  Shape out;
  for (int a : p) out.push_back(c.shape(0)[a]);
  c.set_output(0, c.type(0), out);
}
void ref_Transpose(KernelCtx& c) {
  const Tensor& x = c.input(0);
  std::vector<int> p = transpose_perm(c.node, x.rank());
  std::vector<int64_t> in_st = shape_strides(x.shape()), st;
  for (int a : p) st.push_back(in_st[a]);
  strided_copy(dtype_size(x.dtype()), c.output(0).raw(), x.raw(), c.output(0).shape(), st);
}

// ---- Concat -----------------------------------------------------------------------------

int concat_axis(const Node& n, int64_t opset, int rank) {
  if (rank == 0) fail(ErrorCode::invalid_input, "{}: cannot concatenate scalars", n.label());
  if (opset >= 4 && !n.has_attr("axis")) fail(ErrorCode::invalid_model, "{}: attribute 'axis' is required", n.label());
  return norm_axis(n.attr_i("axis", 1), rank, n);
}

void infer_Concat(InferCtx& c) {
  c.require_inputs(1);
  Shape out = c.shape(0);
  int axis = concat_axis(c.node, c.opset, (int)out.size());
  for (int i = 1; i < c.num_inputs(); i++) {
    const Shape& s = c.shape(i);
    bool ok = s.size() == out.size() && c.type(i) == c.type(0);
    for (size_t d = 0; ok && d < s.size(); d++) ok = (int)d == axis || s[d] == out[d];
    if (!ok)
      fail(ErrorCode::invalid_input, "{}: input {} ({} {}) does not match input 0 ({} {}) on the non-concatenated axes",
           c.node.label(), i, dtype_name(c.type(i)), shape_str(s), dtype_name(c.type(0)), shape_str(c.shape(0)));
    out[axis] += s[axis];
  }
  c.set_output(0, c.type(0), out);
}
void ref_Concat(KernelCtx& c) {
  Tensor& y = c.output(0);
  int axis = concat_axis(c.node, c.opset, y.rank());
  size_t es = dtype_size(y.dtype());
  const Shape& os = y.shape();
  int64_t outer = std::accumulate(os.begin(), os.begin() + axis, int64_t(1), std::multiplies<int64_t>());
  int64_t inner = std::accumulate(os.begin() + axis + 1, os.end(), int64_t(1), std::multiplies<int64_t>());
  // One contiguous chunk per (outer index, input): dim_i * inner elements.
  size_t out_row = (size_t)(os[axis] * inner) * es;
  size_t off = 0;
  for (size_t i = 0; i < c.in.size(); i++) {
    const Tensor& x = c.input((int)i);
    size_t chunk = (size_t)(x.dim(axis) * inner) * es;
    if (chunk == 0) continue;
    const char* src = static_cast<const char*>(x.raw());
    char* dst = static_cast<char*>(y.raw()) + off;
    for (int64_t o = 0; o < outer; o++) std::memcpy(dst + o * out_row, src + o * chunk, chunk);
    off += chunk;
  }
}

// ---- Split ------------------------------------------------------------------------------

std::vector<int64_t> split_sizes(const InferCtx& c, int& axis) {
  const Shape& s = c.shape(0);
  if (s.empty()) fail(ErrorCode::invalid_input, "{}: cannot split a scalar", c.node.label());
  axis = norm_axis(c.node.attr_i("axis", 0), (int)s.size(), c.node);
  int64_t dim = s[axis];
  int64_t nout = (int64_t)c.node.outputs.size();
  std::vector<int64_t> sizes;
  bool given;
  sizes = ints_input_or_attr(c, 1, "split", c.opset >= 13, &given);
  if (!given && c.opset >= 18 && c.node.has_attr("num_outputs")) {
    int64_t k = c.node.attr_i("num_outputs", 0);
    if (k != nout || k < 1)
      fail(ErrorCode::invalid_model, "{}: num_outputs={} but the node has {} outputs", c.node.label(), k, nout);
    // Opset 18: chunks of ceil(dim / k); the last one takes what is left.
    int64_t chunk = (dim + k - 1) / k, left = dim;
    for (int64_t i = 0; i < k; i++) {
      sizes.push_back(std::min(chunk, left));
      left -= sizes.back();
    }
  } else if (!given) {
    if (nout < 1 || dim % nout != 0)
      fail(ErrorCode::invalid_input, "{}: cannot split a dimension of {} into {} equal parts", c.node.label(), dim, nout);
    sizes.assign(nout, dim / nout);
  }
  int64_t sum = 0;
  for (int64_t v : sizes) {
    if (v < 0) fail(ErrorCode::invalid_input, "{}: negative split size {}", c.node.label(), v);
    sum += v;
    if (sum > dim) break;
  }
  if ((int64_t)sizes.size() != nout || sum != dim)
    fail(ErrorCode::invalid_input, "{}: split sizes {} do not divide axis {} of {} into {} outputs", c.node.label(),
         ints_str(sizes), axis, shape_str(s), nout);
  return sizes;
}

void infer_Split(InferCtx& c) {
  c.require_inputs(1, c.opset >= 13 ? 2 : 1);
  int axis;
  std::vector<int64_t> sizes = split_sizes(c, axis);
  for (size_t i = 0; i < sizes.size(); i++) {
    Shape s = c.shape(0);
    s[axis] = sizes[i];
    c.set_output((int)i, c.type(0), s);
  }
}
void ref_Split(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  int axis;
  std::vector<int64_t> sizes = split_sizes(ic, axis);
  const Tensor& x = c.input(0);
  const Shape& s = x.shape();
  size_t es = dtype_size(x.dtype());
  int64_t outer = std::accumulate(s.begin(), s.begin() + axis, int64_t(1), std::multiplies<int64_t>());
  int64_t inner = std::accumulate(s.begin() + axis + 1, s.end(), int64_t(1), std::multiplies<int64_t>());
  size_t in_row = (size_t)(s[axis] * inner) * es;
  size_t off = 0;
  for (size_t i = 0; i < sizes.size(); i++) {
    size_t chunk = (size_t)(sizes[i] * inner) * es;
    if (i < c.out.size() && c.out[i] && chunk) {
      const char* src = static_cast<const char*>(x.raw()) + off;
      char* dst = static_cast<char*>(c.out[i]->raw());
      for (int64_t o = 0; o < outer; o++) std::memcpy(dst + o * chunk, src + o * in_row, chunk);
    }
    off += chunk;
  }
}

}  // namespace

const OpDef kOp_Shape{"Shape", infer_Shape, ref_Shape};
const OpDef kOp_Size{"Size", infer_Size, ref_Size};
const OpDef kOp_Reshape{"Reshape", infer_Reshape, copy_through};
const OpDef kOp_Flatten{"Flatten", infer_Flatten, copy_through};
const OpDef kOp_Squeeze{"Squeeze", infer_Squeeze, copy_through};
const OpDef kOp_Unsqueeze{"Unsqueeze", infer_Unsqueeze, copy_through};
const OpDef kOp_Transpose{"Transpose", infer_Transpose, ref_Transpose};
const OpDef kOp_Concat{"Concat", infer_Concat, ref_Concat};
const OpDef kOp_Split{"Split", infer_Split, ref_Split};

}  // namespace rg

// Ops that build a bigger (or rearranged) tensor from repeated parts of their input: Pad,
// Tile, Expand, DepthToSpace, SpaceToDepth. All but Pad are one strided_copy: a view of
// the input with zero strides (repetition) or permuted strides (block rearrangement).
#include <algorithm>

#include "kernels/ref/movement.h"

namespace rg {
namespace {

// ---- Pad ----------------------------------------------------------------------------------

struct PadSpec {
  Shape out;
  std::vector<int64_t> begin;  // per dim, negative = crop
  std::string mode;
};

PadSpec pad_spec(const InferCtx& c) {
  const Node& n = c.node;
  const Shape& s = c.shape(0);
  int r = (int)s.size();
  PadSpec sp{s, std::vector<int64_t>(r, 0), n.attr_s("mode", "constant")};
  if (sp.mode != "constant" && sp.mode != "reflect" && sp.mode != "edge" && sp.mode != "wrap")
    fail(ErrorCode::invalid_model, "{}: unknown mode '{}'", n.label(), sp.mode);
  std::vector<int64_t> pads;
  std::vector<int> axes(r);
  for (int i = 0; i < r; i++) axes[i] = i;
  if (c.opset < 11) {
    c.require_inputs(1, 1);
    pads = n.attr_ints(n.has_attr("paddings") ? "paddings" : "pads");  // opset 1 spelled it "paddings"
  } else {
    c.require_inputs(2, 4);
    pads = ints_of(c, 1);
    if (c.opset >= 18 && c.has_input(3)) axes = norm_axes(ints_of(c, 3), r, n);
  }
  if (pads.size() != 2 * axes.size())
    fail(ErrorCode::invalid_model, "{}: {} pads for {} axes (need begins then ends)", n.label(), pads.size(), axes.size());
  for (size_t k = 0; k < axes.size(); k++) {
    int a = axes[k];
    int64_t d = s[a], b = pads[k], e = pads[k + axes.size()];
    // Negative pads crop, but never more than the dimension holds; the bound on positive
    // pads keeps d + b + e from overflowing (check_output_shape rejects the size anyway).
    const int64_t big = int64_t(1) << 50;
    if (b > big || e > big || b < -d || e < -d || d + b + e < 0)
      fail(ErrorCode::invalid_input, "{}: pads ({}, {}) are invalid for axis {} of size {}", n.label(), b, e, a, d);
    if (d == 0 && d + b + e > 0 && sp.mode != "constant")
      fail(ErrorCode::invalid_input, "{}: cannot {}-pad an empty axis {}", n.label(), sp.mode, a);
    sp.out[a] = d + b + e;
    sp.begin[a] = b;
  }
  check_output_shape(n, sp.out, c.type(0));
  return sp;
}

void infer_Pad(InferCtx& c) {
  PadSpec sp = pad_spec(c);
  c.set_output(0, c.type(0), sp.out);
}

// Source index along one axis for output position o, or -1 for the constant.
int64_t pad_source(int64_t o, int64_t begin, int64_t d, const std::string& mode) {
  int64_t i = o - begin;
  if (i >= 0 && i < d) return i;
  if (mode == "constant") return -1;
  if (mode == "edge") return i < 0 ? 0 : d - 1;
  if (mode == "wrap") return ((i % d) + d) % d;
  // reflect (numpy semantics, repeated reflection for pads wider than the input): the
  // pattern 0,1,..,d-1,d-2,..,1 repeats with period 2(d-1).
  if (d == 1) return 0;
  int64_t p = 2 * (d - 1), m = ((i % p) + p) % p;
  return m < d ? m : p - m;
}

void ref_Pad(KernelCtx& c) {
  InferCtx ic = infer_ctx_of(c);
  PadSpec sp = pad_spec(ic);
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  DType t = x.dtype();
  size_t es = dtype_size(t);
  int r = x.rank();
  if (y.numel() == 0) return;
  uint64_t cv = 0;
  if (c.opset < 11) {
    cv = scalar_bits(t, c.node.attr_f("value", 0.f), c.node);
  } else if (c.has_input(2) && c.input(2).numel() > 0) {
    if (c.input(2).dtype() != t)
      fail(ErrorCode::invalid_model, "{}: constant_value is {}, data is {}", c.node.label(),
           dtype_name(c.input(2).dtype()), dtype_name(t));
    std::memcpy(&cv, c.input(2).raw(), es);
  }
  if (r == 0) {
    std::memcpy(y.raw(), x.raw(), es);
    return;
  }
  // Per-axis source tables: total size is the sum of the output dims, not their product.
  std::vector<std::vector<int64_t>> src(r);
  for (int d = 0; d < r; d++) {
    src[d].resize(sp.out[d]);
    for (int64_t o = 0; o < sp.out[d]; o++) src[d][o] = pad_source(o, sp.begin[d], x.dim(d), sp.mode);
  }
  std::vector<int64_t> st = shape_strides(x.shape());
  int64_t inner = sp.out[r - 1], rows = y.numel() / inner;
  dispatch_bytes(t, c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T fill;
    std::memcpy(&fill, &cv, sizeof(T));
    const T* in = static_cast<const T*>(x.raw());
    T* out = static_cast<T*>(y.raw());
    const std::vector<int64_t>& last = src[r - 1];
#pragma omp parallel for if (y.numel() > (1 << 18))
    for (int64_t row = 0; row < rows; row++) {
      T* dst = out + row * inner;
      int64_t rem = row, off = 0;
      bool constant_row = false;
      for (int d = r - 2; d >= 0; d--) {
        int64_t m = src[d][rem % sp.out[d]];
        rem /= sp.out[d];
        if (m < 0) constant_row = true;
        else off += m * st[d];
      }
      if (constant_row) {
        std::fill(dst, dst + inner, fill);
        continue;
      }
      for (int64_t k = 0; k < inner; k++) dst[k] = last[k] < 0 ? fill : in[off + last[k]];
    }
  });
}

// ---- Tile ---------------------------------------------------------------------------------

std::vector<int64_t> tile_repeats(const InferCtx& c) {
  if (c.opset < 6) fail(ErrorCode::unsupported_op, "{}: Tile before opset 6 is not supported", c.node.label());
  c.require_inputs(2, 2);
  std::vector<int64_t> rep = ints_of(c, 1);
  if ((int)rep.size() != c.rank(0))
    fail(ErrorCode::invalid_input, "{}: {} repeats for an input of rank {}", c.node.label(), rep.size(), c.rank(0));
  for (int64_t v : rep)
    if (v < 0) fail(ErrorCode::invalid_input, "{}: negative repeat count {}", c.node.label(), v);
  return rep;
}

void infer_Tile(InferCtx& c) {
  std::vector<int64_t> rep = tile_repeats(c);
  // Check the interleaved [rep0, d0, rep1, d1, ...] shape: same count, no overflow.
  Shape view, out;
  for (size_t d = 0; d < rep.size(); d++) view.insert(view.end(), {rep[d], c.shape(0)[d]});
  check_output_shape(c.node, view, c.type(0));
  for (size_t d = 0; d < rep.size(); d++) out.push_back(rep[d] * c.shape(0)[d]);
  c.set_output(0, c.type(0), out);
}
void ref_Tile(KernelCtx& c) {
  const Tensor& x = c.input(0);
  std::vector<int64_t> rep = c.input(1).to_int64s(), st = shape_strides(x.shape());
  // out viewed as [rep0, d0, rep1, d1, ...]: the repeat dims have stride 0 in the input.
  Shape view;
  std::vector<int64_t> vst;
  for (int d = 0; d < x.rank(); d++) {
    view.insert(view.end(), {rep[d], x.dim(d)});
    vst.insert(vst.end(), {0, st[d]});
  }
  strided_copy(dtype_size(x.dtype()), c.output(0).raw(), x.raw(), view, vst);
}

// ---- Expand -------------------------------------------------------------------------------

void infer_Expand(InferCtx& c) {
  c.require_inputs(2, 2);
  Shape want = ints_of(c, 1);
  for (int64_t d : want)
    if (d < 0) fail(ErrorCode::invalid_input, "{}: negative dimension in shape {}", c.node.label(), ints_str(want));
  // Bidirectional: a 1 in `want` keeps the input's dim.
  Shape out = broadcast_shapes(c.shape(0), want, c.node);
  check_output_shape(c.node, out, c.type(0));
  c.set_output(0, c.type(0), out);
}
void ref_Expand(KernelCtx& c) {
  const Tensor& x = c.input(0);
  Tensor& y = c.output(0);
  strided_copy(dtype_size(x.dtype()), y.raw(), x.raw(), y.shape(), broadcast_strides(x.shape(), y.shape()));
}

// ---- DepthToSpace / SpaceToDepth -------------------------------------------------------------

int64_t blocksize(const InferCtx& c) {
  c.require_inputs(1, 1);
  if (c.rank(0) != 4) fail(ErrorCode::invalid_input, "{}: input must be 4-D, got {}", c.node.label(), shape_str(c.shape(0)));
  int64_t b = c.node.attr_i("blocksize", 0);
  if (b < 1 || b > (1 << 20)) fail(ErrorCode::invalid_model, "{}: invalid blocksize {}", c.node.label(), b);
  return b;
}

void infer_DepthToSpace(InferCtx& c) {
  int64_t b = blocksize(c);
  const Shape& s = c.shape(0);
  std::string mode = c.node.attr_s("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") fail(ErrorCode::invalid_model, "{}: unknown mode '{}'", c.node.label(), mode);
  if (s[1] % (b * b) != 0)
    fail(ErrorCode::invalid_input, "{}: channels {} are not divisible by blocksize^2 = {}", c.node.label(), s[1], b * b);
  c.set_output(0, c.type(0), {s[0], s[1] / (b * b), s[2] * b, s[3] * b});
}
void ref_DepthToSpace(KernelCtx& c) {
  const Tensor& x = c.input(0);
  int64_t b = c.node.attr_i("blocksize", 0);
  int64_t N = x.dim(0), C = x.dim(1) / (b * b), H = x.dim(2), W = x.dim(3), HW = H * W;
  bool dcr = c.node.attr_s("mode", "DCR") == "DCR";
  // Output viewed as [N, C', H, b1, W, b2]. DCR reads channel (b1*b + b2)*C' + c',
  // CRD reads channel c'*b*b + b1*b + b2.
  Shape view{N, C, H, b, W, b};
  std::vector<int64_t> st = dcr ? std::vector<int64_t>{C * b * b * HW, HW, W, b * C * HW, 1, C * HW}
                                : std::vector<int64_t>{C * b * b * HW, b * b * HW, W, b * HW, 1, HW};
  strided_copy(dtype_size(x.dtype()), c.output(0).raw(), x.raw(), view, st);
}

void infer_SpaceToDepth(InferCtx& c) {
  int64_t b = blocksize(c);
  const Shape& s = c.shape(0);
  if (s[2] % b != 0 || s[3] % b != 0)
    fail(ErrorCode::invalid_input, "{}: spatial dims of {} are not divisible by blocksize {}", c.node.label(),
         shape_str(s), b);
  c.set_output(0, c.type(0), {s[0], s[1] * b * b, s[2] / b, s[3] / b});
}
void ref_SpaceToDepth(KernelCtx& c) {
  const Tensor& x = c.input(0);
  int64_t b = c.node.attr_i("blocksize", 0);
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  // Output viewed as [N, b1, b2, C, H/b, W/b], reading input (n, c, h'*b + b1, w'*b + b2).
  Shape view{N, b, b, C, H / b, W / b};
  std::vector<int64_t> st{C * H * W, W, 1, H * W, b * W, b};
  strided_copy(dtype_size(x.dtype()), c.output(0).raw(), x.raw(), view, st);
}

}  // namespace

const OpDef kOp_Pad{"Pad", infer_Pad, ref_Pad};
const OpDef kOp_Tile{"Tile", infer_Tile, ref_Tile};
const OpDef kOp_Expand{"Expand", infer_Expand, ref_Expand};
const OpDef kOp_DepthToSpace{"DepthToSpace", infer_DepthToSpace, ref_DepthToSpace};
const OpDef kOp_SpaceToDepth{"SpaceToDepth", infer_SpaceToDepth, ref_SpaceToDepth};

}  // namespace rg

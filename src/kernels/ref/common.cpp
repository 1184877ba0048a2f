#include "kernels/ref/common.h"

namespace rg {

int norm_axis(int64_t axis, int rank, const Node& n) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= std::max(rank, 1))
    fail(ErrorCode::invalid_model, "{}: axis {} is out of range for rank {}", n.label(), axis, rank);
  return (int)a;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& n) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; i++) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(ErrorCode::invalid_input, "{}: shapes {} and {} cannot be broadcast", n.label(),
           shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> own = shape_strides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); i++) st[off + i] = in[i] == 1 ? 0 : own[i];
  return st;
}

std::vector<int64_t> ints_of(const InferCtx& c, int i) { return c.value(i).to_int64s(); }

}  // namespace rg

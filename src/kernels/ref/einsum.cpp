// Einsum: the general form (any number of operands, repeated labels for diagonals, "..."
// broadcasting, implicit or explicit output), evaluated as a plain sum of products over
// every label combination. That is as fast as the naive loop nest of the contraction it
// describes (a matmul costs b*i*j*k), which is what a reference kernel should be.
#include <algorithm>
#include <type_traits>

#include "kernels/ref/common.h"

namespace rg {
namespace {

constexpr int kLetters = 52;  // 'A'-'Z' then 'a'-'z' (ASCII order); "..." dims follow

struct Equation {
  std::vector<std::vector<int>> in;  // labels of each operand's dims, in order
  std::vector<int> out;              // labels of the output's dims
  std::vector<int64_t> size;         // size of each label
};

int letter(char ch) { return ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch - 'a' + 26; }

// Splits one term into letters and the position of "..." (-1 when absent).
std::vector<int> parse_term(const Node& n, const std::string& t, int& ell_pos) {
  std::vector<int> r;
  ell_pos = -1;
  for (size_t i = 0; i < t.size(); i++) {
    char ch = t[i];
    if (ch == '.') {
      if (ell_pos >= 0 || t.compare(i, 3, "...") != 0)
        fail(ErrorCode::invalid_model, "{}: malformed ellipsis in term '{}'", n.label(), t);
      ell_pos = (int)r.size();
      i += 2;
    } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
      r.push_back(letter(ch));
    } else {
      fail(ErrorCode::invalid_model, "{}: invalid character '{}' in equation", n.label(), ch);
    }
  }
  return r;
}

Equation parse(const Node& n, const std::vector<Shape>& shapes) {
  std::string eq;
  for (char ch : n.attr_s("equation", "")) if (ch != ' ') eq += ch;
  size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t b = 0;;) {
    size_t e = lhs.find(',', b);
    terms.push_back(lhs.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  if (terms.size() != shapes.size())
    fail(ErrorCode::invalid_model, "{}: equation '{}' has {} operands, the node {}", n.label(), eq, terms.size(),
         shapes.size());
  Equation q;
  q.size.assign(kLetters, -1);
  // "..." dims are right-aligned across operands and broadcast like numpy.
  int ell_rank = 0;
  std::vector<std::vector<int>> letters(terms.size());
  std::vector<int> ell_pos(terms.size());
  for (size_t k = 0; k < terms.size(); k++) {
    letters[k] = parse_term(n, terms[k], ell_pos[k]);
    int extra = (int)shapes[k].size() - (int)letters[k].size();
    if (extra < 0 || (extra > 0 && ell_pos[k] < 0))
      fail(ErrorCode::invalid_model, "{}: term '{}' does not match operand shape {}", n.label(), terms[k],
           shape_str(shapes[k]));
    ell_rank = std::max(ell_rank, extra);
  }
  q.size.resize(kLetters + ell_rank, 1);
  std::vector<int> count(kLetters + ell_rank, 0);
  for (size_t k = 0; k < terms.size(); k++) {
    int extra = (int)shapes[k].size() - (int)letters[k].size();
    std::vector<int> labels = letters[k];
    if (ell_pos[k] >= 0) {
      std::vector<int> ell;
      for (int j = 0; j < extra; j++) ell.push_back(kLetters + ell_rank - extra + j);
      labels.insert(labels.begin() + ell_pos[k], ell.begin(), ell.end());
    }
    for (size_t d = 0; d < labels.size(); d++) {
      int l = labels[d];
      int64_t s = shapes[k][d];
      if (l >= kLetters) {  // broadcast
        if (s != 1 && q.size[l] != 1 && s != q.size[l])
          fail(ErrorCode::invalid_model, "{}: '...' dims do not broadcast", n.label());
        if (s != 1) q.size[l] = s;
      } else {
        if (q.size[l] >= 0 && q.size[l] != s)
          fail(ErrorCode::invalid_model, "{}: label '{}' has sizes {} and {}", n.label(),
               (char)(l < 26 ? 'A' + l : 'a' + l - 26), q.size[l], s);
        q.size[l] = s;
      }
      count[l]++;
    }
    q.in.push_back(labels);
  }
  if (arrow == std::string::npos) {
    // Implicit output: "..." dims, then the letters used once, in ASCII order.
    for (int l = kLetters; l < kLetters + ell_rank; l++) q.out.push_back(l);
    for (int l = 0; l < kLetters; l++)
      if (count[l] == 1) q.out.push_back(l);
  } else {
    int pos;
    std::vector<int> o = parse_term(n, eq.substr(arrow + 2), pos);
    for (int l : o)
      if (count[l] == 0 || std::count(o.begin(), o.end(), l) > 1)
        fail(ErrorCode::invalid_model, "{}: output label '{}' is unknown or repeated", n.label(),
             (char)(l < 26 ? 'A' + l : 'a' + l - 26));
    if (pos >= 0) {
      std::vector<int> ell;
      for (int l = kLetters; l < kLetters + ell_rank; l++) ell.push_back(l);
      o.insert(o.begin() + pos, ell.begin(), ell.end());
    }
    q.out = o;
  }
  return q;
}

void infer_einsum(InferCtx& c) {
  c.require_inputs(1);
  std::vector<Shape> shapes;
  for (int i = 0; i < c.num_inputs(); i++) {
    if (c.type(i) != c.type(0))
      fail(ErrorCode::invalid_model, "{}: operands have different types", c.node.label());
    shapes.push_back(c.shape(i));
  }
  if (!dtype_is_float(c.type(0)) && !dtype_is_int(c.type(0)))
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  if (c.type(0) == DType::f16 || c.type(0) == DType::bf16)
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(c.type(0)));
  Equation q = parse(c.node, shapes);
  Shape o;
  for (int l : q.out) o.push_back(q.size[l]);
  c.set_output(0, c.type(0), o);
}

void ref_Einsum(KernelCtx& c) {
  std::vector<Shape> shapes;
  for (const Tensor* t : c.in) shapes.push_back(t->shape());
  Equation q = parse(c.node, shapes);
  int nl = (int)q.size.size(), ni = (int)q.in.size();
  // Output labels first, then the summed ones; each operand's stride per label (a label
  // repeated within an operand adds its strides: the diagonal).
  std::vector<int> order = q.out;
  for (int l = 0; l < nl; l++)
    if (q.size[l] >= 0 && std::find(q.out.begin(), q.out.end(), l) == q.out.end()) {
      bool used = false;
      for (auto& in : q.in) used |= std::find(in.begin(), in.end(), l) != in.end();
      if (used) order.push_back(l);
    }
  int no = (int)q.out.size(), nall = (int)order.size();
  std::vector<int64_t> dims(nall);
  for (int k = 0; k < nall; k++) dims[k] = q.size[order[k]];
  std::vector<std::vector<int64_t>> stride(ni, std::vector<int64_t>(nall, 0));
  for (int i = 0; i < ni; i++) {
    std::vector<int64_t> st = shape_strides(shapes[i]);
    for (size_t d = 0; d < q.in[i].size(); d++) {
      if (shapes[i][d] == 1) continue;  // broadcast dim
      int k = (int)(std::find(order.begin(), order.end(), q.in[i][d]) - order.begin());
      stride[i][k] += st[d];
    }
  }
  int64_t n_out = 1, n_red = 1;
  for (int k = 0; k < nall; k++) (k < no ? n_out : n_red) *= dims[k];
  dispatch_numeric(c.input(0).dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;  // ints wrap
    std::vector<const T*> x(ni);
    for (int i = 0; i < ni; i++) x[i] = c.input(i).template data<T>();
    T* y = c.output(0).template data<T>();
    std::vector<int64_t> idx(nall, 0), off(ni, 0);
    for (int64_t o = 0; o < n_out; o++) {
      Acc acc = 0;
      for (int64_t r = 0; r < n_red; r++) {
        Acc p = 1;
        for (int i = 0; i < ni; i++) p = p * (Acc)x[i][off[i]];
        acc = acc + p;
        // Odometer over the summed labels (the innermost ones).
        for (int k = nall - 1; k >= no; k--) {
          for (int i = 0; i < ni; i++) off[i] += stride[i][k];
          if (++idx[k] < dims[k]) break;
          for (int i = 0; i < ni; i++) off[i] -= stride[i][k] * dims[k];
          idx[k] = 0;
        }
      }
      y[o] = std::is_floating_point_v<T> ? (T)acc : (T)(int64_t)acc;
      for (int k = no - 1; k >= 0; k--) {
        for (int i = 0; i < ni; i++) off[i] += stride[i][k];
        if (++idx[k] < dims[k]) break;
        for (int i = 0; i < ni; i++) off[i] -= stride[i][k] * dims[k];
        idx[k] = 0;
      }
    }
  });
}

}  // namespace

const OpDef kOp_Einsum{"Einsum", infer_einsum, ref_Einsum};

}  // namespace rg

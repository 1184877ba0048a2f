// Matrix products: Gemm, MatMul (numpy semantics: 1-D operands promoted, batch dims
// broadcast) and MatMulInteger. float32 goes through the blocked sgemm; other types use a
// plain i-k-j loop.
#include <omp.h>

#include "kernels/ref/common.h"
#include "kernels/ref/sgemm.h"

namespace rg {
namespace {

// MatMul geometry: out = batch + [M] + [N] (M dropped for a 1-D A, N for a 1-D B).
struct MatMulDims {
  Shape out, batch, a_batch, b_batch;
  int64_t M = 1, K = 1, N = 1;
};

MatMulDims matmul_dims(const Node& n, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty())
    fail(ErrorCode::invalid_model, "{}: operands must have rank >= 1, got {} and {}", n.label(), shape_str(a),
         shape_str(b));
  MatMulDims d;
  // Numpy promotion: a 1-D A is a row vector [1, K], a 1-D B a column vector [K, 1].
  Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  d.M = a2[a2.size() - 2];
  d.K = a2.back();
  d.N = b2.back();
  if (b2[b2.size() - 2] != d.K)
    fail(ErrorCode::invalid_input, "{}: inner dimensions differ: {} x {}", n.label(), shape_str(a), shape_str(b));
  d.a_batch.assign(a2.begin(), a2.end() - 2);
  d.b_batch.assign(b2.begin(), b2.end() - 2);
  d.batch = broadcast_shapes(d.a_batch, d.b_batch, n);
  d.out = d.batch;
  if (a.size() > 1) d.out.push_back(d.M);
  if (b.size() > 1) d.out.push_back(d.N);
  return d;
}

// Element offsets of each broadcast batch's A and B matrices.
void batch_offsets(const MatMulDims& d, std::vector<int64_t>& ao, std::vector<int64_t>& bo) {
  const int64_t nb = shape_numel(d.batch);
  ao.assign(nb, 0);
  bo.assign(nb, 0);
  const std::vector<int64_t> sa = broadcast_strides(d.a_batch, d.batch), sb = broadcast_strides(d.b_batch, d.batch);
  std::vector<int64_t> idx(d.batch.size(), 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < nb; i++) {
    ao[i] = ia * d.M * d.K;
    bo[i] = ib * d.K * d.N;
    for (int r = (int)d.batch.size() - 1; r >= 0; r--) {
      idx[r]++;
      ia += sa[r];
      ib += sb[r];
      if (idx[r] < d.batch[r]) break;
      ia -= sa[r] * d.batch[r];
      ib -= sb[r] * d.batch[r];
      idx[r] = 0;
    }
  }
}

// Runs f(batch, a_offset, b_offset, parallel_inside) for each broadcast batch: threads go
// across batches when there are many, else inside each product.
template <typename F>
void for_each_batch(const MatMulDims& d, F&& f) {
  std::vector<int64_t> ao, bo;
  batch_offsets(d, ao, bo);
  const int64_t nb = (int64_t)ao.size();
  if (nb >= 2 * omp_get_max_threads() && d.M * d.N * d.K * nb > (1 << 18)) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < nb; i++) f(i, ao[i], bo[i], false);
  } else {
    for (int64_t i = 0; i < nb; i++) f(i, ao[i], bo[i], true);
  }
}

void infer_MatMul(InferCtx& c) {
  c.require_inputs(2, 2);
  DType t = c.type(0);
  if (t != c.type(1))
    fail(ErrorCode::invalid_model, "{}: operand types differ ({} and {})", c.node.label(), dtype_name(t),
         dtype_name(c.type(1)));
  if (t != DType::f32 && t != DType::f64 && t != DType::i32 && t != DType::i64 && t != DType::u32 &&
      t != DType::u64)
    fail(ErrorCode::unsupported_op, "{}: element type {} is not supported", c.node.label(), dtype_name(t));
  c.set_output(0, t, matmul_dims(c.node, c.shape(0), c.shape(1)).out);
}

template <typename T>
void matmul_plain(int64_t M, int64_t N, int64_t K, const T* a, const T* b, T* y) {
  if constexpr (std::is_integral_v<T>) {
    gemm_int<T>(M, N, K, a, b, y);
  } else {
    for (int64_t i = 0; i < M; i++) {
      T* yr = y + i * N;
      std::fill(yr, yr + N, T(0));
      for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++) yr[j] += a[i * K + k] * b[k * N + j];
    }
  }
}

void ref_MatMul(KernelCtx& c) {
  const Tensor& A = c.input(0);
  const Tensor& B = c.input(1);
  MatMulDims d = matmul_dims(c.node, A.shape(), B.shape());
  const int64_t M = d.M, N = d.N, K = d.K;
  if (A.dtype() == DType::f32) {
    const float* a = A.data<float>();
    const float* b = B.data<float>();
    float* y = c.output(0).data<float>();
    // B shared by every batch and A's batches not broadcast: one tall product.
    if (shape_numel(d.b_batch) == 1 && d.a_batch == d.batch) {
      sgemm(false, false, M * shape_numel(d.batch), N, K, 1.f, a, K, b, N, 0.f, y, N);
      return;
    }
    for_each_batch(d, [&](int64_t i, int64_t ao, int64_t bo, bool par) {
      sgemm(false, false, M, N, K, 1.f, a + ao, K, b + bo, N, 0.f, y + i * M * N, N, par);
    });
    return;
  }
  dispatch_numeric(A.dtype(), c.node, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* a = A.data<T>();
    const T* b = B.data<T>();
    T* y = c.output(0).data<T>();
    for_each_batch(d, [&](int64_t i, int64_t ao, int64_t bo, bool) {
      matmul_plain<T>(M, N, K, a + ao, b + bo, y + i * M * N);
    });
  });
}

// MatMulInteger: (A - a_zero_point) x (B - b_zero_point) in int32. a_zero_point is one
// value or one per row of A (M values); b_zero_point one value or one per column (N).
void infer_MatMulInteger(InferCtx& c) {
  c.require_inputs(2, 4);
  for (int i = 0; i < 2; i++)
    if (c.type(i) != DType::u8 && c.type(i) != DType::i8)
      fail(ErrorCode::unsupported_op, "{}: input {} is {}, expected uint8 or int8", c.node.label(), i,
           dtype_name(c.type(i)));
  c.set_output(0, DType::i32, matmul_dims(c.node, c.shape(0), c.shape(1)).out);
}

std::vector<int32_t> zero_point(const KernelCtx& c, int i, int64_t per) {
  std::vector<int32_t> zp(per, 0);
  if (!c.has_input(i)) return zp;
  std::vector<double> v = c.input(i).to_doubles();
  if (v.size() == 1)
    std::fill(zp.begin(), zp.end(), (int32_t)v[0]);
  else if ((int64_t)v.size() == per)
    for (int64_t j = 0; j < per; j++) zp[j] = (int32_t)v[j];
  else
    fail(ErrorCode::invalid_model, "{}: zero point {} has {} values, expected 1 or {}", c.node.label(), i, v.size(),
         per);
  return zp;
}

void ref_MatMulInteger(KernelCtx& c) {
  const Tensor& A = c.input(0);
  const Tensor& B = c.input(1);
  MatMulDims d = matmul_dims(c.node, A.shape(), B.shape());
  const int64_t M = d.M, N = d.N, K = d.K;
  const std::vector<int32_t> azp = zero_point(c, 2, M), bzp = zero_point(c, 3, N);
  std::vector<double> av = A.to_doubles(), bv = B.to_doubles();
  std::vector<int32_t> a(av.size()), b(bv.size());
  for (size_t i = 0; i < a.size(); i++) a[i] = (int32_t)av[i] - azp[i / K % M];
  for (size_t i = 0; i < b.size(); i++) b[i] = (int32_t)bv[i] - bzp[i % N];
  int32_t* y = c.output(0).data<int32_t>();
  for_each_batch(d, [&](int64_t i, int64_t ao, int64_t bo, bool) {
    gemm_int<int32_t>(M, N, K, a.data() + ao, b.data() + bo, y + i * M * N);
  });
}

// Gemm: Y = alpha * op(A) * op(B) + beta * C, A and B 2-D, C broadcast to [M, N]
// (before opset 7 the `broadcast` attribute enabled that; it is always allowed here).
struct GemmDims {
  int64_t M, N, K;
};

GemmDims gemm_dims(const Node& n, const Shape& a, const Shape& b, const Shape* cs) {
  if (a.size() != 2 || b.size() != 2)
    fail(ErrorCode::invalid_model, "{}: A and B must be 2-D, got {} and {}", n.label(), shape_str(a), shape_str(b));
  const bool ta = n.attr_i("transA", 0) != 0, tb = n.attr_i("transB", 0) != 0;
  GemmDims d{ta ? a[1] : a[0], tb ? b[0] : b[1], ta ? a[0] : a[1]};
  if ((tb ? b[1] : b[0]) != d.K)
    fail(ErrorCode::invalid_input, "{}: inner dimensions differ: A {} (transA={}) x B {} (transB={})", n.label(),
         shape_str(a), (int)ta, shape_str(b), (int)tb);
  if (cs) {
    const Shape& c = *cs;
    bool ok = c.size() <= 2;
    if (c.size() == 2) ok = ok && (c[0] == 1 || c[0] == d.M) && (c[1] == 1 || c[1] == d.N);
    if (c.size() == 1) ok = ok && (c[0] == 1 || c[0] == d.N);
    if (!ok)
      fail(ErrorCode::invalid_input, "{}: C {} cannot be broadcast to [{}, {}]", n.label(), shape_str(c), d.M, d.N);
  }
  return d;
}

void infer_Gemm(InferCtx& c) {
  c.require_inputs(2, 3);
  c.require_float(0);
  c.require_float(1);
  if (c.has_input(2)) c.require_float(2);
  GemmDims d = gemm_dims(c.node, c.shape(0), c.shape(1), c.has_input(2) ? &c.shape(2) : nullptr);
  c.set_output(0, DType::f32, {d.M, d.N});
}

void ref_Gemm(KernelCtx& c) {
  const Tensor& A = c.input(0);
  const Tensor& B = c.input(1);
  const bool has_c = c.has_input(2);
  GemmDims d = gemm_dims(c.node, A.shape(), B.shape(), has_c ? &c.input(2).shape() : nullptr);
  const bool ta = c.node.attr_i("transA", 0) != 0, tb = c.node.attr_i("transB", 0) != 0;
  const float alpha = c.node.attr_f("alpha", 1.f), beta = c.node.attr_f("beta", 1.f);
  float* y = c.output(0).data<float>();
  if (has_c) {
    // Y starts as beta * C broadcast to [M, N]; the product is then added to it.
    const Tensor& C = c.input(2);
    const float* cv = C.data<float>();
    const Shape& cs = C.shape();
    const int64_t rs = cs.size() == 2 && cs[0] != 1 ? cs[1] : 0;
    const int64_t cs1 = !cs.empty() && cs.back() != 1 ? 1 : 0;
    for (int64_t i = 0; i < d.M; i++)
      for (int64_t j = 0; j < d.N; j++) y[i * d.N + j] = beta * cv[i * rs + j * cs1];
  }
  sgemm(ta, tb, d.M, d.N, d.K, alpha, A.data<float>(), A.dim(1), B.data<float>(), B.dim(1), has_c ? 1.f : 0.f, y,
        d.N);
}

}  // namespace

const OpDef kOp_Gemm{"Gemm", infer_Gemm, ref_Gemm};
const OpDef kOp_MatMul{"MatMul", infer_MatMul, ref_MatMul};
const OpDef kOp_MatMulInteger{"MatMulInteger", infer_MatMulInteger, ref_MatMulInteger};

}  // namespace rg

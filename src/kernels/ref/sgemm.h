#pragma once
// A small cache-blocked float32 matrix product for the reference kernels: MatMul and Gemm
// call it directly, Conv and ConvTranspose after im2col. Plain C++ (the compiler
// vectorises the inner loop), OpenMP over blocks of C, accumulation in float.
// Fast enough for the reference to act as the oracle on ResNet-sized models; the oneDNN
// kernels are the fast path.
#include <cstdint>
#include <type_traits>

namespace rg {

// C = alpha * op(A) * op(B) + beta * C, all row-major.
//   op(A) is M x K: A itself (stored M x K, row stride lda) or, when trans_a, A^T of an
//   A stored K x M (row stride lda). Likewise op(B) is K x N (trans_b: B stored N x K).
//   ldc is C's row stride. beta == 0 overwrites C without reading it (NaN or
//   uninitialised memory in C does not leak through).
//   parallel: split the work across OpenMP threads; pass false when the caller is already
//   inside a parallel region.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool parallel = true);

}  // namespace rg

namespace rg {

// Plain i-k-j product for integer types (MatMul on int32/int64, MatMulInteger,
// ConvInteger): C[M x N] = A[M x K] * B[K x N], contiguous row-major, C overwritten.
// Integer sums wrap like the element type would (computed in unsigned arithmetic, so
// overflow is defined rather than undefined behaviour).
template <typename T>
void gemm_int(int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C) {
  using U = std::make_unsigned_t<T>;
  for (int64_t i = 0; i < M; i++) {
    U* c = reinterpret_cast<U*>(C + i * N);
    for (int64_t j = 0; j < N; j++) c[j] = 0;
    for (int64_t k = 0; k < K; k++) {
      const U a = (U)A[i * K + k];
      const T* b = B + k * N;
      for (int64_t j = 0; j < N; j++) c[j] += a * (U)b[j];
    }
  }
}

}  // namespace rg

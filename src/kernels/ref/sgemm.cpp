#include "kernels/ref/sgemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace rg {
namespace {

constexpr int64_t MR = 4;   // rows of C computed together: each loaded B row feeds 4 rows
constexpr int64_t NB = 64;  // columns per block: the 4 x 64 accumulator tile stays in L1

// Four rows at a time: each loaded B value feeds four accumulators. With Full the trip
// count is the constant NB, which the compiler unrolls and vectorises without remainder.
template <bool Full>
inline void rows4(int64_t nb, int64_t K, const float* A, int64_t sar, int64_t sak, const float* B, int64_t ldb,
                  float (&acc)[MR][NB]) {
  const int64_t n = Full ? NB : nb;
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * ldb;
    const float a0 = A[k * sak], a1 = A[sar + k * sak], a2 = A[2 * sar + k * sak], a3 = A[3 * sar + k * sak];
    for (int64_t j = 0; j < n; j++) {
      const float bj = b[j];
      acc[0][j] += a0 * bj;
      acc[1][j] += a1 * bj;
      acc[2][j] += a2 * bj;
      acc[3][j] += a3 * bj;
    }
  }
}

// acc[r][0..nb) = sum_k A(r, k) * B[k][0..nb), A(r, k) = A[r * sar + k * sak].
// The accumulator is a local array so the compiler knows it aliases neither A nor B.
inline void block(int64_t mr, int64_t nb, int64_t K, const float* A, int64_t sar, int64_t sak, const float* B,
                  int64_t ldb, float (&acc)[MR][NB]) {
  std::memset(acc, 0, sizeof(acc));
  if (mr == MR) {
    if (nb == NB)
      rows4<true>(nb, K, A, sar, sak, B, ldb, acc);
    else
      rows4<false>(nb, K, A, sar, sak, B, ldb, acc);
    return;
  }
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * ldb;
    for (int64_t r = 0; r < mr; r++) {
      const float a = A[r * sar + k * sak];
      float* ac = acc[r];
      for (int64_t j = 0; j < nb; j++) ac[j] += a * b[j];
    }
  }
}

// op(B) = B^T with few rows of A: dot products along contiguous K, no packing. Eight
// partial sums let the compiler vectorise without reassociating a single sum.
void gemm_dot(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t sar, int64_t sak,
              const float* B, int64_t ldb, float* C, int64_t ldc, bool parallel) {
  std::vector<float> apack;
  if (sak != 1) {  // make A's rows contiguous once
    apack.resize((size_t)M * K);
    for (int64_t i = 0; i < M; i++)
      for (int64_t k = 0; k < K; k++) apack[i * K + k] = A[i * sar + k * sak];
    A = apack.data();
    sar = K;
  }
#pragma omp parallel for schedule(static) if (parallel && N * K > (1 << 15))
  for (int64_t j = 0; j < N; j++) {
    const float* b = B + j * ldb;
    for (int64_t i = 0; i < M; i++) {
      const float* a = A + i * sar;
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= K; k += 8)
        for (int u = 0; u < 8; u++) s[u] += a[k + u] * b[k + u];
      float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      for (; k < K; k++) t += a[k] * b[k];
      C[i * ldc + j] += alpha * t;
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool parallel) {
  if (M <= 0 || N <= 0) return;
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;
    if (beta == 0.f)
      std::fill(c, c + N, 0.f);
    else if (beta != 1.f)
      for (int64_t j = 0; j < N; j++) c[j] *= beta;
  }
  if (K <= 0 || alpha == 0.f) return;
  // A(i, k) = A[i * sar + k * sak] covers both layouts of A.
  const int64_t sar = trans_a ? 1 : lda, sak = trans_a ? lda : 1;

  std::vector<float> packed;
  if (trans_b) {
    if (M <= 2 * MR) {
      gemm_dot(M, N, K, alpha, A, sar, sak, B, ldb, C, ldc, parallel);
      return;
    }
    // Transpose B once (K x N, contiguous rows) so the main loop reads rows of B.
    packed.resize((size_t)K * N);
    constexpr int64_t T = 32;
    for (int64_t j0 = 0; j0 < N; j0 += T)
      for (int64_t k0 = 0; k0 < K; k0 += T)
        for (int64_t j = j0; j < std::min(N, j0 + T); j++)
          for (int64_t k = k0; k < std::min(K, k0 + T); k++) packed[k * N + j] = B[j * ldb + k];
    B = packed.data();
    ldb = N;
  }

  const int64_t nbi = (M + MR - 1) / MR, nbj = (N + NB - 1) / NB;
  // Consecutive work items share a column block, so a thread reuses that block of B
  // (K x NB floats) from cache across its row blocks.
#pragma omp parallel for schedule(static) if (parallel && M * N * K > (1 << 18))
  for (int64_t t = 0; t < nbi * nbj; t++) {
    const int64_t ib = t % nbi, jb = t / nbi;
    const int64_t i0 = ib * MR, j0 = jb * NB;
    const int64_t mr = std::min(MR, M - i0), nb = std::min(NB, N - j0);
    float acc[MR][NB];
    block(mr, nb, K, A + i0 * sar, sar, sak, B + j0, ldb, acc);
    for (int64_t r = 0; r < mr; r++) {
      float* c = C + (i0 + r) * ldc + j0;
      for (int64_t j = 0; j < nb; j++) c[j] += alpha * acc[r][j];
    }
  }
}

}  // namespace rg

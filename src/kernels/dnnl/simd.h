#pragma once
// The few vector operations rangeguard's own kernels need, for AVX2 (8 lanes) and
// AVX-512 (16 lanes), so that one kernel body (included once per instruction set, each
// copy compiled for its own target) serves both. Only called after a run-time CPU check:
// the rest of the binary stays buildable and runnable for plain x86-64.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#define RG_AVX2 __attribute__((target("avx2,fma")))
#define RG_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace rg::simd {

struct V8 {
  using R = __m256;
  static constexpr int lanes = 8;
  RG_AVX2 static R load(const float* p) { return _mm256_loadu_ps(p); }
  RG_AVX2 static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  RG_AVX2 static R zero() { return _mm256_setzero_ps(); }
  RG_AVX2 static R set1(float x) { return _mm256_set1_ps(x); }
  RG_AVX2 static R add(R a, R b) { return _mm256_add_ps(a, b); }
  RG_AVX2 static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  RG_AVX2 static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  RG_AVX2 static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }    // a * b + c
  RG_AVX2 static R fnmadd(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a * b
  // min(max(v, lo), hi): a NaN in v becomes lo, then stays lo (the second operand wins).
  RG_AVX2 static R clamp(R v, R lo, R hi) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); }
  // v where v >= 0, else v * slope (a leaky ReLU with per-lane slopes).
  RG_AVX2 static R leaky(R v, R slope) {
    return _mm256_blendv_ps(v, _mm256_mul_ps(v, slope), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
  }
  // A fused chain (avx2_post.h's Post: clamps and leaky ReLUs with per-channel operands)
  // on the vector of channels from c0.
  template <class Post>
  RG_AVX2 static R chain(R v, const std::vector<Post>& post, int64_t c0) {
    for (const Post& p : post)
      v = p.kind == Post::leaky ? leaky(v, load(&p.slope[c0])) : clamp(v, load(&p.lo[c0]), load(&p.hi[c0]));
    return v;
  }
};

struct V16 {
  using R = __m512;
  static constexpr int lanes = 16;
  RG_AVX512 static R load(const float* p) { return _mm512_loadu_ps(p); }
  RG_AVX512 static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  RG_AVX512 static R zero() { return _mm512_setzero_ps(); }
  RG_AVX512 static R set1(float x) { return _mm512_set1_ps(x); }
  RG_AVX512 static R add(R a, R b) { return _mm512_add_ps(a, b); }
  RG_AVX512 static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  RG_AVX512 static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  RG_AVX512 static R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  RG_AVX512 static R fnmadd(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  // The zero-masked forms with every lane kept are plain vmaxps/vminps; GCC 12's unmasked
  // ones pass an "undefined" vector that -Wmaybe-uninitialized reports at every use.
  RG_AVX512 static R clamp(R v, R lo, R hi) {
    return _mm512_maskz_min_ps(0xffff, _mm512_maskz_max_ps(0xffff, v, lo), hi);
  }
  RG_AVX512 static R leaky(R v, R slope) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, _mm512_mul_ps(v, slope));
  }
  template <class Post>
  RG_AVX512 static R chain(R v, const std::vector<Post>& post, int64_t c0) {
    for (const Post& p : post)
      v = p.kind == Post::leaky ? leaky(v, load(&p.slope[c0])) : clamp(v, load(&p.lo[c0]), load(&p.hi[c0]));
    return v;
  }
};

}  // namespace rg::simd

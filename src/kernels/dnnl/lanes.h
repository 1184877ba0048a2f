#pragma once
// Element access for rangeguard's own loops over oneDNN tensors that hold fp32 or bf16:
// a value is widened to fp32, computed on, and narrowed back to the tensor's type. Inline
// and branch-free so that a loop over them vectorises (the out-of-line bf16_to_float and
// float_to_bf16 in core/dtype.h do not).
#include <immintrin.h>

#include <cstdint>

namespace rg {

inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return __builtin_bit_cast(float, (uint32_t)v << 16); }  // bf16 bits: exact

inline void narrow(float v, float& out) { out = v; }
// Rounded to nearest even like float_to_bf16, but without its early return; a NaN stays a
// quiet NaN.
inline void narrow(float v, uint16_t& out) {
  uint32_t u = __builtin_bit_cast(uint32_t, v);
  uint32_t rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16, quiet = (u >> 16) | 0x40;
  out = (uint16_t)((u & 0x7fffffff) > 0x7f800000 ? quiet : rounded);
}

// Whether the CPU converts to bf16 in one instruction (AVX512-BF16: where oneDNN runs
// bf16 natively); loops over bf16 then have a faster twin, written with the lanes below.
inline bool bf16_native() {
  static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512bf16"));
  return yes;
}

// The twins' instruction sets (every AVX512-BF16 CPU has BW and VL) and their lanes:
// 16 bf16 values widened, and 16 floats rounded to bf16 (nearest even) by one
// instruction, the lanes outside `m` neither read nor written. (The maskz forms: the plain
// ones trip GCC 12's -Wmaybe-uninitialized in its headers.)
#define RG_BF16_NATIVE __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

RG_BF16_NATIVE inline __m512 widen16(const uint16_t* x, __mmask16 m) {
  __m512i wide = _mm512_maskz_cvtepu16_epi32(m, _mm256_maskz_loadu_epi16(m, x));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(m, wide, 16));
}

RG_BF16_NATIVE inline void narrow16(__m512 v, uint16_t* y, __mmask16 m) {
  _mm256_mask_storeu_epi16(y, m, (__m256i)_mm512_cvtneps_pbh(v));
}

}  // namespace rg

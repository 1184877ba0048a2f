#pragma once
// float16 / bfloat16 in the reference kernels, by widening.
//
// The reference kernels compute in float32 (and the other C++ arithmetic types). Half
// types have no native arithmetic, so an operator that accepts them runs its float32 code
// on widened copies and rounds the results back: one extra copy per call, exact for
// data-movement and comparisons, and one rounding (as numpy does) for arithmetic.
#include "kernels/ref/common.h"

namespace rg {

inline bool is_half(DType t) { return t == DType::f16 || t == DType::bf16; }

// A new float32 tensor holding `t` (which must be f16 or bf16).
Tensor widen_to_f32(const Tensor& t);
// Rounds the float32 tensor `src` into `dst` (f16 or bf16, same element count).
void narrow_from_f32(const Tensor& src, Tensor& dst);

// If any input or output of `c` is f16/bf16, runs `fn` on a copy of the context where they
// are float32, rounds the outputs back and returns true. Otherwise returns false and does
// nothing, so a kernel starts with `if (run_widened(c, ref_Self)) return;`.
bool run_widened(KernelCtx& c, RefFn fn);

}  // namespace rg

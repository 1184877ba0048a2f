#pragma once
// The fused chain after a convolution, for rangeguard's own kernels (Winograd, grouped):
// what build_post_ops gives oneDNN, read back as per-channel clamps and leaky ReLUs that
// the kernels apply to vectors of channels before their store (simd.h's chain(), here
// for AVX2's 8 lanes).
#include <immintrin.h>

#include <vector>

#include "kernels/op.h"

#include "kernels/dnnl/simd.h"

namespace rg {

// One step after the convolution, applied per vector: a clamp, max(x, lo) then
// min(x, hi) with bounds per output channel (ReLU, Clip and the range checks of
// `protect`), or a leaky ReLU (LeakyRelu, PRelu).
struct Post {
  enum Kind { clamp, leaky } kind;
  std::vector<float> lo, hi, slope;  // per output channel: a clamp's bounds, a leaky ReLU's slopes
};

// The chain of `c` (the residual as a leading sum, ReLU then Clip merged into one clip, a
// scalar Max/Min as a one-sided clip, runs of clamps merged into one) for `k` output
// channels; false when a step is not among the kinds above.
bool build_post(const CompileCtx& c, int64_t k, std::vector<Post>& post, bool& has_sum);

// The chain on output channels [c0, c0 + 8).
RG_AVX2 inline __m256 apply_post(__m256 v, const std::vector<Post>& post, int64_t c0) {
  return simd::V8::chain(v, post, c0);
}

// The chain for one block of 8 output channels from c0, as a kernel's store loop applies
// it. The usual chain is one clamp (ReLU, Clip, protect's bounds); its bounds are then
// loaded once per block and kept in registers rather than reloaded per vector.
struct BlockPost {
  const std::vector<Post>* post;
  int64_t c0;
  bool one_clamp;
  __m256 lo, hi;
};

RG_AVX2 inline BlockPost block_post(const std::vector<Post>& post, int64_t c0) {
  const bool one = post.size() == 1 && post[0].kind == Post::clamp;
  const __m256 z = _mm256_setzero_ps();
  return {&post, c0, one, one ? _mm256_loadu_ps(&post[0].lo[c0]) : z, one ? _mm256_loadu_ps(&post[0].hi[c0]) : z};
}

RG_AVX2 inline __m256 apply_post(__m256 v, const BlockPost& p) {
  return p.one_clamp ? simd::V8::clamp(v, p.lo, p.hi) : apply_post(v, *p.post, p.c0);
}

}  // namespace rg

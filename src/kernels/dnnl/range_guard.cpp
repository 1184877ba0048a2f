// Fast RangeGuard: clamp-or-zero and count in one vectorised pass, directly on the
// layout the activation arrives in (plain, channels-last, or channel-blocked like
// nChw16c) so range supervision never forces a layout conversion. It may run in place.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

// The loops below are written branch-free (bitwise &, selects) so they vectorise: a
// short-circuit && in the range test alone makes them scalar and 5-10x slower.

// 1 when lo <= v <= hi, else 0 (NaN included): the one range test every loop uses.
inline int in_range(float v, float lo, float hi) { return (v >= lo) & (v <= hi); }

// In place (x == y, the planner's choice where nothing reads x later) a run is first
// only counted, and rewritten only if something in it is out of range (never, on clean
// data). A large activation has left the cache by the time its check runs; storing every
// value would dirty each line again and write it all back to memory a second time.
// (On random noise, where most runs hold out-of-range values, the count pass is extra:
// resnet50's per-channel checks 1.3 -> 2.0 ms; on its real input 1.3 -> 0.8 ms. Storing
// only the changed lanes instead, with masked stores, was 2-4x slower than both.)

// The out-of-range count of one contiguous run with a single [lo, hi]; NaN counts.
__attribute__((target_clones("avx512f", "avx2", "default")))
int64_t count_run(const float* x, int64_t n, float lo, float hi) {
  int32_t count = 0;
#pragma omp simd reduction(+ : count)
  for (int64_t i = 0; i < n; i++) count += 1 - in_range(x[i], lo, hi);
  return count;
}

// One contiguous run with a single [lo, hi]. Returns the out-of-range count.
__attribute__((target_clones("avx512f", "avx2", "default")))
int64_t guard_run(const float* x, float* y, int64_t n, float lo, float hi, bool zero) {
  if (x == y && count_run(x, n, lo, hi) == 0) return 0;
  int32_t count = 0;
  if (zero) {
#pragma omp simd reduction(+ : count)
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      int in = in_range(v, lo, hi);
      count += 1 - in;
      y[i] = in ? v : 0.f;
    }
  } else {
#pragma omp simd reduction(+ : count)
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      int in = in_range(v, lo, hi);
      count += 1 - in;
      float c = v < lo ? lo : v;
      y[i] = c > hi ? hi : c;  // NaN stays NaN, as Clip
    }
  }
  return count;
}

// One run of `len` values whose channel cycles with period `block` (channels-last: C
// channels per pixel; channel-blocked nChw16c: 16 channels per pixel of one block).
// Counts per lane, added up once at the end: a reduction clause on the inner loop adds
// its lanes up horizontally once per pixel, which cost more than the checks (C = 16).
int32_t* zeroed_lanes(int64_t block) {
  thread_local std::vector<int32_t> lanes;
  lanes.assign(block, 0);
  return lanes.data();
}

int64_t lane_total(const int32_t* cnt, int64_t block) {
  int64_t count = 0;
  for (int64_t k = 0; k < block; k++) count += cnt[k];
  return count;
}

// W counters (one register) for the whole run, where block is a multiple of W.
template <int W>
__attribute__((always_inline)) inline int64_t count_lanes(const float* x, int64_t len, const float* l, const float* h,
                                                         int64_t block) {
  int32_t acc[W] = {};
  for (int64_t p = 0; p < len; p += block)
    for (int64_t k = 0; k < block; k += W) {
#pragma omp simd
      for (int j = 0; j < W; j++) acc[j] += 1 - in_range(x[p + k + j], l[k + j], h[k + j]);
    }
  return lane_total(acc, W);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
int64_t count_tile(const float* x, int64_t len, const float* l, const float* h, int64_t block) {
  if (block % 16 == 0) return count_lanes<16>(x, len, l, h, block);
  // nChw8c (AVX2): the generic loop below took ~13 cycles per pixel there.
  if (block % 8 == 0) return count_lanes<8>(x, len, l, h, block);
  int32_t* cnt = zeroed_lanes(block);
  for (int64_t p = 0; p < len; p += block) {
#pragma omp simd
    for (int64_t k = 0; k < block; k++) cnt[k] += 1 - in_range(x[p + k], l[k], h[k]);
  }
  return lane_total(cnt, block);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
int64_t guard_tile(const float* x, float* y, int64_t len, const float* l, const float* h, int64_t block, bool zero) {
  if (x == y && count_tile(x, len, l, h, block) == 0) return 0;
  int32_t* cnt = zeroed_lanes(block);
  for (int64_t p = 0; p < len; p += block) {
    if (zero) {
#pragma omp simd
      for (int64_t k = 0; k < block; k++) {
        float v = x[p + k];
        int in = in_range(v, l[k], h[k]);
        cnt[k] += 1 - in;
        y[p + k] = in ? v : 0.f;
      }
    } else {
#pragma omp simd
      for (int64_t k = 0; k < block; k++) {
        float v = x[p + k];
        int in = in_range(v, l[k], h[k]);
        cnt[k] += 1 - in;
        float c = v < l[k] ? l[k] : v;
        y[p + k] = c > h[k] ? h[k] : c;
      }
    }
  }
  return lane_total(cnt, block);
}

// Sums body(i) over [0, n): on the plan's threads when `parallel`, else in this thread
// without entering an OpenMP region (even one with a false if-clause builds a team,
// ~2 us: it was most of a small site's cost).
template <class F>
int64_t sum_over(int64_t n, bool parallel, F body) {
  int64_t total = 0;
  if (parallel && omp_get_max_threads() > 1) {
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t i = 0; i < n; i++) total += body(i);
  } else {
    for (int64_t i = 0; i < n; i++) total += body(i);
  }
  return total;
}

// `runs` runs of `len` values; run r uses bounds block r % nblocks. Runs split over the
// plan's threads: a large activation is memory-bound, and one core cannot stream it.
int64_t guard_tiles(const float* x, float* y, int64_t runs, int64_t len, const float* lo, const float* hi,
                    int64_t block, int64_t nblocks, bool zero) {
  return sum_over(runs, runs > 1 && runs * len >= 65536, [&](int64_t r) {
    int64_t b = (r % nblocks) * block;
    return guard_tile(x + r * len, y + r * len, len, lo + b, hi + b, block, zero);
  });
}

class RangeGuardKernel : public Kernel {
 public:
  enum class Kind { tensor, channel_last, channel_blocked, plain_channel };
  RangeGuardKernel(const CompileCtx& c, Kind k, int64_t block, int64_t inner) : kind_(k), block_(block), inner_(inner) {
    zero_ = c.node.attr_s("mode", "clamp") == "zero";
    lo_ = c.in_values[1]->data<float>();
    hi_ = c.in_values[2]->data<float>();
    channels_ = c.in_values[1]->numel();
    if (!c.in_layouts.empty()) layout_ = c.in_layouts[0];
    n_ = shape_numel(c.in_shapes[0]);
  }
  void run(KernelCtx& c) override {
    const float* x = static_cast<const float*>(c.input(0).raw());
    float* y = static_cast<float*>(c.output(0).raw());
    int64_t count = 0;
    switch (kind_) {
      case Kind::tensor: {
        // Chunks of 16K values over the plan's threads.
        const int64_t chunk = 16384, chunks = (n_ + chunk - 1) / chunk;
        count = sum_over(chunks, chunks > 4, [&](int64_t i) {
          return guard_run(x + i * chunk, y + i * chunk, std::min(chunk, n_ - i * chunk), lo_[0], hi_[0], zero_);
        });
        break;
      }
      case Kind::channel_last: {
        // Runs of whole pixels (~16K values each): one call streams many pixels.
        const int64_t pixels = n_ / channels_, per = std::max<int64_t>(1, 16384 / channels_);
        const int64_t runs = (pixels + per - 1) / per;
        count = sum_over(runs, runs > 4, [&](int64_t r) {
          int64_t off = r * per * channels_, len = std::min(per, pixels - r * per) * channels_;
          return guard_tile(x + off, y + off, len, lo_, hi_, channels_, zero_);
        });
        break;
      }
      case Kind::channel_blocked:
        count = guard_tiles(x, y, n_ / (inner_ * block_), inner_ * block_, lo_, hi_, block_, channels_ / block_, zero_);
        break;
      case Kind::plain_channel:  // NCHW: runs of `inner` values share a channel
        for (int64_t s = 0, r = 0; s < n_; s += inner_, r++)
          count += guard_run(x + s, y + s, inner_, lo_[r % channels_], hi_[r % channels_], zero_);
        break;
    }
    if (c.in.size() > 3 && c.in[3]) count += c.input(3).data<int64_t>()[0];
    if (c.out.size() > 1 && c.out[1]) c.output(1).data<int64_t>()[0] = count;
  }
  std::string impl() const override {
    static const char* kinds[] = {"tensor", "channels-last", "channel-blocked", "nchw"};
    return std::string("fast:range_guard:") + kinds[(int)kind_];
  }
  Layout out_layout(int i) const override { return i == 0 ? layout_ : plain_layout(); }
  bool may_run_in_place() const override { return true; }
  // Bounds per padded channel and the padded element count (make_padded).
  void pad_bounds(std::vector<float> lo, std::vector<float> hi, int64_t n) {
    lo_pad_ = std::move(lo);
    hi_pad_ = std::move(hi);
    lo_ = lo_pad_.data();
    hi_ = hi_pad_.data();
    channels_ = (int64_t)lo_pad_.size();
    n_ = n;
  }

 private:
  Kind kind_;
  int64_t block_, inner_, channels_ = 1, n_ = 0;
  bool zero_ = false;
  const float *lo_ = nullptr, *hi_ = nullptr;
  std::vector<float> lo_pad_, hi_pad_;
  Layout layout_ = plain_layout();
};

// Channels padded up to a whole block (nChw8c with 10 channels, as oneDNN's AVX2 kernels
// give): the padding lanes hold zeros that later oneDNN ops rely on, so they get the
// bounds [-inf, inf]: never counted, never changed.
std::unique_ptr<Kernel> make_padded(const CompileCtx& c) {
  const Shape& x = c.in_shapes[0];
  const Tensor& lo = *c.in_values[1];
  const dnnl_memory_desc_t& d = c.in_layouts[0];
  int64_t block = channel_block(d);
  if (x.size() < 3 || !block || d.padded_dims[0] != x[0]) return nullptr;
  for (size_t k = 2; k < x.size(); k++)
    if (d.padded_dims[k] != x[k]) return nullptr;
  if (lo.numel() != 1 && (lo.numel() != x[1] || lo.rank() != (int)x.size() - 1)) return nullptr;
  int64_t inner = 1;
  for (size_t k = 2; k < x.size(); k++) inner *= x[k];
  int64_t padded = d.padded_dims[1];
  std::vector<float> lo_p(padded, -INFINITY), hi_p(padded, INFINITY);
  for (int64_t k = 0; k < x[1]; k++) {
    lo_p[k] = lo.data<float>()[lo.numel() == 1 ? 0 : k];
    hi_p[k] = c.in_values[2]->data<float>()[lo.numel() == 1 ? 0 : k];
  }
  auto kernel = std::make_unique<RangeGuardKernel>(c, RangeGuardKernel::Kind::channel_blocked, block, inner);
  kernel->pad_bounds(std::move(lo_p), std::move(hi_p), x[0] * padded * inner);
  return kernel;
}

std::unique_ptr<Kernel> make_range_guard(const CompileCtx& c) {
  if (!c.in_values[1] || !c.in_values[2] || c.in_types[0] != DType::f32) return nullptr;
  const Shape& x = c.in_shapes[0];
  const Tensor& lo = *c.in_values[1];
  const Tensor& hi = *c.in_values[2];
  if (lo.shape() != hi.shape() || lo.dtype() != DType::f32) return nullptr;
  using K = RangeGuardKernel::Kind;
  bool plain = c.in_layouts.empty() || is_plain(c.in_layouts[0]);
  if (!plain && layout_bytes(c.in_layouts[0]) != (size_t)shape_numel(x) * 4) return make_padded(c);
  if (lo.numel() == 1) return std::make_unique<RangeGuardKernel>(c, K::tensor, 1, 1);
  // Per channel: lo is [C, 1, ..., 1] against x's axis r - lo.rank().
  int axis = (int)x.size() - lo.rank();
  if (axis < 0 || x[axis] != lo.numel()) return nullptr;
  for (int d = 1; d < lo.rank(); d++)
    if (lo.shape()[d] != 1) return nullptr;
  int64_t inner = 1;
  for (size_t d = axis + 1; d < x.size(); d++) inner *= x[d];
  // Channels on the last axis (a Linear layer's [.., features]) are channels-last: one
  // guard_run call per value would cost ~12 ns each instead of a vector lane.
  if (plain && inner == 1) return std::make_unique<RangeGuardKernel>(c, K::channel_last, 1, 0);
  if (plain) return std::make_unique<RangeGuardKernel>(c, K::plain_channel, 1, inner);
  const dnnl_memory_desc_t& d = c.in_layouts[0];
  if (axis != 1 || d.format_kind != dnnl_blocked) return nullptr;
  const auto& bd = d.format_desc.blocking;
  if (bd.inner_nblks == 0 && bd.strides[1] == 1) return std::make_unique<RangeGuardKernel>(c, K::channel_last, 1, 0);
  int64_t block = channel_block(d);
  if (block && x[1] % block == 0) return std::make_unique<RangeGuardKernel>(c, K::channel_blocked, block, inner);
  return nullptr;
}

}  // namespace

const FastDef kFast_RangeGuard{"RangeGuard", make_range_guard};

}  // namespace rg

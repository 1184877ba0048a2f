#include "bench/histogram.h"

#include <algorithm>
#include <cmath>

namespace rg {

// Bucket layout: values below sub_ (= 2^shift_) are exact. Above, the range
// [2^msb, 2^(msb+1)) splits into sub_ equal buckets, so a bucket's width is at most
// 1/sub_ of the values in it.
LatencyHistogram::LatencyHistogram(int sub_buckets) : sub_(sub_buckets) {
  shift_ = 0;
  while ((1 << shift_) < sub_) shift_++;
  sub_ = 1 << shift_;
  counts_.assign((size_t)(64 - shift_ + 1) * sub_, 0);
}

int LatencyHistogram::bucket_of(int64_t ns) const {
  if (ns < 0) ns = 0;
  uint64_t v = (uint64_t)ns;
  if (v < (uint64_t)sub_) return (int)v;
  int msb = 63 - __builtin_clzll(v);          // v in [2^msb, 2^(msb+1))
  int level = msb - shift_ + 1;                // level >= 1
  int offset = (int)((v >> (msb - shift_)) - (uint64_t)sub_);  // 0 .. sub_-1
  return level * sub_ + offset;
}

int64_t LatencyHistogram::upper_edge(int b) const {
  int level = b / sub_, offset = b % sub_;
  if (level == 0) return offset;
  int msb = level + shift_ - 1;
  uint64_t width = 1ull << (msb - shift_);
  return (int64_t)(((uint64_t)(sub_ + offset) << (msb - shift_)) + width - 1);
}

void LatencyHistogram::record(int64_t ns) {
  counts_[bucket_of(ns)]++;
  count_++;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < counts_.size() && i < o.counts_.size(); i++) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

int64_t LatencyHistogram::quantile_ns(double q) const {
  if (count_ == 0) return 0;
  return value_at_rank((int64_t)std::ceil(std::clamp(q, 0.0, 1.0) * (double)count_));
}

std::vector<std::pair<int64_t, int64_t>> LatencyHistogram::buckets() const {
  std::vector<std::pair<int64_t, int64_t>> r;
  for (size_t b = 0; b < counts_.size(); b++)
    if (counts_[b]) r.emplace_back(std::min(upper_edge((int)b), max_), counts_[b]);
  return r;
}

int64_t LatencyHistogram::value_at_rank(int64_t rank) const {
  if (count_ == 0) return 0;
  rank = std::clamp<int64_t>(rank, 1, count_);
  int64_t seen = 0;
  for (size_t b = 0; b < counts_.size(); b++) {
    seen += counts_[b];
    if (seen >= rank) return std::min(upper_edge((int)b), max_);
  }
  return max_;
}

}  // namespace rg

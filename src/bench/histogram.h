#pragma once
// Latency histogram with bounded relative error (HdrHistogram style): values in
// nanoseconds fall into log-linear buckets, `sub_buckets` per power of two, so any
// percentile is exact to within 1 / sub_buckets (128 -> under 1%). Recording is O(1)
// and allocation-free; histograms merge by adding counts.
#include <cstdint>
#include <utility>
#include <vector>

namespace rg {

class LatencyHistogram {
 public:
  explicit LatencyHistogram(int sub_buckets = 128);
  void record(int64_t ns);
  void merge(const LatencyHistogram& o);
  int64_t count() const { return count_; }
  // Value at quantile q in [0, 1] (the upper edge of its bucket, clamped to the max seen).
  int64_t quantile_ns(double q) const;
  // Value of the rank-th smallest recording (1-based), to bucket precision.
  int64_t value_at_rank(int64_t rank) const;
  // Non-empty buckets in increasing order as (upper edge ns, count): a CDF to plot.
  std::vector<std::pair<int64_t, int64_t>> buckets() const;
  int64_t min_ns() const { return count_ ? min_ : 0; }
  int64_t max_ns() const { return max_; }
  double mean_ns() const { return count_ ? (double)sum_ / (double)count_ : 0; }

 private:
  int bucket_of(int64_t ns) const;
  int64_t upper_edge(int bucket) const;
  int sub_, shift_;
  std::vector<int64_t> counts_;
  int64_t count_ = 0, min_ = INT64_MAX, max_ = 0;
  __int128 sum_ = 0;
};

}  // namespace rg

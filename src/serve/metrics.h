#pragma once
// Server metrics in the Prometheus text exposition format (GET /metrics): infer requests
// by HTTP status, latency histograms (queue wait, compute, total), the size of the batches
// the dynamic batcher formed, and, for a model protected with `--detect`, the running
// count of out-of-bound activations: a live soft-error alarm.
//
// Prometheus histograms have fixed cumulative buckets (`le`), unlike the log-linear
// LatencyHistogram of the benchmark: scrapers aggregate them across servers by bucket.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace rg::serve {

class PromHistogram {
 public:
  explicit PromHistogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Appends `name_bucket{le=...}`, `name_sum` and `name_count` lines.
  void write(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // one per bound, plus +Inf; not cumulative
  double sum_ = 0;
  mutable std::mutex mu_;
};

class Metrics {
 public:
  Metrics();
  void count_request(int http_status);
  void observe_request(double queue_s, double compute_s);  // a request that ran
  void observe_total(double total_s);                        // every infer request
  void observe_batch(int64_t samples_in_batch);
  void add_oob(int64_t n) { oob_ += n; }
  void set_queue_depth(int64_t n) { queue_depth_ = n; }

  int64_t oob_total() const { return oob_; }
  std::string text() const;  // the whole exposition

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> by_status_;
  PromHistogram queue_, compute_, total_, batch_;
  std::atomic<int64_t> oob_{0}, queue_depth_{0};
};

}  // namespace rg::serve

#include "serve/metrics.h"

#include <fmt/format.h>

namespace rg::serve {
namespace {

// Seconds, from 100 us (a small model's compute) to 10 s (a request timing out).
std::vector<double> latency_bounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string num(double v) { return fmt::format("{}", v); }

}  // namespace

PromHistogram::PromHistogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void PromHistogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) i++;
  std::lock_guard<std::mutex> l(mu_);
  counts_[i]++;
  sum_ += v;
}

uint64_t PromHistogram::count() const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t n = 0;
  for (uint64_t c : counts_) n += c;
  return n;
}

void PromHistogram::write(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> l(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); i++) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, num(bounds_[i]), cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cum, name, num(sum_), name, cum);
}

Metrics::Metrics()
    : queue_(latency_bounds()), compute_(latency_bounds()), total_(latency_bounds()),
      batch_({1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128}) {}

void Metrics::count_request(int http_status) {
  std::lock_guard<std::mutex> l(mu_);
  by_status_[http_status]++;
}

void Metrics::observe_request(double queue_s, double compute_s) {
  queue_.observe(queue_s);
  compute_.observe(compute_s);
}

void Metrics::observe_total(double total_s) { total_.observe(total_s); }
void Metrics::observe_batch(int64_t n) { batch_.observe((double)n); }

std::string Metrics::text() const {
  std::string out;
  out += "# HELP rangeguard_requests_total Inference requests answered, by HTTP status.\n";
  out += "# TYPE rangeguard_requests_total counter\n";
  {
    std::lock_guard<std::mutex> l(mu_);
    if (by_status_.empty()) out += "rangeguard_requests_total{code=\"200\"} 0\n";
    for (const auto& kv : by_status_) out += fmt::format("rangeguard_requests_total{{code=\"{}\"}} {}\n", kv.first, kv.second);
  }
  queue_.write(out, "rangeguard_queue_seconds", "Time a request waited in the batching queue.");
  compute_.write(out, "rangeguard_compute_seconds", "Model execution time of the batch a request ran in.");
  total_.write(out, "rangeguard_request_seconds", "Time from the request body received to the response ready.");
  batch_.write(out, "rangeguard_batch_size", "Samples (dim 0 summed over its requests) per executed batch.");
  out += "# HELP rangeguard_oob_activations_total Out-of-bound activations counted by a protected model's detector.\n";
  out += "# TYPE rangeguard_oob_activations_total counter\n";
  out += fmt::format("rangeguard_oob_activations_total {}\n", oob_.load());
  out += "# HELP rangeguard_queue_depth Requests waiting to be batched.\n# TYPE rangeguard_queue_depth gauge\n";
  out += fmt::format("rangeguard_queue_depth {}\n", queue_depth_.load());
  return out;
}

}  // namespace rg::serve

#include "bench/self_test.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "bench/driver.h"
#include "bench/report.h"

namespace rg {
namespace {

// Queries per second issued over trace[lo, hi): the inverse slope of a least-squares
// line through (query, issue time), so a few late issues move it little.
double fitted_rate(const std::vector<TraceEntry>& trace, size_t lo, size_t hi) {
  double n = (double)(hi - lo), mq = 0, mt = 0, cov = 0, var = 0;
  for (size_t i = lo; i < hi; ++i) mq += (double)trace[i].query / n, mt += (double)trace[i].issued_ns / n;
  for (size_t i = lo; i < hi; ++i) {
    double dq = (double)trace[i].query - mq;
    cov += dq * ((double)trace[i].issued_ns - mt), var += dq * dq;
  }
  return cov > 0 ? 1e9 * var / cov : 0;
}

}  // namespace

nlohmann::json run_self_test(double seconds, const SelfTestLimits& lim) {
  nlohmann::json j;
  NullSut null(1);
  WorkerPool pool(1);
  PhaseSettings s;
  s.min_duration_s = seconds;
  s.min_queries = 1;
  s.epoch = BenchClock::now();
  warm_up(null, pool, 0.05, 1);

  // 1. Closed loop: everything the harness does per query (clock reads, query ids,
  //    histogram) with nothing in between.
  PhaseResult closed = run_phase(null, pool, s);
  double cost_ns = closed.seconds * 1e9 / (double)std::max<int64_t>(closed.queries, 1);
  bool cost_ok = cost_ns <= lim.max_cost_ns && closed.queries_per_s() >= lim.min_qps;
  j["harness"] = {{"queries", closed.queries}, {"queries_per_s", closed.queries_per_s()}, {"cost_ns_per_query", cost_ns},
                  {"limit_ns", lim.max_cost_ns}, {"min_queries_per_s", lim.min_qps}, {"pass", cost_ok}};

  // 2. Server arrivals: issue times against a Poisson schedule at the target rate.
  //    The rate is fitted to the issue times between the 1st and 99th percentile
  //    query: one stall of the thread (another process on a shared machine) delays
  //    the few queries behind it, and the harness then catches up and keeps the
  //    schedule, so a stalled query at either end must not decide the rate.
  s.scenario = Scenario::server;
  s.target_qps = lim.server_qps;
  s.trace = true;
  PhaseResult server = run_phase(null, pool, s);
  size_t n = server.trace.size();
  double trimmed = n > 1000 ? fitted_rate(server.trace, n / 100, n * 99 / 100) : 0;
  double signed_err = trimmed / lim.server_qps - 1, err = std::fabs(signed_err);
  bool rate_ok = err <= lim.max_rate_error;
  j["server_arrivals"] = {{"target_qps", lim.server_qps},
                          {"issued_qps", trimmed},
                          {"issued_qps_first_to_last", server.issued_qps},
                          {"relative_error", signed_err},
                          {"limit", lim.max_rate_error},
                          {"issue_delay_us", {{"p50", server.issue_delay.quantile_ns(0.5) / 1e3},
                                              {"p99", server.issue_delay.quantile_ns(0.99) / 1e3},
                                              {"max", server.issue_delay.max_ns() / 1e3}}},
                          {"pass", rate_ok}};

  // 3. Histogram: percentiles of log-uniform latencies (1 us .. 1 s) against exact ones.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(std::log(1e3), std::log(1e9));
  std::vector<int64_t> v(200000);
  LatencyHistogram h;
  for (auto& x : v) h.record(x = (int64_t)std::exp(u(rng)));
  std::sort(v.begin(), v.end());
  double worst = 0;
  for (double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    int64_t exact = v[(size_t)std::ceil(q * (double)v.size()) - 1];
    worst = std::max(worst, std::fabs((double)h.quantile_ns(q) - (double)exact) / (double)exact);
  }
  bool hist_ok = worst <= lim.max_quantile_error;
  j["histogram"] = {{"max_relative_error", worst}, {"limit", lim.max_quantile_error}, {"pass", hist_ok}};
  j["pass"] = cost_ok && rate_ok && hist_ok;
  j["environment"] = environment_json(1, 1);
  return j;
}

}  // namespace rg

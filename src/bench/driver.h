#pragma once
// A whole `rangeguard bench` run on top of the load generator: warm-up, the measured
// run (or --compare rounds, or the --find-peak search), the verdict, and sweeps.
// Options are a plain struct validated once (DESIGN.md 8); the CLI only parses and prints.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen.h"
#include "bench/stats.h"

namespace rg {

struct BenchConfig {
  Scenario scenario = Scenario::single_stream;
  double min_duration_s = 10;   // measured time at least this long ...
  int64_t min_queries = 100;    // ... and at least this many queries (offline: samples)
  double warmup_s = 1;          // untimed closed-loop runs first
  int64_t batch = 1;            // samples per query (single-stream, server), per batch (offline)
  int64_t samples_per_query = 8;  // multi-stream
  double target_qps = 0;        // server; 0 = half the warm-up capacity
  double latency_bound_ms = 0;  // 0 = none (server: VALID then ignores latency)
  double percentile = 0;        // 0 = the scenario's metric: p90 single-stream, else p99
  double confidence = 0.99;     // early stopping
  bool find_peak = false;       // server: highest target QPS meeting the bound
  double peak_tolerance = 0.01; // bisect until (high - low) / low is at most this
  bool sweep = false;           // server: latency over target QPS
  int sweep_points = 6;
  int rounds = 10;              // --compare: alternating rounds (ABBA order)
  uint64_t seed = 1;            // arrival schedule
  bool trace = false;
  std::function<void(const std::string&)> log;  // progress lines (stderr)

  void validate() const;
  double metric_percentile() const;
  int64_t query_samples() const { return scenario == Scenario::multi_stream ? samples_per_query : batch; }
};

// VALID or INVALID, with every reason, and the early-stopping estimate of the percentile.
struct Verdict {
  bool valid = true;
  std::vector<std::string> reasons;
  int64_t es_max_overlatency = -1;  // -1: too few queries to estimate
  int64_t es_latency_ns = 0;        // latency that, at `confidence`, the percentile is under
};
Verdict judge(const PhaseResult& r, const BenchConfig& c);

struct ModelRun {
  PhaseResult result;
  Verdict verdict;
};

struct Probe {  // one find-peak trial
  double target_qps = 0, achieved_qps = 0;
  int64_t percentile_ns = 0;
  bool valid = false;
};

struct SweepPoint {
  double x = 0;  // streams or target QPS
  double queries_per_s = 0, samples_per_s = 0;
  int64_t p50_ns = 0, p90_ns = 0, p99_ns = 0;
  bool valid = false;
};

struct BenchResult {
  double warmup_qps = 0;        // closed-loop capacity estimate (first model)
  double target_qps = 0;        // server: the rate of the reported run
  std::vector<ModelRun> runs;   // one per model; two with --compare
  // --compare: per round, B's time per query over A's (p50; offline: seconds per sample)
  std::vector<double> round_ratios;
  RatioCI ratio;
  double peak_qps = 0;          // --find-peak
  std::vector<Probe> probes;
  std::string sweep_over;       // "target_qps" or "streams"
  std::vector<SweepPoint> sweep;
};

// Warms up every SUT, then measures: --find-peak (first SUT), --compare (all SUTs in
// alternating rounds), or one run. Server sweeps run here too; sweeps over concurrency
// need fresh SUTs per point, see sweep_streams.
BenchResult run_benchmark(const std::vector<Sut*>& suts, WorkerPool& pool, const BenchConfig& c);

// Closed-loop sweep over concurrency: `make(k)` builds a SUT with k streams.
std::vector<SweepPoint> sweep_streams(const std::function<std::unique_ptr<Sut>(int)>& make,
                                      const std::vector<int>& streams, const BenchConfig& c);

}  // namespace rg

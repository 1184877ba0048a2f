#pragma once
// The statistics a load generator needs, kept apart from the timing loops so they can be
// unit-tested exactly: Poisson arrival schedules, LoadGen-style early stopping (a binomial
// test at a stated confidence) and a confidence interval for a ratio of two latencies.
#include <cstdint>
#include <vector>

namespace rg {

// Arrival times (ns from the start) of `n` queries of a Poisson process at `qps`: gaps
// are exponential with mean 1/qps, drawn from a seeded generator so a run is replayable.
std::vector<int64_t> poisson_schedule(double qps, int64_t n, uint64_t seed);

// P(X <= h) for X ~ Binomial(n, q), computed in log space (n may be in the millions).
double binomial_cdf(int64_t h, int64_t n, double q);

// Early stopping (MLPerf LoadGen): with `n` queries processed, the largest number of
// "overlatency" queries h (latency above a threshold) such that, were the true fraction
// of queries above the threshold 1 - percentile or more, seeing at most h of them would
// have probability at most 1 - confidence. Then, with that confidence, the threshold is
// at or above the true percentile. Returns -1 when n is too small even for h = 0
// (e.g. fewer than 44 queries for p90, 459 for p99 at 99%).
int64_t early_stopping_max_overlatency(int64_t n, double percentile, double confidence = 0.99);
// The fewest queries for which early stopping allows h = 0.
int64_t early_stopping_min_queries(double percentile, double confidence = 0.99);

// Two-sided Student-t quantile t_{1-alpha/2, df} (exact table for small df, Cornish-Fisher
// expansion beyond; error under 1e-3, enough for a reported interval).
double student_t_quantile(double confidence, int64_t df);

// The ratio B/A from per-round ratios: the geometric mean and its t-interval on the log
// scale (rounds are independent repetitions; logs make B/A and A/B symmetric).
struct RatioCI {
  double ratio = 0, low = 0, high = 0;
  int64_t rounds = 0;
};
RatioCI ratio_confidence_interval(const std::vector<double>& ratios, double confidence = 0.95);

}  // namespace rg

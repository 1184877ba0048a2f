// The load generator's arithmetic: histogram error bound, Poisson schedules, early
// stopping, the ratio interval, and the verdict on a no-op system under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "bench/driver.h"
#include "bench/histogram.h"
#include "bench/loadgen.h"
#include "bench/stats.h"

namespace rg {
namespace {

TEST(LatencyHistogram, PercentilesWithinOnePercent) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> lat(std::log(2e6), 1.0);  // ~2 ms, heavy tail
  std::vector<int64_t> v(100000);
  LatencyHistogram h;
  for (auto& x : v) h.record(x = 1 + (int64_t)lat(rng));
  std::sort(v.begin(), v.end());
  for (double q : {0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    int64_t exact = v[(size_t)std::ceil(q * v.size()) - 1];
    int64_t got = h.quantile_ns(q);
    EXPECT_GE(got, exact) << q;  // the upper edge of the bucket: never optimistic
    EXPECT_LE((double)(got - exact) / (double)exact, 0.01) << q;
  }
  EXPECT_EQ(h.max_ns(), v.back());
  EXPECT_EQ(h.value_at_rank((int64_t)v.size()), v.back());
}

TEST(LatencyHistogram, SmallValuesExactAndMergeAdds) {
  LatencyHistogram a, b;
  for (int i = 1; i <= 100; i++) a.record(i);
  for (int i = 101; i <= 200; i++) b.record(i);
  EXPECT_EQ(a.quantile_ns(0.5), 50);  // below 128 buckets are one ns wide
  a.merge(b);
  EXPECT_EQ(a.count(), 200);
  EXPECT_EQ(a.min_ns(), 1);
  EXPECT_EQ(a.max_ns(), 200);
  EXPECT_DOUBLE_EQ(a.mean_ns(), 100.5);
  int64_t total = 0;
  for (auto [edge, n] : a.buckets()) total += n;
  EXPECT_EQ(total, 200);
}

TEST(PoissonSchedule, RateAndExponentialGaps) {
  const double qps = 5000;
  auto t = poisson_schedule(qps, 200000, 11);
  ASSERT_EQ(t.size(), 200000u);
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  double rate = (double)t.size() / (t.back() / 1e9);
  EXPECT_NEAR(rate / qps, 1.0, 0.01);
  // Exponential gaps: the coefficient of variation is 1.
  double mean = 0, m2 = 0;
  for (size_t i = 1; i < t.size(); i++) mean += (double)(t[i] - t[i - 1]);
  mean /= (double)(t.size() - 1);
  for (size_t i = 1; i < t.size(); i++) m2 += std::pow((double)(t[i] - t[i - 1]) - mean, 2);
  EXPECT_NEAR(std::sqrt(m2 / (double)(t.size() - 2)) / mean, 1.0, 0.02);
  EXPECT_EQ(poisson_schedule(qps, 1000, 11), std::vector<int64_t>(t.begin(), t.begin() + 1000));  // replayable
  EXPECT_NE(poisson_schedule(qps, 1000, 12), std::vector<int64_t>(t.begin(), t.begin() + 1000));
}

TEST(EarlyStopping, MatchesTheBinomialTest) {
  // With no overlatency query, n must satisfy p^n <= 1 - confidence.
  EXPECT_EQ(early_stopping_min_queries(0.90), 44);
  EXPECT_EQ(early_stopping_min_queries(0.99), 459);
  EXPECT_EQ(early_stopping_max_overlatency(43, 0.90), -1);
  EXPECT_EQ(early_stopping_max_overlatency(44, 0.90), 0);
  EXPECT_EQ(early_stopping_max_overlatency(458, 0.99), -1);
  EXPECT_EQ(early_stopping_max_overlatency(459, 0.99), 0);
  for (int64_t n : {100, 1000, 24576, 270336}) {
    for (double p : {0.9, 0.99}) {
      if (n < early_stopping_min_queries(p)) continue;
      int64_t h = early_stopping_max_overlatency(n, p);
      ASSERT_GE(h, 0);
      EXPECT_LE(binomial_cdf(h, n, 1 - p), 0.01) << n << " " << p;
      EXPECT_GT(binomial_cdf(h + 1, n, 1 - p), 0.01) << n << " " << p;
      EXPECT_LT(h, (double)n * (1 - p));  // stricter than the plain percentile
    }
  }
}

TEST(EarlyStopping, BinomialCdfAgainstDirectSum) {
  const int n = 30;
  const double q = 0.2;
  double cdf = 0;
  for (int k = 0; k <= n; k++) {
    double c = std::tgamma(n + 1.0) / (std::tgamma(k + 1.0) * std::tgamma(n - k + 1.0));
    cdf += c * std::pow(q, k) * std::pow(1 - q, n - k);
    EXPECT_NEAR(binomial_cdf(k, n, q), std::min(cdf, 1.0), 1e-9) << k;
  }
}

TEST(RatioInterval, StudentTAndGeometricMean) {
  EXPECT_NEAR(student_t_quantile(0.95, 4), 2.776, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.95, 19), 2.093, 2e-3);
  EXPECT_NEAR(student_t_quantile(0.95, 100), 1.984, 1e-3);
  RatioCI same = ratio_confidence_interval({1.02, 1.02, 1.02});
  EXPECT_NEAR(same.ratio, 1.02, 1e-12);
  EXPECT_NEAR(same.low, 1.02, 1e-12);
  EXPECT_NEAR(same.high, 1.02, 1e-12);
  RatioCI r = ratio_confidence_interval({0.9, 1.1, 1.0, 1.05, 0.95});
  RatioCI inv = ratio_confidence_interval({1 / 0.9, 1 / 1.1, 1.0, 1 / 1.05, 1 / 0.95});
  EXPECT_LT(r.low, r.ratio);
  EXPECT_GT(r.high, r.ratio);
  EXPECT_NEAR(r.low * inv.high, 1.0, 1e-12);  // symmetric on the log scale
}

TEST(LoadGen, ClosedLoopMeetsMinimumsAndServerKeepsTheSchedule) {
  NullSut sut(1);
  WorkerPool pool(1);
  PhaseSettings s;
  s.min_duration_s = 0.05;
  s.min_queries = 1000;
  s.trace = true;
  s.epoch = BenchClock::now();
  PhaseResult r = run_phase(sut, pool, s);
  EXPECT_GE(r.seconds, 0.05);
  EXPECT_GE(r.queries, 1000);
  EXPECT_EQ((int64_t)r.trace.size(), r.queries);
  s.scenario = Scenario::server;
  s.target_qps = 20000;
  s.min_queries = 10;
  s.trace = false;
  r = run_phase(sut, pool, s);
  EXPECT_EQ(r.queries, r.scheduled);
  EXPECT_GE(r.seconds, 0.05);  // the schedule covers the minimum duration
  EXPECT_NEAR(r.issued_qps / 20000, 1.0, 0.15);  // loose: shared CI machines
}

// Every query takes 1 ms of a 0.5 ms bound: INVALID with the bound named, and the
// server stops early instead of finishing a schedule it has already failed.
class SlowSut : public Sut {
 public:
  int workers() const override { return 1; }
  void run_query(int, int64_t, int64_t) override {
    auto until = BenchClock::now() + std::chrono::microseconds(1000);
    while (BenchClock::now() < until) {
    }
  }
};

TEST(LoadGen, ImpossibleBoundIsInvalid) {
  SlowSut sut;
  WorkerPool pool(1);
  BenchConfig c;
  c.scenario = Scenario::server;
  c.min_duration_s = 1;
  c.min_queries = 500;
  c.warmup_s = 0;
  c.target_qps = 200;
  c.latency_bound_ms = 0.5;
  BenchResult r = run_benchmark({&sut}, pool, c);
  const ModelRun& run = r.runs.at(0);
  EXPECT_FALSE(run.verdict.valid);
  ASSERT_FALSE(run.verdict.reasons.empty());
  EXPECT_TRUE(run.result.aborted);
  EXPECT_LT(run.result.queries, 500);
  c.latency_bound_ms = 0;
  c.scenario = Scenario::single_stream;
  c.target_qps = 0;
  c.min_duration_s = 0.1;
  c.min_queries = 50;
  r = run_benchmark({&sut}, pool, c);
  EXPECT_TRUE(r.runs[0].verdict.valid) << (r.runs[0].verdict.reasons.empty() ? "" : r.runs[0].verdict.reasons[0]);
  EXPECT_GE(r.runs[0].verdict.es_latency_ns, r.runs[0].result.latency.quantile_ns(0.9));
}

}  // namespace
}  // namespace rg

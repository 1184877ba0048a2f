#include "bench/driver.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace rg {

void BenchConfig::validate() const {
  if (!(min_duration_s > 0)) fail(ErrorCode::invalid_input, "--duration must be positive, got {}", min_duration_s);
  if (min_queries < 1) fail(ErrorCode::invalid_input, "--min-queries must be at least 1, got {}", min_queries);
  if (!(warmup_s >= 0)) fail(ErrorCode::invalid_input, "--warmup must be >= 0, got {}", warmup_s);
  if (batch < 1) fail(ErrorCode::invalid_input, "--batch must be at least 1, got {}", batch);
  if (samples_per_query < 1)
    fail(ErrorCode::invalid_input, "--samples-per-query must be at least 1, got {}", samples_per_query);
  if (target_qps < 0 || !std::isfinite(target_qps))
    fail(ErrorCode::invalid_input, "--target-qps must be positive, got {}", target_qps);
  if (latency_bound_ms < 0 || !std::isfinite(latency_bound_ms))
    fail(ErrorCode::invalid_input, "--latency-bound must be positive (ms), got {}", latency_bound_ms);
  if (percentile != 0 && !(percentile > 0 && percentile < 1))
    fail(ErrorCode::invalid_input, "--percentile must be in (0, 100), got {}", percentile * 100);
  if (rounds < 2) fail(ErrorCode::invalid_input, "--rounds must be at least 2, got {}", rounds);
  if (sweep_points < 1) fail(ErrorCode::invalid_input, "--sweep-points must be at least 1, got {}", sweep_points);
  if ((find_peak || target_qps > 0) && scenario != Scenario::server)
    fail(ErrorCode::invalid_input, "{} applies to --scenario server only", find_peak ? "--find-peak" : "--target-qps");
  if (find_peak && latency_bound_ms <= 0) fail(ErrorCode::invalid_input, "--find-peak needs --latency-bound MS");
}

double BenchConfig::metric_percentile() const {
  if (percentile > 0) return percentile;
  return scenario == Scenario::single_stream ? 0.90 : 0.99;
}

Verdict judge(const PhaseResult& r, const BenchConfig& c) {
  Verdict v;
  auto bad = [&](std::string why) {
    v.valid = false;
    v.reasons.push_back(std::move(why));
  };
  bool offline = c.scenario == Scenario::offline;
  double p = c.metric_percentile();
  if (r.aborted)
    bad(fmt::format("stopped early: {} queries had already exceeded the {} ms bound, more than early stopping allows",
                    r.overlatency, c.latency_bound_ms));
  else if (r.seconds < c.min_duration_s)
    bad(fmt::format("ran {:.3f} s, under the minimum duration of {} s", r.seconds, c.min_duration_s));
  int64_t n = offline ? r.samples : r.queries;
  if (!r.aborted && n < c.min_queries)
    bad(fmt::format("{} {} measured, under the minimum of {}", n, offline ? "samples" : "queries", c.min_queries));
  if (offline || r.queries == 0) return v;
  v.es_max_overlatency = early_stopping_max_overlatency(r.queries, p, c.confidence);
  if (v.es_max_overlatency < 0) {
    bad(fmt::format("{} queries are too few for early stopping at p{:g} with {:g}% confidence (needs at least {})",
                    r.queries, p * 100, c.confidence * 100, early_stopping_min_queries(p, c.confidence)));
    return v;
  }
  v.es_latency_ns = r.latency.value_at_rank(r.queries - v.es_max_overlatency);
  if (c.latency_bound_ms > 0 && !r.aborted && r.overlatency > v.es_max_overlatency)
    bad(fmt::format("{} of {} queries exceeded the {} ms bound; early stopping at p{:g} ({:g}% confidence) allows {}",
                    r.overlatency, r.queries, c.latency_bound_ms, p * 100, c.confidence * 100, v.es_max_overlatency));
  return v;
}

namespace {

PhaseSettings phase_settings(const BenchConfig& c, BenchClock::time_point epoch) {
  PhaseSettings s;
  s.scenario = c.scenario;
  s.min_duration_s = c.min_duration_s;
  s.min_queries = c.min_queries;
  s.samples_per_query = c.query_samples();
  s.latency_bound_ns = (int64_t)std::llround(c.latency_bound_ms * 1e6);
  s.percentile = c.metric_percentile();
  s.confidence = c.confidence;
  s.seed = c.seed;
  s.trace = c.trace;
  s.epoch = epoch;
  return s;
}

void say(const BenchConfig& c, const std::string& s) {
  if (c.log) c.log(s);
}

Probe probe_of(const PhaseResult& r, const Verdict& v, double qps, const BenchConfig& c) {
  Probe p;
  p.target_qps = qps;
  p.achieved_qps = r.queries_per_s();
  p.percentile_ns = r.latency.quantile_ns(c.metric_percentile());
  p.valid = v.valid;
  return p;
}

}  // namespace

BenchResult run_benchmark(const std::vector<Sut*>& suts, WorkerPool& pool, const BenchConfig& c) {
  c.validate();
  RG_ASSERT(!suts.empty());
  BenchResult res;
  auto epoch = BenchClock::now();
  PhaseSettings s = phase_settings(c, epoch);
  for (size_t m = 0; m < suts.size(); m++) {
    double q = warm_up(*suts[m], pool, c.warmup_s, s.samples_per_query);
    if (m == 0) res.warmup_qps = q;
  }
  // Offline issues every sample at once: enough for the minimum duration at the warm-up
  // rate, with 10% to spare (LoadGen sizes its offline query the same way).
  s.offline_samples = std::max<int64_t>(
      c.min_queries, (int64_t)std::ceil(res.warmup_qps * (double)s.samples_per_query * c.min_duration_s * 1.1));
  s.target_qps = c.target_qps > 0 ? c.target_qps : std::max(1.0, res.warmup_qps / 2);
  res.runs.resize(suts.size());

  if (c.find_peak) {
    // LoadGen's search: double the rate until the bound fails, then bisect.
    std::vector<std::pair<double, ModelRun>> tried;
    auto probe = [&](double qps) {
      PhaseSettings ps = s;
      ps.target_qps = qps;
      ModelRun run{run_phase(*suts[0], pool, ps), {}};
      run.verdict = judge(run.result, c);
      res.probes.push_back(probe_of(run.result, run.verdict, qps, c));
      say(c, fmt::format("find-peak: {:.1f} q/s -> {} (p{:g} {:.3f} ms)", qps, run.verdict.valid ? "VALID" : "INVALID",
                         c.metric_percentile() * 100, res.probes.back().percentile_ns / 1e6));
      bool ok = run.verdict.valid;
      tried.emplace_back(qps, std::move(run));
      return ok;
    };
    double lo = 0, hi = 0, q = s.target_qps;
    auto step = [&](double qps) {
      if (probe(qps)) lo = qps;
      else hi = qps;
    };
    step(q);
    for (int i = 0; i < 30 && hi == 0; i++) step(q *= 2);
    for (int i = 0; i < 12 && lo == 0; i++) step(q /= 2);
    if (lo > 0 && hi > 0)
      while ((hi - lo) / lo > c.peak_tolerance) step((lo + hi) / 2);
    res.peak_qps = lo;
    // The reported run is the one at the peak (or the last failure when none passed).
    double report = lo > 0 ? lo : hi;
    for (auto& t : tried)
      if (t.first == report) res.runs[0] = std::move(t.second);
    res.target_qps = report;
  } else if (suts.size() > 1) {
    // Rounds alternate ABBA so slow drift (frequency, other load) hits both models alike.
    PhaseSettings ps = s;
    ps.min_duration_s = c.min_duration_s / c.rounds;
    ps.min_queries = (c.min_queries + c.rounds - 1) / c.rounds;
    ps.offline_samples = (s.offline_samples + c.rounds - 1) / c.rounds;
    for (int r = 0; r < c.rounds; r++) {
      ps.seed = c.seed + (uint64_t)r;
      std::vector<double> metric(suts.size());
      for (size_t i = 0; i < suts.size(); i++) {
        size_t m = r % 2 == 0 ? i : suts.size() - 1 - i;
        PhaseResult pr = run_phase(*suts[m], pool, ps);
        metric[m] = c.scenario == Scenario::offline ? pr.seconds / std::max<double>((double)pr.samples, 1)
                                                    : (double)pr.latency.quantile_ns(0.5);
        for (auto& t : pr.trace) {
          t.model = (int)m;
          t.round = r;
        }
        res.runs[m].result.merge(pr);
      }
      res.round_ratios.push_back(metric[1] / metric[0]);
      say(c, fmt::format("compare: round {}/{}: ratio {:.4f}", r + 1, c.rounds, res.round_ratios.back()));
    }
    for (auto& run : res.runs) {
      run.verdict = judge(run.result, c);
      std::sort(run.result.trace.begin(), run.result.trace.end(),
                [](const TraceEntry& a, const TraceEntry& b) { return a.issued_ns < b.issued_ns; });
    }
    res.ratio = ratio_confidence_interval(res.round_ratios);
    res.target_qps = s.target_qps;
  } else {
    res.runs[0].result = run_phase(*suts[0], pool, s);
    res.runs[0].verdict = judge(res.runs[0].result, c);
    res.target_qps = s.target_qps;
  }

  if (c.sweep && c.scenario == Scenario::server) {
    res.sweep_over = "target_qps";
    double ref = res.peak_qps > 0 ? res.peak_qps : res.warmup_qps;
    PhaseSettings ps = s;
    ps.trace = false;
    for (int i = 1; i <= c.sweep_points; i++) {
      ps.target_qps = ref * 1.2 * i / c.sweep_points;  // up to 20% past the reference
      PhaseResult pr = run_phase(*suts[0], pool, ps);
      Verdict v = judge(pr, c);
      res.sweep.push_back({ps.target_qps, pr.queries_per_s(), pr.samples_per_s(), pr.latency.quantile_ns(0.5),
                           pr.latency.quantile_ns(0.9), pr.latency.quantile_ns(0.99), v.valid});
      say(c, fmt::format("sweep: {:.1f} q/s target -> {:.1f} q/s, p99 {:.3f} ms", ps.target_qps, pr.queries_per_s(),
                         pr.latency.quantile_ns(0.99) / 1e6));
    }
  }
  return res;
}

std::vector<SweepPoint> sweep_streams(const std::function<std::unique_ptr<Sut>(int)>& make,
                                      const std::vector<int>& streams, const BenchConfig& c) {
  std::vector<SweepPoint> pts;
  for (int k : streams) {
    std::unique_ptr<Sut> sut = make(k);
    WorkerPool pool(k);
    PhaseSettings s = phase_settings(c, BenchClock::now());
    s.trace = false;
    warm_up(*sut, pool, std::min(c.warmup_s, 1.0), s.samples_per_query);
    PhaseResult pr = run_phase(*sut, pool, s);
    Verdict v = judge(pr, c);
    pts.push_back({(double)k, pr.queries_per_s(), pr.samples_per_s(), pr.latency.quantile_ns(0.5),
                   pr.latency.quantile_ns(0.9), pr.latency.quantile_ns(0.99), v.valid});
    if (c.log)
      c.log(fmt::format("sweep: {} stream(s) -> {:.1f} samples/s, p99 {:.3f} ms", k, pr.samples_per_s(),
                        pr.latency.quantile_ns(0.99) / 1e6));
  }
  return pts;
}

}  // namespace rg

#include "bench/loadgen.h"

#include <algorithm>
#include <cmath>

#include "bench/stats.h"
#include "core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define RG_PAUSE() _mm_pause()
#else
#define RG_PAUSE() ((void)0)
#endif

namespace rg {

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::single_stream: return "single-stream";
    case Scenario::multi_stream: return "multi-stream";
    case Scenario::server: return "server";
    case Scenario::offline: return "offline";
  }
  return "?";
}

Scenario parse_scenario(const std::string& n) {
  for (Scenario s : {Scenario::single_stream, Scenario::multi_stream, Scenario::server, Scenario::offline})
    if (n == scenario_name(s)) return s;
  fail(ErrorCode::invalid_input, "--scenario must be single-stream, multi-stream, server or offline, got '{}'", n);
}

WorkerPool::WorkerPool(int workers) : n_(std::max(1, workers)) {
  for (int k = 1; k < n_; k++) threads_.emplace_back([this, k] { loop(k); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> l(m_);
    quit_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::loop(int k) {
  int64_t seen = 0;
  while (true) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> l(m_);
      cv_.wait(l, [&] { return quit_ || generation_ != seen; });
      if (quit_) return;
      seen = generation_;
      job = job_;
    }
    std::exception_ptr err;
    try {
      (*job)(k);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> l(m_);
    if (err && !error_) error_ = err;
    if (--pending_ == 0) done_cv_.notify_all();
  }
}

void WorkerPool::run(const std::function<void(int)>& fn) {
  {
    std::lock_guard<std::mutex> l(m_);
    job_ = &fn;
    pending_ = n_ - 1;
    error_ = nullptr;
    generation_++;
  }
  cv_.notify_all();
  std::exception_ptr err;
  try {
    fn(0);
  } catch (...) {
    err = std::current_exception();
  }
  std::unique_lock<std::mutex> l(m_);
  done_cv_.wait(l, [&] { return pending_ == 0; });
  if (!err) err = error_;
  if (err) std::rethrow_exception(err);
}

void PhaseResult::merge(const PhaseResult& o) {
  latency.merge(o.latency);
  issue_delay.merge(o.issue_delay);
  queries += o.queries;
  samples += o.samples;
  overlatency += o.overlatency;
  seconds += o.seconds;
  scheduled += o.scheduled;
  aborted = aborted || o.aborted;
  issued_qps = o.issued_qps;  // per phase only; the last one stands
  trace.insert(trace.end(), o.trace.begin(), o.trace.end());
}

namespace {

int64_t ns_between(BenchClock::time_point a, BenchClock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// Sleeping is coarse (50+ us late); spinning is exact but burns a core. Sleep while the
// arrival is far off, spin for the last stretch.
void wait_until(BenchClock::time_point t) {
  using namespace std::chrono;
  while (true) {
    auto now = BenchClock::now();
    if (now >= t) return;
    if (t - now > microseconds(300)) std::this_thread::sleep_for(t - now - microseconds(200));
    else RG_PAUSE();
  }
}

// What each worker gathers without sharing; merged after the phase.
struct WorkerStats {
  LatencyHistogram latency, issue_delay;
  int64_t queries = 0, samples = 0, overlatency = 0;
  BenchClock::time_point first_issue = BenchClock::time_point::max(), last_issue{}, last_done{};
  std::vector<TraceEntry> trace;
};

}  // namespace

PhaseResult run_phase(Sut& sut, WorkerPool& pool, const PhaseSettings& s) {
  RG_ASSERT(pool.size() == sut.workers());
  int W = pool.size();
  std::vector<WorkerStats> ws((size_t)W);
  std::atomic<int64_t> next{0}, completed{0}, over{0};
  std::atomic<bool> abort{false};
  PhaseResult r;
  auto dur = std::chrono::duration_cast<BenchClock::duration>(std::chrono::duration<double>(s.min_duration_s));
  auto rel = [&](BenchClock::time_point t) { return ns_between(s.epoch, t); };

  std::vector<int64_t> schedule;
  int64_t allowed_over = -1;
  if (s.scenario == Scenario::server) {
    if (!(s.target_qps > 0)) fail(ErrorCode::invalid_input, "server scenario needs --target-qps > 0");
    // LoadGen generates arrivals until both the minimum duration and count are covered.
    // LoadGen's rule: arrivals until both the minimum count and the minimum duration
    // are covered (the last arrival at or past min_duration_s).
    int64_t dur_ns = (int64_t)(s.min_duration_s * 1e9);
    int64_t n = (int64_t)std::ceil(s.target_qps * s.min_duration_s * 1.05) + 16;
    while (true) {
      schedule = poisson_schedule(s.target_qps, n, s.seed);
      if (schedule.back() >= dur_ns) break;
      n *= 2;
    }
    auto past = std::lower_bound(schedule.begin(), schedule.end(), dur_ns);
    n = std::max<int64_t>(s.min_queries, (int64_t)(past - schedule.begin()) + 1);
    if (n > (int64_t)schedule.size()) schedule = poisson_schedule(s.target_qps, n, s.seed);
    schedule.resize((size_t)n);
    r.scheduled = n;
    if (s.latency_bound_ns > 0) allowed_over = early_stopping_max_overlatency(n, s.percentile, s.confidence);
  }
  int64_t total_batches = 0;
  if (s.scenario == Scenario::offline) {
    int64_t n = std::max(s.offline_samples, s.min_queries);
    total_batches = (n + s.samples_per_query - 1) / s.samples_per_query;
  }

  BenchClock::time_point start = BenchClock::now(), stop = start + dur;
  auto worker = [&](int w) {
    WorkerStats& st = ws[(size_t)w];
    auto finish = [&](int64_t q, int64_t samples, BenchClock::time_point sched, BenchClock::time_point issue,
                      BenchClock::time_point done) {
      int64_t lat = ns_between(sched, done);
      st.latency.record(lat);
      st.queries++;
      st.samples += samples;
      st.last_done = done;
      if (s.latency_bound_ns > 0 && lat > s.latency_bound_ns) {
        st.overlatency++;
        if (allowed_over >= 0 && over.fetch_add(1) + 1 > allowed_over) abort = true;
      }
      if (s.trace) st.trace.push_back({q, samples, w, 0, 0, rel(sched), rel(issue), rel(done)});
    };
    switch (s.scenario) {
      case Scenario::single_stream:
      case Scenario::multi_stream:
        while (true) {
          auto t0 = BenchClock::now();
          if (t0 >= stop && completed.load(std::memory_order_relaxed) >= s.min_queries) break;
          int64_t q = next.fetch_add(1, std::memory_order_relaxed);
          sut.run_query(w, q, s.samples_per_query);
          finish(q, s.samples_per_query, t0, t0, BenchClock::now());
          completed.fetch_add(1, std::memory_order_relaxed);
        }
        break;
      case Scenario::server:
        while (!abort.load(std::memory_order_relaxed)) {
          int64_t q = next.fetch_add(1, std::memory_order_relaxed);
          if (q >= (int64_t)schedule.size()) break;
          auto sched = start + std::chrono::nanoseconds(schedule[(size_t)q]);
          wait_until(sched);
          auto issue = BenchClock::now();
          st.first_issue = std::min(st.first_issue, issue);
          st.last_issue = issue;
          st.issue_delay.record(ns_between(sched, issue));
          sut.run_query(w, q, s.samples_per_query);
          finish(q, s.samples_per_query, sched, issue, BenchClock::now());
        }
        break;
      case Scenario::offline:
        while (true) {
          int64_t b = next.fetch_add(1, std::memory_order_relaxed);
          if (b >= total_batches) break;
          int64_t n = std::max(s.offline_samples, s.min_queries);
          int64_t count = std::min(s.samples_per_query, n - b * s.samples_per_query);
          auto issue = BenchClock::now();
          sut.run_query(w, b, count);
          finish(b, count, start, issue, BenchClock::now());
        }
        break;
    }
  };
  pool.run(worker);

  BenchClock::time_point end = start, fi = BenchClock::time_point::max(), li{};
  for (auto& st : ws) {
    r.latency.merge(st.latency);
    r.issue_delay.merge(st.issue_delay);
    r.queries += st.queries;
    r.samples += st.samples;
    r.overlatency += st.overlatency;
    if (st.queries) end = std::max(end, st.last_done);
    fi = std::min(fi, st.first_issue);
    li = std::max(li, st.last_issue);
    if (s.trace) r.trace.insert(r.trace.end(), st.trace.begin(), st.trace.end());
  }
  // A closed loop ends when a worker sees the clock past `stop`; that moment, not the
  // last completion before it, closes the measured span.
  if (s.scenario == Scenario::single_stream || s.scenario == Scenario::multi_stream) end = std::max(end, stop);
  r.seconds = std::chrono::duration<double>(end - start).count();
  r.aborted = abort.load();
  if (s.scenario == Scenario::server && li > fi && r.queries > 1)
    r.issued_qps = (double)(r.queries - 1) / std::chrono::duration<double>(li - fi).count();
  std::sort(r.trace.begin(), r.trace.end(), [](const TraceEntry& a, const TraceEntry& b) { return a.query < b.query; });
  return r;
}

double warm_up(Sut& sut, WorkerPool& pool, double seconds, int64_t samples_per_query) {
  auto start = BenchClock::now();
  auto stop = start + std::chrono::duration_cast<BenchClock::duration>(std::chrono::duration<double>(seconds));
  std::atomic<int64_t> timed{0};
  std::atomic<int64_t> span_ns{0};
  pool.run([&](int w) {
    // The first query of each worker (first touch, lazy init) is left out of the rate.
    sut.run_query(w, 0, samples_per_query);
    auto t0 = BenchClock::now();
    int64_t n = 0;
    do {
      sut.run_query(w, n + 1, samples_per_query);
      n++;
    } while (BenchClock::now() < stop);
    timed += n;
    int64_t ns = ns_between(t0, BenchClock::now());
    int64_t prev = span_ns.load();
    while (ns > prev && !span_ns.compare_exchange_weak(prev, ns)) {
    }
  });
  return span_ns.load() > 0 ? (double)timed.load() * 1e9 / (double)span_ns.load() : 0;
}

}  // namespace rg

#pragma once
// The load generator: MLPerf LoadGen's four scenarios, driving any system under test
// (a model, or nothing at all for the self-test) from a pool of worker threads.
//
//   single-stream  closed loop: the next query starts when the last one ended (on each
//                  of the workers, so --streams S gives concurrency S); 1 query = `batch`
//   multi-stream   closed loop, each query carrying `samples_per_query` samples
//   server         open loop: queries arrive on a seeded Poisson schedule at target_qps;
//                  a free worker takes the next arrival, waiting for its time if early.
//                  Latency runs from the *scheduled* arrival, so a late system pays for
//                  its queue (no coordinated omission, as in LoadGen and wrk2)
//   offline        all samples issued at once at the start, worked off in batches;
//                  each batch's latency runs from the start
//
// A phase runs until both the minimum duration and the minimum query count are met
// (server: until every scheduled query is answered). Warm-up is a separate call.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/histogram.h"

namespace rg {

using BenchClock = std::chrono::steady_clock;

enum class Scenario { single_stream, multi_stream, server, offline };
const char* scenario_name(Scenario s);
Scenario parse_scenario(const std::string& name);  // invalid_input for an unknown name

// A system under test. run_query executes query `query` of `samples` samples on worker
// `worker`; calls from one worker never overlap, calls from different workers do.
class Sut {
 public:
  virtual ~Sut() = default;
  virtual int workers() const = 0;
  virtual void run_query(int worker, int64_t query, int64_t samples) = 0;
};

// Does nothing: what remains is the harness's own cost (the self-test).
class NullSut : public Sut {
 public:
  explicit NullSut(int workers = 1) : workers_(workers) {}
  int workers() const override { return workers_; }
  void run_query(int, int64_t, int64_t) override {}

 private:
  int workers_;
};

// Worker 0 is the calling thread (the OpenMP team that compiled the plans lives there; a
// fresh thread would bring a second team whose idle workers compete for the cores);
// workers 1..n-1 are threads kept for the whole benchmark, so alternating phases
// (--compare rounds) never create new OpenMP teams.
class WorkerPool {
 public:
  explicit WorkerPool(int workers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  int size() const { return n_; }
  // Runs fn(k) on every worker k and returns when all are done. The first exception
  // thrown by any worker is rethrown here.
  void run(const std::function<void(int)>& fn);

 private:
  void loop(int k);
  int n_;
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  int64_t generation_ = 0;
  int pending_ = 0;
  bool quit_ = false;
  std::exception_ptr error_;
};

struct PhaseSettings {
  Scenario scenario = Scenario::single_stream;
  double min_duration_s = 10;
  int64_t min_queries = 100;      // offline: minimum samples
  int64_t samples_per_query = 1;  // offline: the batch
  double target_qps = 0;          // server
  int64_t offline_samples = 0;    // offline: samples issued at the start
  // Server: queries slower than this count as overlatency; once more of them than early
  // stopping allows for the whole schedule, the phase stops early (INVALID is certain).
  int64_t latency_bound_ns = 0;
  double percentile = 0.99;
  double confidence = 0.99;
  uint64_t seed = 1;              // server arrival schedule
  bool trace = false;             // keep one TraceEntry per query
  BenchClock::time_point epoch;   // trace times are ns from here
};

struct TraceEntry {
  int64_t query = 0, samples = 0;
  int worker = 0, model = 0, round = 0;
  int64_t scheduled_ns = 0, issued_ns = 0, done_ns = 0;  // from the epoch
  int64_t latency_ns() const { return done_ns - scheduled_ns; }
};

struct PhaseResult {
  LatencyHistogram latency;
  int64_t queries = 0, samples = 0;
  int64_t overlatency = 0;  // queries over latency_bound_ns
  double seconds = 0;       // first issue (scheduled) to last completion
  bool aborted = false;     // server stopped once the bound could no longer be met
  int64_t scheduled = 0;    // server: queries on the schedule
  // Server arrivals: the rate actually issued (first to last issue) and how late issues
  // were against the schedule (harness lag; large values mean a saturated system).
  double issued_qps = 0;
  LatencyHistogram issue_delay;
  std::vector<TraceEntry> trace;
  double queries_per_s() const { return seconds > 0 ? (double)queries / seconds : 0; }
  double samples_per_s() const { return seconds > 0 ? (double)samples / seconds : 0; }
  // Adds another phase of the same run (a --compare round): counts and times add up.
  void merge(const PhaseResult& o);
};

PhaseResult run_phase(Sut& sut, WorkerPool& pool, const PhaseSettings& s);

// Closed-loop untimed queries on every worker for `seconds` (at least two per worker);
// returns the queries per second reached, the estimate offline sizing and find-peak use.
double warm_up(Sut& sut, WorkerPool& pool, double seconds, int64_t samples_per_query);

}  // namespace rg

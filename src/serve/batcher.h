#pragma once
// The dynamic batcher: requests wait in one bounded queue; S instances (plans sharing the
// session's weights, each driven by its own thread with its own intra-op threads, as the
// benchmark's streams) take them in arrival order. An instance that finds the queue
// non-empty gathers requests whose non-batch dims match the first one, until the batch
// holds `max_batch` samples or the first request has waited `max_queue_delay_us`, then
// concatenates them on axis 0, runs once and splits the outputs. With a delay of 0 the
// batcher only groups what is already waiting, so a lightly loaded server adds no latency
// and a loaded one batches on its own (Triton's default).
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/session.h"
#include "serve/metrics.h"

namespace rg::serve {

struct BatcherOptions {
  int64_t max_batch = 8;            // samples per run; 1 turns batching off
  int64_t max_queue_delay_us = 0;   // longest the first request of a batch waits for company
  int64_t max_queue = 64;           // waiting requests beyond this are refused (503)
  int instances = 1;                // concurrent executors sharing the weights
  int threads = 0;                  // intra-op threads per instance; 0 = cores / instances
  void validate() const;
};

using Clock = std::chrono::steady_clock;

// One inference request in flight. The HTTP handler owns it with the batcher (shared_ptr),
// so a handler that timed out can return while its batch is still running.
struct Job {
  std::vector<Tensor> inputs;  // model input order, validated
  std::string id;              // for log lines
  int64_t samples = 1;         // dim 0 of the inputs (1 for a model without a batch dim)
  bool stackable = false;      // every input leads with the same dim 0 (may join a batch)
  Clock::time_point enqueued;

  // Filled by the batcher, then `done` is set under the mutex.
  std::vector<Tensor> outputs;
  std::string error;           // non-empty: the run failed
  int error_status = 500;      // 400 when the run refused the input itself
  double queue_s = 0, compute_s = 0;
  bool done = false;
  std::mutex mu;
  std::condition_variable cv;
};

class Batcher {
 public:
  // A model output named `rangeguard_oob_count` (protect --detect) feeds the oob counter.
  Batcher(const Session& session, const BatcherOptions& o, Metrics& metrics);
  ~Batcher();

  // Compiles the batch-1 plan on every instance (so the first request is not slow).
  void warm_up();
  bool batchable() const { return batchable_; }
  int threads_per_instance() const { return threads_; }

  // Queues the job; false when the queue is full.
  bool submit(std::shared_ptr<Job> job);
  // Takes the job back out if it is still waiting (timed out); false when already running.
  bool cancel(const std::shared_ptr<Job>& job);
  // Finishes every queued job, then stops the instances.
  void drain_and_stop();

 private:
  struct Instance;
  void worker(int k);
  bool compatible(const Job& a, const Job& b) const;
  std::vector<std::shared_ptr<Job>> take_batch(std::unique_lock<std::mutex>& lock);
  void execute(Instance& inst, std::vector<std::shared_ptr<Job>>& batch);

  const Session& session_;
  BatcherOptions o_;
  Metrics& metrics_;
  bool batchable_ = false;
  int threads_ = 1;
  int oob_output_ = -1;
  std::vector<bool> split_output_;  // output i has the batch as dim 0

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool gathering_ = false;  // one instance at a time waits for a batch to fill
  bool stopping_ = false;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::thread> threads_v_;
};

}  // namespace rg::serve

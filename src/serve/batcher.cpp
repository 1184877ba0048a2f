#include "serve/batcher.h"

#include <omp.h>

#include <cstdio>
#include <cstring>
#include <list>

namespace rg::serve {

namespace {
constexpr size_t kMaxPlansPerInstance = 16;  // distinct shapes kept compiled (LRU)
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

void BatcherOptions::validate() const {
  if (max_batch < 1) fail(ErrorCode::invalid_input, "--max-batch must be at least 1, got {}", max_batch);
  if (max_queue_delay_us < 0) fail(ErrorCode::invalid_input, "--max-queue-delay-us must be >= 0");
  if (max_queue < 1) fail(ErrorCode::invalid_input, "--max-queue must be at least 1, got {}", max_queue);
  if (instances < 1) fail(ErrorCode::invalid_input, "--instances must be at least 1, got {}", instances);
  if (threads < 0) fail(ErrorCode::invalid_input, "--threads must be >= 0, got {}", threads);
}

// An executor: its plans (one per input shapes, compiled on its own thread so their
// OpenMP team is the one that runs them) and nothing else; the weights are the session's.
struct Batcher::Instance {
  std::list<std::pair<std::vector<Shape>, std::unique_ptr<Plan>>> plans;  // most recent first
  bool ready = false;

  Plan& plan(const Session& s, const std::vector<Shape>& shapes, int threads) {
    for (auto it = plans.begin(); it != plans.end(); ++it)
      if (it->first == shapes) {
        plans.splice(plans.begin(), plans, it);
        return *plans.front().second;
      }
    plans.emplace_front(shapes, s.new_plan(shapes, threads));
    if (plans.size() > kMaxPlansPerInstance) plans.pop_back();
    return *plans.front().second;
  }
};

Batcher::Batcher(const Session& session, const BatcherOptions& o, Metrics& metrics)
    : session_(session), o_(o), metrics_(metrics) {
  o_.validate();
  const Graph& g = session.graph();
  int cores = (int)std::max(1u, std::thread::hardware_concurrency());
  threads_ = o_.threads > 0 ? o_.threads : std::max(1, cores / o_.instances);
  // Batching needs every input to lead with a dynamic dim to stack requests on.
  batchable_ = o_.max_batch > 1 && !g.inputs.empty();
  for (const auto& in : g.inputs) batchable_ = batchable_ && in.has_shape && !in.shape.empty() && in.shape[0] < 0;
  for (size_t i = 0; i < g.outputs.size(); i++) {
    const ValueInfo& out = g.outputs[i];
    split_output_.push_back(!out.has_shape || (!out.shape.empty() && out.shape[0] < 0));
    if (out.name == "rangeguard_oob_count") oob_output_ = (int)i;
  }
  for (int k = 0; k < o_.instances; k++) instances_.push_back(std::make_unique<Instance>());
  for (int k = 0; k < o_.instances; k++) threads_v_.emplace_back(&Batcher::worker, this, k);
}

Batcher::~Batcher() { drain_and_stop(); }

void Batcher::warm_up() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] {
    for (auto& i : instances_)
      if (!i->ready) return false;
    return true;
  });
}

bool Batcher::submit(std::shared_ptr<Job> job) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_ || (int64_t)queue_.size() >= o_.max_queue) return false;
  job->enqueued = Clock::now();
  queue_.push_back(std::move(job));
  metrics_.set_queue_depth((int64_t)queue_.size());
  cv_.notify_all();
  return true;
}

bool Batcher::cancel(const std::shared_ptr<Job>& job) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it)
    if (*it == job) {
      queue_.erase(it);
      metrics_.set_queue_depth((int64_t)queue_.size());
      cv_.notify_all();
      return true;
    }
  return false;
}

void Batcher::drain_and_stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_v_)
    if (t.joinable()) t.join();
}

bool Batcher::compatible(const Job& a, const Job& b) const {
  if (!batchable_ || !a.stackable || !b.stackable) return false;
  for (size_t i = 0; i < a.inputs.size(); i++) {
    const Shape &x = a.inputs[i].shape(), &y = b.inputs[i].shape();
    if (x.size() != y.size() || !std::equal(x.begin() + 1, x.end(), y.begin() + 1)) return false;
  }
  return true;
}

// Called by the one gathering instance with the lock held and the queue non-empty.
std::vector<std::shared_ptr<Job>> Batcher::take_batch(std::unique_lock<std::mutex>& lock) {
  auto fits = [&] {  // samples of the jobs that would join the first one
    int64_t n = 0;
    for (const auto& j : queue_)
      if (j == queue_.front() || (compatible(*queue_.front(), *j) && n + j->samples <= o_.max_batch)) n += j->samples;
    return n;
  };
  while (batchable_ && !queue_.empty() && !stopping_ && fits() < o_.max_batch) {
    auto deadline = queue_.front()->enqueued + std::chrono::microseconds(o_.max_queue_delay_us);
    if (Clock::now() >= deadline) break;
    cv_.wait_until(lock, deadline);
  }
  std::vector<std::shared_ptr<Job>> batch;
  if (queue_.empty()) return batch;  // everything waiting timed out
  int64_t n = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (batch.empty() || (compatible(*batch[0], **it) && n + (*it)->samples <= o_.max_batch)) {
      n += (*it)->samples;
      batch.push_back(*it);
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void Batcher::worker(int k) {
  omp_set_num_threads(threads_);
  Instance& inst = *instances_[k];
  try {  // the batch-1 plan, so the first request does not pay for compiling it
    if (!session_.graph().inputs.empty()) inst.plan(session_, session_.default_input_shapes(1), threads_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rangeguard serve: note: no plan compiled ahead of requests: %s\n", e.what());
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    inst.ready = true;
  }
  cv_.notify_all();
  while (true) {
    std::vector<std::shared_ptr<Job>> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return (stopping_ && queue_.empty()) || (!queue_.empty() && !gathering_); });
      if (queue_.empty()) return;  // stopping, nothing left
      gathering_ = true;
      batch = take_batch(l);
      gathering_ = false;
      metrics_.set_queue_depth((int64_t)queue_.size());
    }
    cv_.notify_all();  // another instance may gather the next batch meanwhile
    if (!batch.empty()) execute(inst, batch);
  }
}

void Batcher::execute(Instance& inst, std::vector<std::shared_ptr<Job>>& batch) {
  auto t0 = Clock::now();
  int64_t total = 0;
  for (auto& j : batch) {
    j->queue_s = seconds(t0 - j->enqueued);
    total += j->samples;
  }
  std::string error;
  int status = 500;
  try {
    std::vector<Tensor> inputs;
    if (batch.size() == 1) {
      inputs = batch[0]->inputs;
    } else {  // stack the requests on axis 0
      for (size_t i = 0; i < batch[0]->inputs.size(); i++) {
        Shape s = batch[0]->inputs[i].shape();
        s[0] = total;
        Tensor t(batch[0]->inputs[i].dtype(), s);
        char* p = static_cast<char*>(t.raw());
        for (auto& j : batch) {
          std::memcpy(p, j->inputs[i].raw(), j->inputs[i].nbytes());
          p += j->inputs[i].nbytes();
        }
        inputs.push_back(t);
      }
    }
    std::vector<Shape> shapes;
    for (const auto& t : inputs) shapes.push_back(t.shape());
    Plan& plan = inst.plan(session_, shapes, threads_);
    auto t1 = Clock::now();
    plan.execute(inputs);
    double compute = seconds(Clock::now() - t1);
    for (auto& j : batch) j->compute_s = compute;

    for (size_t o = 0; o < plan.num_outputs(); o++) {
      const Tensor& out = plan.output(o);
      if (batch.size() > 1 && split_output_[o] && out.rank() >= 1 && out.dim(0) == total) {
        size_t row = total ? out.nbytes() / (size_t)total : 0;
        const char* p = static_cast<const char*>(out.raw());
        for (auto& j : batch) {
          Shape s = out.shape();
          s[0] = j->samples;
          Tensor t(out.dtype(), s);
          std::memcpy(t.raw(), p, row * (size_t)j->samples);
          p += row * (size_t)j->samples;
          j->outputs.push_back(t);
        }
      } else {  // batch-wide (the detector's count) or a lone request: everyone gets it whole
        Tensor t = out.clone();
        for (auto& j : batch) j->outputs.push_back(t);
      }
    }
    if (oob_output_ >= 0) {
      int64_t n = 0;
      for (int64_t v : plan.output(oob_output_).to_int64s()) n += v;
      if (n > 0) {
        metrics_.add_oob(n);
        std::string ids;
        for (auto& j : batch) ids += (ids.empty() ? "" : ", ") + (j->id.empty() ? std::string("-") : j->id);
        std::fprintf(stderr, "rangeguard serve: warning: soft-error alarm: %lld out-of-bound activation(s) in a batch of %zu request(s) (ids: %s)\n",
                     (long long)n, batch.size(), ids.c_str());
      }
    }
    metrics_.observe_batch(total);
    for (auto& j : batch) metrics_.observe_request(j->queue_s, j->compute_s);
  } catch (const Error& e) {
    error = e.what();
    if (e.code() == ErrorCode::invalid_input) status = 400;
  } catch (const std::exception& e) {  // bad_alloc, ...
    error = e.what();
    if (error.empty()) error = "inference failed";
  }
  for (auto& j : batch) {
    std::lock_guard<std::mutex> l(j->mu);
    if (!error.empty()) {
      j->outputs.clear();
      j->error = error;
      j->error_status = status;
    }
    j->done = true;
    j->cv.notify_all();
  }
}

}  // namespace rg::serve

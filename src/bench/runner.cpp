#include "bench/runner.h"

#include <omp.h>

#include <atomic>
#include <cstring>
#include <chrono>
#include <random>
#include <thread>

namespace rg {

using Clock = std::chrono::steady_clock;

void BenchOptions::validate() const {
  if (streams < 1) fail(ErrorCode::invalid_input, "--streams must be at least 1, got {}", streams);
  if (threads < 0) fail(ErrorCode::invalid_input, "--threads must be >= 0, got {}", threads);
  if (batch < 1) fail(ErrorCode::invalid_input, "--batch must be at least 1, got {}", batch);
  if (!(duration_s > 0)) fail(ErrorCode::invalid_input, "--duration must be positive");
  if (warmup_s < 0) fail(ErrorCode::invalid_input, "--warmup must be >= 0");
}

std::vector<Tensor> random_inputs(const Graph& g, const std::vector<Shape>& shapes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Tensor> r;
  for (size_t i = 0; i < shapes.size(); i++) {
    Tensor t(g.inputs[i].dtype, shapes[i]);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    switch (t.dtype()) {
      case DType::f32: for (int64_t k = 0; k < t.numel(); k++) t.data<float>()[k] = u(rng); break;
      case DType::i64: for (int64_t k = 0; k < t.numel(); k++) t.data<int64_t>()[k] = (int64_t)(rng() % 2); break;
      case DType::i32: for (int64_t k = 0; k < t.numel(); k++) t.data<int32_t>()[k] = (int32_t)(rng() % 2); break;
      default: std::memset(t.raw(), 0, t.nbytes());
    }
    r.push_back(t);
  }
  return r;
}

BenchReport run_bench(const Session& session, const BenchOptions& o) {
  o.validate();
  BenchReport rep;
  rep.options = o;
  int cores = (int)std::thread::hardware_concurrency();
  rep.threads_per_stream = o.threads > 0 ? o.threads : std::max(1, cores / o.streams);
  // The batch goes into the first dynamic dim of each input.
  for (const auto& in : session.graph().inputs) {
    if (!in.has_shape) fail(ErrorCode::invalid_model, "input '{}' has no declared shape to benchmark with", in.name);
    Shape s = in.shape;
    bool first = true;
    for (auto& d : s)
      if (d < 0) {
        d = first ? o.batch : 1;
        first = false;
      }
    rep.input_shapes.push_back(s);
  }
  int64_t per_query = rep.input_shapes.empty() || rep.input_shapes[0].empty() ? 1 : rep.input_shapes[0][0];

  std::vector<std::unique_ptr<Plan>> plans;
  for (int k = 0; k < o.streams; k++) plans.push_back(session.new_plan(rep.input_shapes, rep.threads_per_stream));
  rep.activation_bytes = plans[0]->activation_bytes() + plans[0]->scratch_bytes();
  if (o.profile) plans[0]->set_profiling(true);
  std::vector<Tensor> inputs = random_inputs(session.graph(), rep.input_shapes, o.seed);

  std::vector<LatencyHistogram> hists(o.streams);
  std::vector<int64_t> counts(o.streams, 0);
  std::atomic<int> ready{0};
  Clock::time_point start, stop;
  std::atomic<bool> go{false};
  auto worker = [&](int k) {
    omp_set_num_threads(rep.threads_per_stream);
    Plan& p = *plans[k];
    if (k > 0) {
      ready++;
      while (!go.load()) std::this_thread::yield();
    }
    auto warm_end = start;
    while (Clock::now() < warm_end) p.execute(inputs);
    while (true) {
      auto t0 = Clock::now();
      if (t0 >= stop) break;
      p.execute(inputs);
      auto t1 = Clock::now();
      hists[k].record(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      counts[k]++;
    }
  };
  // Stream 0 runs on the calling thread, whose OpenMP team compiled the plans: a fresh
  // thread would bring a second team whose idle workers compete for the cores.
  std::vector<std::thread> threads;
  for (int k = 1; k < o.streams; k++) threads.emplace_back(worker, k);
  while (ready.load() < o.streams - 1) std::this_thread::yield();
  start = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  go = true;
  worker(0);
  for (auto& t : threads) t.join();
  // Queries end at or just after `stop`; the measured span runs to the last completion.
  auto end = std::max(Clock::now(), stop);
  rep.seconds = std::chrono::duration<double>(end - start).count();
  for (int k = 0; k < o.streams; k++) {
    rep.latency.merge(hists[k]);
    rep.queries += counts[k];
  }
  rep.samples = rep.queries * per_query;
  if (o.profile) {
    Plan& p = *plans[0];
    double runs = (double)std::max<int64_t>(p.profiled_runs(), 1);
    for (size_t i = 0; i < p.steps().size(); i++) {
      const Step& st = p.steps()[i];
      ProfileRow r;
      r.node = st.node ? st.node->name : "(layout conversion)";
      r.op = st.node ? st.node->op_type : "Reorder";
      for (const Node* f : st.fused) r.op += "+" + f->op_type;
      r.impl = st.fast ? st.fast->impl() : "ref";
      r.ms_per_run = (double)p.step_ns()[i] / 1e6 / runs;
      rep.profile.push_back(r);
    }
  }
  return rep;
}

}  // namespace rg

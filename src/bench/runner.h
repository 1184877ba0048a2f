#pragma once
// The first `rangeguard bench`: closed-loop runs of a model on a fixed seeded input after
// a warm-up, on S independent streams (plans sharing one copy of the weights, each
// driven by its own thread with its own intra-op threads). Latency is per query from
// just before binding the input to just after the outputs are ready (pure inference).
#include <string>

#include "bench/histogram.h"
#include "runtime/session.h"

namespace rg {

struct BenchOptions {
  int threads = 0;        // intra-op threads per stream; 0 = cores / streams (at least 1)
  int streams = 1;        // concurrent executors
  int64_t batch = 1;      // samples per query (the dynamic batch dim); fixed-batch models keep theirs
  double duration_s = 10; // timed phase
  double warmup_s = 1;    // untimed runs first (plans compiled and caches warm)
  uint64_t seed = 1;      // input data
  bool profile = false;   // time every step (stream 0) and report per node
  void validate() const;
};

// Time of one plan step (an ONNX node with what was fused into it, or a layout conversion).
struct ProfileRow {
  std::string node, op, impl;
  double ms_per_run = 0;
};

struct BenchReport {
  BenchOptions options;
  int threads_per_stream = 0;
  std::vector<Shape> input_shapes;
  int64_t queries = 0;
  int64_t samples = 0;
  double seconds = 0;
  LatencyHistogram latency;
  double throughput_per_s() const { return seconds > 0 ? (double)samples / seconds : 0; }
  double queries_per_s() const { return seconds > 0 ? (double)queries / seconds : 0; }
  size_t activation_bytes = 0;  // per stream: arena + scratchpad
  std::vector<ProfileRow> profile;  // every step, in plan order (with --profile)
};

// `session` must have been created with threads = 0 (the runner sets threads per stream).
BenchReport run_bench(const Session& session, const BenchOptions& o);

// Seeded input tensors of these shapes and the model's input dtypes.
std::vector<Tensor> random_inputs(const Graph& g, const std::vector<Shape>& shapes, uint64_t seed);

}  // namespace rg

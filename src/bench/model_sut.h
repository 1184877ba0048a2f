#pragma once
// A model as a system under test: one Plan per worker (stream), all sharing the
// session's weights, each with its own intra-op threads.
//
// Timing (where a query's clock starts and stops, stated in every report):
//   inference  start: input tensors already in memory, about to bind them;
//              stop: outputs ready (Plan::execute returned). The model alone.
//   pipeline   start: before reading the sample from --data (file already loaded or
//              image folder decoded per read, as the data set does it);
//              preprocess (dtype conversion / image preprocessing), run, then top-k of
//              output 0; stop: top-k indices computed.
// Samples: with a data set, queries walk through it (inference mode pre-reads up to 64 MB
// of batches and cycles through them); without, a few seeded random batches rotate, so
// no query reuses one tensor back to back.
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen.h"
#include "bench/common.h"
#include "io/dataset.h"
#include "runtime/session.h"

namespace rg {

enum class Timing { inference, pipeline };
const char* timing_name(Timing t);
std::string timing_start_point(Timing t);
std::string timing_stop_point(Timing t);

struct ModelSutOptions {
  int streams = 1;
  int threads = 0;        // intra-op threads per stream; 0 = cores / streams (at least 1)
  int64_t batch = 1;      // samples per execution (fills the dynamic batch dim)
  Timing timing = Timing::inference;
  const Dataset* data = nullptr;  // not owned; must outlive the SUT
  uint64_t seed = 1;
  bool profile = false;   // per-step times on stream 0
  int64_t top_k = 5;      // pipeline post-processing
};

class ModelSut : public Sut {
 public:
  // `session` must have been created with threads = 0 and outlive the SUT.
  ModelSut(const Session& session, const ModelSutOptions& o);
  int workers() const override { return (int)plans_.size(); }
  // Runs ceil(samples / batch) executions (a fixed-batch model keeps its own batch).
  void run_query(int worker, int64_t query, int64_t samples) override;

  int threads_per_stream() const { return threads_; }
  int64_t batch() const { return batch_; }  // samples per execution actually used
  const std::vector<Shape>& input_shapes() const { return shapes_; }
  size_t activation_bytes() const;          // per stream
  std::vector<ProfileRow> profile() const;  // stream 0, in plan order
  void reset_profile();

 private:
  void execute_one(int worker, int64_t index);
  const Session& session_;
  ModelSutOptions o_;
  int threads_ = 1;
  int64_t batch_ = 1;
  std::vector<Shape> shapes_;
  std::vector<std::unique_ptr<Plan>> plans_;
  std::vector<std::vector<Tensor>> pool_;     // inference: prepared input batches
  std::vector<std::vector<Tensor>> staging_;  // pipeline: each worker's input buffer
  std::vector<std::vector<int64_t>> order_;   // pipeline: each worker's top-k scratch
  std::vector<std::vector<int64_t>> topk_;
};

}  // namespace rg

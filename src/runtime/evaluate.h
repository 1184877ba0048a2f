#pragma once
// Classification accuracy of a Session over a labelled Dataset (`rangeguard accuracy`,
// and the clean baseline of calibration and fault-injection runs).
//
// The model must have one input, whose axis 0 is the batch, and its first output must be
// the class scores [batch, classes] (trailing size-1 dims allowed). Samples are read in
// batches into one reused input tensor. A dynamic batch dim runs the last, partial batch
// at its own size (a second cached plan); a fixed batch dim (e.g. 1) is used as is, and a
// short last batch is padded with zeros whose results are ignored.
#include <cstdint>
#include <functional>
#include <vector>

#include "io/dataset.h"
#include "runtime/session.h"

namespace rg {

struct EvalOptions {
  int64_t batch = 64;  // samples per run when the model's batch dim is dynamic (>= 1)
  int64_t top_k = 5;   // also counts a hit when the label is among the k best scores (>= 1;
                       // clamped to the class count)
  // Called after each batch with (samples done, samples in total); e.g. a progress bar.
  std::function<void(int64_t, int64_t)> progress;

  void validate() const;
};

struct EvalResult {
  int64_t samples = 0;
  int64_t classes = 0;
  int64_t k = 0;      // top-k actually used
  int64_t batch = 0;  // batch actually used
  int64_t top1_correct = 0, topk_correct = 0;
  double top1 = 0, topk = 0;  // fractions of `samples`
  // Indexed by label: samples with that label and how many were classified correctly.
  std::vector<int64_t> class_samples, class_correct;
  // confusion[label][predicted]: rows are true classes, columns top-1 predictions.
  std::vector<std::vector<int64_t>> confusion;
  double seconds = 0;            // wall time of the whole loop (data reading included)
  double inference_seconds = 0;  // time inside Session::run only
  double throughput = 0;         // samples / seconds
};

// Throws invalid_input (one clear line) for: a model without exactly one input, samples
// that cannot feed it (see fit_sample_shape), a data set without labels or with no
// samples, an output that is not [batch, classes], a label outside [0, classes).
EvalResult evaluate_accuracy(Session& session, const Dataset& data, const EvalOptions& opt = {});

}  // namespace rg

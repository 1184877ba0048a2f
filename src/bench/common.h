#pragma once
// Pieces the benchmark's systems under test share: the input shapes and batches they
// feed (in process or over HTTP, the same tensors) and per-step timings.
#include <string>
#include <vector>

#include "io/dataset.h"
#include "runtime/session.h"

namespace rg {

// Time of one plan step (an ONNX node with what was fused into it, or a layout conversion).
struct ProfileRow {
  std::string node, op, impl;
  double ms_per_run = 0;
};

// Every step of a plan that ran with profiling on, in plan order.
std::vector<ProfileRow> profile_rows(const Plan& p);

// Seeded input tensors of these shapes and the model's input dtypes.
std::vector<Tensor> random_inputs(const Graph& g, const std::vector<Shape>& shapes, uint64_t seed);

// The shapes a benchmark feeds: each input's declared shape with `batch` in its first
// dynamic dim and 1 in the other dynamic ones. With a data set (one input only), dim 0
// is the batch and the rest the data set's sample shape fitted to the model's.
// Throws invalid_model / invalid_input when the model or data set cannot be fed so.
std::vector<Shape> bench_input_shapes(const Graph& g, int64_t batch, const Dataset* data);

// Samples per execution of these shapes: dim 0 of the first input (1 if it has none).
int64_t shapes_batch(const std::vector<Shape>& shapes);

// Prepared input batches for queries to rotate through, so no query reuses one tensor
// back to back: with a data set its consecutive batches (up to 64 MB of them), without
// one up to 8 seeded random batches (seeds seed, seed + 1, ...; also capped at 64 MB).
std::vector<std::vector<Tensor>> input_batches(const Graph& g, const std::vector<Shape>& shapes, const Dataset* data,
                                               uint64_t seed);

}  // namespace rg

#pragma once
// Pieces the benchmark's systems under test share: seeded inputs and per-step timings.
#include <string>
#include <vector>

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

}  // namespace rg

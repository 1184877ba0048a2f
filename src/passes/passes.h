#pragma once
// Graph rewrites run before a model is planned. Each pass is a small function over the
// Graph that returns how many changes it made; `run_passes` applies them in one ordered,
// commented list that can be switched off by name (`--disable-pass NAME`).
//
// Passes may not depend on kernels (layer rule), so constant folding receives the
// evaluator it needs from the runtime.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rg {

// Computes a node's outputs from known inputs (the runtime passes the reference kernels).
using Evaluator = std::function<std::vector<Tensor>(const Node&, const std::vector<const Tensor*>&)>;

struct PassOptions {
  std::set<std::string> disabled;  // pass names to skip
  Evaluator eval;                  // required by constant_folding
  bool verbose = false;            // print what each pass changed to stderr
};

struct PassInfo {
  const char* name;
  const char* what;
};
// The ordered list, for --help and `info`.
const std::vector<PassInfo>& pass_list();

// Runs every enabled pass in order; returns the total number of rewrites.
int run_passes(Graph& g, const PassOptions& o);

// The individual passes (exposed for tests).
int remove_identity(Graph& g);
int fold_constants(Graph& g, const Evaluator& eval);
int fold_batchnorm(Graph& g);
int fold_scale_shift(Graph& g);
int recognize_activations(Graph& g);
int recognize_range_guards(Graph& g);
int move_scale_after_matmul(Graph& g);
int move_scale_before_transpose(Graph& g);
int remove_dead_nodes(Graph& g);

}  // namespace rg

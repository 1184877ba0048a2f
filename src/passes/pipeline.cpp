#include <cstdio>

#include "passes/passes.h"

namespace rg {

// Order matters: constants must be folded before BN folding can see Conv weights that an
// exporter emitted as Constant nodes; activation formulas are recognised before a scale or
// shift folds away a piece of one (Clip(x + 3, 0, 6) / 6 after a Conv); dead-node removal
// cleans up after all of them.
const std::vector<PassInfo>& pass_list() {
  static const std::vector<PassInfo> kList = {
      {"remove_identity", "drop Identity, inference-mode Dropout and Pad-by-zero nodes"},
      {"constant_folding", "evaluate nodes whose inputs are all constant"},
      {"fold_batchnorm", "fold BatchNormalization into the preceding Conv/Gemm"},
      {"recognize_activations", "rewrite x*Sigmoid(x), Erf-GELU, x*HardSigmoid(x), Mish formulas as one node"},
      {"fold_scale_shift", "fold a constant per-channel or scalar Mul/Add/Sub/Div after a Conv/Gemm into its weights and bias"},
      {"move_scale_after_matmul", "apply a constant scale of a MatMul's input (attention's 1/sqrt(d)) to its output, where it fuses"},
      {"move_scale_before_transpose", "apply a per-channel constant Mul after a Transpose (ConvNeXt's layer scale) before it, where it fuses"},
      {"recognize_range_guards", "merge protect's range checks and out-of-range counters into one RangeGuard node per site"},
      {"remove_dead_nodes", "drop nodes whose outputs nothing uses"},
  };
  return kList;
}

int run_passes(Graph& g, const PassOptions& o) {
  int total = 0;
  for (const auto& p : pass_list()) {
    std::string name = p.name;
    if (o.disabled.count(name)) continue;
    int n = 0;
    if (name == "remove_identity") n = remove_identity(g);
    else if (name == "constant_folding") n = o.eval ? fold_constants(g, o.eval) : 0;
    else if (name == "fold_batchnorm") n = fold_batchnorm(g);
    else if (name == "fold_scale_shift") n = fold_scale_shift(g);
    else if (name == "recognize_activations") n = recognize_activations(g);
    else if (name == "move_scale_after_matmul") n = move_scale_after_matmul(g);
    else if (name == "move_scale_before_transpose") n = move_scale_before_transpose(g);
    else if (name == "recognize_range_guards") n = recognize_range_guards(g);
    else if (name == "remove_dead_nodes") n = remove_dead_nodes(g);
    if (o.verbose && n) std::fprintf(stderr, "pass %s: %d rewrites\n", p.name, n);
    total += n;
  }
  return total;
}

}  // namespace rg

#pragma once
// Protection sites: the tensors range supervision clamps. A site is the value after a
// whole activation pattern (patterns.h recognises them on the original graph, before any
// fusion), and optionally, as Ranger does, the value after the single pooling / reshape /
// concat-like operator that follows it, and optionally the outputs of the layers with
// learned weights that no activation check covers, directly or through a residual Add
// (attention projections, transformer and inverted-residual branches, logits, and the
// inputs of Sigmoid/Tanh, which saturate and so hide a fault).
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rg {

struct SiteOptions {
  std::set<std::string> kinds;       // activation kinds to protect; empty = all supported
  bool after_following_ops = false;  // also clamp after the pool/reshape/concat that follows
  bool layer_outputs = false;        // also clamp Conv/Gemm/MatMul outputs (see above)
};

struct Site {
  std::string tensor;  // the value to clamp
  std::string kind;    // relu, gelu, ..., "follow:MaxPool" (a following op), "layer:MatMul"
  std::string node;    // the node producing `tensor`
  std::string input;   // the activation's (or layer's) input
  // Which axis holds channels, for per-channel bounds: 1 after a Conv/BatchNorm (NCHW),
  // the last axis after a MatMul/Gemm (a Linear layer's [.., features]); -1 = undecided
  // (decided by rank: 1 for rank 4-5, last otherwise).
  int channel_axis = -1;
};

// Every kind find_activations can report, for --activations and messages.
const std::vector<std::string>& activation_kinds();

// Sites in graph order, each tensor once. Throws invalid_input for an unknown kind.
std::vector<Site> find_sites(const Graph& g, const SiteOptions& o);

// A site's channel axis for a tensor of `rank` dims (resolves channel_axis == -1).
int channel_axis(const Site& s, int rank);

}  // namespace rg

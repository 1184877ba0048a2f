#pragma once
// The protection transform (a whole-model transform with a typed config, DESIGN.md 4):
// after every site, insert a range check built from standard ONNX operators so the
// protected model runs anywhere the original does.
//   clamp, tensor bounds:   Clip(x, lo, hi)
//   clamp, channel bounds:  Min(Max(x, lo[C,1,1]), hi[C,1,1])
//   zero (Clip-Act):        Where(out_of_range(x), 0, x)
//   --detect:               + an int64 scalar output `rangeguard_oob_count`, the number
//                           of out-of-range (or NaN) activations in that inference
// Learned parameters are not touched; settings go into metadata_props.
#include <map>
#include <string>

#include "ir/graph.h"
#include "protect/bounds.h"

namespace rg {

enum class Granularity { tensor, channel };
enum class OobAction { clamp, zero };

struct ProtectOptions {
  Granularity granularity = Granularity::tensor;
  double margin = 0;  // widen each range, both sides, by this fraction of the site's (tensor) width
  OobAction action = OobAction::clamp;
  bool detect = false;
  std::string bounds_source;  // recorded in metadata_props
  void validate() const;
};

struct ProtectedSite {
  SiteStats stats;  // bounds after the margin
  std::string output;  // the checked value's new name
};

struct ProtectResult {
  Graph graph;
  std::vector<ProtectedSite> sites;
  std::map<std::string, int> per_kind;
};

inline constexpr const char* kOobOutput = "rangeguard_oob_count";

// `model_sha256` identifies the model `g` was loaded from: it must match the bounds'.
ProtectResult protect_model(const Graph& g, const std::string& model_sha256, const Bounds& b, const ProtectOptions& o);

}  // namespace rg

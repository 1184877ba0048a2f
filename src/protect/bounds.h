#pragma once
// Activation range statistics and the BOUNDS.json file `calibrate` writes and `protect`
// reads. Schema (format "rangeguard.bounds", version 1):
//   {
//     "format": "rangeguard.bounds", "version": 1,
//     "model": {"file": "...", "sha256": "<hex of the model file>"},
//     "settings": {"data": "...", "samples": 300, "shuffle": false, "seed": 1, "batch": 32,
//                  "stat": "minmax" | "percentile:99.99", "activations": [..] | "all",
//                  "after_following_ops": false, "layer_outputs": false},
//     "sites": [{
//       "tensor": "...", "kind": "relu", "node": "...", "input": "...",
//       "channel_axis": 1, "shape": [1, 64, 56, 56],   // shape seen (first batch)
//       "min": -0.0, "max": 6.3,                        // bounds chosen by `stat`
//       "observed_min": 0.0, "observed_max": 7.1,       // raw extremes over the data
//       "channel_min": [...], "channel_max": [...],     // per channel (bounds by `stat`)
//       "samples": 300, "elements": 12345678,
//       "histogram": {"min": 0.0, "max": 7.1, "counts": [1024 bins]}
//     }, ...]
//   }
#include <string>
#include <vector>

#include "core/tensor.h"
#include "protect/sites.h"

namespace rg {

struct SiteStats {
  Site site;
  Shape shape;
  int channel_axis = 1;
  float min = 0, max = 0;                    // bounds by the statistic
  float observed_min = 0, observed_max = 0;  // raw extremes
  std::vector<float> channel_min, channel_max;
  int64_t samples = 0, elements = 0;
  float hist_min = 0, hist_max = 0;
  std::vector<int64_t> hist;
};

struct Bounds {
  std::string model_file, model_sha256;
  std::string data;
  int64_t samples = 0, batch = 0;
  bool shuffle = false;
  uint64_t seed = 1;
  std::string stat = "minmax";
  std::vector<std::string> activations;  // empty = all
  bool after_following_ops = false;
  bool layer_outputs = false;
  std::vector<SiteStats> sites;
};

void save_bounds(const Bounds& b, const std::string& path);
// Throws invalid_input with the reason when the file is not a bounds file we can use.
Bounds load_bounds(const std::string& path);

}  // namespace rg

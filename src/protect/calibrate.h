#pragma once
// Calibration: run fault-free data through the model and record, for every protection
// site, the range of its values (per tensor and per channel) and a histogram from which
// percentile bounds are taken. Uses the runtime with the site tensors kept materialised.
#include <functional>
#include <string>

#include "io/dataset.h"
#include "protect/bounds.h"

namespace rg {

struct CalibOptions {
  int64_t samples = 300;       // first N samples (or N drawn at random with `shuffle`)
  bool shuffle = false;
  uint64_t seed = 1;
  int64_t batch = 32;          // samples per run when the batch dim is dynamic
  std::string stat = "minmax"; // or "percentile:P" with 50 < P <= 100 (e.g. 99.99)
  int threads = 0;
  SiteOptions sites;
  std::function<void(int64_t, int64_t)> progress;  // (samples done, total) per pass
  void validate() const;
};

// Bounds for `model_path` (read from disk: its sha256 goes into the result). Throws
// invalid_input when the data does not fit the model; a model without supported
// activations gives zero sites (the caller warns).
Bounds calibrate(const std::string& model_path, const Dataset& data, const CalibOptions& o);

// Parses "minmax" / "percentile:99.99"; returns the percentile (100 for minmax).
double parse_stat(const std::string& stat);

}  // namespace rg

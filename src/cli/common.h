#pragma once
// Pieces several subcommands share: a progress bar and the image-folder options.
#include <chrono>
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "io/dataset.h"

namespace rg::cli {

// A one-line bar on stderr, drawn only on a terminal and only once a run has taken
// more than ~2 s (short runs stay quiet; logs and pipes never see carriage returns).
class ProgressBar {
 public:
  explicit ProgressBar(std::string unit = "samples");
  ~ProgressBar();
  void update(int64_t done, int64_t total);

 private:
  using Clock = std::chrono::steady_clock;
  std::string unit_;
  bool tty_, shown_ = false;
  Clock::time_point start_, last_;
};

// --resize --crop --scale --mean --std --nhwc --grayscale --bgr, in their own group.
void add_image_options(CLI::App* cmd, ImageOptions& img);

}  // namespace rg::cli

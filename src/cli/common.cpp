#include "cli/common.h"

#include <unistd.h>

#include <cstdio>

namespace rg::cli {

ProgressBar::ProgressBar(std::string unit)
    : unit_(std::move(unit)), tty_(isatty(STDERR_FILENO)), start_(Clock::now()), last_(start_) {}

ProgressBar::~ProgressBar() {
  if (shown_) std::fputs("\n", stderr);
}

void ProgressBar::update(int64_t done, int64_t total) {
  if (!tty_) return;
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  bool finished = done == total;
  if (elapsed < 2 || (!finished && std::chrono::duration<double>(now - last_).count() < 0.1)) return;
  last_ = now;
  shown_ = true;
  constexpr int kWidth = 30;
  int fill = (int)(kWidth * done / std::max<int64_t>(total, 1));
  std::fprintf(stderr, "\r[%s%s] %lld/%lld %s, %.0f/s", std::string((size_t)fill, '#').c_str(),
               std::string((size_t)(kWidth - fill), '.').c_str(), (long long)done, (long long)total, unit_.c_str(),
               done / elapsed);
  std::fflush(stderr);
}

void add_image_options(CLI::App* cmd, ImageOptions& img) {
  auto* g = cmd->add_option_group("image folder preprocessing");
  g->add_option("--resize", img.resize, "Resize the shorter side to this many pixels (bilinear)");
  g->add_option("--crop", img.crop, "Centre-crop to this square size");
  g->add_option("--scale", img.scale, "Multiply pixels (0..255) by this first");
  g->add_option("--mean", img.mean, "Per-channel mean to subtract after scaling: a,b,c or one value")->delimiter(',');
  g->add_option("--std", img.std, "Per-channel divisor after the mean: a,b,c or one value")->delimiter(',');
  g->add_flag("--nhwc", img.nhwc, "Samples as [H, W, C] instead of [C, H, W]");
  g->add_flag("--grayscale", img.grayscale, "Decode to one channel");
  g->add_flag("--bgr", img.bgr, "Channel order BGR instead of RGB");
}

}  // namespace rg::cli

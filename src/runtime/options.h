#pragma once
// Session options: a plain struct with documented defaults, validated once (DESIGN.md 8).
#include <set>
#include <string>

namespace rg {

enum class Precision { fp32, bf16 };

struct SessionOptions {
  int threads = 0;                     // intra-op threads; 0 = every core
  bool fast_kernels = true;            // use oneDNN kernels where one fits; false = reference only
  Precision precision = Precision::fp32;
  std::set<std::string> disabled_passes;  // names from pass_list()
  // With threads > 1, time each step at the full thread count and at one thread when the
  // plan is compiled and keep the faster: small steps lose more to waking threads than
  // they gain. Adds a few runs of the model to compile time.
  bool autotune_threads = true;
  // The threshold that tuning chose for this plan before, applied without timing again
  // (steps below this many FLOPs run on one thread); < 0 = time it. The layout autotune
  // sets it when it compiles a plan a second time.
  double single_thread_below = -1;
  bool winograd = true;                // let 3x3 stride-1 convolutions use Winograd
  // 1x1 convolutions read and write oneDNN's nChw16c blocks instead of the layout oneDNN
  // would pick (channels-last). Set by the layout autotune, below, or by hand.
  bool blocked_1x1 = false;
  // When a plan has AVX-512 Winograd convolutions and 1x1 convolutions (which oneDNN runs
  // channels-last), compile it both ways and keep the faster: the layout reorders around
  // oneDNN's Winograd (nChw16c only) can cost more than the 1x1 kernel gains, and at 2
  // threads oneDNN's nChw16c 1x1 kernel can be the faster one.
  // Off by default: the two layouts use different kernels, which round differently in the
  // last bits, so a timed choice would make outputs vary between runs. Commands whose
  // outputs are compared across runs (run, calibrate, accuracy, inject) keep oneDNN's
  // own choice; bench and serve, which run one plan many times, turn it on.
  bool autotune_layout = false;
  bool fuse = true;                    // fuse activations/residual adds into the op before them
  // Values that must stay materialised in the ONNX layout so observers can read them
  // (calibration sites, fault-injection targets); fusion never hides them.
  std::set<std::string> keep_values;
  // Kept values produced in the ONNX layout itself rather than copied to a plain twin, so
  // an observer's changes reach the consumers (activation fault injection).
  bool keep_values_plain = false;
  bool verbose = false;                // log passes and kernel choices to stderr
  // A plan whose activations need more than this many bytes is refused with a clear error
  // instead of being allocated (and the process killed when it is touched); 0 = the
  // machine's physical memory.
  size_t max_activation_bytes = 0;

  void validate() const;
};

}  // namespace rg

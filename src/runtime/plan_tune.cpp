// The choices a Plan makes by timing itself on zeroed inputs when it is compiled (which
// steps run on one thread), and the timing the session's layout choice uses.
#include "runtime/plan.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "runtime/model_info.h"

namespace rg {

// Picks which steps run on one thread by timing the whole plan (zeroed inputs). Waking a
// second thread costs tens of microseconds on some machines (virtualised, SMT siblings):
// more than small convolutions and matmuls gain from it, while big ones still profit.
// Steps below a FLOP threshold get one thread; a handful of thresholds are timed end to
// end, because a step's cost depends on its neighbours (threads asleep or spinning).
// oneDNN fixes its work split when a primitive is created, so each fast step gets a
// second kernel built for one thread; the losing kernel of each pair is dropped.
void Plan::autotune_threads() {
  const size_t n = steps_.size();
  // Zeroed inputs stand in for real ones; where data decides shapes (a shape tensor fed as
  // an input), zeros are not a valid stand-in, so such plans are left untuned.
  for (const auto& st : steps_)
    if (st.dynamic) return;
  const double known = opts_.single_thread_below;
  std::vector<std::unique_ptr<Kernel>> multi(n), single(n);
  std::vector<double> flops(n, 0);
  for (size_t i = 0; i < n; i++) {
    Step& st = steps_[i];
    if (st.dynamic || !st.node) continue;
    std::vector<Shape> ins, outs;
    for (int k : st.in) ins.push_back(k < 0 ? Shape{} : slots_[k].shape);
    for (int k : st.out) outs.push_back(k < 0 ? Shape{} : slots_[k].shape);
    flops[i] = (double)node_flops(*st.node, ins, outs);
    if (st.compile && (known < 0 || flops[i] < known)) {
      omp_set_num_threads(1);
      single[i] = find_fast(st.node->op_type)->make(*st.compile);
      multi[i] = std::move(st.fast);
    }
  }
  omp_set_num_threads(threads_);
  auto configure = [&](double threshold) {
    for (size_t i = 0; i < n; i++) {
      Step& st = steps_[i];
      if (st.dynamic || !st.node) continue;
      bool one = flops[i] < threshold && (!multi[i] || single[i]);
      st.threads = one ? 1 : 0;
      if (multi[i] || single[i]) st.fast = one ? std::move(single[i]) : std::move(multi[i]);
    }
  };
  auto unconfigure = [&]() {
    for (size_t i = 0; i < n; i++)
      if (multi[i] || single[i]) (steps_[i].threads ? single[i] : multi[i]) = std::move(steps_[i].fast);
  };
  if (known >= 0) {
    configure(known);
    tuned_threshold_ = known;
    return;
  }
  const double thresholds[] = {0, 1e6, 3e6, 1e7, 3e7, 1e8, 1e30};
  double best_t = 0;
  int64_t best = INT64_MAX;
  for (double t : thresholds) {
    configure(t);
    int64_t fastest = fastest_zero_run(5);
    unconfigure();
    if (opts_.verbose) std::fprintf(stderr, "autotune: one thread below %.0e FLOPs: %.3f ms\n", t, fastest / 1e6);
    if (fastest < best) best = fastest, best_t = t;
  }
  configure(best_t);
  tuned_threshold_ = best_t;
}

int64_t Plan::fastest_zero_run(int runs) {
  using Clock = std::chrono::steady_clock;
  std::vector<Tensor> zeros;
  for (int k : input_slots_) zeros.emplace_back(slots_[k].type, slots_[k].shape, true);
  std::memset(arena_.get(), 0, activation_bytes_);
  int prev = omp_get_max_threads();
  int64_t fastest = INT64_MAX;
  try {
    for (int r = 0; r < runs + 2; r++) {
      auto t0 = Clock::now();
      execute(zeros);
      if (r >= 2) fastest = std::min<int64_t>(fastest, (Clock::now() - t0).count());
    }
  } catch (const Error&) {
    fastest = INT64_MAX;
  }
  omp_set_num_threads(prev);
  return fastest;
}

bool Plan::has_layout_choice() const {
  bool winograd = false, one_by_one = false;
  for (const auto& st : steps_) {
    if (st.dynamic) return false;
    if (!st.fast || !st.node || st.node->op_type != "Conv" || st.in.size() < 2 || st.in[1] < 0) continue;
    // With AVX-512 Winograd (oneDNN's, which takes nChw16c, or rangeguard's, which takes
    // nChw16c or channels-last) the 1x1 layers around it may run either way. rangeguard's
    // AVX2 one takes nChw8c, as oneDNN's AVX2 1x1 kernels already give.
    const std::string impl = st.fast->impl();
    if (impl.find("wino") != std::string::npos && impl.find("avx2") == std::string::npos) winograd = true;
    const Shape& w = slots_[st.in[1]].shape;
    if (w.size() == 4 && w[2] == 1 && w[3] == 1) one_by_one = true;
  }
  return winograd && one_by_one;
}

}  // namespace rg

#pragma once
// The harness measuring itself (`rangeguard bench --self-test`): a no-op system under
// test shows what the load generator costs per query and how exactly it keeps a Poisson
// schedule, so a reader knows the floor under every figure it reports.
#include <nlohmann/json.hpp>

namespace rg {

struct SelfTestLimits {
  double max_cost_ns = 2000;     // harness time per query, closed loop, one thread
  double min_qps = 200000;       // ... at this rate or more
  double server_qps = 200000;    // server arrivals target
  double max_rate_error = 0.01;  // issued rate within 1% of the target
  double max_quantile_error = 0.01;  // histogram percentiles against exact ones
};

// Runs each check for `seconds`; the JSON carries every figure and "pass".
nlohmann::json run_self_test(double seconds, const SelfTestLimits& lim = {});

}  // namespace rg

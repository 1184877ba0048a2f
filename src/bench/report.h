#pragma once
// The benchmark report as JSON (schema in docs/bench.md), the per-query trace (JSONL),
// the environment block every report carries, and the self-contained HTML view.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/driver.h"
#include "bench/http_sut.h"
#include "bench/model_sut.h"

namespace rg {

// What the report says about how the run was set up, beside the results.
struct ReportContext {
  std::vector<std::string> models;  // one, or two with --compare
  std::string precision = "fp32";
  Timing timing = Timing::inference;
  std::string data;                 // --data, or "" for seeded random tensors
  int streams = 1, threads_per_stream = 1;
  int64_t batch = 1;                // samples per execution actually used
  std::vector<Shape> input_shapes;
  size_t activation_bytes = 0;
  std::vector<std::vector<ProfileRow>> profiles;  // per model, with --profile
  // --url: the server measured (streams are then client connections, timing "http").
  std::string url, model_name;
};

// CPU model (/proc/cpuinfo), instruction set oneDNN dispatches, cores, threads, streams,
// versions of rangeguard, oneDNN and the compiler, and the kernel.
nlohmann::json environment_json(int streams, int threads_per_stream);
nlohmann::json latency_json(const LatencyHistogram& h);
// One model's measured run: validity, counts, throughput, latency, early stopping.
nlohmann::json run_json(const ModelRun& run, const BenchConfig& c);
nlohmann::json report_json(const BenchResult& r, const BenchConfig& c, const ReportContext& ctx);
// One JSON object per measured query, in issue order; throws io when unwritable.
void write_trace(const std::string& path, const BenchResult& r, const ReportContext& ctx);
// A single HTML file (no scripts or fonts fetched): summary tables, the latency CDF as
// inline SVG and, with a sweep, the latency-throughput curve.
std::string html_report(const nlohmann::json& report);

}  // namespace rg

#include "bench/report.h"

#include <sys/resource.h>
#include <sys/utsname.h>

#include <fstream>
#include <thread>

#include "kernels/op.h"

#ifndef RG_VERSION
#define RG_VERSION "unknown"
#endif

namespace rg {
namespace {

double ms(int64_t ns) { return (double)ns / 1e6; }

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(line.find_first_not_of(" \t", p + 1));
    }
  return "unknown";
}

// A CDF to plot: at most ~300 points, always keeping the tail (where the eye looks).
nlohmann::json cdf_json(const LatencyHistogram& h) {
  nlohmann::json pts = nlohmann::json::array();
  auto b = h.buckets();
  int64_t n = h.count(), seen = 0;
  size_t stride = std::max<size_t>(1, b.size() / 300);
  for (size_t i = 0; i < b.size(); i++) {
    seen += b[i].second;
    double frac = (double)seen / (double)n;
    if (i % stride == 0 || i + 1 == b.size() || frac > 0.99) pts.push_back({ms(b[i].first), frac});
  }
  return pts;
}

}  // namespace

nlohmann::json environment_json(int streams, int threads_per_stream) {
  struct utsname u;
  std::string kernel = uname(&u) == 0 ? std::string(u.sysname) + " " + u.release : "unknown";
  return {{"cpu_model", cpu_model()},
          {"isa", fast_isa()},
          {"cores", (int)std::thread::hardware_concurrency()},
          {"streams", streams},
          {"threads_per_stream", threads_per_stream},
          {"rangeguard_version", RG_VERSION},
          {"onednn_version", fast_library_version()},
          {"compiler", __VERSION__},
          {"os", kernel}};
}

nlohmann::json latency_json(const LatencyHistogram& h) {
  return {{"p50", ms(h.quantile_ns(0.5))},   {"p90", ms(h.quantile_ns(0.9))}, {"p95", ms(h.quantile_ns(0.95))},
          {"p99", ms(h.quantile_ns(0.99))},  {"p999", ms(h.quantile_ns(0.999))}, {"min", ms(h.min_ns())},
          {"max", ms(h.max_ns())},           {"mean", h.mean_ns() / 1e6}};
}

nlohmann::json run_json(const ModelRun& run, const BenchConfig& c) {
  const PhaseResult& r = run.result;
  nlohmann::json j;
  j["valid"] = run.verdict.valid;
  j["invalid_reasons"] = run.verdict.reasons;
  j["queries"] = r.queries;
  j["samples"] = r.samples;
  j["duration_s"] = r.seconds;
  j["throughput_per_s"] = r.samples_per_s();
  j["queries_per_s"] = r.queries_per_s();
  j["latency_ms"] = latency_json(r.latency);
  double p = c.metric_percentile();
  if (c.scenario != Scenario::offline)
    j["early_stopping"] = {{"percentile", p * 100},
                           {"confidence", c.confidence * 100},
                           {"max_overlatency", run.verdict.es_max_overlatency},
                           {"latency_ms", run.verdict.es_max_overlatency >= 0 ? nlohmann::json(ms(run.verdict.es_latency_ns))
                                                                              : nlohmann::json(nullptr)}};
  if (c.latency_bound_ms > 0) j["overlatency_queries"] = r.overlatency;
  if (c.scenario == Scenario::server)
    j["server"] = {{"scheduled_queries", r.scheduled},
                   {"issued_qps", r.issued_qps},
                   {"issue_delay_ms", {{"p50", ms(r.issue_delay.quantile_ns(0.5))},
                                       {"p99", ms(r.issue_delay.quantile_ns(0.99))},
                                       {"max", ms(r.issue_delay.max_ns())}}}};
  j["latency_cdf"] = cdf_json(r.latency);
  return j;
}

nlohmann::json report_json(const BenchResult& r, const BenchConfig& c, const ReportContext& ctx) {
  nlohmann::json j;
  j["schema"] = "rangeguard-bench/1";
  j["model"] = ctx.models.at(0);
  j["scenario"] = scenario_name(c.scenario);
  nlohmann::json a = run_json(r.runs.at(0), c);
  for (auto& [k, v] : a.items()) j[k] = v;
  j["seconds"] = j["duration_s"];  // the first bench's name for it
  double p = c.metric_percentile();
  switch (c.scenario) {
    case Scenario::single_stream:
    case Scenario::multi_stream:
      j["metric"] = {{"name", fmt::format("p{:g}_latency_ms", p * 100)},
                     {"value", ms(r.runs[0].result.latency.quantile_ns(p))}};
      break;
    case Scenario::server:
      j["metric"] = {{"name", c.find_peak ? "peak_qps" : "queries_per_s"},
                     {"value", c.find_peak ? r.peak_qps : r.runs[0].result.queries_per_s()}};
      break;
    case Scenario::offline:
      j["metric"] = {{"name", "samples_per_s"}, {"value", r.runs[0].result.samples_per_s()}};
  }
  bool http = !ctx.url.empty();
  if (http) j["target"] = {{"url", ctx.url}, {"model_name", ctx.model_name}, {"connections", ctx.streams}};
  j["timing"] = {{"mode", http ? "http" : timing_name(ctx.timing)},
                 {"start", http ? http_timing_start_point() : timing_start_point(ctx.timing)},
                 {"stop", http ? http_timing_stop_point() : timing_stop_point(ctx.timing)},
                 {"latency_from", c.scenario == Scenario::server ? "scheduled arrival" :
                                  c.scenario == Scenario::offline ? "issue of all samples (run start)" : "query issue"}};
  j["samples_from"] = ctx.data.empty() ? "seeded random tensors" : ctx.data;
  j["settings"] = {{"min_duration_s", c.min_duration_s}, {"min_queries", c.min_queries},
                   {"warmup_s", c.warmup_s},             {"batch", ctx.batch},
                   {"samples_per_query", c.query_samples()},
                   {"target_qps", c.scenario == Scenario::server ? nlohmann::json(r.target_qps) : nlohmann::json(nullptr)},
                   {"latency_bound_ms", c.latency_bound_ms > 0 ? nlohmann::json(c.latency_bound_ms) : nlohmann::json(nullptr)},
                   {"percentile", p * 100},              {"confidence", c.confidence * 100},
                   {"seed", c.seed},                     {"precision", ctx.precision}};
  j["warmup_queries_per_s"] = r.warmup_qps;
  // Fields of the first bench, kept for scripts that read them.
  j["precision"] = ctx.precision;
  j["batch"] = ctx.batch;
  j["streams"] = ctx.streams;
  j["threads_per_stream"] = ctx.threads_per_stream;
  j["input_shapes"] = ctx.input_shapes;
  j["activation_memory_bytes_per_stream"] = ctx.activation_bytes;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  j["peak_rss_mb"] = ru.ru_maxrss / 1024.0;  // whole process: weights, plans, runtime
  if (c.find_peak) {
    j["peak_qps"] = r.peak_qps;
    nlohmann::json probes = nlohmann::json::array();
    for (const auto& pr : r.probes)
      probes.push_back({{"target_qps", pr.target_qps}, {"achieved_qps", pr.achieved_qps},
                        {"percentile_ms", ms(pr.percentile_ns)}, {"valid", pr.valid}});
    j["find_peak"] = {{"tolerance", c.peak_tolerance}, {"probes", probes}};
  }
  if (r.runs.size() > 1) {
    nlohmann::json b = run_json(r.runs[1], c);
    j["valid"] = j["valid"].get<bool>() && b["valid"].get<bool>();
    for (const auto& why : b["invalid_reasons"]) j["invalid_reasons"].push_back("compare model: " + why.get<std::string>());
    j["compare"] = {{"model", ctx.models.at(1)},
                    {"run", b},
                    {"rounds", (int)r.round_ratios.size()},
                    {"order", "ABBA (rounds alternate which model runs first)"},
                    {"metric", c.scenario == Scenario::offline ? "seconds per sample" : "p50 latency per round"},
                    {"ratio", r.ratio.ratio},
                    {"ci95", {r.ratio.low, r.ratio.high}},
                    {"ci_method", "t-interval of per-round log ratios (geometric mean)"},
                    {"round_ratios", r.round_ratios}};
  }
  if (!r.sweep.empty()) {
    nlohmann::json pts = nlohmann::json::array();
    for (const auto& s : r.sweep)
      pts.push_back({{r.sweep_over, s.x}, {"queries_per_s", s.queries_per_s}, {"throughput_per_s", s.samples_per_s},
                     {"p50_ms", ms(s.p50_ns)}, {"p90_ms", ms(s.p90_ns)}, {"p99_ms", ms(s.p99_ns)}, {"valid", s.valid}});
    j["sweep"] = {{"over", r.sweep_over}, {"points", pts}};
  }
  for (size_t m = 0; m < ctx.profiles.size(); m++) {
    if (ctx.profiles[m].empty()) continue;
    nlohmann::json pj = nlohmann::json::array();
    for (const auto& p : ctx.profiles[m]) pj.push_back({{"node", p.node}, {"op", p.op}, {"impl", p.impl}, {"ms", p.ms_per_run}});
    if (m == 0) j["profile"] = pj;
    else j["compare"]["profile"] = pj;
  }
  j["environment"] = environment_json(ctx.streams, ctx.threads_per_stream);
  return j;
}

void write_trace(const std::string& path, const BenchResult& r, const ReportContext& ctx) {
  std::ofstream f(path);
  if (!f) fail(ErrorCode::io, "cannot write trace '{}'", path);
  std::vector<const TraceEntry*> all;
  for (const auto& run : r.runs)
    for (const auto& t : run.result.trace) all.push_back(&t);
  std::stable_sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->issued_ns < b->issued_ns; });
  bool two = r.runs.size() > 1;
  for (const TraceEntry* t : all) {
    nlohmann::json j = {{"query", t->query}, {"worker", t->worker}, {"samples", t->samples},
                        {"scheduled_ns", t->scheduled_ns}, {"issued_ns", t->issued_ns}, {"done_ns", t->done_ns},
                        {"latency_ns", t->latency_ns()}};
    if (two) {
      j["model"] = ctx.models.at((size_t)t->model);
      j["round"] = t->round;
    }
    f << j.dump() << "\n";
  }
  if (!f) fail(ErrorCode::io, "failed writing trace '{}'", path);
}

}  // namespace rg

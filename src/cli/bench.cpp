// rangeguard bench MODEL [--threads N] [--streams S] [--batch B] [--precision P]
//                        [--duration SECONDS] [--json FILE]
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/runner.h"
#include "cli/commands.h"
#include "kernels/op.h"

namespace rg::cli {
namespace {

struct BenchArgs {
  std::string model, precision = "fp32", json;
  bool no_winograd = false;
  bool no_autotune = false, verbose = false;
  BenchOptions o;
};

nlohmann::json report_json(const std::string& model, const std::string& precision, const BenchReport& r) {
  auto ms = [](int64_t ns) { return (double)ns / 1e6; };
  nlohmann::json j;
  j["model"] = model;
  j["timing"] = "inference";  // from binding the input to the outputs being ready
  j["precision"] = precision;
  j["batch"] = r.options.batch;
  j["streams"] = r.options.streams;
  j["threads_per_stream"] = r.threads_per_stream;
  j["input_shapes"] = r.input_shapes;
  j["queries"] = r.queries;
  j["samples"] = r.samples;
  j["seconds"] = r.seconds;
  j["throughput_per_s"] = r.throughput_per_s();
  j["queries_per_s"] = r.queries_per_s();
  j["latency_ms"] = {{"p50", ms(r.latency.quantile_ns(0.5))}, {"p90", ms(r.latency.quantile_ns(0.9))},
                     {"p99", ms(r.latency.quantile_ns(0.99))}, {"min", ms(r.latency.min_ns())},
                     {"max", ms(r.latency.max_ns())}, {"mean", r.latency.mean_ns() / 1e6}};
  j["activation_memory_bytes_per_stream"] = r.activation_bytes;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  j["peak_rss_mb"] = ru.ru_maxrss / 1024.0;  // whole process: weights, plans, runtime
  j["environment"] = {{"isa", fast_isa()}, {"library", fast_library_version()},
                      {"cores", (int)std::thread::hardware_concurrency()}};
  return j;
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure latency percentiles and throughput of a model");
  cmd->footer(
      "Runs the model on a fixed seeded input after a warm-up; latency is pure inference\n"
      "(input bound -> outputs ready), from a histogram with under 1% error.\n"
      "Examples:\n"
      "  rangeguard bench models/lenet_relu.onnx --duration 5\n"
      "  rangeguard bench resnet50.onnx --threads 1 --json out.json\n"
      "  rangeguard bench resnet50.onnx --streams 2 --batch 8     (throughput)");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("MODEL", a->model, "ONNX model file")->required();
  cmd->add_option("--threads", a->o.threads, "Intra-op threads per stream (0 = cores / streams)")->capture_default_str();
  cmd->add_option("--streams", a->o.streams, "Concurrent executors sharing the weights")->capture_default_str();
  cmd->add_option("--batch", a->o.batch, "Samples per query (fills the dynamic batch dim)")->capture_default_str();
  cmd->add_option("--precision", a->precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->add_option("--duration", a->o.duration_s, "Seconds of timed runs")->capture_default_str();
  cmd->add_option("--warmup", a->o.warmup_s, "Seconds of untimed runs first")->capture_default_str();
  cmd->add_option("--seed", a->o.seed, "Seed of the random input")->capture_default_str();
  cmd->add_option("--json", a->json, "Write the report as JSON to this file");
  cmd->add_flag("--profile", a->o.profile, "Time every node (stream 0) and list the costliest");
  cmd->add_flag("--no-winograd", a->no_winograd, "Run 3x3 convolutions direct only");
  cmd->add_flag("--verbose", a->verbose, "Log graph passes, kernel choices and thread tuning");
  cmd->add_flag("--no-autotune", a->no_autotune, "Use every thread for every step (no per-step timing)");
  cmd->callback([a] {
    SessionOptions so;
    so.precision = a->precision == "bf16" ? Precision::bf16 : Precision::fp32;
    so.winograd = !a->no_winograd;
    so.autotune_threads = !a->no_autotune;
    so.verbose = a->verbose;
    Session s = Session::load(a->model, so);
    std::cerr << "bench: " << a->model << ", " << a->o.streams << " stream(s), warm-up " << a->o.warmup_s
              << " s, then " << a->o.duration_s << " s\n";
    BenchReport r = run_bench(s, a->o);
    nlohmann::json j = report_json(a->model, a->precision, r);
    auto ms = [](int64_t ns) { return (double)ns / 1e6; };
    std::cout << fmt::format("model        {}\n", a->model);
    std::cout << fmt::format("config       {} stream(s) x {} thread(s), batch {}, {} on {}\n", a->o.streams,
                             r.threads_per_stream, a->o.batch, a->precision, fast_isa());
    std::cout << fmt::format("queries      {} in {:.2f} s\n", r.queries, r.seconds);
    std::cout << fmt::format("latency ms   p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  min {:.3f}  max {:.3f}\n",
                             ms(r.latency.quantile_ns(0.5)), ms(r.latency.quantile_ns(0.9)),
                             ms(r.latency.quantile_ns(0.99)), ms(r.latency.min_ns()), ms(r.latency.max_ns()));
    std::cout << fmt::format("throughput   {:.1f} samples/s\n", r.throughput_per_s());
    std::cout << fmt::format("memory       {:.1f} MB activations per stream, peak RSS {:.1f} MB\n",
                             r.activation_bytes / 1e6, j["peak_rss_mb"].get<double>());
    if (a->o.profile) {
      std::vector<ProfileRow> rows = r.profile;
      double total = 0;
      for (const auto& p : rows) total += p.ms_per_run;
      std::map<std::string, double> by_op;
      for (const auto& p : rows) by_op[p.op] += p.ms_per_run;
      std::sort(rows.begin(), rows.end(), [](const ProfileRow& x, const ProfileRow& y) { return x.ms_per_run > y.ms_per_run; });
      std::cout << fmt::format("profile      {:.3f} ms per run in {} steps; costliest:\n", total, rows.size());
      for (size_t i = 0; i < rows.size() && i < 15; i++)
        std::cout << fmt::format("  {:8.3f} ms {:5.1f}%  {:<28} {:<32} {}\n", rows[i].ms_per_run,
                                 100 * rows[i].ms_per_run / std::max(total, 1e-9), rows[i].op, rows[i].node, rows[i].impl);
      std::vector<std::pair<double, std::string>> ops;
      for (const auto& kv : by_op) ops.emplace_back(kv.second, kv.first);
      std::sort(ops.rbegin(), ops.rend());
      std::cout << "  by operator:";
      for (size_t i = 0; i < ops.size() && i < 8; i++) std::cout << fmt::format(" {} {:.2f}ms", ops[i].second, ops[i].first);
      std::cout << "\n";
      nlohmann::json pj = nlohmann::json::array();
      for (const auto& p : r.profile) pj.push_back({{"node", p.node}, {"op", p.op}, {"impl", p.impl}, {"ms", p.ms_per_run}});
      j["profile"] = pj;
    }
    if (!a->json.empty()) {
      std::ofstream f(a->json);
      if (!f) fail(ErrorCode::io, "cannot write '{}'", a->json);
      f << j.dump(2) << "\n";
    }
  });
}

}  // namespace rg::cli

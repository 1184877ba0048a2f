// rangeguard bench MODEL [--scenario S] [--compare MODEL2] [--find-peak] [--sweep] ...
// Parsing and printing only: the load generator and its verdicts live in src/bench.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "bench/driver.h"
#include "bench/http_sut.h"
#include "bench/model_sut.h"
#include "bench/report.h"
#include "bench/self_test.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "ir/onnx_io.h"
#include "serve/server.h"

namespace rg::cli {
namespace {

struct BenchArgs {
  std::string model, compare, precision = "fp32", json, html, trace, scenario = "single-stream", timing = "inference", data;
  std::string url, model_name;  // --url: measure a KServe v2 server instead of the model in process
  bool no_winograd = false, no_autotune = false, verbose = false, profile = false, self_test = false;
  bool streams_given = false;
  int threads = 0, streams = 1;
  double percentile = 0;
  BenchConfig c;
  ImageOptions img;
};

void write_file(const std::string& path, const std::string& text, const char* what) {
  std::ofstream f(path);
  if (!f) fail(ErrorCode::io, "cannot write {} '{}'", what, path);
  f << text;
  if (!f) fail(ErrorCode::io, "failed writing {} '{}'", what, path);
}

void print_run(const std::string& label, const nlohmann::json& r) {
  const auto& l = r["latency_ms"];
  std::cout << fmt::format("{:<13}{} queries, {} samples in {:.2f} s: {:.1f} samples/s, {:.1f} queries/s\n", label,
                           r["queries"].get<int64_t>(), r["samples"].get<int64_t>(), r["duration_s"].get<double>(),
                           r["throughput_per_s"].get<double>(), r["queries_per_s"].get<double>());
  std::cout << fmt::format("{:<13}p50 {:.3f}  p90 {:.3f}  p95 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}  mean {:.3f}\n",
                           "latency ms", l["p50"].get<double>(), l["p90"].get<double>(), l["p95"].get<double>(),
                           l["p99"].get<double>(), l["p999"].get<double>(), l["max"].get<double>(), l["mean"].get<double>());
  if (r.contains("early_stopping") && !r["early_stopping"]["latency_ms"].is_null())
    std::cout << fmt::format("{:<13}p{:g} <= {:.3f} ms with {:g}% confidence (early stopping)\n", "", 
                             r["early_stopping"]["percentile"].get<double>(), r["early_stopping"]["latency_ms"].get<double>(),
                             r["early_stopping"]["confidence"].get<double>());
  if (r.contains("server"))
    std::cout << fmt::format("{:<13}issued {:.1f} q/s, issue delay p99 {:.3f} ms\n", "arrivals",
                             r["server"]["issued_qps"].get<double>(), r["server"]["issue_delay_ms"]["p99"].get<double>());
}

void print_profile(const std::vector<ProfileRow>& all) {
  std::vector<ProfileRow> rows = all;
  double total = 0;
  std::map<std::string, double> by_op;
  for (const auto& p : rows) total += p.ms_per_run, by_op[p.op] += p.ms_per_run;
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
}

void print_report(const nlohmann::json& j, const BenchArgs& a, const BenchResult& r, const ReportContext& ctx) {
  const auto& env = j["environment"];
  std::cout << fmt::format("model        {}\n", a.model);
  std::cout << fmt::format("scenario     {}, timing {} (start: {}; stop: {})\n", j["scenario"].get<std::string>(),
                           j["timing"]["mode"].get<std::string>(), j["timing"]["start"].get<std::string>(),
                           j["timing"]["stop"].get<std::string>());
  if (ctx.url.empty())
    std::cout << fmt::format("config       {} stream(s) x {} thread(s), batch {}, {} samples/query, {} on {}\n", ctx.streams,
                             ctx.threads_per_stream, ctx.batch, a.c.query_samples(), a.precision, env["isa"].get<std::string>());
  else
    std::cout << fmt::format("target       model '{}' at {} (KServe v2, binary tensors)\n"
                             "config       http client, {} connection(s), batch {} per request, {} samples/query\n",
                             ctx.model_name, ctx.url, ctx.streams, ctx.batch, a.c.query_samples());
  // Random inputs are no stand-in for real ones where cost depends on values (range
  // checks rewrite what falls outside their bounds), so say which were timed.
  if (ctx.data.empty())
    std::cout << fmt::format("inputs       seeded random tensors (seed {}); --data times real samples\n", a.c.seed);
  else
    std::cout << fmt::format("inputs       {}\n", ctx.data);
  std::cout << fmt::format("cpu          {} ({} cores), {}\n", env["cpu_model"].get<std::string>(),
                           env["cores"].get<int>(), env["onednn_version"].get<std::string>());
  if (a.c.scenario == Scenario::server)
    std::cout << fmt::format("target       {:.1f} q/s (Poisson), latency from scheduled arrival\n", r.target_qps);
  print_run(ctx.models.size() > 1 ? "A" : "run", j);
  if (j.contains("compare")) {
    print_run("B", j["compare"]["run"]);
    const auto& c = j["compare"];
    std::cout << fmt::format("ratio B/A    {:.4f}  95% CI [{:.4f}, {:.4f}]  ({} rounds, {})\n", c["ratio"].get<double>(),
                             c["ci95"][0].get<double>(), c["ci95"][1].get<double>(), c["rounds"].get<int>(),
                             c["metric"].get<std::string>());
  }
  if (j.contains("peak_qps")) std::cout << fmt::format("peak_qps     {:.1f}\n", j["peak_qps"].get<double>());
  if (j.contains("sweep")) {
    std::string over = j["sweep"]["over"];
    std::cout << fmt::format("sweep over {}:\n", over);
    for (const auto& p : j["sweep"]["points"])
      std::cout << fmt::format("  {:>10.1f} -> {:10.1f} samples/s  p50 {:.3f}  p99 {:.3f} ms  {}\n", p[over].get<double>(),
                               p["throughput_per_s"].get<double>(), p["p50_ms"].get<double>(), p["p99_ms"].get<double>(),
                               p["valid"].get<bool>() ? "VALID" : "INVALID");
  }
  if (ctx.url.empty())
    std::cout << fmt::format("memory       {:.1f} MB activations per stream, peak RSS {:.1f} MB\n", ctx.activation_bytes / 1e6,
                             j["peak_rss_mb"].get<double>());
  else
    std::cout << fmt::format("memory       peak RSS {:.1f} MB (this client)\n", j["peak_rss_mb"].get<double>());
  for (size_t m = 0; m < ctx.profiles.size(); m++)
    if (!ctx.profiles[m].empty()) {
      if (ctx.profiles.size() > 1) std::cout << (m == 0 ? "A: " : "B: ");
      print_profile(ctx.profiles[m]);
    }
  std::cout << fmt::format("result       {} ({} = {:.4g})\n", j["valid"].get<bool>() ? "VALID" : "INVALID",
                           j["metric"]["name"].get<std::string>(), j["metric"]["value"].get<double>());
  for (const auto& why : j["invalid_reasons"]) std::cout << "  because " << why.get<std::string>() << "\n";
}

void self_test(const BenchArgs& a, bool duration_given) {
  nlohmann::json j = run_self_test(duration_given ? a.c.min_duration_s : 1.0);
  const auto& h = j["harness"];
  const auto& s = j["server_arrivals"];
  std::cout << fmt::format("harness      {:.0f} ns per query at {:.0f} queries/s on one thread (limit {:.0f} ns at >= {:.0f}/s): {}\n",
                           h["cost_ns_per_query"].get<double>(), h["queries_per_s"].get<double>(), h["limit_ns"].get<double>(),
                           h["min_queries_per_s"].get<double>(), h["pass"].get<bool>() ? "pass" : "FAIL");
  std::cout << fmt::format("arrivals     {:.0f} q/s issued (fitted, 1st-99th percentile query) for a {:.0f} q/s Poisson target: {:+.3f}% (limit 1%), issue delay p99 {:.2f} us: {}\n",
                           s["issued_qps"].get<double>(), s["target_qps"].get<double>(), s["relative_error"].get<double>() * 100,
                           s["issue_delay_us"]["p99"].get<double>(), s["pass"].get<bool>() ? "pass" : "FAIL");
  std::cout << fmt::format("histogram    worst percentile error {:.3f}% (limit 1%): {}\n",
                           j["histogram"]["max_relative_error"].get<double>() * 100, j["histogram"]["pass"].get<bool>() ? "pass" : "FAIL");
  if (!a.json.empty()) write_file(a.json, j.dump(2) + "\n", "JSON report");
  if (!j["pass"].get<bool>()) fail(ErrorCode::internal, "self-test failed (see the lines above)");
}

// Every option that describes the in-process engine, refused with --url (the server's
// own options decide those there).
void reject_engine_options(const BenchArgs& a) {
  auto no = [](const char* opt) {
    fail(ErrorCode::invalid_input, "{} applies to in-process runs only, not with --url (set it on the server instead, or drop it)", opt);
  };
  if (!a.compare.empty()) no("--compare");
  if (a.profile) no("--profile");
  if (a.precision != "fp32") no("--precision");
  if (a.timing == "pipeline") no("--timing pipeline");
  if (a.no_winograd) no("--no-winograd");
  if (a.no_autotune) no("--no-autotune");
}

// What both kinds of run share once their SUTs exist: the run, sweeps, report and files.
void measure(BenchArgs& a, const std::vector<Sut*>& suts, ReportContext& ctx,
             const std::function<std::unique_ptr<Sut>(int)>& make_sut, const std::function<void()>& collect_profiles) {
  a.c.trace = !a.trace.empty();
  a.c.log = [](const std::string& s) { std::cerr << "bench: " << s << "\n"; };
  std::string target = a.url.empty() ? a.model : fmt::format("'{}' at {}", ctx.model_name, a.url);
  std::cerr << fmt::format("bench: {}{}, {}, {} {}, warm-up {} s, then at least {} s and {} queries\n", target,
                           a.compare.empty() ? "" : " vs " + a.compare, a.scenario, ctx.streams,
                           a.url.empty() ? "stream(s)" : "connection(s)", a.c.warmup_s, a.c.min_duration_s, a.c.min_queries);
  WorkerPool pool(ctx.streams);
  BenchResult r = run_benchmark(suts, pool, a.c);
  collect_profiles();
  if (a.c.sweep && a.c.scenario != Scenario::server) {
    // Concurrency 1, 2, 4, ... up to --streams (or the core count when one stream).
    int top = ctx.streams > 1 ? ctx.streams : std::max(1, (int)std::thread::hardware_concurrency());
    std::vector<int> ks;
    for (int k = 1; k < top; k *= 2) ks.push_back(k);
    ks.push_back(top);
    r.sweep_over = "streams";
    r.sweep = sweep_streams(make_sut, ks, a.c);
  }
  nlohmann::json j = report_json(r, a.c, ctx);
  print_report(j, a, r, ctx);
  if (!a.json.empty()) write_file(a.json, j.dump(2) + "\n", "JSON report");
  if (!a.html.empty()) write_file(a.html, html_report(j), "HTML report");
  if (!a.trace.empty()) write_trace(a.trace, r, ctx);
}

// In process: one Session per model, a ModelSut per Session.
void bench_in_process(BenchArgs& a, Timing timing, const Dataset* data) {
  SessionOptions so;
  so.precision = a.precision == "bf16" ? Precision::bf16 : Precision::fp32;
  so.winograd = !a.no_winograd;
  so.autotune_threads = !a.no_autotune;
  // --compare measures what the second model costs over the first, so both get the same
  // kernels: two timed layout choices could land either side of the autotune's 2% line.
  so.autotune_layout = !a.no_autotune && a.compare.empty();
  so.verbose = a.verbose;
  std::vector<Session> sessions;
  sessions.push_back(Session::load(a.model, so));
  if (!a.compare.empty()) sessions.push_back(Session::load(a.compare, so));

  ModelSutOptions mo;
  mo.streams = a.streams;
  mo.threads = a.threads;
  mo.batch = a.c.query_samples();
  mo.timing = timing;
  mo.data = data;
  mo.seed = a.c.seed;
  mo.profile = a.profile;
  std::vector<std::unique_ptr<ModelSut>> suts;
  for (const auto& s : sessions) suts.push_back(std::make_unique<ModelSut>(s, mo));

  ReportContext ctx;
  ctx.models = {a.model};
  if (!a.compare.empty()) ctx.models.push_back(a.compare);
  ctx.precision = a.precision;
  ctx.timing = timing;
  ctx.data = a.data;
  ctx.streams = a.streams;
  ctx.threads_per_stream = suts[0]->threads_per_stream();
  ctx.batch = suts[0]->batch();
  ctx.input_shapes = suts[0]->input_shapes();
  ctx.activation_bytes = suts[0]->activation_bytes();

  std::vector<Sut*> raw;
  for (auto& s : suts) raw.push_back(s.get());
  ModelSutOptions sweep_opts = mo;
  sweep_opts.profile = false;
  measure(
      a, raw, ctx,
      [&](int k) {
        sweep_opts.streams = k;
        return std::unique_ptr<Sut>(new ModelSut(sessions[0], sweep_opts));
      },
      [&] {
        if (a.profile)
          for (auto& s : suts) ctx.profiles.push_back(s->profile());
      });
}

// Over HTTP: the model file only names and shapes the inputs; a server answers.
void bench_over_http(BenchArgs& a, const Dataset* data) {
  Graph g = load_onnx(a.model);
  std::vector<Shape> shapes = bench_input_shapes(g, a.c.query_samples(), data);
  std::vector<std::vector<Tensor>> batches = input_batches(g, shapes, data, a.c.seed);
  HttpSutOptions ho;
  ho.url = a.url;
  ho.model_name = a.model_name.empty() ? serve::default_model_name(a.model) : a.model_name;
  // A worker holds one query at a time, so in the server scenario the connections bound
  // the requests in flight: a burst of Poisson arrivals beyond them would wait in the
  // client instead of reaching the server's queue. 8 covers the bursts of a server at
  // half its peak with up to a few instances; closed loops keep one stream per query.
  ho.connections = a.streams_given || a.c.scenario != Scenario::server ? a.streams : 8;
  auto sut = std::make_unique<HttpSut>(g, batches, ho);
  sut->check_server(g);
  if (a.threads != 0) std::cerr << "bench: --threads is the server's business with --url (rangeguard serve --threads); ignored\n";

  ReportContext ctx;
  ctx.models = {a.model};
  ctx.data = a.data;
  ctx.streams = ho.connections;
  ctx.threads_per_stream = 1;  // one client thread per connection
  ctx.batch = sut->batch();
  ctx.input_shapes = shapes;
  ctx.url = a.url;
  ctx.model_name = ho.model_name;
  HttpSutOptions sweep_opts = ho;
  measure(
      a, {sut.get()}, ctx,
      [&](int k) {
        sweep_opts.connections = k;
        auto s = std::make_unique<HttpSut>(g, batches, sweep_opts);
        return std::unique_ptr<Sut>(std::move(s));
      },
      [] {});
}

void bench(BenchArgs& a, bool duration_given) {
  if (a.self_test) return self_test(a, duration_given);
  if (a.model.empty()) fail(ErrorCode::invalid_input, "bench needs a MODEL (or --self-test)");
  a.c.scenario = parse_scenario(a.scenario);
  if (a.percentile != 0) a.c.percentile = a.percentile / 100;
  if (a.percentile != 0 && !(a.percentile > 0 && a.percentile < 100))
    fail(ErrorCode::invalid_input, "--percentile must be in (0, 100), got {}", a.percentile);
  if (!a.compare.empty() && a.c.find_peak) fail(ErrorCode::invalid_input, "--compare and --find-peak cannot be combined");
  if (!a.compare.empty() && a.c.sweep) fail(ErrorCode::invalid_input, "--compare and --sweep cannot be combined");
  if (a.streams < 1) fail(ErrorCode::invalid_input, "--streams must be at least 1, got {}", a.streams);
  if (a.threads < 0) fail(ErrorCode::invalid_input, "--threads must be >= 0, got {}", a.threads);
  if (!a.model_name.empty() && a.url.empty()) fail(ErrorCode::invalid_input, "--model-name needs --url");
  a.c.validate();
  Timing timing = a.timing == "pipeline" ? Timing::pipeline : Timing::inference;
  if (timing == Timing::pipeline && a.data.empty()) fail(ErrorCode::invalid_input, "--timing pipeline needs --data");

  std::unique_ptr<Dataset> data;
  if (!a.url.empty()) reject_engine_options(a);  // before reading a data set
  if (!a.data.empty()) data = open_dataset(a.data, a.img);
  if (a.url.empty()) bench_in_process(a, timing, data.get());
  else bench_over_http(a, data.get());
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure latency and throughput the MLPerf LoadGen way");
  cmd->footer(
      "Scenarios: single-stream (closed loop, metric p90), multi-stream (N samples per query,\n"
      "p99), server (Poisson arrivals at --target-qps, latency from the scheduled arrival,\n"
      "VALID when p99 <= --latency-bound with early stopping), offline (all samples at once,\n"
      "samples/s). Runs last at least --duration s and --min-queries queries after warm-up.\n"
      "Latency is pure inference unless --timing pipeline. Report schema: docs/bench.md.\n"
      "Examples:\n"
      "  rangeguard bench models/lenet_relu.onnx --duration 5\n"
      "  rangeguard bench resnet50.onnx --threads 1 --json out.json --html out.html\n"
      "  rangeguard bench resnet50.onnx --scenario server --latency-bound 15 --find-peak\n"
      "  rangeguard bench resnet50.onnx --compare resnet50.protected.onnx   (overhead, with a CI)\n"
      "  rangeguard bench m.onnx --scenario offline --streams 2 --batch 8 --sweep\n"
      "  rangeguard bench m.onnx --url http://127.0.0.1:8000 --scenario server --target-qps 50\n"
      "                                                 (a running `rangeguard serve m.onnx`, over HTTP)\n"
      "  rangeguard bench --self-test                                        (harness cost)");
  auto a = std::make_shared<BenchArgs>();
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the last one given wins
  cmd->add_option("MODEL", a->model, "ONNX model file (not needed with --self-test)");
  cmd->add_option("--scenario", a->scenario, "single-stream, multi-stream, server or offline")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Intra-op threads per stream (0 = cores / streams)")->capture_default_str();
  auto* streams = cmd->add_option("--streams", a->streams,
                                  "Concurrent executors sharing the weights (--url: client connections; server scenario default 8)")
                      ->capture_default_str();
  cmd->add_option("--batch", a->c.batch, "Samples per query (offline: per batch); fills the dynamic batch dim")->capture_default_str();
  cmd->add_option("--samples-per-query", a->c.samples_per_query, "multi-stream: samples per query")->capture_default_str();
  cmd->add_option("--precision", a->precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  auto* dur = cmd->add_option("--duration", a->c.min_duration_s, "Minimum seconds of measured run")->capture_default_str();
  cmd->add_option("--min-queries", a->c.min_queries, "Minimum measured queries (offline: samples)")->capture_default_str();
  cmd->add_option("--warmup", a->c.warmup_s, "Seconds of untimed runs first")->capture_default_str();
  cmd->add_option("--target-qps", a->c.target_qps, "server: Poisson arrival rate (default: half the warm-up capacity)");
  cmd->add_option("--latency-bound", a->c.latency_bound_ms, "Latency bound in ms at --percentile (server: decides VALID)");
  cmd->add_option("--percentile", a->percentile, "Percentile of the bound and metric (default 90 single-stream, else 99)");
  cmd->add_flag("--find-peak", a->c.find_peak, "server: find the highest QPS meeting the bound (double, then bisect to 1%)");
  cmd->add_flag("--sweep", a->c.sweep, "Latency-throughput curve: over target QPS (server) or streams (others)");
  cmd->add_option("--sweep-points", a->c.sweep_points, "server sweep: number of QPS points")->capture_default_str();
  cmd->add_option("--compare", a->compare, "A second model, run interleaved with MODEL; reports the latency ratio");
  cmd->add_option("--rounds", a->c.rounds, "--compare: alternating rounds (the CI comes from them)")->capture_default_str();
  cmd->add_option("--timing", a->timing, "inference (model alone) or pipeline (read, preprocess, run, top-k)")
      ->check(CLI::IsMember({"inference", "pipeline"}))->capture_default_str();
  cmd->add_option("--data", a->data, "Draw samples from this data set (.npy, IDX, image folder)");
  cmd->add_option("--seed", a->c.seed, "Seed of random inputs and arrival schedules")->capture_default_str();
  cmd->add_option("--json", a->json, "Write the report as JSON (schema: docs/bench.md)");
  cmd->add_option("--html", a->html, "Write a self-contained HTML report (latency CDF, sweep curve)");
  cmd->add_option("--trace", a->trace, "Write one JSON line per measured query");
  cmd->add_option("--url", a->url, "Measure a running KServe v2 server (rangeguard serve) at http://HOST:PORT instead");
  cmd->add_option("--model-name", a->model_name, "--url: the model's name on the server (default: MODEL's file name without .onnx)");
  cmd->add_flag("--profile", a->profile, "Time every node (stream 0) and list the costliest");
  cmd->add_flag("--self-test", a->self_test, "Measure the harness itself with a no-op model");
  cmd->add_flag("--no-winograd", a->no_winograd, "Run 3x3 convolutions direct only");
  cmd->add_flag("--verbose", a->verbose, "Log graph passes, kernel choices and thread tuning");
  cmd->add_flag("--no-autotune", a->no_autotune, "No timing at compile time: every step on every thread, 1x1 convolutions in the layout oneDNN picks");
  add_image_options(cmd, a->img);
  cmd->callback([a, dur, streams] {
    a->streams_given = streams->count() > 0;
    bench(*a, dur->count() > 0);
  });
}

}  // namespace rg::cli

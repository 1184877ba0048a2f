// The bench HTML report: tables, the latency CDF and the sweep curve (io/html draws).
#include <cmath>
#include <sstream>

#include "bench/report.h"
#include "io/html.h"

namespace rg {
namespace {

using json = nlohmann::json;
using html::esc;
using html::num;
using html::Series;

std::vector<std::pair<double, double>> cdf_points(const json& run) {
  std::vector<std::pair<double, double>> pts;
  if (run.contains("latency_cdf"))
    for (const auto& p : run["latency_cdf"]) pts.emplace_back(p[0].get<double>(), p[1].get<double>() * 100);
  return pts;
}

std::string run_rows(const std::vector<const json*>& runs) {
  std::ostringstream o;
  auto row = [&](const std::string& name, auto get) {
    o << "<tr><th>" << name << "</th>";
    for (const json* r : runs) o << "<td>" << get(*r) << "</td>";
    o << "</tr>\n";
  };
  row("verdict", [](const json& r) {
    return r["valid"].get<bool>() ? std::string("<b class='ok'>VALID</b>") : std::string("<b class='bad'>INVALID</b>");
  });
  row("queries", [](const json& r) { return num(r["queries"]); });
  row("samples", [](const json& r) { return num(r["samples"]); });
  row("duration (s)", [](const json& r) { return num(r["duration_s"]); });
  row("throughput (samples/s)", [](const json& r) { return num(r["throughput_per_s"], 1); });
  for (const char* p : {"p50", "p90", "p95", "p99", "p999", "max", "mean"})
    row(std::string("latency ") + p + " (ms)", [p](const json& r) { return num(r["latency_ms"][p]); });
  row("early-stopping estimate (ms)", [](const json& r) {
    return r.contains("early_stopping") ? num(r["early_stopping"]["latency_ms"]) : std::string("&ndash;");
  });
  return o.str();
}

}  // namespace

std::string html_report(const json& j) {
  std::ostringstream o;
  bool cmp = j.contains("compare");
  std::string title = fmt::format("rangeguard bench: {} ({})", j["model"].get<std::string>(), j["scenario"].get<std::string>());
  o << html::begin(title);
  o << "<p>Result: " << (j["valid"].get<bool>() ? "<b class='ok'>VALID</b>" : "<b class='bad'>INVALID</b>");
  o << " &mdash; " << esc(j["metric"]["name"].get<std::string>()) << " = " << num(j["metric"]["value"]) << "</p>\n";
  if (!j["invalid_reasons"].empty()) {
    o << "<ul>";
    for (const auto& r : j["invalid_reasons"]) o << "<li class='bad'>" << esc(r.get<std::string>()) << "</li>";
    o << "</ul>\n";
  }
  if (j.contains("target"))
    o << "<p>Measured over HTTP: model <b>" << esc(j["target"]["model_name"].get<std::string>()) << "</b> at "
      << esc(j["target"]["url"].get<std::string>()) << ", " << j["target"]["connections"].get<int>()
      << " client connection(s).</p>\n";
  o << "<p>Timing: <b>" << esc(j["timing"]["mode"].get<std::string>()) << "</b>; start: "
    << esc(j["timing"]["start"].get<std::string>()) << "; stop: " << esc(j["timing"]["stop"].get<std::string>())
    << "; latency measured from " << esc(j["timing"]["latency_from"].get<std::string>()) << ". Samples: "
    << esc(j["samples_from"].get<std::string>()) << ".</p>\n";

  o << "<h2>Results</h2>\n<table><tr><th></th><td><b>" << esc(j["model"].get<std::string>()) << "</b></td>";
  std::vector<const json*> runs{&j};
  if (cmp) {
    o << "<td><b>" << esc(j["compare"]["model"].get<std::string>()) << "</b></td>";
    runs.push_back(&j["compare"]["run"]);
  }
  o << "</tr>\n" << run_rows(runs) << "</table>\n";
  if (cmp) {
    const json& c = j["compare"];
    o << fmt::format("<p>Latency ratio (second / first, {}): <b>{:.4f}</b>, 95% CI [{:.4f}, {:.4f}] over {} rounds ({}).</p>\n",
                     esc(c["metric"].get<std::string>()), c["ratio"].get<double>(), c["ci95"][0].get<double>(),
                     c["ci95"][1].get<double>(), c["rounds"].get<int>(), esc(c["ci_method"].get<std::string>()));
  }
  if (j.contains("peak_qps")) {
    o << "<h2>Peak throughput under the bound</h2><p>peak_qps = <b>" << num(j["peak_qps"], 1) << "</b> at p"
      << num(j["settings"]["percentile"], 1) << " &le; " << num(j["settings"]["latency_bound_ms"]) << " ms</p>\n"
      << "<table><tr><th>target q/s</th><th>achieved q/s</th><th>percentile (ms)</th><th>valid</th></tr>\n";
    for (const auto& p : j["find_peak"]["probes"])
      o << "<tr><td>" << num(p["target_qps"], 1) << "</td><td>" << num(p["achieved_qps"], 1) << "</td><td>"
        << num(p["percentile_ms"]) << "</td><td>" << num(p["valid"]) << "</td></tr>\n";
    o << "</table>\n";
  }

  o << "<h2>Latency CDF</h2>\n";
  std::vector<Series> cdf{{j["model"].get<std::string>(), "#1f5fbf", cdf_points(j)}};
  if (cmp) cdf.push_back({j["compare"]["model"].get<std::string>(), "#d9480f", cdf_points(j["compare"]["run"])});
  double lo = INFINITY, hi = 0;
  for (const auto& s : cdf)
    for (auto [x, y] : s.pts) lo = std::min(lo, x), hi = std::max(hi, x);
  bool log_x = lo > 0 && hi / lo > 20;  // a long tail: decades on the x axis
  o << html::line_chart(cdf, log_x ? "latency (ms, log scale)" : "latency (ms)", "queries completed (%)", 0, 100, log_x);

  if (j.contains("sweep")) {
    const json& s = j["sweep"];
    std::string over = s["over"].get<std::string>();
    o << "<h2>Latency&ndash;throughput curve (over " << esc(over) << ")</h2>\n";
    Series p50{"p50", "#1f5fbf", {}, true}, p99{"p99", "#d9480f", {}, true};
    for (const auto& p : s["points"]) {
      double x = over == "streams" ? p["throughput_per_s"].get<double>() : p["queries_per_s"].get<double>();
      p50.pts.emplace_back(x, p["p50_ms"].get<double>());
      p99.pts.emplace_back(x, p["p99_ms"].get<double>());
    }
    o << html::line_chart({p50, p99}, over == "streams" ? "throughput (samples/s)" : "achieved throughput (queries/s)", "latency (ms)");
    o << "<table><tr><th>" << esc(over) << "</th><th>queries/s</th><th>samples/s</th><th>p50 ms</th><th>p90 ms</th>"
         "<th>p99 ms</th><th>valid</th></tr>\n";
    for (const auto& p : s["points"])
      o << "<tr><td>" << num(p[over], over == "streams" ? 0 : 1) << "</td><td>" << num(p["queries_per_s"], 1) << "</td><td>"
        << num(p["throughput_per_s"], 1) << "</td><td>" << num(p["p50_ms"]) << "</td><td>" << num(p["p90_ms"])
        << "</td><td>" << num(p["p99_ms"]) << "</td><td>" << num(p["valid"]) << "</td></tr>\n";
    o << "</table>\n";
  }
  if (j.contains("profile")) {
    std::vector<json> rows(j["profile"].begin(), j["profile"].end());
    std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) { return a["ms"].get<double>() > b["ms"].get<double>(); });
    o << "<h2>Profile (costliest steps, stream 0)</h2>\n<table><tr><th>ms/run</th><th>op</th><th>node</th><th>kernel</th></tr>\n";
    for (size_t i = 0; i < rows.size() && i < 15; i++)
      o << "<tr><td>" << num(rows[i]["ms"]) << "</td><td>" << num(rows[i]["op"]) << "</td><td>" << num(rows[i]["node"])
        << "</td><td>" << num(rows[i]["impl"]) << "</td></tr>\n";
    o << "</table>\n";
  }
  o << "<h2>Settings and environment</h2>\n<table>\n";
  for (const auto& [k, v] : j["settings"].items()) o << "<tr><th>" << esc(k) << "</th><td>" << num(v) << "</td></tr>\n";
  for (const auto& [k, v] : j["environment"].items()) o << "<tr><th>" << esc(k) << "</th><td>" << num(v) << "</td></tr>\n";
  o << "</table>\n" << html::end();
  return o.str();
}

}  // namespace rg

// The HTML report: one file, no scripts, no external fonts or images, so it opens
// offline and can be attached to a ticket. Charts are inline SVG drawn here.
#include <cmath>
#include <sstream>

#include "bench/report.h"

namespace rg {
namespace {

using json = nlohmann::json;

std::string esc(const std::string& s) {
  std::string r;
  for (char ch : s) switch (ch) {
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '&': r += "&amp;"; break;
      case '"': r += "&quot;"; break;
      default: r += ch;
    }
  return r;
}

std::string num(const json& v, int digits = 3) {
  if (v.is_null()) return "&ndash;";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return fmt::format("{:.{}f}", v.get<double>(), digits);
  return esc(v.is_string() ? v.get<std::string>() : v.dump());
}

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> pts;
  bool markers = false;
};

// Ticks at 1, 2, 5 x 10^k covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  double span = std::max(hi - lo, 1e-12), step = std::pow(10, std::floor(std::log10(span / 5)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (span / (step * m) <= 6) {
      step *= m;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

// Ticks at 1, 2, 5 x 10^k inside [lo, hi] (values, not logs).
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  for (int k = (int)std::floor(std::log10(lo)); k <= (int)std::ceil(std::log10(hi)); k++)
    for (double m : {1.0, 2.0, 5.0}) {
      double v = m * std::pow(10, k);
      if (v >= lo * 0.999 && v <= hi * 1.001) t.push_back(v);
    }
  return t;
}

// With log_x, x values must be positive; the axis is drawn in decades (a latency CDF whose
// tail is 100x its median stays readable).
std::string chart(const std::vector<Series>& series_in, const std::string& xlabel, const std::string& ylabel,
                  double ymin_fixed = NAN, double ymax_fixed = NAN, bool log_x = false) {
  const double W = 720, H = 360, L = 70, R = 20, T = 20, B = 50;
  std::vector<Series> series = series_in;
  if (log_x)
    for (auto& s : series)
      for (auto& p : s.pts) p.first = std::log10(std::max(p.first, 1e-6));
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (auto [x, y] : s.pts) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0)) return "<p>(no data)</p>";
  if (!log_x) x0 = std::min(x0, 0.0);
  y0 = std::isnan(ymin_fixed) ? std::min(y0, 0.0) : ymin_fixed;
  y1 = std::isnan(ymax_fixed) ? y1 * 1.05 : ymax_fixed;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  auto X = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << fmt::format("<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' viewBox='0 0 {} {}' "
                   "font-family='sans-serif' font-size='12'>\n", W, H, W, H);
  o << fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='#fff' stroke='#999'/>\n", L, T, W - L - R, H - T - B);
  std::vector<double> xt = log_x ? log_ticks(std::pow(10, x0), std::pow(10, x1)) : ticks(x0, x1);
  for (double t : xt)
    o << fmt::format("<line x1='{0:.1f}' x2='{0:.1f}' y1='{1}' y2='{2}' stroke='#eee'/><text x='{0:.1f}' y='{3}' "
                     "text-anchor='middle'>{4:g}</text>\n", X(log_x ? std::log10(t) : t), T, H - B, H - B + 16, t);
  for (double t : ticks(y0, y1))
    o << fmt::format("<line x1='{0}' x2='{1}' y1='{2:.1f}' y2='{2:.1f}' stroke='#eee'/><text x='{3}' y='{4:.1f}' "
                     "text-anchor='end'>{5:g}</text>\n", L, W - R, Y(t), L - 6, Y(t) + 4, t);
  o << fmt::format("<text x='{}' y='{}' text-anchor='middle'>{}</text>\n", (L + W - R) / 2, H - 10, esc(xlabel));
  o << fmt::format("<text x='16' y='{0}' text-anchor='middle' transform='rotate(-90 16 {0})'>{1}</text>\n",
                   (T + H - B) / 2, esc(ylabel));
  int k = 0;
  for (const auto& s : series) {
    std::string path;
    for (auto [x, y] : s.pts) path += fmt::format("{}{:.1f},{:.1f} ", path.empty() ? "M" : "L", X(x), Y(y));
    o << fmt::format("<path d='{}' fill='none' stroke='{}' stroke-width='2'/>\n", path, s.color);
    if (s.markers)
      for (auto [x, y] : s.pts) o << fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='3.5' fill='{}'/>\n", X(x), Y(y), s.color);
    o << fmt::format("<rect x='{}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}'>{}</text>\n", L + 12,
                     T + 10 + 18 * k, s.color, L + 30, T + 20 + 18 * k, esc(s.name));
    k++;
  }
  o << "</svg>\n";
  return o.str();
}

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
  o << "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>" << esc(title) << "</title>\n<style>"
       "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}"
       "table{border-collapse:collapse;margin:8px 0 18px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
       "th{background:#f4f4f4;font-weight:normal}.ok{color:#176a1d}.bad{color:#b00020}"
       "h2{margin-top:28px;border-bottom:1px solid #ddd}</style></head><body>\n";
  o << "<h1>" << esc(title) << "</h1>\n";
  o << "<p>Result: " << (j["valid"].get<bool>() ? "<b class='ok'>VALID</b>" : "<b class='bad'>INVALID</b>");
  o << " &mdash; " << esc(j["metric"]["name"].get<std::string>()) << " = " << num(j["metric"]["value"]) << "</p>\n";
  if (!j["invalid_reasons"].empty()) {
    o << "<ul>";
    for (const auto& r : j["invalid_reasons"]) o << "<li class='bad'>" << esc(r.get<std::string>()) << "</li>";
    o << "</ul>\n";
  }
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
  o << chart(cdf, log_x ? "latency (ms, log scale)" : "latency (ms)", "queries completed (%)", 0, 100, log_x);

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
    o << chart({p50, p99}, over == "streams" ? "throughput (samples/s)" : "achieved throughput (queries/s)", "latency (ms)");
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
  o << "</table>\n</body></html>\n";
  return o.str();
}

}  // namespace rg

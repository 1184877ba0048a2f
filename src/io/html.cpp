#include "io/html.h"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

namespace rg::html {
namespace {

using json = nlohmann::json;

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

}  // namespace

const char* const kColors[] = {"#1f5fbf", "#d9480f", "#2b8a3e", "#7048e8"};

std::string esc(const std::string& s) {
  std::string r;
  for (char ch : s) switch (ch) {
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '&': r += "&amp;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&#39;"; break;
      default: r += ch;
    }
  return r;
}

std::string num(const json& v, int digits) {
  if (v.is_null()) return "&ndash;";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return fmt::format("{:.{}f}", v.get<double>(), digits);
  return esc(v.is_string() ? v.get<std::string>() : v.dump());
}

// With log_x, x values must be positive; the axis is drawn in decades (a latency CDF whose
// tail is 100x its median stays readable).
std::string line_chart(const std::vector<Series>& series_in, const std::string& xlabel, const std::string& ylabel,
                       double ymin_fixed, double ymax_fixed, bool log_x) {
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


std::string begin(const std::string& title) {
  return "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>" + esc(title) +
         "</title>\n<style>"
         "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}"
         "table{border-collapse:collapse;margin:8px 0 18px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
         "th{background:#f4f4f4;font-weight:normal}.ok{color:#176a1d}.bad{color:#b00020}"
         "h2{margin-top:28px;border-bottom:1px solid #ddd}</style></head><body>\n<h1>" +
         esc(title) + "</h1>\n";
}

std::string end() { return "</body></html>\n"; }

std::string bar_chart(const std::vector<std::string>& series, const std::vector<BarRow>& rows, const std::string& xlabel) {
  if (rows.empty()) return "<p>(no data)</p>";
  size_t label_chars = 4;
  for (const auto& r : rows) label_chars = std::max(label_chars, r.label.size());
  const double bar = 9, gap = 7, L = std::min(360.0, 16 + 6.5 * label_chars), R = 30, T = 30 + 18.0 * series.size(), B = 46;
  const double row_h = bar * series.size() + gap, W = 760, H = T + B + row_h * rows.size();
  double x1 = 0;
  for (const auto& r : rows)
    for (size_t k = 0; k < r.values.size(); k++) {
      if (std::isfinite(r.values[k])) x1 = std::max(x1, r.values[k]);
      if (k < r.ci.size() && std::isfinite(r.ci[k].second)) x1 = std::max(x1, r.ci[k].second);
    }
  if (x1 <= 0) x1 = 1;
  auto X = [&](double x) { return L + x / x1 * (W - L - R); };
  std::ostringstream o;
  o << fmt::format("<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' viewBox='0 0 {} {}' "
                   "font-family='sans-serif' font-size='11'>\n", W, H, W, H);
  o << fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='#fff' stroke='#999'/>\n", L, T, W - L - R, H - T - B);
  for (double t : ticks(0, x1))
    o << fmt::format("<line x1='{0:.1f}' x2='{0:.1f}' y1='{1}' y2='{2}' stroke='#eee'/><text x='{0:.1f}' y='{3}' "
                     "text-anchor='middle'>{4:g}</text>\n", X(t), T, H - B, H - B + 15, t);
  o << fmt::format("<text x='{}' y='{}' text-anchor='middle' font-size='12'>{}</text>\n", (L + W - R) / 2, H - 10, esc(xlabel));
  for (size_t k = 0; k < series.size(); k++)
    o << fmt::format("<rect x='{}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}' font-size='12'>{}</text>\n",
                     L, 8 + 18 * k, kColors[k % 4], L + 18, 18 + 18 * k, esc(series[k]));
  for (size_t i = 0; i < rows.size(); i++) {
    double y = T + gap / 2 + row_h * i;
    o << fmt::format("<text x='{}' y='{:.1f}' text-anchor='end'>{}</text>\n", L - 6, y + row_h / 2 + 4, esc(rows[i].label));
    for (size_t k = 0; k < rows[i].values.size(); k++, y += bar) {
      double v = rows[i].values[k];
      if (!std::isfinite(v)) continue;
      o << fmt::format("<rect x='{}' y='{:.1f}' width='{:.1f}' height='{}' fill='{}'><title>{}: {:.4g}</title></rect>\n", L,
                       y, X(v) - L, bar - 1, kColors[k % 4], esc(series[k]), v);
      if (k < rows[i].ci.size()) {
        auto [lo, hi] = rows[i].ci[k];
        double ym = y + (bar - 1) / 2;
        o << fmt::format("<path d='M{0:.1f},{1:.1f}L{2:.1f},{1:.1f}M{0:.1f},{3:.1f}L{0:.1f},{4:.1f}M{2:.1f},{3:.1f}L{2:.1f},{4:.1f}' "
                         "stroke='#333' stroke-width='1'/>\n", X(lo), ym, X(hi), ym - 3, ym + 3);
      }
    }
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace rg::html

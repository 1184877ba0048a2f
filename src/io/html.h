#pragma once
// Pieces of the self-contained HTML reports (bench, inject): escaping, number cells, the
// page frame and charts drawn as inline SVG. No scripts, fonts or images are fetched, so
// a report opens offline and can be attached to a ticket or a safety case.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace rg::html {

std::string esc(const std::string& s);
// A table cell's text: "–" for null, yes/no, integers as is, other numbers to `digits`.
std::string num(const nlohmann::json& v, int digits = 3);

// <!DOCTYPE ...><body><h1>title</h1> with the shared style sheet; end() closes it.
std::string begin(const std::string& title);
std::string end();

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> pts;
  bool markers = false;
};

// Lines over x. Axis limits default to the data (y from 0); with log_x, x must be
// positive and the axis runs in decades.
std::string line_chart(const std::vector<Series>& series, const std::string& xlabel, const std::string& ylabel,
                       double ymin = NAN, double ymax = NAN, bool log_x = false);

// Horizontal grouped bars, one row per group and one bar per series, each with an
// optional interval whisker: readable with dozens of rows (bit positions, layers).
struct BarRow {
  std::string label;
  std::vector<double> values;                     // one per series; NaN = no bar
  std::vector<std::pair<double, double>> ci;      // empty, or one per series
};
std::string bar_chart(const std::vector<std::string>& series, const std::vector<BarRow>& rows, const std::string& xlabel);

extern const char* const kColors[];  // series colours, in order: blue, orange, green, purple

}  // namespace rg::html

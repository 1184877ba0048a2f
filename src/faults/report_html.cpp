// The campaign's HTML report, drawn from its JSON (so a merged report gets one too):
// the headline rates original vs protected, then SDC by bit position and by layer with
// their Wilson intervals, then the settings.
#include <algorithm>
#include <sstream>

#include "faults/campaign.h"
#include "io/html.h"

namespace rg {
namespace {

using json = nlohmann::json;
using html::esc;
using html::num;

double pct_of(const json& v) { return v.is_null() ? NAN : v.get<double>() * 100; }
std::pair<double, double> ci_of(const json& v) {
  return v.is_null() ? std::pair<double, double>{NAN, NAN} : std::pair<double, double>{v[0].get<double>() * 100, v[1].get<double>() * 100};
}

std::string rate_cell(const json& t, const std::string& name) {
  const json& r = t[name + "_rate"];
  if (r.is_null()) return "&ndash;";
  const json& c = t[name + "_ci95"];
  return fmt::format("{:.3f}% <small>[{:.3f}, {:.3f}]</small>", r.get<double>() * 100, c[0].get<double>() * 100,
                     c[1].get<double>() * 100);
}

// Bit keys are "30", "23+30" (several flips) or "random": highest bit first.
int bit_order(const std::string& key) {
  try {
    return std::stoi(key);
  } catch (...) {
    return -1;
  }
}

// One chart row per key of a breakdown (per_bit or per_layer), a bar per model.
std::vector<html::BarRow> breakdown_rows(const json& j, const std::vector<std::string>& models, const char* key,
                                         const std::vector<std::string>& order) {
  std::vector<html::BarRow> rows;
  for (const auto& k : order) {
    html::BarRow row{k, {}, {}};
    for (const auto& m : models) {
      const json& b = j[m][key];
      bool has = b.contains(k);
      row.values.push_back(has ? pct_of(b[k]["sdc_rate"]) : NAN);
      row.ci.push_back(has ? ci_of(b[k]["sdc_ci95"]) : std::pair<double, double>{NAN, NAN});
    }
    rows.push_back(row);
  }
  return rows;
}

std::string breakdown_table(const json& j, const std::vector<std::string>& models, const char* key,
                            const std::vector<std::string>& order, const std::string& what) {
  std::ostringstream o;
  o << "<table><tr><th>" << esc(what) << "</th>";
  for (const auto& m : models) o << "<th>" << m << ": pairs</th><th>SDC % [95% CI]</th><th>DUE</th>";
  o << "</tr>\n";
  for (const auto& k : order) {
    o << "<tr><td>" << esc(k) << "</td>";
    for (const auto& m : models) {
      const json& b = j[m][key];
      if (!b.contains(k)) {
        o << "<td></td><td></td><td></td>";
        continue;
      }
      const json& e = b[k];
      o << "<td>" << num(e["pairs"]) << "</td><td>" << rate_cell(e, "sdc") << "</td><td>" << num(e["due"]) << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

}  // namespace

std::string campaign_html(const json& j) {
  const json& s = j["settings"];
  std::vector<std::string> models{"original"};
  if (j.contains("protected")) models.push_back("protected");
  std::ostringstream o;
  o << html::begin("rangeguard inject: " + s["model"].get<std::string>());
  o << fmt::format("<p>{} {} fault(s) ({} bit(s) per fault, bits {}) in {}, each over {} input(s) of {}. "
                   "Fault population {:.4g}.</p>\n",
                   num(j["original"]["trials"]), esc(s["kind"].get<std::string>()), num(s["flips"]),
                   esc(s["bits"].get<std::string>()), esc(s["targets"].dump()), num(s["samples"]),
                   esc(s["data"].get<std::string>()), j["population"].get<double>());
  if (j.contains("reduction") && j["reduction"].is_object() && !j["reduction"]["factor"].is_null())
    o << fmt::format("<p style='font-size:1.3em'>Protection: <b>{:.1f}x</b> fewer corrupted predictions (SDC + DUE), "
                     "95% CI [{:.1f}, {:.1f}].</p>\n",
                     j["reduction"]["factor"].get<double>(), j["reduction"]["ci95"][0].get<double>(),
                     j["reduction"]["ci95"][1].get<double>());
  if (j.contains("silent_reduction") && j["silent_reduction"].is_object() && !j["silent_reduction"]["factor"].is_null())
    o << fmt::format("<p>Silent corruption (SDC the detector did not flag): <b>{:.1f}x</b> fewer, 95% CI [{:.1f}, {:.1f}].</p>\n",
                     j["silent_reduction"]["factor"].get<double>(), j["silent_reduction"]["ci95"][0].get<double>(),
                     j["silent_reduction"]["ci95"][1].get<double>());

  o << "<h2>Outcomes</h2>\n<table><tr><th></th>";
  for (const auto& m : models) o << "<th>" << m << "</th>";
  o << "</tr>\n";
  auto row = [&](const std::string& label, auto cell) {
    o << "<tr><th>" << label << "</th>";
    for (const auto& m : models) o << "<td>" << cell(j[m]) << "</td>";
    o << "</tr>\n";
  };
  row("trials (faults)", [](const json& t) { return num(t["trials"]); });
  row("fault &times; input pairs", [](const json& t) { return num(t["pairs"]); });
  row("SDC (top-1 changed)", [](const json& t) { return rate_cell(t, "sdc"); });
  row("critical SDC (right &rarr; wrong)", [](const json& t) { return rate_cell(t, "critical_sdc"); });
  row("DUE (NaN or Inf)", [](const json& t) { return rate_cell(t, "due"); });
  row("masked", [](const json& t) { return rate_cell(t, "masked"); });
  row("detected (trials)", [](const json& t) { return rate_cell(t, "detected"); });
  row("undetected SDC (silent)", [](const json& t) { return rate_cell(t, "undetected_sdc"); });
  row("accuracy under fault", [](const json& t) {
    return t["accuracy_under_fault"].is_null() ? std::string("&ndash;") : fmt::format("{:.2f}%", pct_of(t["accuracy_under_fault"]));
  });
  o << "<tr><th>clean accuracy</th><td>" << (s["clean_accuracy"].is_null() ? "&ndash;" : fmt::format("{:.2f}%", pct_of(s["clean_accuracy"])))
    << "</td>";
  if (models.size() > 1)
    o << "<td>" << (s.contains("protected_clean_accuracy") && !s["protected_clean_accuracy"].is_null()
                        ? fmt::format("{:.2f}%", pct_of(s["protected_clean_accuracy"]))
                        : std::string("&ndash;"))
      << "</td>";
  o << "</tr>\n</table>\n";
  std::vector<html::BarRow> overview;
  for (const char* k : {"sdc", "critical_sdc", "due"}) {
    html::BarRow r{k == std::string("sdc") ? "SDC" : k == std::string("due") ? "DUE" : "critical SDC", {}, {}};
    for (const auto& m : models) r.values.push_back(pct_of(j[m][std::string(k) + "_rate"])), r.ci.push_back(ci_of(j[m][std::string(k) + "_ci95"]));
    overview.push_back(r);
  }
  o << html::bar_chart(models, overview, "share of fault × input pairs (%), with 95% Wilson intervals");

  std::vector<std::string> bits;
  for (const auto& kv : j["original"]["per_bit"].items()) bits.push_back(kv.key());
  std::sort(bits.begin(), bits.end(), [](const std::string& a, const std::string& b) {
    return bit_order(a) != bit_order(b) ? bit_order(a) > bit_order(b) : a < b;
  });
  o << "<h2>SDC by bit position</h2>\n<p>IEEE-754 float32: 31 = sign, 30&ndash;23 = exponent (30 the highest), "
       "22&ndash;0 = mantissa.</p>\n";
  o << html::bar_chart(models, breakdown_rows(j, models, "per_bit", bits), "SDC rate (%), with 95% Wilson intervals");
  o << breakdown_table(j, models, "per_bit", bits, "bit");

  // Layers, most vulnerable (original) first; a long tail is cut from the chart, not the table.
  std::vector<std::pair<double, std::string>> by_rate;
  for (const auto& kv : j["original"]["per_layer"].items())
    by_rate.emplace_back(kv.value()["sdc_rate"].is_null() ? 0.0 : kv.value()["sdc_rate"].get<double>(), kv.key());
  std::stable_sort(by_rate.begin(), by_rate.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> layers;
  for (const auto& p : by_rate) layers.push_back(p.second);
  const size_t shown = std::min<size_t>(layers.size(), 40);
  o << "<h2>SDC by layer</h2>\n";
  if (shown < layers.size()) o << fmt::format("<p>The {} most vulnerable of {} layers; all are in the table.</p>\n", shown, layers.size());
  o << html::bar_chart(models, breakdown_rows(j, models, "per_layer", {layers.begin(), layers.begin() + shown}),
                       "SDC rate (%), with 95% Wilson intervals");
  o << breakdown_table(j, models, "per_layer", layers, "layer (faulted tensor's node)");

  o << "<h2>Settings</h2>\n<table>\n";
  for (const auto& [k, v] : s.items()) o << "<tr><th>" << esc(k) << "</th><td>" << num(v) << "</td></tr>\n";
  if (j.contains("timing"))
    for (const auto& [k, v] : j["timing"].items()) o << "<tr><th>timing." << esc(k) << "</th><td>" << num(v) << "</td></tr>\n";
  o << "</table>\n" << html::end();
  return o.str();
}

}  // namespace rg

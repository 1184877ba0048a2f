#include "protect/bounds.h"

#include <nlohmann/json.hpp>

#include "io/file.h"

namespace rg {

using nlohmann::json;

void save_bounds(const Bounds& b, const std::string& path) {
  json j;
  j["format"] = "rangeguard.bounds";
  j["version"] = 1;
  j["model"] = {{"file", b.model_file}, {"sha256", b.model_sha256}};
  j["settings"] = {{"data", b.data},
                   {"samples", b.samples},
                   {"shuffle", b.shuffle},
                   {"seed", b.seed},
                   {"batch", b.batch},
                   {"stat", b.stat},
                   {"activations", b.activations.empty() ? json("all") : json(b.activations)},
                   {"after_following_ops", b.after_following_ops},
                   {"layer_outputs", b.layer_outputs}};
  j["sites"] = json::array();
  for (const auto& s : b.sites) {
    j["sites"].push_back({{"tensor", s.site.tensor},
                          {"kind", s.site.kind},
                          {"node", s.site.node},
                          {"input", s.site.input},
                          {"channel_axis", s.channel_axis},
                          {"shape", s.shape},
                          {"min", s.min},
                          {"max", s.max},
                          {"observed_min", s.observed_min},
                          {"observed_max", s.observed_max},
                          {"channel_min", s.channel_min},
                          {"channel_max", s.channel_max},
                          {"samples", s.samples},
                          {"elements", s.elements},
                          {"histogram", {{"min", s.hist_min}, {"max", s.hist_max}, {"counts", s.hist}}}});
  }
  write_file(path, j.dump(1) + "\n");
}

Bounds load_bounds(const std::string& path) {
  std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(ErrorCode::invalid_input, "{}: not JSON ({})", path, e.what());
  }
  if (!j.is_object() || j.value("format", "") != "rangeguard.bounds")
    fail(ErrorCode::invalid_input, "{}: not a rangeguard bounds file (make one with `rangeguard calibrate`)", path);
  if (j.value("version", 0) != 1) fail(ErrorCode::invalid_input, "{}: unsupported bounds version {}", path, j.value("version", 0));
  Bounds b;
  try {
    b.model_file = j.at("model").value("file", "");
    b.model_sha256 = j.at("model").at("sha256").get<std::string>();
    const json& st = j.at("settings");
    b.data = st.value("data", "");
    b.samples = st.value("samples", (int64_t)0);
    b.shuffle = st.value("shuffle", false);
    b.seed = st.value("seed", (uint64_t)1);
    b.batch = st.value("batch", (int64_t)0);
    b.stat = st.value("stat", "minmax");
    if (st.contains("activations") && st["activations"].is_array()) b.activations = st["activations"].get<std::vector<std::string>>();
    b.after_following_ops = st.value("after_following_ops", false);
    b.layer_outputs = st.value("layer_outputs", false);
    for (const auto& s : j.at("sites")) {
      SiteStats x;
      x.site.tensor = s.at("tensor").get<std::string>();
      x.site.kind = s.value("kind", "");
      x.site.node = s.value("node", "");
      x.site.input = s.value("input", "");
      x.channel_axis = s.value("channel_axis", 1);
      x.site.channel_axis = x.channel_axis;
      x.shape = s.value("shape", Shape{});
      x.min = s.at("min").get<float>();
      x.max = s.at("max").get<float>();
      x.observed_min = s.value("observed_min", x.min);
      x.observed_max = s.value("observed_max", x.max);
      x.channel_min = s.value("channel_min", std::vector<float>{});
      x.channel_max = s.value("channel_max", std::vector<float>{});
      x.samples = s.value("samples", (int64_t)0);
      x.elements = s.value("elements", (int64_t)0);
      if (x.channel_min.size() != x.channel_max.size())
        fail(ErrorCode::invalid_input, "{}: site '{}' has {} channel minima but {} maxima", path, x.site.tensor,
             x.channel_min.size(), x.channel_max.size());
      if (!(x.min <= x.max)) fail(ErrorCode::invalid_input, "{}: site '{}' has min > max", path, x.site.tensor);
      b.sites.push_back(std::move(x));
    }
  } catch (const json::exception& e) {
    fail(ErrorCode::invalid_input, "{}: malformed bounds file ({})", path, e.what());
  }
  return b;
}

}  // namespace rg

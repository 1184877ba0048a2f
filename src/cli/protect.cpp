// rangeguard calibrate MODEL --data D --out BOUNDS.json ...
// rangeguard protect MODEL --bounds BOUNDS.json --out PROTECTED.onnx ...
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/file.h"
#include "ir/onnx_io.h"
#include "protect/calibrate.h"
#include "protect/transform.h"

namespace rg::cli {
namespace {

std::set<std::string> split_kinds(const std::string& s) {
  std::set<std::string> r;
  std::stringstream ss(s);
  std::string k;
  while (std::getline(ss, k, ','))
    if (!k.empty()) r.insert(k);
  return r;
}

void print_sites(const std::vector<SiteStats>& sites, const std::map<std::string, int>& per_kind) {
  std::cout << fmt::format("{:<4} {:<14} {:>12} {:>12}  {}\n", "#", "activation", "min", "max", "tensor (node)");
  for (size_t i = 0; i < sites.size(); i++) {
    const auto& s = sites[i];
    std::cout << fmt::format("{:<4} {:<14} {:>12.5g} {:>12.5g}  {} ({})\n", i, s.site.kind, s.min, s.max, s.site.tensor,
                             s.site.node.empty() ? "?" : s.site.node);
  }
  std::cout << "sites by activation:";
  for (const auto& kv : per_kind) std::cout << " " << kv.first << " " << kv.second;
  std::cout << " (total " << sites.size() << ")\n";
}

nlohmann::json sites_json(const std::vector<SiteStats>& sites) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : sites)
    arr.push_back({{"tensor", s.site.tensor}, {"kind", s.site.kind}, {"node", s.site.node}, {"min", s.min},
                   {"max", s.max}, {"channels", s.channel_min.size()}});
  return arr;
}

struct CalibArgs {
  std::string model, data, out, activations;
  int64_t limit = -1, offset = 0;
  CalibOptions o;
  ImageOptions img;
};

struct ProtectArgs {
  std::string model, bounds, out, granularity = "tensor", action = "clamp", json;
  double margin = 0;
  bool detect = false;
};

}  // namespace

void add_calibrate(CLI::App& app) {
  auto* cmd = app.add_subcommand("calibrate", "Record activation ranges on fault-free data (BOUNDS.json)");
  cmd->footer(
      "Every activation (ReLU, Swish, GELU, HardSwish, PReLU, ELU, Sigmoid, Tanh, ... and their\n"
      "decomposed forms) is a site; its per-tensor and per-channel range and a histogram are kept.\n"
      "Examples:\n"
      "  rangeguard calibrate models/lenet_relu.onnx --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --out bounds.json\n"
      "  rangeguard calibrate model.onnx --data calib.npy --out b.json --stat percentile:99.99 --samples 1000 --shuffle");
  auto a = std::make_shared<CalibArgs>();
  cmd->add_option("MODEL", a->model, "ONNX model file")->required();
  cmd->add_option("--data", a->data, "Calibration data: .npy, IDX (.gz) or an image folder")->required();
  cmd->add_option("--out,-o", a->out, "Bounds file to write")->required();
  cmd->add_option("--samples", a->o.samples, "Number of calibration samples")->capture_default_str();
  cmd->add_flag("--shuffle", a->o.shuffle, "Draw the samples at random (with --seed) instead of the first N");
  cmd->add_option("--seed", a->o.seed, "Seed for --shuffle")->capture_default_str();
  cmd->add_option("--stat", a->o.stat, "Bounds statistic: minmax or percentile:P (e.g. percentile:99.99)")->capture_default_str();
  cmd->add_option("--activations", a->activations, "Only these kinds, comma-separated (e.g. relu,gelu); default all");
  cmd->add_flag("--after-following-ops", a->o.sites.after_following_ops,
                "Also clamp after the pooling/reshape/concat that follows an activation (Ranger)");
  cmd->add_flag("--layer-outputs", a->o.sites.layer_outputs,
                "Also clamp Conv/Gemm/MatMul outputs no activation check covers (attention, residual branches, "
                "logits, Sigmoid/Tanh inputs)");
  cmd->add_option("--batch", a->o.batch, "Samples per inference")->capture_default_str();
  cmd->add_option("--offset", a->offset, "Skip the first K samples")->capture_default_str();
  cmd->add_option("--threads", a->o.threads, "Intra-op threads (0 = all cores)")->capture_default_str();
  add_image_options(cmd, a->img);
  cmd->callback([a] {
    a->o.sites.kinds = split_kinds(a->activations);
    a->o.validate();
    std::unique_ptr<Dataset> data = slice_dataset(open_dataset(a->data, a->img), a->offset, -1);
    ProgressBar bar("samples (2 passes)");
    a->o.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
    Bounds b = calibrate(a->model, *data, a->o);
    if (b.sites.empty())
      std::cerr << "rangeguard: warning: no supported activation found in " << a->model << "; the bounds file has zero sites\n";
    save_bounds(b, a->out);
    std::map<std::string, int> per_kind;
    for (const auto& s : b.sites) per_kind[s.site.kind]++;
    std::cout << fmt::format("calibrated {} on {} samples of {} ({})\n", a->model, b.samples, b.data, b.stat);
    print_sites(b.sites, per_kind);
    std::cout << "wrote " << a->out << "\n";
  });
}

void add_protect(CLI::App& app) {
  auto* cmd = app.add_subcommand("protect", "Insert range checks after every activation (standard ONNX)");
  cmd->footer(
      "Clamps (or zeroes) activations outside their calibrated range, so a hardware fault that\n"
      "blows one value up is cut off. The output runs in any ONNX runtime.\n"
      "Examples:\n"
      "  rangeguard protect models/lenet_relu.onnx --bounds bounds.json --out lenet_protected.onnx\n"
      "  rangeguard protect model.onnx --bounds b.json --out p.onnx --granularity channel --margin 0.05 --detect");
  auto a = std::make_shared<ProtectArgs>();
  cmd->add_option("MODEL", a->model, "ONNX model file (the one calibrated)")->required();
  cmd->add_option("--bounds,-b", a->bounds, "Bounds file from `rangeguard calibrate`")->required();
  cmd->add_option("--out,-o", a->out, "Protected model to write")->required();
  cmd->add_option("--granularity", a->granularity, "tensor (one range per site) or channel")
      ->check(CLI::IsMember({"tensor", "channel"}))->capture_default_str();
  cmd->add_option("--margin", a->margin, "Widen each range, both sides, by this fraction of the site's width (per-channel ranges too)")->capture_default_str();
  cmd->add_option("--action", a->action, "clamp (to the bound) or zero (Clip-Act)")
      ->check(CLI::IsMember({"clamp", "zero"}))->capture_default_str();
  cmd->add_flag("--detect", a->detect, "Add an int64 output rangeguard_oob_count (out-of-range activations)");
  cmd->add_option("--json", a->json, "Also write the sites as JSON to this file");
  cmd->callback([a] {
    ProtectOptions o;
    o.granularity = a->granularity == "channel" ? Granularity::channel : Granularity::tensor;
    o.action = a->action == "zero" ? OobAction::zero : OobAction::clamp;
    o.margin = a->margin;
    o.detect = a->detect;
    o.bounds_source = a->bounds;
    o.validate();
    Bounds b = load_bounds(a->bounds);
    std::string bytes = read_file(a->model);
    std::string sha = sha256_hex(bytes);
    Graph g = parse_onnx(bytes.data(), bytes.size(), dir_of(a->model), a->model);
    bytes.clear();
    ProtectResult r = protect_model(g, sha, b, o);
    if (r.sites.empty()) std::cerr << "rangeguard: warning: the bounds file has no sites; the model is unchanged\n";
    // As strict as the original allows: a model that passes the full check must still pass.
    bool full = true;
    try {
      check_onnx(g, true);
    } catch (const Error&) {
      full = false;
    }
    check_onnx(r.graph, full);
    save_onnx(r.graph, a->out);
    std::vector<SiteStats> stats;
    for (const auto& s : r.sites) stats.push_back(s.stats);
    std::cout << fmt::format("protected {} ({} sites, {} bounds, action {}{}, margin {})\n", a->model, r.sites.size(),
                             a->granularity, a->action, a->detect ? ", detector output rangeguard_oob_count" : "", a->margin);
    print_sites(stats, r.per_kind);
    std::cout << "wrote " << a->out << "\n";
    if (!a->json.empty()) {
      nlohmann::json j = {{"model", a->model}, {"out", a->out}, {"bounds", a->bounds}, {"granularity", a->granularity},
                          {"action", a->action}, {"margin", a->margin}, {"detect", a->detect},
                          {"per_kind", r.per_kind}, {"sites", sites_json(stats)}};
      write_file(a->json, j.dump(2) + "\n");
    }
  });
}

}  // namespace rg::cli

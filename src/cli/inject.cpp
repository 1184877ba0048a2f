// rangeguard inject MODEL [--protected P.onnx] --data D [--labels L] ... --json FILE
// rangeguard inject-merge SHARD.json... --json FILE
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "faults/campaign.h"
#include "io/file.h"

namespace rg::cli {
namespace {

struct InjectArgs {
  std::string model, protected_model, data, labels, json, html, target = "weights", kind = "bitflip", bits = "any", shard;
  CampaignOptions o;
  ImageOptions img;
};

std::string pct(const nlohmann::json& rate) {
  return rate.is_null() ? "-" : fmt::format("{:.2f}%", rate.get<double>() * 100);
}
std::string ci(const nlohmann::json& c) {
  return c.is_null() ? "" : fmt::format("[{:.2f}, {:.2f}]", c[0].get<double>() * 100, c[1].get<double>() * 100);
}

void print_report(const nlohmann::json& j) {
  const auto& s = j["settings"];
  std::cout << fmt::format("campaign     {} {} fault(s) in {} ({} bits {}), {} inputs each; population {:.3g}\n",
                           j["original"]["trials"].get<int64_t>(), s["kind"].get<std::string>(),
                           s["targets"].dump(), s["flips"].get<int>(), s["bits"].get<std::string>(),
                           s["samples"].get<int64_t>(), j["population"].get<double>());
  if (!s["clean_accuracy"].is_null())
    std::cout << fmt::format("clean top-1  {:.2f}%{}\n", s["clean_accuracy"].get<double>() * 100,
                             s.contains("protected_clean_accuracy")
                                 ? fmt::format(" (protected {:.2f}%)", s["protected_clean_accuracy"].get<double>() * 100)
                                 : "");
  std::cout << fmt::format("{:<10} {:>7} {:>9} {:>22} {:>10} {:>10} {:>10} {:>10}\n", "model", "trials", "pairs",
                           "SDC % [95% CI]", "critical", "DUE", "detected", "acc|fault");
  for (const char* m : {"original", "protected"}) {
    if (!j.contains(m)) continue;
    const auto& t = j[m];
    std::cout << fmt::format("{:<10} {:>7} {:>9} {:>8} {:>13} {:>10} {:>10} {:>10} {:>10}\n", m,
                             t["trials"].get<int64_t>(), t["pairs"].get<int64_t>(), pct(t["sdc_rate"]), ci(t["sdc_ci95"]),
                             pct(t["critical_sdc_rate"]), pct(t["due_rate"]), pct(t["detected_rate"]),
                             pct(t["accuracy_under_fault"]));
  }
  if (j.contains("reduction") && !j["reduction"].is_null() && !j["reduction"]["factor"].is_null())
    std::cout << fmt::format("protection   {:.1f}x fewer corrupted predictions (SDC + DUE), 95% CI [{:.1f}, {:.1f}]\n",
                             j["reduction"]["factor"].get<double>(), j["reduction"]["ci95"][0].get<double>(),
                             j["reduction"]["ci95"][1].get<double>());
  if (j.contains("silent_reduction") && !j["silent_reduction"].is_null() && !j["silent_reduction"]["factor"].is_null())
    std::cout << fmt::format("silent       {:.1f}x fewer undetected SDC ({:.3f}% -> {:.3f}% of pairs), 95% CI [{:.1f}, {:.1f}]\n",
                             j["silent_reduction"]["factor"].get<double>(), j["original"]["undetected_sdc_rate"].get<double>() * 100,
                             j["protected"]["undetected_sdc_rate"].get<double>() * 100,
                             j["silent_reduction"]["ci95"][0].get<double>(), j["silent_reduction"]["ci95"][1].get<double>());
  if (j.contains("timing"))
    std::cout << fmt::format("speed        {:.0f} inferences/s under injection, {:.0f}/s plain ({:.2f}x), {:.1f} s\n",
                             j["timing"]["campaign_inferences_per_s"].get<double>(),
                             j["timing"]["plain_inferences_per_s"].get<double>(), j["timing"]["ratio"].get<double>(),
                             j["timing"]["seconds"].get<double>());
}

void write_reports(const nlohmann::json& j, const std::string& json_path, const std::string& html_path) {
  if (!json_path.empty()) write_file(json_path, j.dump(2) + "\n");
  if (!html_path.empty()) write_file(html_path, campaign_html(j));
}

}  // namespace

void add_inject(CLI::App& app) {
  auto* cmd = app.add_subcommand("inject", "Fault-injection campaign: SDC/DUE rates, original vs protected");
  cmd->footer(
      "Faults are drawn from the model's Conv/ConvTranspose/Gemm/MatMul weights (persistent over a\n"
      "trial's inputs) and/or outputs (transient), injected in place, and classified per input:\n"
      "masked, SDC (top-1 changed), critical SDC (right -> wrong), DUE (NaN/Inf). Rates carry\n"
      "Wilson 95% intervals; --protected runs the identical faults on the protected model.\n"
      "Examples:\n"
      "  rangeguard inject models/lenet_relu.onnx --protected lenet_p.onnx --data t10k-images-idx3-ubyte.gz \\\n"
      "      --labels t10k-labels-idx1-ubyte.gz --trials 3000 --bits 23-30 --json campaign.json\n"
      "  rangeguard inject model.onnx --data x.npy --margin 0.01 --confidence 0.95 --shard 0/4 --json s0.json");
  auto a = std::make_shared<InjectArgs>();
  cmd->add_option("MODEL", a->model, "ONNX model file")->required();
  cmd->add_option("--protected", a->protected_model, "Its protected version (same parameters): same faults, compared");
  cmd->add_option("--data", a->data, "Evaluation inputs: .npy, IDX (.gz) or an image folder")->required();
  cmd->add_option("--labels", a->labels, "Labels (NPY or IDX) for critical SDC and accuracy under fault");
  cmd->add_option("--samples", a->o.samples, "Evaluation inputs per fault")->capture_default_str();
  cmd->add_option("--batch", a->o.batch, "Inputs per inference")->capture_default_str();
  cmd->add_option("--target", a->target, "weights, activations or both")
      ->check(CLI::IsMember({"weights", "activations", "both"}))->capture_default_str();
  cmd->add_option("--kind", a->kind, "bitflip, stuck-at-0, stuck-at-1 or random-value")->capture_default_str();
  cmd->add_option("--bits", a->bits, "Bit positions: one (30), a range (23-30) or any")->capture_default_str();
  cmd->add_option("--flips", a->o.spec.flips, "Bits flipped per fault (bitflip)")->capture_default_str();
  cmd->add_option("--layers", a->o.spec.layers, "Regex over layer (node) names or operator types, e.g. Conv");
  cmd->add_flag("--biases", a->o.spec.biases, "Weights: include bias inputs");
  cmd->add_option("--trials", a->o.trials, "Faults to inject (default: sized by --margin/--confidence)");
  cmd->add_option("--margin", a->o.margin, "Sizing: error margin (Leveugle et al.)")->capture_default_str();
  cmd->add_option("--confidence", a->o.confidence, "Sizing: confidence level")->capture_default_str();
  cmd->add_option("--seed", a->o.seed, "Seed of the fault list (same list on any thread count)")->capture_default_str();
  cmd->add_option("--shard", a->shard, "Run shard i of N (i/N); merge the reports with inject-merge");
  cmd->add_option("--faults-out", a->o.faults_out, "Write the fault list (JSON Lines)");
  cmd->add_option("--faults-in", a->o.faults_in, "Replay a fault list instead of drawing one");
  cmd->add_option("--threads", a->o.threads, "Intra-op threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--resume-mb", a->o.resume_mb,
                  "Memory for clean activations, so faulted runs resume at the faulted layer (0 = run whole)")
      ->capture_default_str();
  cmd->add_option("--json", a->json, "Write the report (schema: docs/inject.md)");
  cmd->add_option("--html", a->html, "Write a self-contained HTML report (SDC by bit and by layer)");
  add_image_options(cmd, a->img);
  cmd->callback([a] {
    CampaignOptions& o = a->o;
    o.spec.targets.clear();
    if (a->target != "activations") o.spec.targets.push_back(FaultTarget::weight);
    if (a->target != "weights") o.spec.targets.push_back(FaultTarget::activation);
    o.spec.kind = parse_fault_kind(a->kind);
    o.spec.bits = a->bits == "any" ? std::vector<int>{} : parse_bits(a->bits);
    if (!a->shard.empty()) {
      char slash = 0;
      std::istringstream in(a->shard);
      if (!(in >> o.shard >> slash >> o.shards) || slash != '/' || !in.eof())
        fail(ErrorCode::invalid_input, "--shard must look like 0/4, got '{}'", a->shard);
    }
    o.validate();
    std::unique_ptr<Dataset> data = open_dataset(a->data, a->img);
    if (!a->labels.empty()) data = attach_labels(std::move(data), read_labels(a->labels), a->labels);
    ProgressBar bar("faults");
    o.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
    CampaignResult r = run_campaign(a->model, a->protected_model, *data, o);
    nlohmann::json j = campaign_json(r);
    print_report(j);
    write_reports(j, a->json, a->html);
  });

  auto* merge = app.add_subcommand("inject-merge", "Combine the shard reports of one campaign exactly");
  auto files = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>(), out_html = std::make_shared<std::string>();
  merge->add_option("REPORTS", *files, "Shard reports (--json of inject --shard i/N)")->required();
  merge->add_option("--json", *out, "Write the merged report");
  merge->add_option("--html", *out_html, "Write it as a self-contained HTML report");
  merge->callback([files, out, out_html] {
    std::vector<nlohmann::json> shards;
    for (const auto& f : *files) {
      try {
        shards.push_back(nlohmann::json::parse(read_file(f)));
      } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::invalid_input, "{}: not JSON ({})", f, e.what());
      }
    }
    nlohmann::json j;
    try {
      j = merge_campaigns(shards);
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorCode::invalid_input, "a report lacks a field of the campaign schema ({})", e.what());
    }
    print_report(j);
    write_reports(j, *out, *out_html);
  });
}

}  // namespace rg::cli

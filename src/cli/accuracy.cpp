// rangeguard accuracy MODEL --data D [--labels L] [--top-k K] [--batch B] [--json F] ...
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/evaluate.h"

namespace rg::cli {
namespace {

struct AccuracyArgs {
  std::string model, data, labels, json;
  int64_t top_k = 5, batch = 64, limit = -1, offset = 0;
  int threads = 0;
  std::string precision = "fp32";
  ImageOptions img;
};

std::string class_label(const std::vector<std::string>& names, size_t c) {
  return c < names.size() ? names[c] : "";
}

nlohmann::json to_json(const AccuracyArgs& a, const EvalResult& r, const std::vector<std::string>& names) {
  nlohmann::json j;
  j["model"] = a.model;
  j["data"] = a.data;
  if (!a.labels.empty()) j["labels"] = a.labels;
  j["samples"] = r.samples;
  j["top1"] = r.top1;
  j["topk"] = r.topk;
  j["k"] = r.k;
  j["top1_correct"] = r.top1_correct;
  j["topk_correct"] = r.topk_correct;
  j["classes"] = r.classes;
  j["per_class"] = nlohmann::json::array();
  for (size_t c = 0; c < (size_t)r.classes; c++) {
    nlohmann::json pc = {{"class", c},
                         {"samples", r.class_samples[c]},
                         {"correct", r.class_correct[c]},
                         {"accuracy", r.class_samples[c] ? (double)r.class_correct[c] / r.class_samples[c] : 0.0}};
    if (c < names.size()) pc["name"] = names[c];
    j["per_class"].push_back(pc);
  }
  j["confusion_matrix"] = r.confusion;
  j["throughput_per_s"] = r.throughput;
  j["seconds"] = r.seconds;
  j["inference_seconds"] = r.inference_seconds;
  j["batch"] = r.batch;
  return j;
}

void print_text(const AccuracyArgs& a, const std::string& data_desc, const EvalResult& r,
                const std::vector<std::string>& names) {
  std::cout << "model       " << a.model << "\n";
  std::cout << "data        " << data_desc << "\n";
  std::cout << fmt::format("samples     {} (batch {})\n", r.samples, r.batch);
  std::cout << fmt::format("top-1       {:.2f}%  ({} / {})\n", 100 * r.top1, r.top1_correct, r.samples);
  std::cout << fmt::format("top-{:<2}      {:.2f}%  ({} / {})\n", r.k, 100 * r.topk, r.topk_correct, r.samples);
  std::cout << "per class\n";
  std::cout << fmt::format("  {:>5}  {:<16} {:>8} {:>8} {:>9}\n", "class", "name", "samples", "correct", "accuracy");
  int64_t empty = 0;  // classes no sample belongs to: counted, not listed (think ImageNet --limit 100)
  for (size_t c = 0; c < (size_t)r.classes; c++) {
    if (!r.class_samples[c]) {
      empty++;
      continue;
    }
    std::cout << fmt::format("  {:>5}  {:<16} {:>8} {:>8} {:>8.2f}%\n", c, class_label(names, c), r.class_samples[c],
                             r.class_correct[c], 100.0 * r.class_correct[c] / r.class_samples[c]);
  }
  if (empty) std::cout << fmt::format("  ({} of {} classes have no samples)\n", empty, r.classes);
  std::cout << fmt::format("throughput  {:.1f} samples/s ({:.3f} s wall, {:.3f} s in inference)\n", r.throughput,
                           r.seconds, r.inference_seconds);
}

}  // namespace

void add_accuracy(CLI::App& app) {
  auto* cmd = app.add_subcommand("accuracy", "Measure top-1/top-k classification accuracy on a labelled data set");
  cmd->footer(
      "DATA is an .npy file (samples on axis 0), an IDX file (MNIST format, .gz allowed) or a folder\n"
      "with one sub-folder of PNG/JPEG images per class (labels from the sorted folder names).\n"
      "LABELS is an integer .npy or IDX file with one label per sample of DATA.\n\n"
      "Examples:\n"
      "  rangeguard accuracy models/lenet_relu.onnx \\\n"
      "      --data /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \\\n"
      "      --labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
      "  rangeguard accuracy model.onnx --data x.npy --labels y.npy --limit 1000 --json report.json\n"
      "  rangeguard accuracy resnet.onnx --data imagenet/val --resize 256 --crop 224 --scale 0.00392157 \\\n"
      "      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225");
  auto a = std::make_shared<AccuracyArgs>();
  cmd->add_option("MODEL", a->model, "ONNX model file (one input; first output = class scores [N, classes])")->required();
  cmd->add_option("--data,-d", a->data, "Samples: .npy, IDX (.gz allowed) or a folder of class folders")->required();
  cmd->add_option("--labels,-l", a->labels, "Integer labels: .npy or IDX (implicit for an image folder)");
  cmd->add_option("--top-k,-k", a->top_k, "Also count a hit when the label is among the K best scores")->capture_default_str();
  cmd->add_option("--batch,-b", a->batch, "Samples per inference (a model with a fixed batch dim uses its own)")->capture_default_str();
  cmd->add_option("--limit", a->limit, "Evaluate at most N samples (default: all)");
  cmd->add_option("--offset", a->offset, "Skip the first K samples (and labels)")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Intra-op threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--precision", a->precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->add_option("--json", a->json, "Also write the report as JSON to this file ('-': JSON on stdout instead of text)");
  add_image_options(cmd, a->img);
  cmd->callback([a] {
    EvalOptions eo;
    eo.batch = a->batch;
    eo.top_k = a->top_k;
    eo.validate();  // cheap argument errors before loading anything
    if (a->limit < -1 || a->limit == 0) fail(ErrorCode::invalid_input, "--limit must be at least 1 (got {})", a->limit);

    SessionOptions so;
    so.threads = a->threads;
    so.precision = a->precision == "bf16" ? Precision::bf16 : Precision::fp32;
    Session session = Session::load(a->model, so);

    std::unique_ptr<Dataset> data = open_dataset(a->data, a->img);
    if (!a->labels.empty()) data = attach_labels(std::move(data), read_labels(a->labels), a->labels);
    data = slice_dataset(std::move(data), a->offset, a->limit);
    std::vector<std::string> names = data->class_names();

    EvalResult r;
    {
      ProgressBar bar;
      eo.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
      r = evaluate_accuracy(session, *data, eo);
    }
    nlohmann::json j = to_json(*a, r, names);
    if (a->json == "-") {
      std::cout << j.dump(2) << "\n";
      return;
    }
    if (!a->json.empty()) {
      std::ofstream f(a->json, std::ios::trunc);
      if (!(f << j.dump(2) << "\n")) fail(ErrorCode::io, "cannot write '{}'", a->json);
    }
    print_text(*a, data->describe(), r, names);
  });
}

}  // namespace rg::cli

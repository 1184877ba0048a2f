// rangeguard run MODEL --input NAME=FILE.npy ... [--output-dir DIR] [--threads N]
#include <sys/stat.h>

#include <iostream>
#include <numeric>

#include "cli/commands.h"
#include "io/file.h"
#include "io/npy.h"
#include "kernels/op.h"
#include "runtime/session.h"

namespace rg::cli {
namespace {

struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;
  std::string output_dir = ".";
  int threads = 0;
  std::string precision = "fp32";
  bool reference = false;
};

void print_top5(const Tensor& t) {
  if (t.rank() != 2 || t.dtype() != DType::f32) return;
  int64_t rows = std::min<int64_t>(t.dim(0), 4), cols = t.dim(1);
  for (int64_t r = 0; r < rows; r++) {
    const float* p = t.data<float>() + r * cols;
    std::vector<int64_t> idx(cols);
    std::iota(idx.begin(), idx.end(), 0);
    int64_t k = std::min<int64_t>(5, cols);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    std::cout << "    row " << r << " top-" << k << ":";
    for (int64_t i = 0; i < k; i++) std::cout << fmt::format(" {}({:.4g})", idx[i], p[idx[i]]);
    std::cout << "\n";
  }
  if (t.dim(0) > rows) std::cout << "    ... " << t.dim(0) - rows << " more rows\n";
}

}  // namespace

void add_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run a model on NPY inputs and write its outputs as NPY");
  cmd->footer(
      "Examples:\n"
      "  rangeguard run model.onnx --input input=x.npy --output-dir out/\n"
      "  rangeguard run model.onnx --input x.npy          (a model with one input)");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("MODEL", a->model, "ONNX model file")->required();
  cmd->add_option("--input,-i", a->inputs, "NAME=FILE.npy (or FILE.npy for a single-input model)")->required();
  cmd->add_option("--output-dir,-o", a->output_dir, "Folder for <output name>.npy files")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Intra-op threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--precision", a->precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->add_flag("--reference", a->reference, "Use the reference kernels only (no oneDNN)");
  cmd->callback([a] {
    SessionOptions o;
    o.threads = a->threads;
    o.precision = a->precision == "bf16" ? Precision::bf16 : Precision::fp32;
    o.fast_kernels = !a->reference;
    Session s = Session::load(a->model, o);
    std::map<std::string, Tensor> named;
    for (const auto& spec : a->inputs) {
      size_t eq = spec.find('=');
      std::string name, path;
      if (eq == std::string::npos) {
        if (s.graph().inputs.size() != 1 || a->inputs.size() != 1)
          fail(ErrorCode::invalid_input, "--input {}: the model has {} inputs; use NAME=FILE.npy", spec,
               s.graph().inputs.size());
        name = s.graph().inputs[0].name;
        path = spec;
      } else {
        name = spec.substr(0, eq);
        path = spec.substr(eq + 1);
      }
      if (named.count(name)) fail(ErrorCode::invalid_input, "input '{}' given twice", name);
      named[name] = read_npy(path);
    }
    std::vector<Tensor> outs = s.run(named);
    std::cout << "precision " << (s.options().precision == Precision::bf16 ? "bf16" : "fp32") << ", oneDNN isa "
              << fast_isa() << (a->reference ? " (reference kernels only)" : "") << "\n";
    mkdir(a->output_dir.c_str(), 0755);
    for (size_t i = 0; i < outs.size(); i++) {
      const std::string& name = s.graph().outputs[i].name;
      std::string path = a->output_dir + "/" + safe_file_name(name) + ".npy";
      write_npy(path, outs[i]);
      std::cout << name << ": " << dtype_name(outs[i].dtype()) << " " << shape_str(outs[i].shape()) << " -> " << path << "\n";
      print_top5(outs[i]);
    }
  });
}

}  // namespace rg::cli

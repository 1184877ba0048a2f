// rangeguard info MODEL [--json]
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "ir/onnx_io.h"
#include "runtime/model_info.h"

namespace rg::cli {
namespace {

nlohmann::json value_json(const ValueInfo& v) {
  nlohmann::json shape = nlohmann::json::array();
  for (size_t i = 0; i < v.shape.size(); i++) {
    if (v.shape[i] >= 0) shape.push_back(v.shape[i]);
    else shape.push_back(i < v.dim_names.size() && !v.dim_names[i].empty() ? v.dim_names[i] : "?");
  }
  return {{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", v.has_shape ? shape : nullptr}};
}

std::string value_text(const ValueInfo& v) {
  return fmt::format("  {:<24} {:<8} {}", v.name, dtype_name(v.dtype), v.shape_text());
}

std::string human(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, u++;
  return fmt::format("{:.2f}{}", v, units[u]);
}

std::string human_bytes(size_t b) {
  if (b >= (1u << 20)) return fmt::format("{:.1f} MiB", b / 1048576.0);
  return fmt::format("{:.1f} KiB", b / 1024.0);
}

}  // namespace

void add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Describe a model: inputs, outputs, operators, parameters, FLOPs");
  cmd->footer("Example:\n  rangeguard info models/lenet_relu.onnx\n  rangeguard info model.onnx --json");
  auto model = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("MODEL", *model, "ONNX model file")->required();
  cmd->add_flag("--json", *json, "Print a JSON document instead of text");
  cmd->callback([model, json] {
    Graph g = load_onnx(*model);
    ModelInfo mi = inspect_model(g, SessionOptions{});
    if (*json) {
      nlohmann::json j;
      j["model"] = *model;
      j["producer"] = mi.producer;
      j["ir_version"] = mi.ir_version;
      j["opset"] = mi.opset;
      j["inputs"] = nlohmann::json::array();
      for (const auto& v : mi.inputs) j["inputs"].push_back(value_json(v));
      j["outputs"] = nlohmann::json::array();
      for (const auto& v : mi.outputs) j["outputs"].push_back(value_json(v));
      j["nodes"] = mi.nodes;
      j["operators"] = mi.op_histogram;
      j["parameters"] = mi.parameters;
      j["unsupported"] = nlohmann::json::array();
      for (const auto& u : mi.unsupported) j["unsupported"].push_back({{"op", u.first}, {"node", u.second}});
      if (!mi.unsupported_reason.empty()) j["unsupported_reason"] = mi.unsupported_reason;
      j["supported"] = mi.unsupported_reason.empty();
      if (mi.planned) {
        j["flops"] = mi.flops;
        j["flops_input_shapes"] = mi.planned_input_shapes;
        j["nodes_after_passes"] = mi.nodes_after_passes;
        j["kernels"] = mi.kernel_impls;
        j["fused_nodes"] = mi.fused_nodes;
        j["peak_activation_bytes"] = mi.activation_bytes + mi.scratch_bytes;
        j["activation_arena_bytes"] = mi.activation_bytes;
        j["scratchpad_bytes"] = mi.scratch_bytes;
        j["isa"] = mi.isa;
      } else if (!mi.plan_error.empty()) {
        j["plan_error"] = mi.plan_error;
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "model     " << *model << "\n";
    std::cout << "producer  " << (mi.producer.empty() ? "(unknown)" : mi.producer) << ", IR " << mi.ir_version
              << ", opset " << mi.opset << "\n";
    std::cout << "inputs\n";
    for (const auto& v : mi.inputs) std::cout << value_text(v) << "\n";
    std::cout << "outputs\n";
    for (const auto& v : mi.outputs) std::cout << value_text(v) << "\n";
    std::cout << "parameters " << mi.parameters << " (" << human((double)mi.parameters) << ")\n";
    if (mi.planned) {
      std::string shapes;
      for (const auto& s : mi.planned_input_shapes) shapes += (shapes.empty() ? "" : ", ") + shape_str(s);
      std::cout << "FLOPs      " << human((double)mi.flops) << " per inference (inputs " << shapes << ")\n";
      std::cout << "nodes      " << mi.nodes << " (" << mi.nodes_after_passes << " plan steps, " << mi.fused_nodes
                << " nodes fused)\n";
      std::cout << fmt::format("memory     {} peak activations ({} arena reused by liveness + {} kernel scratch)\n",
                               human_bytes(mi.activation_bytes + mi.scratch_bytes), human_bytes(mi.activation_bytes),
                               human_bytes(mi.scratch_bytes));
      std::cout << "isa        " << mi.isa << " (oneDNN)\n";
      std::cout << "kernels   ";
      for (const auto& kv : mi.kernel_impls) std::cout << " " << kv.first << " x" << kv.second;
      std::cout << "\n";
    } else {
      std::cout << "nodes      " << mi.nodes << "\n";
      if (!mi.plan_error.empty()) std::cout << "plan       cannot plan: " << mi.plan_error << "\n";
    }
    std::cout << "operators\n";
    for (const auto& kv : mi.op_histogram) std::cout << fmt::format("  {:<24} {}\n", kv.first, kv.second);
    if (!mi.unsupported.empty() || !mi.unsupported_reason.empty()) {
      std::cout << "unsupported\n";
      for (const auto& u : mi.unsupported) std::cout << "  " << u.first << "  (node '" << u.second << "')\n";
      if (mi.unsupported.empty()) std::cout << "  " << mi.unsupported_reason << "\n";
    } else {
      std::cout << "unsupported none\n";
    }
  });
}

}  // namespace rg::cli

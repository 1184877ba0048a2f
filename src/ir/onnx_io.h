#pragma once
// ONNX import and export through the ONNX protobuf classes (libonnx from Debian).
// Import validates everything a hostile file could get wrong (sizes, dims, dangling names,
// external data paths) and reports it as rg::Error; it never trusts a count from the file.
#include <string>

#include "ir/graph.h"

namespace rg {

// Loads MODEL.onnx; external data files are resolved relative to the model's folder.
Graph load_onnx(const std::string& path);
// Parses an in-memory model. `base_dir` resolves external data; empty disallows it.
Graph parse_onnx(const void* data, size_t size, const std::string& base_dir,
                 const std::string& what = "model");
// Exports a Graph as a standard ONNX model (initializers as raw_data, bit-exact).
void save_onnx(const Graph& g, const std::string& path);
std::string serialize_onnx(const Graph& g);

// Runs the ONNX checker on the exported form of `g` (with `full`, also strict shape and
// type inference, as onnx.checker.check_model(full_check=True)); invalid_model with the
// checker's message when it fails.
void check_onnx(const Graph& g, bool full);

// A TensorProto file (the ONNX backend tests' input_0.pb / output_0.pb).
Tensor load_tensor_pb(const std::string& path, std::string* name = nullptr);

}  // namespace rg

#pragma once
// The in-memory model: ONNX's structure with plain C++ types. Values are named by strings
// exactly as in ONNX (an empty name marks an omitted optional input), so a Graph can be
// imported, rewritten by passes and exported again without losing anything we understand.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace rg {

struct Attribute {
  enum class Kind { floats_, ints_, strings_, f, i, s, t, graph };
  Kind kind = Kind::i;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;

  static Attribute of_int(int64_t v) { Attribute a; a.kind = Kind::i; a.i = v; return a; }
  static Attribute of_float(float v) { Attribute a; a.kind = Kind::f; a.f = v; return a; }
  static Attribute of_string(std::string v) { Attribute a; a.kind = Kind::s; a.s = std::move(v); return a; }
  static Attribute of_ints(std::vector<int64_t> v) { Attribute a; a.kind = Kind::ints_; a.ints = std::move(v); return a; }
  static Attribute of_floats(std::vector<float> v) { Attribute a; a.kind = Kind::floats_; a.floats = std::move(v); return a; }
  static Attribute of_tensor(Tensor v) { Attribute a; a.kind = Kind::t; a.t = std::move(v); return a; }
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ai.onnx domain
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& k) const { return attrs.count(k) != 0; }
  // Typed attribute access; a present attribute of the wrong kind is an invalid_model error.
  int64_t attr_i(const std::string& k, int64_t def) const;
  float attr_f(const std::string& k, float def) const;
  std::string attr_s(const std::string& k, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& k, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& k, std::vector<float> def = {}) const;
  const Tensor* attr_t(const std::string& k) const;

  int num_inputs() const { return (int)inputs.size(); }
  // True when optional input i is given (present and not the empty name).
  bool has_input(int i) const { return i < (int)inputs.size() && !inputs[i].empty(); }
  // "Conv 'conv1'" for messages.
  std::string label() const;
};

// Declared type and shape of a graph input/output/intermediate. Unknown dims are -1;
// a symbolic dim (e.g. "batch") keeps its name in dim_names.
struct ValueInfo {
  std::string name;
  DType dtype = DType::undefined;
  Shape shape;
  std::vector<std::string> dim_names;
  bool has_shape = false;

  // "[N, 3, 224, 224]": symbolic dims by name, unknown ones as "?".
  std::string shape_text() const;
};

// A weight a graph pass rewrote per output channel (BatchNormalization folding):
// element i of it is (float)(source[i] * scale[(i / inner) % scale.size()]). Kept so a
// fault in the model file's weight can be re-derived in place (fault injection).
struct DerivedWeight {
  std::string source;  // the initializer as the model file names it
  std::vector<double> scale;
  int64_t inner = 1;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;  // topologically ordered
  std::map<std::string, Tensor> initializers;
  std::vector<ValueInfo> inputs;  // real inputs only (initializers are not listed here)
  std::vector<ValueInfo> outputs;
  std::map<std::string, ValueInfo> value_info;
  std::map<std::string, DerivedWeight> derived_weights;  // by the derived initializer's name
  // A layer output a pass folded away -> the value its layer writes now (Conv -> BN: the
  // conv's output -> the BN's), so an activation fault lands where the runtime writes.
  std::map<std::string, std::string> folded_values;

  // Model-level fields, kept so export round-trips them.
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  int64_t ir_version = 8;
  std::string producer_name, producer_version, doc_string;
  std::vector<std::pair<std::string, std::string>> metadata;

  int64_t opset() const;  // default-domain opset
  const Tensor* initializer(const std::string& name) const;
  bool is_graph_output(const std::string& value) const;
  const ValueInfo* input_info(const std::string& name) const;
  // A value name not used anywhere in the graph, starting with `base`.
  std::string unique_name(const std::string& base) const;
  // value -> index of the producing node (values without a producer are absent).
  std::unordered_map<std::string, int> producers() const;
  // value -> indices of consuming nodes (each node once per use).
  std::unordered_map<std::string, std::vector<int>> consumers() const;
  // Re-establishes topological order; throws invalid_model on a cycle or a dangling input.
  void sort_and_validate();
  // Number of scalar parameters held in floating-point initializers.
  int64_t parameter_count() const;
};

}  // namespace rg

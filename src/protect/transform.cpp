#include "protect/transform.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

namespace rg {
namespace {

// Adds constants and nodes with fresh names. Nodes go to a caller's list (inserted after
// the site's producer at the end), so names are tracked here, not looked up in the graph.
class Builder {
 public:
  explicit Builder(Graph& g) : g_(g) {
    for (const auto& n : g.nodes) {
      used_.insert(n.name);
      used_.insert(n.inputs.begin(), n.inputs.end());
      used_.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const auto& kv : g.initializers) used_.insert(kv.first);
    for (const auto& v : g.inputs) used_.insert(v.name);
    for (const auto& v : g.outputs) used_.insert(v.name);
  }
  std::string fresh(const std::string& base) {
    std::string n = base;
    for (int i = 1; used_.count(n); i++) n = base + "_" + std::to_string(i);
    used_.insert(n);
    return n;
  }
  std::string constant(const std::string& base, Tensor t) {
    std::string n = fresh(base);
    g_.initializers[n] = std::move(t);
    return n;
  }
  std::string node(std::vector<Node>& out, const std::string& op, const std::string& base,
                   std::vector<std::string> inputs, std::map<std::string, Attribute> attrs = {},
                   const std::string& output = "") {
    Node n;
    n.op_type = op;
    n.name = fresh(base + "/" + op);
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    n.outputs = {output.empty() ? fresh(n.name + "_out") : output};
    out.push_back(n);
    return n.outputs[0];
  }

 private:
  Graph& g_;
  std::set<std::string> used_;
};

}  // namespace

void ProtectOptions::validate() const {
  if (!(margin >= 0) || margin > 100) fail(ErrorCode::invalid_input, "--margin must be in [0, 100], got {}", margin);
}

ProtectResult protect_model(const Graph& src, const std::string& model_sha256, const Bounds& b, const ProtectOptions& o) {
  o.validate();
  if (b.model_sha256 != model_sha256)
    fail(ErrorCode::invalid_input,
         "the bounds file was made for another model ('{}', sha256 {}...; this one is {}...); run `rangeguard calibrate` on this model",
         b.model_file, b.model_sha256.substr(0, 12), model_sha256.substr(0, 12));
  const int64_t opset = src.opset();
  if (opset < 11 && o.granularity == Granularity::tensor && o.action == OobAction::clamp && !o.detect) {
    // Clip-6 takes its bounds as attributes: handled below.
  } else if (opset < 9) {
    fail(ErrorCode::unsupported_op, "protection with these options needs opset >= 9 (the model has {})", opset);
  }
  ProtectResult r;
  r.graph = src;
  Graph& g = r.graph;
  Builder bld(g);
  auto producers = g.producers();
  std::map<int, std::vector<Node>> after;  // producer index -> nodes to insert after it
  std::vector<std::string> counts;
  std::vector<Node> tail;                  // the count summation, at the end

  for (const auto& st : b.sites) {
    const std::string& t = st.site.tensor;
    auto pit = producers.find(t);
    if (pit == producers.end())
      fail(ErrorCode::invalid_input, "bounds site '{}' is not a value produced in this model", t);
    SiteStats s = st;
    // Plus a last-bit allowance of 1e-5 of the tensor's largest magnitude: the same image
    // can give a value a few ulps apart in calibrate and in a later run (another batch
    // size or layout picks kernels that sum in another order), and a value at its exact
    // extreme would then read as out of range.
    double w = (double)s.max - s.min;
    double widen = o.margin * w + 1e-5 * std::max(std::fabs((double)s.min), std::fabs((double)s.max));
    s.min = (float)(s.min - widen);
    s.max = (float)(s.max + widen);
    // Channels widen by the same amount as the tensor: a channel seen at one value only
    // (a squeeze-excite vector, a dead unit) would otherwise get no margin at all.
    for (size_t c = 0; c < s.channel_min.size(); c++) {
      s.channel_min[c] = (float)(s.channel_min[c] - widen);
      s.channel_max[c] = (float)(s.channel_max[c] + widen);
    }
    std::string base = "rangeguard/" + t;
    std::vector<Node>& nodes = after[pit->second];
    bool is_output = g.is_graph_output(t);
    // The checked value keeps the site's name when that name is a graph output (the
    // model's interface must not change); otherwise consumers are rewired to it.
    std::string raw = t, checked = is_output ? t : "";
    if (is_output) {
      raw = bld.fresh(t + "_unchecked");
      for (auto& n : g.nodes)
        for (auto& v : n.outputs)
          if (v == t) v = raw;
      for (auto& n : g.nodes)
        for (auto& v : n.inputs)
          if (v == t) v = raw;
    }
    std::string lo, hi;
    if (o.granularity == Granularity::channel) {
      int rank = (int)s.shape.size();
      if (s.channel_min.empty() || rank == 0)
        fail(ErrorCode::invalid_input, "site '{}' has no per-channel bounds", t);
      int axis = s.channel_axis;
      Shape cs{(int64_t)s.channel_min.size()};
      for (int d = axis + 1; d < rank; d++) cs.push_back(1);
      lo = bld.constant(base + "/lo", Tensor::from_vector<float>(cs, s.channel_min));
      hi = bld.constant(base + "/hi", Tensor::from_vector<float>(cs, s.channel_max));
    } else if (opset >= 11 || o.action == OobAction::zero || o.detect) {  // Clip-6 takes attributes
      lo = bld.constant(base + "/lo", Tensor::scalar(s.min));
      hi = bld.constant(base + "/hi", Tensor::scalar(s.max));
    }
    std::string oob;  // bool mask of out-of-range or NaN values
    if (o.action == OobAction::zero || o.detect) {
      std::string outside = bld.node(nodes, "Or", base, {bld.node(nodes, "Less", base, {raw, lo}),
                                                         bld.node(nodes, "Greater", base, {raw, hi})});
      oob = bld.node(nodes, "Or", base, {outside, bld.node(nodes, "IsNaN", base, {raw})});
    }
    std::string out;
    if (o.action == OobAction::zero) {
      std::string zero = bld.constant(base + "/zero", Tensor::scalar(0.f));
      out = bld.node(nodes, "Where", base, {oob, zero, raw}, {}, checked);
    } else if (o.granularity == Granularity::channel) {
      out = bld.node(nodes, "Min", base, {bld.node(nodes, "Max", base, {raw, lo}), hi}, {}, checked);
    } else if (opset >= 11) {
      out = bld.node(nodes, "Clip", base, {raw, lo, hi}, {}, checked);
    } else {
      out = bld.node(nodes, "Clip", base, {raw},
                     {{"min", Attribute::of_float(s.min)}, {"max", Attribute::of_float(s.max)}}, checked);
    }
    if (!is_output)  // the graph's own consumers read the checked value; ours (not in g.nodes yet) the raw one
      for (auto& n : g.nodes)
        for (auto& v : n.inputs)
          if (v == t) v = out;
    if (o.detect) {
      std::string c = bld.node(nodes, "Cast", base, {oob}, {{"to", Attribute::of_int(dtype_to_onnx(DType::i64))}});
      counts.push_back(bld.node(nodes, "ReduceSum", base, {c}, {{"keepdims", Attribute::of_int(0)}}));
    }
    r.sites.push_back({s, out});
    r.per_kind[s.site.kind]++;
  }
  if (o.detect) {
    // Per-site counts added up into one int64 scalar (Sum has no int64 before opset 13).
    std::string total = counts.empty() ? bld.constant("rangeguard/no_sites", Tensor::scalar<int64_t>(0)) : counts[0];
    for (size_t i = 1; i < counts.size(); i++) total = bld.node(tail, "Add", "rangeguard/count", {total, counts[i]});
    bld.node(tail, "Identity", "rangeguard", {total}, {}, kOobOutput);
    ValueInfo vi;
    vi.name = kOobOutput;
    vi.dtype = DType::i64;
    vi.has_shape = true;
    g.outputs.push_back(vi);
  }
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); i++) {
    nodes.push_back(std::move(g.nodes[i]));
    auto it = after.find((int)i);
    if (it != after.end()) nodes.insert(nodes.end(), it->second.begin(), it->second.end());
  }
  nodes.insert(nodes.end(), tail.begin(), tail.end());
  g.nodes = std::move(nodes);

  nlohmann::json meta = {{"granularity", o.granularity == Granularity::channel ? "channel" : "tensor"},
                         {"margin", o.margin},
                         {"action", o.action == OobAction::zero ? "zero" : "clamp"},
                         {"detect", o.detect},
                         {"sites", r.sites.size()},
                         {"stat", b.stat},
                         {"calibration_samples", b.samples}};
  g.metadata.emplace_back("rangeguard.protection", meta.dump());
  g.metadata.emplace_back("rangeguard.bounds", o.bounds_source);
  g.metadata.emplace_back("rangeguard.calibration_data", b.data);
  g.sort_and_validate();
  return r;
}

}  // namespace rg

#include "runtime/session.h"

#include <omp.h>

#include <cstdio>

#include "ir/onnx_io.h"
#include "kernels/op.h"
#include "passes/passes.h"

namespace rg {

// Opsets whose semantics the kernels implement. Kernels reject the legacy attributes of
// pre-7 operator versions themselves (e.g. the old `broadcast` flag); newer opsets may
// change an operator's meaning under the same name, so they are refused up front.
constexpr int64_t kMinOpset = 1, kMaxOpset = 18;
constexpr size_t kMaxCachedPlans = 8;

std::vector<std::pair<std::string, std::string>> unsupported_nodes(const Graph& g) {
  std::vector<std::pair<std::string, std::string>> r;
  for (const auto& n : g.nodes)
    if (!find_op(n.domain, n.op_type))
      r.emplace_back(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type, n.name);
  return r;
}

void check_supported(const Graph& g) {
  int64_t v = g.opset();
  if (v < kMinOpset || v > kMaxOpset)
    fail(ErrorCode::unsupported_op, "model uses opset {}; supported opsets are {} to {} (convert with onnx.version_converter)",
         v, kMinOpset, kMaxOpset);
  auto bad = unsupported_nodes(g);
  if (!bad.empty())
    fail(ErrorCode::unsupported_op, "unsupported operator {} (node '{}', opset {}){}", bad[0].first,
         bad[0].second, v, bad.size() > 1 ? fmt::format(" and {} more unsupported nodes", bad.size() - 1) : "");
}

Session::Session(Graph g, SessionOptions o) : graph_(std::move(g)), opts_(std::move(o)) {
  opts_.validate();
  check_supported(graph_);
  for (const auto& in : graph_.inputs)
    if (in.dtype == DType::undefined)
      fail(ErrorCode::invalid_model, "graph input '{}' has no element type", in.name);
  if (opts_.threads > 0) omp_set_num_threads(opts_.threads);
  if (opts_.precision == Precision::bf16 && !fast_bf16_native()) {
    // Emulated bf16 would be slower than fp32 and no more accurate: fall back cleanly.
    std::fprintf(stderr, "rangeguard: note: this CPU (%s) has no native bf16; running fp32\n", fast_isa().c_str());
    opts_.precision = Precision::fp32;
  }
  PassOptions po;
  po.disabled = opts_.disabled_passes;
  // Moving a scale before a Transpose renames the Transpose's output: an observer asking
  // for it (calibrate's `follow:Transpose` sites) would no longer find it.
  if (!opts_.keep_values.empty()) po.disabled.insert("move_scale_before_transpose");
  po.verbose = opts_.verbose;
  int64_t opset = graph_.opset();
  po.eval = [opset](const Node& n, const std::vector<const Tensor*>& in) { return eval_node(n, opset, in); };
  run_passes(graph_, po);
}

std::vector<std::string> Session::set_weight_element(const std::string& name, int64_t index, float value) {
  std::vector<std::string> touched;
  auto poke = [&](const std::string& init, float v) {
    Tensor& t = graph_.initializers.at(init);
    if (t.dtype() != DType::f32 || index < 0 || index >= t.numel())
      fail(ErrorCode::invalid_input, "weight '{}' has no float32 element {} (it holds {} {})", name, index, t.numel(),
           dtype_name(t.dtype()));
    t.data<float>()[index] = v;
    touched.push_back(init);
  };
  if (read_initializers_.empty())
    for (const auto& n : graph_.nodes) read_initializers_.insert(n.inputs.begin(), n.inputs.end());
  if (graph_.initializers.count(name) && read_initializers_.count(name)) poke(name, value);
  for (const auto& kv : graph_.derived_weights) {
    const DerivedWeight& d = kv.second;
    if (d.source != name || !graph_.initializers.count(kv.first)) continue;
    // The same expression as the pass: float source times the double scale, rounded once.
    double scale = d.scale[(size_t)((index / d.inner) % (int64_t)d.scale.size())];
    poke(kv.first, (float)(value * scale));
  }
  if (touched.empty())
    fail(ErrorCode::invalid_input, "weight '{}' is not a float32 parameter the compiled model reads", name);
  for (auto& p : plans_)
    for (const auto& t : touched) p.second->refresh_constant(t);
  return touched;
}

Session Session::load(const std::string& path, SessionOptions o) { return Session(load_onnx(path), std::move(o)); }

std::vector<Shape> Session::default_input_shapes(int64_t dynamic_dim) const {
  std::vector<Shape> r;
  for (const auto& in : graph_.inputs) {
    if (!in.has_shape)
      fail(ErrorCode::invalid_model, "graph input '{}' has no declared shape; give an input tensor", in.name);
    Shape s = in.shape;
    for (auto& d : s)
      if (d < 0) d = dynamic_dim;
    r.push_back(s);
  }
  return r;
}

void Session::check_input(size_t i, const Tensor& t) const {
  const ValueInfo& vi = graph_.inputs.at(i);
  if (t.dtype() != vi.dtype)
    fail(ErrorCode::invalid_input, "input '{}': expected {}, got {}", vi.name, dtype_name(vi.dtype), dtype_name(t.dtype()));
  if (!vi.has_shape) return;
  bool ok = t.shape().size() == vi.shape.size();
  for (size_t d = 0; ok && d < vi.shape.size(); d++) ok = vi.shape[d] < 0 || vi.shape[d] == t.shape()[d];
  if (!ok)
    fail(ErrorCode::invalid_input, "input '{}': expected shape {}, got {}", vi.name, vi.shape_text(),
         shape_str(t.shape()));
}

std::vector<Tensor> Session::order_inputs(const std::map<std::string, Tensor>& named) const {
  for (const auto& kv : named)
    if (!graph_.input_info(kv.first)) {
      std::string names;
      for (const auto& in : graph_.inputs) names += (names.empty() ? "" : ", ") + in.name;
      fail(ErrorCode::invalid_input, "unknown input '{}'; the model's inputs are: {}", kv.first, names);
    }
  std::vector<Tensor> r;
  for (const auto& in : graph_.inputs) {
    auto it = named.find(in.name);
    if (it == named.end()) fail(ErrorCode::invalid_input, "missing input '{}'", in.name);
    r.push_back(it->second);
  }
  return r;
}

namespace {

// Compiles a plan. Where the layout of its 1x1 convolutions is a real choice
// (SessionOptions::autotune_layout), times it on zeroed inputs, drops it, compiles and
// times the other layout, and keeps the faster (compiling the first again if it won).
// One plan at a time: with both resident, densenet121's peak memory held a second
// copy of its activations and of half its weights, 46 MB.
std::unique_ptr<Plan> compile_plan(const Graph& g, const std::vector<Shape>& shapes, const SessionOptions& o) {
  auto plan = std::make_unique<Plan>(g, shapes, o);
  if (!o.autotune_layout || o.blocked_1x1 || !plan->has_layout_choice()) return plan;
  int64_t a = plan->fastest_zero_run(6);
  SessionOptions again = o;  // if it wins, compiled again without timing its threads anew
  again.single_thread_below = plan->single_thread_below();
  plan.reset();
  SessionOptions ob = o;
  ob.blocked_1x1 = true;
  auto blocked = std::make_unique<Plan>(g, shapes, ob);
  int64_t b = blocked->fastest_zero_run(6);
  if (o.verbose)
    std::fprintf(stderr, "layout autotune: 1x1 convolutions as oneDNN picks %.3f ms, nChw16c %.3f ms\n", a / 1e6,
                 b / 1e6);
  // Only a clear win changes oneDNN's own choice: zeroed inputs are a proxy for real ones.
  if (b < a * 0.98) return blocked;
  blocked.reset();
  return std::make_unique<Plan>(g, shapes, again);
}

}  // namespace

Plan& Session::plan(const std::vector<Shape>& shapes) {
  for (auto it = plans_.begin(); it != plans_.end(); ++it)
    if (it->first == shapes) {
      if (it != plans_.begin()) plans_.splice(plans_.begin(), plans_, it);
      return *plans_.front().second;
    }
  plans_.emplace_front(shapes, compile_plan(graph_, shapes, opts_));
  if (plans_.size() > kMaxCachedPlans) plans_.pop_back();
  return *plans_.front().second;
}

std::unique_ptr<Plan> Session::new_plan(const std::vector<Shape>& shapes, int threads) const {
  SessionOptions o = opts_;
  if (threads > 0) o.threads = threads;
  return compile_plan(graph_, shapes, o);
}

std::vector<Tensor> Session::run(const std::vector<Tensor>& inputs) {
  if (inputs.size() != graph_.inputs.size())
    fail(ErrorCode::invalid_input, "the model takes {} inputs, got {}", graph_.inputs.size(), inputs.size());
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); i++) {
    check_input(i, inputs[i]);
    shapes.push_back(inputs[i].shape());
  }
  return plan(shapes).run(inputs);
}

std::vector<Tensor> Session::run(const std::map<std::string, Tensor>& inputs) { return run(order_inputs(inputs)); }

}  // namespace rg

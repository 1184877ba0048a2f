// A per-output-channel affine map after a Conv or Gemm folds into that layer's weights and
// bias: W'[m] = W[m] * s[m], B'[m] = B[m] * s[m] + t[m]. Two passes use it:
//  - fold_batchnorm: BatchNormalization, s = gamma / sqrt(var + eps), t = beta - mean * s;
//  - fold_scale_shift: Mul, Add, Sub or Div by a constant that is a scalar or varies only
//    along the channels (a decomposed BN, a bias or scale kept apart by the exporter).
//    Left standalone, such an op is a whole pass over the layer's output.
// Scales are computed in double and each weight is rounded once from the model file's
// value, however many folds stack, so fault injection can re-derive it (DerivedWeight).
#include <cmath>

#include "passes/passes.h"

namespace rg {
namespace {

const Tensor* f32_init(const Graph& g, const std::string& name, int64_t numel) {
  const Tensor* t = g.initializer(name);
  if (!t || t->dtype() != DType::f32 || (numel >= 0 && t->numel() != numel)) return nullptr;
  return t;
}

struct Affine {
  std::vector<double> scale, shift;  // y = x * scale + shift, per channel
};

bool bn_affine(const Graph& g, const Node& bn, int64_t channels, Affine& p) {
  if (bn.op_type != "BatchNormalization" || bn.inputs.size() < 5 || bn.attr_i("spatial", 1) != 1) return false;
  for (size_t i = 1; i < bn.outputs.size(); i++)
    if (!bn.outputs[i].empty()) return false;  // training-mode outputs requested
  const Tensor* gamma = f32_init(g, bn.inputs[1], channels);
  const Tensor* beta = f32_init(g, bn.inputs[2], channels);
  const Tensor* mean = f32_init(g, bn.inputs[3], channels);
  const Tensor* var = f32_init(g, bn.inputs[4], channels);
  if (!gamma || !beta || !mean || !var) return false;
  double eps = bn.attr_f("epsilon", 1e-5f);
  p.scale.resize(channels);
  p.shift.resize(channels);
  for (int64_t c = 0; c < channels; c++) {
    double s = gamma->data<float>()[c] / std::sqrt((double)var->data<float>()[c] + eps);
    p.scale[c] = s;
    p.shift[c] = beta->data<float>()[c] - mean->data<float>()[c] * s;
  }
  return true;
}

// `n` combines the layer's output `y` (rank `rank`, channels along `axis`) with a constant
// that broadcasts as a scalar or per channel, and leaves y's shape as it is.
bool const_affine(const Graph& g, const Node& n, const std::string& y, int64_t channels, int rank, int axis,
                  Affine& p) {
  const std::string& op = n.op_type;
  if ((op != "Mul" && op != "Add" && op != "Sub" && op != "Div") || n.inputs.size() != 2 || n.inputs[0] == n.inputs[1])
    return false;
  int yi = n.inputs[0] == y ? 0 : n.inputs[1] == y ? 1 : -1;
  if (yi < 0 || (op == "Div" && yi != 0)) return false;
  const Tensor* k = f32_init(g, n.inputs[1 - yi], -1);
  if (!k || k->rank() > rank) return false;
  if (k->numel() != 1) {
    int off = rank - k->rank();  // right-aligned broadcast
    for (int d = 0; d < k->rank(); d++)
      if (k->dim(d) != (off + d == axis ? channels : 1)) return false;
  }
  p.scale.assign(channels, 1.0);
  p.shift.assign(channels, 0.0);
  for (int64_t c = 0; c < channels; c++) {
    double v = k->data<float>()[k->numel() == 1 ? 0 : c];
    if (op == "Mul") p.scale[c] = v;
    else if (op == "Add") p.shift[c] = v;
    else if (op == "Sub" && yi == 0) p.shift[c] = -v;
    else if (op == "Sub") p.scale[c] = -1, p.shift[c] = v;  // v - y
    else if (v != 0 && std::isfinite(v)) p.scale[c] = 1.0 / v;
    else return false;
  }
  return true;
}

// Scales `layer`'s weight input per channel (element i's channel is (i / inner) % channels)
// into a new initializer, starting from the model file's weight when an earlier fold
// already derived this one.
bool scale_weight(Graph& g, Node& layer, const std::vector<double>& scale, int64_t inner) {
  bool identity = true;
  for (double s : scale) identity = identity && s == 1.0;
  if (identity) return true;
  const std::string& name = layer.inputs[1];
  DerivedWeight d{name, scale, inner};
  auto prev = g.derived_weights.find(name);
  if (prev != g.derived_weights.end()) {
    if (prev->second.inner != inner || prev->second.scale.size() != scale.size()) return false;
    d.source = prev->second.source;
    for (size_t c = 0; c < scale.size(); c++) d.scale[c] *= prev->second.scale[c];
  }
  const Tensor* src = f32_init(g, d.source, g.initializer(name)->numel());
  if (!src) return false;
  Tensor nw = src->clone();
  if (prev != g.derived_weights.end()) {  // an earlier fold made it for this layer alone
    g.initializers.erase(name);
    g.derived_weights.erase(prev);
  }
  float* v = nw.data<float>();
  for (int64_t i = 0; i < nw.numel(); i++) v[i] = (float)(v[i] * d.scale[(size_t)((i / inner) % (int64_t)scale.size())]);
  std::string wn = g.unique_name(d.source + "_folded");
  g.initializers[wn] = std::move(nw);
  g.derived_weights[wn] = std::move(d);
  layer.inputs[1] = wn;
  return true;
}

// The bias after the fold: B * s + t, where B is `scale_of_b * b[channel]` (0 without one).
void set_bias(Graph& g, Node& layer, const Node& follower, const Tensor* b, double scale_of_b, const Affine& p) {
  int64_t m = (int64_t)p.scale.size();
  Tensor nb(DType::f32, {m});
  for (int64_t c = 0; c < m; c++) {
    double bias = b ? scale_of_b * b->data<float>()[b->numel() == 1 ? 0 : c] : 0.0;
    nb.data<float>()[c] = (float)(bias * p.scale[c] + p.shift[c]);
  }
  std::string bn = g.unique_name((follower.name.empty() ? follower.outputs[0] : follower.name) + "_bias");
  g.initializers[bn] = std::move(nb);
  if (layer.inputs.size() < 3) layer.inputs.resize(3);
  layer.inputs[2] = bn;
}

// The follower's affine map for a layer with `m` channels along `axis` of a rank-`rank` output.
using AffineOf = bool (*)(const Graph&, const Node& follower, const std::string& y, int64_t m, int rank,
                          int axis, Affine&);

// Conv: weight [M, C/g, k...], optional bias [M]; output [N, M, ...].
bool fold_into_conv(Graph& g, Node& conv, const Node& f, AffineOf affine_of) {
  const Tensor* w = f32_init(g, conv.inputs[1], -1);
  if (!w || w->rank() < 3) return false;
  int64_t m = w->dim(0);
  const Tensor* b = conv.has_input(2) ? f32_init(g, conv.inputs[2], m) : nullptr;
  if (conv.has_input(2) && !b) return false;
  Affine p;
  if (!affine_of(g, f, conv.outputs[0], m, w->rank(), 1, p)) return false;
  if (!scale_weight(g, conv, p.scale, w->numel() / m)) return false;
  set_bias(g, conv, f, b, 1.0, p);
  return true;
}

// Gemm: Y = alpha * A' B' + beta * C with output [N, M].
bool fold_into_gemm(Graph& g, Node& gemm, const Node& f, AffineOf affine_of) {
  const Tensor* w = f32_init(g, gemm.inputs[1], -1);
  if (!w || w->rank() != 2) return false;
  bool trans_b = gemm.attr_i("transB", 0) != 0;
  int64_t m = trans_b ? w->dim(0) : w->dim(1);
  const Tensor* c = gemm.has_input(2) ? f32_init(g, gemm.inputs[2], -1) : nullptr;
  if (gemm.has_input(2) && (!c || !(c->numel() == 1 || (c->numel() == m && c->dim(-1) == m))))
    return false;  // a bias that varies per row cannot be folded per channel
  Affine p;
  if (!affine_of(g, f, gemm.outputs[0], m, 2, 1, p)) return false;
  if (!scale_weight(g, gemm, p.scale, trans_b ? w->dim(1) : 1)) return false;
  set_bias(g, gemm, f, c, gemm.attr_f("beta", 1.f), p);
  gemm.attrs["beta"] = Attribute::of_float(1.f);
  return true;
}

// Folds every node `affine_of` accepts into the Conv or Gemm before it, where that layer's
// output feeds nothing else. Chains fold in one sweep.
int fold_followers(Graph& g, AffineOf affine_of) {
  int changes = 0;
  auto producers = g.producers();
  auto consumers = g.consumers();
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); i++) {
    Node& f = g.nodes[i];
    if (!f.domain.empty() || f.inputs.empty() || f.outputs.empty()) continue;
    for (const std::string& mid : f.inputs) {
      auto it = producers.find(mid);
      if (it == producers.end()) continue;
      Node& prev = g.nodes[it->second];
      if (prev.outputs.size() != 1 || consumers[mid].size() != 1 || g.is_graph_output(mid)) continue;
      if (!prev.domain.empty() || prev.inputs.size() < 2) continue;
      bool done = false;
      if (prev.op_type == "Conv") done = fold_into_conv(g, prev, f, affine_of);
      else if (prev.op_type == "Gemm") done = fold_into_gemm(g, prev, f, affine_of);
      if (!done) continue;
      prev.outputs[0] = f.outputs[0];  // the layer now produces what the follower produced
      g.folded_values[mid] = f.outputs[0];
      producers[f.outputs[0]] = it->second;
      drop[i] = true;
      changes++;
      break;
    }
  }
  if (changes) {
    std::vector<Node> kept;
    for (size_t i = 0; i < g.nodes.size(); i++)
      if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(kept);
  }
  return changes;
}

}  // namespace

int fold_batchnorm(Graph& g) {
  return fold_followers(g, [](const Graph& g, const Node& f, const std::string& y, int64_t m, int, int,
                                    Affine& p) { return f.inputs[0] == y && bn_affine(g, f, m, p); });
}

int fold_scale_shift(Graph& g) { return fold_followers(g, const_affine); }

}  // namespace rg

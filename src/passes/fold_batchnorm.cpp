// BatchNormalization after a Conv or Gemm is an affine map per output channel, so it folds
// into that layer's weights and bias: W'[m] = W[m] * s[m], B'[m] = (B[m] - mean[m]) * s[m] + beta[m]
// with s = gamma / sqrt(var + eps). The result is computed in double so the fold itself
// adds no error beyond float32 rounding of the final values.
#include <cmath>

#include "passes/passes.h"

namespace rg {
namespace {

const Tensor* f32_init(const Graph& g, const std::string& name, int64_t numel) {
  const Tensor* t = g.initializer(name);
  if (!t || t->dtype() != DType::f32 || (numel >= 0 && t->numel() != numel)) return nullptr;
  return t;
}

struct BnParams {
  std::vector<double> scale, shift;  // y = x * scale + shift
};

bool bn_params(const Graph& g, const Node& bn, int64_t channels, BnParams& p) {
  if (bn.inputs.size() < 5 || bn.attr_i("spatial", 1) != 1) return false;
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

// Folds into Conv: weight [M, C/g, k...], optional bias [M].
bool fold_into_conv(Graph& g, Node& conv, const Node& bn) {
  const Tensor* w = f32_init(g, conv.inputs[1], -1);
  if (!w || w->rank() < 3) return false;
  int64_t m = w->dim(0);
  const Tensor* b = conv.has_input(2) ? f32_init(g, conv.inputs[2], m) : nullptr;
  if (conv.has_input(2) && !b) return false;
  BnParams p;
  if (!bn_params(g, bn, m, p)) return false;
  Tensor nw = w->clone(), nb(DType::f32, {m});
  int64_t per = w->numel() / m;
  for (int64_t c = 0; c < m; c++) {
    float* row = nw.data<float>() + c * per;
    for (int64_t k = 0; k < per; k++) row[k] = (float)(row[k] * p.scale[c]);
    double bias = b ? b->data<float>()[c] : 0.0;
    nb.data<float>()[c] = (float)(bias * p.scale[c] + p.shift[c]);
  }
  std::string wn = g.unique_name(conv.inputs[1] + "_bnfold"), bnn = g.unique_name(bn.name + "_bias");
  g.initializers[wn] = std::move(nw);
  g.initializers[bnn] = std::move(nb);
  g.derived_weights[wn] = {conv.inputs[1], p.scale, per};
  conv.inputs[1] = wn;
  if (conv.inputs.size() < 3) conv.inputs.resize(3);
  conv.inputs[2] = bnn;
  return true;
}

// Folds into Gemm: Y = alpha * A' B' + beta * C with output [N, M].
bool fold_into_gemm(Graph& g, Node& gemm, const Node& bn) {
  const Tensor* w = f32_init(g, gemm.inputs[1], -1);
  if (!w || w->rank() != 2) return false;
  bool trans_b = gemm.attr_i("transB", 0) != 0;
  int64_t m = trans_b ? w->dim(0) : w->dim(1);
  const Tensor* c = gemm.has_input(2) ? f32_init(g, gemm.inputs[2], -1) : nullptr;
  if (gemm.has_input(2) && (!c || !(c->numel() == 1 || (c->numel() == m && c->dim(-1) == m))))
    return false;  // a bias that varies per row cannot be folded per channel
  BnParams p;
  if (!bn_params(g, bn, m, p)) return false;
  double beta = gemm.attr_f("beta", 1.f);
  Tensor nw = w->clone(), nc(DType::f32, {m});
  for (int64_t r = 0; r < w->dim(0); r++)
    for (int64_t col = 0; col < w->dim(1); col++) {
      int64_t ch = trans_b ? r : col;
      float& v = nw.data<float>()[r * w->dim(1) + col];
      v = (float)(v * p.scale[ch]);
    }
  for (int64_t ch = 0; ch < m; ch++) {
    double bias = c ? beta * c->data<float>()[c->numel() == 1 ? 0 : ch] : 0.0;
    nc.data<float>()[ch] = (float)(bias * p.scale[ch] + p.shift[ch]);
  }
  std::string wn = g.unique_name(gemm.inputs[1] + "_bnfold"), cn = g.unique_name(bn.name + "_bias");
  g.initializers[wn] = std::move(nw);
  g.initializers[cn] = std::move(nc);
  g.derived_weights[wn] = {gemm.inputs[1], p.scale, trans_b ? w->dim(1) : 1};
  gemm.inputs[1] = wn;
  if (gemm.inputs.size() < 3) gemm.inputs.resize(3);
  gemm.inputs[2] = cn;
  gemm.attrs["beta"] = Attribute::of_float(1.f);
  return true;
}

}  // namespace

int fold_batchnorm(Graph& g) {
  int changes = 0;
  auto producers = g.producers();
  auto consumers = g.consumers();
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); i++) {
    Node& bn = g.nodes[i];
    if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || !bn.has_input(0)) continue;
    auto it = producers.find(bn.inputs[0]);
    if (it == producers.end()) continue;
    Node& prev = g.nodes[it->second];
    const std::string& mid = bn.inputs[0];
    if (prev.outputs.size() != 1 || consumers[mid].size() != 1 || g.is_graph_output(mid)) continue;
    if (!prev.domain.empty() || prev.inputs.size() < 2) continue;
    bool done = false;
    if (prev.op_type == "Conv") done = fold_into_conv(g, prev, bn);
    else if (prev.op_type == "Gemm") done = fold_into_gemm(g, prev, bn);
    if (!done) continue;
    // The layer now produces what the BN produced.
    prev.outputs[0] = bn.outputs[0];
    drop[i] = true;
    changes++;
  }
  if (changes) {
    std::vector<Node> kept;
    for (size_t i = 0; i < g.nodes.size(); i++)
      if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(kept);
  }
  return changes;
}

}  // namespace rg

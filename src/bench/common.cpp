#include "bench/common.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace rg {

std::vector<ProfileRow> profile_rows(const Plan& p) {
  std::vector<ProfileRow> rows;
  double runs = (double)std::max<int64_t>(p.profiled_runs(), 1);
  for (size_t i = 0; i < p.steps().size(); i++) {
    const Step& st = p.steps()[i];
    ProfileRow r;
    r.node = st.node ? st.node->name : "(layout conversion)";
    r.op = st.node ? st.node->op_type : "Reorder";
    for (const Node* f : st.fused) r.op += "+" + f->op_type;
    r.impl = st.fast ? st.fast->impl() : "ref";
    r.ms_per_run = (double)p.step_ns()[i] / 1e6 / runs;
    rows.push_back(r);
  }
  return rows;
}

std::vector<Tensor> random_inputs(const Graph& g, const std::vector<Shape>& shapes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Tensor> r;
  for (size_t i = 0; i < shapes.size(); i++) {
    Tensor t(g.inputs[i].dtype, shapes[i]);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    switch (t.dtype()) {
      case DType::f32: for (int64_t k = 0; k < t.numel(); k++) t.data<float>()[k] = u(rng); break;
      case DType::i64: for (int64_t k = 0; k < t.numel(); k++) t.data<int64_t>()[k] = (int64_t)(rng() % 2); break;
      case DType::i32: for (int64_t k = 0; k < t.numel(); k++) t.data<int32_t>()[k] = (int32_t)(rng() % 2); break;
      default: std::memset(t.raw(), 0, t.nbytes());
    }
    r.push_back(t);
  }
  return r;
}

}  // namespace rg

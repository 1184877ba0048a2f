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

std::vector<Shape> bench_input_shapes(const Graph& g, int64_t batch, const Dataset* data) {
  if (data && g.inputs.size() != 1) fail(ErrorCode::invalid_input, "--data feeds one input; this model has {}", g.inputs.size());
  std::vector<Shape> shapes;
  for (const auto& in : g.inputs) {
    if (!in.has_shape) fail(ErrorCode::invalid_model, "input '{}' has no declared shape to benchmark with", in.name);
    Shape s = in.shape;
    if (data) {
      if (s.empty()) fail(ErrorCode::invalid_input, "input '{}' has no batch dim to feed --data samples into", in.name);
      Shape per = fit_sample_shape(*data, in.name, Shape(s.begin() + 1, s.end()), in.dtype);
      s.resize(1);
      s.insert(s.end(), per.begin(), per.end());
    }
    bool first = true;
    for (auto& d : s)
      if (d < 0) {
        d = first ? batch : 1;
        first = false;
      }
    shapes.push_back(s);
  }
  int64_t b = shapes_batch(shapes);
  if (data && data->size() < b)
    fail(ErrorCode::invalid_input, "{} has {} samples, fewer than a batch of {}", data->describe(), data->size(), b);
  return shapes;
}

int64_t shapes_batch(const std::vector<Shape>& shapes) {
  return shapes.empty() || shapes[0].empty() ? 1 : std::max<int64_t>(1, shapes[0][0]);
}

std::vector<std::vector<Tensor>> input_batches(const Graph& g, const std::vector<Shape>& shapes, const Dataset* data,
                                               uint64_t seed) {
  size_t batch_bytes = 0;
  for (size_t i = 0; i < shapes.size(); i++) batch_bytes += (size_t)shape_numel(shapes[i]) * dtype_size(g.inputs[i].dtype);
  const int64_t fit = (int64_t)((64u << 20) / std::max<size_t>(batch_bytes, 1));
  std::vector<std::vector<Tensor>> pool;
  if (data) {
    int64_t batch = shapes_batch(shapes);
    int64_t n = std::max<int64_t>(1, std::min((data->size() + batch - 1) / batch, fit));
    for (int64_t b = 0; b < n; b++) {
      Tensor t(g.inputs[0].dtype, shapes[0]);
      data->read(std::min(b * batch, data->size() - batch), batch, t);
      pool.push_back({t});
    }
  } else {
    int64_t n = std::max<int64_t>(1, std::min<int64_t>(8, fit));
    for (int64_t k = 0; k < n; k++) pool.push_back(random_inputs(g, shapes, seed + (uint64_t)k));
  }
  return pool;
}

}  // namespace rg

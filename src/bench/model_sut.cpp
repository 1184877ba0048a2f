#include "bench/model_sut.h"

#include <algorithm>
#include <numeric>
#include <thread>

namespace rg {

const char* timing_name(Timing t) { return t == Timing::inference ? "inference" : "pipeline"; }

std::string timing_start_point(Timing t) {
  return t == Timing::inference ? "input tensors in memory, before binding them to the plan"
                                : "before reading the sample from the data set";
}

std::string timing_stop_point(Timing t) {
  return t == Timing::inference ? "output tensors ready (execution returned)"
                                : "after preprocessing, inference and top-k of output 0";
}

ModelSut::ModelSut(const Session& session, const ModelSutOptions& o) : session_(session), o_(o) {
  if (o.streams < 1) fail(ErrorCode::invalid_input, "--streams must be at least 1, got {}", o.streams);
  if (o.threads < 0) fail(ErrorCode::invalid_input, "--threads must be >= 0, got {}", o.threads);
  if (o.batch < 1) fail(ErrorCode::invalid_input, "--batch must be at least 1, got {}", o.batch);
  if (o.timing == Timing::pipeline && !o.data) fail(ErrorCode::invalid_input, "--timing pipeline needs --data");
  const Graph& g = session.graph();
  int cores = (int)std::thread::hardware_concurrency();
  threads_ = o.threads > 0 ? o.threads : std::max(1, cores / o.streams);
  if (o.data && g.inputs.size() != 1)
    fail(ErrorCode::invalid_input, "--data feeds one input; this model has {}", g.inputs.size());
  // The batch goes into the first dynamic dim of each input, other dynamic dims become 1.
  for (const auto& in : g.inputs) {
    if (!in.has_shape) fail(ErrorCode::invalid_model, "input '{}' has no declared shape to benchmark with", in.name);
    Shape s = in.shape;
    if (o.data) {
      if (s.empty()) fail(ErrorCode::invalid_input, "input '{}' has no batch dim to feed --data samples into", in.name);
      Shape per = fit_sample_shape(*o.data, in.name, Shape(s.begin() + 1, s.end()), in.dtype);
      s.resize(1);
      s.insert(s.end(), per.begin(), per.end());
    }
    bool first = true;
    for (auto& d : s)
      if (d < 0) {
        d = first ? o.batch : 1;
        first = false;
      }
    shapes_.push_back(s);
  }
  batch_ = shapes_.empty() || shapes_[0].empty() ? 1 : std::max<int64_t>(1, shapes_[0][0]);
  if (o.data && o.data->size() < batch_)
    fail(ErrorCode::invalid_input, "{} has {} samples, fewer than a batch of {}", o.data->describe(), o.data->size(), batch_);
  for (int k = 0; k < o.streams; k++) plans_.push_back(session.new_plan(shapes_, threads_));
  if (o.profile) plans_[0]->set_profiling(true);

  size_t batch_bytes = 0;
  for (size_t i = 0; i < shapes_.size(); i++) batch_bytes += (size_t)shape_numel(shapes_[i]) * dtype_size(g.inputs[i].dtype);
  const size_t cap = 64u << 20;
  if (o.timing == Timing::pipeline) {
    for (int k = 0; k < o.streams; k++) staging_.push_back({Tensor(g.inputs[0].dtype, shapes_[0])});
    order_.resize((size_t)o.streams);
    topk_.resize((size_t)o.streams);
  } else if (o.data) {
    int64_t batches = (o.data->size() + batch_ - 1) / batch_;
    batches = std::max<int64_t>(1, std::min<int64_t>(batches, (int64_t)(cap / std::max<size_t>(batch_bytes, 1))));
    for (int64_t b = 0; b < batches; b++) {
      Tensor t(g.inputs[0].dtype, shapes_[0]);
      o.data->read(std::min(b * batch_, o.data->size() - batch_), batch_, t);
      pool_.push_back({t});
    }
  } else {
    int64_t n = std::max<int64_t>(1, std::min<int64_t>(8, (int64_t)(cap / std::max<size_t>(batch_bytes, 1))));
    for (int64_t k = 0; k < n; k++) pool_.push_back(random_inputs(g, shapes_, o.seed + (uint64_t)k));
  }
}

void ModelSut::execute_one(int w, int64_t index) {
  Plan& p = *plans_[(size_t)w];
  if (o_.timing == Timing::inference) {
    p.execute(pool_[(size_t)(index % (int64_t)pool_.size())]);
    return;
  }
  std::vector<Tensor>& in = staging_[(size_t)w];
  int64_t span = o_.data->size() - batch_ + 1;
  o_.data->read((index * batch_) % span, batch_, in[0]);
  p.execute(in);
  // Top-k of each row of output 0 (a classifier's post-processing).
  const Tensor& out = p.output(0);
  if (out.dtype() != DType::f32 || out.rank() < 1 || out.numel() == 0) return;
  int64_t rows = out.dim(0), cols = out.numel() / std::max<int64_t>(rows, 1);
  int64_t k = std::min(o_.top_k, cols);
  auto& order = order_[(size_t)w];
  auto& top = topk_[(size_t)w];
  order.resize((size_t)cols);
  top.resize((size_t)(rows * k));
  const float* x = out.data<float>();
  for (int64_t r = 0; r < rows; r++, x += cols) {
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [x](int64_t a, int64_t b) { return x[a] > x[b]; });
    std::copy(order.begin(), order.begin() + k, top.begin() + r * k);
  }
}

void ModelSut::run_query(int w, int64_t query, int64_t samples) {
  int64_t runs = (samples + batch_ - 1) / batch_;
  for (int64_t e = 0; e < runs; e++) execute_one(w, query * runs + e);
}

size_t ModelSut::activation_bytes() const { return plans_[0]->activation_bytes() + plans_[0]->scratch_bytes(); }

std::vector<ProfileRow> ModelSut::profile() const { return profile_rows(*plans_[0]); }

void ModelSut::reset_profile() {
  if (o_.profile) {
    plans_[0]->set_profiling(false);
    plans_[0]->set_profiling(true);
  }
}

}  // namespace rg

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
  shapes_ = bench_input_shapes(g, o.batch, o.data);
  batch_ = shapes_batch(shapes_);
  for (int k = 0; k < o.streams; k++) plans_.push_back(session.new_plan(shapes_, threads_));
  if (o.profile) plans_[0]->set_profiling(true);

  if (o.timing == Timing::pipeline) {
    for (int k = 0; k < o.streams; k++) staging_.push_back({Tensor(g.inputs[0].dtype, shapes_[0])});
    order_.resize((size_t)o.streams);
    topk_.resize((size_t)o.streams);
  } else {
    pool_ = input_batches(g, shapes_, o.data, o.seed);
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

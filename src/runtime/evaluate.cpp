#include "runtime/evaluate.h"

#include <chrono>
#include <cmath>
#include <cstring>

namespace rg {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Number of classes in a [batch, ...] score tensor, where at most one dim after the
// batch may exceed 1 ([N, 10] and [N, 10, 1, 1] both give 10).
int64_t score_classes(const Tensor& out, int64_t batch, const std::string& name) {
  int64_t classes = 1, big = 0;
  for (int i = 1; i < out.rank(); i++) {
    classes *= out.dim(i);
    big += out.dim(i) > 1;
  }
  if (out.rank() < 2 || out.dim(0) != batch || big > 1 || classes < 1)
    fail(ErrorCode::invalid_input, "output '{}' has shape {}; accuracy needs class scores of shape [{}, classes]", name,
         shape_str(out.shape()), batch);
  return classes;
}

void check_labels(const std::vector<int64_t>& labels, int64_t classes, const Dataset& d) {
  for (size_t i = 0; i < labels.size(); i++)
    if (labels[i] < 0 || labels[i] >= classes)
      fail(ErrorCode::invalid_input, "label {} of sample {} in {} is outside [0, {}) (the model has {} classes)",
           labels[i], i, d.describe(), classes, classes);
}

}  // namespace

void EvalOptions::validate() const {
  if (batch < 1) fail(ErrorCode::invalid_input, "--batch must be at least 1 (got {})", batch);
  if (top_k < 1) fail(ErrorCode::invalid_input, "--top-k must be at least 1 (got {})", top_k);
}

EvalResult evaluate_accuracy(Session& session, const Dataset& data, const EvalOptions& opt) {
  opt.validate();
  const Graph& g = session.graph();
  if (g.inputs.size() != 1) {
    std::string names;
    for (const auto& in : g.inputs) names += (names.empty() ? "" : ", ") + in.name;
    fail(ErrorCode::invalid_input, "accuracy needs a model with exactly one input; this one has {} ({})",
         g.inputs.size(), names);
  }
  if (g.outputs.empty()) fail(ErrorCode::invalid_model, "the model has no outputs");
  const ValueInfo& in = g.inputs[0];
  if (!in.has_shape || in.shape.empty())
    fail(ErrorCode::invalid_input, "model input '{}' declares no batch dimension (shape {}); accuracy needs [batch, ...]",
         in.name, in.has_shape ? in.shape_text() : "unknown");
  Shape per_sample = fit_sample_shape(data, in.name, Shape(in.shape.begin() + 1, in.shape.end()), in.dtype);

  const std::vector<int64_t>& labels = data.labels();
  int64_t n = data.size();
  if (n == 0) fail(ErrorCode::invalid_input, "{} has no samples to evaluate", data.describe());
  if (labels.empty()) fail(ErrorCode::invalid_input, "{} has no labels; give --labels", data.describe());
  RG_ASSERT((int64_t)labels.size() == n);

  EvalResult r;
  r.samples = n;
  bool fixed = in.shape[0] >= 0;
  r.batch = fixed ? in.shape[0] : std::min(opt.batch, n);
  if (r.batch < 1) fail(ErrorCode::invalid_input, "model input '{}' has a batch dim of 0", in.name);
  Shape full{r.batch};
  full.insert(full.end(), per_sample.begin(), per_sample.end());
  Tensor x(in.dtype, full);
  size_t sample_bytes = (size_t)shape_numel(per_sample) * dtype_size(in.dtype);
  std::vector<float> scores;

  auto t0 = Clock::now();
  for (int64_t first = 0; first < n; first += r.batch) {
    int64_t count = std::min(r.batch, n - first);
    Shape part = full;
    part[0] = count;
    // A view of the first `count` rows: a dynamic batch runs it at that size, a fixed
    // batch runs all of `x`, its rows past `count` zeroed (their scores are ignored).
    Tensor view = Tensor::wrap(in.dtype, part, x.raw());
    data.read(first, count, view);
    if (fixed && count < r.batch)
      std::memset(static_cast<char*>(x.raw()) + count * sample_bytes, 0, (size_t)(r.batch - count) * sample_bytes);
    auto t1 = Clock::now();
    std::vector<Tensor> outs = session.run({fixed ? x : view});
    r.inference_seconds += since(t1);

    const Tensor& out = outs.at(0);
    int64_t classes = score_classes(out, fixed ? r.batch : count, g.outputs[0].name);
    if (first == 0) {
      r.classes = classes;
      r.k = std::min(opt.top_k, classes);
      r.class_samples.assign((size_t)classes, 0);
      r.class_correct.assign((size_t)classes, 0);
      r.confusion.assign((size_t)classes, std::vector<int64_t>((size_t)classes, 0));
      check_labels(labels, classes, data);  // before any more work is spent
    } else if (classes != r.classes) {
      fail(ErrorCode::invalid_input, "output '{}' changed from {} to {} classes between batches", g.outputs[0].name,
           r.classes, classes);
    }
    const float* p;
    if (out.dtype() == DType::f32) {
      p = out.data<float>();
    } else {
      std::vector<double> d = out.to_doubles();
      scores.assign(d.begin(), d.end());
      p = scores.data();
    }
    for (int64_t i = 0; i < count; i++, p += classes) {
      int64_t label = labels[(size_t)(first + i)];
      // NaN scores (a fault-injected run produces them) rank below everything and never
      // count as a hit: plain comparisons would let a NaN row "match" label 0.
      auto score = [p](int64_t c) { return std::isnan(p[c]) ? -INFINITY : p[c]; };
      bool valid = !std::isnan(p[label]);
      int64_t best = 0, above = 0;  // argmax (first of ties); classes scoring above the label
      for (int64_t c = 1; c < classes; c++)
        if (score(c) > score(best)) best = c;
      for (int64_t c = 0; c < classes; c++) above += score(c) > p[label];
      bool hit = valid && best == label;
      r.top1_correct += hit;
      r.topk_correct += valid && above < r.k;  // ties with the label count in its favour
      r.class_samples[(size_t)label]++;
      r.class_correct[(size_t)label] += hit;
      r.confusion[(size_t)label][(size_t)best]++;
    }
    if (opt.progress) opt.progress(first + count, n);
  }
  r.seconds = since(t0);
  r.top1 = (double)r.top1_correct / n;
  r.topk = (double)r.topk_correct / n;
  r.throughput = r.seconds > 0 ? n / r.seconds : 0;
  return r;
}

}  // namespace rg

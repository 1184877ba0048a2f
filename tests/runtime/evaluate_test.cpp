// evaluate_accuracy: top-1/top-k counting (ties, NaN scores), confusion matrix, partial
// and fixed batches, and its input errors, on a model that passes scores straight through.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/evaluate.h"
#include "support/builder.h"

namespace rg::test {
namespace {

// Samples held in memory: each sample is one row of `data`.
class MemoryDataset : public Dataset {
 public:
  MemoryDataset(Tensor data, std::vector<int64_t> labels) : data_(std::move(data)), labels_(std::move(labels)) {
    shape_.assign(data_.shape().begin() + 1, data_.shape().end());
  }
  int64_t size() const override { return data_.dim(0); }
  const Shape& sample_shape() const override { return shape_; }
  DType dtype() const override { return data_.dtype(); }
  void read(int64_t first, int64_t count, Tensor& out) const override {
    check_read(*this, first, count, out);
    int64_t per = shape_numel(shape_);
    std::copy(data_.data<float>() + first * per, data_.data<float>() + (first + count) * per, out.data<float>());
  }
  std::string describe() const override { return "memory"; }
  const std::vector<int64_t>& labels() const override { return labels_; }

 private:
  Tensor data_;
  Shape shape_;
  std::vector<int64_t> labels_;
};

// scores -> Mul(scores, 1) -> out: the model's output is its input.
Graph passthrough(int64_t batch, int classes = 4) {
  GraphBuilder b;
  std::string x = b.input("scores", {batch, classes});
  b.output(b.node("Mul", {x, b.constant("one", Tensor::scalar<float>(1.f))}));
  return b.build();
}

const float kNaN = NAN;
MemoryDataset scores() {
  return MemoryDataset(Tensor::from_vector<float>({7, 4}, {0.1f, 0.9f, 0.0f, 0.0f,    // label 1: hit
                                                           0.5f, 0.2f, 0.3f, 0.0f,    // label 2: 2nd best
                                                           0.2f, 0.2f, 0.1f, 0.0f,    // label 1: tie, 1st wins
                                                           kNaN, 0.1f, 0.2f, 0.3f,    // label 0: NaN, miss
                                                           0.3f, kNaN, 0.2f, 0.1f,    // label 1: NaN, miss
                                                           kNaN, kNaN, kNaN, kNaN,    // label 0: all NaN
                                                           0.0f, 0.0f, 0.0f, 1.0f}),  // label 3: hit
                       {1, 2, 1, 0, 1, 0, 3});
}

void expect_counts(const EvalResult& r) {
  EXPECT_EQ(r.samples, 7);
  EXPECT_EQ(r.classes, 4);
  EXPECT_EQ(r.top1_correct, 2);
  EXPECT_EQ(r.topk_correct, 4);  // rows 0, 1, 2, 6
  EXPECT_DOUBLE_EQ(r.top1, 2.0 / 7);
  std::vector<std::vector<int64_t>> cm{{1, 0, 0, 1}, {2, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 1}};
  EXPECT_EQ(r.confusion, cm);
  EXPECT_EQ(r.class_samples, (std::vector<int64_t>{2, 3, 1, 1}));
  EXPECT_EQ(r.class_correct, (std::vector<int64_t>{0, 1, 0, 1}));
}

TEST(Evaluate, CountsTopKTiesAndNaNWithPartialBatches) {
  Session s(passthrough(-1));
  MemoryDataset d = scores();
  EvalOptions o;
  o.top_k = 2;
  int64_t calls = 0, last = 0;
  o.progress = [&](int64_t done, int64_t total) {
    calls++;
    last = done;
    EXPECT_EQ(total, 7);
  };
  for (int64_t batch : {1, 3, 7, 64}) {
    o.batch = batch;
    calls = 0;
    EvalResult r = evaluate_accuracy(s, d, o);
    expect_counts(r);
    EXPECT_EQ(r.k, 2);
    EXPECT_EQ(r.batch, std::min<int64_t>(batch, 7));
    EXPECT_EQ(calls, (7 + r.batch - 1) / r.batch);
    EXPECT_EQ(last, 7);
  }
  o.top_k = 10;  // clamped to the class count
  EXPECT_EQ(evaluate_accuracy(s, d, o).k, 4);
}

TEST(Evaluate, FixedBatchIsUsedAndPadded) {
  Session s(passthrough(2));
  EvalOptions o;
  o.batch = 64;
  o.top_k = 2;
  EvalResult r = evaluate_accuracy(s, scores(), o);
  EXPECT_EQ(r.batch, 2);
  expect_counts(r);
}

TEST(Evaluate, RejectsWhatItCannotScore) {
  Session s(passthrough(-1));
  auto expect_error = [](const std::function<void()>& f, const std::string& fragment) {
    try {
      f();
      ADD_FAILURE() << "expected rg::Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  Tensor t = Tensor::from_vector<float>({2, 4}, {1, 0, 0, 0, 0, 1, 0, 0});
  expect_error([&] { evaluate_accuracy(s, MemoryDataset(t, {0, 4})); }, "label 4 of sample 1");
  expect_error([&] { evaluate_accuracy(s, MemoryDataset(t, {})); }, "no labels");
  expect_error([&] { evaluate_accuracy(s, MemoryDataset(Tensor(DType::f32, {2, 5}), {0, 1})); }, "[5]");
  EvalOptions bad;
  bad.batch = 0;
  expect_error([&] { evaluate_accuracy(s, MemoryDataset(t, {0, 1}), bad); }, "--batch");

  GraphBuilder b;
  b.output(b.node("Add", {b.input("a", {-1, 4}), b.input("b", {-1, 4})}));
  Session two(b.build());
  expect_error([&] { evaluate_accuracy(two, MemoryDataset(t, {0, 1})); }, "exactly one input; this one has 2 (a, b)");
}

}  // namespace
}  // namespace rg::test

// Hand-computed cases for the data-movement reference kernels that the ONNX node tests do
// not cover: mixed Reshape specials, negative Slice steps on several axes at once, a small
// bilinear Resize worked out by hand, negative and out-of-range Gather indices, and the
// errors that bad shapes or indices must raise instead of touching memory.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <numeric>

#include "kernels/op.h"

using namespace rg;

namespace {

Node make_node(const std::string& op, int n_in, int n_out = 1) {
  Node n;
  n.op_type = op;
  n.name = "t";
  for (int i = 0; i < n_in; i++) n.inputs.push_back("in" + std::to_string(i));
  for (int i = 0; i < n_out; i++) n.outputs.push_back("out" + std::to_string(i));
  return n;
}

Tensor iota_f32(const Shape& s) {
  std::vector<float> v((size_t)shape_numel(s));
  std::iota(v.begin(), v.end(), 0.f);
  return Tensor::from_vector<float>(s, v);
}

Tensor i64s(const std::vector<int64_t>& v) { return Tensor::from_vector<int64_t>({(int64_t)v.size()}, v); }

std::vector<float> floats(const Tensor& t) {
  std::vector<float> r;
  for (double d : t.to_doubles()) r.push_back((float)d);
  return r;
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no rg::Error thrown";
  return ErrorCode::internal;
}

}  // namespace

TEST(RefShape, ReshapeZeroAndMinusOneTogether) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor shape = i64s({0, -1, 2});  // 0 copies 2, -1 becomes 24 / (2 * 2) = 6
  auto out = eval_node(make_node("Reshape", 2), 14, {&x, &shape});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(floats(out[0]), floats(x));
}

TEST(RefShape, ReshapeCountMismatchIsAnError) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor shape = i64s({5, -1});
  EXPECT_EQ(code_of([&] { eval_node(make_node("Reshape", 2), 14, {&x, &shape}); }), ErrorCode::invalid_input);
  Tensor two_infer = i64s({-1, -1});
  EXPECT_EQ(code_of([&] { eval_node(make_node("Reshape", 2), 14, {&x, &two_infer}); }), ErrorCode::invalid_input);
}

TEST(RefShape, SliceNegativeStepsOn3D) {
  Tensor x = iota_f32({2, 3, 4});  // x[n][j][k] = 12n + 4j + k
  Tensor starts = i64s({-1, 2}), ends = i64s({std::numeric_limits<int64_t>::min(), 0});
  Tensor axes = i64s({1, 2}), steps = i64s({-1, -2});
  // Axis 1: j = 2, 1, 0 (end clamps to "before 0"); axis 2: k = 2 only (end 0 excluded).
  auto out = eval_node(make_node("Slice", 5), 13, {&x, &starts, &ends, &axes, &steps});
  EXPECT_EQ(out[0].shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(floats(out[0]), (std::vector<float>{10, 6, 2, 22, 18, 14}));
}

TEST(RefShape, ResizeLinearHalfPixel2x) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
  Node n = make_node("Resize", 3);
  n.inputs[1] = "";  // no roi
  n.attrs["mode"] = Attribute::of_string("linear");
  // half_pixel: x_orig = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1];
  // rows interpolate the same way (PyTorch bilinear, align_corners=False).
  auto out = eval_node(n, 13, {&x, nullptr, &scales});
  EXPECT_EQ(out[0].shape(), (Shape{1, 1, 4, 4}));
  std::vector<float> want{1.0f, 1.25f, 1.75f, 2.0f,  //
                          1.5f, 1.75f, 2.25f, 2.5f,  //
                          2.5f, 2.75f, 3.25f, 3.5f,  //
                          3.0f, 3.25f, 3.75f, 4.0f};
  std::vector<float> got = floats(out[0]);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

TEST(RefShape, GatherNegativeIndices) {
  Tensor x = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor idx = Tensor::from_vector<int64_t>({2}, {-1, 0});
  auto out = eval_node(make_node("Gather", 2), 13, {&x, &idx});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(floats(out[0]), (std::vector<float>{5, 6, 1, 2}));
  // int32 indices along axis 1.
  Node n = make_node("Gather", 2);
  n.attrs["axis"] = Attribute::of_int(1);
  Tensor idx32 = Tensor::from_vector<int32_t>({1}, {-2});
  auto col = eval_node(n, 13, {&x, &idx32});
  EXPECT_EQ(col[0].shape(), (Shape{3, 1}));
  EXPECT_EQ(floats(col[0]), (std::vector<float>{1, 3, 5}));
}

TEST(RefShape, GatherOutOfRangeThrows) {
  Tensor x = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor too_big = Tensor::from_vector<int64_t>({1}, {3});
  Tensor too_small = Tensor::from_vector<int64_t>({1}, {-4});  // wraps once to -1: still out
  EXPECT_THROW(eval_node(make_node("Gather", 2), 13, {&x, &too_big}), Error);
  EXPECT_EQ(code_of([&] { eval_node(make_node("Gather", 2), 13, {&x, &too_small}); }), ErrorCode::invalid_input);
}

TEST(RefShape, ScatterNDOutOfRangeThrows) {
  Tensor x = iota_f32({4});
  Tensor idx = Tensor::from_vector<int64_t>({1, 1}, {4});
  Tensor upd = Tensor::from_vector<float>({1}, {9});
  EXPECT_EQ(code_of([&] { eval_node(make_node("ScatterND", 3), 16, {&x, &idx, &upd}); }), ErrorCode::invalid_input);
}

TEST(RefShape, PadNegativeCropsAndTooNegativeFails) {
  Tensor x = iota_f32({1, 5});
  Node n = make_node("Pad", 2);
  n.attrs["mode"] = Attribute::of_string("reflect");
  Tensor pads = i64s({0, -2, 0, 2});  // crop 2 on the left, reflect 2 on the right
  auto out = eval_node(n, 13, {&x, &pads});
  EXPECT_EQ(floats(out[0]), (std::vector<float>{2, 3, 4, 3, 2}));
  Tensor bad = i64s({0, -6, 0, 0});
  EXPECT_EQ(code_of([&] { eval_node(n, 13, {&x, &bad}); }), ErrorCode::invalid_input);
}

TEST(RefShape, ExpandHugeShapeIsRejected) {
  Tensor x = iota_f32({1});
  Tensor shape = i64s({1 << 30, 1 << 30, 1 << 30});
  EXPECT_EQ(code_of([&] { eval_node(make_node("Expand", 2), 13, {&x, &shape}); }), ErrorCode::invalid_input);
}

TEST(RefShape, SplitNumOutputsOpset18) {
  Tensor x = iota_f32({7});
  Node n = make_node("Split", 1, 3);
  n.attrs["num_outputs"] = Attribute::of_int(3);
  auto out = eval_node(n, 18, {&x});  // ceil(7 / 3) = 3: chunks 3, 3, 1
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(floats(out[0]), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(floats(out[1]), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(floats(out[2]), (std::vector<float>{6}));
}

// Hand-computed cases for the reference element-wise, reduction and normalisation kernels
// that the ONNX node tests cover thinly: rank-0 broadcasting, variadic broadcasting, Clip
// without bounds, LayerNormalization over two axes, integer corner cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/op.h"

using namespace rg;

namespace {

Node make_node(const std::string& op, int inputs, std::map<std::string, Attribute> attrs = {}, int outputs = 1) {
  Node n;
  n.op_type = op;
  n.name = "t";
  for (int i = 0; i < inputs; i++) n.inputs.push_back("in" + std::to_string(i));
  for (int i = 0; i < outputs; i++) n.outputs.push_back("out" + std::to_string(i));
  n.attrs = std::move(attrs);
  return n;
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  const T* p = t.data<T>();
  return std::vector<T>(p, p + t.numel());
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(RefElementwise, ScalarBroadcastsAgainstRank4BothWays) {
  Tensor s = Tensor::scalar<float>(10.f);
  Tensor x = Tensor::from_vector<float>({1, 2, 1, 3}, {1, 2, 3, 4, 5, 6});
  Node sub = make_node("Sub", 2);
  auto y = eval_node(sub, 13, {&s, &x});
  EXPECT_EQ(y[0].shape(), (Shape{1, 2, 1, 3}));
  expect_near(values<float>(y[0]), {9, 8, 7, 6, 5, 4});
  y = eval_node(sub, 13, {&x, &s});
  EXPECT_EQ(y[0].shape(), (Shape{1, 2, 1, 3}));
  expect_near(values<float>(y[0]), {-9, -8, -7, -6, -5, -4});
  // Two rank-0 operands stay rank 0.
  Tensor t = Tensor::scalar<float>(4.f);
  y = eval_node(make_node("Mul", 2), 13, {&s, &t});
  EXPECT_EQ(y[0].shape(), Shape{});
  EXPECT_EQ(values<float>(y[0]), std::vector<float>{40});
}

TEST(RefElementwise, MeanOfThreeDifferentShapes) {
  // [2,1] + [3] + [1,1,1] -> [1,2,3]
  Tensor a = Tensor::from_vector<float>({2, 1}, {0, 3});
  Tensor b = Tensor::from_vector<float>({3}, {0, 6, 12});
  Tensor c = Tensor::from_vector<float>({1, 1, 1}, {3});
  auto y = eval_node(make_node("Mean", 3), 13, {&a, &b, &c});
  EXPECT_EQ(y[0].shape(), (Shape{1, 2, 3}));
  // (a + b + 3) / 3
  expect_near(values<float>(y[0]), {1, 3, 5, 2, 4, 6});
  y = eval_node(make_node("Max", 3), 13, {&a, &b, &c});
  expect_near(values<float>(y[0]), {3, 6, 12, 3, 6, 12});
}

TEST(RefElementwise, ClipWithoutBoundsIsIdentity) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector<float>({5}, {-inf, -1e30f, 0.5f, 1e30f, inf});
  auto y = eval_node(make_node("Clip", 1), 13, {&x});
  EXPECT_EQ(values<float>(y[0]), values<float>(x));
  // Only a lower bound, on int8 (opset 12+), via an omitted min input.
  Node only_max = make_node("Clip", 3);
  only_max.inputs[1] = "";
  Tensor xi = Tensor::from_vector<int8_t>({4}, {-128, -5, 5, 127});
  Tensor hi = Tensor::scalar<int8_t>(3);
  y = eval_node(only_max, 13, {&xi, nullptr, &hi});
  EXPECT_EQ(values<int8_t>(y[0]), (std::vector<int8_t>{-128, -5, 3, 3}));
}

TEST(RefElementwise, LayerNormOverTwoAxes) {
  // X [2,2,2], axis 1: each batch row of 4 values is normalised together.
  Tensor x = Tensor::from_vector<float>({2, 2, 2}, {1, 2, 3, 4, -2, -2, 2, 2});
  Tensor w = Tensor::from_vector<float>({2, 2}, {1, 2, 1, 2});
  Tensor b = Tensor::from_vector<float>({2}, {0, 1});  // broadcasts along the last axis
  Node n = make_node("LayerNormalization", 3, {{"axis", Attribute::of_int(1)}, {"epsilon", Attribute::of_float(0.f)}}, 3);
  auto y = eval_node(n, 17, {&x, &w, &b});
  // Row 0: mean 2.5, var 1.25; row 1: mean 0, var 4.
  float k = 1.f / std::sqrt(1.25f);
  expect_near(values<float>(y[0]), {-1.5f * k, -0.5f * k * 2 + 1, 0.5f * k, 1.5f * k * 2 + 1,  //
                                    -1, -2 + 1, 1, 2 + 1});
  EXPECT_EQ(y[1].shape(), (Shape{2, 1, 1}));
  expect_near(values<float>(y[1]), {2.5f, 0});
  expect_near(values<float>(y[2]), {k, 0.5f});
}

TEST(RefElementwise, IntegerArithmeticCornerCases) {
  // Mod: fmod=0 takes the divisor's sign, fmod=1 the dividend's; division by zero gives 0.
  Tensor a = Tensor::from_vector<int32_t>({4}, {-7, 7, -7, 5});
  Tensor b = Tensor::from_vector<int32_t>({4}, {3, -3, -3, 0});
  auto y = eval_node(make_node("Mod", 2), 13, {&a, &b});
  EXPECT_EQ(values<int32_t>(y[0]), (std::vector<int32_t>{2, -2, -1, 0}));
  y = eval_node(make_node("Mod", 2, {{"fmod", Attribute::of_int(1)}}), 13, {&a, &b});
  EXPECT_EQ(values<int32_t>(y[0]), (std::vector<int32_t>{-1, 1, -1, 0}));
  y = eval_node(make_node("Div", 2), 13, {&a, &b});
  EXPECT_EQ(values<int32_t>(y[0]), (std::vector<int32_t>{-2, -2, 2, 0}));
  // uint8 wraps.
  Tensor u = Tensor::from_vector<uint8_t>({2}, {250, 3});
  Tensor v = Tensor::from_vector<uint8_t>({2}, {10, 5});
  y = eval_node(make_node("Add", 2), 13, {&u, &v});
  EXPECT_EQ(values<uint8_t>(y[0]), (std::vector<uint8_t>{4, 8}));
  // Pow keeps the base's type; an integer exponent is exact.
  Tensor base = Tensor::from_vector<int64_t>({2}, {3, -2});
  Tensor e = Tensor::from_vector<int64_t>({2}, {39, 3});
  y = eval_node(make_node("Pow", 2), 15, {&base, &e});
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{4052555153018976267LL, -8}));
}

TEST(RefElementwise, ReluKeepsNaN) {
  // As oneDNN's fused relu does: the reference and the fast kernels must agree on a
  // faulted activation (a NaN there is a DUE, not a zero).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({4}, {nan, -2.f, 0.f, 3.f});
  auto y = values<float>(eval_node(make_node("Relu", 1), 14, {&x})[0]);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[2], 0.f);
  EXPECT_EQ(y[3], 3.f);
}

TEST(RefElementwise, CastEdgeValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({5}, {nan, -1.9f, 2.9f, 0.f, 1e20f});
  auto y = eval_node(make_node("Cast", 1, {{"to", Attribute::of_int(6)}}), 13, {&x});  // int32
  auto v = values<int32_t>(y[0]);
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], -1);
  EXPECT_EQ(v[2], 2);
  EXPECT_EQ(v[3], 0);
  y = eval_node(make_node("Cast", 1, {{"to", Attribute::of_int(9)}}), 13, {&x});  // bool
  EXPECT_EQ(values<bool>(y[0]), (std::vector<bool>{true, true, true, false, true}));
  // float -> float16 -> float rounds to the nearest half.
  Tensor f = Tensor::from_vector<float>({2}, {1.0f + 1.0f / 4096, 65504.f});
  auto h = eval_node(make_node("Cast", 1, {{"to", Attribute::of_int(10)}}), 13, {&f});
  EXPECT_EQ(h[0].dtype(), DType::f16);
  auto back = eval_node(make_node("Cast", 1, {{"to", Attribute::of_int(1)}}), 13, {&h[0]});
  expect_near(values<float>(back[0]), {1.f, 65504.f}, 0);
}

TEST(RefElementwise, SoftmaxAxisSemanticsChangedAtOpset13) {
  // [2,2]: opset 11 coerces to 2-D at axis 0 (one row of 4), opset 13 normalises along axis 0.
  Tensor x = Tensor::from_vector<float>({2, 2}, {0, 0, 0, 0});
  Node n = make_node("Softmax", 1, {{"axis", Attribute::of_int(0)}});
  expect_near(values<float>(eval_node(n, 11, {&x})[0]), {0.25f, 0.25f, 0.25f, 0.25f});
  expect_near(values<float>(eval_node(n, 13, {&x})[0]), {0.5f, 0.5f, 0.5f, 0.5f});
}

TEST(RefElementwise, ReductionsWithEmptyAxes) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  Tensor none = Tensor::from_vector<int64_t>({0}, {});
  // Empty axes: all axes, unless noop_with_empty_axes.
  auto y = eval_node(make_node("ReduceSum", 2, {{"keepdims", Attribute::of_int(0)}}), 13, {&x, &none});
  EXPECT_EQ(y[0].shape(), Shape{});
  expect_near(values<float>(y[0]), {10});
  y = eval_node(make_node("ReduceSum", 2, {{"noop_with_empty_axes", Attribute::of_int(1)}}), 13, {&x, &none});
  expect_near(values<float>(y[0]), {1, 2, 3, 4});
  // Reducing an empty dimension gives the identity of the operation.
  Tensor e(DType::f32, {0, 3});
  y = eval_node(make_node("ReduceProd", 1, {{"axes", Attribute::of_ints({0})}}), 13, {&e});
  expect_near(values<float>(y[0]), {1, 1, 1});
  y = eval_node(make_node("ReduceMax", 1, {{"axes", Attribute::of_ints({0})}, {"keepdims", Attribute::of_int(0)}}),
                13, {&e});
  EXPECT_EQ(y[0].shape(), Shape{3});
  EXPECT_TRUE(std::isinf(values<float>(y[0])[0]));
}

TEST(RefElementwise, ArgMaxSelectsFirstOrLastTie) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 5, 5, 7, 7, 2});
  auto y = eval_node(make_node("ArgMax", 1, {{"axis", Attribute::of_int(1)}}), 13, {&x});
  EXPECT_EQ(y[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{1, 0}));
  y = eval_node(make_node("ArgMax", 1, {{"axis", Attribute::of_int(1)}, {"select_last_index", Attribute::of_int(1)}}),
                13, {&x});
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{2, 1}));
}

TEST(RefElementwise, EinsumBatchedMatmulWithEllipsis) {
  // "...ij,jk->...ik" with a broadcast batch of 2.
  Tensor a = Tensor::from_vector<float>({2, 1, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from_vector<float>({2, 2}, {1, 0, 1, 1});
  auto y = eval_node(make_node("Einsum", 2, {{"equation", Attribute::of_string("...ij,jk->...ik")}}), 12, {&a, &b});
  EXPECT_EQ(y[0].shape(), (Shape{2, 1, 2}));
  expect_near(values<float>(y[0]), {3, 2, 7, 4});
  // Implicit output of a trace: "ii" -> scalar.
  Tensor m = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  y = eval_node(make_node("Einsum", 1, {{"equation", Attribute::of_string("ii")}}), 12, {&m});
  EXPECT_EQ(y[0].shape(), Shape{});
  expect_near(values<float>(y[0]), {5});
}

TEST(RefElementwise, BadInputsAreErrorsNotCrashes) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({2}, {1, 2});
  EXPECT_THROW(eval_node(make_node("Add", 2), 13, {&a, &b}), Error);
  EXPECT_THROW(eval_node(make_node("Softmax", 1, {{"axis", Attribute::of_int(2)}}), 13, {&a}), Error);
  EXPECT_THROW(eval_node(make_node("Cast", 1, {{"to", Attribute::of_int(8)}}), 13, {&a}), Error);  // string
  Tensor x(DType::f32, {1, 2, 2, 2}, true);
  Tensor p = Tensor::from_vector<float>({2}, {1, 1});
  Node bn = make_node("BatchNormalization", 5, {{"training_mode", Attribute::of_int(1)}});
  try {
    eval_node(bn, 15, {&x, &p, &p, &p, &p});
    FAIL() << "training mode accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported_op);
  }
}

}  // namespace

// Hand-checked cases for the reference Conv, ConvTranspose, MaxPool and MatMul kernels.
// Expected values come from the ONNX operator documentation examples or from naive loop
// nests written here directly from the operator definitions (no shared code with the
// kernels, so a mistake in the kernels' geometry helpers shows up).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/op.h"

using namespace rg;

namespace {

Node make_node(const std::string& op, int inputs, std::map<std::string, Attribute> attrs = {}) {
  Node n;
  n.op_type = op;
  n.name = "t";
  for (int i = 0; i < inputs; i++) n.inputs.push_back("in" + std::to_string(i));
  n.outputs = {"out"};
  n.attrs = std::move(attrs);
  return n;
}

// Deterministic, non-symmetric values so transposed or mirrored indexing cannot pass.
Tensor ramp(const Shape& s, float scale = 0.1f, float offset = 0.f) {
  Tensor t(DType::f32, s);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); i++) p[i] = offset + scale * (float)((i * 7) % 13) - 0.3f * (float)(i % 3);
  return t;
}

void expect_near(const Tensor& got, const std::vector<float>& want, float tol = 1e-4f) {
  ASSERT_EQ(got.numel(), (int64_t)want.size());
  const float* g = got.data<float>();
  for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(g[i], want[i], tol) << "at " << i;
}

// Naive 2-D convolution straight from the definition (N=1).
std::vector<float> naive_conv2d(const Tensor& x, const Tensor& w, const float* bias, int64_t group, int64_t stride,
                                int64_t pad, int64_t OH, int64_t OW) {
  const int64_t H = x.dim(2), W = x.dim(3);
  const int64_t M = w.dim(0), Cg = w.dim(1), KH = w.dim(2), KW = w.dim(3), Mg = M / group;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  std::vector<float> y(M * OH * OW);
  for (int64_t m = 0; m < M; m++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        float s = bias ? bias[m] : 0.f;
        for (int64_t c = 0; c < Cg; c++)
          for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) {
              int64_t ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              int64_t ci = (m / Mg) * Cg + c;
              s += xp[(ci * H + ih) * W + iw] * wp[((m * Cg + c) * KH + kh) * KW + kw];
            }
        y[(m * OH + oh) * OW + ow] = s;
      }
  return y;
}

TEST(RefConv, StridedPaddedMatchesOnnxExample) {
  // ONNX Conv documentation, "conv_with_strides_padding": x = 0..24, W = ones(3x3).
  std::vector<float> xv(25);
  for (int i = 0; i < 25; i++) xv[i] = (float)i;
  Tensor x = Tensor::from_vector<float>({1, 1, 5, 5}, xv);
  Tensor w = Tensor::from_vector<float>({1, 1, 3, 3}, std::vector<float>(9, 1.f));
  Node n = make_node("Conv", 2,
                     {{"pads", Attribute::of_ints({1, 1, 1, 1})}, {"strides", Attribute::of_ints({2, 2})},
                      {"kernel_shape", Attribute::of_ints({3, 3})}});
  auto out = eval_node(n, 13, {&x, &w});
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 3, 3}));
  expect_near(out[0], {12, 27, 24, 63, 108, 81, 72, 117, 84});
}

TEST(RefConv, StridedPaddedWithBiasMatchesNaive) {
  Tensor x = ramp({1, 1, 5, 5});
  Tensor w = ramp({2, 1, 3, 3}, 0.5f, -0.2f);
  Tensor b = Tensor::from_vector<float>({2}, {0.25f, -1.5f});
  Node n = make_node("Conv", 3, {{"pads", Attribute::of_ints({1, 1, 1, 1})}, {"strides", Attribute::of_ints({2, 2})}});
  auto out = eval_node(n, 13, {&x, &w, &b});
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 3, 3}));
  expect_near(out[0], naive_conv2d(x, w, b.data<float>(), 1, 2, 1, 3, 3));
}

TEST(RefConv, DepthwiseGroupEqualsChannels) {
  Tensor x = ramp({1, 3, 4, 4});
  Tensor w = ramp({3, 1, 3, 3}, 0.3f, 0.1f);
  Node n = make_node("Conv", 2, {{"group", Attribute::of_int(3)}, {"pads", Attribute::of_ints({1, 1, 1, 1})}});
  auto out = eval_node(n, 13, {&x, &w});
  ASSERT_EQ(out[0].shape(), (Shape{1, 3, 4, 4}));
  expect_near(out[0], naive_conv2d(x, w, nullptr, 3, 1, 1, 4, 4));
}

TEST(RefConv, ChannelMismatchIsAnError) {
  Tensor x = ramp({1, 3, 4, 4});
  Tensor w = ramp({2, 2, 3, 3});
  Node n = make_node("Conv", 2);
  try {
    eval_node(n, 13, {&x, &w});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_model);
  }
}

TEST(RefConvTranspose, Stride2OutputPadding) {
  // x: 1x1x3x3, W: [C=1, M=2, 3, 3]; stride 2, output_padding 1:
  // out = 2 * (3 - 1) + 1 + 3 = 8 per spatial dim.
  Tensor x = ramp({1, 1, 3, 3}, 1.f);
  Tensor w = ramp({1, 2, 3, 3}, 0.2f, 0.05f);
  Node n = make_node("ConvTranspose", 2,
                     {{"strides", Attribute::of_ints({2, 2})}, {"output_padding", Attribute::of_ints({1, 1})}});
  auto out = eval_node(n, 13, {&x, &w});
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 8, 8}));
  // Naive scatter: y[m, i*2 + kh, j*2 + kw] += x[i, j] * w[0, m, kh, kw].
  std::vector<float> want(2 * 8 * 8, 0.f);
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  for (int m = 0; m < 2; m++)
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++)
        for (int kh = 0; kh < 3; kh++)
          for (int kw = 0; kw < 3; kw++)
            want[(m * 8 + i * 2 + kh) * 8 + j * 2 + kw] += xp[i * 3 + j] * wp[(m * 3 + kh) * 3 + kw];
  expect_near(out[0], want);
  // The padding row/column (index 7) receives nothing.
  for (int m = 0; m < 2; m++)
    for (int k = 0; k < 8; k++) {
      EXPECT_EQ(out[0].data<float>()[(m * 8 + 7) * 8 + k], 0.f);
      EXPECT_EQ(out[0].data<float>()[(m * 8 + k) * 8 + 7], 0.f);
    }
}

TEST(RefMaxPool, CeilModeOutputShape) {
  std::vector<float> xv(16);
  for (int i = 0; i < 16; i++) xv[i] = (float)(i + 1);
  Tensor x = Tensor::from_vector<float>({1, 1, 4, 4}, xv);
  Node ceil = make_node("MaxPool", 1,
                        {{"kernel_shape", Attribute::of_ints({3, 3})}, {"strides", Attribute::of_ints({2, 2})},
                         {"ceil_mode", Attribute::of_int(1)}});
  auto out = eval_node(ceil, 12, {&x});
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 2, 2}));
  expect_near(out[0], {11, 12, 15, 16});  // ONNX maxpool_2d_ceil example

  Node floor = ceil;
  floor.attrs["ceil_mode"] = Attribute::of_int(0);
  EXPECT_EQ(eval_node(floor, 12, {&x})[0].shape(), (Shape{1, 1, 1, 1}));

  // length 5, kernel 2, stride 2, pads 1+1, ceil: ceil(5/2) + 1 = 4 windows, but the 4th
  // would start in the end padding and is dropped (PyTorch gives 3 as well).
  Tensor x1 = ramp({1, 1, 5});
  Node drop = make_node("MaxPool", 1,
                        {{"kernel_shape", Attribute::of_ints({2})}, {"strides", Attribute::of_ints({2})},
                         {"pads", Attribute::of_ints({1, 1})}, {"ceil_mode", Attribute::of_int(1)}});
  EXPECT_EQ(eval_node(drop, 12, {&x1})[0].shape(), (Shape{1, 1, 3}));
}

TEST(RefMatMul, BroadcastBatchDims) {
  Tensor a = ramp({2, 1, 3, 4});
  Tensor b = ramp({5, 4, 2}, 0.07f, 0.5f);
  Node n = make_node("MatMul", 2);
  auto out = eval_node(n, 13, {&a, &b});
  ASSERT_EQ(out[0].shape(), (Shape{2, 5, 3, 2}));
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  std::vector<float> want;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 5; j++)
      for (int m = 0; m < 3; m++)
        for (int n2 = 0; n2 < 2; n2++) {
          float s = 0;
          for (int k = 0; k < 4; k++) s += ap[(i * 3 + m) * 4 + k] * bp[(j * 4 + k) * 2 + n2];
          want.push_back(s);
        }
  expect_near(out[0], want);
}

TEST(RefMatMul, VectorOperandsArePromoted) {
  Tensor a = Tensor::from_vector<float>({3}, {1, 2, 3});
  Tensor b = Tensor::from_vector<float>({2, 3, 2}, {1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 1, -1});
  auto out = eval_node(make_node("MatMul", 2), 13, {&a, &b});
  ASSERT_EQ(out[0].shape(), (Shape{2, 2}));
  expect_near(out[0], {4, 5, 5, 1});
}

}  // namespace

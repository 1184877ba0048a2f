// Graph passes: each rewrite happens where it should, not where it must not, and the
// model computes the same outputs afterwards.
#include <gtest/gtest.h>

#include "kernels/op.h"
#include "passes/passes.h"
#include "support/builder.h"

namespace rg::test {
namespace {

int count(const Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op;
  return n;
}

Evaluator ref_eval(int64_t opset) {
  return [opset](const Node& n, const std::vector<const Tensor*>& in) { return eval_node(n, opset, in); };
}

// Outputs with every pass off versus the default pipeline, reference kernels both times.
double passes_change(const Graph& g, const std::vector<Tensor>& in) {
  SessionOptions off, on;
  off.fast_kernels = on.fast_kernels = false;
  for (const auto& p : pass_list()) off.disabled_passes.insert(p.name);
  Session a(g, off), b(g, on);
  auto oa = a.run(in), ob = b.run(in);
  double worst = 0;
  for (size_t i = 0; i < oa.size(); i++) worst = std::max(worst, max_rel_diff(ob[i], oa[i]));
  return worst;
}

Graph conv_bn(std::mt19937& rng, bool shared_conv_output) {
  GraphBuilder b;
  std::string x = b.input("x", {2, 3, 8, 8});
  std::string c = b.node("Conv", {x, b.constant("w", random_tensor({4, 3, 3, 3}, rng)), b.constant("cb", random_tensor({4}, rng))});
  std::string y = b.node("BatchNormalization", {c, b.constant("g", random_tensor({4}, rng, 0.5f, 1.5f)),
                                                b.constant("be", random_tensor({4}, rng)), b.constant("mu", random_tensor({4}, rng)),
                                                b.constant("var", random_tensor({4}, rng, 0.5f, 2.f))},
                         {{"epsilon", Attribute::of_float(1e-3f)}});
  b.output(b.node("Relu", {y}));
  if (shared_conv_output) b.output(c);
  return b.build();
}

TEST(Passes, FoldsBatchNormIntoConv) {
  std::mt19937 rng(1);
  Graph g = conv_bn(rng, false);
  Graph f = g;
  EXPECT_EQ(fold_batchnorm(f), 1);
  EXPECT_EQ(count(f, "BatchNormalization"), 0);
  EXPECT_LT(passes_change(g, {random_tensor({2, 3, 8, 8}, rng)}), 1e-5);
}

TEST(Passes, KeepsBatchNormWhenConvOutputIsAlsoUsed) {
  std::mt19937 rng(2);
  Graph g = conv_bn(rng, true);
  EXPECT_EQ(fold_batchnorm(g), 0);
}

// A BatchNormalization, or a Mul then an Add by constants, after a Gemm (either weight
// layout, a scaled bias) folds into it.
TEST(Passes, FoldsBatchNormAndScaleShiftIntoGemm) {
  std::mt19937 rng(3);
  for (int variant = 0; variant < 4; variant++) {
    bool trans_b = variant % 2, bn = variant < 2;
    GraphBuilder b;
    std::string x = b.input("x", {5, 6});
    std::string y = b.node("Gemm", {x, b.constant("w", random_tensor(trans_b ? Shape{4, 6} : Shape{6, 4}, rng)),
                                    b.constant("c", random_tensor({4}, rng))},
                           {{"transB", Attribute::of_int(trans_b)}, {"beta", Attribute::of_float(0.5f)}});
    if (bn) {
      y = b.node("BatchNormalization", {y, b.constant("g", random_tensor({4}, rng)), b.constant("be", random_tensor({4}, rng)),
                                        b.constant("mu", random_tensor({4}, rng)), b.constant("var", random_tensor({4}, rng, 0.5f, 2.f))});
    } else {
      y = b.node("Mul", {y, b.constant("s", random_tensor({4}, rng))});
      y = b.node("Add", {b.constant("t", random_tensor({1, 4}, rng)), y});
    }
    b.output(y);
    Graph g = b.build();
    Graph f = g;
    EXPECT_EQ(bn ? fold_batchnorm(f) : fold_scale_shift(f), bn ? 1 : 2) << variant;
    EXPECT_LT(passes_change(g, {random_tensor({5, 6}, rng)}), 1e-5) << variant;
  }
}

// A decomposed BatchNorm (Mul then Add), a scalar Sub, a per-channel Div and a reversed
// Sub (c - y) after a Conv all fold into its weights and bias; a weight changed in place
// afterwards (fault injection) is re-derived through every fold at once.
TEST(Passes, FoldsConstantScaleAndShiftIntoConv) {
  std::mt19937 rng(6);
  for (int variant = 0; variant < 4; variant++) {
    GraphBuilder b;
    std::string x = b.input("x", {2, 3, 8, 8});
    std::string y = b.node("Conv", {x, b.constant("w", random_tensor({4, 3, 3, 3}, rng))});
    if (variant == 3)
      y = b.node("BatchNormalization", {y, b.constant("g", random_tensor({4}, rng, 0.5f, 1.5f)), b.constant("be", random_tensor({4}, rng)),
                                        b.constant("mu", random_tensor({4}, rng)), b.constant("var", random_tensor({4}, rng, 0.5f, 2.f))});
    y = b.node("Mul", {b.constant("s", random_tensor(variant == 1 ? Shape{1} : Shape{4, 1, 1}, rng, 0.5f, 2.f)), y});
    y = b.node("Add", {y, b.constant("t", random_tensor(variant == 2 ? Shape{} : Shape{1, 4, 1, 1}, rng))});
    y = b.node("Sub", {y, b.constant("u", Tensor::scalar(0.25f))});
    y = b.node("Div", {y, b.constant("v", random_tensor({4, 1, 1}, rng, 0.5f, 2.f))});
    y = b.node("Sub", {b.constant("r", random_tensor({4, 1, 1}, rng)), y});
    b.output(b.node("Relu", {y}));
    Graph g = b.build();
    Graph f = g;
    EXPECT_EQ(fold_batchnorm(f) + fold_scale_shift(f), variant == 3 ? 6 : 5) << variant;
    EXPECT_EQ(count(f, "Mul") + count(f, "Add") + count(f, "Sub") + count(f, "Div"), 0) << variant;
    ASSERT_EQ(f.derived_weights.size(), 1u) << variant;
    EXPECT_EQ(f.derived_weights.begin()->second.source, "w") << variant;
    std::vector<Tensor> in{random_tensor({2, 3, 8, 8}, rng)};
    EXPECT_LT(passes_change(g, in), 1e-5) << variant;

    Graph changed = g;
    for (auto& kv : changed.initializers) kv.second = kv.second.clone();
    changed.initializers.at("w").data<float>()[7] = 3.f;
    SessionOptions ref;
    ref.fast_kernels = false;
    Session folded(g, ref);
    folded.set_weight_element("w", 7, 3.f);
    for (const auto& p : pass_list()) ref.disabled_passes.insert(p.name);
    EXPECT_LT(max_rel_diff(folded.run(in)[0], Session(changed, ref).run(in)[0]), 1e-5) << variant;
  }
}

// What must not fold: a constant that varies along a spatial axis, a computed operand, a
// Conv output that something else reads too, a constant divided by the output, a
// constant that adds a dimension.
TEST(Passes, KeepsScaleAndShiftThatAreNotPerChannel) {
  std::mt19937 rng(7);
  for (int variant = 0; variant < 5; variant++) {
    GraphBuilder b;
    std::string x = b.input("x", {1, 3, 8, 8});
    std::string c = b.node("Conv", {x, b.constant("w", random_tensor({4, 3, 3, 3}, rng))});
    std::string y;
    if (variant == 0) y = b.node("Mul", {c, b.constant("k", random_tensor({1, 1, 1, 6}, rng))});
    if (variant == 1) y = b.node("Add", {c, b.input("k", {1, 4, 1, 1})});
    if (variant == 2) y = b.node("Add", {c, b.node("Relu", {c})});
    if (variant == 3) y = b.node("Div", {b.constant("k", Tensor::scalar(2.f)), c});
    if (variant == 4) y = b.node("Mul", {c, b.constant("k", random_tensor({1, 1, 4, 1, 1}, rng))});
    b.output(y);
    Graph g = b.build();
    EXPECT_EQ(fold_scale_shift(g), 0) << variant;
  }
}

// Attention's q / sqrt(d) before the score MatMul moves after it (where it fuses); a
// scaled value read elsewhere, a Linear layer's MatMul and a non-scalar scale stay put.
TEST(Passes, MovesAScalarScaleAfterTheMatMul) {
  std::mt19937 rng(3);
  for (int variant = 0; variant < 5; variant++) {
    GraphBuilder b;
    std::string q = b.input("q", {2, 5, 4}), k = b.input("k", {2, 4, 5});
    Tensor c = variant == 3 ? random_tensor({4}, rng) : Tensor::from_vector<float>({1}, {0.5f});
    std::string scaled = variant == 1 ? b.node("Mul", {b.constant("c", c), q}) : b.node("Div", {q, b.constant("c", c)});
    std::string rhs = variant == 2 ? b.constant("w", random_tensor({4, 5}, rng)) : k;
    std::string s = b.node("MatMul", {scaled, rhs});
    b.output(b.node("Softmax", {s}));
    if (variant == 4) b.output(b.node("Relu", {scaled}));
    Graph g = b.build();
    std::vector<Tensor> in{random_tensor({2, 5, 4}, rng), random_tensor({2, 4, 5}, rng)};
    Graph moved = g;
    bool should_move = variant <= 1;
    EXPECT_EQ(move_scale_after_matmul(moved), should_move ? 1 : 0) << variant;
    if (should_move) {
      auto producers = moved.producers();
      const Node& scale = moved.nodes[producers.at(s)];  // the MatMul's old output name
      EXPECT_TRUE(scale.op_type == "Div" || scale.op_type == "Mul") << variant;
      EXPECT_EQ(moved.nodes[producers.at(scale.inputs[0])].op_type, "MatMul") << variant;
      EXPECT_NO_THROW(moved.sort_and_validate());
    }
    EXPECT_LT(passes_change(g, in), 1e-6) << variant;
  }
}

// ConvNeXt's layer scale: a [C, 1, 1] constant Mul after the permute back to NCHW moves
// before the Transpose, as a [C] constant along the NHWC tensor's last axis, next to the
// Linear layer it then fuses into. A Transpose read elsewhere, a scale varying along two
// axes and a computed scale stay put; the outputs never change.
TEST(Passes, MovesAPerChannelScaleBeforeATranspose) {
  std::mt19937 rng(5);
  for (int variant = 0; variant < 5; variant++) {
    GraphBuilder b;
    std::string x = b.input("x", {2, 3, 4, 6});
    std::string y = b.node("MatMul", {x, b.constant("w", random_tensor({6, 5}, rng))});
    std::string t = b.node("Transpose", {y}, {{"perm", Attribute::of_ints({0, 3, 1, 2})}});
    Shape cs = variant == 2 ? Shape{5, 3, 1} : variant == 4 ? Shape{1, 5, 1, 1} : Shape{5, 1, 1};
    std::string c = variant == 3 ? b.input("c", cs) : b.constant("c", random_tensor(cs, rng));
    std::string m = b.node("Mul", variant == 4 ? std::vector<std::string>{c, t} : std::vector<std::string>{t, c});
    b.output(b.node("Relu", {m}));
    if (variant == 1) b.output(b.node("Neg", {t}));
    Graph g = b.build();
    std::vector<Tensor> in{random_tensor({2, 3, 4, 6}, rng)};
    if (variant == 3) in.push_back(random_tensor(cs, rng));
    Graph moved = g;
    bool should_move = variant == 0 || variant == 4;
    EXPECT_EQ(move_scale_before_transpose(moved), should_move ? 1 : 0) << variant;
    if (should_move) {
      auto producers = moved.producers();
      const Node& tr = moved.nodes[producers.at(m)];  // the Mul's output name, now the Transpose's
      EXPECT_EQ(tr.op_type, "Transpose") << variant;
      const Node& scale = moved.nodes[producers.at(tr.inputs[0])];
      EXPECT_EQ(scale.op_type, "Mul") << variant;
      EXPECT_EQ(scale.inputs[0], y) << variant;
      EXPECT_EQ(moved.initializer(scale.inputs[1])->shape(), Shape{5}) << variant;
      EXPECT_NO_THROW(moved.sort_and_validate());
    }
    EXPECT_LT(passes_change(g, in), 1e-6) << variant;
  }
}

TEST(Passes, RemovesIdentityAndDropoutButKeepsOutputNames) {
  GraphBuilder b;
  std::string x = b.input("x", {3});
  std::string a = b.node("Identity", {b.node("Relu", {x})});
  std::string d = b.node("Dropout", {a}, {{"ratio", Attribute::of_float(0.3f)}});
  std::string out = b.node("Identity", {b.node("Neg", {d})});
  b.output(out);
  Graph g = b.build();
  EXPECT_EQ(remove_identity(g), 3);
  EXPECT_EQ(count(g, "Identity") + count(g, "Dropout"), 0);
  ASSERT_EQ(g.outputs[0].name, out);
  EXPECT_EQ(g.nodes.back().outputs[0], out);  // the Neg now produces the output name
}

// A Dropout or Identity with no outputs (a malformed model; the fuzzer wrote one) is left
// alone, not read past its empty output list.
TEST(Passes, KeepsPassthroughWithoutOutputs) {
  GraphBuilder b;
  std::string x = b.input("x", {2, 3});
  b.output(b.node("Relu", {x}));
  Graph g = b.build();
  for (const char* op : {"Dropout", "Identity"}) {
    Node n;
    n.op_type = op;
    n.inputs = {x};
    g.nodes.push_back(n);
  }
  EXPECT_EQ(remove_identity(g), 0);
  EXPECT_EQ(count(g, "Dropout") + count(g, "Identity"), 2);
}

// torch's exporter writes Pad(x, zeros) before a DenseNet transition's AveragePool.
TEST(Passes, RemovesPadByZeroOnly) {
  auto zeros = [] { return Tensor::from_vector<int64_t>({8}, std::vector<int64_t>(8, 0)); };
  GraphBuilder b;
  std::string x = b.input("x", {1, 2, 3, 3});
  std::string p1 = b.node("Pad", {x, b.constant("z", zeros())});
  std::string zc = b.node("Constant", {}, {{"value", Attribute::of_tensor(zeros())}});
  std::string p2 = b.node("Pad", {b.node("Relu", {p1}), zc}, {{"mode", Attribute::of_string("edge")}});
  std::string p3 = b.node("Pad", {p2, b.constant("one", Tensor::from_vector<int64_t>({8}, {0, 0, 1, 0, 0, 0, 0, 1}))});
  std::string p4 = b.node("Pad", {p3, b.input("computed", {8}, DType::i64)});
  b.output(p4);
  Graph g = b.build();
  std::mt19937 rng(5);
  EXPECT_EQ(passes_change(g, {random_tensor({1, 2, 3, 3}, rng), zeros()}), 0.0);
  EXPECT_EQ(remove_identity(g), 2);
  EXPECT_EQ(count(g, "Pad"), 2);  // padding by one, and by pads known only at run time
  GraphBuilder old(10);           // before opset 11 the pads are an attribute
  std::string y = old.node("Pad", {old.input("x", {2, 3})}, {{"pads", Attribute::of_ints({0, 0, 0, 0})}});
  old.output(old.node("Relu", {y}));
  Graph g10 = old.build();
  EXPECT_EQ(passes_change(g10, {random_tensor({2, 3}, rng)}), 0.0);
  EXPECT_EQ(remove_identity(g10), 1);
  EXPECT_EQ(count(g10, "Pad"), 0);
}

TEST(Passes, FoldsConstantsAndShapeChainsAtPlanTime) {
  // Reshape(x, Concat(Gather(Shape(x), 0), [-1])): the exporter's flatten idiom.
  GraphBuilder b(11);  // Unsqueeze takes axes as an attribute before opset 13
  std::string x = b.input("x", {-1, 2, 3});
  std::string shape = b.node("Shape", {x});
  std::string n = b.node("Unsqueeze", {b.node("Gather", {shape, b.constant("i0", Tensor::scalar<int64_t>(0))})},
                         {{"axes", Attribute::of_ints({0})}});
  std::string target = b.node("Concat", {n, b.constant("m1", Tensor::from_vector<int64_t>({1}, {-1}))},
                              {{"axis", Attribute::of_int(0)}});
  std::string k = b.node("Add", {b.constant("one", Tensor::scalar(1.f)), b.constant("two", Tensor::scalar(2.f))});
  b.output(b.node("Mul", {b.node("Reshape", {x, target}), k}));
  Graph g = b.build();
  Graph folded = g;
  EXPECT_EQ(fold_constants(folded, ref_eval(11)), 1);  // only Add(1, 2): Shape(x) needs x's shape
  SessionOptions o;
  Session s(g, o);
  std::mt19937 rng(4);
  Tensor in = random_tensor({4, 2, 3}, rng);
  Plan& p = s.plan({{4, 2, 3}});
  ASSERT_EQ(p.steps().size(), 2u);  // Reshape and Mul; the shape chain folded away
  Tensor out = s.run({in})[0];
  ASSERT_EQ(out.shape(), (Shape{4, 6}));
  for (int64_t i = 0; i < out.numel(); i++) EXPECT_FLOAT_EQ(out.data<float>()[i], in.data<float>()[i] * 3);
}

TEST(Passes, DisabledByName) {
  std::mt19937 rng(5);
  Graph g = conv_bn(rng, false);
  PassOptions o;
  o.disabled = {"fold_batchnorm"};
  o.eval = ref_eval(17);
  run_passes(g, o);
  EXPECT_EQ(count(g, "BatchNormalization"), 1);
}

}  // namespace
}  // namespace rg::test

// Activation pattern recognition: each exporter decomposition is found with the right
// kind and output, look-alikes with other constants are not, and rewriting the patterns
// leaves the model's outputs unchanged.
#include <gtest/gtest.h>

#include "passes/passes.h"
#include "passes/patterns.h"
#include "support/builder.h"

namespace rg::test {
namespace {

// Builds the decompositions torch.onnx.export (opset 13) emits, all reading input "x".
}  // namespace
struct Decompositions {
  GraphBuilder b;
  std::string x = b.input("x", {2, 8});
  std::string k(float v) { return b.constant("k" + std::to_string(n++), Tensor::scalar(v)); }
  int n = 0;

  std::string swish() { return b.node("Mul", {x, b.node("Sigmoid", {x})}); }
  std::string gelu_erf() {
    std::string e = b.node("Erf", {b.node("Div", {x, k(1.4142135f)})});
    return b.node("Mul", {b.node("Mul", {x, b.node("Add", {e, k(1.f)})}), k(0.5f)});
  }
  std::string gelu_tanh() {
    std::string cube = b.node("Mul", {x, b.node("Mul", {x, x})});
    std::string inner = b.node("Add", {x, b.node("Mul", {k(0.044715f), cube})});
    std::string t = b.node("Tanh", {b.node("Mul", {k(0.7978845608f), inner})});
    return b.node("Mul", {k(0.5f), b.node("Mul", {x, b.node("Add", {k(1.f), t})})});
  }
  std::string hardswish_hs() {
    return b.node("Mul", {x, b.node("HardSigmoid", {x}, {{"alpha", Attribute::of_float(1.f / 6)}})});
  }
  std::string hardswish_clip() {
    std::string c = b.node("Clip", {b.node("Add", {x, k(3.f)}), k(0.f), k(6.f)});
    return b.node("Div", {b.node("Mul", {x, c}), k(6.f)});
  }
  std::string mish() { return b.node("Mul", {x, b.node("Tanh", {b.node("Softplus", {x})})}); }
};

namespace {
TEST(Patterns, FindsEveryDecomposition) {
  Decompositions d;
  std::vector<std::pair<std::string, std::string>> want = {
      {"swish", d.swish()}, {"gelu", d.gelu_erf()}, {"gelu", d.gelu_tanh()}, {"hardswish", d.hardswish_hs()},
      {"hardswish", d.hardswish_clip()}, {"mish", d.mish()}};
  for (const auto& w : want) d.b.output(w.second);
  Graph g = d.b.build();
  auto found = find_activations(g);
  ASSERT_EQ(found.size(), want.size());
  for (const auto& w : want) {
    bool ok = false;
    for (const auto& f : found) ok |= f.output == w.second && f.kind == w.first && f.input == "x";
    EXPECT_TRUE(ok) << w.first << " -> " << w.second;
  }
}

TEST(Patterns, RejectsLookAlikesWithOtherConstants) {
  Decompositions d;
  std::string e = d.b.node("Erf", {d.b.node("Div", {d.x, d.k(2.f)})});  // not sqrt(2)
  d.b.output(d.b.node("Mul", {d.b.node("Mul", {d.x, d.b.node("Add", {e, d.k(1.f)})}), d.k(0.5f)}));
  std::string y = d.b.node("Sigmoid", {d.x});
  d.b.output(d.b.node("Mul", {y, y}));  // sigmoid squared, not swish
  Graph g = d.b.build();
  for (const auto& f : find_activations(g)) {
    EXPECT_NE(f.kind, "gelu");
    EXPECT_NE(f.kind, "swish");
  }
}

TEST(Patterns, SingleOperatorsAndRelu6) {
  GraphBuilder b;
  std::string x = b.input("x", {4});
  b.output(b.node("Clip", {b.node("LeakyRelu", {x}), b.constant("lo", Tensor::scalar(0.f)), b.constant("hi", Tensor::scalar(6.f))}));
  Graph g = b.build();
  auto f = find_activations(g);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].kind, "leakyrelu");
  EXPECT_EQ(f[1].kind, "relu6");
}

TEST(Patterns, RewriteKeepsOutputsAndShrinksGraph) {
  Decompositions d;
  for (const auto& v : {d.swish(), d.gelu_erf(), d.gelu_tanh(), d.hardswish_hs(), d.hardswish_clip(), d.mish()})
    d.b.output(v);
  Graph g = d.b.build();
  Graph rewritten = g;
  EXPECT_EQ(recognize_activations(rewritten), 6);
  EXPECT_LT(rewritten.nodes.size(), g.nodes.size());
  std::mt19937 rng(3);
  std::vector<Tensor> in{random_tensor({2, 8}, rng, -5.f, 5.f)};
  SessionOptions plain;
  plain.disabled_passes = {"recognize_activations"};
  plain.fast_kernels = false;
  Session a(g, plain), b(rewritten, plain);
  auto oa = a.run(in), ob = b.run(in);
  for (size_t i = 0; i < oa.size(); i++) EXPECT_LT(max_rel_diff(ob[i], oa[i]), 1e-5) << i;
}

}  // namespace
}  // namespace rg::test

// Every oneDNN kernel against its reference twin on seeded random shapes and attributes
// (DESIGN.md convention 2). Each case also checks that the fast path really ran, so a
// kernel that silently declines cannot pass by comparing the reference with itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/dnnl/dnnl_common.h"
#include "support/builder.h"

namespace rg::test {
namespace {

constexpr double kTol = 1e-4;  // relative to max|reference|

// Says which fast steps did run when `name` is not among them.
::testing::AssertionResult ran(const std::vector<std::string>& ops, const std::string& name) {
  if (std::find(ops.begin(), ops.end(), name) != ops.end()) return ::testing::AssertionSuccess();
  std::string seen;
  for (const auto& o : ops) seen += (seen.empty() ? "" : ", ") + o;
  return ::testing::AssertionFailure() << "no fast step " << name << " (ran: " << seen << ")";
}

// A fused step `label` ran; or, where `clip_may_split` and the ISA is not AVX2, the
// convolution with its ReLU and then the Clip as a step of its own: oneDNN's AVX-512
// convolutions take the pair only in kernels the planner passes over (its Winograd takes
// a ReLU alone, a grouped one with a clip becomes its reference kernel).
::testing::AssertionResult ran_chain(const std::vector<std::string>& ops, const std::string& label, bool clip_may_split) {
  if (clip_may_split && fast_isa().rfind("avx2", 0) != 0 && ran(ops, "Conv+Relu") && ran(ops, "Clip"))
    return ::testing::AssertionSuccess();
  return ran(ops, label);
}

Attribute ints(std::vector<int64_t> v) { return Attribute::of_ints(std::move(v)); }

// Element `at` of initializer "w" changed in place, as fault injection does it, is
// transformed again by `fast`'s kernels: the session then agrees with a reference run of a
// copy of `g` carrying the same change.
void expect_weight_change_seen(Session& fast, const Graph& g, const std::vector<Tensor>& inputs, int64_t at,
                               const std::string& where) {
  Graph changed = g;
  for (auto& kv : changed.initializers) kv.second = kv.second.clone();
  changed.initializers.at("w").data<float>()[at] = 5.f;
  fast.run(inputs);
  fast.set_weight_element("w", at, 5.f);
  SessionOptions ref;
  ref.fast_kernels = false;
  std::vector<Tensor> got = fast.run(inputs), want = Session(changed, ref).run(inputs);
  EXPECT_LT(max_rel_diff(got[0], want[0]), kTol) << where << " weight " << at;
}

class Seeded : public ::testing::TestWithParam<int> {
 protected:
  std::mt19937 rng{(unsigned)GetParam() * 7919u + 1};
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
};

TEST_P(Seeded, ConvWithRandomGeometry) {
  int n = pick(1, 2), spatial = pick(1, 3) == 1 ? 1 : 2;
  int group = pick(0, 2) == 0 ? 1 : 0;  // 1, depthwise, or a divisor
  int c = pick(1, 12), k = std::vector<int>{1, 3, 5}[pick(0, 2)], stride = pick(1, 2), dil = pick(1, 2);
  if (group == 0) group = pick(0, 1) ? c : 1;
  int m = group * pick(1, 4);
  if (c % group) c = group;
  std::vector<int64_t> hw;
  for (int i = 0; i < spatial; i++) hw.push_back(pick((k - 1) * dil + 1, 19));
  Shape x{n, c};
  x.insert(x.end(), hw.begin(), hw.end());
  Shape w{m, c / group};
  for (int i = 0; i < spatial; i++) w.push_back(k);
  std::vector<int64_t> pads;
  for (int i = 0; i < 2 * spatial; i++) pads.push_back(pick(0, k / 2 + 1 > k - 1 ? k - 1 : k / 2 + 1));
  GraphBuilder b;
  std::string y = b.node("Conv", {b.input("x", x), b.constant("w", random_tensor(w, rng)),
                                  b.constant("b", random_tensor({m}, rng))},
                         {{"group", Attribute::of_int(group)}, {"strides", ints(std::vector<int64_t>(spatial, stride))},
                          {"dilations", ints(std::vector<int64_t>(spatial, dil))}, {"pads", ints(pads)}});
  const char* acts[] = {"Relu", "Sigmoid", "HardSwish", "Tanh", "LeakyRelu"};
  std::string act = acts[pick(0, 4)];
  y = b.node(act, {y});
  b.output(y);
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor(x, rng)};
  EXPECT_TRUE(ran(fast_ops(g, in), "Conv+" + act)) << "x " << shape_str(x) << " w " << shape_str(w);
  EXPECT_LT(fast_vs_ref(g, in), kTol) << "x " << shape_str(x) << " w " << shape_str(w) << " group " << group;
}

TEST_P(Seeded, ResidualBlockFusesSumAndKeepsBlockedLayout) {
  int c = pick(2, 24), h = pick(4, 16);
  Shape x{1, c, h, h};
  GraphBuilder b;
  std::string in = b.input("x", x);
  auto conv = [&](const std::string& v, const std::string& name) {
    return b.node("Conv", {v, b.constant(name, random_tensor({c, c, 3, 3}, rng, -0.3f, 0.3f))},
                  {{"pads", ints({1, 1, 1, 1})}});
  };
  std::string a = b.node("Relu", {conv(in, "w1")});
  std::string s = b.node("Add", {conv(a, "w2"), a});
  std::string y = b.node("Relu", {s});
  std::string p = b.node("MaxPool", {y}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}});
  std::string gap = b.node("GlobalAveragePool", {p});
  b.output(b.node("Flatten", {gap}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  auto ops = fast_ops(g, inputs);
  EXPECT_TRUE(ran(ops, "Conv+Add+Relu"));
  EXPECT_TRUE(ran(ops, "MaxPool"));
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << "c " << c << " h " << h;
}

// A ResNet stem and bottleneck block (1x1, 3x3, 1x1 + residual) with the 1x1
// convolutions forced to nChw16c, as the layout autotune may choose: same results, and
// the blocks really used (after this stem oneDNN itself picks channels-last for them).
TEST_P(Seeded, BottleneckWithBlocked1x1) {
  int c = 16 * pick(1, 4), mid = 16 * pick(1, 2), h = pick(3, 14);
  Shape x{pick(1, 2), 3, 2 * h, 2 * h};
  GraphBuilder b;
  auto conv = [&](const std::string& v, const std::string& name, Shape w, int64_t stride = 1) {
    int64_t p = w[2] / 2;
    return b.node("Conv", {v, b.constant(name, random_tensor(w, rng, -0.2f, 0.2f)), b.constant(name + "b", random_tensor({w[0]}, rng))},
                  {{"pads", ints({p, p, p, p})}, {"strides", ints({stride, stride})}});
  };
  std::string in = b.node("Relu", {conv(b.input("x", x), "w0", {c, 3, 7, 7}, 2)});
  std::string a = b.node("Relu", {conv(in, "w1", {mid, c, 1, 1})});
  std::string m = b.node("Relu", {conv(a, "w2", {mid, mid, 3, 3})});
  std::string y = b.node("Relu", {b.node("Add", {conv(m, "w3", {c, mid, 1, 1}), in})});
  b.output(b.node("Relu", {conv(y, "w4", {c, c, 1, 1})}));  // the graph output stays plain
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  SessionOptions o;
  o.blocked_1x1 = true;
  o.autotune_layout = false;
  Session s(g, o);
  const Plan& plan = s.plan({x});
  int blocked_1x1 = 0;
  for (const auto& st : plan.steps()) {
    if (!st.node || st.node->op_type != "Conv" || !st.fast || plan.slots()[st.in[1]].shape[2] != 1) continue;
    const Layout& l = plan.slots()[st.out[0]].layout;
    blocked_1x1 += l.format_kind == dnnl_blocked && l.format_desc.blocking.inner_nblks == 1 &&
                   l.format_desc.blocking.inner_blks[0] == 16;
  }
  EXPECT_EQ(blocked_1x1, 2) << "x " << shape_str(x) << " c " << c;
  EXPECT_TRUE(ran(fast_ops(g, inputs, o), "Conv+Add+Relu"));
  EXPECT_LT(fast_vs_ref(g, inputs, o), kTol) << "x " << shape_str(x) << " c " << c << " mid " << mid;
  // The layout autotune (where the 3x3 layer takes Winograd) compiles and times both
  // layouts one after the other; whichever it keeps must still be right.
  SessionOptions tuned;
  tuned.autotune_layout = true;
  EXPECT_LT(fast_vs_ref(g, inputs, tuned), kTol) << "autotuned, x " << shape_str(x) << " c " << c;
}

// Whether rangeguard's own Winograd takes a 3x3 stride-1 convolution from c to m channels
// with an oh x ow output (sizes as the tests below make them): on AVX2 from 16 tiles, on
// AVX-512 for c a multiple of 16, m of 32, and 36 tiles of 2x2 or more.
bool ours_winograd(int64_t c, int64_t m, int64_t oh, int64_t ow) {
  if (fast_isa().rfind("avx2", 0) == 0) return true;
  return fast_isa().rfind("avx512", 0) == 0 && c % 16 == 0 && m % 32 == 0 && ((oh + 1) / 2) * ((ow + 1) / 2) >= 36;
}

// 3x3 stride-1 convolutions with enough output tiles take Winograd F(4x4, 3x3), or
// F(2x2, 3x3) on small images: odd sizes (partial tiles), uneven padding, a batch, a
// residual arriving plain, and each post-op it fuses. Where rangeguard's own kernel
// applies (ours_winograd) the test checks it ran; elsewhere oneDNN's Winograd or its
// direct kernel runs, and only the values are checked.
TEST_P(Seeded, Winograd3x3WithPostOps) {
  int64_t n = pick(1, 2), c = 8 * pick(2, 6), m = 16 * pick(1, 4), h = pick(9, 30), w = pick(9, 30);
  std::vector<int64_t> pads{pick(0, 2), pick(0, 2), pick(0, 2), pick(0, 2)};
  int64_t oh = h + pads[0] + pads[2] - 2, ow = w + pads[1] + pads[3] - 2;
  const bool ours = ours_winograd(c, m, oh, ow);
  GraphBuilder b;
  std::vector<std::string> conv_in{b.input("x", {n, c, h, w}), b.constant("w", random_tensor({m, c, 3, 3}, rng, -0.3f, 0.3f))};
  if (pick(0, 1)) conv_in.push_back(b.constant("b", random_tensor({m}, rng)));
  std::string y = b.node("Conv", conv_in, {{"pads", ints(pads)}});
  std::vector<Tensor> inputs{random_tensor({n, c, h, w}, rng)};
  int variant = pick(0, 4);
  std::string label = "Conv";
  if (variant == 0) {  // residual block tail
    y = b.node("Relu", {b.node("Add", {y, b.input("r", {n, m, oh, ow})})});
    inputs.push_back(random_tensor({n, m, oh, ow}, rng));
    label = "Conv+Add+Relu";
  } else if (variant == 1) {
    y = b.node("LeakyRelu", {y}, {{"alpha", Attribute::of_float(0.1f)}});
    label = "Conv+LeakyRelu";
  } else if (variant == 2) {  // a protected ReLU: Relu then Clip to a calibrated range
    y = b.node("Clip", {b.node("Relu", {y}), b.constant("lo", Tensor::scalar(-0.5f)), b.constant("hi", Tensor::scalar(0.7f))});
    label = "Conv+Relu+Clip";
  } else if (variant == 3) {  // protect's per-channel check, which becomes a RangeGuard
    Tensor lo = random_tensor({1, m, 1, 1}, rng, -0.5f, 0.1f), hi = random_tensor({1, m, 1, 1}, rng, 0.2f, 0.8f);
    y = b.node("Min", {b.node("Max", {b.node("Relu", {y}), b.constant("lo", lo)}), b.constant("hi", hi)});
    // Fused only into rangeguard's Winograd; elsewhere it runs as its own step.
    label = ours ? "Conv+Relu+RangeGuard" : "Conv+Relu";
  }
  // A graph output must be plain, which this kernel leaves to oneDNN; a 1x1 max pool
  // keeps the values and takes the blocked layout.
  b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({1, 1})}}));
  Graph g = b.build();
  std::string where = "x " + shape_str({n, c, h, w}) + " m " + std::to_string(m) + " variant " + std::to_string(variant);
  EXPECT_TRUE(ran_chain(fast_ops(g, inputs), label, variant == 2 && !ours)) << where;
  Session fast(g, {});
  std::vector<Shape> shapes;
  for (const auto& t : inputs) shapes.push_back(t.shape());
  std::string impl;
  for (const auto& st : fast.plan(shapes).steps())
    if (st.fast && st.node && st.node->op_type == "Conv") impl = st.fast->impl();
  where += " impl " + impl;
  EXPECT_EQ(impl.rfind("rg:wino_", 0) == 0, ours) << where;
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  expect_weight_change_seen(fast, g, inputs, pick(0, (int)(m * c * 9) - 1), where);
}

// rangeguard's Winograd between two 1x1 convolutions (a ResNet bottleneck's middle) reads
// its input in the layout the first one wrote, channels-last or channel-blocked as the
// plan's 1x1 layout says, and writes the same layout, so neither side converts. (Also run
// with ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 host, for the 8-lane kernel.)
TEST_P(Seeded, WinogradKeepsItsNeighboursLayout) {
  int64_t c = 32 * pick(1, 2), hw = pick(12, 30);
  SessionOptions o;
  o.blocked_1x1 = pick(0, 1);
  o.autotune_layout = false;
  GraphBuilder b;
  auto conv = [&](const std::string& v, const std::string& name, int64_t k) {
    return b.node("Relu", {b.node("Conv", {v, b.constant(name, random_tensor({c, c, k, k}, rng, -0.2f, 0.2f))},
                                  {{"pads", ints(std::vector<int64_t>(4, k / 2))}})});
  };
  std::string in = b.node("MaxPool", {b.input("x", {1, c, hw, hw})}, {{"kernel_shape", ints({1, 1})}});
  std::string y = conv(conv(conv(in, "w1", 1), "w", 3), "w3", 1);
  b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({1, 1})}}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({1, c, hw, hw}, rng)};
  std::string where = "c " + std::to_string(c) + " hw " + std::to_string(hw) + " blocked_1x1 " + std::to_string(o.blocked_1x1);
  Session s(g, o);
  const Plan& plan = s.plan({inputs[0].shape()});
  std::vector<Layout> conv_out;
  for (const auto& st : plan.steps()) {
    if (!st.node || st.node->op_type != "Conv") continue;
    ASSERT_TRUE(st.fast) << where;
    if (plan.slots()[st.in[1]].shape[2] == 3) {
      where += " impl " + st.fast->impl();
      EXPECT_EQ(st.fast->impl().rfind("rg:wino_", 0) == 0, ours_winograd(c, c, hw, hw)) << where;
    }
    conv_out.push_back(plan.slots()[st.out[0]].layout);
  }
  ASSERT_EQ(conv_out.size(), 3u) << where;
  // (With AVX2, nChw16c 1x1 layers are forced on the plan: the 8-lane kernel converts those.)
  const bool avx2 = fast_isa().rfind("avx2", 0) == 0;
  if (ours_winograd(c, c, hw, hw) && !(avx2 && o.blocked_1x1)) {
    EXPECT_TRUE(same_layout(conv_out[0], conv_out[1])) << where;
  }
  EXPECT_LT(fast_vs_ref(g, inputs, o), kTol) << where;
  expect_weight_change_seen(s, g, inputs, pick(0, (int)(c * c * 9) - 1), where);
}

// Which convolution a 3x3 layer gets by image size. With AVX-512, oneDNN's Winograd only
// from 64 outputs up: on smaller images (ResNet's 7x7) a layer waits for its weights, and
// Winograd's are 16/9 the direct ones (docs/speed.md). On AVX2 rangeguard's own Winograd
// keeps 7x7 images (F(2,3)), where it was measured to win.
TEST(FastKernels, WinogradBySize) {
  std::mt19937 rng(7);
  for (int64_t hw : {7, 14}) {
    GraphBuilder b;
    std::string y = b.node("Conv", {b.input("x", {1, 32, hw, hw}), b.constant("w", random_tensor({32, 32, 3, 3}, rng))},
                           {{"pads", ints({1, 1, 1, 1})}});
    b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({1, 1})}}));  // keeps the conv's layout
    Graph g = b.build();
    Session s(g, {});
    std::string impl;
    for (const auto& st : s.plan({Shape{1, 32, hw, hw}}).steps())
      if (st.fast && st.node && st.node->op_type == "Conv") impl = st.fast->impl();
    bool wino = impl.find("wino") != std::string::npos;
    if (fast_isa().rfind("avx2", 0) == 0) {
      EXPECT_TRUE(wino) << hw << "x" << hw << ": " << impl;
    } else if (fast_isa().rfind("avx512", 0) == 0) {
      EXPECT_EQ(wino, hw * hw >= 64) << hw << "x" << hw << ": " << impl;
    }
    EXPECT_LT(fast_vs_ref(g, {random_tensor({1, 32, hw, hw}, rng)}), kTol) << hw;
  }
}

// Inputs a kernel converts to another layout (here plain NCHW into a convolution's
// blocked or channels-last one) live in the plan's shared scratch, not in a buffer per
// kernel: four branches need no more of it than two, and the results stay right. (One
// branch alone would be a graph output, which oneDNN gives another kernel.)
TEST(FastKernels, ConvertedInputsShareThePlansScratch) {
  std::mt19937 rng(11);
  const Shape x{1, 32, 28, 28};
  size_t two_branches = 0;
  for (int branches : {2, 4}) {
    GraphBuilder b;
    std::string sum;
    std::vector<Tensor> inputs;
    for (int i = 0; i < branches; i++) {
      std::string w = b.constant("w" + std::to_string(i), random_tensor({32, 32, 1, 1}, rng));
      std::string y = b.node("Conv", {b.input("x" + std::to_string(i), x), w});
      sum = sum.empty() ? y : b.node("Add", {sum, y});
      inputs.push_back(random_tensor(x, rng));
    }
    b.output(sum);
    Graph g = b.build();
    Session s(g, {});
    std::vector<Shape> shapes(branches, x);
    size_t scratch = s.plan(shapes).scratch_bytes();
    EXPECT_GE(scratch, (size_t)shape_numel(x) * sizeof(float)) << branches << " branches";
    if (branches == 2) two_branches = scratch;
    else EXPECT_EQ(scratch, two_branches);
    EXPECT_LT(fast_vs_ref(g, inputs), kTol) << branches << " branches";
  }
}

// A thread threshold already known (the layout autotune compiling a plan again) is
// applied as given instead of being timed: everything on one thread, or nothing.
TEST(FastKernels, KnownThreadThresholdIsApplied) {
  std::mt19937 rng(13);
  const Shape x{1, 16, 12, 12};
  GraphBuilder b;
  std::string y = b.node("Relu", {b.node("Conv", {b.input("x", x), b.constant("w1", random_tensor({32, 16, 3, 3}, rng))},
                                         {{"pads", ints({1, 1, 1, 1})}})});
  y = b.node("Conv", {y, b.constant("w2", random_tensor({16, 32, 1, 1}, rng))});
  b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({2, 2})}}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  for (double known : {0.0, 1e30}) {
    SessionOptions o;
    o.threads = 2;
    o.single_thread_below = known;
    Session s(g, o);
    const Plan& plan = s.plan({x});
    EXPECT_EQ(plan.single_thread_below(), known);
    for (const auto& st : plan.steps()) {
      if (!st.node) continue;
      EXPECT_EQ(st.threads, known > 0 ? 1 : 0) << st.node->op_type << " with threshold " << known;
    }
    EXPECT_LT(fast_vs_ref(g, inputs, o), kTol) << known;
  }
}

// Grouped 3x3 convolutions with 8 channels per group (RegNet): stride 1 or 2, any
// padding, rows from 1 pixel to more than two tiles wide, a batch, and each post-op the
// kernel applies. On AVX2 it is rangeguard's own kernel and the test checks it ran.
TEST_P(Seeded, GroupedConvEightChannelsPerGroup) {
  int64_t n = pick(1, 3), groups = pick(1, 7), c = 8 * groups, stride = pick(1, 2);
  std::vector<int64_t> pads{pick(0, 2), pick(0, 2), pick(0, 2), pick(0, 2)};
  int64_t h = pick(3 - pads[0] - pads[2] > 1 ? 3 - pads[0] - pads[2] : 1, 29);
  int64_t w = pick(3 - pads[1] - pads[3] > 1 ? 3 - pads[1] - pads[3] : 1, 29);
  int64_t oh = (h + pads[0] + pads[2] - 3) / stride + 1, ow = (w + pads[1] + pads[3] - 3) / stride + 1;
  GraphBuilder b;
  std::vector<std::string> conv_in{b.input("x", {n, c, h, w}), b.constant("w", random_tensor({c, 8, 3, 3}, rng, -0.3f, 0.3f))};
  if (pick(0, 1)) conv_in.push_back(b.constant("b", random_tensor({c}, rng)));
  std::string y = b.node("Conv", conv_in, {{"pads", ints(pads)}, {"group", Attribute::of_int(groups)},
                                           {"strides", ints({stride, stride})}});
  std::vector<Tensor> inputs{random_tensor({n, c, h, w}, rng)};
  int variant = pick(0, 4);
  std::string label = "Conv";
  if (variant == 0) {
    y = b.node("Relu", {b.node("Add", {y, b.input("r", {n, c, oh, ow})})});
    inputs.push_back(random_tensor({n, c, oh, ow}, rng));
    label = "Conv+Add+Relu";
  } else if (variant == 1) {
    y = b.node("PRelu", {y, b.constant("slope", random_tensor({c, 1, 1}, rng, 0.f, 0.3f))});
    // oneDNN's AVX-512 grouped convolution takes a prelu post-op only in its reference
    // kernel, so there the planner leaves the PRelu a step of its own.
    label = fast_isa().rfind("avx2", 0) == 0 ? "Conv+PRelu" : "PRelu";
  } else if (variant == 2) {
    y = b.node("Clip", {b.node("Relu", {y}), b.constant("lo", Tensor::scalar(-0.5f)), b.constant("hi", Tensor::scalar(0.7f))});
    label = "Conv+Relu+Clip";
  } else if (variant == 3) {  // protect's per-channel check (a RangeGuard step), fused
    Tensor lo = random_tensor({1, c, 1, 1}, rng, -0.5f, 0.1f), hi = random_tensor({1, c, 1, 1}, rng, 0.2f, 0.8f);
    y = b.node("Min", {b.node("Max", {b.node("Relu", {y}), b.constant("lo", lo)}), b.constant("hi", hi)});
    label = fast_isa().rfind("avx2", 0) == 0 ? "Conv+Relu+RangeGuard" : "Conv+Relu";
  }
  b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({1, 1})}}));  // keeps the conv's output blocked
  Graph g = b.build();
  std::string where = "x " + shape_str({n, c, h, w}) + " stride " + std::to_string(stride) + " pads " +
                      std::to_string(pads[0]) + std::to_string(pads[1]) + std::to_string(pads[2]) +
                      std::to_string(pads[3]) + " variant " + std::to_string(variant);
  EXPECT_TRUE(ran_chain(fast_ops(g, inputs), label, variant == 2)) << where;
  Session fast(g, {});
  if (fast_isa().rfind("avx2", 0) == 0) {
    std::vector<Shape> shapes;
    for (const auto& t : inputs) shapes.push_back(t.shape());
    for (const auto& st : fast.plan(shapes).steps())
      if (st.fast && st.node && st.node->op_type == "Conv") {
        EXPECT_EQ(st.fast->impl(), "rg:group8_conv:avx2") << where;
      }
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  expect_weight_change_seen(fast, g, inputs, pick(0, (int)(c * 8 * 9) - 1), where);
}

// A pooling after a grouped convolution (RegNet's squeeze-excite input): in bf16 on AMX
// that convolution's output is nChw8c, which oneDNN's jit pooling does not take; its
// reference kernel then cost 25 of regnet_y_400mf's 37 ms. The pool converts its input
// instead: wherever oneDNN has a jit pooling for the precision, none runs its reference.
TEST_P(Seeded, PoolingAfterGroupedConvAvoidsReferenceKernel) {
  int64_t n = pick(1, 2), groups = pick(2, 8), c = 8 * groups, h = pick(4, 20);
  const char* pools[] = {"GlobalAveragePool", "AveragePool", "MaxPool"};
  const char* pool = pools[pick(0, 2)];
  GraphBuilder b;
  std::string y = b.node("Conv", {b.input("x", {n, c, h, h}), b.constant("w", random_tensor({c, 8, 3, 3}, rng, -0.3f, 0.3f))},
                         {{"pads", ints({1, 1, 1, 1})}, {"group", Attribute::of_int(groups)}});
  std::map<std::string, Attribute> attrs;
  if (std::string(pool) != "GlobalAveragePool") attrs["kernel_shape"] = ints({2, 2});
  b.output(b.node(pool, {b.node("Relu", {y})}, attrs));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, c, h, h}, rng)};
  std::string where = std::string(pool) + " x " + shape_str({n, c, h, h});
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    SessionOptions o;
    o.precision = p;
    Session fast(g, o);
    for (const auto& st : fast.plan({inputs[0].shape()}).steps())
      if (st.fast && st.node && st.node->op_type == pool && (p == Precision::fp32 || fast_bf16_native())) {
        EXPECT_EQ(st.fast->impl().find("ref"), std::string::npos) << where << " " << st.fast->impl();
      }
    EXPECT_LT(fast_vs_ref(g, inputs, o), p == Precision::fp32 ? kTol : 0.05) << where;
  }
}

// ReduceMean over the spatial axes (ShuffleNet's head) runs as a global average pool on
// the conv's blocked output: axes as an attribute (opset 17) or an input (18), negative or
// not, with and without keepdims (then a Gemm reads the [N, C] result, which must be plain:
// channels that are not whole blocks leave it to the reference). Axis 1 is no pool.
TEST_P(Seeded, ReduceMeanOverSpatialAxesAsPool) {
  int64_t n = pick(1, 3), c = pick(0, 1) ? 16 * pick(1, 4) : pick(3, 30), h = pick(1, 9), w = pick(1, 9);
  int64_t opset = pick(0, 1) ? 17 : 18;
  bool keep = pick(0, 1), spatial = pick(0, 4) > 0;
  std::vector<int64_t> axes = !spatial ? std::vector<int64_t>{1} : pick(0, 1) ? std::vector<int64_t>{-1, -2} : std::vector<int64_t>{2, 3};
  GraphBuilder b(opset);
  std::string y = b.node("Relu", {b.node("Conv", {b.input("x", {n, c, h, w}), b.constant("w", random_tensor({c, c, 1, 1}, rng))})});
  std::map<std::string, Attribute> attrs{{"keepdims", Attribute::of_int(keep)}};
  std::vector<std::string> in{y};
  if (opset >= 18) in.push_back(b.constant("axes", Tensor::from_vector<int64_t>({(int64_t)axes.size()}, axes)));
  else attrs["axes"] = ints(axes);
  y = b.node("ReduceMean", in, attrs);
  if (!keep && spatial) y = b.node("Gemm", {y, b.constant("g", random_tensor({5, c}, rng))}, {{"transB", Attribute::of_int(1)}});
  b.output(y);
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, c, h, w}, rng)};
  std::string where = "x " + shape_str({n, c, h, w}) + " opset " + std::to_string(opset) + " keepdims " + std::to_string(keep) +
                      " axes " + std::to_string(axes[0]);
  bool fast = ran(fast_ops(g, inputs), "ReduceMean");
  if (!spatial) {
    EXPECT_FALSE(fast) << where;
  } else if (keep || c % 16 == 0) {
    EXPECT_TRUE(fast) << where;
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  // A bf16 plan pools in bf16: the [N, C] result must still reach the Gemm as fp32
  // (read as fp32, its bf16 bytes broke ShuffleNet's head on AMX: max rel err 1.37).
  SessionOptions bf;
  bf.precision = Precision::bf16;
  EXPECT_LT(fast_vs_ref(g, inputs, bf), 0.05) << where << " bf16";
  // ... and still pools there: in fp32, after a conversion (it was the reference reduction).
  if (spatial && c % 16 == 0 && fast_bf16_native()) {
    Session s16(g, bf);
    const Plan& p16 = s16.plan({inputs[0].shape()});
    for (const auto& st : p16.steps()) {
      if (st.node && st.node->op_type == "ReduceMean") {
        EXPECT_TRUE(st.fast) << where << " bf16";
      }
    }
  }
}

// A squeeze-excite block (EfficientNet, MobileNetV3): the [N, C, 1, 1] scale from the
// excite convolution reaches the Mul as is, and the Mul runs oneDNN's jit kernel on the
// blocked activation (not the reference kernel) whenever the channels are a whole number
// of blocks; with padded channels oneDNN's binary still takes both as they arrive. After
// a grouped convolution of 8 channels per group (RegNet), whose output is nChw8c on
// AVX-512 where oneDNN's binary has only its reference kernel, rangeguard's runs it.
TEST_P(Seeded, SqueezeExciteMul) {
  bool grouped = pick(0, 2) == 0;
  int64_t n = pick(1, 3), c = grouped ? 8 * pick(1, 6) : pick(0, 1) ? 16 * pick(1, 4) : pick(3, 40), h = pick(3, 14);
  GraphBuilder b;
  std::string y = b.node("Relu", {b.node("Conv", {b.input("x", {n, c, h, h}),
                                                  b.constant("w", random_tensor({c, grouped ? 8 : c, 3, 3}, rng, -0.3f, 0.3f))},
                                         {{"pads", ints({1, 1, 1, 1})}, {"group", Attribute::of_int(grouped ? c / 8 : 1)}})});
  std::string sq = b.node("Relu", {b.node("Conv", {b.node("GlobalAveragePool", {y}), b.constant("w1", random_tensor({4, c, 1, 1}, rng))})});
  std::string s = b.node("Sigmoid", {b.node("Conv", {sq, b.constant("w2", random_tensor({c, 4, 1, 1}, rng))})});
  std::string m = b.node(pick(0, 1) ? "Mul" : "Add", pick(0, 1) ? std::vector<std::string>{y, s} : std::vector<std::string>{s, y});
  // A 3x3 projection: after a 1x1 one the scale would move onto its weights at batch 1
  // (SqueezeExciteScaleMovesOntoWeights), and the Mul tested here would not run.
  b.output(b.node("Conv", {m, b.constant("w3", random_tensor({8, c, 3, 3}, rng))}, {{"pads", ints({1, 1, 1, 1})}}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, c, h, h}, rng)};
  std::string where = "x " + shape_str({n, c, h, h}) + (grouped ? " grouped" : "");
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  for (const auto& st : plan.steps()) {
    if (!st.node || (st.node->op_type != "Mul" && st.node->op_type != "Add")) continue;
    ASSERT_TRUE(st.fast) << where;
    bool blocked = !is_plain(plan.slots()[st.out[0]].layout);
    if (c % 16 == 0 || grouped) {
      EXPECT_TRUE(blocked && st.fast->impl().find("ref") == std::string::npos) << where << " " << st.fast->impl();
    }
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  // In bf16 the grouped convolution's nChw8c output and the channels-last scale met
  // oneDNN's reference binary, which rangeguard ran in fp32 after reorders to plain.
  SessionOptions bf;
  bf.precision = Precision::bf16;
  if (grouped && fast_bf16_native()) {
    Session s16(g, bf);
    const Plan& p16 = s16.plan({inputs[0].shape()});
    for (const auto& st : p16.steps())
      if (st.node && (st.node->op_type == "Mul" || st.node->op_type == "Add")) {
        ASSERT_TRUE(st.fast) << where << " bf16";
        EXPECT_EQ(st.fast->impl().find("ref"), std::string::npos) << where << " bf16 " << st.fast->impl();
      }
  }
  EXPECT_LT(fast_vs_ref(g, inputs, bf), 0.05) << where << " bf16";
}

// Squeeze-excite's scale followed by a 1x1 projection: in fp32 at batch 1, where the
// projection's weights are far the smaller, the plan scales the weights instead of the activation
// (Plan::move_scale_into_weights); elsewhere the Mul runs as written. Either way the
// result matches the reference, in fp32 and bf16, and a weight changed in place (fault
// injection) reaches the scaled copy.
TEST_P(Seeded, SqueezeExciteScaleMovesOntoWeights) {
  int64_t n = pick(1, 4) == 1 ? 2 : 1, c = pick(0, 1) ? 16 * pick(1, 4) : pick(3, 40), h = pick(2, 14), o = pick(2, 24);
  GraphBuilder b;
  std::string y = b.node("Relu", {b.node("Conv", {b.input("x", {n, c, h, h}),
                                                  b.constant("w0", random_tensor({c, c, 3, 3}, rng, -0.3f, 0.3f))},
                                         {{"pads", ints({1, 1, 1, 1})}})});
  std::string sq = b.node("Relu", {b.node("Conv", {b.node("GlobalAveragePool", {y}), b.constant("w1", random_tensor({4, c, 1, 1}, rng))})});
  std::string s = b.node("Sigmoid", {b.node("Conv", {sq, b.constant("w2", random_tensor({c, 4, 1, 1}, rng))})});
  std::string m = b.node("Mul", pick(0, 1) ? std::vector<std::string>{y, s} : std::vector<std::string>{s, y});
  b.output(b.node("Conv", {m, b.constant("w", random_tensor({o, c, 1, 1}, rng)), b.constant("bias", random_tensor({o}, rng))}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, c, h, h}, rng)};
  std::string where = "x " + shape_str({n, c, h, h}) + " to " + std::to_string(o) + " channels";
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  bool moved = false;
  for (const auto& st : plan.steps())
    if (st.node && st.node->op_type == "Mul") moved = plan.slots()[st.in[0]].name == "w";
  EXPECT_EQ(moved, n == 1 && o * 8 <= h * h) << where;

  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  SessionOptions bf;
  bf.precision = Precision::bf16;
  EXPECT_LT(fast_vs_ref(g, inputs, bf), 0.05) << where << " bf16";
  Session s16(g, bf);
  const Plan& p16 = s16.plan({inputs[0].shape()});
  for (const auto& st : p16.steps())
    if (st.node && st.node->op_type == "Mul") {
      EXPECT_NE(p16.slots()[st.in[0]].name, "w") << where << " bf16: fp32 plans only";
    }
  expect_weight_change_seen(fast, g, inputs, pick(0, (int)(o * c - 1)), where);
}

// A conv's blocked output (after a fused Relu, so nothing folds into the conv) meets a
// plain scalar or per-channel second operand, constant or computed: oneDNN's jit takes it
// once it is reordered into the conv's blocking (it ran the reference kernel before).
// Div on padded channels (0/0 would fill the padding) has only oneDNN's reference kernel,
// so rangeguard's own runs it instead.
TEST_P(Seeded, BlockedThenPlainBroadcastOperand) {
  int64_t m = pick(0, 1) ? 16 * pick(1, 3) : pick(2, 40), h = pick(3, 12);
  const char* ops[] = {"Add", "Sub", "Mul", "Div"};
  std::string op = ops[pick(0, 3)];
  std::vector<Shape> kinds{{}, {1}, {m, 1, 1}, {1, m, 1, 1}};
  Shape s = kinds[pick(0, 3)];
  bool computed = pick(0, 3) == 0;
  GraphBuilder b;
  std::vector<Tensor> inputs{random_tensor({1, 8, h, h}, rng)};
  std::string x = b.input("x", {1, 8, h, h});
  std::string y = b.node("Relu", {b.node("Conv", {x, b.constant("w", random_tensor({m, 8, 3, 3}, rng, -0.3f, 0.3f))},
                                         {{"pads", ints({1, 1, 1, 1})}})});
  std::string k;
  if (computed) {
    s = {1, m, 1, 1};
    k = b.input("k", s);
    inputs.push_back(random_tensor(s, rng, 0.5f, 2.f));
  } else {
    k = b.constant("k", random_tensor(s, rng, 0.5f, 2.f));
  }
  bool swap = (op == "Add" || op == "Mul") && pick(0, 1);
  y = b.node(op, swap ? std::vector<std::string>{k, y} : std::vector<std::string>{y, k});
  b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({1, 1})}}));  // keeps the layout
  Graph g = b.build();
  std::string where = op + " m " + std::to_string(m) + " operand " + shape_str(s) + (computed ? " computed" : "");
  Session fast(g, {});
  std::vector<Shape> shapes;
  for (const auto& t : inputs) shapes.push_back(t.shape());
  const Plan& plan = fast.plan(shapes);
  for (const auto& st : plan.steps()) {
    if (!st.node || st.node->op_type != op) continue;
    bool padded = s.size() < 3 || m % 16 != 0;
    if (op != "Div" || !padded) {
      ASSERT_TRUE(st.fast) << where;
    }
    if (st.fast) {
      EXPECT_EQ(st.fast->impl().find("ref"), std::string::npos) << where << " " << st.fast->impl();
    }
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

// PRelu after a convolution: fused where the kernel runs it natively (rangeguard's
// Winograd, as a per-channel leaky ReLU; one slope is a leaky ReLU for any kernel), else
// oneDNN's prelu on the conv's layout. Never a reference kernel.
TEST_P(Seeded, ConvPRelu) {
  int64_t c = 8 * pick(1, 4), m = pick(0, 1) ? 16 * pick(1, 3) : pick(1, 40), k = pick(0, 1) ? 3 : 1, h = pick(5, 20);
  GraphBuilder b;
  std::string y = b.node("Conv", {b.input("x", {1, c, h, h}), b.constant("w", random_tensor({m, c, k, k}, rng, -0.3f, 0.3f))},
                         {{"pads", ints(std::vector<int64_t>(4, k / 2))}});
  Shape slope = pick(0, 3) ? Shape{m, 1, 1} : Shape{1};
  y = b.node("PRelu", {y, b.constant("slope", random_tensor(slope, rng, -0.5f, 0.5f))});
  b.output(b.node("MaxPool", {y}, {{"kernel_shape", ints({1, 1})}}));  // keeps the conv's layout
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({1, c, h, h}, rng)};
  std::string where = "c " + std::to_string(c) + " m " + std::to_string(m) + " k " + std::to_string(k) + " slope " + shape_str(slope);
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  for (const auto& st : plan.steps()) {
    if (!st.node || (st.node->op_type != "Conv" && st.node->op_type != "PRelu")) continue;
    ASSERT_TRUE(st.fast) << where;
    where += " " + st.node->op_type + (st.fused.empty() ? "" : "+PRelu") + " " + st.fast->impl();
    EXPECT_EQ(st.fast->impl().find("ref"), std::string::npos) << where;
    bool wino = k == 3 && c >= 16 && m % 16 == 0 && h >= 7 && fast_isa().rfind("avx2", 0) == 0;
    if (st.node->op_type == "Conv" && wino) {
      EXPECT_EQ(st.fused.size(), 1u) << where;
    }
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

TEST_P(Seeded, ConvTranspose) {
  int c = pick(1, 8), m = pick(1, 8), k = pick(1, 4), s = pick(1, 3), h = pick(2, 9);
  int op = pick(0, s - 1);
  GraphBuilder b;
  Shape x{pick(1, 2), c, h, h + 1};
  std::string y = b.node("ConvTranspose", {b.input("x", x), b.constant("w", random_tensor({c, m, k, k}, rng)),
                                           b.constant("b", random_tensor({m}, rng))},
                         {{"strides", ints({s, s})}, {"output_padding", ints({op, op})},
                          {"pads", ints({0, std::min(1, k - 1), 0, 0})}});
  b.output(y);
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor(x, rng)};
  EXPECT_TRUE(ran(fast_ops(g, in), "ConvTranspose"));
  EXPECT_LT(fast_vs_ref(g, in), kTol);
}

TEST_P(Seeded, Pooling) {
  int k = pick(1, 4), s = pick(1, 3), h = pick(k, 15), p = pick(0, k / 2);
  bool ceil = pick(0, 1), avg = pick(0, 1), include = pick(0, 1);
  GraphBuilder b;
  Shape x{pick(1, 2), pick(1, 17), h, h};
  std::map<std::string, Attribute> attrs = {{"kernel_shape", ints({k, k})}, {"strides", ints({s, s})},
                                            {"pads", ints({p, p, p, p})}, {"ceil_mode", Attribute::of_int(ceil)}};
  if (avg) attrs["count_include_pad"] = Attribute::of_int(include);
  std::string op = avg ? "AveragePool" : "MaxPool";
  b.output(b.node(op, {b.input("x", x)}, attrs));
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor(x, rng)};
  if (!(avg && include && ceil)) {
    EXPECT_TRUE(ran(fast_ops(g, in), op));
  }
  EXPECT_LT(fast_vs_ref(g, in), kTol) << op << " k" << k << " s" << s << " p" << p << " ceil" << ceil;
}

// MaxPool on a conv's blocked output (ResNet's stem pool): uneven pads, ceil mode, any
// window and stride. On AVX2 the nChw8c/16c input takes rangeguard's own loop, and so
// does a channels-last one (C a multiple of 8 above 16) on any AVX2 CPU.

TEST_P(Seeded, MaxPoolAfterConv) {
  int64_t k = pick(1, 4), s = pick(1, 3), m = 8 * pick(1, 5) - pick(0, 1) * pick(1, 7);
  Shape x{pick(1, 2), pick(1, 9), pick(k, 30), pick(k, 30)};
  std::vector<int64_t> pads{pick(0, k - 1), pick(0, k - 1), pick(0, k - 1), pick(0, k - 1)};
  GraphBuilder b;
  std::string y = b.node("Relu", {b.node("Conv", {b.input("x", x), b.constant("w", random_tensor({m, x[1], 3, 3}, rng))},
                                         {{"pads", ints({1, 1, 1, 1})}})});
  y = b.node("MaxPool", {y}, {{"kernel_shape", ints({k, k})}, {"strides", ints({s, s})}, {"pads", ints(pads)},
                              {"ceil_mode", Attribute::of_int(pick(0, 1))}});
  b.output(b.node("Conv", {y, b.constant("w2", random_tensor({8, m, 1, 1}, rng))}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  std::string where = "x " + shape_str(x) + " m " + std::to_string(m) + " k " + std::to_string(k) + " s " + std::to_string(s);
  Session fast(g, {});
  const Plan& plan = fast.plan({x});
  for (const auto& st : plan.steps()) {
    if (!st.node || st.node->op_type != "MaxPool") continue;
    ASSERT_TRUE(st.fast) << where;
    const Layout& in = plan.slots()[st.in[0]].layout;
    int64_t block = dnnl_util::channel_block(in);
    if (fast_isa().rfind("avx2", 0) == 0 && (block == 8 || block == 16)) {
      EXPECT_EQ(st.fast->impl(), "rg:maxpool_blocked:avx2") << where;
    }
    bool nhwc = !is_plain(in) && dnnl::memory::desc(in) == dnnl::memory::desc({x[0], m, x[2], x[3]}, dnnl::memory::data_type::f32,
                                                                              dnnl::memory::format_tag::nhwc);
    if (nhwc && m % 8 == 0 && m > 16) {
      EXPECT_EQ(st.fast->impl(), "rg:maxpool_nhwc:avx2") << where;
    }
    where += " impl " + st.fast->impl();
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

// ResNet's stem (7x7 stride-2 Conv, ReLU, 3x3 stride-2 MaxPool): with AVX-512 oneDNN
// writes the 64 channels channels-last, and rangeguard's pool reads them so.
TEST(FastKernels, StemPoolReadsChannelsLast) {
  std::mt19937 rng(11);
  for (int64_t hw : {32, 57}) {
    Shape x{1, 3, hw, hw};
    GraphBuilder b;
    std::string y = b.node("Relu", {b.node("Conv", {b.input("x", x), b.constant("w", random_tensor({64, 3, 7, 7}, rng, -0.2f, 0.2f))},
                                           {{"pads", ints({3, 3, 3, 3})}, {"strides", ints({2, 2})}})});
    y = b.node("MaxPool", {y}, {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}});
    b.output(b.node("Conv", {y, b.constant("w2", random_tensor({16, 64, 1, 1}, rng))}));
    Graph g = b.build();
    Session fast(g, {});
    const Plan& plan = fast.plan({x});
    std::string impl, where = "hw " + std::to_string(hw);
    for (const auto& st : plan.steps())
      if (st.node && st.node->op_type == "MaxPool" && st.fast) impl = st.fast->impl();
    where += " impl " + impl;
    if (fast_isa().rfind("avx512", 0) == 0) {
      EXPECT_EQ(impl, "rg:maxpool_nhwc:avx2") << where;
    }
    EXPECT_LT(fast_vs_ref(g, {random_tensor(x, rng)}), kTol) << where;
  }
}

TEST_P(Seeded, GemmAndMatMul) {
  int m = pick(1, 9), k = pick(1, 33), n = pick(1, 17);
  bool ta = pick(0, 1), tb = pick(0, 1);
  GraphBuilder b;
  Shape a = ta ? Shape{k, m} : Shape{m, k};
  Shape w = tb ? Shape{n, k} : Shape{k, n};
  Shape cs = pick(0, 1) ? Shape{n} : Shape{1, n};
  std::string y = b.node("Gemm", {b.input("a", a), b.constant("w", random_tensor(w, rng)), b.constant("c", random_tensor(cs, rng))},
                         {{"transA", Attribute::of_int(ta)}, {"transB", Attribute::of_int(tb)},
                          {"alpha", Attribute::of_float(0.5f + pick(0, 2))}, {"beta", Attribute::of_float(pick(0, 2) * 0.75f)}});
  y = b.node("Relu", {y});
  int batch = pick(1, 3);
  std::string mm = b.node("MatMul", {b.input("p", {batch, 2, m, k}), b.constant("q", random_tensor({k, n}, rng))});
  b.output(y);
  b.output(mm);
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor(a, rng), random_tensor({batch, 2, m, k}, rng)};
  auto ops = fast_ops(g, in);
  EXPECT_TRUE(ran(ops, "Gemm+Relu"));
  EXPECT_TRUE(ran(ops, "MatMul"));
  EXPECT_LT(fast_vs_ref(g, in), kTol);
}

// A transformer's MLP (Linear -> GELU -> Linear, per-column bias) and a classifier Gemm
// with transposed weights. Where oneDNN's matmul has only its gemm:jit path (AVX2), these
// run as 1x1 convolutions on the same bytes; a per-column range check (protect's channel
// bounds) keeps the matmul.
TEST_P(Seeded, LinearLayersAsConvolutions) {
  int64_t batch = pick(1, 2), t = pick(1, 70), d = 8 * pick(1, 8) + pick(0, 1) * pick(1, 7), h = pick(1, 40);
  bool checked = pick(0, 3) == 0;
  GraphBuilder b;
  std::string x = b.input("x", {batch, t, d});
  std::string y = b.node("MatMul", {x, b.constant("w1", random_tensor({d, h}, rng))});
  y = b.node("Gelu", {b.node("Add", {y, b.constant("b1", random_tensor({h}, rng))})});
  if (checked) y = b.node("Max", {y, b.constant("lo", random_tensor({h}, rng, -0.2f, 0.f))});
  y = b.node("Add", {b.node("MatMul", {y, b.constant("w2", random_tensor({h, d}, rng))}), b.constant("b2", random_tensor({d}, rng))});
  b.output(b.node("Add", {y, x}));
  std::string g = b.node("Gemm", {b.input("f", {batch, d}), b.constant("wc", random_tensor({h, d}, rng)), b.constant("bc", random_tensor({h}, rng))},
                         {{"transB", Attribute::of_int(1)}});
  b.output(b.node("Selu", {g}));
  Graph graph = b.build();
  std::vector<Tensor> inputs{random_tensor({batch, t, d}, rng), random_tensor({batch, d}, rng)};
  std::string where = "t " + std::to_string(t) + " d " + std::to_string(d) + " h " + std::to_string(h) + (checked ? " checked" : "");
  Session fast(graph, {});
  const Plan& plan = fast.plan({inputs[0].shape(), inputs[1].shape()});
  int convs = 0, matmuls = 0;
  for (const auto& st : plan.steps()) {
    if (!st.node || (st.node->op_type != "MatMul" && st.node->op_type != "Gemm")) continue;
    ASSERT_TRUE(st.fast) << where << " " << st.node->op_type;
    // oneDNN names its matmuls "gemm:jit" (AVX2) or "brg:<isa>" (AVX-512, where Linear
    // layers stay matmuls); anything else is the 1x1 convolution.
    const std::string impl = st.fast->impl();
    bool conv = impl.find("gemm") == std::string::npos && impl.find(":brg:") == std::string::npos;
    convs += conv;
    matmuls++;
    if (checked && st.fused.size() > 1 && st.fused.back()->op_type == "Max") {
      EXPECT_FALSE(conv) << where;
    }
  }
  EXPECT_EQ(matmuls, 3) << where;
  if (fast_isa() == "avx2") {
    EXPECT_GE(convs, checked ? 2 : 3) << where;
  }
  EXPECT_LT(fast_vs_ref(graph, inputs), kTol) << where;
}

// Attention scores scaled by a constant (before the MatMul, as PyTorch exports it, or
// after), and a Gemm with a bias and a scale: the scale becomes the product's output
// scale, also when an activation follows.
TEST_P(Seeded, ScaledMatMulAndGemm) {
  int64_t heads = pick(1, 4), t = pick(1, 20), d = pick(1, 33), m = pick(1, 9), n = pick(1, 17);
  float c = 0.25f + (float)pick(0, 8);
  GraphBuilder b;
  auto scale = [&](const std::string& x, const std::string& name) {
    return pick(0, 1) ? b.node("Div", {x, b.constant(name, Tensor::from_vector<float>({}, {c}))})
                      : b.node("Mul", {b.constant(name, Tensor::from_vector<float>({1}, {1.f / c})), x});
  };
  std::string q = b.input("q", {heads, t, d}), k = b.input("k", {heads, d, t});
  bool before = pick(0, 1);
  std::string s = b.node("MatMul", {before ? scale(q, "c1") : q, k});
  b.output(b.node("Softmax", {before ? s : scale(s, "c1")}));
  // A constant weight takes the scale itself (pass fold_scale_shift); a computed one
  // leaves it to the kernel.
  bool const_w = pick(0, 1);
  std::string a = b.input("a", {m, d});
  std::string w = const_w ? b.constant("w", random_tensor({d, n}, rng)) : b.input("w", {d, n});
  std::string g = b.node("Gemm", {a, w, b.constant("bias", random_tensor({n}, rng))},
                         {{"alpha", Attribute::of_float(0.5f + pick(0, 2))}});
  b.output(b.node("Relu", {scale(g, "c2")}));
  Graph graph = b.build();
  std::vector<Tensor> inputs{random_tensor({heads, t, d}, rng), random_tensor({heads, d, t}, rng), random_tensor({m, d}, rng)};
  if (!const_w) inputs.push_back(random_tensor({d, n}, rng));
  auto ops = fast_ops(graph, inputs);
  std::string where = std::string(before ? "scaled before" : "scaled after") + (const_w ? ", constant weight" : "");
  EXPECT_TRUE(ran(ops, "MatMul+Div") || ran(ops, "MatMul+Mul")) << where;
  if (const_w) {
    EXPECT_TRUE(ran(ops, "Gemm+Relu")) << where;
  } else {
    EXPECT_TRUE(ran(ops, "Gemm+Div+Relu") || ran(ops, "Gemm+Mul+Relu")) << where;
  }
  EXPECT_LT(fast_vs_ref(graph, inputs), kTol) << where;
}

TEST_P(Seeded, BinaryBroadcastSoftmaxNorms) {
  int n = pick(1, 3), c = pick(1, 16), h = pick(1, 9);
  GraphBuilder b;
  Shape x{n, c, h, h};
  std::string in = b.input("x", x);
  std::string s1 = b.node("Add", {b.constant("bias", random_tensor({c, 1, 1}, rng)), in});  // broadcast first
  std::string s2 = b.node("Mul", {s1, b.constant("scale", random_tensor({1, c, 1, h}, rng))});
  std::string s3 = b.node("Sub", {s2, b.constant("off", random_tensor({h}, rng))});
  std::string bn = b.node("BatchNormalization", {s3, b.constant("g", random_tensor({c}, rng)), b.constant("be", random_tensor({c}, rng)),
                                                 b.constant("mu", random_tensor({c}, rng)), b.constant("var", random_tensor({c}, rng, 0.5f, 2.f))});
  std::string sm = b.node("Softmax", {bn}, {{"axis", Attribute::of_int(pick(-4, 3))}});
  std::string ln = b.node("LayerNormalization", {bn, b.constant("lg", random_tensor({h}, rng)), b.constant("lb", random_tensor({h}, rng))});
  b.output(sm);
  b.output(ln);
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng, -3.f, 3.f)};
  auto ops = fast_ops(g, inputs);
  // The Mul's [1, C, 1, W] operand has no jit broadcast in oneDNN 2.6, and its reference
  // kernel is slower than rangeguard's: the Mul is not in this list.
  for (const char* op : {"Add", "Sub", "BatchNormalization", "Softmax", "LayerNormalization"})
    EXPECT_TRUE(ran(ops, op)) << op;
  EXPECT_LT(fast_vs_ref(g, inputs), kTol);
}

// A Linear layer's output scaled per feature by a constant (ConvNeXt's layer scale, after
// the bias): a binary post-op of the product. A scale varying along another axis is no
// post-op of it and runs as its own step. Either way the result matches the reference.
TEST_P(Seeded, LinearThenPerFeatureScale) {
  int64_t n = pick(1, 2), t = pick(1, 30), d = pick(1, 40), e = pick(2, 40);
  bool per_feature = pick(0, 3) > 0, scale_first = pick(0, 1);
  GraphBuilder b;
  std::string y = b.node("MatMul", {b.input("x", {n, t, d}), b.constant("w", random_tensor({d, e}, rng))});
  y = b.node("Add", {y, b.constant("bias", random_tensor({e}, rng))});
  Shape gs = per_feature ? Shape{e} : Shape{t, 1};
  std::string g = b.constant("gamma", random_tensor(gs, rng, 0.1f, 2.f));
  y = b.node("Mul", scale_first ? std::vector<std::string>{g, y} : std::vector<std::string>{y, g});
  b.output(b.node("Relu", {y}));
  Graph graph = b.build();
  std::vector<Tensor> inputs{random_tensor({n, t, d}, rng)};
  std::string where = "x " + shape_str({n, t, d}) + " e " + std::to_string(e) + " scale " + shape_str(gs);
  auto ops = fast_ops(graph, inputs);
  if (per_feature) {
    EXPECT_TRUE(ran(ops, "MatMul+Add+Mul+Relu")) << where;
  } else if (t > 1) {
    EXPECT_FALSE(ran(ops, "MatMul+Add+Mul+Relu")) << where;
  }
  EXPECT_LT(fast_vs_ref(graph, inputs), kTol) << where;
  SessionOptions bf;
  bf.precision = Precision::bf16;
  EXPECT_LT(fast_vs_ref(graph, inputs, bf), 0.05) << where << " bf16";
}

// A conv's output reaches Softmax and MatMul in its blocked layout: both must read it as
// such (each read it as plain once, off by up to 1.0 against the reference).
TEST_P(Seeded, SoftmaxAndMatMulAfterConv) {
  int64_t n = pick(1, 2), c = 8 * pick(1, 3) + pick(0, 1) * pick(1, 7), h = pick(3, 9), w = pick(3, 11);
  GraphBuilder b;
  std::string y = b.node("Conv", {b.input("x", {n, 3, h, w}), b.constant("w", random_tensor({c, 3, 3, 3}, rng))},
                         {{"pads", ints({1, 1, 1, 1})}});
  b.output(b.node("Softmax", {y}, {{"axis", Attribute::of_int(pick(-4, 3))}}));
  b.output(b.node("MatMul", {y, b.constant("q", random_tensor({w, pick(1, 9)}, rng))}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, 3, h, w}, rng)};
  std::string where = "c " + std::to_string(c);
  auto ops = fast_ops(g, inputs);
  EXPECT_TRUE(ran(ops, "Softmax")) << where;
  EXPECT_TRUE(ran(ops, "MatMul")) << where;
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

// Rows of any length (the AVX2 kernel's masked tail), with large values, -inf, +inf and NaN.
TEST_P(Seeded, SoftmaxRows) {
  int64_t rows = pick(1, 40), len = pick(0, 2) ? pick(1, 70) : pick(100, 1100);
  GraphBuilder b;
  b.output(b.node("Softmax", {b.input("x", {rows, len})}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({rows, len}, rng, -60.f, 60.f)};
  float* x = inputs[0].data<float>();
  const float special[] = {-INFINITY, INFINITY, NAN, -1e30f};
  for (int i = 0; i < 4; i++) x[pick(0, (int)(rows * len) - 1)] = special[pick(0, 3)];
  std::string where = std::to_string(rows) + "x" + std::to_string(len);
  EXPECT_TRUE(ran(fast_ops(g, inputs), "Softmax")) << where;
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

TEST_P(Seeded, ConcatOfConvOutputs) {
  GraphBuilder b;
  Shape x{1, pick(1, 8), 7, 7};
  std::string in = b.input("x", x);
  std::vector<std::string> parts;
  for (int i = 0; i < 3; i++)
    parts.push_back(b.node("Conv", {in, b.constant("w" + std::to_string(i), random_tensor({pick(1, 20), x[1], 1, 1}, rng))}));
  b.output(b.node("Concat", parts, {{"axis", Attribute::of_int(1)}}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  EXPECT_TRUE(ran(fast_ops(g, inputs), "Concat"));
  EXPECT_LT(fast_vs_ref(g, inputs), kTol);
}

// A SqueezeNet fire module at batch 1: both expand convolutions' outputs are whole runs
// of the join's channel-blocked result, so the planner has each convolution write there
// and the join copies nothing. A part that is read again after the join (here also a
// graph output) keeps its own buffer. Either way the result matches the reference.
TEST_P(Seeded, FireModuleJoinWithoutCopies) {
  int64_t c = 16 * pick(1, 4), h = pick(3, 13), n = pick(0, 2) ? 1 : 2, in_place_parts = 0;
  bool part_read_later = pick(0, 2) == 0;
  GraphBuilder b;
  std::string sq = b.node("Relu", {b.node("Conv", {b.input("x", {n, 8, h, h}), b.constant("ws", random_tensor({8, 8, 1, 1}, rng))})});
  std::string e1 = b.node("Relu", {b.node("Conv", {sq, b.constant("w1", random_tensor({c, 8, 1, 1}, rng))})});
  std::string e3 = b.node("Relu", {b.node("Conv", {sq, b.constant("w3", random_tensor({c, 8, 3, 3}, rng))},
                                          {{"pads", ints({1, 1, 1, 1})}})});
  std::string cat = b.node("Concat", {e1, e3}, {{"axis", Attribute::of_int(1)}});
  b.output(b.node("MaxPool", {cat}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}}));
  if (part_read_later) b.output(e1);
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, 8, h, h}, rng)};
  std::string where = "x " + shape_str({n, 8, h, h}) + " expand " + std::to_string(c) + (part_read_later ? " e1 an output" : "");
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  for (const auto& st : plan.steps()) {
    if (!st.node || st.node->op_type != "Concat") continue;
    ASSERT_TRUE(st.fast) << where;
    if (st.fast->impl() != "rg:concat_runs" || n != 1) continue;  // parts not whole runs of the result
    const char* out = static_cast<const char*>(plan.slots()[st.out[0]].value.raw());
    const size_t out_bytes = layout_bytes(plan.slots()[st.out[0]].layout);
    for (size_t j = 0; j < st.in.size(); j++) {
      const char* part = static_cast<const char*>(plan.slots()[st.in[j]].value.raw());
      size_t at = 0;
      // A channels-last part is scattered into the blocks, not a run: it keeps its buffer.
      bool run = st.fast->input_at_offset((int)j, at), separate = part_read_later && j == 0;
      bool inside = part >= out && part < out + out_bytes;
      EXPECT_EQ(inside, run && !separate) << where << " part " << j;
      if (inside) {
        EXPECT_EQ(part, out + at) << where << " part " << j;
      }
      in_place_parts += inside;
    }
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  RecordProperty("in_place_parts", (int)in_place_parts);
}

// A ConvNeXt block: the depthwise convolution's output permuted to NHWC for LayerNorm and
// a Linear layer, then back to NCHW for the residual Add. Permuting back is always a view
// (NHWC's bytes read as channels-last NCHW); permuting forward is one where the
// convolution gave channels-last. The result matches the reference either way.
TEST_P(Seeded, ConvNextPermutesAreViews) {
  int64_t n = pick(1, 2), c = 8 * pick(1, 6), h = pick(2, 12);
  GraphBuilder b;
  std::string x = b.input("x", {n, c, h, h});
  std::string y = b.node("Conv", {x, b.constant("dw", random_tensor({c, 1, 7, 7}, rng, -0.3f, 0.3f)), b.constant("db", random_tensor({c}, rng))},
                         {{"group", Attribute::of_int(c)}, {"pads", ints({3, 3, 3, 3})}});
  std::string conv_out = y;
  y = b.node("Transpose", {y}, {{"perm", ints({0, 2, 3, 1})}});
  y = b.node("LayerNormalization", {y, b.constant("g", random_tensor({c}, rng)), b.constant("be", random_tensor({c}, rng))},
             {{"axis", Attribute::of_int(-1)}});
  y = b.node("MatMul", {y, b.constant("w", random_tensor({c, c}, rng))});
  y = b.node("Transpose", {y}, {{"perm", ints({0, 3, 1, 2})}});
  b.output(b.node("Add", {x, y}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, c, h, h}, rng)};
  std::string where = "x " + shape_str({n, c, h, h});
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  int transposes = 0, views = 0;
  for (const auto& st : plan.steps()) {
    if (!st.node || st.node->op_type != "Transpose") continue;
    ASSERT_TRUE(st.fast) << where;
    const Layout& in = plan.slots()[st.in[0]].layout;
    bool forward = st.node->inputs[0] == conv_out;
    using namespace dnnl_util;
    bool channels_last =
        !is_plain(in) && memory::desc(in) == memory::desc(to_dims({n, c, h, h}), dt::f32, memory::format_tag::acdb);
    if (!forward || channels_last) {
      EXPECT_EQ(st.fast->impl(), "rg:view") << where << (forward ? " forward" : " back");
    }
    views += st.fast->impl() == "rg:view";
    transposes++;
  }
  EXPECT_EQ(transposes, 2) << where;
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
  RecordProperty("views", views);
}

// A ShuffleNet unit: the plain half a Slice passes through joined with a 1x1
// convolution's branch, then the channel shuffle (Reshape, Transpose, Reshape), which
// reads the join plain. Where oneDNN's concat has only its reference kernel for the mix
// of layouts, each part is reordered into its place instead: no Concat step runs a
// reference kernel, whatever layout the branch arrives in.
TEST_P(Seeded, ShuffleUnitConcatOfPlainAndBranch) {
  int64_t n = pick(1, 2), c = pick(0, 1) ? 58 : pick(4, 40), h = pick(3, 15);
  auto i64 = [](const std::vector<int64_t>& v) { return Tensor::from_vector<int64_t>({(int64_t)v.size()}, v); };
  GraphBuilder b;
  std::string x = b.input("x", {n, 2 * c, h, h});
  auto half = [&](int64_t from, const std::string& name) {
    return b.node("Slice", {x, b.constant(name + "s", i64({from})), b.constant(name + "e", i64({from + c})),
                            b.constant(name + "a", i64({1}))});
  };
  std::string branch = b.node("Relu", {b.node("Conv", {half(c, "r"), b.constant("w", random_tensor({c, c, 1, 1}, rng))})});
  std::string cat = b.node("Concat", {half(0, "l"), branch}, {{"axis", Attribute::of_int(1)}});
  std::string y = b.node("Reshape", {cat, b.constant("s5", i64({n, 2, c, h, h}))});
  y = b.node("Transpose", {y}, {{"perm", ints({0, 2, 1, 3, 4})}});
  b.output(b.node("Reshape", {y, b.constant("s4", i64({n, 2 * c, h, h}))}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, 2 * c, h, h}, rng)};
  std::string where = "x " + shape_str({n, 2 * c, h, h});
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  for (const auto& st : plan.steps())
    if (st.node && st.node->op_type == "Concat") {
      ASSERT_TRUE(st.fast) << where;
      EXPECT_EQ(st.fast->impl().find("ref"), std::string::npos) << where << " " << st.fast->impl();
    }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

// A DenseNet block: BatchNormalization (-> Relu) after a Concat of conv outputs. Parts of
// whole channel blocks (multiples of 16 channels: a block on any ISA) are joined by
// rangeguard's copy of contiguous runs, any batch, and the normalization (and Relu) is
// applied as it copies; so are channels-last parts of any size, pixel by pixel. Other
// joins go to oneDNN, and the normalization runs as its own step, with the Relu inside
// it. 1x1 parts are made channel-blocked (blocked_1x1), so on AVX-512, where oneDNN gives
// the 3x3 parts channels-last outputs, a join may mix the two layouts. In bf16 the parts
// are bf16 (channels-last on AMX): the pixel join normalizes those too.
TEST_P(Seeded, DenseBlockConcatAndBatchNormRelu) {
  int64_t n = pick(1, 3), h = pick(3, 9), c = 0;
  bool whole = pick(0, 2) > 0, relu = pick(0, 1) > 0;
  GraphBuilder b;
  std::string in = b.input("x", {n, 16, h, h});
  std::vector<std::string> parts;
  // The partial part first or last: a last one's overrun would land in the next pixel.
  const int k = pick(2, 5), partial = pick(0, 1) ? 0 : k - 1;
  for (int i = 0; i < k; i++) {
    int64_t m = whole || i != partial ? 16 * pick(1, 3) : pick(1, 15), kh = !whole || pick(0, 1) ? 3 : 1;
    c += m;
    parts.push_back(b.node("Conv", {in, b.constant("w" + std::to_string(i), random_tensor({m, 16, kh, kh}, rng))},
                           {{"pads", ints({kh / 2, kh / 2, kh / 2, kh / 2})}}));
  }
  std::string cat = b.node("Concat", parts, {{"axis", Attribute::of_int(1)}});
  std::string bn = b.node("BatchNormalization", {cat, b.constant("g", random_tensor({c}, rng)), b.constant("be", random_tensor({c}, rng)),
                                                 b.constant("mu", random_tensor({c}, rng)), b.constant("var", random_tensor({c}, rng, 0.5f, 2.f))});
  b.output(b.node("Conv", {relu ? b.node("Relu", {bn}) : bn, b.constant("wout", random_tensor({8, c, 1, 1}, rng))}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, 16, h, h}, rng)};
  std::string where = "n " + std::to_string(n) + " c " + std::to_string(c) + (whole ? " whole blocks" : " partial block");
  // Which step normalized, in a plan of the given precision.
  auto check = [&](const SessionOptions& o, const std::string& what) {
    Session fast(g, o);
    const Plan& plan = fast.plan({inputs[0].shape()});
    bool normalized = false;
    for (const auto& st : plan.steps()) {
      if (!st.node) continue;
      if (st.node->op_type == "BatchNormalization") {
        ASSERT_TRUE(st.fast) << what;
        EXPECT_EQ(st.fused.size(), relu ? 1u : 0u) << what;
        normalized = true;
      }
      if (st.node->op_type != "Concat") continue;
      ASSERT_TRUE(st.fast) << what;
      // Normalized by the join when every part is channels-last, or (fp32) the parts are
      // whole channel blocks, in one blocked layout or channels-last.
      int64_t block = 0;
      bool all_last = true, mixed_ok = whole && o.precision == Precision::fp32;
      for (int i : st.in) block = std::max(block, dnnl_util::channel_block(plan.slots()[i].layout));
      for (int i : st.in) {
        const Layout& l = plan.slots()[i].layout;
        bool last = l.format_kind == dnnl_blocked && l.format_desc.blocking.inner_nblks == 0 &&
                    l.format_desc.blocking.strides[1] == 1;
        all_last &= last;
        mixed_ok &= dnnl_util::channel_block(l) == block || last;
      }
      const char* impl = all_last ? "rg:concat_pixels+norm" : mixed_ok && block ? "rg:concat_runs+norm" : nullptr;
      if (impl) {
        EXPECT_EQ(st.fast->impl(), impl) << what;
        ASSERT_EQ(st.fused.size(), relu ? 2u : 1u) << what;
        EXPECT_EQ(st.fused[0]->op_type, "BatchNormalization") << what;
        normalized = true;
      } else {
        EXPECT_TRUE(st.fused.empty()) << what;
      }
    }
    EXPECT_TRUE(normalized) << what;  // by the join or by a step of its own
  };
  SessionOptions fp;
  fp.blocked_1x1 = true;
  check(fp, where);
  EXPECT_LT(fast_vs_ref(g, inputs, fp), kTol) << where;
  SessionOptions bf;
  bf.precision = Precision::bf16;
  check(bf, where + " bf16");
  EXPECT_LT(fast_vs_ref(g, inputs, bf), 0.05) << where << " bf16";
}

// A ViT's token sequence: the class token [N, 1, D] joins the patches, then the position
// embedding [1, T, D] is added. The plain parts must give a plain result: in another
// order of dims (oneDNN's free pick for the size-1 dim) the Add ran oneDNN's reference
// kernel, 31% of vit_small's time at batch 8.
TEST_P(Seeded, TokenConcatThenPositionAdd) {
  int64_t n = pick(1, 8), t = pick(1, 70), d = 8 * pick(1, 24);
  GraphBuilder b;
  std::string seq = b.node("Concat", {b.input("cls", {n, 1, d}), b.input("x", {n, t, d})}, {{"axis", Attribute::of_int(1)}});
  std::string y = b.node("Add", {seq, b.constant("pos", random_tensor({1, t + 1, d}, rng))});
  b.output(b.node("LayerNormalization", {y, b.constant("g", random_tensor({d}, rng)), b.constant("be", random_tensor({d}, rng))},
                  {{"axis", Attribute::of_int(-1)}}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({n, 1, d}, rng), random_tensor({n, t, d}, rng)};
  std::string where = "n " + std::to_string(n) + " t " + std::to_string(t) + " d " + std::to_string(d);
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape(), inputs[1].shape()});
  for (const auto& st : plan.steps()) {
    if (!st.node || (st.node->op_type != "Concat" && st.node->op_type != "Add")) continue;
    EXPECT_TRUE(is_plain(plan.slots()[st.out[0]].layout)) << where << " " << st.node->op_type;
    if (st.node->op_type == "Add") {
      ASSERT_TRUE(st.fast) << where;
      EXPECT_EQ(st.fast->impl().find("ref"), std::string::npos) << where << " " << st.fast->impl();
    }
  }
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

// Transpose runs as a oneDNN reorder, from a plain input or a conv's blocked output.
TEST_P(Seeded, TransposeAnyPerm) {
  int rank = pick(1, 5);
  bool after_conv = rank == 4 && pick(0, 1);
  Shape x;
  for (int i = 0; i < rank; i++) x.push_back(pick(1, 9));
  std::vector<int64_t> perm(rank);
  for (int i = 0; i < rank; i++) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  GraphBuilder b;
  std::string in = b.input("x", x);
  if (after_conv) in = b.node("Conv", {in, b.constant("w", random_tensor({16, x[1], 1, 1}, rng))});
  std::map<std::string, Attribute> attrs;
  if (pick(0, 3)) attrs["perm"] = ints(perm);  // else the default, reversed dims
  b.output(b.node("Transpose", {in}, attrs));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  std::string where = "x " + shape_str(x) + (after_conv ? " after conv" : "");
  EXPECT_TRUE(ran(fast_ops(g, inputs), "Transpose")) << where;
  EXPECT_LE(fast_vs_ref(g, inputs), after_conv ? kTol : 0.0) << where;  // the conv may round differently
}

// Slice with constant bounds and positive steps runs as a oneDNN reorder from a strided
// view: negative and out-of-range bounds, some axes only, steps above 1.
// Reshape and a Transpose that moves only a size-1 dim take their input's buffer where
// nothing reads the input afterwards, and copy it where something does.
TEST_P(Seeded, ViewsShareTheirInputsBuffer) {
  int64_t rows = pick(1, 9), k = pick(1, 17), n = pick(1, 17);
  bool input_read_later = pick(0, 1);
  GraphBuilder b;
  std::string a = b.node("MatMul", {b.input("x", {rows, k}), b.constant("w", random_tensor({k, n}, rng))});
  std::string r = b.node("Reshape", {a, b.constant("s", Tensor::from_vector<int64_t>({3}, {1, rows, n}))});
  std::string t = b.node("Transpose", {r}, {{"perm", ints({1, 0, 2})}});
  std::string y = b.node("Relu", {t});
  b.output(input_read_later ? b.node("Add", {y, b.node("Sigmoid", {a})}) : y);
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor({rows, k}, rng)};
  std::string where = "rows " + std::to_string(rows) + (input_read_later ? ", input read later" : "");
  Session fast(g, {});
  const Plan& plan = fast.plan({inputs[0].shape()});
  const Tensor& va = plan.slots()[plan.slot_of(a)].value;
  const Tensor& vt = plan.slots()[plan.slot_of(t)].value;
  for (const auto& st : plan.steps()) {
    if (st.node && (st.node->op_type == "Reshape" || st.node->op_type == "Transpose")) {
      EXPECT_TRUE(st.fast && st.fast->same_bytes()) << where;
    }
  }
  EXPECT_EQ(vt.same_buffer(va), !input_read_later) << where;
  EXPECT_LT(fast_vs_ref(g, inputs), kTol) << where;
}

TEST_P(Seeded, SliceWindows) {
  int rank = pick(1, 4);
  Shape x;
  for (int i = 0; i < rank; i++) x.push_back(pick(1, 12));
  std::vector<int64_t> starts, ends, axes, steps;
  for (int a = 0; a < rank; a++) {
    if (pick(0, 2) == 0) continue;  // this axis whole
    int64_t d = x[a], b = pick(-(int)d - 2, (int)d - 1);
    starts.push_back(b);
    ends.push_back(pick(0, 3) ? pick(-(int)d, (int)d + 3) : INT64_MAX);
    axes.push_back(pick(0, 1) ? a : a - rank);
    steps.push_back(pick(1, 3));
  }
  if (starts.empty()) starts = {0}, ends = {x[0]}, axes = {0}, steps = {1};
  auto i64 = [](const std::vector<int64_t>& v) { return Tensor::from_vector<int64_t>({(int64_t)v.size()}, v); };
  GraphBuilder b;
  b.output(b.node("Slice", {b.input("x", x), b.constant("s", i64(starts)), b.constant("e", i64(ends)),
                            b.constant("a", i64(axes)), b.constant("st", i64(steps))}));
  Graph g = b.build();
  std::vector<Tensor> inputs{random_tensor(x, rng)};
  std::string where = "x " + shape_str(x) + " starts " + shape_str(starts) + " ends " + shape_str(ends) + " steps " + shape_str(steps);
  Session ref_s(g, [] { SessionOptions o; o.fast_kernels = false; return o; }());
  if (shape_numel(ref_s.run(inputs)[0].shape()) > 0) {
    EXPECT_TRUE(ran(fast_ops(g, inputs), "Slice")) << where;
  }
  EXPECT_EQ(fast_vs_ref(g, inputs), 0.0) << where;
}

TEST_P(Seeded, StandaloneActivations) {
  for (const char* act : {"Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Gelu", "Mish"}) {
    GraphBuilder b;
    Shape x{pick(1, 3), pick(1, 40)};
    b.output(b.node(act, {b.input("x", x)}));
    Graph g = b.build();
    std::vector<Tensor> in{random_tensor(x, rng, -6.f, 6.f)};
    EXPECT_TRUE(ran(fast_ops(g, in), act)) << act;
    EXPECT_LT(fast_vs_ref(g, in), kTol) << act;
  }
  GraphBuilder b;
  Shape x{5, 7};
  b.output(b.node("Clip", {b.input("x", x), b.constant("lo", Tensor::scalar(-0.5f)), b.constant("hi", Tensor::scalar(0.25f))}));
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor(x, rng)};
  EXPECT_TRUE(ran(fast_ops(g, in), "Clip"));
  EXPECT_LT(fast_vs_ref(g, in), kTol);
}

// `rangeguard protect --detect` checks: one RangeGuard per site, clamping (or zeroing) and
// counting in one pass, on the plain layout of an input and on a convolution's blocked one.
TEST_P(Seeded, RangeGuardClampsZeroesAndCounts) {
  int c = pick(1, 40), h = pick(1, 12);
  bool per_channel = pick(0, 1), zero = pick(0, 1);
  Shape x{pick(1, 2), c, h, h};
  Shape bs = per_channel ? Shape{c, 1, 1} : Shape{};
  Tensor lo = random_tensor(bs, rng, -0.6f, -0.1f), hi = random_tensor(bs, rng, 0.1f, 0.6f);  // {} = scalar
  Attribute mode = Attribute::of_string(zero ? "zero" : "clamp");
  // Straight on an input: plain layout, results identical (NaN included).
  auto on_input = [&](const Shape& xs, const Tensor& lo_b, const Tensor& hi_b, const char* what) {
    GraphBuilder b;
    std::string y = b.node("RangeGuard", {b.input("x", xs), b.constant("lo", lo_b), b.constant("hi", hi_b)},
                           {{"mode", mode}}, 2);
    b.output(y);
    b.output(y.substr(0, y.size() - 1) + "1");
    Graph g = b.build();
    Tensor in = random_tensor(xs, rng);
    if (zero) in.data<float>()[in.numel() / 2] = NAN;  // zero mode resets NaN (and counts it)
    EXPECT_TRUE(ran(fast_ops(g, {in}), "RangeGuard"));
    EXPECT_EQ(fast_vs_ref(g, {in}), 0.0) << shape_str(xs) << what;
  };
  on_input(x, lo, hi, per_channel ? " per channel" : " per tensor");
  {  // after a convolution: oneDNN's blocked layout, run in place over the conv's output.
    // Inputs and weights are multiples of 1/8, so every convolution sums exactly in any
    // order: a value near a bound cannot land on different sides of it in the two runs
    // (in zero mode that would show as a whole value's difference).
    auto eighths = [](Tensor t) {
      for (int64_t i = 0; i < t.numel(); i++) t.data<float>()[i] = std::round(t.data<float>()[i] * 8.f) / 8.f;
      return t;
    };
    GraphBuilder b;
    std::string v = b.node("Conv", {b.input("x", x), b.constant("w", eighths(random_tensor({c, c, 1, 1}, rng, -0.5f, 0.5f)))});
    std::string y = b.node("RangeGuard", {v, b.constant("lo", lo), b.constant("hi", hi)}, {{"mode", mode}}, 2);
    b.output(y);
    b.output(y.substr(0, y.size() - 1) + "1");
    Graph g = b.build();
    std::vector<Tensor> in{eighths(random_tensor(x, rng))};
    EXPECT_TRUE(ran(fast_ops(g, in), "RangeGuard"));
    EXPECT_LT(fast_vs_ref(g, in), kTol) << shape_str(x);
  }
  if (per_channel)  // channels on the last axis, as after a Linear layer: [N, T, C], bounds [C]
    on_input({pick(1, 2), pick(1, 20), c}, lo.reshaped({c}), hi.reshaped({c}), " channels last");
  {  // in place and almost all in range, as on clean data, so most runs are only counted
     // and the ones holding the out-of-range pixel are rewritten; channel counts that are
     // multiples of 16 take the kernel's register-counter paths (8 lanes for AVX2's
     // nChw8c, 16 for nChw16c)
    int64_t cw = 16 * pick(1, 4), hw = pick(8, 40);
    Shape xs{1, cw, hw, hw};
    Shape bw = per_channel ? Shape{cw, 1, 1} : Shape{};
    GraphBuilder b;
    std::string v = b.node("Conv", {b.input("x", xs), b.constant("w", random_tensor({cw, cw, 1, 1}, rng, -0.5f, 0.5f))});
    std::string y = b.node("RangeGuard", {v, b.constant("lo", random_tensor(bw, rng, -60.f, -50.f)),
                                          b.constant("hi", random_tensor(bw, rng, 50.f, 60.f))}, {{"mode", mode}}, 2);
    b.output(y);
    b.output(y.substr(0, y.size() - 1) + "1");
    Graph g = b.build();
    Tensor in = random_tensor(xs, rng);
    in.data<float>()[pick(0, (int)in.numel() - 1)] = 1e6f;  // one pixel far out, in every channel it feeds
    EXPECT_TRUE(ran(fast_ops(g, {in}), "RangeGuard"));
    EXPECT_LT(fast_vs_ref(g, {in}), kTol) << shape_str(xs);
    EXPECT_GT(Session(g, {}).run({in})[1].data<int64_t>()[0], 0);  // the pixel was found
  }
}

// Padding wider than the whole kernel (outputs that see only padding) goes to the
// reference kernel: oneDNN took over a minute to plan one such fuzzed model (pads 16777215).
TEST(FastKernels, ConvPaddedPastItsKernelRunsTheReference) {
  std::mt19937 rng(5);
  GraphBuilder b;
  b.output(b.node("Conv", {b.input("x", {1, 2, 7, 5}), b.constant("w", random_tensor({3, 2, 3, 3}, rng))},
                  {{"pads", ints({1, 1, 1, 6})}}));
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor({1, 2, 7, 5}, rng)};
  std::vector<std::string> ops = fast_ops(g, in);
  EXPECT_EQ(std::find(ops.begin(), ops.end(), "Conv"), ops.end());
  EXPECT_EQ(Session(g, {}).run(in)[0].shape(), (Shape{1, 3, 7, 10}));
  EXPECT_EQ(fast_vs_ref(g, in), 0.0);
}

// A plan whose activations exceed SessionOptions::max_activation_bytes (by default the
// machine's memory) is refused with a clear error rather than allocated.
TEST(FastKernels, PlanOverTheActivationLimitIsAClearError) {
  std::mt19937 rng(6);
  GraphBuilder b;
  b.output(b.node("Relu", {b.node("Relu", {b.input("x", {1, 4, 64, 64})})}));
  Graph g = b.build();
  std::vector<Tensor> in{random_tensor({1, 4, 64, 64}, rng)};
  SessionOptions o;
  o.max_activation_bytes = 4096;
  try {
    Session(g, o).run(in);
    ADD_FAILURE() << "a 64 KiB activation passed a 4 KiB limit";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("activation memory"), std::string::npos) << e.what();
  }
  o.max_activation_bytes = 0;
  EXPECT_EQ(Session(g, o).run(in)[0].shape(), (Shape{1, 4, 64, 64}));
}

INSTANTIATE_TEST_SUITE_P(Random, Seeded, ::testing::Range(0, 12));

}  // namespace
}  // namespace rg::test

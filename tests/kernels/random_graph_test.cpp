// Seeded random graphs, fast kernels against the reference kernels (DESIGN.md convention 2).
//
// Each seed builds a small graph in memory from one input [N, C, H, W]: 6 to 14 random
// nodes, each reading values made before it (convolutions of every kind the planner treats
// differently, activations and chains of them, binary ops with each other and with
// per-channel constants, pooling, normalisation, concat, softmax, layout movers, matmul,
// gemm, activation formulas the passes rewrite, ...). Convolutions leave their results in
// oneDNN's blocked layouts (nChw8c / nChw16c), so every other op here is exercised on such
// inputs too, and extra graph outputs force plain copies of values that later ops also
// read. Session options (threads, Winograd, blocked 1x1, fusion, kept values) vary by seed.
//
// Two checks per seed, each within kTol of max|reference| per output:
//  - fast kernels against reference kernels (the same graph passes run in both);
//  - reference kernels with the graph passes against reference kernels without them.
// On a failure the test prints the seed, the options, the graph (one line) and the fast
// plan's steps (kernel and layouts), then the smallest part of the graph (cut below one
// node, keeping at most one other output) that still fails, so a developer can reproduce
// it from the message alone. Seeds run 30 to a test case (one ctest entry each); set
// RG_RANDOM_GRAPH_SEEDS=N to run seeds 0..N-1 instead of the default 3000.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "kernels/op.h"
#include "passes/passes.h"
#include "support/builder.h"

namespace rg::test {
namespace {

constexpr double kTol = 1e-4;  // relative to max|reference|, per output
// Seeds run by default (~20 s on 2 cores); RG_RANDOM_GRAPH_SEEDS=N runs seeds 0..N-1 instead.
int seed_count() {
  const char* e = std::getenv("RG_RANDOM_GRAPH_SEEDS");
  return e && std::atoi(e) > 0 ? std::atoi(e) : 3000;
}

Attribute ints(std::vector<int64_t> v) { return Attribute::of_ints(std::move(v)); }

// "abcd", "acdb" (channels last), "aBcd8b" (nChw8c): how a plan holds a value.
std::string layout_str(const Layout& l) {
  if (is_plain(l)) return "plain";
  if (l.format_kind != dnnl_blocked) return "fmt" + std::to_string((int)l.format_kind);
  const auto& bd = l.format_desc.blocking;
  std::vector<int> order(l.ndims);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bd.strides[a] > bd.strides[b]; });
  std::set<int> blocked(bd.inner_idxs, bd.inner_idxs + bd.inner_nblks);
  std::string s;
  for (int d : order) s += (char)((blocked.count(d) ? 'A' : 'a') + d);
  for (int k = 0; k < bd.inner_nblks; k++) s += std::to_string(bd.inner_blks[k]) + (char)('a' + bd.inner_idxs[k]);
  if (l.data_type != dnnl_f32) s += "/dt" + std::to_string((int)l.data_type);
  return s;
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::string short_shape(const Shape& s) { return "[" + ints_str(s) + "]"; }

struct Value {
  std::string name;
  Shape shape;
};

// Builds one random graph, tracking every value's shape (from the operators' own shape
// inference, so the graph is valid by construction).
class Generator {
 public:
  explicit Generator(std::mt19937& rng) : rng_(rng) {}

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  T one_of(const std::vector<T>& v) { return v[pick(0, (int)v.size() - 1)]; }

  void generate() {
    // A third of the inputs have 16 or 24 channels, where the convolutions reading them
    // can take rangeguard's Winograd or blocked 1x1 kernels.
    input_ = {pick(1, 2), chance(0.35) ? 8 * pick(2, 3) : pick(1, 24), pick(3, 12), pick(3, 12)};
    std::string x = b_.input("x", input_);
    short_[x] = "x";
    shapes_[x] = input_;
    pool_.push_back({x, input_});
    int target = pick(6, 14);
    using Fn = bool (Generator::*)();
    // (weight, generator): convolutions are frequent, so most values arrive blocked.
    const std::vector<std::pair<int, Fn>> kinds = {
        {9, &Generator::conv},           {1, &Generator::conv_transpose},  {6, &Generator::unary},
        {2, &Generator::act_chain},      {1, &Generator::swish},           {1, &Generator::formula},
        {1, &Generator::bounds},         {5, &Generator::binary},          {2, &Generator::broadcast_binary},
        {2, &Generator::squeeze_excite}, {2, &Generator::batchnorm},       {2, &Generator::layernorm},
        {3, &Generator::pool},           {1, &Generator::global_pool},     {3, &Generator::concat},
        {3, &Generator::softmax},        {3, &Generator::transpose},       {2, &Generator::reshape},
        {2, &Generator::slice},          {3, &Generator::matmul},          {1, &Generator::self_matmul},
        {2, &Generator::gemm},           {1, &Generator::resize},          {1, &Generator::pad},
        {2, &Generator::reduce}};
    int total = 0;
    for (const auto& k : kinds) total += k.first;
    for (int tries = 0; nodes_ < target && tries < 500; tries++) {
      int r = pick(0, total - 1);
      for (const auto& k : kinds) {
        if (r < k.first) {
          (this->*k.second)();
          break;
        }
        r -= k.first;
      }
    }
    // The last node's output, and up to two earlier values (which then need plain copies).
    outputs_.push_back(pool_.back().name);
    int extra = pick(0, 2);
    for (int i = 0; i < extra && pool_.size() > 2; i++) {
      const std::string& v = pool_[pick(1, (int)pool_.size() - 2)].name;
      if (std::find(outputs_.begin(), outputs_.end(), v) == outputs_.end()) outputs_.push_back(v);
    }
    for (const auto& o : outputs_) b_.output(o);
  }

  Graph build() const { return b_.build(); }
  const Shape& input_shape() const { return input_; }
  const std::vector<std::string>& outputs() const { return outputs_; }
  // Every value the nodes made (not the input), in order, for kept-value options.
  std::vector<std::string> intermediates() const {
    std::vector<std::string> r;
    for (size_t i = 1; i < pool_.size(); i++) r.push_back(pool_[i].name);
    return r;
  }

  // One line per graph: "x:[1,3,8,8]; v1=Conv(x,c[8,3,3,3],c[8]){kernel_shape=3,3 pads=1,1,1,1
  // strides=2,2}:[1,8,4,4]; v2=Relu(v1):[1,8,4,4]; out=v2,v1" (constants by shape, or by
  // value when they are scalars or int64 lists).
  std::string describe(const Graph& g) const {
    std::ostringstream os;
    os << "x:" << short_shape(input_) << "; ";
    for (const Node& n : g.nodes) {
      os << name_of(n.outputs[0]) << "=" << n.op_type << "(";
      for (size_t i = 0; i < n.inputs.size(); i++) {
        const std::string& in = n.inputs[i];
        if (i) os << ",";
        auto c = consts_.find(in);
        if (in.empty()) os << "-";
        else if (c == consts_.end()) os << name_of(in);
        else if (c->second.dtype() == DType::i64) os << "{" << ints_str(c->second.to_int64s()) << "}";
        else if (c->second.numel() == 1) os << c->second.to_doubles()[0];
        else os << "c" << short_shape(c->second.shape());
      }
      os << ")";
      std::string attrs;
      for (const auto& kv : n.attrs) {
        const Attribute& a = kv.second;
        std::string v = a.kind == Attribute::Kind::i ? std::to_string(a.i)
                        : a.kind == Attribute::Kind::f ? fmt_float(a.f)
                        : a.kind == Attribute::Kind::s ? a.s
                        : a.kind == Attribute::Kind::ints_ ? ints_str(a.ints) : "?";
        attrs += (attrs.empty() ? "" : " ") + kv.first + "=" + v;
      }
      if (!attrs.empty()) os << "{" << attrs << "}";
      auto s = shapes_.find(n.outputs[0]);
      if (s != shapes_.end()) os << ":" << short_shape(s->second);
      os << "; ";
    }
    os << "out=";
    for (size_t i = 0; i < g.outputs.size(); i++) os << (i ? "," : "") << name_of(g.outputs[i].name);
    return os.str();
  }
  // The short name of a value ("v3"), also of its plain copy in a plan ("v3#plain").
  std::string name_of(const std::string& v) const {
    auto it = short_.find(v);
    if (it != short_.end()) return it->second;
    size_t hash = v.rfind('#');
    if (hash != std::string::npos && short_.count(v.substr(0, hash))) return short_.at(v.substr(0, hash)) + v.substr(hash);
    return v;
  }

 private:
  static std::string fmt_float(float f) {
    std::ostringstream os;
    os << f;
    return os.str();
  }

  // A live value satisfying `ok`: the newest one half of the time (long chains), else any.
  const Value* choose(const std::function<bool(const Value&)>& ok) {
    std::vector<const Value*> c;
    for (const auto& v : pool_)
      if (ok(v)) c.push_back(&v);
    if (c.empty()) return nullptr;
    if (chance(0.5)) return c.back();
    return c[pick(0, (int)c.size() - 1)];
  }
  const Value* choose_rank(int lo, int hi = 8) {
    return choose([&](const Value& v) { return (int)v.shape.size() >= lo && (int)v.shape.size() <= hi && shape_numel(v.shape) > 0; });
  }

  std::string constant(Tensor t) {
    std::string name = "c" + std::to_string(consts_.size());
    consts_[name] = t;
    return b_.constant(name, t);
  }
  std::string weights(const Shape& s, float fan_in) {
    float a = std::sqrt(3.f / std::max(fan_in, 1.f));
    return constant(random_tensor(s, rng_, -a, a));
  }
  std::string i64(const std::vector<int64_t>& v) { return constant(Tensor::from_vector<int64_t>({(int64_t)v.size()}, v)); }
  std::string f32(float v) { return constant(Tensor::scalar(v)); }

  // Adds the node, infers its output shape with the operator's own inference, and puts
  // the output in the pool (unless `hidden`: an intermediate of a composite pattern).
  std::string add(const std::string& op, const std::vector<std::string>& in, std::map<std::string, Attribute> attrs = {},
                   bool hidden = false) {
    Node n;
    n.op_type = op;
    n.attrs = attrs;
    n.inputs = in;
    n.outputs = {"y"};
    InferCtx ic(n, 17);
    for (const auto& i : in) {
      if (i.empty()) {
        ic.in_types.push_back(DType::undefined);
        ic.in_shapes.push_back({});
        ic.in_values.push_back(nullptr);
        continue;
      }
      auto c = consts_.find(i);
      ic.in_types.push_back(c == consts_.end() ? DType::f32 : c->second.dtype());
      ic.in_shapes.push_back(c == consts_.end() ? shapes_.at(i) : c->second.shape());
      ic.in_values.push_back(c == consts_.end() ? nullptr : &c->second);
    }
    find_op("", op)->infer(ic);
    std::string y = b_.node(op, in, std::move(attrs));
    shapes_[y] = ic.out_shapes.at(0);
    short_[y] = "v" + std::to_string(short_.size());
    if (!hidden) pool_.push_back({y, shapes_[y]});
    nodes_++;
    return y;
  }

  // Conv: 1x1, 3x3 pad 1, 3x3 stride 2, 3x3 unpadded, depthwise, grouped (2 groups, or 8
  // channels per group); output channels
  // that are and are not multiples of 8 and 16.
  bool conv() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    Shape x = v->shape;
    int64_t c = x[1], h = x[2], w = x[3];
    int kind = pick(0, 6);
    int64_t k = 3, stride = 1, pad = 1, group = 1;
    int64_t m = one_of<int64_t>({3, 4, 5, 8, 8, 12, 16, 16, 17, 24, 32, 32});
    // Half the time where it can be, a Winograd candidate (3x3 stride 1, channels a
    // multiple of 8 in and of 16 out, enough output tiles) or a blocked-1x1 one.
    if (c % 8 == 0 && c >= 16 && chance(0.6)) {
      m = chance(0.5) ? 16 : 32;
      kind = h >= 7 && w >= 7 && chance(0.85) ? 2 : 0;
    } else if (c < 16 && h >= 7 && w >= 7 && chance(0.3)) {
      m = chance(0.5) ? 16 : 32;  // to where the next convolution may be one
    }
    if (kind <= 1) k = 1, pad = 0;
    else if (kind == 3) stride = 2;
    else if (kind == 4) pad = 0;
    else if (kind == 5) group = c, m = c * pick(1, 2);
    else if (kind == 6 && c % 8 == 0 && chance(0.5)) group = c / 8, m = c, stride = pick(1, 2);  // RegNet's
    else if (kind == 6 && c % 2 == 0) group = 2, m = 2 * pick(2, 8);
    if (kind <= 1 && chance(0.3)) stride = 2;
    if (h + 2 * pad < k || w + 2 * pad < k) return false;
    std::string wt = weights({m, c / group, k, k}, (float)(c / group * k * k));
    std::vector<std::string> in{v->name, wt};
    if (chance(0.7)) in.push_back(constant(random_tensor({m}, rng_, -0.5f, 0.5f)));
    std::map<std::string, Attribute> a{{"kernel_shape", ints({k, k})}, {"pads", ints({pad, pad, pad, pad})},
                                       {"strides", ints({stride, stride})}};
    if (group != 1) a["group"] = Attribute::of_int(group);
    add("Conv", in, a);
    return true;
  }

  // ConvTranspose: 2x2 stride 2 (upsampling), or 3x3 stride 1 pad 1.
  bool conv_transpose() {
    const Value* v = choose_rank(4, 4);
    if (!v || v->shape[2] > 8 || v->shape[3] > 8) return false;
    int64_t c = v->shape[1], m = one_of<int64_t>({4, 8, 5, 16}), k = pick(2, 3);
    std::vector<std::string> in{v->name, weights({c, m, k, k}, (float)(c * k * k / (k == 2 ? 4 : 1)))};
    if (chance(0.5)) in.push_back(constant(random_tensor({m}, rng_, -0.5f, 0.5f)));
    int64_t p = k == 3 ? 1 : 0, st = k == 2 ? 2 : 1;
    add("ConvTranspose", in, {{"kernel_shape", ints({k, k})}, {"strides", ints({st, st})}, {"pads", ints({p, p, p, p})}});
    return true;
  }

  bool unary() {
    const Value* v = choose_rank(1);
    if (!v) return false;
    int kind = pick(0, 11);
    const Shape& s = v->shape;
    switch (kind) {
      case 0: add("Relu", {v->name}); break;
      case 1: add("Sigmoid", {v->name}); break;
      case 2: add("Tanh", {v->name}); break;
      case 3: add("LeakyRelu", {v->name}, {{"alpha", Attribute::of_float(0.1f)}}); break;
      case 4: {
        float lo = -std::uniform_real_distribution<float>(0, 1)(rng_);
        add("Clip", {v->name, f32(lo), f32(lo + std::uniform_real_distribution<float>(0.2f, 2)(rng_))});
        break;
      }
      case 5: add("HardSwish", {v->name}); break;
      case 6: {  // PRelu: per channel (rank 4) or one slope
        Shape sl = s.size() == 4 && chance(0.7) ? Shape{s[1], 1, 1} : Shape{1};
        add("PRelu", {v->name, constant(random_tensor(sl, rng_, 0.f, 0.5f))});
        break;
      }
      case 7: add("Elu", {v->name}, {{"alpha", Attribute::of_float(0.7f)}}); break;
      case 8: add("Selu", {v->name}); break;
      case 9: add("HardSigmoid", {v->name}); break;
      case 10: add("Identity", {v->name}); break;
      default: {  // Squeeze the size-1 dims, or Unsqueeze one
        std::vector<int64_t> ones;
        for (size_t d = 0; d < s.size(); d++)
          if (s[d] == 1 && chance(0.7)) ones.push_back((int64_t)d);
        if (!ones.empty()) add("Squeeze", {v->name, i64(ones)});
        else if (s.size() < 5) add("Unsqueeze", {v->name, i64({pick(0, (int)s.size())})});
        else add("Relu", {v->name});
        break;
      }
    }
    return true;
  }

  // x * Sigmoid(x), which a pass rewrites to Swish.
  bool swish() {
    const Value* v = choose_rank(1);
    if (!v) return false;
    std::string x = v->name;
    add("Mul", {x, add("Sigmoid", {x}, {}, true)});
    return true;
  }

  // An activation spelled as a formula, which a pass rewrites to one node (then a fast
  // kernel, or a post-op fused into the op before): GELU (Erf or Tanh), Mish, HardSwish.
  bool formula() {
    const Value* v = choose_rank(1);
    if (!v) return false;
    std::string x = v->name;
    switch (pick(0, 4)) {
      case 0: {  // x * 0.5 * (1 + Erf(x / sqrt(2)))
        std::string e = add("Erf", {add("Div", {x, f32(std::sqrt(2.f))}, {}, true)}, {}, true);
        add("Mul", {add("Mul", {x, f32(0.5f)}, {}, true), add("Add", {e, f32(1.f)}, {}, true)});
        break;
      }
      case 1: {  // 0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
        std::string cube = add("Mul", {x, add("Mul", {x, x}, {}, true)}, {}, true);
        std::string poly = add("Add", {x, add("Mul", {cube, f32(0.044715f)}, {}, true)}, {}, true);
        std::string t = add("Tanh", {add("Mul", {f32(0.7978845608f), poly}, {}, true)}, {}, true);
        add("Mul", {add("Mul", {f32(0.5f), x}, {}, true), add("Add", {f32(1.f), t}, {}, true)});
        break;
      }
      case 2:  // x * Tanh(Softplus(x))
        add("Mul", {x, add("Tanh", {add("Softplus", {x}, {}, true)}, {}, true)});
        break;
      case 3:  // x * HardSigmoid(x, 1/6, 0.5)
        add("Mul", {add("HardSigmoid", {x}, {{"alpha", Attribute::of_float(1.f / 6)}, {"beta", Attribute::of_float(0.5f)}}, true), x});
        break;
      default: {  // x * Clip(x + 3, 0, 6) / 6
        std::string c = add("Clip", {add("Add", {x, f32(3.f)}, {}, true), f32(0.f), f32(6.f)}, {}, true);
        add("Div", {add("Mul", {x, c}, {}, true), f32(6.f)});
        break;
      }
    }
    return true;
  }

  // protect's range check: Min(Max(x, lo), hi) with per-channel (or scalar) bounds.
  bool bounds() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    Shape bs = chance(0.7) ? Shape{1, v->shape[1], 1, 1} : Shape{1};
    std::string lo = constant(random_tensor(bs, rng_, -1.f, -0.1f)), hi = constant(random_tensor(bs, rng_, 0.1f, 1.f));
    std::string m = add("Max", {v->name, lo}, {}, true);
    add("Min", {m, hi});
    return true;
  }

  // Add/Sub/Mul/Div/Max/Min of two values of one shape, or of a value and a constant (per
  // channel, per last-axis element, per row, or scalar); either operand order.
  bool binary() {
    const Value* a = choose_rank(1);
    if (!a) return false;
    std::string op = one_of<std::string>({"Add", "Sub", "Mul", "Add", "Sub", "Div", "Max", "Min"});
    std::string other;
    std::vector<const Value*> same;
    for (const auto& v : pool_)
      if (v.shape == a->shape && v.name != a->name) same.push_back(&v);
    std::string x = a->name;
    if ((!same.empty() || chance(0.1)) && chance(0.75)) {
      other = same.empty() ? a->name : same[pick(0, (int)same.size() - 1)]->name;
      // A divisor kept away from zero, in the layout its source has: Sigmoid(b) + 0.5.
      if (op == "Div") other = add("Add", {add("Sigmoid", {other}, {}, true), f32(0.5f)}, {}, true);
    } else {
      const Shape& s = a->shape;
      Shape cs;
      int form = pick(0, 4);
      if (s.size() == 4 && form <= 1) cs = form == 0 ? Shape{s[1], 1, 1} : Shape{1, s[1], 1, 1};
      else if (form == 2) cs = {s.back()};
      else if (form == 3 && s.size() >= 2) cs = {s[s.size() - 2], 1};  // per row
      else cs = {1};
      other = op == "Div" ? constant(random_tensor(cs, rng_, 0.5f, 2.f)) : constant(random_tensor(cs, rng_));
    }
    if (op != "Div" && chance(0.5)) std::swap(x, other);
    add(op, {x, other});
    return true;
  }

  // Squeeze-excite: v * Sigmoid(Conv1x1(Relu(Conv1x1(GlobalAveragePool(v))))), the
  // per-channel scale [N, C, 1, 1] arriving from a 1x1 convolution (blocked).
  bool squeeze_excite() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    std::string x = v->name;
    int64_t c = v->shape[1], mid = pick(1, 8);
    std::string s = add("GlobalAveragePool", {x}, {}, true);
    s = add("Conv", {s, weights({mid, c, 1, 1}, (float)c), constant(random_tensor({mid}, rng_))}, {}, true);
    s = add("Relu", {s}, {}, true);
    s = add("Conv", {s, weights({c, mid, 1, 1}, (float)mid), constant(random_tensor({c}, rng_))}, {}, true);
    s = add(chance(0.7) ? "Sigmoid" : "HardSigmoid", {s}, {}, true);
    add("Mul", chance(0.7) ? std::vector<std::string>{x, s} : std::vector<std::string>{s, x});
    return true;
  }

  // A value with one of shape [N, C, 1, 1] made earlier (a pooled or SE value): per-pixel
  // op with a per-channel operand that is itself a computed, maybe blocked, value.
  bool broadcast_binary() {
    const Value* a = choose([&](const Value& v) {
      if (v.shape.size() != 4) return false;
      for (const auto& w : pool_)
        if (w.shape == Shape{v.shape[0], v.shape[1], 1, 1} && w.name != v.name) return true;
      return false;
    });
    if (!a) return false;
    std::string x = a->name, other;
    Shape want{a->shape[0], a->shape[1], 1, 1};
    for (const auto& w : pool_)
      if (w.shape == want && w.name != x && (other.empty() || chance(0.5))) other = w.name;
    std::string op = one_of<std::string>({"Add", "Mul", "Sub", "Max"});
    if (op != "Sub" && chance(0.5)) std::swap(x, other);
    add(op, {x, other});
    return true;
  }

  bool batchnorm() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    int64_t c = v->shape[1];
    add("BatchNormalization", {v->name, constant(random_tensor({c}, rng_, 0.5f, 1.5f)),
                               constant(random_tensor({c}, rng_)), constant(random_tensor({c}, rng_)),
                               constant(random_tensor({c}, rng_, 0.5f, 1.5f))},
        {{"epsilon", Attribute::of_float(1e-5f)}});
    return true;
  }

  bool pool() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    int64_t k = pick(2, 3), s = pick(1, 2), p = k == 3 && chance(0.5) ? 1 : 0;
    if (v->shape[2] + 2 * p < k || v->shape[3] + 2 * p < k) return false;
    bool max = chance(0.5);
    std::map<std::string, Attribute> a{{"kernel_shape", ints({k, k})}, {"strides", ints({s, s})}};
    if (p) a["pads"] = ints({p, p, p, p});
    if (chance(0.2)) a["ceil_mode"] = Attribute::of_int(1);
    if (!max && p && chance(0.5)) a["count_include_pad"] = Attribute::of_int(1);
    add(max ? "MaxPool" : "AveragePool", {v->name}, a);
    return true;
  }

  bool global_pool() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    add(chance(0.7) ? "GlobalAveragePool" : "GlobalMaxPool", {v->name});
    return true;
  }

  // Concat along an axis where the parts agree on every other dim (mostly channels).
  bool concat() {
    const Value* a = choose_rank(1);
    if (!a) return false;
    int r = (int)a->shape.size();
    int axis = r >= 2 && chance(0.7) ? 1 : pick(0, r - 1);
    std::vector<std::string> parts{a->name};
    for (const auto& v : pool_) {
      if (v.name == a->name || v.shape.size() != a->shape.size() || parts.size() >= 3) continue;
      bool ok = true;
      for (int d = 0; d < r; d++) ok &= d == axis || v.shape[d] == a->shape[d];
      if (ok && chance(0.7)) parts.push_back(v.name);
    }
    if (parts.size() == 1) parts.push_back(a->name);  // x joined to itself
    std::shuffle(parts.begin(), parts.end(), rng_);
    add("Concat", parts, {{"axis", Attribute::of_int(chance(0.3) ? axis - r : axis)}});
    return true;
  }

  // Mostly over an axis longer than 1: over a size-1 axis the result is constant (all 1,
  // or all 0), and a LayerNormalization downstream would then normalise rounding noise.
  bool softmax() {
    const Value* v = choose_rank(1);
    if (!v) return false;
    int r = (int)v->shape.size(), axis = pick(-r, r - 1);
    for (int i = 0; i < 4 && v->shape[(axis + r) % r] == 1 && chance(0.9); i++) axis = pick(-r, r - 1);
    add(chance(0.6) ? "Softmax" : "LogSoftmax", {v->name}, {{"axis", Attribute::of_int(axis)}});
    return true;
  }

  // Two or three activations in a row (a range check after an activation, say), which
  // the planner fuses into the op before them as a chain of post-ops.
  bool act_chain() {
    const Value* v = choose_rank(1);
    if (!v) return false;
    std::string x = v->name;
    int n = pick(2, 3);
    for (int i = 0; i < n; i++) {
      bool last = i == n - 1;
      float lo = -std::uniform_real_distribution<float>(0, 1)(rng_);
      switch (pick(0, 8)) {
        case 0: x = add("Relu", {x}, {}, !last); break;
        case 1: x = add("LeakyRelu", {x}, {{"alpha", Attribute::of_float(one_of<float>({0.01f, 0.1f, 0.3f}))}}, !last); break;
        case 2: x = add("Clip", {x, f32(lo), f32(lo + std::uniform_real_distribution<float>(0.2f, 2)(rng_))}, {}, !last); break;
        case 3: x = add("Tanh", {x}, {}, !last); break;
        case 4: x = add("Sigmoid", {x}, {}, !last); break;
        case 5: x = add("Elu", {x}, {{"alpha", Attribute::of_float(one_of<float>({0.5f, 1.f}))}}, !last); break;
        case 6: x = add("HardSigmoid", {x}, {}, !last); break;
        case 7: x = add("Max", {x, f32(lo)}, {}, !last); break;
        default: x = add("Min", {x, f32(lo + 1.f)}, {}, !last); break;
      }
    }
    return true;
  }

  // Over the last axis (sometimes the last two), where that holds >= 4 values.
  bool layernorm() {
    const Value* v = choose([](const Value& v) { return !v.shape.empty() && v.shape.back() >= 4; });
    if (!v) return false;
    int r = (int)v->shape.size();
    int64_t axis = r >= 3 && chance(0.25) ? -2 : -1;
    Shape ns(v->shape.end() + axis, v->shape.end());  // the normalised dims
    // Always a bias of magnitude ~1, and epsilon 0.01: on a row that is (nearly) constant
    // upstream (a softmax over a size-1 axis, a sigmoid of tiny values) x - mean is
    // rounding noise, which 1/sqrt(1e-5) would amplify past kTol, and without a bias it
    // would be all of max|reference| too.
    std::vector<std::string> in{v->name, constant(random_tensor(ns, rng_, 0.5f, 1.5f)),
                                constant(random_tensor(ns, rng_, -1.f, 1.f))};
    add("LayerNormalization", in, {{"axis", Attribute::of_int(axis)}, {"epsilon", Attribute::of_float(1e-2f)}});
    return true;
  }

  bool transpose() {
    const Value* v = choose_rank(2);
    if (!v) return false;
    std::vector<int64_t> perm(v->shape.size());
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = 0; i < 4 && std::is_sorted(perm.begin(), perm.end()); i++) std::shuffle(perm.begin(), perm.end(), rng_);
    add("Transpose", {v->name}, {{"perm", ints(perm)}});
    return true;
  }

  // Reshape to [N, C, H*W] / [N, C*H*W] / [N*C, H, W] / back to 4-D, or Flatten.
  bool reshape() {
    const Value* v = choose_rank(2);
    if (!v) return false;
    const Shape& s = v->shape;
    int r = (int)s.size();
    if (chance(0.4)) {
      add("Flatten", {v->name}, {{"axis", Attribute::of_int(pick(0, r))}});
      return true;
    }
    std::vector<int64_t> to;
    int form = pick(0, 3);
    int64_t n = shape_numel(s);
    if (form == 0 && r >= 3) to = {0, s[1], -1};                 // [N, C, rest]
    else if (form == 1) to = {s[0], -1};                        // [N, rest]
    else if (form == 2 && r == 4) to = {s[0] * s[1], s[2], s[3]};
    else if (r == 3 && s[2] % 2 == 0) to = {s[0], s[1], 2, s[2] / 2};  // back to 4-D
    else to = {n};
    add("Reshape", {v->name, i64(to)});
    return true;
  }

  bool slice() {
    const Value* v = choose([](const Value& v) {
      return !v.shape.empty() && *std::max_element(v.shape.begin(), v.shape.end()) >= 2;
    });
    if (!v) return false;
    int r = (int)v->shape.size();
    std::vector<int64_t> starts, ends, axes, steps, used;
    for (int tries = 0; tries < 8 && axes.size() < 2; tries++) {
      int64_t a = pick(0, r - 1), d = v->shape[a];
      if (d < 2 || std::find(used.begin(), used.end(), a) != used.end()) continue;
      used.push_back(a);
      int64_t st = pick(0, (int)d - 2), en = pick((int)st + 1, (int)d);
      axes.push_back(chance(0.3) ? a - r : a);
      starts.push_back(st);
      ends.push_back(chance(0.2) && en == d ? INT64_MAX : en);
      steps.push_back(en - st >= 3 && chance(0.3) ? 2 : 1);
      if (chance(0.5)) break;
    }
    if (axes.empty()) return false;
    add("Slice", {v->name, i64(starts), i64(ends), i64(axes), i64(steps)});
    return true;
  }

  // A value times a constant [last, K] (a Linear layer on the last axis).
  bool matmul() {
    const Value* v = choose_rank(2);
    if (!v) return false;
    const Shape& s = v->shape;
    // Sometimes as many columns as the value has channels or rows, so that a per-channel
    // or per-row operand after it has as many elements as a row.
    int64_t kin = s.back(), k = chance(0.3) ? s[chance(0.5) ? 1 : s.size() - 2] : pick(1, 20);
    add("MatMul", {v->name, weights({kin, k}, (float)kin)});
    return true;
  }

  // Gemm on a 2-D value (flattened first when there is none): transposes, alpha, beta,
  // and a bias C of shape [K], [1, K], [M, 1] or [M, K].
  bool gemm() {
    const Value* v = choose_rank(2, 2);
    std::string x;
    Shape s;
    if (v) {
      x = v->name, s = v->shape;
    } else {
      v = choose_rank(3, 4);
      if (!v) return false;
      x = add("Flatten", {v->name});
      s = shapes_[x];
    }
    bool ta = chance(0.3), tb = chance(0.5);
    if (ta) {  // feed A^T: Transpose first, so that Gemm's transA gives back [M, K]
      x = add("Transpose", {x}, {{"perm", ints({1, 0})}}, true);
      s = {s[1], s[0]};
    }
    int64_t m = ta ? s[1] : s[0], kin = ta ? s[0] : s[1], k = pick(1, 20);
    std::vector<std::string> in{x, weights(tb ? Shape{k, kin} : Shape{kin, k}, (float)kin)};
    if (chance(0.7)) in.push_back(constant(random_tensor(one_of<Shape>({{k}, {1, k}, {m, 1}, {m, k}}), rng_)));
    std::map<std::string, Attribute> a{{"transA", Attribute::of_int(ta)}, {"transB", Attribute::of_int(tb)}};
    if (chance(0.3)) a["alpha"] = Attribute::of_float(one_of<float>({0.5f, 2.f, -1.f}));
    if (chance(0.3)) a["beta"] = Attribute::of_float(one_of<float>({0.f, 0.5f, 3.f}));
    add("Gemm", in, a);
    return true;
  }

  // a x a^T or a^T x a over the last two axes (attention scores).
  bool self_matmul() {
    const Value* v = choose_rank(3, 4);
    if (!v) return false;
    int r = (int)v->shape.size();
    std::vector<int64_t> perm(r);
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[r - 1], perm[r - 2]);
    std::string x = v->name, t = add("Transpose", {x}, {{"perm", ints(perm)}}, true);
    if (chance(0.5)) add("MatMul", {x, t});
    else add("MatMul", {t, x});  // the right operand in the layout v has
    return true;
  }

  bool resize() {
    const Value* v = choose_rank(4, 4);
    if (!v || v->shape[2] > 8 || v->shape[3] > 8) return false;
    std::string mode = chance(0.5) ? "nearest" : "linear";
    add("Resize", {v->name, "", constant(Tensor::from_vector<float>({4}, {1.f, 1.f, 2.f, 2.f}))},
        {{"mode", Attribute::of_string(mode)}});
    return true;
  }

  bool pad() {
    const Value* v = choose_rank(4, 4);
    if (!v) return false;
    std::string mode = one_of<std::string>({"constant", "constant", "reflect", "edge"});
    int64_t lim = mode == "reflect" ? std::min<int64_t>(2, std::min(v->shape[2], v->shape[3]) - 1) : 2;
    std::vector<int64_t> p(8, 0);
    for (int i : {2, 3, 6, 7}) p[i] = pick(0, (int)lim);
    std::vector<std::string> in{v->name, i64(p)};
    if (mode == "constant" && chance(0.5)) in.push_back(f32(0.25f));
    add("Pad", in, {{"mode", Attribute::of_string(mode)}});
    return true;
  }

  bool reduce() {
    const Value* v = choose_rank(2);
    if (!v) return false;
    int r = (int)v->shape.size();
    std::vector<int64_t> axes;
    for (int d = 0; d < r; d++)
      if (chance(0.4)) axes.push_back(d);
    if (axes.empty()) axes.push_back(pick(0, r - 1));
    add(chance(0.7) ? "ReduceMean" : "ReduceMax", {v->name},
        {{"axes", ints(axes)}, {"keepdims", Attribute::of_int(chance(0.6))}});
    return true;
  }

  std::mt19937& rng_;
  GraphBuilder b_;
  Shape input_;
  std::vector<Value> pool_;
  std::map<std::string, Shape> shapes_;
  std::map<std::string, std::string> short_;
  std::map<std::string, Tensor> consts_;
  std::vector<std::string> outputs_;
  int nodes_ = 0;
};

// Per-output relative differences of `a` against `b` on these inputs.
std::vector<double> compare(const Graph& g, const std::vector<Tensor>& in, SessionOptions a, SessionOptions b) {
  Session sa(g, a), sb(g, b);
  std::vector<Tensor> oa = sa.run(in), ob = sb.run(in);
  std::vector<double> d;
  for (size_t i = 0; i < oa.size(); i++) d.push_back(max_rel_diff(oa[i], ob[i]));
  return d;
}

struct Verdict {
  std::vector<double> fast, passes;  // per output: fast vs ref; ref with vs without passes
  std::string error;                 // an exception's message
  bool failed() const {
    if (!error.empty()) return true;
    for (double d : fast)
      if (!(d < kTol)) return true;
    for (double d : passes)
      if (!(d < kTol)) return true;
    return false;
  }
};

Verdict check(const Graph& g, const std::vector<Tensor>& in, const SessionOptions& o) {
  Verdict v;
  SessionOptions fast = o, ref = o, bare = o;
  fast.fast_kernels = true;
  ref.fast_kernels = bare.fast_kernels = false;
  for (const auto& p : pass_list()) bare.disabled_passes.insert(p.name);
  try {
    v.fast = compare(g, in, fast, ref);
    v.passes = compare(g, in, ref, bare);
  } catch (const std::exception& e) {
    v.error = e.what();
  }
  return v;
}

std::string diffs_str(const std::vector<double>& d) {
  std::ostringstream os;
  for (size_t i = 0; i < d.size(); i++) os << (i ? " " : "") << d[i];
  return os.str();
}

std::string options_str(const SessionOptions& o) {
  std::ostringstream os;
  os << "threads=" << o.threads << " winograd=" << o.winograd << " blocked_1x1=" << o.blocked_1x1 << " fuse=" << o.fuse
     << " autotune_threads=" << o.autotune_threads;
  if (!o.keep_values.empty()) {
    os << " keep_values={";
    for (const auto& k : o.keep_values) os << k << " ";
    os << "} keep_values_plain=" << o.keep_values_plain;
  }
  return os.str();
}

// The fast plan's steps: node (with fused ones), kernel, and the layout of each value.
std::string plan_str(const Graph& g, const Shape& x, const SessionOptions& o, const Generator& gen) {
  std::ostringstream os;
  try {
    Session s(g, o);
    const Plan& p = s.plan({x});
    for (const auto& st : p.steps()) {
      os << "    " << (st.node ? st.node->op_type : std::string("Reorder"));
      for (const Node* f : st.fused) os << "+" << f->op_type;
      os << " [" << (st.fast ? st.fast->impl() : std::string("ref")) << "] ";
      for (size_t i = 0; i < st.in.size(); i++) {
        if (st.in[i] < 0) continue;
        const Slot& sl = p.slots()[st.in[i]];
        os << (i ? "," : "") << (sl.is_const ? "const" : gen.name_of(sl.name) + ":" + layout_str(sl.layout));
      }
      os << " -> ";
      for (int s2 : st.out)
        if (s2 >= 0) os << gen.name_of(p.slots()[s2].name) << ":" << layout_str(p.slots()[s2].layout) << " ";
      os << "\n";
    }
  } catch (const std::exception& e) {
    os << "    (plan failed: " << e.what() << ")\n";
  }
  return os.str();
}

// `g` with `outs` as its outputs and only the nodes they depend on.
Graph cone(const Graph& g, const std::vector<std::string>& outs) {
  Graph r = g;
  r.nodes.clear();
  r.outputs.clear();
  for (const auto& o : outs) {
    ValueInfo vi;
    vi.name = o;
    vi.dtype = DType::f32;
    r.outputs.push_back(vi);
  }
  std::set<std::string> need(outs.begin(), outs.end());
  std::vector<Node> keep;
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    if (!need.count(it->outputs[0])) continue;
    keep.push_back(*it);
    need.insert(it->inputs.begin(), it->inputs.end());
  }
  r.nodes.assign(keep.rbegin(), keep.rend());
  for (auto it = r.initializers.begin(); it != r.initializers.end();)
    it = need.count(it->first) ? std::next(it) : r.initializers.erase(it);
  r.sort_and_validate();
  return r;
}

// Runs one seed; an empty string when it passes, else the report (seed, options, graph,
// plan, and the smallest failing part of the graph).
std::string run_seed(int seed) {
  std::mt19937 rng{(unsigned)seed * 104729u + 17};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Generator gen(rng);
  gen.generate();
  Graph g = gen.build();
  SessionOptions o;
  o.threads = pick(1, 2);
  o.winograd = pick(0, 3) != 0;
  o.blocked_1x1 = pick(0, 1);
  o.fuse = pick(0, 4) != 0;
  o.autotune_threads = pick(0, 3) == 0;
  if (pick(0, 4) == 0) {  // an observed value: kept, fusion never hides it
    auto mids = gen.intermediates();
    o.keep_values.insert(mids[pick(0, (int)mids.size() - 1)]);
    o.keep_values_plain = pick(0, 1);
  }
  std::vector<Tensor> in{random_tensor(gen.input_shape(), rng)};
  Verdict v = check(g, in, o);
  if (!v.failed()) return "";

  std::ostringstream msg;
  msg << "seed " << seed << " (" << fast_isa() << ")\n  options: " << options_str(o) << "\n  graph: " << gen.describe(g)
      << "\n  fast vs ref per output: " << diffs_str(v.fast) << "\n  ref with vs without passes per output: "
      << diffs_str(v.passes) << (v.error.empty() ? "" : "\n  error: " + v.error) << "\n  fast plan:\n"
      << plan_str(g, gen.input_shape(), o, gen);
  // Shrink: the smallest part of the graph that still fails, with one output (a node's)
  // or two (a node's and one of the graph's, which may be what forces a plain layout).
  std::string best;
  size_t best_nodes = SIZE_MAX;
  std::vector<std::vector<std::string>> candidates;
  for (const Node& n : g.nodes) candidates.push_back({n.outputs[0]});
  for (const Node& n : g.nodes)
    for (const auto& out : gen.outputs())
      if (out != n.outputs[0]) candidates.push_back({n.outputs[0], out});
  for (const auto& outs : candidates) {
    Graph c = cone(g, outs);
    if (c.nodes.size() >= best_nodes) continue;
    Verdict cv = check(c, in, o);
    if (cv.failed()) {
      best_nodes = c.nodes.size();
      best = gen.describe(c) + "\n  fast vs ref: " + diffs_str(cv.fast) + ", passes: " + diffs_str(cv.passes) +
             (cv.error.empty() ? "" : ", error: " + cv.error) + "\n  its fast plan:\n" +
             plan_str(c, gen.input_shape(), o, gen);
    }
  }
  msg << "  smallest failing part: " << (best.empty() ? "(none smaller fails)" : best);
  return msg.str();
}

// Seeds run in batches of kBatch per test case: one ctest entry (one process) per seed
// would cost more in start-up than the seeds themselves.
constexpr int kBatch = 30;

class RandomGraph : public ::testing::TestWithParam<int> {};

TEST_P(RandomGraph, FastKernelsMatchReference) {
  int first = GetParam() * kBatch, last = std::min(first + kBatch, seed_count());
  for (int seed = first; seed < last; seed++) {
    std::string failure = run_seed(seed);
    if (!failure.empty())
      ADD_FAILURE() << failure << "\n  rerun: rg_unit_tests --gtest_filter='Seeds/RandomGraph.FastKernelsMatchReference/"
                    << GetParam() << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomGraph, ::testing::Range(0, (seed_count() + kBatch - 1) / kBatch));

}  // namespace
}  // namespace rg::test

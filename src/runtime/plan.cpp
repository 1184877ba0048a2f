#include "runtime/plan.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unistd.h>

namespace rg {
namespace {

// Operators whose fast kernel can absorb following activations (and, for Conv, a
// residual Add) as oneDNN post-ops.
bool fusion_head(const Node& n) {
  return n.domain.empty() && (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm" ||
                              n.op_type == "MatMul" || n.op_type == "BatchNormalization" || n.op_type == "Concat");
}

bool fusible_activation(const Node& n) {
  static const std::set<std::string> kActs = {"Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh",
                                              "HardSwish", "HardSigmoid", "Swish", "Gelu", "Mish", "Clip"};
  return n.domain.empty() && kActs.count(n.op_type) && n.outputs.size() == 1;
}

// The one axis of `out` along which `operand` (broadcast to it) varies: -1 when it is a
// scalar, -2 when it varies along several axes or would change out's shape.
int broadcast_axis(const Shape& operand, const Shape& out) {
  if (operand.size() > out.size()) return -2;
  int axis = -1;
  size_t off = out.size() - operand.size();
  for (size_t i = 0; i < operand.size(); i++) {
    if (operand[i] == 1) continue;
    if (operand[i] != out[off + i] || axis >= 0) return -2;
    axis = (int)(off + i);
  }
  return axis;
}

const Node& reorder_node() {
  static const Node n = [] {
    Node r;
    r.op_type = "Reorder";
    r.name = "(layout conversion)";
    return r;
  }();
  return n;
}

}  // namespace

void SessionOptions::validate() const {
  if (threads < 0) fail(ErrorCode::invalid_input, "threads must be >= 0, got {}", threads);
}

Plan::Plan(const Graph& g, const std::vector<Shape>& input_shapes, const SessionOptions& o)
    : graph_(g), opts_(o), opset_(g.opset()) {
  // oneDNN sizes its parallel work split when a primitive is created: compile with the
  // thread count the plan will run with (a stream's own), not the caller's.
  int prev = omp_get_max_threads();
  if (opts_.threads > 0) omp_set_num_threads(opts_.threads);
  threads_ = omp_get_max_threads();
  try {
    build(input_shapes);
    if (threads_ > 1 && opts_.autotune_threads) autotune_threads();
  } catch (...) {
    omp_set_num_threads(prev);
    throw;
  }
  omp_set_num_threads(prev);
}

int Plan::slot_of(const std::string& value) const {
  auto it = slot_index_.find(value);
  return it == slot_index_.end() ? -1 : it->second;
}

int Plan::add_slot(const std::string& name) {
  auto it = slot_index_.find(name);
  if (it != slot_index_.end()) return it->second;
  slots_.push_back(Slot{});
  slots_.back().name = name;
  slot_index_[name] = (int)slots_.size() - 1;
  return (int)slots_.size() - 1;
}

void Plan::build(const std::vector<Shape>& input_shapes) {
  RG_ASSERT(input_shapes.size() == graph_.inputs.size());
  for (size_t i = 0; i < graph_.inputs.size(); i++) {
    int s = add_slot(graph_.inputs[i].name);
    slots_[s].type = graph_.inputs[i].dtype;
    slots_[s].shape = input_shapes[i];
    slots_[s].shape_known = true;
    input_slots_.push_back(s);
  }
  for (auto& kv : graph_.initializers) {
    int s = add_slot(kv.first);
    slots_[s].type = kv.second.dtype();
    slots_[s].shape = kv.second.shape();
    slots_[s].shape_known = slots_[s].is_const = true;
    slots_[s].value = kv.second;
  }
  consumers_ = graph_.consumers();
  producers_ = graph_.producers();
  absorbed_.assign(graph_.nodes.size(), false);
  for (size_t ni = 0; ni < graph_.nodes.size(); ni++) {
    if (absorbed_[ni]) continue;
    move_scale_into_weights((int)ni);
    plan_node((int)ni);
  }
  for (const auto& o : graph_.outputs) {
    int s = slot_of(o.name);
    RG_ASSERT(s >= 0);
    output_slots_.push_back(plain_twin(s));
  }
  allocate();
}

// Folds a node whose inputs are all constant (or a Shape/Size of a known shape) into
// constant slots. Returns false when the node must run at inference time.
bool Plan::fold_node(const Node& n, const InferCtx& ic, const std::vector<int>& in, const std::vector<int>& out) {
  bool all_const = true;
  for (int s : in) all_const &= s < 0 || slots_[s].is_const;
  bool shape_op = n.op_type == "Shape" || n.op_type == "Size";
  if (!(all_const || shape_op) || graph_.is_graph_output(n.outputs[0])) return false;
  static const std::set<std::string> kRandom = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                                "RandomUniformLike", "Multinomial", "Bernoulli"};
  if (kRandom.count(n.op_type)) return false;
  const OpDef* op = find_op(n.domain, n.op_type);
  KernelCtx kc(n, opset_);
  std::vector<Tensor> outs;
  for (size_t i = 0; i < ic.out_types.size(); i++) outs.emplace_back(ic.out_types[i], ic.out_shapes[i]);
  for (int s : in) kc.in.push_back(s < 0 ? nullptr : &slots_[s].value);
  for (auto& t : outs) kc.out.push_back(&t);
  // Shape/Size read only the input's shape: give them a shape-only placeholder.
  Tensor placeholder;
  if (shape_op && !slots_[in[0]].is_const) {
    placeholder = Tensor::wrap(slots_[in[0]].type, slots_[in[0]].shape, nullptr);
    kc.in[0] = &placeholder;
  }
  op->ref(kc);
  for (size_t i = 0; i < out.size() && i < outs.size(); i++) {
    if (out[i] < 0) continue;
    Slot& s = slots_[out[i]];
    s.type = outs[i].dtype();
    s.shape = outs[i].shape();
    s.shape_known = s.is_const = true;
    s.value = outs[i];
  }
  return true;
}

// The activations (and residual Add) that can run inside node ni's kernel: each must be
// the only consumer of the value before it, which must not be a graph output or kept.
std::vector<PostOp> Plan::fusion_chain(int ni, const InferCtx& ic) {
  std::vector<PostOp> chain;
  const Node& head = graph_.nodes[ni];
  if (!opts_.fuse || !fusion_head(head) || head.outputs.size() != 1) return chain;
  std::string cur = head.outputs[0];
  const Shape& out_shape = ic.out_shapes[0];
  for (;;) {
    if (graph_.is_graph_output(cur) || opts_.keep_values.count(cur)) break;
    auto it = consumers_.find(cur);
    if (it == consumers_.end() || it->second.size() != 1) break;
    int ci = it->second[0];
    const Node& c = graph_.nodes[ci];
    if (c.op_type == "BatchNormalization" && c.domain.empty() && chain.empty() && head.op_type == "Concat" &&
        c.inputs.size() == 5 && c.inputs[0] == cur && c.outputs.size() == 1 && c.attr_i("spatial", 1) == 1) {
      // DenseNet's pre-activation after a join: the copy applies it (per channel, one
      // scale and shift), so the joined tensor is never written and read back.
      PostOp po{&c};
      for (int k = 0; k < 4; k++) {
        int ps = slot_of(c.inputs[k + 1]);
        if (ps < 0 || !slots_[ps].is_const || slots_[ps].type != DType::f32 || out_shape.size() < 2 ||
            slots_[ps].value.numel() != out_shape[1])
          return {};
        po.norm[k] = &slots_[ps].value;
      }
      chain.push_back(po);
    } else if (c.op_type == "Add" && c.domain.empty() && chain.empty() && head.op_type == "Conv" &&
               c.inputs.size() == 2) {
      // Residual: the other operand must exist before the head runs and match its shape.
      const std::string& other = c.inputs[0] == cur ? c.inputs[1] : c.inputs[0];
      int os = slot_of(other);
      if (c.inputs[0] == c.inputs[1] || os < 0 || slots_[os].is_const || !slots_[os].shape_known ||
          slots_[os].shape != out_shape || slots_[os].type != DType::f32)
        break;
      auto p = producers_.find(other);
      if (p != producers_.end() && p->second > ni) break;
      chain.push_back({&c});
    } else if (c.op_type == "Add" && c.domain.empty() && chain.empty() && c.inputs.size() == 2 &&
               (head.op_type == "MatMul" || (head.op_type == "Gemm" && !head.has_input(2)))) {
      // A constant bias along the last dim joins the matmul (by its shape: a [C, 1, 1] or
      // [M, 1] constant with C or M equal to N varies along another axis).
      const std::string& other = c.inputs[0] == cur ? c.inputs[1] : c.inputs[0];
      int os = slot_of(other);
      if (c.inputs[0] == c.inputs[1] || os < 0 || !slots_[os].is_const || slots_[os].type != DType::f32 ||
          out_shape.empty() || slots_[os].value.numel() != out_shape.back() || slots_[os].shape.empty() ||
          slots_[os].shape.back() != out_shape.back() || slots_[os].shape.size() > out_shape.size())
        break;
      PostOp po{&c};
      po.bias = &slots_[os].value;
      chain.push_back(po);
    } else if ((c.op_type == "Max" || c.op_type == "Min") && c.domain.empty() && c.inputs.size() == 2 &&
               c.inputs[0] != c.inputs[1]) {
      // A range check's bound: a constant scalar or one value per channel.
      const std::string& other = c.inputs[0] == cur ? c.inputs[1] : c.inputs[0];
      int os = slot_of(other);
      if (os < 0 || !slots_[os].is_const || slots_[os].type != DType::f32) break;
      PostOp po = bound_post_op(c, os, c.op_type == "Max", out_shape);
      if (po.operand_axis < -1) break;
      chain.push_back(po);
    } else if (c.op_type == "PRelu" && c.domain.empty() && c.inputs.size() == 2 && c.inputs[0] == cur) {
      // A learned slope per channel (or one): oneDNN's prelu post-op, a leaky ReLU.
      int os = slot_of(c.inputs[1]);
      if (os < 0 || !slots_[os].is_const || slots_[os].type != DType::f32) break;
      PostOp po = bound_post_op(c, os, false, out_shape);
      if (po.operand_axis < -1) break;
      chain.push_back(po);
    } else if (c.op_type == "RangeGuard" && c.inputs.size() == 3 && c.inputs[0] == cur &&
               c.attr_s("mode", "clamp") == "clamp" && (c.outputs.size() < 2 || c.outputs[1].empty())) {
      // protect's per-channel clamp (passes/range_guard.cpp): its two bounds, for a kernel
      // that applies them as it stores (plan_node keeps them only there).
      int ls = slot_of(c.inputs[1]), hs = slot_of(c.inputs[2]);
      if (ls < 0 || hs < 0 || !slots_[ls].is_const || !slots_[hs].is_const || slots_[ls].type != DType::f32 ||
          slots_[hs].type != DType::f32)
        break;
      PostOp lo = bound_post_op(c, ls, true, out_shape), hi = bound_post_op(c, hs, false, out_shape);
      if (lo.operand_axis < -1 || hi.operand_axis < -1) break;
      chain.push_back(lo);
      chain.push_back(hi);
    } else if ((c.op_type == "Mul" || (c.op_type == "Div" && c.inputs[0] == cur)) && c.domain.empty() &&
               c.inputs.size() == 2 && (head.op_type == "MatMul" || head.op_type == "Gemm")) {
      // A constant scale (attention's 1/sqrt(d), which passes/move_scale.cpp put here), or
      // one per output feature after a Linear layer (ConvNeXt's layer scale): oneDNN's
      // binary post-op.
      int os = slot_of(c.inputs[0] == cur ? c.inputs[1] : c.inputs[0]);
      if (os < 0 || !slots_[os].is_const || slots_[os].type != DType::f32 || slots_[os].shape.size() > out_shape.size())
        break;
      if (slots_[os].value.numel() != 1) {
        PostOp po = bound_post_op(c, os, false, out_shape);
        if (c.op_type != "Mul" || po.operand_axis != (int)out_shape.size() - 1) break;
        chain.push_back(po);
        cur = c.outputs[0];
        continue;
      }
      float v = slots_[os].value.data<float>()[0];
      if (c.op_type == "Div" && v == 0.f) break;
      PostOp po{&c};
      po.scale = c.op_type == "Div" ? 1.f / v : v;
      chain.push_back(po);
    } else if (fusible_activation(c) && c.inputs[0] == cur) {
      PostOp po{&c};
      if (c.op_type == "Clip") {
        std::vector<const Tensor*> vals;
        for (size_t k = 0; k < c.inputs.size(); k++) {
          int s = c.inputs[k].empty() ? -1 : slot_of(c.inputs[k]);
          vals.push_back(s >= 0 && slots_[s].is_const ? &slots_[s].value : nullptr);
        }
        if (!clip_bounds(c, vals, po.clip_lo, po.clip_hi)) break;
      }
      chain.push_back(po);
    } else {
      break;
    }
    cur = c.outputs[0];
  }
  // A batch normalization takes a Relu and nothing else (the rest runs as its own steps).
  if (head.op_type == "BatchNormalization")
    chain.resize(!chain.empty() && chain[0].node->op_type == "Relu" ? 1 : 0);
  // A join takes a batch normalization, then a Relu, and nothing else.
  if (head.op_type == "Concat") {
    if (chain.empty() || !chain[0].norm[0]) chain.clear();
    chain.resize(std::min<size_t>(chain.size(), chain.size() > 1 && chain[1].node->op_type == "Relu" ? 2 : 1));
  }
  return chain;
}

PostOp Plan::bound_post_op(const Node& n, int slot, bool lower, const Shape& out_shape) const {
  PostOp po{&n};
  po.operand = &slots_[slot].value;
  po.operand_axis = broadcast_axis(po.operand->shape(), out_shape);
  po.lower = lower;
  return po;
}

int Plan::plain_twin(int s) {
  if (is_plain(slots_[s].layout)) return s;
  if (slots_[s].plain_twin >= 0) return slots_[s].plain_twin;
  int t = add_slot(slots_[s].name + "#plain");
  slots_[t].type = slots_[s].type;
  slots_[t].shape = slots_[s].shape;
  slots_[t].shape_known = true;
  slots_[s].plain_twin = t;
  Step st;
  st.fast = make_reorder(slots_[s].layout, plain_layout(), slots_[s].shape, slots_[s].type);
  st.in = {s};
  st.out = {t};
  steps_.push_back(std::move(st));
  return t;
}

void Plan::plan_node(int ni) {
  const Node& n = graph_.nodes[ni];
  const OpDef* op = find_op(n.domain, n.op_type);
  if (!op)
    fail(ErrorCode::unsupported_op, "unsupported operator {}{} (node '{}', opset {})",
         n.domain.empty() ? "" : n.domain + ".", n.op_type, n.name, opset_);
  Step st;
  st.node = &n;
  st.op = op;
  InferCtx ic(n, opset_);
  bool shapes_known = true;
  for (const auto& in : n.inputs) {
    int s = in.empty() ? -1 : slot_of(in);
    RG_ASSERT(in.empty() || s >= 0);  // sort_and_validate guarantees a source
    st.in.push_back(s);
    ic.in_types.push_back(s < 0 ? DType::undefined : slots_[s].type);
    ic.in_shapes.push_back(s < 0 ? Shape{} : slots_[s].shape);
    ic.in_values.push_back(s >= 0 && slots_[s].is_const ? &slots_[s].value : nullptr);
    if (s >= 0) shapes_known &= slots_[s].shape_known;
  }
  for (const auto& o : n.outputs) st.out.push_back(o.empty() ? -1 : add_slot(o));
  st.dynamic = !shapes_known;
  if (shapes_known) {
    try {
      op->infer(ic);
    } catch (const NeedsValue&) {
      st.dynamic = true;
    }
  }
  if (!st.dynamic) {
    ic.out_types.resize(n.outputs.size(), DType::undefined);
    ic.out_shapes.resize(n.outputs.size());
    if (fold_node(n, ic, st.in, st.out)) return;
  }

  // Empty tensors (a zero dim) go to the reference kernels: oneDNN may divide by a zero
  // dim while building a primitive (found by fuzzing: Gemm with M = 0).
  bool empty = false;
  for (const auto& sh : ic.in_shapes) empty |= shape_numel(sh) == 0;
  for (const auto& sh : ic.out_shapes) empty |= shape_numel(sh) == 0;
  std::vector<PostOp> chain;
  if (!st.dynamic && opts_.fast_kernels && !empty) {
    if (find_fast(n.op_type)) {
      chain = fusion_chain(ni, ic);
      CompileCtx cc(n, opset_);
      cc.in_types = ic.in_types;
      cc.in_shapes = ic.in_shapes;
      cc.in_values = ic.in_values;
      for (int s : st.in) cc.in_layouts.push_back(s < 0 ? plain_layout() : slots_[s].layout);
      cc.out_types = ic.out_types;
      cc.out_shapes = ic.out_shapes;
      cc.bf16 = opts_.precision == Precision::bf16;
      cc.winograd = opts_.winograd;
      cc.blocked_1x1 = opts_.blocked_1x1;
      cc.scratch = &scratch_;
      cc.staging = &staging_;
      const std::string& last = chain.empty() ? n.outputs[0] : chain.back().node->outputs[0];
      // Kept values get a plain twin below instead: forcing a plain destination here could
      // change the kernel oneDNN picks, and with it the rounding the observer sees.
      cc.plain_output = graph_.is_graph_output(last) || (opts_.keep_values_plain && opts_.keep_values.count(last));
      auto with_chain = [&](const std::vector<PostOp>& ch) {
        cc.post_ops = ch;
        cc.in_types.resize(ic.in_types.size());
        cc.in_shapes.resize(ic.in_shapes.size());
        cc.in_values.resize(ic.in_values.size());
        cc.in_layouts.resize(ic.in_types.size());
        for (const auto& p : ch)
          if (p.node->op_type == "Add" && !p.bias) {  // the residual joins as the last input
            const std::string& other = p.node->inputs[0] == n.outputs[0] ? p.node->inputs[1] : p.node->inputs[0];
            int s = slot_of(other);
            cc.in_types.push_back(slots_[s].type);
            cc.in_shapes.push_back(slots_[s].shape);
            cc.in_values.push_back(nullptr);
            cc.in_layouts.push_back(slots_[s].layout);
          }
        return find_fast(n.op_type)->make(cc);
      };
      st.fast = with_chain(chain);
      // Rebuilds the kernel with only the first `keep` fused nodes when `better` accepts
      // the result; the dropped checks then run as their own steps.
      auto shorten = [&](size_t keep, const std::function<bool(const Kernel&)>& better) {
        std::vector<PostOp> head(chain.begin(), chain.begin() + keep);
        std::unique_ptr<Kernel> k = with_chain(head);
        if (k && better(*k)) {
          st.fast = std::move(k);
          chain = head;
        } else {
          cc.post_ops = chain;  // what st.fast was built with, for autotuning
        }
      };
      auto impl_has = [](const Kernel& k, const char* what) { return k.impl().find(what) != std::string::npos; };
      // Range checks (Clip/Max/Min after the activation) make Winograd, which takes a
      // ReLU post-op only, give way to a direct convolution. Keep Winograd and let the
      // checks run as their own (cheap, elementwise) steps.
      // (Per-channel Max/Min stay fused: standalone, oneDNN runs them on blocked layouts
      // with its slow reference binary. `protect`'s own per-channel checks are RangeGuard
      // steps by now (passes/range_guard.cpp), placed below.)
      auto bound = [](const PostOp& p) { return p.operand && p.node->op_type != "PRelu"; };
      size_t checks = chain.size();
      while (checks > 0 && ((bound(chain[checks - 1]) && chain[checks - 1].operand_axis < 0) ||
                            chain[checks - 1].node->op_type == "Clip"))
        checks--;
      if (st.fast && opts_.winograd && n.op_type == "Conv" && checks > 0 && checks < chain.size() &&
          !impl_has(*st.fast, "wino"))
        shorten(checks, [&](const Kernel& k) { return impl_has(k, "wino"); });
      // Per-channel checks are binary post-ops, which a gemm-based convolution (oneDNN's
      // pick for 1x1 outputs such as squeeze-excite layers) applies in a reference loop:
      // 3.5x the convolution's time, measured. There the checks run as their own steps,
      // on a few thousand values.
      size_t unchecked = chain.size();
      while (unchecked > 0 && chain[unchecked - 1].operand && chain[unchecked - 1].operand_axis >= 0) unchecked--;
      if (st.fast && unchecked < chain.size() && impl_has(*st.fast, "gemm") && n.op_type == "Conv")
        shorten(unchecked, [](const Kernel&) { return true; });
      auto first_of = [&](const char* op) {  // index of op's first node in the chain, or its size
        size_t i = 0;
        while (i < chain.size() && chain[i].node->op_type != op) i++;
        return i;
      };
      // PRelu fuses where the kernel runs it natively (rangeguard's Winograd); oneDNN's
      // AVX2 direct convolutions take a prelu post-op only in their reference kernel.
      size_t before_prelu = first_of("PRelu");
      if (st.fast && before_prelu < chain.size() && impl_has(*st.fast, "ref"))
        shorten(before_prelu, [&](const Kernel& k) { return !impl_has(k, "ref"); });
      // protect's per-channel clamps stay fused only in rangeguard's own convolutions
      // (Winograd, grouped), which apply them before their store; elsewhere the
      // standalone RangeGuard pass costs less than oneDNN's binary post-ops (see
      // passes/range_guard.cpp).
      size_t unguarded = first_of("RangeGuard");
      if (st.fast && unguarded < chain.size() && !st.fast->clamps_in_store())
        shorten(unguarded, [](const Kernel&) { return true; });
      if (!st.fast && !chain.empty()) {
        chain.clear();
        st.fast = with_chain(chain);
      }
      // Kept so autotuning can rebuild the kernel for another thread count.
      if (st.fast) st.compile = std::make_unique<CompileCtx>(cc);
    }
  }
  if (!chain.empty()) {
    for (const auto& p : chain) {
      if (!st.fused.empty() && st.fused.back() == p.node) continue;  // a RangeGuard's two bounds
      st.fused.push_back(p.node);
      absorbed_[&*p.node - &graph_.nodes[0]] = true;
      if (p.node->op_type == "Add" && !p.bias) {
        const std::string& other = p.node->inputs[0] == n.outputs[0] ? p.node->inputs[1] : p.node->inputs[0];
        st.in.push_back(slot_of(other));
      }
    }
    // The fused step writes the chain's final value; the intermediates never exist.
    st.out[0] = add_slot(chain.back().node->outputs[0]);
  }
  if (!st.fast) {
    // Reference kernels read the ONNX layout only.
    for (int& s : st.in)
      if (s >= 0 && !is_plain(slots_[s].layout)) s = plain_twin(s);
  }
  for (size_t i = 0; i < st.out.size(); i++) {
    if (st.out[i] < 0) continue;
    Slot& s = slots_[st.out[i]];
    s.shape_known = !st.dynamic;
    if (!st.dynamic) {
      s.type = ic.out_types[i];
      s.shape = ic.out_shapes[i];
      if (st.fast) s.layout = st.fast->out_layout((int)i);
    }
  }
  if (opts_.verbose) {
    std::string fused;
    for (const Node* f : st.fused) fused += "+" + f->op_type;
    std::fprintf(stderr, "plan: %s%s -> %s%s\n", n.label().c_str(), fused.c_str(),
                 st.fast ? st.fast->impl().c_str() : "ref", st.dynamic ? " (dynamic)" : "");
  }
  int first_out = st.out.empty() ? -1 : st.out[0];
  steps_.push_back(std::move(st));
  // Kept values are read by observers in the ONNX layout.
  if (first_out >= 0 && opts_.keep_values.count(slots_[first_out].name)) plain_twin(first_out);
}

// Joins without copies: a part that a join (step i) would copy whole into one run of its
// result is produced there instead, when nothing else reads it (SqueezeNet's and
// Inception's convolution outputs, in whole channel blocks). Its buffer becomes an alias
// at that offset of the join's, whose lifetime then starts with the earliest such part.
template <class ArenaSlot>
void Plan::place_parts_in_join(int i, std::vector<int>& first, std::vector<int>& last, std::vector<int>& alias,
                               std::vector<size_t>& alias_at, const ArenaSlot& arena_slot) const {
  const Step& st = steps_[i];
  const int o = st.out[0];
  if (o < 0 || !arena_slot(o) || alias[o] >= 0) return;
  for (size_t j = 0; j < st.in.size(); j++) {
    size_t at = 0;
    if (st.in[j] < 0 || !st.fast->input_at_offset((int)j, at)) continue;
    int r = st.in[j];
    while (alias[r] >= 0) r = alias[r];
    // Read by nobody after the join, a value the arena holds, not placed already (the
    // same part twice: its root is then o).
    if (r == o || !arena_slot(r) || last[r] != i || slots_[r].type != slots_[o].type) continue;
    alias[r] = o;
    alias_at[r] = at;
    first[o] = std::min(first[o], first[r]);
    last[o] = std::max(last[o], i);
  }
}

// Places every activation buffer in one arena: two values share bytes when their
// lifetimes (producing step .. last reading step) do not overlap. Greedy, largest first,
// lowest free offset: simple and close to optimal on inference graphs.
void Plan::allocate() {
  const int n_steps = (int)steps_.size();
  struct Interval {
    int slot, first, last;
    size_t bytes, offset = 0;
  };
  std::vector<int> first(slots_.size(), -1), last(slots_.size(), -1);
  for (int i = 0; i < n_steps; i++) {
    for (int s : steps_[i].out)
      if (s >= 0 && first[s] < 0) first[s] = i;
    for (int s : steps_[i].in)
      if (s >= 0) last[s] = std::max(last[s], i);
  }
  for (int s : output_slots_) last[s] = n_steps;  // read by run() after the last step
  std::vector<bool> is_input(slots_.size(), false);
  for (int s : input_slots_) is_input[s] = true;
  auto arena_slot = [&](int s) {
    const Slot& sl = slots_[s];
    return !(sl.is_const || !sl.shape_known || sl.value.defined() || is_input[s] || first[s] < 0);
  };
  // In place, residual adds: a Conv+Add step whose residual is read by nobody later writes
  // its result over the residual (the sum post-op adds to what is already there), which
  // saves copying the residual into a fresh buffer.
  // Kernels that may run in place (RangeGuard) write over their input the same way, and
  // a step whose output is its input's bytes (Reshape) takes the input's buffer as it is.
  std::vector<int> alias(slots_.size(), -1);
  std::vector<size_t> alias_at(slots_.size(), 0);  // byte offset inside the alias target
  auto root_of = [&](int s) {
    while (s >= 0 && alias[s] >= 0) s = alias[s];
    return s;
  };
  for (int i = 0; i < n_steps; i++) {
    const Step& st = steps_[i];
    if (!st.fast || st.out.empty() || st.in.empty()) continue;
    place_parts_in_join(i, first, last, alias, alias_at, arena_slot);
    bool residual = !st.fused.empty() && st.fused.front()->op_type == "Add";
    bool view = !residual && st.fast->same_bytes();
    if (!residual && !view && !st.fast->may_run_in_place()) continue;
    int r = residual ? st.in.back() : st.in[0], o = st.out[0];
    // (A view's output may read its input's bytes in another layout: NHWC as channels-last.)
    if (r < 0 || o < 0 || !arena_slot(r) || !arena_slot(o) || last[root_of(r)] != i || slots_[r].type != slots_[o].type ||
        (!view && !same_layout(slots_[r].layout, slots_[o].layout)))
      continue;
    if (view ? shape_numel(slots_[r].shape) != shape_numel(slots_[o].shape) : slots_[r].shape != slots_[o].shape) continue;
    int root = root_of(r);
    // conv(a) + a: the residual is also what the convolution reads, and a direct kernel
    // would read values it has already overwritten.
    if (residual && std::any_of(st.in.begin(), st.in.end() - 1, [&](int s) { return root_of(s) == root; }))
      continue;
    alias[o] = root;
    last[root] = std::max(last[root], last[o]);
  }
  std::vector<Interval> iv;
  for (size_t s = 0; s < slots_.size(); s++) {
    const Slot& sl = slots_[s];
    if (!arena_slot((int)s) || alias[s] >= 0) continue;
    size_t bytes = (size_t)shape_numel(sl.shape) * dtype_size(sl.type);
    if (!is_plain(sl.layout)) bytes = std::max(bytes, layout_bytes(sl.layout));
    bytes = aligned_size(std::max<size_t>(bytes, 1));
    iv.push_back({(int)s, first[s], std::max(last[s], first[s]), bytes});
  }
  std::vector<int> order(iv.size());
  for (size_t i = 0; i < iv.size(); i++) order[i] = (int)i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return iv[a].bytes > iv[b].bytes; });
  std::vector<int> placed;
  size_t total = 0;
  for (int i : order) {
    // Busy address ranges among placed values alive at the same time, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (int j : placed)
      if (iv[j].first <= iv[i].last && iv[i].first <= iv[j].last) busy.emplace_back(iv[j].offset, iv[j].offset + iv[j].bytes);
    std::sort(busy.begin(), busy.end());
    size_t off = 0;
    for (const auto& r : busy) {
      if (off + iv[i].bytes <= r.first) break;
      off = std::max(off, r.second);
    }
    iv[i].offset = off;
    total = std::max(total, off + iv[i].bytes);
    placed.push_back(i);
  }
  size_t limit = opts_.max_activation_bytes;
  if (limit == 0) limit = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  if (total > limit)
    fail(ErrorCode::invalid_input, "the model needs {:.1f} MiB of activation memory at these input shapes, more than {:.1f} MiB{}",
         total / 1048576.0, limit / 1048576.0, opts_.max_activation_bytes ? " (max_activation_bytes)" : " (this machine's memory)");
  arena_ = aligned_buffer(total);
  std::vector<size_t> offset(slots_.size(), 0);
  for (const auto& v : iv) {
    Slot& sl = slots_[v.slot];
    offset[v.slot] = v.offset;
    sl.value = Tensor::wrap(sl.type, sl.shape, static_cast<char*>(arena_.get()) + v.offset, arena_);
  }
  for (size_t s = 0; s < slots_.size(); s++) {
    if (alias[s] < 0) continue;
    size_t at = 0;
    int root = (int)s;
    for (; alias[root] >= 0; root = alias[root]) at += alias_at[root];
    Slot& sl = slots_[s];
    sl.value = Tensor::wrap(sl.type, sl.shape, static_cast<char*>(arena_.get()) + offset[root] + at, arena_);
  }
  activation_bytes_ = total;
  scratch_.get();
  staging_.get();
  for (auto& st : steps_) {
    st.ctx = std::make_unique<KernelCtx>(st.node ? *st.node : reorder_node(), opset_);
    for (int s : st.in) st.ctx->in.push_back(s < 0 ? nullptr : &slots_[s].value);
    for (int s : st.out) st.ctx->out.push_back(s < 0 ? nullptr : &slots_[s].value);
  }
}

void Plan::infer_dynamic(Step& s) {
  const Node& n = *s.node;
  InferCtx ic(n, opset_);
  for (int si : s.in) {
    ic.in_types.push_back(si < 0 ? DType::undefined : slots_[si].value.dtype());
    ic.in_shapes.push_back(si < 0 ? Shape{} : slots_[si].value.shape());
    ic.in_values.push_back(si < 0 ? nullptr : &slots_[si].value);
  }
  try {
    s.op->infer(ic);
  } catch (const NeedsValue&) {
    fail(ErrorCode::internal, "{}: shape inference needs a value at run time", n.label());
  }
  for (size_t i = 0; i < s.out.size(); i++) {
    if (s.out[i] < 0) continue;
    if (i >= ic.out_types.size()) fail(ErrorCode::internal, "{}: output {} not inferred", n.label(), i);
    Slot& sl = slots_[s.out[i]];
    if (!sl.value.defined() || sl.value.dtype() != ic.out_types[i] || sl.value.shape() != ic.out_shapes[i])
      sl.value = Tensor(ic.out_types[i], ic.out_shapes[i]);
  }
}

void Plan::refresh_constant(const std::string& name) {
  int s = slot_of(name);
  if (s < 0) return;
  for (auto& st : steps_)
    if (st.fast && std::find(st.in.begin(), st.in.end(), s) != st.in.end()) st.fast->refresh_constants();
}

void Plan::observe(const std::vector<std::string>& values, Observer fn) {
  for (const auto& v : values) {
    int s = slot_of(v);
    if (s < 0) fail(ErrorCode::invalid_input, "no value named '{}' in the compiled model (fused away? keep it with keep_values)", v);
    if (!is_plain(slots_[s].layout)) {
      if (slots_[s].plain_twin < 0)
        fail(ErrorCode::invalid_input, "value '{}' is held in a oneDNN layout; list it in keep_values to observe it", v);
      s = slots_[s].plain_twin;
    }
    observers_.push_back({s, v, fn});
  }
}

void Plan::set_profiling(bool on) {
  profiling_ = on;
  step_ns_.assign(steps_.size(), 0);
  profiled_runs_ = 0;
}

void Plan::execute(const std::vector<Tensor>& inputs) { run_steps(inputs, 0, 0, nullptr); }

void Plan::run_steps(const std::vector<Tensor>& inputs, size_t from, size_t save_at, std::vector<char>* save) {
  RG_ASSERT(inputs.size() == input_slots_.size());
  omp_set_num_threads(threads_);  // per calling thread (streams)
  for (size_t i = 0; i < inputs.size(); i++) slots_[input_slots_[i]].value = inputs[i];
  int cur = threads_;
  for (size_t i = from; i < steps_.size(); i++) {
    if (save && i == save_at) {
      wait_fast_kernels();
      const char* a = static_cast<const char*>(arena_.get());
      save->assign(a, a + activation_bytes_);
    }
    Step& s = steps_[i];
    int want = s.threads ? s.threads : threads_;
    if (want != cur) omp_set_num_threads(cur = want);
    auto t0 = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (s.dynamic) infer_dynamic(s);
    if (s.fast) s.fast->run(*s.ctx);
    else s.op->ref(*s.ctx);
    if (profiling_)
      step_ns_[i] += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    if (!observers_.empty())
      for (auto& ob : observers_)
        for (int o : s.out)
          if (o == ob.slot) ob.fn(ob.name, slots_[o].value);
  }
  if (cur != threads_) omp_set_num_threads(threads_);
  wait_fast_kernels();
  if (profiling_) profiled_runs_++;
  for (int s : input_slots_)
    if (std::find(output_slots_.begin(), output_slots_.end(), s) == output_slots_.end())
      slots_[s].value = Tensor();  // do not keep the caller's buffers alive
}

// The first step whose `side` (Step::in or Step::out) lists `value`'s slot.
size_t Plan::first_step_with(const std::string& value, std::vector<int> Step::*side) const {
  int slot = slot_of(value);
  for (size_t i = 0; slot >= 0 && i < steps_.size(); i++) {
    const std::vector<int>& v = steps_[i].*side;
    if (std::find(v.begin(), v.end(), slot) != v.end()) return i;
  }
  return steps_.size();
}

size_t Plan::first_step_reading(const std::string& constant) const { return first_step_with(constant, &Step::in); }
size_t Plan::first_step_writing(const std::string& value) const { return first_step_with(value, &Step::out); }

bool Plan::resumable() const {
  for (const auto& st : steps_)
    if (st.dynamic) return false;
  return true;
}

void Plan::execute_resume(const std::vector<Tensor>& inputs, size_t from, std::vector<char>& snapshot) {
  if (from == 0 || from >= steps_.size() || !resumable()) return execute(inputs);
  if (snapshot.empty()) return run_steps(inputs, 0, from, &snapshot);
  RG_ASSERT(snapshot.size() == activation_bytes_);
  std::memcpy(arena_.get(), snapshot.data(), activation_bytes_);
  run_steps(inputs, from, 0, nullptr);
}

std::vector<Tensor> Plan::run(const std::vector<Tensor>& inputs) {
  execute(inputs);
  std::vector<Tensor> outs;
  for (int s : output_slots_) outs.push_back(slots_[s].value.clone());
  return outs;
}

}  // namespace rg

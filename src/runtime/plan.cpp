#include "runtime/plan.h"

#include <cstdio>

namespace rg {

void SessionOptions::validate() const {
  if (threads < 0) fail(ErrorCode::invalid_input, "threads must be >= 0, got {}", threads);
}

Plan::Plan(const Graph& g, const std::vector<Shape>& input_shapes, const SessionOptions& o)
    : graph_(g), opts_(o), opset_(g.opset()) {
  build(input_shapes);
}

int Plan::slot_of(const std::string& value) const {
  auto it = slot_index_.find(value);
  return it == slot_index_.end() ? -1 : it->second;
}

void Plan::build(const std::vector<Shape>& input_shapes) {
  auto add_slot = [&](const std::string& name) {
    auto it = slot_index_.find(name);
    if (it != slot_index_.end()) return it->second;
    slots_.push_back(Slot{});
    slots_.back().name = name;
    slot_index_[name] = (int)slots_.size() - 1;
    return (int)slots_.size() - 1;
  };
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

  for (size_t ni = 0; ni < graph_.nodes.size(); ni++) {
    const Node& n = graph_.nodes[ni];
    const OpDef* op = find_op(n.domain, n.op_type);
    if (!op)
      fail(ErrorCode::unsupported_op, "unsupported operator {}{} (node '{}', opset {})",
           n.domain.empty() ? "" : n.domain + ".", n.op_type, n.name, opset_);
    Step st;
    st.node = (int)ni;
    st.op = op;
    InferCtx ic(n, opset_);
    bool all_const = true, shapes_known = true;
    for (const auto& in : n.inputs) {
      if (in.empty()) {
        st.in.push_back(-1);
        ic.in_types.push_back(DType::undefined);
        ic.in_shapes.emplace_back();
        ic.in_values.push_back(nullptr);
        continue;
      }
      int s = slot_of(in);
      RG_ASSERT(s >= 0);  // sort_and_validate guarantees every input has a source
      st.in.push_back(s);
      ic.in_types.push_back(slots_[s].type);
      ic.in_shapes.push_back(slots_[s].shape);
      ic.in_values.push_back(slots_[s].is_const ? &slots_[s].value : nullptr);
      all_const &= slots_[s].is_const;
      shapes_known &= slots_[s].shape_known;
    }
    for (const auto& o : n.outputs) st.out.push_back(o.empty() ? -1 : add_slot(o));
    if (shapes_known) {
      try {
        op->infer(ic);
      } catch (const NeedsValue&) {
        st.dynamic = true;
      }
    } else {
      st.dynamic = true;
    }
    if (!st.dynamic && ic.out_types.size() < n.outputs.size())
      ic.out_types.resize(n.outputs.size(), DType::undefined), ic.out_shapes.resize(n.outputs.size());

    // Fold at plan time: every input is constant (covers Shape chains, whose Shape input
    // has a concrete shape here and is folded by the Shape op's own rule below).
    bool shape_op = n.op_type == "Shape" || n.op_type == "Size";
    if (!st.dynamic && (all_const || shape_op) && !graph_.is_graph_output(n.outputs[0])) {
      KernelCtx kc(n, opset_);
      std::vector<Tensor> outs;
      for (size_t i = 0; i < ic.out_types.size(); i++) outs.emplace_back(ic.out_types[i], ic.out_shapes[i]);
      for (int s : st.in) kc.in.push_back(s < 0 ? nullptr : &slots_[s].value);
      for (auto& t : outs) kc.out.push_back(&t);
      // Shape/Size read only the input's shape: give them a shape-only placeholder.
      Tensor placeholder;
      if (shape_op && !slots_[st.in[0]].is_const) {
        placeholder = Tensor::wrap(slots_[st.in[0]].type, slots_[st.in[0]].shape, nullptr);
        kc.in[0] = &placeholder;
      }
      op->ref(kc);
      for (size_t i = 0; i < st.out.size(); i++) {
        if (st.out[i] < 0) continue;
        Slot& s = slots_[st.out[i]];
        s.type = outs[i].dtype();
        s.shape = outs[i].shape();
        s.shape_known = s.is_const = true;
        s.value = outs[i];
      }
      continue;
    }

    for (size_t i = 0; i < st.out.size(); i++) {
      if (st.out[i] < 0) continue;
      Slot& s = slots_[st.out[i]];
      s.shape_known = !st.dynamic;
      if (!st.dynamic) {
        s.type = ic.out_types[i];
        s.shape = ic.out_shapes[i];
        s.value = Tensor(s.type, s.shape);
      }
    }
    if (!st.dynamic && opts_.fast_kernels) {
      if (const FastDef* fd = find_fast(n.op_type)) {
        CompileCtx cc(n, opset_);
        cc.in_types = ic.in_types;
        cc.in_shapes = ic.in_shapes;
        cc.in_values = ic.in_values;
        cc.out_types = ic.out_types;
        cc.out_shapes = ic.out_shapes;
        cc.bf16 = opts_.precision == Precision::bf16;
        st.fast = fd->make(cc);
      }
    }
    if (opts_.verbose)
      std::fprintf(stderr, "plan: %s -> %s%s\n", n.label().c_str(),
                   st.fast ? st.fast->impl().c_str() : "ref", st.dynamic ? " (dynamic)" : "");
    st.ctx = std::make_unique<KernelCtx>(n, opset_);
    for (int s : st.in) st.ctx->in.push_back(s < 0 ? nullptr : &slots_[s].value);
    for (int s : st.out) st.ctx->out.push_back(s < 0 ? nullptr : &slots_[s].value);
    steps_.push_back(std::move(st));
  }
  for (const auto& o : graph_.outputs) {
    int s = slot_of(o.name);
    RG_ASSERT(s >= 0);
    output_slots_.push_back(s);
  }
}

void Plan::infer_dynamic(Step& s) {
  const Node& n = graph_.nodes[s.node];
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

void Plan::observe(const std::vector<std::string>& values, Observer fn) {
  for (const auto& v : values) {
    int s = slot_of(v);
    if (s < 0) fail(ErrorCode::invalid_input, "no value named '{}' in the model", v);
    observers_.emplace_back(s, fn);
  }
}

std::vector<Tensor> Plan::run(const std::vector<Tensor>& inputs) {
  RG_ASSERT(inputs.size() == input_slots_.size());
  for (size_t i = 0; i < inputs.size(); i++) slots_[input_slots_[i]].value = inputs[i];
  for (auto& s : steps_) {
    if (s.dynamic) infer_dynamic(s);
    if (s.fast) s.fast->run(*s.ctx);
    else s.op->ref(*s.ctx);
    if (!observers_.empty())
      for (auto& ob : observers_)
        for (int o : s.out)
          if (o == ob.first) ob.second(slots_[o].name, slots_[o].value);
  }
  std::vector<Tensor> outs;
  for (int s : output_slots_) outs.push_back(slots_[s].value.clone());
  for (int s : input_slots_) slots_[s].value = Tensor();  // do not keep the caller's buffers alive
  return outs;
}

}  // namespace rg

#include "kernels/dnnl/dnnl_common.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <mutex>

namespace rg {
size_t layout_bytes(const Layout& l) { return dnnl_memory_desc_get_size(&l); }
bool same_layout(const Layout& a, const Layout& b) {
  if (is_plain(a) || is_plain(b)) return is_plain(a) && is_plain(b);
  return dnnl_memory_desc_equal(&a, &b) != 0;
}
void wait_fast_kernels() { dnnl_util::stream().wait(); }

std::string fast_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

bool fast_bf16_native() {
  auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

std::string fast_library_version() {
  const dnnl_version_t* v = dnnl_version();
  return fmt::format("oneDNN {}.{}.{}", v->major, v->minor, v->patch);
}
}  // namespace rg

namespace rg::dnnl_util {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

dt to_dt(DType t) {
  switch (t) {
    case DType::f32: return dt::f32;
    case DType::bf16: return dt::bf16;
    case DType::f16: return dt::f16;
    case DType::i32: return dt::s32;
    case DType::i8: return dt::s8;
    case DType::u8: return dt::u8;
    default: return dt::undef;
  }
}

memory::dims to_dims(const Shape& s) {
  if (s.empty()) return {1};
  return memory::dims(s.begin(), s.end());
}

memory::desc plain_desc(const Shape& s, dt type) {
  memory::dims d = to_dims(s);
  memory::dims strides(d.size(), 1);
  for (int i = (int)d.size() - 2; i >= 0; i--) strides[i] = strides[i + 1] * std::max<int64_t>(d[i + 1], 1);
  return memory::desc(d, type, strides);
}

memory::desc arrival_desc(const CompileCtx& c, int i) {
  if (i < (int)c.in_layouts.size() && !is_plain(c.in_layouts[i])) return memory::desc(c.in_layouts[i]);
  return plain_desc(c.in_shapes[i], to_dt(c.in_types[i]));
}

bool eltwise_of(const Node& n, float clip_lo, float clip_hi, std::vector<Eltwise>& out) {
  using A = dnnl::algorithm;
  const std::string& t = n.op_type;
  if (!n.domain.empty()) return false;
  if (t == "Relu") out.push_back({A::eltwise_relu, 0, 0});
  else if (t == "LeakyRelu") out.push_back({A::eltwise_relu, n.attr_f("alpha", 0.01f), 0});
  else if (t == "Elu") out.push_back({A::eltwise_elu, n.attr_f("alpha", 1.f), 0});
  else if (t == "Selu") {
    out.push_back({A::eltwise_elu, n.attr_f("alpha", 1.67326319f), 0});
    out.push_back({A::eltwise_linear, n.attr_f("gamma", 1.05070102f), 0});
  } else if (t == "Sigmoid") out.push_back({A::eltwise_logistic, 0, 0});
  else if (t == "Tanh") out.push_back({A::eltwise_tanh, 0, 0});
  else if (t == "HardSwish") out.push_back({A::eltwise_hardswish, 0, 0});
  else if (t == "HardSigmoid") {
    out.push_back({A::eltwise_linear, n.attr_f("alpha", 0.2f), n.attr_f("beta", 0.5f)});
    out.push_back({A::eltwise_clip_v2, 0.f, 1.f});
  } else if (t == "Swish") out.push_back({A::eltwise_swish, n.attr_f("alpha", 1.f), 0});
  else if (t == "Gelu") {
    std::string a = n.attr_s("approximate", "none");
    out.push_back({a == "tanh" ? A::eltwise_gelu_tanh : A::eltwise_gelu_erf, 0, 0});
  } else if (t == "Mish") out.push_back({A::eltwise_mish, 0, 0});
  else if (t == "Abs") out.push_back({A::eltwise_abs, 0, 0});
  else if (t == "Sqrt") out.push_back({A::eltwise_sqrt, 0, 0});
  else if (t == "Exp") out.push_back({A::eltwise_exp, 0, 0});
  else if (t == "Log") out.push_back({A::eltwise_log, 0, 0});
  else if (t == "Neg") out.push_back({A::eltwise_linear, -1.f, 0});
  else if (t == "Clip") out.push_back({A::eltwise_clip_v2, clip_lo, clip_hi});
  else return false;
  return true;
}

bool build_post_ops(const CompileCtx& c, bool sum_ok, int dst_rank, int channel_axis, dnnl::post_ops& po,
                    bool& has_sum, std::unordered_map<int, memory>& args) {
  using A = dnnl::algorithm;
  struct Entry {
    A alg;
    float alpha = 0, beta = 0;
    const Tensor* operand = nullptr;  // binary max/min/mul, or prelu's slopes
    memory::desc md;
    bool prelu = false;
  };
  std::vector<Entry> list;
  has_sum = false;
  // Appends an eltwise step; a clip right after a ReLU or a clip (a protected ReLU or
  // ReLU6) merges into one: fewer post-ops, and kernels taking only one (Winograd) apply.
  auto add_eltwise = [&](A alg, float alpha, float beta) {
    if (alg == A::eltwise_clip_v2 && !list.empty() && !list.back().operand) {
      Entry& prev = list.back();
      bool relu = prev.alg == A::eltwise_relu && prev.alpha == 0.f;
      if (relu || prev.alg == A::eltwise_clip_v2) {
        float lo = std::max(relu ? 0.f : prev.alpha, alpha), hi = std::min(relu ? FLT_MAX : prev.beta, beta);
        if (lo <= hi) {
          prev = {A::eltwise_clip_v2, lo, hi, nullptr, {}};
          return;
        }
      }
    }
    list.push_back({alg, alpha, beta, nullptr, {}});
  };
  for (size_t k = 0; k < c.post_ops.size(); k++) {
    const PostOp& p = c.post_ops[k];
    if (p.operand) {  // a range check's bound (Max/Min), PRelu's slopes, a Mul's scales
      bool prelu = p.node->op_type == "PRelu";
      if (p.operand_axis < 0) {  // scalar: a leaky ReLU, or a one-sided clip
        float v = p.operand->data<float>()[0];
        if (prelu) add_eltwise(A::eltwise_relu, v, 0.f);
        else add_eltwise(A::eltwise_clip_v2, p.lower ? v : -FLT_MAX, p.lower ? FLT_MAX : v);
        continue;
      }
      // Axes compared from the end: a matmul may fold batch dims into fewer.
      int onnx_rank = (int)c.out_shapes[0].size();
      if (dst_rank < 2 || p.operand_axis - onnx_rank != channel_axis - dst_rank) return false;
      memory::dims d(dst_rank, 1);
      d[channel_axis] = p.operand->numel();
      const bool mul = p.node->op_type == "Mul";  // a per-channel scale
      Entry e{prelu ? A::undef : mul ? A::binary_mul : p.lower ? A::binary_max : A::binary_min, 0, 0, p.operand,
              plain_desc(Shape(d.begin(), d.end()), dt::f32)};
      e.prelu = prelu;
      list.push_back(e);
      continue;
    }
    if (p.node->op_type == "Add") {
      // A bias Add is the kernel's to take; a sum must come first: dst = op(src) + residual.
      if (p.bias || !sum_ok || k != 0) return false;
      has_sum = true;
      continue;
    }
    if (p.node->op_type == "Mul" || p.node->op_type == "Div") {
      add_eltwise(A::eltwise_linear, p.scale, 0.f);
      continue;
    }
    std::vector<Eltwise> e;
    if (!eltwise_of(*p.node, p.clip_lo, p.clip_hi, e)) return false;
    for (const auto& x : e) add_eltwise(x.alg, x.alpha, x.beta);
  }
  // oneDNN 2.6's jit kernels give a later eltwise post-op of the same algorithm the first
  // one's alpha and beta (LeakyRelu(0.1) then Relu scaled negatives by 0.01, found by the
  // random-graph test): such a chain is not fused.
  for (size_t i = 0; i < list.size(); i++)
    for (size_t j = i + 1; j < list.size(); j++)
      if (!list[i].operand && !list[j].operand && list[i].alg == list[j].alg &&
          (list[i].alpha != list[j].alpha || list[i].beta != list[j].beta))
        return false;
  if (has_sum) po.append_sum(1.f);
  for (const auto& e : list) {
    if (!e.operand) {
      po.append_eltwise(1.f, e.alg, e.alpha, e.beta);
      continue;
    }
    if (e.prelu) {
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(po.len()) | DNNL_ARG_WEIGHTS] =
          memory(e.md, engine(), const_cast<void*>(e.operand->raw()));
      po.append_prelu(1 << channel_axis);
      continue;
    }
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(po.len()) | DNNL_ARG_SRC_1] =
        memory(e.md, engine(), const_cast<void*>(e.operand->raw()));
    po.append_binary(e.alg, e.md);
  }
  return true;
}

// The channel block of an aBcd16b-like layout (one block of channels innermost, and after
// each block all spatial positions), or 0 for any other layout.
int64_t channel_block(const dnnl_memory_desc_t& d) {
  if (d.format_kind != dnnl_blocked) return 0;
  const auto& bd = d.format_desc.blocking;
  if (bd.inner_nblks != 1 || bd.inner_idxs[0] != 1) return 0;
  for (int k = 0; k + 1 < d.ndims; k++)
    if (bd.strides[k] < bd.strides[k + 1]) return 0;
  return bd.inner_blks[0];
}

bool stores_as_nc(const dnnl_memory_desc_t& d) {
  if (d.format_kind != dnnl_blocked || d.offset0 != 0 || d.padded_dims[1] != d.dims[1]) return false;
  const auto& b = d.format_desc.blocking;
  int64_t blk = 1;
  for (int k = 0; k < b.inner_nblks; k++) {
    if (b.inner_idxs[k] != 1) return false;
    blk *= b.inner_blks[k];
  }
  const int64_t n = d.dims[0], c = d.dims[1];
  return (n == 1 || b.strides[0] == c) && (c <= blk || b.strides[1] == blk);
}

std::string impl_name(const dnnl::primitive_desc_base& pd) {
  const char* s = nullptr;
  dnnl_primitive_desc_query(pd.get(), dnnl_query_impl_info_str, 0, &s);
  return s ? std::string(s) : std::string("?");
}

dnnl::primitive_attr base_attr(bool bf16) {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (bf16) a.set_fpmath_mode(dnnl::fpmath_mode::bf16);
  return a;
}

void reserve_scratch(const CompileCtx& c, const dnnl::primitive_desc_base& pd) {
  if (c.scratch) c.scratch->reserve(pd.scratchpad_desc().get_size());
}

InputPort::InputPort(const memory::desc& arrival, const memory::desc& wanted, Staging* staging) {
  user_ = memory(arrival, engine(), DNNL_MEMORY_NONE);
  if (arrival == wanted) {
    internal_ = user_;
    return;
  }
  if (staging && staging->scratch) {
    // The staging memory is allocated once every kernel has reserved: bind() points at it.
    staging_ = staging->scratch;
    offset_ = staging->used;
    staging->used += aligned_size(wanted.get_size());
    staging_->reserve(staging->used);
    internal_ = memory(wanted, engine(), DNNL_MEMORY_NONE);
  } else {
    buf_ = aligned_buffer(wanted.get_size());
    internal_ = memory(wanted, engine(), buf_.get());
  }
  reorder_ = dnnl::reorder(user_, internal_);
  args_ = {{DNNL_ARG_FROM, user_}, {DNNL_ARG_TO, internal_}};
}

const memory& InputPort::bind(void* data) {
  user_.set_data_handle(data);
  if (reorder_) {
    if (staging_) {
      void* at = static_cast<char*>(staging_->get()) + offset_;
      if (at != bound_) internal_.set_data_handle(bound_ = at);  // shared by args_ and the kernel's copies
    }
    reorder_.execute(stream(), args_);
    return internal_;
  }
  return user_;
}

namespace {
// Weights reordered for one layout are shared by every plan built from the same source
// tensor, so S streams (or the plans of several input shapes) hold one copy of them.
struct SharedWeights {
  const void* src;
  memory::desc src_desc, wanted;
  std::weak_ptr<void> buf;
};
std::mutex g_weights_mu;
std::vector<SharedWeights> g_weights;
}  // namespace

ConstPort::ConstPort(const Tensor* src, const memory::desc& src_desc, const memory::desc& wanted)
    : src_(src), src_desc_(src_desc) {
  std::lock_guard<std::mutex> lock(g_weights_mu);
  for (auto it = g_weights.begin(); it != g_weights.end();) {
    if (it->buf.expired()) {
      it = g_weights.erase(it);
      continue;
    }
    if (it->src == src->raw() && it->src_desc == src_desc && it->wanted == wanted) {
      buf_ = it->buf.lock();
      mem_ = memory(wanted, engine(), buf_.get());
      return;
    }
    ++it;
  }
  buf_ = aligned_buffer(wanted.get_size());
  mem_ = memory(wanted, engine(), buf_.get());
  fill(false);
  g_weights.push_back({src->raw(), src_desc, wanted, buf_});
}

void ConstPort::refresh() { fill(true); }

void ConstPort::fill(bool keep_reorder) {
  memory user(src_desc_, engine(), const_cast<void*>(src_->raw()));
  if (src_desc_ == mem_.get_desc()) {
    std::memcpy(mem_.get_data_handle(), src_->raw(), src_desc_.get_size());
    return;
  }
  // A weight reorder holds its own scratchpad (as large as the weights for Winograd's
  // transform): kept by every kernel, they were a third of resnet18's resident memory.
  // Plans that never refresh drop it after the first fill; fault campaigns keep theirs.
  dnnl::reorder r = reorder_ ? reorder_ : dnnl::reorder(user, mem_);
  r.execute(stream(), user, mem_);
  stream().wait();
  if (keep_reorder) reorder_ = r;
}

void PrimKernel::set_primitive(const CompileCtx& c, const dnnl::primitive& p, const dnnl::primitive_desc_base& pd) {
  prim_ = p;
  impl_ = "dnnl:" + impl_name(pd);
  reserve_scratch(c, pd);
  scratch_ = c.scratch;
  scratch_md_ = pd.scratchpad_desc();
}

memory& PrimKernel::arg(int a, const memory::desc& md) {
  args_[a] = memory(md, engine(), DNNL_MEMORY_NONE);
  return args_[a];
}

void PrimKernel::execute() {
  if (scratch_md_.get_size() > 0 && scratch_->get() != scratch_bound_) {
    scratch_bound_ = scratch_->get();
    args_[DNNL_ARG_SCRATCHPAD] = memory(scratch_md_, engine(), scratch_bound_);
  }
  prim_.execute(stream(), args_);
}

Layout layout_of(const memory::desc& md, const Shape& shape) {
  if (md == plain_desc(shape, dt::f32)) return plain_layout();
  return md.data;
}

}  // namespace rg::dnnl_util

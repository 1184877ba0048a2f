// oneDNN concat of parts in oneDNN layouts (conv outputs in a DenseNet or Inception
// block): the result stays in one, so the block needs no conversions.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/lanes.h"
#include "kernels/ops.h"

namespace rg {
namespace {

using namespace dnnl_util;

// Where a part's layout keeps everything from the concat axis inward in one contiguous
// run per outer index (the dims before the axis), with the axis outermost in that run,
// the concat is one memcpy per part and outer index: nChw8c/16c parts joined along
// channels, as in every DenseNet and Inception block. oneDNN 2.6's "simple" concat moved
// those at 0.7 GB/s on AVX2 (densenet121: 15% of its time), a tenth of memcpy's speed.
// Returns the run's length in elements, or 0 when the layout is not like that. Parts and
// destination must also agree inward of the axis: `same_inside` checks it.
int64_t run_length(const memory::desc& md, int axis) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.format_kind != dnnl_blocked || d.offset0 != 0) return 0;
  const auto& bd = d.format_desc.blocking;
  int64_t numel = 1, outer = 1, axis_block = 1;
  for (int i = 0; i < d.ndims; i++) {
    if (d.padded_dims[i] != d.dims[i] || d.padded_offsets[i] != 0) return 0;
    numel *= d.dims[i];
    if (i < axis) outer *= d.dims[i];
  }
  for (int k = 0; k < bd.inner_nblks; k++) {
    if (bd.inner_idxs[k] < axis) return 0;
    if (bd.inner_idxs[k] == axis) axis_block *= bd.inner_blks[k];
  }
  if (numel == 0 || md.get_size() != (size_t)numel * dnnl_data_type_size(d.data_type)) return 0;
  const int64_t run = numel / outer;
  int64_t expect = run;  // stride of dim i < axis, walking outward
  for (int i = axis - 1; i >= 0; i--) {
    if (d.dims[i] > 1 && bd.strides[i] != expect) return 0;
    expect *= d.dims[i];
  }
  const int64_t axis_outer = d.dims[axis] / axis_block;
  if (axis_outer > 1 && bd.strides[axis] * axis_outer != run) return 0;
  return run;
}

bool same_inside(const memory::desc& a, const memory::desc& b, int axis) {
  const dnnl_memory_desc_t &x = a.data, &y = b.data;
  const auto &bx = x.format_desc.blocking, &by = y.format_desc.blocking;
  if (x.data_type != y.data_type || x.ndims != y.ndims || bx.inner_nblks != by.inner_nblks) return false;
  for (int k = 0; k < bx.inner_nblks; k++)
    if (bx.inner_blks[k] != by.inner_blks[k] || bx.inner_idxs[k] != by.inner_idxs[k]) return false;
  for (int j = axis + 1; j < x.ndims; j++)
    if (x.dims[j] != y.dims[j] || (x.dims[j] > 1 && bx.strides[j] != by.strides[j])) return false;
  return true;
}

// Rows [r0, r1) of `bytes` each into consecutive bytes from dst, row r read at src +
// r * src_step. A channel block's row is 32 or 64 bytes: a fixed-size copy, not a call.
void copy_rows(char* dst, const char* src, size_t bytes, size_t src_step, size_t r0, size_t r1) {
  if (bytes == 64) {
    for (size_t r = r0; r < r1; r++) std::memcpy(dst + r * 64, src + r * src_step, 64);
  } else if (bytes == 32) {
    for (size_t r = r0; r < r1; r++) std::memcpy(dst + r * 32, src + r * src_step, 32);
  } else {
    for (size_t r = r0; r < r1; r++) std::memcpy(dst + r * bytes, src + r * src_step, bytes);
  }
}

// Channels-last (nhwc) storage of a 4D part: dense, channels innermost.
bool channels_last(const memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 4 || d.format_kind != dnnl_blocked || d.offset0 != 0) return false;
  const auto& bd = d.format_desc.blocking;
  const auto& n = d.dims;
  for (int i = 0; i < 4; i++)
    if (d.padded_dims[i] != n[i] || d.padded_offsets[i] != 0) return false;
  return bd.inner_nblks == 0 && bd.strides[1] == 1 && bd.strides[3] == n[1] && bd.strides[2] == n[3] * n[1] &&
         (n[0] == 1 || bd.strides[0] == n[2] * n[3] * n[1]);
}

// y = x * scale + shift (then max(y, 0)) for `rows` rows of n values, x's rows x_step
// values apart and y's y_step apart, normalized in fp32 whatever T holds (float, or bf16
// bits; see lanes.h).
template <class T>
__attribute__((always_inline)) inline void normalize_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t x_step,
                                                          int64_t y_step, const float* sc, const float* sh,
                                                          bool relu) {
  const float floor = relu ? 0.f : -INFINITY;
  for (int64_t r = 0; r < rows; r++, x += x_step, y += y_step) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) narrow(std::max(widen(x[j]) * sc[j] + sh[j], floor), y[j]);
  }
}

// The two instances, cloned per instruction set: the baseline build has only SSE2, where
// the bf16 one ran scalar. Called once per part (or channel block) and range of pixels:
// an ifunc call per pixel cost more than the work.
__attribute__((target_clones("avx512f", "avx2", "default")))
void normalize_f32(const float* x, float* y, int64_t rows, int64_t n, int64_t x_step, int64_t y_step,
                   const float* sc, const float* sh, bool relu) {
  normalize_rows(x, y, rows, n, x_step, y_step, sc, sh, relu);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void normalize_bf16(const uint16_t* x, uint16_t* y, int64_t rows, int64_t n, int64_t x_step, int64_t y_step,
                    const float* sc, const float* sh, bool relu) {
  normalize_rows(x, y, rows, n, x_step, y_step, sc, sh, relu);
}

// normalize_bf16 where the CPU has AVX512-BF16: one instruction rounds 16 floats to bf16
// (nearest even), against about twenty for the portable rounding, which made densenet121's
// bf16 joins compute-bound (5.1 ms of 12.4 on AMX, 1 thread). A row's last partial vector
// is masked. max(floor, v) keeps a NaN, as std::max(v, floor) does.
RG_BF16_NATIVE
void normalize_bf16_native(const uint16_t* x, uint16_t* y, int64_t rows, int64_t n, int64_t x_step, int64_t y_step,
                           const float* sc, const float* sh, bool relu) {
  const __m512 floor = _mm512_set1_ps(relu ? 0.f : -INFINITY);
  for (int64_t r = 0; r < rows; r++, x += x_step, y += y_step) {
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
      __m512 v = _mm512_fmadd_ps(widen16(x + j, m), _mm512_maskz_loadu_ps(m, sc + j), _mm512_maskz_loadu_ps(m, sh + j));
      v = _mm512_maskz_max_ps(0xffff, floor, v);  // (maskz: the plain form trips GCC 12's -Wmaybe-uninitialized)
      narrow16(v, y + j, m);
    }
  }
}

class RunConcat : public Kernel {
 public:
  // `count` rows of `bytes` each, written one after another from dst; a row is read
  // from src + r * src_step (a run has one row; a channels-last part into channel blocks
  // has one per pixel, each a block's worth of channels).
  struct Piece {
    size_t dst, bytes, src;
    int part;
    size_t count = 1, src_step = 0;
    int64_t chan = 0;  // with a fused normalization: the first channel of its block
  };
  // y = x * scale + shift per channel, then max(y, 0) if relu: a BatchNormalization (and
  // Relu) after the join, applied as it copies (none when scale is empty); each piece is
  // then one channel block.
  struct Norm {
    std::vector<float> scale, shift;
    bool relu = false;
  };
  RunConcat(std::vector<int> inputs, std::vector<size_t> part_bytes, std::vector<Piece> pieces, size_t total,
            Layout layout, Norm norm)
      : inputs_(std::move(inputs)), part_bytes_(std::move(part_bytes)), pieces_(std::move(pieces)), total_(total),
        layout_(layout),
        src_(inputs_.size()), norm_(std::move(norm)) {}
  void run(KernelCtx& c) override {
    for (size_t k = 0; k < inputs_.size(); k++) src_[k] = static_cast<const char*>(c.input(inputs_[k]).raw());
    char* dst = static_cast<char*>(c.output(0).raw());
    // Each thread copies an equal share of the destination's bytes, whatever the parts.
#pragma omp parallel if (total_ >= (1 << 16))
    {
      const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
      const size_t lo = total_ * t / nt, hi = total_ * (t + 1) / nt;
      for (const Piece& p : pieces_) {
        if (p.count == 1) {
          size_t a = std::max(lo, p.dst), b = std::min(hi, p.dst + p.bytes);
          const char* from = src_[p.part] + p.src + (a - p.dst);
          if (a < b && from != dst + a) std::memcpy(dst + a, from, b - a);  // (a part in place: nothing to do)
          continue;
        }
        // Rows go to the thread whose share holds their first byte.
        auto row_at = [&](size_t at) {
          return at <= p.dst ? 0 : std::min(p.count, (at - p.dst + p.bytes - 1) / p.bytes);
        };
        size_t r0 = row_at(lo), r1 = row_at(hi);
        if (norm_.scale.empty()) {
          copy_rows(dst + p.dst, src_[p.part] + p.src, p.bytes, p.src_step, r0, r1);
        } else if (r0 < r1) {
          const int64_t n = (int64_t)(p.bytes / sizeof(float));
          normalize_f32(reinterpret_cast<const float*>(src_[p.part] + p.src + r0 * p.src_step),
                        reinterpret_cast<float*>(dst + p.dst + r0 * p.bytes), (int64_t)(r1 - r0), n,
                        (int64_t)(p.src_step / sizeof(float)), n, norm_.scale.data() + p.chan,
                        norm_.shift.data() + p.chan, norm_.relu);
        }
      }
    }
  }
  std::string impl() const override { return norm_.scale.empty() ? "rg:concat_runs" : "rg:concat_runs+norm"; }
  Layout out_layout(int) const override { return layout_; }
  // A part copied whole, as one run (batch 1, or the join's outermost axis), from a
  // buffer no larger than that run: SqueezeNet's and Inception's joins of convolution
  // outputs in whole channel blocks.
  bool input_at_offset(int i, size_t& offset) const override {
    if (!norm_.scale.empty()) return false;
    const Piece* only = nullptr;
    for (const Piece& p : pieces_) {
      if (inputs_[p.part] != i) continue;
      if (only || p.count != 1 || p.src != 0) return false;
      only = &p;
    }
    if (!only || only->bytes != part_bytes_[only->part]) return false;
    offset = only->dst;
    return true;
  }

 private:
  std::vector<int> inputs_;
  std::vector<size_t> part_bytes_;  // each part's buffer, as its layout stores it
  std::vector<Piece> pieces_;
  size_t total_;
  Layout layout_;
  std::vector<const char*> src_;
  Norm norm_;
};

// The memcpy plan for parts `srcs` joined into `dst` along `axis`; null when a layout
// does not allow it.
std::unique_ptr<Kernel> make_run_concat(const std::vector<memory::desc>& srcs, const std::vector<int>& inputs,
                                        const memory::desc& dst, int axis, const Shape& out_shape,
                                        RunConcat::Norm norm = {}) {
  const int64_t dst_run = run_length(dst, axis);
  if (dst_run == 0) return nullptr;
  const size_t es = dnnl_data_type_size(dst.data.data_type);
  int64_t outer = 1;
  for (int i = 0; i < axis; i++) outer *= dst.data.dims[i];
  // A channels-last part joins channel-blocked ones (DenseNet's first part, a pooling's
  // output, beside its convolutions' nChw16c): one row per pixel and channel block. Its
  // channel count must fill whole blocks, so the parts after it stay block-aligned.
  const int64_t block = axis == 1 ? channel_block(dst.data) : 0;
  // (fp32 only: bf16 parts come channels-last, and make_pixel_concat normalizes those.)
  if (!norm.scale.empty() && (block == 0 || dst.data.data_type != dnnl_f32)) return nullptr;
  std::vector<int64_t> runs;
  std::vector<bool> scatter;
  for (const auto& s : srcs) {
    bool cl = block > 0 && channels_last(s) && s.data.data_type == dst.data.data_type &&
              s.data.dims[1] % block == 0 && s.data.dims[2] == dst.data.dims[2] && s.data.dims[3] == dst.data.dims[3];
    int64_t r = cl ? s.data.dims[1] * s.data.dims[2] * s.data.dims[3] : run_length(s, axis);
    if (r == 0 || (!cl && !same_inside(s, dst, axis))) return nullptr;
    runs.push_back(r);
    scatter.push_back(cl);
  }
  std::vector<RunConcat::Piece> pieces;
  for (int64_t o = 0; o < outer; o++) {
    size_t at = (size_t)(o * dst_run) * es;
    for (size_t k = 0; k < srcs.size(); k++) {
      size_t bytes = (size_t)runs[k] * es;
      if (norm.scale.empty() && !scatter[k]) {
        pieces.push_back({at, bytes, (size_t)(o * runs[k]) * es, (int)k});
      } else {  // one piece per channel block: a row of the block's channels per pixel
        const int64_t c = srcs[k].data.dims[1], pixels = runs[k] / c;
        const int64_t chan0 = (int64_t)((at - (size_t)(o * dst_run) * es) / es) / pixels;
        for (int64_t j = 0; j < c / block; j++) {
          size_t src = (size_t)(o * runs[k]) * es + (size_t)(scatter[k] ? j * block : j * pixels * block) * es;
          pieces.push_back({at + (size_t)(j * pixels * block) * es, (size_t)block * es, src, (int)k, (size_t)pixels,
                            (size_t)(scatter[k] ? c : block) * es, chan0 + j * block});
        }
      }
      at += bytes;
    }
  }
  std::vector<size_t> part_bytes;
  for (const auto& s : srcs) part_bytes.push_back(s.get_size());
  return std::make_unique<RunConcat>(inputs, std::move(part_bytes), std::move(pieces), dst.get_size(),
                                     layout_of(dst, out_shape), std::move(norm));
}

// Channels-last parts joined along channels into a channels-last result, pixel by pixel:
// under --precision bf16 oneDNN gives every convolution in a DenseNet block a
// channels-last output, and its own concat of those was 2.3 ms of densenet121's 12.7
// (AMX, 1 thread). A fused normalization (RunConcat::Norm) is applied in fp32 on the way.
class PixelConcat : public Kernel {
 public:
  struct Part {
    int input;
    int64_t channels, offset;
  };
  PixelConcat(std::vector<Part> parts, int64_t pixels, int64_t channels, bool bf16, RunConcat::Norm norm, Layout layout)
      : parts_(std::move(parts)), pixels_(pixels), channels_(channels), bf16_(bf16), norm_(std::move(norm)),
        layout_(layout), src_(parts_.size()) {}
  void run(KernelCtx& c) override {
    for (size_t k = 0; k < parts_.size(); k++) src_[k] = static_cast<const char*>(c.input(parts_[k].input).raw());
    char* dst = static_cast<char*>(c.output(0).raw());
    // A parallel region only when it pays: even an idle one costs ~2 us to enter.
    if (omp_get_max_threads() > 1 && pixels_ * channels_ >= (1 << 15)) {
#pragma omp parallel
      {
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        pixels(dst, pixels_ * t / nt, pixels_ * (t + 1) / nt);
      }
    } else {
      pixels(dst, 0, pixels_);
    }
  }
  std::string impl() const override { return norm_.scale.empty() ? "rg:concat_pixels" : "rg:concat_pixels+norm"; }
  Layout out_layout(int) const override { return layout_; }

 private:
  // Pixels [p0, p1), part by part: each part's rows are read in one sweep.
  void pixels(char* dst, int64_t p0, int64_t p1) const {
    const size_t es = bf16_ ? 2 : 4;
    for (size_t k = 0; k < parts_.size(); k++) {
      const Part& pt = parts_[k];
      const char* x = src_[k] + (size_t)(p0 * pt.channels) * es;
      char* y = dst + (size_t)(p0 * channels_ + pt.offset) * es;
      if (norm_.scale.empty()) {
        for (int64_t p = p0; p < p1; p++, x += pt.channels * es, y += channels_ * es)
          std::memcpy(y, x, (size_t)pt.channels * es);
        continue;
      }
      const float *sc = norm_.scale.data() + pt.offset, *sh = norm_.shift.data() + pt.offset;
      if (bf16_)
        (bf16_native() ? normalize_bf16_native : normalize_bf16)(reinterpret_cast<const uint16_t*>(x),
                                                                 reinterpret_cast<uint16_t*>(y), p1 - p0, pt.channels,
                                                                 pt.channels, channels_, sc, sh, norm_.relu);
      else
        normalize_f32(reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), p1 - p0, pt.channels,
                      pt.channels, channels_, sc, sh, norm_.relu);
    }
  }

  std::vector<Part> parts_;
  int64_t pixels_, channels_;
  bool bf16_;
  RunConcat::Norm norm_;
  Layout layout_;
  std::vector<const char*> src_;
};

// The pixel-by-pixel join when every part is channels-last (4D, channels axis, fp32 or
// bf16); null otherwise.
std::unique_ptr<Kernel> make_pixel_concat(const CompileCtx& c, const std::vector<memory::desc>& srcs,
                                          const std::vector<int>& inputs, int axis, RunConcat::Norm norm) {
  const Shape& out = c.out_shapes[0];
  const auto type = srcs[0].data.data_type;
  if (axis != 1 || out.size() != 4 || (type != dnnl_f32 && type != dnnl_bf16)) return nullptr;
  std::vector<PixelConcat::Part> parts;
  int64_t offset = 0;
  for (size_t k = 0; k < srcs.size(); k++) {
    if (!channels_last(srcs[k]) || srcs[k].data.data_type != type) return nullptr;
    parts.push_back({inputs[k], srcs[k].data.dims[1], offset});
    offset += srcs[k].data.dims[1];
  }
  memory::desc dst(to_dims(out), type == dnnl_bf16 ? dt::bf16 : dt::f32, tag::acdb);
  return std::make_unique<PixelConcat>(std::move(parts), out[0] * out[2] * out[3], out[1], type == dnnl_bf16,
                                       std::move(norm), layout_of(dst, out));
}

class ConcatKernel : public PrimKernel {
 public:
  ConcatKernel(const CompileCtx& c, const std::vector<memory::desc>& srcs, std::vector<int> inputs,
               const dnnl::concat::primitive_desc& pd)
      : inputs_(std::move(inputs)) {
    set_primitive(c, dnnl::concat(pd), pd);
    for (size_t k = 0; k < srcs.size(); k++) srcs_.push_back(arg(DNNL_ARG_MULTIPLE_SRC + (int)k, srcs[k]));
    dst_ = arg(DNNL_ARG_DST, pd.dst_desc());
    layout_ = layout_of(pd.dst_desc(), c.out_shapes[0]);
  }
  void run(KernelCtx& c) override {
    for (size_t k = 0; k < inputs_.size(); k++) srcs_[k].set_data_handle(const_cast<void*>(c.input(inputs_[k]).raw()));
    dst_.set_data_handle(c.output(0).raw());
    execute();
  }

 private:
  std::vector<int> inputs_;
  std::vector<memory> srcs_;
  memory dst_;
};

// Each part reordered into its place in the destination, one oneDNN reorder per part
// writing through a sub-view: where oneDNN's concat has only its reference kernel for the
// mix of layouts. ShuffleNet's joins of a plain half (a Slice) and a channels-last branch
// (a 1x1 convolution's output) into the plain tensor its channel shuffle reads took 0.49
// ms of 7.3 so (AVX-512, 1 thread).
class ReorderConcat : public Kernel {
 public:
  ReorderConcat(std::vector<int> inputs, std::vector<dnnl::reorder> copies, std::vector<memory> from,
                std::vector<memory> to, Layout layout)
      : inputs_(std::move(inputs)), copies_(std::move(copies)), from_(std::move(from)), to_(std::move(to)),
        layout_(layout) {}
  void run(KernelCtx& c) override {
    void* dst = c.output(0).raw();
    for (size_t k = 0; k < inputs_.size(); k++) {
      from_[k].set_data_handle(const_cast<void*>(c.input(inputs_[k]).raw()));
      to_[k].set_data_handle(dst);  // the sub-view's offset is in its desc
      copies_[k].execute(stream(), from_[k], to_[k]);
    }
  }
  std::string impl() const override { return "rg:concat_reorders"; }
  Layout out_layout(int) const override { return layout_; }

 private:
  std::vector<int> inputs_;
  std::vector<dnnl::reorder> copies_;
  std::vector<memory> from_, to_;
  Layout layout_;
};

// The per-part reorders into `dst` along `axis`; null when a part's place is not a sub-view
// of dst (an offset inside a channel block) or a reorder would be oneDNN's reference one.
std::unique_ptr<Kernel> make_reorder_concat(const std::vector<memory::desc>& srcs, const std::vector<int>& inputs,
                                            const memory::desc& dst, int axis, const Shape& out) {
  std::vector<dnnl::reorder> copies;
  std::vector<memory> from, to;
  memory::dims offsets(dst.data.ndims, 0);
  for (const auto& s : srcs) {
    memory::desc place = dst.submemory_desc(s.dims(), offsets);  // throws where not a view
    dnnl::reorder::primitive_desc pd(engine(), s, engine(), place);
    if (impl_name(pd).find("ref") != std::string::npos) return nullptr;
    copies.emplace_back(pd);
    from.push_back(memory(s, engine(), DNNL_MEMORY_NONE));
    to.push_back(memory(place, engine(), DNNL_MEMORY_NONE));
    offsets[axis] += s.dims()[axis];
  }
  return std::make_unique<ReorderConcat>(inputs, std::move(copies), std::move(from), std::move(to),
                                         layout_of(dst, out));
}

// The BatchNormalization (and Relu) the planner fused after the join, as one scale and
// shift per channel; empty when there is none.
RunConcat::Norm fused_norm(const CompileCtx& c) {
  RunConcat::Norm n;
  if (c.post_ops.empty() || !c.post_ops[0].norm[0]) return n;
  const PostOp& bn = c.post_ops[0];
  const double eps = bn.node->attr_f("epsilon", 1e-5f);
  const int64_t channels = bn.norm[0]->numel();
  for (int64_t k = 0; k < channels; k++) {
    double s = bn.norm[0]->data<float>()[k] / std::sqrt((double)bn.norm[3]->data<float>()[k] + eps);
    n.scale.push_back((float)s);
    n.shift.push_back((float)(bn.norm[1]->data<float>()[k] - bn.norm[2]->data<float>()[k] * s));
  }
  n.relu = c.post_ops.size() > 1 && c.post_ops[1].node->op_type == "Relu";
  return n;
}

std::unique_ptr<Kernel> make_concat(const CompileCtx& c) {
  const Shape& out = c.out_shapes[0];
  if (out.empty() || shape_numel(out) == 0 || out.size() > 12) return nullptr;
  int nonempty = 0;
  for (size_t i = 0; i < c.in_types.size(); i++) {
    if (c.in_types[i] != DType::f32) return nullptr;
    nonempty += shape_numel(c.in_shapes[i]) != 0;
  }
  if (nonempty == 0) return nullptr;
  // Plain parts: the reference kernel's one memcpy per part and outer index. oneDNN's
  // took 29 us to join a ViT's class token to its 64 patches (ours: 1 us), and left to
  // pick a destination it may order the size-1 dim differently, so that every consumer
  // then needs a reorder.
  bool plain = true;
  for (const Layout& l : c.in_layouts) plain &= is_plain(l);
  if (plain) return nullptr;
  int64_t axis = c.node.attr_i("axis", 1);
  if (axis < 0) axis += (int64_t)out.size();
  std::vector<memory::desc> srcs;
  std::vector<int> inputs;
  for (size_t i = 0; i < c.in_shapes.size(); i++) {
    if (shape_numel(c.in_shapes[i]) == 0) continue;  // oneDNN rejects empty parts
    srcs.push_back(arrival_desc(c, (int)i));
    inputs.push_back((int)i);
  }
  try {
    // oneDNN picks the destination layout; the copy is ours where that layout allows it.
    // Parts in nChw8c/16c are joined in their own layout: oneDNN 2.6 may pick one with
    // the batch inside the channel blocks for them (AVX-512, batch 2-3), which only its
    // reference concat writes.
    const RunConcat::Norm norm = fused_norm(c);
    // The first blocked part decides: a channels-last one among them is scattered in.
    for (const auto& s : srcs) {
      int64_t block = channel_block(s.data);
      if ((block != 8 && block != 16) || out.size() != 4) continue;
      memory::desc dst(to_dims(out), s.data_type(), block == 8 ? tag::aBcd8b : tag::aBcd16b);
      if (auto k = make_run_concat(srcs, inputs, dst, (int)axis, out, norm)) return k;
      break;
    }
    if (auto k = make_pixel_concat(c, srcs, inputs, (int)axis, norm)) return k;
    if (!c.post_ops.empty()) return nullptr;  // the planner then joins without them
    // Parts of different types (bf16 from a convolution beside a plain fp32 part, as in
    // ShuffleNet under --precision bf16) are beyond oneDNN's concat; reorders convert.
    for (const auto& s : srcs)
      if (s.data_type() != srcs[0].data_type())
        return make_reorder_concat(srcs, inputs, plain_desc(out, dt::f32), (int)axis, out);
    dnnl::concat::primitive_desc pd((int)axis, srcs, engine(), base_attr(false));
    if (auto k = make_run_concat(srcs, inputs, pd.dst_desc(), (int)axis, out)) return k;
    if (impl_name(pd).find("ref") != std::string::npos) {
      try {
        if (auto k = make_reorder_concat(srcs, inputs, pd.dst_desc(), (int)axis, out)) return k;
      } catch (const dnnl::error&) {  // a part's place is not a sub-view: oneDNN's own then
      }
    }
    return std::make_unique<ConcatKernel>(c, srcs, std::move(inputs), pd);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

const FastDef kFast_Concat{"Concat", make_concat};

}  // namespace rg

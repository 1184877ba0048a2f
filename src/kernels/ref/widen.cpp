#include "kernels/ref/widen.h"

namespace rg {

Tensor widen_to_f32(const Tensor& t) {
  RG_ASSERT(is_half(t.dtype()));
  Tensor r(DType::f32, t.shape());
  const uint16_t* x = static_cast<const uint16_t*>(t.raw());
  float* y = r.data<float>();
  int64_t n = t.numel();
  if (t.dtype() == DType::f16)
    for (int64_t i = 0; i < n; i++) y[i] = half_to_float(x[i]);
  else
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_float(x[i]);
  return r;
}

void narrow_from_f32(const Tensor& src, Tensor& dst) {
  RG_ASSERT(is_half(dst.dtype()) && src.numel() == dst.numel());
  const float* x = src.data<float>();
  uint16_t* y = static_cast<uint16_t*>(dst.raw());
  int64_t n = src.numel();
  if (dst.dtype() == DType::f16)
    for (int64_t i = 0; i < n; i++) y[i] = float_to_half(x[i]);
  else
    for (int64_t i = 0; i < n; i++) y[i] = float_to_bf16(x[i]);
}

bool run_widened(KernelCtx& c, RefFn fn) {
  bool any = false;
  for (const Tensor* t : c.in) any |= t && is_half(t->dtype());
  for (const Tensor* t : c.out) any |= t && is_half(t->dtype());
  if (!any) return false;
  KernelCtx w(c.node, c.opset);
  std::vector<Tensor> ins(c.in.size()), outs(c.out.size());
  for (size_t i = 0; i < c.in.size(); i++) {
    const Tensor* t = c.in[i];
    if (t && is_half(t->dtype())) {
      ins[i] = widen_to_f32(*t);
      t = &ins[i];
    }
    w.in.push_back(t);
  }
  for (size_t i = 0; i < c.out.size(); i++) {
    Tensor* t = c.out[i];
    if (t && is_half(t->dtype())) {
      outs[i] = Tensor(DType::f32, t->shape());
      t = &outs[i];
    }
    w.out.push_back(t);
  }
  fn(w);
  for (size_t i = 0; i < c.out.size(); i++)
    if (c.out[i] && is_half(c.out[i]->dtype())) narrow_from_f32(outs[i], *c.out[i]);
  return true;
}

}  // namespace rg

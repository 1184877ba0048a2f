#include "kernels/ref/window.h"

#include <algorithm>

#include "core/error.h"

namespace rg {
namespace {

// Floor division by 2 (C++ '/' truncates toward zero, ONNX's reference floors).
int64_t floor_half(int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }

// A per-spatial-dim attribute: `def` repeated when absent (or given empty), else exactly
// `spatial` values, each >= `min`.
std::vector<int64_t> spatial_attr(const Node& n, const char* name, int spatial, int64_t def, int64_t min) {
  std::vector<int64_t> v = n.attr_ints(name);
  if (v.empty()) return std::vector<int64_t>(spatial, def);
  if ((int)v.size() != spatial)
    fail(ErrorCode::invalid_model, "{}: attribute {} has {} values, expected {} (one per spatial dim)", n.label(),
         name, v.size(), spatial);
  for (int64_t x : v)
    if (x < min) fail(ErrorCode::invalid_model, "{}: attribute {} has value {}, must be >= {}", n.label(), name, x, min);
  return v;
}

enum class AutoPad { notset, same_upper, same_lower, valid };

AutoPad auto_pad_of(const Node& n) {
  std::string s = n.attr_s("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::notset;
  if (s == "SAME_UPPER") return AutoPad::same_upper;
  if (s == "SAME_LOWER") return AutoPad::same_lower;
  if (s == "VALID") return AutoPad::valid;
  fail(ErrorCode::invalid_model, "{}: unknown auto_pad '{}' (NOTSET, SAME_UPPER, SAME_LOWER or VALID)", n.label(), s);
}

}  // namespace

std::vector<int64_t> window_kernel(const Node& n, int spatial, const Shape* weight) {
  if (weight && (int)weight->size() != spatial + 2)
    fail(ErrorCode::invalid_model, "{}: weight has rank {}, expected {} for {} spatial dims", n.label(),
         weight->size(), spatial + 2, spatial);
  if (n.has_attr("kernel_shape")) {
    std::vector<int64_t> k = spatial_attr(n, "kernel_shape", spatial, 1, 1);
    if (weight)
      for (int i = 0; i < spatial; i++)
        if ((*weight)[2 + i] != k[i])
          fail(ErrorCode::invalid_model, "{}: kernel_shape {} does not match the weight shape {}", n.label(),
               shape_str(k), shape_str(*weight));
    return k;
  }
  if (!weight) fail(ErrorCode::invalid_model, "{}: attribute kernel_shape is required", n.label());
  std::vector<int64_t> k(weight->begin() + 2, weight->end());
  for (int64_t x : k)
    if (x < 1) fail(ErrorCode::invalid_model, "{}: weight shape {} has an empty kernel", n.label(), shape_str(*weight));
  return k;
}

WindowParams window_params(const Node& n, const Shape& in, const std::vector<int64_t>& kernel_spatial,
                           bool ceil_mode, bool transposed) {
  if (in.size() < 3)
    fail(ErrorCode::invalid_model, "{}: input has shape {}, expected N, C and at least one spatial dim", n.label(),
         shape_str(in));
  const int sp = (int)in.size() - 2;
  if ((int)kernel_spatial.size() != sp)
    fail(ErrorCode::invalid_model, "{}: kernel has {} dims, input {} has {} spatial dims", n.label(),
         kernel_spatial.size(), shape_str(in), sp);
  WindowParams w;
  w.kernel = kernel_spatial;
  for (int64_t k : w.kernel)
    if (k < 1) fail(ErrorCode::invalid_model, "{}: kernel size {} must be >= 1", n.label(), k);
  w.in.assign(in.begin() + 2, in.end());
  for (int64_t d : w.in)
    if (d < 1) fail(ErrorCode::invalid_input, "{}: input shape {} has an empty spatial dim", n.label(), shape_str(in));
  w.strides = spatial_attr(n, "strides", sp, 1, 1);
  w.dilations = spatial_attr(n, "dilations", sp, 1, 1);
  w.output_padding = transposed ? spatial_attr(n, "output_padding", sp, 0, 0) : std::vector<int64_t>(sp, 0);
  AutoPad ap = auto_pad_of(n);
  // ONNX forbids pads together with auto_pad; exporters sometimes write zeros anyway, so
  // explicit pads are read only for NOTSET.
  std::vector<int64_t> pads(2 * sp, 0);
  if (ap == AutoPad::notset) pads = spatial_attr(n, "pads", 2 * sp, 0, 0);
  w.pads_begin.assign(pads.begin(), pads.begin() + sp);
  w.pads_end.assign(pads.begin() + sp, pads.end());
  w.out.resize(sp);

  if (!transposed) {
    for (int i = 0; i < sp; i++) {
      int64_t ek = w.effective_kernel(i), s = w.strides[i], len = w.in[i];
      if (ap == AutoPad::same_upper || ap == AutoPad::same_lower) {
        int64_t out = (len + s - 1) / s;
        int64_t total = std::max<int64_t>(0, (out - 1) * s + ek - len);
        int64_t small = total / 2;
        w.pads_begin[i] = ap == AutoPad::same_upper ? small : total - small;
        w.pads_end[i] = total - w.pads_begin[i];
        w.out[i] = out;
        continue;
      }
      int64_t padded = len + w.pads_begin[i] + w.pads_end[i];
      if (padded < ek)
        fail(ErrorCode::invalid_input, "{}: kernel extent {} is larger than the padded input ({}) in spatial dim {}",
             n.label(), ek, padded, i);
      int64_t span = padded - ek;
      int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
      // A window starting in the end padding would cover no input: drop it.
      if (ceil_mode && out > 1 && (out - 1) * s >= len + w.pads_begin[i]) out--;
      w.out[i] = out;
    }
    return w;
  }

  std::vector<int64_t> target;
  if (n.has_attr("output_shape")) {
    target = n.attr_ints("output_shape");
    // Some exporters give the full N, C, spatial... shape.
    if ((int)target.size() == sp + 2) target.erase(target.begin(), target.begin() + 2);
    if ((int)target.size() != sp)
      fail(ErrorCode::invalid_model, "{}: output_shape has {} values, expected {}", n.label(),
           n.attr_ints("output_shape").size(), sp);
  } else if (ap == AutoPad::same_upper || ap == AutoPad::same_lower) {
    target.resize(sp);
    for (int i = 0; i < sp; i++) target[i] = w.in[i] * w.strides[i];
  }
  for (int i = 0; i < sp; i++) {
    int64_t natural = w.strides[i] * (w.in[i] - 1) + w.output_padding[i] + w.effective_kernel(i);
    if (!target.empty()) {
      if (target[i] < 1)
        fail(ErrorCode::invalid_model, "{}: output_shape value {} must be >= 1", n.label(), target[i]);
      int64_t total = natural - target[i];
      if (ap == AutoPad::same_upper) {
        w.pads_begin[i] = floor_half(total);
        w.pads_end[i] = total - w.pads_begin[i];
      } else {
        w.pads_end[i] = floor_half(total);
        w.pads_begin[i] = total - w.pads_end[i];
      }
      w.out[i] = target[i];
    } else {
      w.out[i] = natural - w.pads_begin[i] - w.pads_end[i];
      if (w.out[i] < 1)
        fail(ErrorCode::invalid_model, "{}: pads {} leave no output in spatial dim {} (input {})", n.label(),
             shape_str(pads), i, shape_str(in));
    }
  }
  return w;
}

}  // namespace rg

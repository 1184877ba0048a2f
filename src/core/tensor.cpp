#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

namespace rg {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) {
    if (i) r += ", ";
    r += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
  }
  return r + "]";
}

std::vector<int64_t> shape_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (int i = (int)s.size() - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::shared_ptr<void> aligned_buffer(size_t bytes, bool zero) {
  size_t n = aligned_size(bytes);
  if (n == 0) n = 64;
  void* p = std::aligned_alloc(64, n);
  if (!p) fail(ErrorCode::internal, "out of memory allocating {} bytes", bytes);
  if (zero) std::memset(p, 0, n);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor::Tensor(DType dtype, Shape shape, bool zero) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) fail(ErrorCode::internal, "tensor with unknown dimension {}", shape_str(shape_));
  owner_ = aligned_buffer(nbytes(), zero);
  data_ = owner_.get();
}

Tensor Tensor::wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (shape_numel(shape) != numel())
    fail(ErrorCode::internal, "reshape {} -> {}", shape_str(shape_), shape_str(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

void Tensor::check_type(DType want) const {
  if (want != dtype_)
    fail(ErrorCode::internal, "tensor is {}, accessed as {}", dtype_name(dtype_), dtype_name(want));
}

template <typename F>
static void visit_numeric(DType t, const void* p, int64_t n, F&& f) {
  switch (t) {
    case DType::f32: for (int64_t i = 0; i < n; i++) f(i, (double)((const float*)p)[i]); break;
    case DType::f64: for (int64_t i = 0; i < n; i++) f(i, ((const double*)p)[i]); break;
    case DType::f16: for (int64_t i = 0; i < n; i++) f(i, (double)half_to_float(((const uint16_t*)p)[i])); break;
    case DType::bf16: for (int64_t i = 0; i < n; i++) f(i, (double)bf16_to_float(((const uint16_t*)p)[i])); break;
    case DType::i8: for (int64_t i = 0; i < n; i++) f(i, (double)((const int8_t*)p)[i]); break;
    case DType::u8: for (int64_t i = 0; i < n; i++) f(i, (double)((const uint8_t*)p)[i]); break;
    case DType::i16: for (int64_t i = 0; i < n; i++) f(i, (double)((const int16_t*)p)[i]); break;
    case DType::u16: for (int64_t i = 0; i < n; i++) f(i, (double)((const uint16_t*)p)[i]); break;
    case DType::i32: for (int64_t i = 0; i < n; i++) f(i, (double)((const int32_t*)p)[i]); break;
    case DType::u32: for (int64_t i = 0; i < n; i++) f(i, (double)((const uint32_t*)p)[i]); break;
    case DType::i64: for (int64_t i = 0; i < n; i++) f(i, (double)((const int64_t*)p)[i]); break;
    case DType::u64: for (int64_t i = 0; i < n; i++) f(i, (double)((const uint64_t*)p)[i]); break;
    case DType::boolean: for (int64_t i = 0; i < n; i++) f(i, ((const uint8_t*)p)[i] ? 1.0 : 0.0); break;
    case DType::undefined: fail(ErrorCode::internal, "undefined tensor");
  }
}

std::vector<int64_t> Tensor::to_int64s() const {
  std::vector<int64_t> r((size_t)numel());
  switch (dtype_) {
    case DType::i64:
      if (!r.empty()) std::memcpy(r.data(), data_, r.size() * 8);  // an empty tensor may have no data
      break;
    case DType::i32: for (size_t i = 0; i < r.size(); i++) r[i] = ((const int32_t*)data_)[i]; break;
    case DType::u64: for (size_t i = 0; i < r.size(); i++) r[i] = (int64_t)((const uint64_t*)data_)[i]; break;
    default:
      if (!dtype_is_int(dtype_))
        fail(ErrorCode::invalid_model, "expected an integer tensor, got {}", dtype_name(dtype_));
      visit_numeric(dtype_, data_, numel(), [&](int64_t i, double v) { r[i] = (int64_t)v; });
  }
  return r;
}

std::vector<double> Tensor::to_doubles() const {
  std::vector<double> r((size_t)numel());
  visit_numeric(dtype_, data_, numel(), [&](int64_t i, double v) { r[i] = v; });
  return r;
}

}  // namespace rg

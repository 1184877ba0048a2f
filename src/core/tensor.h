#pragma once
// Tensor: a dtype, a shape and a 64-byte aligned buffer shared by reference.
// Copies are shallow (like a shared_ptr); clone() makes a deep copy. A tensor may also wrap
// memory it does not own (a plan's arena, a caller's buffer) so binding inputs costs nothing.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace rg {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[1, 3, 224, 224]"; -1 prints as "?"
// Strides in elements for a contiguous row-major layout.
std::vector<int64_t> shape_strides(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  // Allocates an uninitialised buffer (zeroed when `zero`).
  Tensor(DType dtype, Shape shape, bool zero = false);
  // Wraps memory owned elsewhere; `owner` (may be null) keeps it alive.
  static Tensor wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner = nullptr);

  template <typename T>
  static Tensor from_vector(const Shape& shape, const std::vector<T>& v);
  template <typename T>
  static Tensor scalar(T v) { return from_vector<T>({}, {v}); }

  bool defined() const { return dtype_ != DType::undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return (int)shape_.size(); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + rank() : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return (size_t)numel() * dtype_size(dtype_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() { check_type(dtype_of<T>()); return static_cast<T*>(data_); }
  template <typename T> const T* data() const { check_type(dtype_of<T>()); return static_cast<const T*>(data_); }

  Tensor clone() const;
  // Same buffer, new shape with the same element count.
  Tensor reshaped(const Shape& shape) const;
  // Integer tensor (any int type) -> int64 values; used for shape/axes/indices inputs.
  std::vector<int64_t> to_int64s() const;
  // Any numeric tensor -> float64 values (tests, printing).
  std::vector<double> to_doubles() const;
  bool same_buffer(const Tensor& o) const { return data_ == o.data_; }

 private:
  void check_type(DType want) const;
  DType dtype_ = DType::undefined;
  Shape shape_;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
};

// Aligned raw allocation shared by Tensor and the runtime's arenas.
std::shared_ptr<void> aligned_buffer(size_t bytes, bool zero = false);
// `bytes` rounded up to aligned_buffer's alignment (64: a cache line, one AVX-512
// register), so that regions laid out one after another in such a buffer stay aligned.
inline size_t aligned_size(size_t bytes) { return (bytes + 63) / 64 * 64; }

template <typename T>
Tensor Tensor::from_vector(const Shape& shape, const std::vector<T>& v) {
  Tensor t(dtype_of<T>(), shape);
  if ((int64_t)v.size() != t.numel())
    fail(ErrorCode::internal, "from_vector: {} values for shape {}", v.size(), shape_str(shape));
  T* p = t.data<T>();
  for (size_t i = 0; i < v.size(); i++) p[i] = v[i];
  return t;
}

}  // namespace rg

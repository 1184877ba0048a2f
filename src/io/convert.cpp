#include "io/convert.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace rg {
namespace {

// Reads element i of a `from` buffer as C++ type V (double for float targets, int64 or
// uint64 for integer targets so 64-bit values survive exactly).
template <typename V, typename S>
void cast_loop(const void* src, V* dst, int64_t n) {
  const S* s = static_cast<const S*>(src);
  for (int64_t i = 0; i < n; i++) dst[i] = static_cast<V>(s[i]);
}

template <typename V>
void load_all(DType from, const void* src, V* dst, int64_t n) {
  switch (from) {
    case DType::f32: cast_loop<V, float>(src, dst, n); break;
    case DType::f64: cast_loop<V, double>(src, dst, n); break;
    case DType::f16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; i++) dst[i] = static_cast<V>(half_to_float(s[i]));
      break;
    }
    case DType::bf16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; i++) dst[i] = static_cast<V>(bf16_to_float(s[i]));
      break;
    }
    case DType::i8: cast_loop<V, int8_t>(src, dst, n); break;
    case DType::u8: cast_loop<V, uint8_t>(src, dst, n); break;
    case DType::i16: cast_loop<V, int16_t>(src, dst, n); break;
    case DType::u16: cast_loop<V, uint16_t>(src, dst, n); break;
    case DType::i32: cast_loop<V, int32_t>(src, dst, n); break;
    case DType::u32: cast_loop<V, uint32_t>(src, dst, n); break;
    case DType::i64: cast_loop<V, int64_t>(src, dst, n); break;
    case DType::u64: cast_loop<V, uint64_t>(src, dst, n); break;
    case DType::boolean: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; i++) dst[i] = static_cast<V>(s[i] != 0);
      break;
    }
    case DType::undefined: fail(ErrorCode::internal, "convert_elements: undefined dtype");
  }
}

// Converts through an intermediate V in chunks, so a large read needs no second full buffer.
template <typename V, typename Store>
void via(DType from, const void* src, int64_t n, Store store) {
  constexpr int64_t kChunk = 4096;
  V tmp[kChunk];
  size_t esize = dtype_size(from);
  for (int64_t base = 0; base < n; base += kChunk) {
    int64_t m = std::min(kChunk, n - base);
    load_all<V>(from, static_cast<const char*>(src) + base * esize, tmp, m);
    store(base, tmp, m);
  }
}

template <typename D, typename V>
void store_cast(DType from, const void* src, void* dst, int64_t n) {
  D* d = static_cast<D*>(dst);
  via<V>(from, src, n, [&](int64_t base, const V* v, int64_t m) {
    for (int64_t i = 0; i < m; i++) d[base + i] = static_cast<D>(v[i]);
  });
}

}  // namespace

bool numeric_conversion_ok(DType from, DType to) {
  if (from == DType::undefined || to == DType::undefined) return false;
  if (from == to) return true;
  if (dtype_is_float(to)) return true;
  if (dtype_is_float(from)) return false;
  return true;  // integer/bool -> integer/bool
}

void convert_elements(DType from, const void* src, DType to, void* dst, int64_t n) {
  if (!numeric_conversion_ok(from, to))
    fail(ErrorCode::invalid_input, "cannot convert {} data to {}", dtype_name(from), dtype_name(to));
  if (n <= 0) return;
  if (from == to) {
    std::memcpy(dst, src, (size_t)n * dtype_size(from));
    return;
  }
  switch (to) {
    case DType::f32:
      // The common case (uint8 pixels -> float32 model input) gets a direct loop.
      if (from == DType::u8) return cast_loop<float, uint8_t>(src, static_cast<float*>(dst), n);
      return store_cast<float, double>(from, src, dst, n);
    case DType::f64: return load_all<double>(from, src, static_cast<double*>(dst), n);
    case DType::f16:
    case DType::bf16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      bool half = to == DType::f16;
      via<float>(from, src, n, [&](int64_t base, const float* v, int64_t m) {
        for (int64_t i = 0; i < m; i++) d[base + i] = half ? float_to_half(v[i]) : float_to_bf16(v[i]);
      });
      return;
    }
    case DType::i8: return store_cast<int8_t, int64_t>(from, src, dst, n);
    case DType::u8: return store_cast<uint8_t, int64_t>(from, src, dst, n);
    case DType::i16: return store_cast<int16_t, int64_t>(from, src, dst, n);
    case DType::u16: return store_cast<uint16_t, int64_t>(from, src, dst, n);
    case DType::i32: return store_cast<int32_t, int64_t>(from, src, dst, n);
    case DType::u32: return store_cast<uint32_t, int64_t>(from, src, dst, n);
    case DType::i64: return store_cast<int64_t, int64_t>(from, src, dst, n);
    case DType::u64: return store_cast<uint64_t, uint64_t>(from, src, dst, n);
    case DType::boolean: {
      uint8_t* d = static_cast<uint8_t*>(dst);
      via<int64_t>(from, src, n, [&](int64_t base, const int64_t* v, int64_t m) {
        for (int64_t i = 0; i < m; i++) d[base + i] = v[i] != 0;
      });
      return;
    }
    case DType::undefined: break;
  }
  fail(ErrorCode::internal, "convert_elements: undefined dtype");
}

}  // namespace rg

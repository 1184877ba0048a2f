#pragma once
// Element types. The set mirrors ONNX's TensorProto.DataType for the types we can hold;
// compute is float32 (and bf16 in the fast path), the integer and bool types carry shapes,
// indices and masks.
#include <cstddef>
#include <cstdint>
#include <string>

namespace rg {

enum class DType : uint8_t {
  undefined,
  f32,
  f64,
  f16,
  bf16,
  i8,
  u8,
  i16,
  u16,
  i32,
  u32,
  i64,
  u64,
  boolean,
};

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "int64", ...
bool dtype_is_float(DType t);
bool dtype_is_int(DType t);

// ONNX TensorProto.DataType <-> DType. Unknown codes map to DType::undefined.
DType dtype_from_onnx(int onnx_type);
int dtype_to_onnx(DType t);

// KServe v2 / Open Inference Protocol datatype names ("FP32", "INT64", "BOOL", ...), spoken
// by the server and by the benchmark's HTTP client. dtype_from_v2 returns DType::undefined
// for a name we do not know; dtype_to_v2 returns "UNKNOWN" for a type without one.
DType dtype_from_v2(const std::string& name);
const char* dtype_to_v2(DType t);

// C++ type -> DType.
template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int8_t>() { return DType::i8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int16_t>() { return DType::i16; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::u16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::u32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::u64; }
template <> constexpr DType dtype_of<bool>() { return DType::boolean; }

// Half-precision conversions (round-to-nearest-even), used by Cast and the bf16 path.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

}  // namespace rg

#pragma once
// Element-wise numeric conversion between dtypes, for data sets that store one type
// (uint8 pixels, int64 labels) and feed a model input of another (float32).
#include <cstdint>

#include "core/dtype.h"

namespace rg {

// True when `from` values can be converted to `to` without silently truncating:
// anything numeric converts to a float type, integers and bools to any integer type,
// but floats never to integers (that would drop fractions without telling anyone).
bool numeric_conversion_ok(DType from, DType to);

// Converts n elements from `src` (type `from`) into `dst` (type `to`), the way a C cast
// would; f16/bf16 go through float. Throws invalid_input when !numeric_conversion_ok.
void convert_elements(DType from, const void* src, DType to, void* dst, int64_t n);

}  // namespace rg

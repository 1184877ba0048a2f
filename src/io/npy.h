#pragma once
// NPY (NumPy's .npy format, versions 1-3) read and write. Little-endian, C order;
// anything else is rejected with a clear rg::Error rather than misread.
#include <string>

#include "core/tensor.h"

namespace rg {

Tensor read_npy(const std::string& path);
// Parses an in-memory NPY image (the fuzz target and the server use this).
Tensor parse_npy(const void* data, size_t size, const std::string& what = "npy data");
void write_npy(const std::string& path, const Tensor& t);
std::string npy_bytes(const Tensor& t);

}  // namespace rg

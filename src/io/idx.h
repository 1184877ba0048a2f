#pragma once
// IDX files: the format of MNIST and Fashion-MNIST ("train-images-idx3-ubyte").
//
// Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
// 0x0D float32, 0x0E float64), the number of dims, each dim as a big-endian uint32, then
// the elements in C order, big-endian. Files are commonly distributed gzip-compressed;
// gzip data (detected by its magic bytes, whatever the file name) is inflated with zlib.
//
// Everything in the header is checked against the data actually present: a truncated,
// over- or under-long, or garbage file is an rg::Error (code io) naming the file, never
// a crash or a huge allocation.
#include <string>

#include "core/tensor.h"

namespace rg {

Tensor read_idx(const std::string& path);
// Parses an in-memory IDX image, plain or gzip-compressed (tests and fuzzing use this).
Tensor parse_idx(const void* data, size_t size, const std::string& what = "idx data");
// True when the bytes start like an IDX file (00 00 type ndims) or gzip data (1f 8b).
bool looks_like_idx(const void* data, size_t size);

}  // namespace rg

// libFuzzer target: the NPY reader. Must return a tensor or throw rg::Error.
#include <cstddef>
#include <cstdint>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rg::Tensor t = rg::parse_npy(data, size, "fuzz");
    // Round-trip what was accepted: writing must not fail on anything we read.
    std::string again = rg::npy_bytes(t);
    rg::Tensor u = rg::parse_npy(again.data(), again.size(), "fuzz");
    if (u.nbytes() != t.nbytes()) __builtin_trap();
  } catch (const rg::Error&) {
  }
  return 0;
}

// libFuzzer target: the ONNX model loader and the planner on whatever it accepts.
// Any input must end in a model or an rg::Error; a crash, hang or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "ir/onnx_io.h"
#include "runtime/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rg::Graph g = rg::parse_onnx(data, size, "", "fuzz");
    // Planning exercises shape inference and constant folding on hostile attributes.
    rg::SessionOptions o;
    o.threads = 1;
    // Legal models can ask for gigabytes (a Conv padded by 2^24); libFuzzer counts one
    // allocation above its malloc limit as a crash, so plans stop at 1 GiB with an Error.
    o.max_activation_bytes = size_t(1) << 30;
    rg::Session s(g, o);
    if (g.inputs.size() <= 4) {
      std::vector<rg::Shape> shapes = s.default_input_shapes(1);
      int64_t total = 0;
      for (const auto& sh : shapes) total += rg::shape_numel(sh);
      if (total < (1 << 16)) s.plan(shapes);
    }
  } catch (const rg::Error&) {
  }
  return 0;
}

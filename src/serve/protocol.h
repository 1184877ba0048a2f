#pragma once
// KServe v2 / Open Inference Protocol messages (the REST form Triton, OpenVINO Model
// Server, TorchServe and KServe share): decoding an infer request into tensors and
// encoding the outputs back, in JSON or with the binary tensor data extension.
//
// Binary extension (Triton's): when the request carries `Inference-Header-Content-Length: N`,
// the first N body bytes are the JSON header and the rest are the raw tensors, in input
// order, for each input whose parameters give `binary_data_size`. Outputs go back raw when
// asked for (per output `"parameters": {"binary_data": true}` or request-wide
// `"binary_data_output": true`), after a JSON header whose length the response names in
// the same header field.
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace rg::serve {

// An error answered with an HTTP status and `{"error": message}`.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& msg) : std::runtime_error(msg), status(status) {}
  int status;
};

// The v2 datatype names ("FP32" <-> DType) live in core/dtype.h: the benchmark's HTTP
// client speaks them too.
using rg::dtype_from_v2;
using rg::dtype_to_v2;

struct RequestedOutput {
  std::string name;
  bool binary = false;
};

struct InferRequest {
  std::optional<std::string> id;       // echoed in the response
  std::vector<Tensor> inputs;          // in the model's input order, types and ranks checked
  std::vector<RequestedOutput> outputs;  // empty: every model output, as JSON (or binary_default)
  bool binary_default = false;         // request-wide "binary_data_output"
};

// Parses and validates a request against the model's declared inputs and outputs
// (names, types, ranks and fixed dims). A FP16 tensor feeding a float32 input is
// widened; any other type mismatch is refused. `header_length` is the value of
// Inference-Header-Content-Length (nullopt: the whole body is JSON).
// Throws HttpError(400) with a one-line reason for anything malformed.
InferRequest decode_request(const std::string& body, std::optional<size_t> header_length, const Graph& model);

struct EncodedResponse {
  std::string body;
  std::optional<size_t> header_length;  // set when binary outputs follow the JSON header
};

// `outputs` are in the model's output order.
EncodedResponse encode_response(const InferRequest& req, const std::string& model_name,
                                const std::vector<Tensor>& outputs, const Graph& model);

// GET /v2/models/{name}: name, versions, platform and the declared inputs and outputs.
std::string model_metadata(const std::string& model_name, const Graph& model);

}  // namespace rg::serve

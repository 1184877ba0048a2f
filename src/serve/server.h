#pragma once
// `rangeguard serve`: one model behind the KServe v2 REST endpoints (see protocol.h),
// cpp-httplib for HTTP, the dynamic batcher for execution, Prometheus text at /metrics.
//
//   GET  /v2                           server metadata
//   GET  /v2/health/live, /ready       liveness, readiness (503 while draining)
//   GET  /v2/models/{name}[/versions/1]          model metadata
//   GET  /v2/models/{name}[/versions/1]/ready    model readiness
//   POST /v2/models/{name}[/versions/1]/infer    inference
//   GET  /metrics                      Prometheus text format
//
// Every error is `{"error": "..."}`: 400 bad request, 404 unknown model or route,
// 413 body over the limit, 503 queue full or request timed out, 500 a failure of ours.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/options.h"
#include "serve/batcher.h"

namespace rg::serve {

struct ServeOptions {
  std::string model_path;
  std::string name;                  // model name in URLs; "" = the file name without .onnx
  std::string host = "127.0.0.1";    // loopback unless asked otherwise
  int port = 8000;                   // 0 = any free port (printed at start)
  BatcherOptions batcher;
  int64_t request_timeout_ms = 10000;       // from the body received to the answer; 0 = none
  size_t max_body_bytes = 64u << 20;        // larger bodies get 413 before being read
  int http_threads = 32;                    // connections served at once (one thread each)
  SessionOptions session;
  void validate() const;
};

// The model's name in the URLs when --name is not given: the file name without ".onnx".
// `rangeguard bench --url` defaults to the same name.
std::string default_model_name(const std::string& model_path);

// Loads the model, compiles the instances' plans, listens, prints one line with the URL
// on stdout, and serves until SIGTERM or SIGINT; then stops accepting connections,
// finishes the requests in flight and returns 0. Throws rg::Error when the model cannot
// be loaded or the address cannot be bound.
int run_server(const ServeOptions& o);

}  // namespace rg::serve

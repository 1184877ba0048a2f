#pragma once
// A model behind a KServe v2 / Open Inference Protocol REST server (`rangeguard serve`,
// Triton, ...) as the system under test: `rangeguard bench MODEL --url http://HOST:PORT`.
// The load generator is the same as in process, so the same scenario, rate and seed give
// the same arrivals, and HTTP and in-process latency compare like for like.
//
// Each worker owns one keep-alive connection (cpp-httplib) and sends one request at a
// time on it, so the workers are the client's concurrency. Request bodies are built once
// up front with the binary tensor data extension (JSON header, then raw tensor bytes)
// and ask for binary outputs, so neither side formats or parses numbers as text.
//
// Timing: the clock starts just before the request is sent (server scenario: at the
// scheduled arrival, as always) and stops once the whole response body has arrived and
// its status was checked. Outputs are not decoded.
//
// Failure is loud: a connection that cannot be made, a read that times out, or any
// status but 200 ends the benchmark with one rg::Error naming the status and the
// server's {"error": ...} message. Once one worker has failed, the others stop at
// their next query instead of finishing the schedule.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bench/loadgen.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace httplib {
class Client;
}

namespace rg {

struct HttpSutOptions {
  std::string url;         // http://HOST:PORT, optionally followed by a path prefix
  std::string model_name;  // the {name} in /v2/models/{name}/infer
  int connections = 1;     // workers, one keep-alive connection each
  // Connecting is quick on a working network and a refused port fails at once; a
  // request may queue behind others at a loaded server (rangeguard serve answers 503
  // after --request-timeout-ms, 10 s by default), so reads wait longer.
  double connect_timeout_s = 5;
  double io_timeout_s = 60;
};

// Where the clock starts and stops with --url (for reports).
std::string http_timing_start_point();
std::string http_timing_stop_point();

class HttpSut : public Sut {
 public:
  // `model` gives the input names and dtypes; `batches` are complete input sets (one
  // tensor per model input, in order), each sent as one request; queries rotate through
  // them. Builds the request bodies and opens no connection yet.
  HttpSut(const Graph& model, const std::vector<std::vector<Tensor>>& batches, const HttpSutOptions& o);
  ~HttpSut() override;

  // GET /v2/models/{name}: the server must serve that model with the same input names
  // and datatypes, and shapes that accept ours; then one inference request must succeed.
  // Throws a one-line rg::Error otherwise.
  void check_server(const Graph& model);

  int workers() const override { return (int)clients_.size(); }
  // Sends ceil(samples / batch) requests, one after the other, on this worker's connection.
  void run_query(int worker, int64_t query, int64_t samples) override;

  int64_t batch() const { return batch_; }  // samples per request
  const std::string& infer_path() const { return infer_path_; }

 private:
  std::unique_ptr<httplib::Client> connect() const;
  // Posts body b on c: "" when answered 200, else the one-line reason.
  std::string infer(httplib::Client& c, size_t b) const;
  void post_one(int worker, int64_t index);

  HttpSutOptions o_;
  std::string origin_, base_path_, infer_path_;  // http://host:port, its path prefix, the infer path
  int64_t batch_ = 1;
  std::vector<Shape> shapes_;
  std::vector<std::string> bodies_;        // one per prepared batch: JSON header + tensors
  std::vector<std::string> header_bytes_;  // Inference-Header-Content-Length of each body
  std::vector<std::unique_ptr<httplib::Client>> clients_;
  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::string first_error_;  // what the first failed request said
};

}  // namespace rg

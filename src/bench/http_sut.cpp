#include "bench/http_sut.h"

#include <signal.h>

#include <tuple>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/common.h"
#include "core/error.h"

namespace rg {
namespace {

using json = nlohmann::json;

// "http://host:port/prefix" -> {"http://host:port", "/prefix"} (prefix without a trailing '/').
std::pair<std::string, std::string> split_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    fail(ErrorCode::invalid_input, "--url must look like http://HOST:PORT, got '{}'", url);
  size_t slash = url.find('/', scheme.size());
  std::string origin = url.substr(0, slash);
  if (origin.size() == scheme.size()) fail(ErrorCode::invalid_input, "--url has no host: '{}'", url);
  std::string prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {origin, prefix};
}

// cpp-httplib's error names ("Connection", "Read") say little on their own.
std::string transport_error(httplib::Error e, const HttpSutOptions& o) {
  switch (e) {
    case httplib::Error::Connection: return "cannot connect (is the server running, and is that its port?)";
    case httplib::Error::ConnectionTimeout: return fmt::format("no connection within {} s", o.connect_timeout_s);
    case httplib::Error::Read: return fmt::format("no complete answer within {} s, or the connection was closed", o.io_timeout_s);
    case httplib::Error::Write: return "the connection was closed while sending the request";
    default: return "HTTP client error: " + httplib::to_string(e);
  }
}

// The one line a failed request becomes: the server's own {"error": ...} when it sent one.
std::string status_error(const std::string& what, const httplib::Response& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string msg = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                                  : r.body.substr(0, 200);
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return fmt::format("{}: HTTP {}{}{}", what, r.status, msg.empty() ? "" : ": ", msg);
}

// The JSON header of a binary-extension request: every input's name, shape, datatype and
// byte count (the bytes follow in input order); outputs come back binary too.
std::string request_header(const Graph& g, const std::vector<Tensor>& inputs) {
  json ins = json::array();
  for (size_t i = 0; i < inputs.size(); i++)
    ins.push_back({{"name", g.inputs[i].name},
                   {"shape", inputs[i].shape()},
                   {"datatype", dtype_to_v2(inputs[i].dtype())},
                   {"parameters", {{"binary_data_size", inputs[i].nbytes()}}}});
  return json{{"inputs", ins}, {"parameters", {{"binary_data_output", true}}}}.dump();
}

// Does a declared shape (-1 = dynamic) accept this one?
bool accepts(const json& declared, const Shape& s) {
  if (!declared.is_array() || declared.size() != s.size()) return false;
  for (size_t d = 0; d < s.size(); d++)
    if (!declared[d].is_number_integer() || (declared[d].get<int64_t>() >= 0 && declared[d].get<int64_t>() != s[d]))
      return false;
  return true;
}

}  // namespace

std::string http_timing_start_point() {
  return "before sending the prebuilt request (server scenario: the scheduled arrival)";
}

std::string http_timing_stop_point() { return "whole response body received, status checked (outputs not decoded)"; }

HttpSut::HttpSut(const Graph& model, const std::vector<std::vector<Tensor>>& batches, const HttpSutOptions& o) : o_(o) {
  if (o.connections < 1) fail(ErrorCode::invalid_input, "--streams (client connections) must be at least 1, got {}", o.connections);
  if (o.model_name.empty()) fail(ErrorCode::invalid_input, "--model-name must not be empty");
  RG_ASSERT(!batches.empty());
  std::tie(origin_, base_path_) = split_url(o.url);
  infer_path_ = base_path_ + "/v2/models/" + o.model_name + "/infer";
  for (const Tensor& t : batches[0]) shapes_.push_back(t.shape());
  batch_ = shapes_batch(shapes_);
  for (const auto& inputs : batches) {
    RG_ASSERT(inputs.size() == model.inputs.size());
    std::string body = request_header(model, inputs);
    header_bytes_.push_back(std::to_string(body.size()));
    for (const Tensor& t : inputs) body.append(static_cast<const char*>(t.raw()), t.nbytes());
    bodies_.push_back(std::move(body));
  }
  // A server that closes a connection while we write to it must give an error, not kill
  // the process (cpp-httplib sends without MSG_NOSIGNAL).
  signal(SIGPIPE, SIG_IGN);
  for (int k = 0; k < o.connections; k++) clients_.push_back(connect());
}

HttpSut::~HttpSut() = default;

std::unique_ptr<httplib::Client> HttpSut::connect() const {
  auto c = std::make_unique<httplib::Client>(origin_);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // the request's last segment must not wait for an ACK
  auto us = [](double s) { return std::chrono::microseconds((int64_t)(s * 1e6)); };
  c->set_connection_timeout(us(o_.connect_timeout_s));
  c->set_read_timeout(us(o_.io_timeout_s));
  c->set_write_timeout(us(o_.io_timeout_s));
  return c;
}

void HttpSut::check_server(const Graph& model) {
  std::string path = base_path_ + "/v2/models/" + o_.model_name;
  std::string what = "GET " + origin_ + path;
  auto c = connect();
  httplib::Result r = c->Get(path.c_str());
  if (!r) fail(ErrorCode::io, "{}: {}", what, transport_error(r.error(), o_));
  if (r->status != 200) fail(ErrorCode::io, "{}", status_error(what, *r));
  json meta = json::parse(r->body, nullptr, false);
  if (!meta.is_object() || !meta.contains("inputs") || !meta["inputs"].is_array())
    fail(ErrorCode::io, "{}: the answer is not KServe v2 model metadata (no 'inputs' list)", what);
  const json& served = meta["inputs"];
  if (served.size() != model.inputs.size())
    fail(ErrorCode::invalid_input, "model '{}' on the server has {} input(s), the model file {}", o_.model_name,
         served.size(), model.inputs.size());
  for (size_t i = 0; i < model.inputs.size(); i++) {
    const ValueInfo& vi = model.inputs[i];
    const json* s = nullptr;
    for (const json& x : served)
      if (x.is_object() && x.value("name", "") == vi.name) s = &x;
    if (!s) fail(ErrorCode::invalid_input, "model '{}' on the server has no input '{}' (the model file has)", o_.model_name, vi.name);
    std::string dt = s->value("datatype", "");
    if (dt != dtype_to_v2(vi.dtype))
      fail(ErrorCode::invalid_input, "input '{}': the server's model takes {}, the model file {}", vi.name, dt,
           dtype_to_v2(vi.dtype));
    if (s->contains("shape") && !accepts((*s)["shape"], shapes_[i]))
      fail(ErrorCode::invalid_input, "input '{}': the server's model takes shape {}, not the {} we would send", vi.name,
           (*s)["shape"].dump(), shape_str(shapes_[i]));
  }
  // One request before anything is measured or printed, so a server that refuses ours
  // (body limit, a shape it does not take) says so in one clean line.
  std::string err = infer(*c, 0);
  if (!err.empty()) fail(ErrorCode::io, "{}", err);
}

std::string HttpSut::infer(httplib::Client& c, size_t b) const {
  const std::string& body = bodies_[b];
  httplib::Headers h = {{"Inference-Header-Content-Length", header_bytes_[b]}};
  httplib::Result r = c.Post(infer_path_.c_str(), h, body.data(), body.size(), "application/octet-stream");
  if (!r) return fmt::format("POST {}{}: {}", origin_, infer_path_, transport_error(r.error(), o_));
  if (r->status != 200) return status_error("POST " + origin_ + infer_path_, *r);
  return "";
}

void HttpSut::post_one(int w, int64_t index) {
  // After one worker's failure the others stop at their next request, each with the same
  // message: the pool rethrows worker 0's error first, which must not hide the real one.
  auto stop = [&](const std::string& msg) {
    std::lock_guard<std::mutex> l(error_mu_);
    if (!failed_.exchange(true)) first_error_ = msg;
    throw Error(ErrorCode::io, first_error_);
  };
  if (failed_.load(std::memory_order_relaxed)) stop("");
  std::string err = infer(*clients_[(size_t)w], (size_t)(index % (int64_t)bodies_.size()));
  if (!err.empty()) stop(err);
}

void HttpSut::run_query(int w, int64_t query, int64_t samples) {
  int64_t requests = (samples + batch_ - 1) / batch_;
  for (int64_t e = 0; e < requests; e++) post_one(w, query * requests + e);
}

}  // namespace rg

#include "serve/server.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "serve/protocol.h"

namespace rg::serve {
namespace {

using json = nlohmann::json;

std::string error_body(const std::string& msg) { return json{{"error", msg}}.dump(-1, ' ', false, json::error_handler_t::replace); }

void answer_error(httplib::Response& res, int status, const std::string& msg) {
  res.status = status;
  res.set_content(error_body(msg), "application/json");
}

std::optional<size_t> header_length(const httplib::Request& req) {
  if (!req.has_header("Inference-Header-Content-Length")) return std::nullopt;
  std::string v = req.get_header_value("Inference-Header-Content-Length");
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
    throw HttpError(400, "Inference-Header-Content-Length must be a byte count");
  return (size_t)std::stoull(v);
}

bool loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

}  // namespace

std::string default_model_name(const std::string& path) {
  std::string n = path.substr(path.find_last_of('/') + 1);
  if (n.size() > 5 && n.compare(n.size() - 5, 5, ".onnx") == 0) n.resize(n.size() - 5);
  return n;
}

void ServeOptions::validate() const {
  batcher.validate();
  if (port < 0 || port > 65535) fail(ErrorCode::invalid_input, "--port must be in 0..65535, got {}", port);
  if (request_timeout_ms < 0) fail(ErrorCode::invalid_input, "--request-timeout-ms must be >= 0");
  if (max_body_bytes < 1) fail(ErrorCode::invalid_input, "--max-body-bytes must be at least 1");
  if (http_threads < 1) fail(ErrorCode::invalid_input, "--http-threads must be at least 1");
}

int run_server(const ServeOptions& o) {
  o.validate();
  // Block the stop signals before any thread exists: every thread inherits the mask and
  // one waiter thread takes them with sigwait, where stopping the server is safe (a
  // signal handler could not). A client hanging up mid-write must not kill us either.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  SessionOptions so = o.session;
  so.threads = 0;  // each instance sets its own
  Session session = Session::load(o.model_path, so);
  const Graph& graph = session.graph();
  const std::string name = o.name.empty() ? default_model_name(o.model_path) : o.name;
  Metrics metrics;
  Batcher batcher(session, o.batcher, metrics);
  batcher.warm_up();
  std::atomic<bool> draining{false};

  httplib::Server http;
  const int pool = o.http_threads;
  http.new_task_queue = [pool] { return new httplib::ThreadPool((size_t)pool); };
  http.set_payload_max_length(o.max_body_bytes);
  http.set_tcp_nodelay(true);  // small responses must not wait for Nagle
  http.set_keep_alive_max_count(10000);
  http.set_keep_alive_timeout(2);  // also bounds how long an idle connection delays shutdown
  // httplib's default adds SO_REUSEPORT, which lets a second server bind the same port
  // and silently take half the traffic; an occupied port must be an error instead.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  auto model_or_404 = [&](const httplib::Request& req) {
    std::string m = req.matches[1];
    if (m != name) throw HttpError(404, fmt::format("unknown model '{}'; this server serves '{}'", m, name));
    if (req.matches.size() > 2 && req.matches[2].matched && req.matches[2] != "1")
      throw HttpError(404, fmt::format("unknown version '{}' of model '{}'; it has version 1", req.matches[2].str(), name));
  };
  // Runs a handler, turning every exception into a JSON error (nothing reaches httplib).
  auto guarded = [](auto fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const HttpError& e) {
        answer_error(res, e.status, e.what());
      } catch (const Error& e) {
        answer_error(res, e.code() == ErrorCode::internal ? 500 : 400, e.what());
      } catch (const std::bad_alloc&) {
        answer_error(res, 500, "out of memory");
      } catch (const std::exception& e) {
        answer_error(res, 500, std::string("internal error: ") + e.what());
      }
    };
  };

  http.Get("/v2", guarded([&](const httplib::Request&, httplib::Response& res) {
    json j = {{"name", "rangeguard"}, {"version", "0.1.0"}, {"extensions", {"binary_tensor_data"}}};
    res.set_content(j.dump(), "application/json");
  }));
  http.Get("/v2/health/live", guarded([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"live":true})", "application/json");
  }));
  http.Get("/v2/health/ready", guarded([&](const httplib::Request&, httplib::Response& res) {
    if (draining) throw HttpError(503, "shutting down");
    res.set_content(R"({"ready":true})", "application/json");
  }));
  const std::string model_re = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
  http.Get(model_re, guarded([&](const httplib::Request& req, httplib::Response& res) {
    model_or_404(req);
    res.set_content(model_metadata(name, graph), "application/json");
  }));
  http.Get(model_re + "/ready", guarded([&](const httplib::Request& req, httplib::Response& res) {
    model_or_404(req);
    if (draining) throw HttpError(503, "shutting down");
    res.set_content(json{{"name", name}, {"ready", true}}.dump(), "application/json");
  }));
  http.Get("/metrics", guarded([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.text(), "text/plain; version=0.0.4");
  }));

  http.Post(model_re + "/infer", [&](const httplib::Request& req, httplib::Response& res) {
    auto t0 = Clock::now();
    guarded([&](const httplib::Request& req, httplib::Response& res) {
      model_or_404(req);
      InferRequest r = decode_request(req.body, header_length(req), graph);
      auto job = std::make_shared<Job>();
      job->inputs = r.inputs;
      job->id = r.id.value_or("");
      job->stackable = true;
      for (const Tensor& t : job->inputs) {
        if (t.numel() == 0) throw HttpError(400, "empty input tensors are not served");
        job->stackable = job->stackable && t.rank() >= 1 && t.dim(0) == job->inputs[0].dim(0);
      }
      job->samples = job->stackable ? job->inputs[0].dim(0) : 1;
      if (!batcher.submit(job))
        throw HttpError(503, fmt::format("the queue is full ({} requests waiting); retry later", o.batcher.max_queue));
      {
        std::unique_lock<std::mutex> l(job->mu);
        auto ready = [&] { return job->done; };
        if (o.request_timeout_ms > 0) job->cv.wait_until(l, t0 + std::chrono::milliseconds(o.request_timeout_ms), ready);
        else job->cv.wait(l, ready);
      }
      if (!job->done) {  // a job already running finishes unseen; a queued one is dropped
        batcher.cancel(job);
        throw HttpError(503, fmt::format("timed out after {} ms", o.request_timeout_ms));
      }
      if (!job->error.empty()) throw HttpError(job->error_status, "inference failed: " + job->error);
      EncodedResponse er = encode_response(r, name, job->outputs, graph);
      if (er.header_length) {
        res.set_header("Inference-Header-Content-Length", std::to_string(*er.header_length));
        res.set_content(er.body, "application/octet-stream");
      } else {
        res.set_content(er.body, "application/json");
      }
    })(req, res);
    metrics.count_request(res.status == -1 ? 200 : res.status);
    metrics.observe_total(std::chrono::duration<double>(Clock::now() - t0).count());
  });

  // httplib's own answers (unknown route, 413 for a body over the limit, a malformed
  // request line) get the same JSON error body as ours.
  http.set_error_handler(httplib::Server::HandlerWithResponse([&](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = res.status == 413 ? fmt::format("request body over the {} byte limit (--max-body-bytes)", o.max_body_bytes)
                    : res.status == 404 ? fmt::format("no such endpoint: {} {}", req.method, req.path)
                                        : fmt::format("request refused by the HTTP layer (status {})", res.status);
    if (res.status == 413 && req.path.size() > 6 && req.path.compare(req.path.size() - 6, 6, "/infer") == 0)
      metrics.count_request(413);
    answer_error(res, res.status, msg);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    answer_error(res, 500, "internal error");
  });

  int port = o.port;
  if (port == 0) port = http.bind_to_any_port(o.host);
  else if (!http.bind_to_port(o.host, port)) port = -1;
  if (port <= 0) fail(ErrorCode::io, "cannot listen on {}:{} (address in use or not local?)", o.host, o.port);
  if (!loopback(o.host))
    std::fprintf(stderr, "rangeguard serve: warning: listening on non-loopback address %s without authentication\n",
                 o.host.c_str());

  // Request bodies and input tensors (0.6 MB for one ImageNet image) are allocated and
  // freed on every request by up to --http-threads threads. glibc keeps such freed blocks
  // in its per-thread arenas, so RSS crept up for minutes (resnet18 at 25 req/s: +110 MB
  // in 2.5 min, still rising). Returning free pages once a second holds it flat at no
  // measurable cost per request; a fixed mmap threshold did too, but the page faults on
  // every request made them 10 ms slower.
  std::mutex trim_mu;
  std::condition_variable trim_cv;
  bool trim_stop = false;
  std::thread trimmer([&] {
    std::unique_lock<std::mutex> l(trim_mu);
    while (!trim_cv.wait_for(l, std::chrono::seconds(1), [&] { return trim_stop; })) malloc_trim(0);
  });

  std::atomic<bool> listening_done{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (listening_done) return;
    draining = true;
    std::fprintf(stderr, "rangeguard serve: %s received, finishing requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    // stop() is a no-op until listen has started; repeat until it has taken effect.
    while (!listening_done) {
      http.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::cout << fmt::format("rangeguard serve: model '{}' ({}) on http://{}:{}/v2/models/{} | {} instance(s) x {} thread(s), "
                           "max batch {}{}, queue {}\n",
                           name, o.model_path, o.host, port, name, o.batcher.instances, batcher.threads_per_instance(),
                           o.batcher.max_batch, batcher.batchable() ? "" : " (model has no dynamic batch dim: off)",
                           o.batcher.max_queue)
            << std::flush;
  http.listen_after_bind();  // returns once stopped and every connection's thread has finished
  listening_done = true;
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if no signal came
  waiter.join();
  batcher.drain_and_stop();
  {
    std::lock_guard<std::mutex> l(trim_mu);
    trim_stop = true;
  }
  trim_cv.notify_all();
  trimmer.join();
  std::fprintf(stderr, "rangeguard serve: stopped\n");
  return 0;
}

}  // namespace rg::serve

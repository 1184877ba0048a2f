// rangeguard serve MODEL [--name N] [--host 127.0.0.1] [--port 8000] [--max-batch B]
//                        [--max-queue-delay-us U] [--instances S] ...
#include "cli/commands.h"
#include "serve/server.h"

namespace rg::cli {

void add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve a model over HTTP with the KServe v2 protocol");
  cmd->footer(
      "Endpoints: GET /v2, /v2/health/{live,ready}, /v2/models/NAME[/ready], /metrics;\n"
      "POST /v2/models/NAME/infer (JSON tensors or the binary tensor data extension).\n"
      "SIGTERM or Ctrl-C stops accepting connections and finishes the requests in flight.\n"
      "Examples:\n"
      "  rangeguard serve models/lenet_relu.onnx --port 8000\n"
      "  rangeguard serve resnet18.onnx --max-batch 8 --max-queue-delay-us 2000 --instances 2\n"
      "  curl localhost:8000/v2/models/lenet_relu");
  auto o = std::make_shared<serve::ServeOptions>();
  auto precision = std::make_shared<std::string>("fp32");
  cmd->add_option("MODEL", o->model_path, "ONNX model file")->required();
  cmd->add_option("--name", o->name, "Model name in the URLs (default: the file name without .onnx)");
  cmd->add_option("--host", o->host, "Address to listen on (loopback by default)")->capture_default_str();
  cmd->add_option("--port", o->port, "TCP port (0 = any free port, printed at start)")->capture_default_str();
  cmd->add_option("--max-batch", o->batcher.max_batch, "Most samples the batcher runs at once (1 = no batching)")->capture_default_str();
  cmd->add_option("--max-queue-delay-us", o->batcher.max_queue_delay_us,
                  "Longest a request waits for others to batch with (0 = only those already queued)")->capture_default_str();
  cmd->add_option("--max-queue", o->batcher.max_queue, "Requests waiting beyond this get 503")->capture_default_str();
  cmd->add_option("--instances", o->batcher.instances, "Concurrent executors sharing the weights")->capture_default_str();
  cmd->add_option("--threads", o->batcher.threads, "Intra-op threads per instance (0 = cores / instances)")->capture_default_str();
  cmd->add_option("--request-timeout-ms", o->request_timeout_ms, "Answer 503 when a request takes longer (0 = never)")->capture_default_str();
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "Larger request bodies get 413")->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads, "Connections served at once")->capture_default_str();
  cmd->add_option("--precision", *precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->callback([o, precision] {
    o->session.precision = *precision == "bf16" ? Precision::bf16 : Precision::fp32;
    o->session.autotune_layout = true;  // one plan serves many requests: worth the timing
    serve::run_server(*o);
  });
}

}  // namespace rg::cli

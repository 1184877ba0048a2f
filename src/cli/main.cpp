// rangeguard: the command-line entry point. Every rg::Error becomes one line on stderr
// and a non-zero exit; nothing a user types or feeds in may crash the process.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"rangeguard: fast, measured, range-supervised ONNX inference on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rangeguard 0.1.0");
  rg::cli::add_info(app);
  rg::cli::add_run(app);
  rg::cli::add_accuracy(app);
  rg::cli::add_bench(app);
  rg::cli::add_calibrate(app);
  rg::cli::add_protect(app);
  rg::cli::add_inject(app);
  rg::cli::add_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print as CLI11 does; usage errors get the one-line form.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "rangeguard: error: %s\n", e.what());
    return e.get_exit_code();
  } catch (const rg::Error& e) {
    std::fprintf(stderr, "rangeguard: error: %s\n", e.what());
    return e.code() == rg::ErrorCode::internal ? 3 : 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "rangeguard: error: out of memory\n");
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rangeguard: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}

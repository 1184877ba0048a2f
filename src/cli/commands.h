#pragma once
// Each subcommand registers its options and a callback on the shared CLI11 app.
// Commands only parse and print; the work happens in the library layers.
#include <CLI/CLI.hpp>

namespace rg::cli {

void add_info(CLI::App& app);
void add_run(CLI::App& app);
void add_accuracy(CLI::App& app);
void add_bench(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_protect(CLI::App& app);
void add_inject(CLI::App& app);
void add_serve(CLI::App& app);

}  // namespace rg::cli

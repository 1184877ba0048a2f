#pragma once
// Whole-file read/write with rg::Error (code io) on failure.
#include <string>

namespace rg {

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);
bool file_exists(const std::string& path);
// "dir/model.onnx" -> "dir" ("." when there is no directory part).
std::string dir_of(const std::string& path);
// SHA-256 of `bytes` as lowercase hex (model identity in bounds files and reports).
std::string sha256_hex(const std::string& bytes);
// Replaces characters outside [A-Za-z0-9_.-] with '_' (output file names).
std::string safe_file_name(const std::string& name);

}  // namespace rg

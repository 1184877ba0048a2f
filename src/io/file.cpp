#include "io/file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "core/error.h"

namespace rg {

std::string read_file(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    fail(ErrorCode::io, "cannot open '{}': {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(ErrorCode::io, "'{}' is a directory, not a file", path);
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(ErrorCode::io, "cannot open '{}': {}", path, std::strerror(errno));
  std::string s;
  s.resize((size_t)st.st_size);
  if (st.st_size && !f.read(&s[0], st.st_size)) fail(ErrorCode::io, "cannot read '{}'", path);
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail(ErrorCode::io, "cannot write '{}': {}", path, std::strerror(errno));
  f.write(bytes.data(), (std::streamsize)bytes.size());
  if (!f) fail(ErrorCode::io, "cannot write '{}'", path);
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  std::string hex;
  for (unsigned char c : md) hex += fmt::format("{:02x}", c);
  return hex;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string dir_of(const std::string& path) {
  size_t s = path.rfind('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return path.substr(0, s);
}

std::string safe_file_name(const std::string& name) {
  std::string r = name;
  for (char& c : r) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) c = '_';
  }
  if (r.empty() || r == "." || r == "..") r = "_" + r;
  return r;
}

}  // namespace rg

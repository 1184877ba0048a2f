#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "io/file.h"

namespace rg {
namespace {

struct Descr {
  const char* code;
  DType dtype;
};
// Byte order '<' (little), '|' (not applicable) or '=' (native, little on our targets).
const Descr kDescrs[] = {
    {"f4", DType::f32}, {"f8", DType::f64}, {"f2", DType::f16}, {"i1", DType::i8},
    {"u1", DType::u8},  {"i2", DType::i16}, {"u2", DType::u16}, {"i4", DType::i32},
    {"u4", DType::u32}, {"i8", DType::i64}, {"u8", DType::u64}, {"b1", DType::boolean},
};

// Finds the value text after 'key': in a Python dict literal.
std::string dict_value(const std::string& h, const std::string& key, const std::string& what) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) fail(ErrorCode::io, "{}: NPY header has no '{}'", what, key);
  size_t c = h.find(':', k);
  if (c == std::string::npos) fail(ErrorCode::io, "{}: malformed NPY header", what);
  size_t s = h.find_first_not_of(' ', c + 1);
  if (s == std::string::npos) fail(ErrorCode::io, "{}: malformed NPY header", what);
  size_t e;
  if (h[s] == '\'') {
    e = h.find('\'', s + 1);
    if (e == std::string::npos) fail(ErrorCode::io, "{}: malformed NPY header", what);
    return h.substr(s + 1, e - s - 1);
  }
  if (h[s] == '(') {
    e = h.find(')', s);
    if (e == std::string::npos) fail(ErrorCode::io, "{}: malformed NPY header", what);
    return h.substr(s, e - s + 1);
  }
  e = h.find_first_of(",}", s);
  if (e == std::string::npos) fail(ErrorCode::io, "{}: malformed NPY header", what);
  return h.substr(s, e - s);
}

Shape parse_shape(const std::string& tuple, const std::string& what) {
  Shape shape;
  std::string inner = tuple.substr(1, tuple.size() - 2);
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) i++;
    if (i >= inner.size()) break;
    size_t j = i;
    while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') j++;
    if (j == i || j - i > 15) fail(ErrorCode::io, "{}: bad NPY shape {}", what, tuple);
    shape.push_back(std::stoll(inner.substr(i, j - i)));
    i = j;
    while (i < inner.size() && inner[i] == 'L') i++;  // Python 2 longs
    if (i < inner.size() && inner[i] != ',' && inner[i] != ' ')
      fail(ErrorCode::io, "{}: bad NPY shape {}", what, tuple);
  }
  return shape;
}

}  // namespace

Tensor parse_npy(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0)
    fail(ErrorCode::io, "{}: not an NPY file (bad magic)", what);
  int major = p[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = p[8] | (p[9] << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail(ErrorCode::io, "{}: truncated NPY header", what);
    hlen = (size_t)p[8] | ((size_t)p[9] << 8) | ((size_t)p[10] << 16) | ((size_t)p[11] << 24);
    hstart = 12;
  } else {
    fail(ErrorCode::io, "{}: unsupported NPY version {}", what, major);
  }
  if (hlen > size - hstart) fail(ErrorCode::io, "{}: truncated NPY header", what);
  std::string h(reinterpret_cast<const char*>(p + hstart), hlen);

  std::string descr = dict_value(h, "descr", what);
  std::string fortran = dict_value(h, "fortran_order", what);
  std::string tuple = dict_value(h, "shape", what);
  if (tuple.empty() || tuple.front() != '(') fail(ErrorCode::io, "{}: bad NPY shape", what);
  if (fortran.rfind("True", 0) == 0)
    fail(ErrorCode::io, "{}: Fortran-order NPY arrays are not supported (save with np.ascontiguousarray)", what);
  if (descr.size() < 3) fail(ErrorCode::io, "{}: unsupported NPY dtype '{}'", what, descr);
  char order = descr[0];
  std::string code = descr.substr(1);
  DType dt = DType::undefined;
  for (const auto& d : kDescrs)
    if (code == d.code) dt = d.dtype;
  if (dt == DType::undefined) fail(ErrorCode::io, "{}: unsupported NPY dtype '{}'", what, descr);
  if (order == '>' && dtype_size(dt) > 1)
    fail(ErrorCode::io, "{}: big-endian NPY data is not supported", what);
  if (order != '<' && order != '|' && order != '=' && order != '>')
    fail(ErrorCode::io, "{}: unsupported NPY dtype '{}'", what, descr);

  Shape shape = parse_shape(tuple, what);
  // Guard against overflow before multiplying out a hostile shape.
  size_t avail = size - hstart - hlen;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > (int64_t)(avail / dtype_size(dt)) / d + 1)
      fail(ErrorCode::io, "{}: NPY data truncated (shape {} needs more than {} bytes)", what,
           shape_str(shape), avail);
    n *= d;
  }
  size_t need = (size_t)n * dtype_size(dt);
  if (need > avail)
    fail(ErrorCode::io, "{}: NPY data truncated ({} bytes, shape {} needs {})", what, avail,
         shape_str(shape), need);
  Tensor t(dt, shape);
  if (need) std::memcpy(t.raw(), p + hstart + hlen, need);
  return t;
}

Tensor read_npy(const std::string& path) {
  std::string bytes = read_file(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

std::string npy_bytes(const Tensor& t) {
  const char* code = nullptr;
  for (const auto& d : kDescrs)
    if (d.dtype == t.dtype()) code = d.code;
  if (!code) fail(ErrorCode::io, "cannot write a {} tensor as NPY", dtype_name(t.dtype()));
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); i++) {
    shape += std::to_string(t.shape()[i]);
    shape += (t.shape().size() == 1 || i + 1 < t.shape().size()) ? "," : "";
    if (i + 1 < t.shape().size()) shape += " ";
  }
  shape += ")";
  char order = dtype_size(t.dtype()) == 1 ? '|' : '<';
  std::string h = fmt::format("{{'descr': '{}{}', 'fortran_order': False, 'shape': {}, }}", order,
                              code, shape);
  // Pad so that magic(6)+version(2)+len(2)+header is a multiple of 64, ending in '\n'.
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += (char)(h.size() & 0xff);
  out += (char)((h.size() >> 8) & 0xff);
  out += h;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_file(path, npy_bytes(t)); }

}  // namespace rg

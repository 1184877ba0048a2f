#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "io/file.h"

namespace rg {
namespace {

// Deflate cannot expand data by more than ~1032:1, so a gzip file whose IDX header
// declares more than this many bytes per compressed byte is lying (or truncated);
// refusing it up front keeps a tiny hostile file from requesting gigabytes.
constexpr size_t kMaxDeflateRatio = 1032;
constexpr int kMaxDims = 16;

bool is_gzip(const unsigned char* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

// Sequential bytes from a plain buffer or from a gzip stream.
class ByteSource {
 public:
  ByteSource(const unsigned char* p, size_t n, const std::string& what) : p_(p), n_(n), what_(what) {
    gz_ = is_gzip(p, n);
    if (!gz_) return;
    std::memset(&zs_, 0, sizeof zs_);
    // 15 + 16: a gzip wrapper (not zlib or raw deflate); zlib then verifies the CRC.
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) fail(ErrorCode::io, "{}: cannot initialise zlib", what_);
    zs_.next_in = const_cast<unsigned char*>(p);
    zs_.avail_in = (uInt)std::min<size_t>(n, UINT32_MAX);
    in_left_ = n - zs_.avail_in;
  }
  ~ByteSource() {
    if (gz_) inflateEnd(&zs_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzip() const { return gz_; }
  size_t input_size() const { return n_; }
  // Plain files only: bytes not yet read.
  size_t remaining() const { return n_ - pos_; }

  // Reads up to n bytes into dst; fewer only when the data ends.
  size_t read(void* dst, size_t n) {
    if (!gz_) {
      size_t k = std::min(n, n_ - pos_);
      std::memcpy(dst, p_ + pos_, k);
      pos_ += k;
      return k;
    }
    size_t got = 0;
    auto* out = static_cast<unsigned char*>(dst);
    while (got < n && !ended_) {
      zs_.next_out = out + got;
      zs_.avail_out = (uInt)std::min<size_t>(n - got, UINT32_MAX);
      uInt before = zs_.avail_out;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      got += before - zs_.avail_out;
      if (zs_.avail_in == 0 && in_left_ > 0) {  // inputs past 4 GiB come in pieces
        zs_.avail_in = (uInt)std::min<size_t>(in_left_, UINT32_MAX);
        in_left_ -= zs_.avail_in;
      }
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc == Z_BUF_ERROR && zs_.avail_in == 0) {
        fail(ErrorCode::io, "{}: gzip data is truncated", what_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        fail(ErrorCode::io, "{}: corrupt gzip data ({})", what_, zs_.msg ? zs_.msg : "inflate failed");
      }
    }
    return got;
  }

  // True when nothing follows. For gzip this drives the stream to its end, which is
  // where zlib checks the CRC and length trailer.
  bool at_end() {
    if (!gz_) return pos_ == n_;
    unsigned char probe;
    return read(&probe, 1) == 0;
  }

 private:
  const unsigned char* p_;
  size_t n_, pos_ = 0, in_left_ = 0;
  std::string what_;
  bool gz_ = false, ended_ = false;
  z_stream zs_;
};

struct IdxType {
  unsigned char code;
  DType dtype;
};
const IdxType kTypes[] = {{0x08, DType::u8}, {0x09, DType::i8},  {0x0B, DType::i16},
                          {0x0C, DType::i32}, {0x0D, DType::f32}, {0x0E, DType::f64}};

void byteswap_in_place(void* data, size_t count, size_t esize) {
  auto* p = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < count; i++, p += esize) std::reverse(p, p + esize);
}

}  // namespace

bool looks_like_idx(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  return is_gzip(p, size) || (size >= 4 && p[0] == 0 && p[1] == 0);
}

Tensor parse_idx(const void* data, size_t size, const std::string& what) {
  ByteSource src(static_cast<const unsigned char*>(data), size, what);
  unsigned char magic[4];
  if (src.read(magic, 4) < 4) fail(ErrorCode::io, "{}: too short for an IDX file", what);
  if (magic[0] != 0 || magic[1] != 0)
    fail(ErrorCode::io, "{}: not an IDX file (bad magic {:02x} {:02x}{})", what, magic[0], magic[1],
         src.gzip() ? " after gunzip" : "");
  DType dt = DType::undefined;
  for (const auto& t : kTypes)
    if (t.code == magic[2]) dt = t.dtype;
  if (dt == DType::undefined) fail(ErrorCode::io, "{}: unknown IDX element type 0x{:02x}", what, magic[2]);
  int ndims = magic[3];
  if (ndims < 1 || ndims > kMaxDims)
    fail(ErrorCode::io, "{}: IDX file declares {} dims (1 to {} supported)", what, ndims, kMaxDims);

  unsigned char dims[4 * kMaxDims];
  if (src.read(dims, 4 * (size_t)ndims) < 4 * (size_t)ndims) fail(ErrorCode::io, "{}: truncated IDX header", what);
  Shape shape;
  // The largest payload this input could really hold; checked per dim so the product
  // never overflows.
  size_t esize = dtype_size(dt);
  size_t limit = src.gzip() ? (size > SIZE_MAX / kMaxDeflateRatio ? SIZE_MAX : size * kMaxDeflateRatio)
                            : src.remaining();
  size_t count = 1;
  bool too_big = false;
  for (int i = 0; i < ndims; i++) {
    const unsigned char* d = dims + 4 * i;
    uint32_t v = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3];
    shape.push_back(v);
    if (v != 0 && count > limit / esize / v) too_big = true;
    if (!too_big) count *= v;
  }
  // An empty data set is valid, however large its other dims (found without multiplying
  // them out: a hostile header's product overflows).
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    count = 0;
    too_big = false;
  }
  if (too_big || count * esize > limit)
    fail(ErrorCode::io, "{}: IDX data truncated: shape {} of {} needs more bytes than the file {}", what,
         shape_str(shape), dtype_name(dt), src.gzip() ? "can decompress to" : fmt::format("holds ({})", limit));
  size_t need = count * esize;
  if (!src.gzip() && need != src.remaining())
    fail(ErrorCode::io, "{}: IDX file has {} data bytes but its header (shape {}, {}) declares {}", what,
         src.remaining(), shape_str(shape), dtype_name(dt), need);

  Tensor t;
  try {
    t = Tensor(dt, shape);
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::io, "{}: cannot allocate {} bytes for IDX shape {}", what, need, shape_str(shape));
  }
  size_t got = src.read(t.raw(), need);
  if (got < need)
    fail(ErrorCode::io, "{}: IDX data truncated ({} of {} bytes for shape {})", what, got, need, shape_str(shape));
  if (!src.at_end()) fail(ErrorCode::io, "{}: more data than the IDX header (shape {}) declares", what, shape_str(shape));
  if (esize > 1) byteswap_in_place(t.raw(), count, esize);  // IDX is big-endian
  return t;
}

Tensor read_idx(const std::string& path) {
  std::string bytes = read_file(path);
  return parse_idx(bytes.data(), bytes.size(), path);
}

}  // namespace rg

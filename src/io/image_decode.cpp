// PNG and JPEG decoding with Debian's libpng and libjpeg-turbo.
#include <png.h>
#include <csetjmp>
#include <cstdio>
#include <cstring>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "io/file.h"
#include "io/image.h"

namespace rg {
namespace {

bool is_png(const unsigned char* p, size_t n) { return n >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0; }
bool is_jpeg(const unsigned char* p, size_t n) { return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF; }

void check_pixels(int64_t w, int64_t h, const std::string& what) {
  if (w <= 0 || h <= 0) fail(ErrorCode::io, "{}: image has no pixels ({}x{})", what, w, h);
  if (w * h > kMaxImagePixels)
    fail(ErrorCode::io, "{}: image is {}x{}, more than the {} pixels supported", what, w, h, kMaxImagePixels);
}

// libpng's simplified API reports errors through its return value and message, so no
// setjmp is needed here.
Image decode_png(const unsigned char* data, size_t size, const std::string& what, bool header_only) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, size))
    fail(ErrorCode::io, "{}: corrupt PNG ({})", what, img.message);
  Image out;
  out.width = img.width;
  out.height = img.height;
  if (header_only) {
    png_image_free(&img);
    return out;
  }
  try {
    check_pixels(out.width, out.height, what);
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  // Decode RGBA and drop alpha, as PIL's convert("RGB") (torchvision's loader) does,
  // rather than compositing onto a background.
  img.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, rgba.data(), 0, nullptr))  // frees img either way
    fail(ErrorCode::io, "{}: corrupt PNG ({})", what, img.message);
  size_t n = (size_t)(out.width * out.height);
  out.rgb.resize(n * 3);
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++) out.rgb[i * 3 + c] = rgba[i * 4 + c];
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;  // first, so libjpeg's err pointer is also a JpegError*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings stay off stderr (one line per error is the CLI's contract); a premature end
// of data is remembered, because libjpeg would otherwise quietly fill the rest with grey.
void jpeg_on_message(j_common_ptr c, int level) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  if (level < 0) {
    if (c->err->msg_code == JWRN_JPEG_EOF) e->truncated = true;
    c->err->num_warnings++;
  }
}
void jpeg_silent(j_common_ptr) {}

// Only C objects live in this frame, so a longjmp out of libjpeg skips no destructors.
// `out` was allocated by the caller; returns false with e->message set on failure.
bool decode_jpeg_c(const unsigned char* data, size_t size, bool header_only, int64_t max_pixels,
                   Image* out, JpegError* e) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&e->mgr);
  e->mgr.error_exit = jpeg_on_error;
  e->mgr.emit_message = jpeg_on_message;
  e->mgr.output_message = jpeg_silent;
  e->truncated = false;
  e->message[0] = 0;
  if (setjmp(e->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)size);
  jpeg_read_header(&cinfo, TRUE);
  out->width = cinfo.image_width;
  out->height = cinfo.image_height;
  if (header_only || out->width <= 0 || out->height <= 0 || out->width * out->height > max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    return true;  // the caller checks the size
  }
  cinfo.out_color_space = JCS_RGB;  // greyscale and YCbCr both come out as RGB
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    std::snprintf(e->message, sizeof e->message, "unexpected %d output components", cinfo.output_components);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  out->rgb.resize((size_t)out->width * out->height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->rgb.data() + (size_t)cinfo.output_scanline * out->width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  // Only pixel data that ran out counts; a file merely missing its end marker after the
  // last scanline decodes completely (PIL accepts those too).
  bool pixels_missing = e->truncated;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (pixels_missing) {
    std::snprintf(e->message, sizeof e->message, "data ends before the image does (truncated file)");
    return false;
  }
  return true;
}

Image decode_jpeg(const unsigned char* data, size_t size, const std::string& what, bool header_only) {
  Image out;
  JpegError e;
  if (!decode_jpeg_c(data, size, header_only, kMaxImagePixels, &out, &e))
    fail(ErrorCode::io, "{}: corrupt JPEG ({})", what, e.message);
  if (!header_only) check_pixels(out.width, out.height, what);
  return out;
}

Image decode(const void* data, size_t size, const std::string& what, bool header_only) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (is_png(p, size)) return decode_png(p, size, what, header_only);
  if (is_jpeg(p, size)) return decode_jpeg(p, size, what, header_only);
  fail(ErrorCode::io, "{}: not a PNG or JPEG image", what);
}

}  // namespace

Image decode_image(const void* data, size_t size, const std::string& what) { return decode(data, size, what, false); }

Image decode_image_file(const std::string& path) {
  std::string bytes = read_file(path);
  return decode(bytes.data(), bytes.size(), path, false);
}

std::pair<int64_t, int64_t> image_file_size(const std::string& path) {
  std::string bytes = read_file(path);
  Image im = decode(bytes.data(), bytes.size(), path, true);
  check_pixels(im.width, im.height, path);
  return {im.width, im.height};
}

}  // namespace rg

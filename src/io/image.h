#pragma once
// Image decoding (PNG via libpng, JPEG via libjpeg-turbo) and the image-folder data set.
// The format is recognised by the file's magic bytes, not its name.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/dataset.h"

namespace rg {

// 8-bit RGB pixels, rows top to bottom, HWC (alpha dropped, grey expanded to RGB).
struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decoders refuse images above this many pixels (a hostile header could otherwise ask
// for gigabytes before a single pixel is read).
constexpr int64_t kMaxImagePixels = int64_t(1) << 27;

// Decodes a whole image; rg::Error (io) naming `what` for anything corrupt or unsupported.
Image decode_image(const void* data, size_t size, const std::string& what);
Image decode_image_file(const std::string& path);
// Width and height from the header only (no pixel data decoded).
std::pair<int64_t, int64_t> image_file_size(const std::string& path);

// A folder of class folders: sub-folders sorted by name give labels 0, 1, ...; files
// ending .png/.jpg/.jpeg (any case) inside them, sorted by name, are the samples.
// Images are decoded lazily in read(), so a large folder costs only its file list.
// Samples are float32 per `opt` ([C,H,W], or [H,W,C] with opt.nhwc); the first image
// fixes the sample size, and read() names any image that ends up a different size.
std::unique_ptr<Dataset> open_image_folder(const std::string& root, const ImageOptions& opt);

}  // namespace rg

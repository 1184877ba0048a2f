// The image-folder data set: class folders of PNG/JPEG files, decoded lazily and
// preprocessed the way torchvision's Resize / CenterCrop / Normalize do it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "io/convert.h"
#include "io/image.h"

namespace rg {
namespace fs = std::filesystem;
namespace {

bool is_image_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Sorted names of the entries in `dir` (hidden ones skipped) that satisfy `keep`.
template <typename Keep>
std::vector<std::string> sorted_entries(const fs::path& dir, Keep keep) {
  std::error_code ec;
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec), end;
  if (ec) fail(ErrorCode::io, "cannot list '{}': {}", dir.string(), ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail(ErrorCode::io, "cannot list '{}': {}", dir.string(), ec.message());
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && keep(*it)) names.push_back(name);
  }
  if (ec) fail(ErrorCode::io, "cannot list '{}': {}", dir.string(), ec.message());
  std::sort(names.begin(), names.end());  // byte order, like Python's sorted()
  return names;
}

// Separable resampling with a triangle filter widened by the downscale factor: PIL's
// BILINEAR resize (torchvision's default for PIL images), which antialiases when
// shrinking and is plain half-pixel-centred bilinear when enlarging. It is PIL's
// arithmetic to the bit (8-bit image after each pass, 22-bit fixed-point weights, round
// half up), so samples equal what torchvision's Resize feeds a model.
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Taps {
  int64_t first;
  std::vector<int32_t> w;  // fixed point, 1.0 = 1 << kPrecisionBits
};

std::vector<Taps> resample_taps(int64_t in, int64_t out) {
  double scale = (double)in / out, fscale = std::max(scale, 1.0), support = fscale;
  std::vector<Taps> taps((size_t)out);
  for (int64_t o = 0; o < out; o++) {
    double center = (o + 0.5) * scale;
    int64_t lo = std::max<int64_t>((int64_t)(center - support + 0.5), 0);
    int64_t hi = std::min<int64_t>((int64_t)(center + support + 0.5), in);
    std::vector<double> w;
    double total = 0;
    for (int64_t i = lo; i < hi; i++) {
      double x = std::abs((i - center + 0.5) / fscale);
      w.push_back(x < 1 ? 1 - x : 0);
      total += w.back();
    }
    Taps& t = taps[(size_t)o];
    t.first = lo;
    for (double v : w) {
      double k = (total != 0 ? v / total : v) * (1 << kPrecisionBits);
      t.w.push_back((int32_t)(k < 0 ? k - 0.5 : k + 0.5));
    }
  }
  return taps;
}

uint8_t clip8(int64_t acc) {
  int64_t v = acc >> kPrecisionBits;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// HWC 8-bit image resized to (oh, ow): rows first, then columns, like PIL.
std::vector<uint8_t> resize_hwc(const std::vector<uint8_t>& src, int64_t h, int64_t w, int64_t c, int64_t oh,
                                int64_t ow) {
  auto tx = resample_taps(w, ow), ty = resample_taps(h, oh);
  std::vector<uint8_t> mid((size_t)(h * ow * c)), dst((size_t)(oh * ow * c));
  std::vector<int64_t> acc((size_t)(ow * c));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < ow; x++) {
      const Taps& t = tx[(size_t)x];
      for (int64_t ch = 0; ch < c; ch++) {
        int64_t a = int64_t(1) << (kPrecisionBits - 1);
        for (size_t k = 0; k < t.w.size(); k++) a += (int64_t)t.w[k] * src[(size_t)((y * w + t.first + (int64_t)k) * c + ch)];
        mid[(size_t)((y * ow + x) * c + ch)] = clip8(a);
      }
    }
  for (int64_t y = 0; y < oh; y++) {
    const Taps& t = ty[(size_t)y];
    std::fill(acc.begin(), acc.end(), int64_t(1) << (kPrecisionBits - 1));
    for (size_t k = 0; k < t.w.size(); k++) {
      const uint8_t* s = &mid[(size_t)((t.first + (int64_t)k) * ow * c)];
      for (int64_t i = 0; i < ow * c; i++) acc[(size_t)i] += (int64_t)t.w[k] * s[i];
    }
    for (int64_t i = 0; i < ow * c; i++) dst[(size_t)(y * ow * c + i)] = clip8(acc[(size_t)i]);
  }
  return dst;
}

class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(const std::string& root, const ImageOptions& opt) : root_(root), opt_(opt) {
    channels_ = opt.grayscale ? 1 : 3;
    validate_options();
    classes_ = sorted_entries(root, [](const fs::directory_entry& e) {
      std::error_code ec;
      return e.is_directory(ec);
    });
    if (classes_.empty())
      fail(ErrorCode::invalid_input, "'{}' has no class sub-folders (expected one folder of PNG/JPEG images per class)", root);
    for (size_t c = 0; c < classes_.size(); c++) {
      fs::path dir = fs::path(root) / classes_[c];
      for (const auto& f : sorted_entries(dir, [](const fs::directory_entry& e) {
             std::error_code ec;
             return !e.is_directory(ec) && is_image_name(e.path().filename().string());
           })) {
        files_.push_back((dir / f).string());
        labels_.push_back((int64_t)c);
      }
    }
    if (files_.empty()) fail(ErrorCode::invalid_input, "'{}': no .png/.jpg/.jpeg files in its class folders", root);
    auto wh = image_file_size(files_[0]);
    auto hw = output_size(wh.first, wh.second, files_[0]);
    height_ = hw.first;
    width_ = hw.second;
    shape_ = opt_.nhwc ? Shape{height_, width_, channels_} : Shape{channels_, height_, width_};
  }

  int64_t size() const override { return (int64_t)files_.size(); }
  const Shape& sample_shape() const override { return shape_; }
  DType dtype() const override { return DType::f32; }
  const std::vector<int64_t>& labels() const override { return labels_; }
  std::vector<std::string> class_names() const override { return classes_; }
  std::string describe() const override {
    return fmt::format("image folder '{}' ({} images, {} classes)", root_, files_.size(), classes_.size());
  }

  void read(int64_t first, int64_t count, Tensor& out) const override {
    check_read(*this, first, count, out);
    int64_t per = shape_numel(shape_);
    std::vector<float> sample((size_t)per);
    for (int64_t i = 0; i < count; i++) {
      preprocess(files_[(size_t)(first + i)], sample.data());
      char* dst = static_cast<char*>(out.raw()) + (size_t)(i * per) * dtype_size(out.dtype());
      convert_elements(DType::f32, sample.data(), out.dtype(), dst, per);
    }
  }

 private:
  void validate_options() {
    auto check = [&](std::vector<float>& v, const char* name) {
      bool uniform = std::all_of(v.begin(), v.end(), [&](float x) { return !v.empty() && x == v[0]; });
      if (v.size() == 1 || (uniform && !v.empty())) v.assign((size_t)channels_, v[0]);
      if ((int64_t)v.size() != channels_)
        fail(ErrorCode::invalid_input, "--{} has {} values; give {}", name, v.size(),
             opt_.grayscale ? "one (the images are decoded to one channel with --grayscale)"
                            : "one per channel (3) or one for all");
    };
    check(opt_.mean, "mean");
    check(opt_.std, "std");
    for (float s : opt_.std)
      if (!(s != 0) || !std::isfinite(s)) fail(ErrorCode::invalid_input, "--std values must be finite and non-zero");
    if (opt_.resize < 0 || opt_.crop < 0) fail(ErrorCode::invalid_input, "--resize and --crop must not be negative");
    if (!std::isfinite(opt_.scale)) fail(ErrorCode::invalid_input, "--scale must be finite");
  }

  // Size after resize and crop, as (height, width); errors name the image.
  std::pair<int64_t, int64_t> resized_size(int64_t w, int64_t h) const {
    if (opt_.resize <= 0) return {h, w};
    // torchvision: the shorter side becomes `resize`, the longer one is truncated.
    if (w <= h) return {(int64_t)((double)opt_.resize * h / w), opt_.resize};
    return {opt_.resize, (int64_t)((double)opt_.resize * w / h)};
  }
  std::pair<int64_t, int64_t> output_size(int64_t w, int64_t h, const std::string& file) const {
    auto hw = resized_size(w, h);
    if (opt_.crop <= 0) return hw;
    if (hw.first < opt_.crop || hw.second < opt_.crop)
      fail(ErrorCode::invalid_input, "image '{}' is {}x{}{}, smaller than --crop {}", file, w, h,
           opt_.resize > 0 ? fmt::format(" ({}x{} after --resize {})", hw.second, hw.first, opt_.resize) : "",
           opt_.crop);
    return {opt_.crop, opt_.crop};
  }

  void preprocess(const std::string& file, float* out) const {
    Image im = decode_image_file(file);
    auto hw = output_size(im.width, im.height, file);
    if (hw.first != height_ || hw.second != width_)
      fail(ErrorCode::invalid_input,
           "image '{}' is {}x{} after preprocessing, but the data set's samples are {}x{} (from '{}'); use --resize "
           "and --crop so every image ends up the same size",
           file, hw.second, hw.first, width_, height_, files_[0]);
    int64_t h = im.height, w = im.width, c = channels_;
    std::vector<uint8_t> px;
    if (c == 1) {  // ITU-R 601 luma in PIL's fixed point, so grey inputs stay exact
      px.resize((size_t)(h * w));
      for (int64_t i = 0; i < h * w; i++) {
        const uint8_t* p = &im.rgb[(size_t)i * 3];
        px[(size_t)i] = (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
      }
    } else {
      px = std::move(im.rgb);
    }
    auto rs = resized_size(w, h);
    if (rs.first != h || rs.second != w) {
      px = resize_hwc(px, h, w, c, rs.first, rs.second);
      h = rs.first;
      w = rs.second;
    }
    // torchvision's CenterCrop offsets: round((size - crop) / 2), halves to even.
    int64_t top = (int64_t)std::nearbyint((h - height_) / 2.0), left = (int64_t)std::nearbyint((w - width_) / 2.0);
    for (int64_t y = 0; y < height_; y++)
      for (int64_t x = 0; x < width_; x++)
        for (int64_t ch = 0; ch < c; ch++) {
          int64_t src_ch = opt_.bgr && c == 3 ? 2 - ch : ch;  // mean/std are in output order
          float v = (float)px[(size_t)(((top + y) * w + left + x) * c + src_ch)];
          v = (v * opt_.scale - opt_.mean[(size_t)ch]) / opt_.std[(size_t)ch];
          size_t at = opt_.nhwc ? (size_t)((y * width_ + x) * c + ch) : (size_t)((ch * height_ + y) * width_ + x);
          out[at] = v;
        }
  }

  std::string root_;
  ImageOptions opt_;
  int64_t channels_ = 3, height_ = 0, width_ = 0;
  Shape shape_;
  std::vector<std::string> classes_, files_;
  std::vector<int64_t> labels_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& root, const ImageOptions& opt) {
  return std::make_unique<ImageFolderDataset>(root, opt);
}

}  // namespace rg

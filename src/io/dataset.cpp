#include "io/dataset.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "io/convert.h"
#include "io/file.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/npy.h"

namespace rg {
namespace {

Shape squeeze(const Shape& s) {
  Shape r;
  for (int64_t d : s)
    if (d != 1) r.push_back(d);
  return r;
}

// Samples stacked on axis 0 of one in-memory tensor (an NPY or IDX file).
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, std::string origin) : data_(std::move(data)), origin_(std::move(origin)) {
    if (data_.rank() < 1) fail(ErrorCode::invalid_input, "'{}' holds a scalar; data needs samples stacked on axis 0", origin_);
    shape_.assign(data_.shape().begin() + 1, data_.shape().end());
  }
  int64_t size() const override { return data_.dim(0); }
  const Shape& sample_shape() const override { return shape_; }
  DType dtype() const override { return data_.dtype(); }
  const std::vector<int64_t>& labels() const override { return no_labels_; }
  std::string describe() const override {
    return fmt::format("'{}' ({} samples of {} {})", origin_, size(), shape_str(shape_), dtype_name(dtype()));
  }
  void read(int64_t first, int64_t count, Tensor& out) const override {
    check_read(*this, first, count, out);
    int64_t per = shape_numel(shape_);
    const char* src = static_cast<const char*>(data_.raw()) + (size_t)(first * per) * dtype_size(dtype());
    convert_elements(dtype(), src, out.dtype(), out.raw(), count * per);
  }

 private:
  Tensor data_;
  std::string origin_;
  Shape shape_;
  std::vector<int64_t> no_labels_;
};

// Base class for views that forward everything to another data set.
class WrappedDataset : public Dataset {
 public:
  explicit WrappedDataset(std::unique_ptr<Dataset> base) : base_(std::move(base)) {}
  int64_t size() const override { return base_->size(); }
  const Shape& sample_shape() const override { return base_->sample_shape(); }
  DType dtype() const override { return base_->dtype(); }
  void read(int64_t first, int64_t count, Tensor& out) const override { base_->read(first, count, out); }
  std::string describe() const override { return base_->describe(); }
  const std::vector<int64_t>& labels() const override { return base_->labels(); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }

 protected:
  std::unique_ptr<Dataset> base_;
};

class SliceDataset : public WrappedDataset {
 public:
  SliceDataset(std::unique_ptr<Dataset> base, int64_t offset, int64_t count)
      : WrappedDataset(std::move(base)), offset_(offset), count_(count) {
    const auto& l = base_->labels();
    if (!l.empty()) labels_.assign(l.begin() + offset, l.begin() + offset + count);
  }
  int64_t size() const override { return count_; }
  void read(int64_t first, int64_t count, Tensor& out) const override {
    check_read(*this, first, count, out);
    base_->read(offset_ + first, count, out);
  }
  std::string describe() const override {
    return fmt::format("{} samples {}..{}", base_->describe(), offset_, offset_ + count_ - 1);
  }
  const std::vector<int64_t>& labels() const override { return labels_; }

 private:
  int64_t offset_, count_;
  std::vector<int64_t> labels_;
};

class LabelledDataset : public WrappedDataset {
 public:
  LabelledDataset(std::unique_ptr<Dataset> base, std::vector<int64_t> labels)
      : WrappedDataset(std::move(base)), labels_(std::move(labels)) {}
  const std::vector<int64_t>& labels() const override { return labels_; }

 private:
  std::vector<int64_t> labels_;
};

// Reads an NPY or IDX file, recognised by content: the name may say .gz, -ubyte or
// nothing at all.
Tensor read_array_file(const std::string& path, const char* role) {
  std::string bytes = read_file(path);
  if (bytes.size() >= 6 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0)
    return parse_npy(bytes.data(), bytes.size(), path);
  if (looks_like_idx(bytes.data(), bytes.size())) return parse_idx(bytes.data(), bytes.size(), path);
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0)
    return parse_npy(bytes.data(), bytes.size(), path);  // gives NPY's own reason
  fail(ErrorCode::io, "'{}': not an NPY or IDX {} file (unrecognised format)", path, role);
}

bool default_image_options(const ImageOptions& o) {
  ImageOptions d;
  return o.resize == d.resize && o.crop == d.crop && o.mean == d.mean && o.std == d.std && o.scale == d.scale &&
         o.nhwc == d.nhwc && o.grayscale == d.grayscale && o.bgr == d.bgr;
}

// Matches squeezed sample dims S[j..] against model dims P[i..] (-1 = dynamic), writing
// the chosen dims into `out`. A dynamic dim tries size 1 first, so missing leading dims
// become 1 ([28, 28] into [?, ?, ?] gives [1, 28, 28]).
bool match_dims(const Shape& P, size_t i, const Shape& S, size_t j, Shape& out) {
  if (i == P.size()) return j == S.size();
  if (P[i] == 1 || P[i] < 0) {
    out[i] = 1;
    if (match_dims(P, i + 1, S, j, out)) return true;
  }
  if (P[i] != 1 && j < S.size() && (P[i] < 0 || P[i] == S[j])) {
    out[i] = S[j];
    if (match_dims(P, i + 1, S, j + 1, out)) return true;
  }
  return false;
}

}  // namespace

void check_read(const Dataset& d, int64_t first, int64_t count, const Tensor& out) {
  if (first < 0 || count < 0 || first > d.size() || count > d.size() - first)
    fail(ErrorCode::invalid_input, "read of samples [{}, {}) outside {} ({} samples)", first, first + count,
         d.describe(), d.size());
  Shape want{count};
  want.insert(want.end(), d.sample_shape().begin(), d.sample_shape().end());
  if (out.numel() != shape_numel(want) || squeeze(out.shape()) != squeeze(want))
    fail(ErrorCode::invalid_input, "cannot read {} samples of shape {} into a tensor of shape {}", count,
         shape_str(d.sample_shape()), shape_str(out.shape()));
}

std::unique_ptr<Dataset> open_dataset(const std::string& path, const ImageOptions& img) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) fail(ErrorCode::io, "cannot open '{}': {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return open_image_folder(path, img);
  if (!default_image_options(img))
    fail(ErrorCode::invalid_input, "image options (--resize, --crop, --mean, ...) apply to image folders; '{}' is a file",
         path);
  return std::make_unique<TensorDataset>(read_array_file(path, "data"), path);
}

std::vector<int64_t> read_labels(const std::string& path) {
  Tensor t = read_array_file(path, "labels");
  if (!dtype_is_int(t.dtype()) && t.dtype() != DType::boolean)
    fail(ErrorCode::invalid_input, "'{}': labels must be integers, got {}", path, dtype_name(t.dtype()));
  if (t.rank() < 1 || (t.rank() == 2 ? t.dim(1) != 1 : t.rank() != 1))
    fail(ErrorCode::invalid_input, "'{}': labels must have shape [N] (or [N, 1]), got {}", path, shape_str(t.shape()));
  return t.to_int64s();
}

std::unique_ptr<Dataset> slice_dataset(std::unique_ptr<Dataset> base, int64_t offset, int64_t limit) {
  int64_t n = base->size();
  if (offset < 0) fail(ErrorCode::invalid_input, "--offset must not be negative (got {})", offset);
  if (offset > n || (offset == n && n > 0))
    fail(ErrorCode::invalid_input, "--offset {} is past the end of {} ({} samples)", offset, base->describe(), n);
  int64_t count = limit < 0 ? n - offset : std::min(limit, n - offset);
  if (offset == 0 && count == n) return base;
  return std::make_unique<SliceDataset>(std::move(base), offset, count);
}

std::unique_ptr<Dataset> attach_labels(std::unique_ptr<Dataset> base, std::vector<int64_t> labels,
                                       const std::string& origin) {
  if ((int64_t)labels.size() != base->size())
    fail(ErrorCode::invalid_input, "'{}' has {} labels but {} has {} samples", origin, labels.size(), base->describe(),
         base->size());
  return std::make_unique<LabelledDataset>(std::move(base), std::move(labels));
}

Shape fit_sample_shape(const Dataset& d, const std::string& input_name, const Shape& input, DType type) {
  const Shape& s = d.sample_shape();
  if (!numeric_conversion_ok(d.dtype(), type))
    fail(ErrorCode::invalid_input, "{} holds {} samples, which cannot feed model input '{}' of type {}", d.describe(),
         dtype_name(d.dtype()), input_name, dtype_name(type));
  // Dim for dim first: the data's own layout wins where it fits as is.
  bool direct = s.size() == input.size();
  for (size_t i = 0; direct && i < s.size(); i++) direct = input[i] < 0 || input[i] == s[i];
  if (direct) return s;
  Shape out(input.size(), 1);
  if (match_dims(input, 0, squeeze(s), 0, out)) return out;
  Shape shown{-1};
  shown.insert(shown.end(), input.begin(), input.end());
  fail(ErrorCode::invalid_input,
       "{} has samples of shape {}, which do not fit model input '{}' of shape {} (only size-1 dims may differ)",
       d.describe(), shape_str(s), input_name, shape_str(shown));
}

void check_dataset_fits(const Dataset& d, const std::string& input_name, const Shape& input, DType type) {
  fit_sample_shape(d, input_name, input, type);
}

}  // namespace rg

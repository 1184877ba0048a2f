#pragma once
// Data sets for accuracy, calibration, fault-injection and benchmark runs.
//
// A Dataset is an indexable collection of samples of one shape and dtype (and optionally
// integer labels). Samples are read in batches straight into a caller's tensor, so a
// campaign or a benchmark can reuse one input buffer.
//
// `open_dataset` accepts:
//   *.npy                      samples stacked on axis 0 (any supported dtype)
//   *.idx, *-ubyte, *.gz       IDX files (the MNIST format; gzip-compressed allowed)
//   a folder of class folders  PNG/JPEG images, one sub-folder per class (labels implicit),
//                              decoded by libpng/libjpeg and preprocessed per ImageOptions
// Files are recognised by their first bytes (NPY magic, IDX's two zero bytes, gzip's
// 1f 8b), so the name only matters for messages. NPY and IDX files are read into memory
// once; image folders decode each image when read() asks for it.
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rg {

// ImageNet-style preprocessing for image folders. Defaults keep pixels in [0, 255] and
// the native size; set them to match what the model was trained with. The steps run in
// torchvision's order and arithmetic (Grayscale, Resize, CenterCrop on the 8-bit image,
// then scale/mean/std), so samples equal what a PIL/torchvision pipeline would feed.
struct ImageOptions {
  int64_t resize = 0;                // resize the shorter side to this (0: keep)
  int64_t crop = 0;                  // centre crop to crop x crop (0: none)
  // mean/std: one value per output channel, in output order (BGR with `bgr`), or a single
  // value for all channels.
  std::vector<float> mean{0, 0, 0};  // per channel, subtracted after `scale`
  std::vector<float> std{1, 1, 1};   // per channel, divided after subtracting the mean
  float scale = 1.f;                 // pixels (0..255) are multiplied by this first
  bool nhwc = false;                 // layout of each sample: CHW (default) or HWC
  bool grayscale = false;            // decode to one channel
  bool bgr = false;                  // channel order
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual const Shape& sample_shape() const = 0;  // without the leading sample axis
  virtual DType dtype() const = 0;
  // Copies samples [first, first + count) into `out`, which must hold count samples of
  // sample_shape (its shape may differ by size-1 dims) with element type `out.dtype()`;
  // numeric conversion to that type happens here (uint8 pixels -> float32).
  virtual void read(int64_t first, int64_t count, Tensor& out) const = 0;
  // Human-readable origin for messages.
  virtual std::string describe() const = 0;
  // Class labels, or empty when the data set has none.
  virtual const std::vector<int64_t>& labels() const = 0;
  // Names of the classes by label index, when the data set knows them (an image folder's
  // sub-folder names); empty otherwise.
  virtual std::vector<std::string> class_names() const { return {}; }
};

// For Dataset implementations: validates read()'s arguments (range within size(), `out`
// holding exactly `count` samples up to size-1 dims); throws invalid_input otherwise.
void check_read(const Dataset& d, int64_t first, int64_t count, const Tensor& out);

std::unique_ptr<Dataset> open_dataset(const std::string& path, const ImageOptions& img = {});
// Labels from an NPY (integer, one per sample) or IDX file.
std::vector<int64_t> read_labels(const std::string& path);
// A view of samples [offset, offset + limit) of `base` (limit < 0: to the end). Labels are
// sliced with the samples. An offset past the end is an invalid_input error.
std::unique_ptr<Dataset> slice_dataset(std::unique_ptr<Dataset> base, int64_t offset, int64_t limit);
// `base` with `labels` (from `origin`, for messages) replacing its own. The count must
// equal base->size(): labels are matched to the whole data file, before any slicing, so
// a labels file that is one short never silently shifts every label.
std::unique_ptr<Dataset> attach_labels(std::unique_ptr<Dataset> base, std::vector<int64_t> labels,
                                       const std::string& origin);

// Checks that samples of `d` can feed a model input of shape `input` (dims after the
// first; dynamic dims are -1) and element type `type`: equal after dropping size-1 dims,
// and a numeric conversion exists. Throws invalid_input with both shapes otherwise.
void check_dataset_fits(const Dataset& d, const std::string& input_name, const Shape& input, DType type);
// The same check, returning the concrete per-sample shape to feed (dims after the first,
// dynamic ones resolved from the samples): the model's own shape when the sample shape
// matches it dim for dim, otherwise size-1 dims placed where the model has them (a
// dynamic dim the samples lack becomes 1, leftmost first, e.g. [28, 28] -> [1, 28, 28]).
Shape fit_sample_shape(const Dataset& d, const std::string& input_name, const Shape& input, DType type);

}  // namespace rg

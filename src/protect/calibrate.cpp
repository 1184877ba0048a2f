#include "protect/calibrate.h"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <numeric>
#include <random>

#include "io/file.h"
#include "ir/onnx_io.h"
#include "runtime/session.h"

namespace rg {
namespace {

constexpr int kFineBins = 8192;   // percentile resolution: range / 8192
constexpr int kStoredBins = 1024; // what BOUNDS.json keeps

struct Acc {
  SiteStats s;
  int64_t inner = 1, channels = 1;
  std::vector<double> fine;
};

// Calls `visit(value, channel)` for every element of t (channels along `axis`).
template <typename F>
void for_elements(const Tensor& t, int axis, F&& visit) {
  const float* p = t.data<float>();
  int64_t n = t.numel();
  int64_t c = t.rank() ? t.dim(axis) : 1, inner = 1;
  for (int d = axis + 1; d < t.rank(); d++) inner *= t.dim(d);
  for (int64_t i = 0; i < n; i++) visit(p[i], (i / inner) % c);
}

}  // namespace

double parse_stat(const std::string& stat) {
  if (stat == "minmax") return 100.0;
  if (stat.rfind("percentile:", 0) == 0) {
    char* end = nullptr;
    std::string num = stat.substr(11);
    double p = std::strtod(num.c_str(), &end);
    if (end && *end == 0 && p > 50 && p <= 100) return p;
  }
  fail(ErrorCode::invalid_input, "--stat must be minmax or percentile:P with 50 < P <= 100 (e.g. percentile:99.99), got '{}'", stat);
}

void CalibOptions::validate() const {
  if (samples < 1) fail(ErrorCode::invalid_input, "--samples must be at least 1, got {}", samples);
  if (batch < 1) fail(ErrorCode::invalid_input, "--batch must be at least 1, got {}", batch);
  parse_stat(stat);
}

Bounds calibrate(const std::string& model_path, const Dataset& data, const CalibOptions& o) {
  o.validate();
  const double pct = parse_stat(o.stat);
  std::string bytes = read_file(model_path);
  Graph g = parse_onnx(bytes.data(), bytes.size(), dir_of(model_path), model_path);
  Bounds b;
  b.model_file = model_path;
  b.model_sha256 = sha256_hex(bytes);
  bytes.clear();
  b.data = data.describe();
  b.shuffle = o.shuffle;
  b.seed = o.seed;
  b.stat = o.stat;
  b.activations.assign(o.sites.kinds.begin(), o.sites.kinds.end());
  b.after_following_ops = o.sites.after_following_ops;
  b.layer_outputs = o.sites.layer_outputs;
  if (g.inputs.size() != 1)
    fail(ErrorCode::invalid_input, "calibration needs a model with one input; this one has {}", g.inputs.size());
  std::vector<Site> sites = find_sites(g, o.sites);

  SessionOptions so;
  so.threads = o.threads;
  for (const auto& s : sites) so.keep_values.insert(s.tensor);
  Session session(std::move(g), so);
  const ValueInfo& in = session.graph().inputs[0];
  if (!in.has_shape || in.shape.empty())
    fail(ErrorCode::invalid_input, "model input '{}' declares no batch dimension (shape {}); calibration needs [batch, ...]",
         in.name, in.has_shape ? in.shape_text() : "unknown");
  Shape sample = fit_sample_shape(data, in.name, Shape(in.shape.begin() + 1, in.shape.end()), in.dtype);
  bool dynamic_batch = in.shape.empty() || in.shape[0] < 0;
  int64_t batch = dynamic_batch ? o.batch : in.shape[0];
  int64_t n = std::min<int64_t>(o.samples, data.size());
  if (n < 1) fail(ErrorCode::invalid_input, "{}: no samples to calibrate with", data.describe());
  b.samples = n;
  b.batch = batch;

  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  if (o.shuffle) std::shuffle(order.begin(), order.end(), std::mt19937_64(o.seed));
  order.resize(n);
  if (!o.shuffle) std::sort(order.begin(), order.end());

  std::vector<Acc> acc(sites.size());
  for (size_t i = 0; i < sites.size(); i++) acc[i].s.site = sites[i];

  // Two passes over the data: extremes first, then a histogram spanning them.
  for (int pass = 0; pass < (sites.empty() ? 0 : 2); pass++) {
    for (int64_t done = 0; done < n; done += batch) {
      int64_t count = std::min(batch, n - done);
      Shape shape = sample;
      shape.insert(shape.begin(), dynamic_batch ? count : batch);
      Tensor x(in.dtype, shape, true);
      int64_t per = shape_numel(sample) * (int64_t)dtype_size(in.dtype);
      for (int64_t k = 0; k < count; k++) {
        Tensor one = Tensor::wrap(in.dtype, [&] { Shape s1 = sample; s1.insert(s1.begin(), 1); return s1; }(),
                                  static_cast<char*>(x.raw()) + k * per);
        data.read(order[done + k], 1, one);
      }
      Plan& plan = session.plan({shape});
      std::vector<std::string> names;
      for (const auto& s : sites) names.push_back(s.tensor);
      plan.observe(names, [&](const std::string& value, Tensor& t) {
        for (auto& a : acc) {
          if (a.s.site.tensor != value) continue;
          if (t.dtype() != DType::f32) fail(ErrorCode::unsupported_op, "site '{}' is {}, not float32", value, dtype_name(t.dtype()));
          // A fixed-batch model padded with zeros: only the real samples count.
          Tensor real = t;
          if (!dynamic_batch && count < batch && t.rank() > 0 && t.dim(0) == batch) {
            Shape rs = t.shape();
            rs[0] = count;
            real = Tensor::wrap(t.dtype(), rs, t.raw());
          }
          SiteStats& s = a.s;
          if (pass == 0) {
            if (s.samples == 0) {
              s.shape = t.shape();
              s.channel_axis = channel_axis(s.site, t.rank());
              a.channels = t.rank() ? t.dim(s.channel_axis) : 1;
              s.channel_min.assign(a.channels, INFINITY);
              s.channel_max.assign(a.channels, -INFINITY);
              s.observed_min = INFINITY;
              s.observed_max = -INFINITY;
            }
            for_elements(real, s.channel_axis, [&](float v, int64_t c) {
              if (std::isnan(v)) return;
              s.channel_min[c] = std::min(s.channel_min[c], v);
              s.channel_max[c] = std::max(s.channel_max[c], v);
            });
            for (int64_t c = 0; c < a.channels; c++) {
              s.observed_min = std::min(s.observed_min, s.channel_min[c]);
              s.observed_max = std::max(s.observed_max, s.channel_max[c]);
            }
            s.samples += count;
            s.elements += real.numel();
          } else {
            if (a.fine.empty()) a.fine.assign(kFineBins, 0);
            double lo = s.observed_min, span = std::max<double>(s.observed_max - s.observed_min, 1e-30);
            for_elements(real, s.channel_axis, [&](float v, int64_t) {
              if (std::isnan(v)) return;
              int bin = (int)std::floor((v - lo) / span * kFineBins);
              a.fine[std::clamp(bin, 0, kFineBins - 1)] += 1;
            });
          }
        }
      });
      plan.run({x});
      plan.clear_observers();
      if (o.progress) o.progress(pass * n + done + count, 2 * n);
    }
  }
  for (auto& a : acc) {
    SiteStats& s = a.s;
    if (s.samples == 0) fail(ErrorCode::internal, "site '{}' was never observed during calibration", s.site.tensor);
    if (!std::isfinite(s.observed_min)) {
      // Only NaN seen: no range to learn, and a clamp built from it would be meaningless.
      std::fprintf(stderr, "rangeguard: warning: site '%s' held only NaN on the calibration data; left unprotected\n",
                   s.site.tensor.c_str());
      continue;
    }
    s.min = s.observed_min;
    s.max = s.observed_max;
    double span = (double)s.observed_max - s.observed_min;
    if (pct < 100 && !a.fine.empty()) {
      // Bounds at quantiles (1 - p) and p of all values: the bin edges that hold them.
      double total = std::accumulate(a.fine.begin(), a.fine.end(), 0.0), tail = total * (1 - pct / 100), seen = 0;
      int lo_bin = 0, hi_bin = kFineBins - 1;
      for (int i = 0; i < kFineBins; i++) {
        seen += a.fine[i];
        if (seen > tail) { lo_bin = i; break; }
      }
      seen = 0;
      for (int i = kFineBins - 1; i >= 0; i--) {
        seen += a.fine[i];
        if (seen > tail) { hi_bin = i; break; }
      }
      s.min = (float)(s.observed_min + span * lo_bin / kFineBins);
      s.max = (float)(s.observed_min + span * (hi_bin + 1) / kFineBins);
      for (auto& v : s.channel_min) v = std::clamp(v, s.min, s.max);
      for (auto& v : s.channel_max) v = std::clamp(v, s.min, s.max);
    }
    s.hist_min = s.observed_min;
    s.hist_max = s.observed_max;
    s.hist.assign(kStoredBins, 0);
    for (int i = 0; i < kFineBins && !a.fine.empty(); i++) s.hist[i * kStoredBins / kFineBins] += (int64_t)a.fine[i];
    b.sites.push_back(s);
  }
  return b;
}

}  // namespace rg

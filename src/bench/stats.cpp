#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace rg {

std::vector<int64_t> poisson_schedule(double qps, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(qps / 1e9);  // per nanosecond
  std::vector<int64_t> t((size_t)std::max<int64_t>(n, 0));
  double now = 0;
  for (auto& x : t) {
    now += gap(rng);
    x = (int64_t)now;
  }
  return t;
}

double binomial_cdf(int64_t h, int64_t n, double q) {
  if (h < 0) return 0;
  if (h >= n) return 1;
  double lq = std::log(q), lp = std::log1p(-q);
  double logpmf = (double)n * lp;  // P(X = 0)
  double logcdf = logpmf;
  for (int64_t k = 0; k < h; k++) {
    logpmf += std::log((double)(n - k) / (double)(k + 1)) + lq - lp;
    double hi = std::max(logcdf, logpmf), lo = std::min(logcdf, logpmf);
    logcdf = hi + std::log1p(std::exp(lo - hi));
  }
  return std::min(1.0, std::exp(logcdf));
}

int64_t early_stopping_max_overlatency(int64_t n, double percentile, double confidence) {
  double q = 1 - percentile, alpha = 1 - confidence;
  if (n <= 0 || q <= 0) return -1;
  // The CDF grows with h: walk it once (O(h) terms, h ~ n q).
  double lq = std::log(q), lp = std::log1p(-q);
  double logpmf = (double)n * lp, logcdf = logpmf, la = std::log(alpha);
  if (logcdf > la) return -1;
  for (int64_t k = 0; k < n; k++) {
    logpmf += std::log((double)(n - k) / (double)(k + 1)) + lq - lp;
    double hi = std::max(logcdf, logpmf), lo = std::min(logcdf, logpmf);
    logcdf = hi + std::log1p(std::exp(lo - hi));
    if (logcdf > la) return k;  // h = k + 1 fails, h = k passed
  }
  return n;
}

int64_t early_stopping_min_queries(double percentile, double confidence) {
  // (percentile)^n <= 1 - confidence.
  return (int64_t)std::ceil(std::log(1 - confidence) / std::log(percentile) - 1e-12);
}

namespace {
double normal_quantile(double p) {  // Acklam's rational approximation, |error| < 1.2e-9
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double q, r;
  if (p < 0.02425) {
    q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normal_quantile(1 - p);
  q = p - 0.5;
  r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}
}  // namespace

double student_t_quantile(double confidence, int64_t df) {
  if (df < 1) return INFINITY;
  // t_{0.975} for df 1..9 (the expansion is poor there); other levels use the expansion.
  static const double t975[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262};
  if (std::fabs(confidence - 0.95) < 1e-9 && df <= 9) return t975[df - 1];
  double z = normal_quantile(1 - (1 - confidence) / 2), v = (double)df;
  double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

RatioCI ratio_confidence_interval(const std::vector<double>& ratios, double confidence) {
  RatioCI r;
  std::vector<double> logs;
  for (double x : ratios)
    if (x > 0 && std::isfinite(x)) logs.push_back(std::log(x));
  r.rounds = (int64_t)logs.size();
  if (logs.empty()) return r;
  double mean = 0;
  for (double l : logs) mean += l;
  mean /= (double)logs.size();
  r.ratio = std::exp(mean);
  if (logs.size() < 2) {
    r.low = 0;
    r.high = INFINITY;
    return r;
  }
  double ss = 0;
  for (double l : logs) ss += (l - mean) * (l - mean);
  double se = std::sqrt(ss / (double)(logs.size() - 1) / (double)logs.size());
  double t = student_t_quantile(confidence, (int64_t)logs.size() - 1);
  r.low = std::exp(mean - t * se);
  r.high = std::exp(mean + t * se);
  return r;
}

}  // namespace rg

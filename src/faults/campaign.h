#pragma once
// Fault-injection campaigns: golden outputs once, then per fault: inject in place into
// the compiled model (weights re-derived for the one layer touched, or an activation
// changed as its layer writes it), run the evaluation inputs, classify, restore. The same
// fault list runs on the original and, when given, the protected model.
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "faults/fault.h"
#include "io/dataset.h"

namespace rg {

struct CampaignOptions {
  FaultSpec spec;
  int64_t trials = 0;        // faults to run; 0 = size by margin/confidence
  double margin = 0.01;      // Leveugle sizing: error margin ...
  double confidence = 0.95;  // ... at this confidence
  uint64_t seed = 1;
  int shard = 0, shards = 1;  // run faults k with k % shards == shard
  int64_t samples = 64;      // evaluation inputs per fault
  int64_t batch = 64;
  int threads = 0;
  // Clean activations kept per (batch, layer) so a faulted run resumes at the first layer
  // the fault touches instead of at the input; beyond this budget runs start at the input.
  int64_t resume_mb = 1024;
  std::string faults_in, faults_out;
  std::function<void(int64_t, int64_t)> progress;
  void validate() const;
};

// Raw counts; everything reported is derived from them, so shards merge exactly.
struct Tally {
  int64_t trials = 0, pairs = 0, masked = 0, sdc = 0, critical_sdc = 0, due = 0;
  int64_t detected_trials = 0, correct = 0, clean_correct = 0, labelled_pairs = 0;
  // SDC pairs whose inference the detector did not flag (it counted no more than that
  // batch counts without the fault): corruption nothing reported; all SDC without one.
  int64_t undetected_sdc = 0;
  bool has_detector = false;
  std::map<std::string, std::array<int64_t, 3>> per_bit, per_layer;  // key -> {pairs, sdc, due}
  void add(const Tally& o);
};

struct CampaignResult {
  nlohmann::json settings;
  double population = 0;
  int64_t faults_total = 0;  // the whole list (all shards)
  Tally original, protected_;
  bool has_protected = false;
  double seconds = 0, plain_rate = 0, campaign_rate = 0;  // inferences per second
};

// Wilson score interval for k successes in n trials at normal quantile z.
std::pair<double, double> wilson(int64_t k, int64_t n, double z = 1.959964);
// Leveugle et al. (DATE 2009): injections for margin e at confidence c, population N, p = 0.5.
int64_t leveugle_sample_size(double population, double margin, double confidence);

CampaignResult run_campaign(const std::string& model, const std::string& protected_model, const Dataset& data,
                            const CampaignOptions& o);

nlohmann::json campaign_json(const CampaignResult& r);
// A self-contained HTML view of a campaign report (from campaign_json or a merge):
// outcome rates original vs protected, SDC by bit position and by layer as bar charts.
std::string campaign_html(const nlohmann::json& report);
// Sums shard reports of one campaign (identical settings) into one.
nlohmann::json merge_campaigns(const std::vector<nlohmann::json>& shards);

}  // namespace rg

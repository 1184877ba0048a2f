#include "faults/campaign.h"

#include <chrono>
#include <cmath>
#include <set>

#include "io/file.h"
#include "ir/onnx_io.h"
#include "runtime/session.h"

namespace rg {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kCount = "rangeguard_oob_count";

double normal_quantile(double confidence) {  // two-sided: z with P(|Z| < z) = confidence
  double lo = 0, hi = 10;
  for (int i = 0; i < 100; i++) {
    double mid = (lo + hi) / 2;
    (std::erf(mid / std::sqrt(2.0)) < confidence ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

struct Batch {
  Tensor x;
  int64_t first = 0, count = 0;
};

// One model under test: its session, golden top-1 per input, and its tally.
struct Model {
  std::unique_ptr<Session> session;
  int score = 0, count = -1;  // output indices (count: the detector, -1 when absent)
  std::vector<int64_t> golden;
  int64_t clean_oob = 0;  // out-of-range activations the detector counts without a fault
  std::vector<int64_t> clean_batch_oob;  // the same per input: its batch's clean count
  Tally tally;
  // Arena snapshots of clean runs, by (batch, step to resume at), and their total size.
  std::map<std::pair<size_t, size_t>, std::vector<char>> snapshots;
  size_t snapshot_bytes = 0, snapshot_budget = 0;
};

std::unique_ptr<Model> open_model(Graph graph, const std::string& path, const CampaignOptions& o,
                                  const std::set<std::string>& keep) {
  SessionOptions so;
  so.threads = o.threads;
  so.keep_values = keep;
  so.keep_values_plain = true;
  auto m = std::make_unique<Model>();
  m->session = std::make_unique<Session>(std::move(graph), so);
  const Graph& g = m->session->graph();
  if (g.inputs.size() != 1) fail(ErrorCode::invalid_input, "{}: fault injection needs a model with one input", path);
  m->score = -1;
  for (size_t i = 0; i < g.outputs.size(); i++) {
    if (g.outputs[i].name == kCount) m->count = (int)i;
    else if (m->score < 0) m->score = (int)i;
  }
  if (m->score < 0) fail(ErrorCode::invalid_input, "{}: no score output", path);
  m->tally.has_detector = m->count >= 0;
  m->snapshot_budget = (size_t)o.resume_mb << 20;
  return m;
}

// Runs every batch; `each(input, row, classes, batch_oob)` sees each real input's scores
// and its batch's detector count (0 without a detector). An
// activation fault (when given) is applied as its layer writes the value, to every sample.
// `touched` (weight faults: the constants changed) or `act` let a run resume at the first
// step they affect, from a snapshot of the clean run (the steps before it are unchanged).
int64_t run_all(Model& m, const std::vector<Batch>& batches, const Fault* act, const std::vector<std::string>* touched,
                const std::function<void(int64_t, const float*, int64_t, int64_t)>& each) {
  int64_t oob = 0;
  for (size_t bi = 0; bi < batches.size(); bi++) {
    const Batch& b = batches[bi];
    Plan& plan = m.session->plan({b.x.shape()});
    if (act) {
      plan.observe({act->tensor}, [act](const std::string&, Tensor& t) {
        int64_t n = t.rank() ? t.dim(0) : 1, per = t.numel() / std::max<int64_t>(n, 1);
        if (act->index >= per)
          fail(ErrorCode::invalid_input, "fault on '{}': element {} is past its {} elements per sample", act->tensor,
               act->index, per);
        float* p = t.data<float>();
        for (int64_t s = 0; s < n; s++) p[s * per + act->index] = apply_fault(p[s * per + act->index], *act);
      });
    }
    size_t from = plan.steps().size();
    if (act) from = plan.first_step_writing(act->tensor);
    if (touched)
      for (const auto& t : *touched) from = std::min(from, plan.first_step_reading(t));
    auto it = m.snapshots.find({bi, from});
    if (from < plan.steps().size() && from > 0 && it == m.snapshots.end() && plan.resumable() &&
        m.snapshot_bytes + plan.activation_bytes() <= m.snapshot_budget) {
      it = m.snapshots.emplace(std::make_pair(bi, from), std::vector<char>()).first;
      m.snapshot_bytes += plan.activation_bytes();
    }
    if (it != m.snapshots.end()) plan.execute_resume({b.x}, from, it->second);
    else plan.execute({b.x});
    plan.clear_observers();
    const Tensor& y = plan.output(m.score);
    if (y.dtype() != DType::f32 || y.rank() < 1) fail(ErrorCode::invalid_input, "the score output is not float32 [batch, ...]");
    int64_t classes = y.numel() / y.dim(0);
    int64_t batch_oob = m.count >= 0 ? (int64_t)plan.output(m.count).to_doubles().at(0) : 0;
    for (int64_t i = 0; i < b.count; i++) each(b.first + i, y.data<float>() + i * classes, classes, batch_oob);
    oob += batch_oob;
  }
  return oob;
}

int64_t top1(const float* row, int64_t n, bool& finite) {
  finite = true;
  int64_t best = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!std::isfinite(row[i])) finite = false;
    if (row[i] > row[best]) best = i;
  }
  return best;
}

std::string bits_key(const Fault& f) {
  if (f.kind == FaultKind::random_value) return "random";
  std::string s;
  for (int b : f.bits) s += (s.empty() ? "" : "+") + std::to_string(b);
  return s;
}

nlohmann::json rate(int64_t k, int64_t n) {
  if (n == 0) return {{"rate", nullptr}, {"ci95", nullptr}};
  auto ci = wilson(k, n);
  return {{"rate", (double)k / n}, {"ci95", {ci.first, ci.second}}};
}

nlohmann::json tally_json(const Tally& t) {
  nlohmann::json j;
  j["trials"] = t.trials;
  j["pairs"] = t.pairs;
  auto put = [&](const char* name, int64_t k, int64_t n) {
    nlohmann::json r = rate(k, n);
    j[std::string(name) + "_rate"] = r["rate"];
    j[std::string(name) + "_ci95"] = r["ci95"];
  };
  put("sdc", t.sdc, t.pairs);
  put("critical_sdc", t.critical_sdc, t.labelled_pairs);
  put("due", t.due, t.pairs);
  put("masked", t.masked, t.pairs);
  put("undetected_sdc", t.undetected_sdc, t.pairs);
  if (t.has_detector) put("detected", t.detected_trials, t.trials);
  else j["detected_rate"] = nullptr, j["detected_ci95"] = nullptr;
  j["accuracy_under_fault"] = t.labelled_pairs ? nlohmann::json((double)t.correct / t.labelled_pairs) : nlohmann::json();
  auto breakdown = [](const std::map<std::string, std::array<int64_t, 3>>& m) {
    nlohmann::json b = nlohmann::json::object();
    for (const auto& kv : m) {
      nlohmann::json e = {{"pairs", kv.second[0]}, {"sdc", kv.second[1]}, {"due", kv.second[2]}};
      e["sdc_rate"] = rate(kv.second[1], kv.second[0])["rate"];
      e["sdc_ci95"] = rate(kv.second[1], kv.second[0])["ci95"];
      b[kv.first] = e;
    }
    return b;
  };
  j["per_bit"] = breakdown(t.per_bit);
  j["per_layer"] = breakdown(t.per_layer);
  j["counts"] = {{"trials", t.trials}, {"pairs", t.pairs}, {"masked", t.masked}, {"sdc", t.sdc},
                 {"critical_sdc", t.critical_sdc}, {"due", t.due}, {"detected_trials", t.detected_trials},
                 {"undetected_sdc", t.undetected_sdc},
                 {"correct", t.correct}, {"labelled_pairs", t.labelled_pairs}, {"has_detector", t.has_detector}};
  return j;
}

Tally tally_from_json(const nlohmann::json& j) {
  const auto& c = j.at("counts");
  Tally t;
  t.trials = c.at("trials");
  t.pairs = c.at("pairs");
  t.masked = c.at("masked");
  t.sdc = c.at("sdc");
  t.critical_sdc = c.at("critical_sdc");
  t.due = c.at("due");
  t.detected_trials = c.at("detected_trials");
  t.correct = c.at("correct");
  t.labelled_pairs = c.at("labelled_pairs");
  t.has_detector = c.at("has_detector");
  if (c.contains("undetected_sdc"))
    t.undetected_sdc = c.at("undetected_sdc");
  else if (!t.has_detector)
    t.undetected_sdc = t.sdc;
  else  // a report from before the count existed: its silent SDC cannot be recovered
    fail(ErrorCode::invalid_input, "campaign report without undetected SDC counts (made by an older rangeguard); rerun it");
  for (const char* key : {"per_bit", "per_layer"}) {
    auto& m = std::string(key) == "per_bit" ? t.per_bit : t.per_layer;
    for (const auto& kv : j.at(key).items())
      m[kv.key()] = {kv.value().at("pairs").get<int64_t>(), kv.value().at("sdc").get<int64_t>(),
                     kv.value().at("due").get<int64_t>()};
  }
  return t;
}

// Rate ka/na over rate kb/nb, with a 95% interval (Katz log method; a zero count gets
// half an event so the interval stays finite).
nlohmann::json rate_ratio(double ka, int64_t na, double kb, int64_t nb, const char* of) {
  if (na == 0 || nb == 0) return nullptr;
  if (ka == 0) return {{"factor", nullptr}, {"ci95", nullptr}, {"note", "no such outcome in the original"}};
  double ea = ka, eb = kb == 0 ? 0.5 : kb;
  double f = (ea / na) / (eb / nb);
  double se = std::sqrt(1 / ea - 1.0 / na + 1 / eb - 1.0 / nb);
  return {{"factor", f}, {"ci95", {f * std::exp(-1.959964 * se), f * std::exp(1.959964 * se)}}, {"of", of}};
}

// Both reductions original -> protected: corrupted predictions (SDC + DUE), and silent
// ones (SDC that no detector flagged; the original has none, so all its SDC are silent).
void put_reductions(nlohmann::json& j, const Tally& a, const Tally& b) {
  j["reduction"] = rate_ratio(a.sdc + a.due, a.pairs, b.sdc + b.due, b.pairs, "(sdc + due) rate, original / protected");
  j["silent_reduction"] = rate_ratio(a.undetected_sdc, a.pairs, b.undetected_sdc, b.pairs,
                                     "undetected sdc rate, original / protected");
}

}  // namespace

void Tally::add(const Tally& o) {
  trials += o.trials, pairs += o.pairs, masked += o.masked, sdc += o.sdc, critical_sdc += o.critical_sdc;
  due += o.due, detected_trials += o.detected_trials, correct += o.correct, labelled_pairs += o.labelled_pairs;
  undetected_sdc += o.undetected_sdc;
  has_detector = has_detector || o.has_detector;
  for (const auto& kv : o.per_bit)
    for (int i = 0; i < 3; i++) per_bit[kv.first][i] += kv.second[i];
  for (const auto& kv : o.per_layer)
    for (int i = 0; i < 3; i++) per_layer[kv.first][i] += kv.second[i];
}

void CampaignOptions::validate() const {
  spec.validate();
  if (trials < 0) fail(ErrorCode::invalid_input, "--trials must be positive, got {}", trials);
  if (trials == 0 && !(margin > 0 && margin < 1)) fail(ErrorCode::invalid_input, "--margin must be in (0, 1), got {}", margin);
  if (!(confidence > 0 && confidence < 1)) fail(ErrorCode::invalid_input, "--confidence must be in (0, 1), got {}", confidence);
  if (shards < 1 || shard < 0 || shard >= shards)
    fail(ErrorCode::invalid_input, "--shard must be i/N with 0 <= i < N, got {}/{}", shard, shards);
  if (samples < 1 || batch < 1) fail(ErrorCode::invalid_input, "--samples and --batch must be at least 1");
  if (resume_mb < 0) fail(ErrorCode::invalid_input, "--resume-mb must be >= 0, got {}", resume_mb);
}

std::pair<double, double> wilson(int64_t k, int64_t n, double z) {
  if (n <= 0) return {0, 1};
  double p = (double)k / n, z2 = z * z, d = 1 + z2 / n;
  double c = (p + z2 / (2 * n)) / d, h = z * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / d;
  return {std::max(0.0, c - h), std::min(1.0, c + h)};
}

int64_t leveugle_sample_size(double population, double margin, double confidence) {
  double t = normal_quantile(confidence), p = 0.5;
  double n = population / (1 + margin * margin * (population - 1) / (t * t * p * (1 - p)));
  return (int64_t)std::ceil(n);
}

CampaignResult run_campaign(const std::string& model, const std::string& protected_model, const Dataset& data,
                            const CampaignOptions& o) {
  o.validate();
  CampaignResult r;
  std::string bytes = read_file(model);
  const std::string model_sha = sha256_hex(bytes);
  // The weights as the file has them: faults are defined here.
  Graph g0 = parse_onnx(bytes.data(), bytes.size(), dir_of(model), model);
  bytes.clear();
  Graph gp;  // the protected model, parsed once: checked here, compiled below
  if (!protected_model.empty()) {
    gp = load_onnx(protected_model);
    for (const auto& kv : g0.initializers) {
      const Tensor* t = gp.initializer(kv.first);
      if (!t || t->dtype() != kv.second.dtype() || t->shape() != kv.second.shape() ||
          std::memcmp(t->raw(), kv.second.raw(), kv.second.nbytes()) != 0)
        fail(ErrorCode::invalid_input, "the protected model's parameters differ from the original's ('{}'); protect this model",
             kv.first);
    }
  }

  // Evaluation inputs, read once.
  const ValueInfo in = g0.inputs.at(0);
  if (g0.inputs.size() != 1 || !in.has_shape || in.shape.empty())
    fail(ErrorCode::invalid_input, "fault injection needs a model with one input of shape [batch, ...]");
  Shape per = fit_sample_shape(data, in.name, Shape(in.shape.begin() + 1, in.shape.end()), in.dtype);
  int64_t n = std::min<int64_t>(o.samples, data.size());
  if (n < 1) fail(ErrorCode::invalid_input, "{} has no samples", data.describe());
  bool fixed = in.shape[0] >= 0;
  int64_t bs = fixed ? in.shape[0] : std::min(o.batch, n);
  std::vector<Batch> batches;
  for (int64_t first = 0; first < n; first += bs) {
    Batch b;
    b.first = first;
    b.count = std::min(bs, n - first);
    Shape s{fixed ? bs : b.count};
    s.insert(s.end(), per.begin(), per.end());
    b.x = Tensor(in.dtype, s, true);
    Shape part = s;
    part[0] = b.count;
    Tensor view = Tensor::wrap(in.dtype, part, b.x.raw());
    data.read(first, b.count, view);
    batches.push_back(std::move(b));
  }
  const std::vector<int64_t>& labels = data.labels();

  // The fault list: replayed, or drawn from the population.
  std::map<std::string, int64_t> act_elements;
  std::map<std::string, std::string> folded;
  bool want_acts = std::count(o.spec.targets.begin(), o.spec.targets.end(), FaultTarget::activation) > 0;
  if (want_acts && o.faults_in.empty()) {
    // One probe inference tells each layer output's size per sample.
    std::set<std::string> outs;
    for (const auto& nd : g0.nodes)
      if (!nd.outputs.empty()) outs.insert(nd.outputs[0]);
    SessionOptions so;
    so.keep_values = outs;
    Session probe(load_onnx(model), so);
    Plan& p = probe.plan({batches[0].x.shape()});
    std::vector<std::string> names;
    for (const auto& v : outs)
      if (p.slot_of(v) >= 0) names.push_back(v);
    p.observe(names, [&](const std::string& v, Tensor& t) {
      if (t.dtype() == DType::f32 && t.rank() > 0) act_elements[v] = t.numel() / t.dim(0);
    });
    p.run({batches[0].x});
    folded = probe.graph().folded_values;
  }
  std::vector<FaultSite> sites = fault_sites(g0, o.spec, act_elements, folded);
  r.population = population_size(sites, o.spec);
  std::vector<Fault> faults;
  if (!o.faults_in.empty()) {
    faults = read_faults(o.faults_in);
  } else {
    int64_t count = o.trials > 0 ? o.trials : leveugle_sample_size(r.population, o.margin, o.confidence);
    faults = sample_faults(sites, o.spec, count, o.seed);
  }
  std::set<std::string> keep;
  const auto producers = g0.producers();
  for (const auto& f : faults) {
    if (f.target == FaultTarget::weight) {
      const Tensor* t = g0.initializer(f.tensor);
      if (!t) fail(ErrorCode::invalid_input, "fault on weight '{}': no such initializer in {}", f.tensor, model);
      if (t->dtype() != DType::f32 || f.index >= t->numel())
        fail(ErrorCode::invalid_input, "fault on weight '{}': element {} is past its {} elements", f.tensor, f.index, t->numel());
    } else {
      auto it = producers.find(f.tensor);
      if (it == producers.end() || g0.nodes[it->second].outputs[0] != f.tensor) fail(ErrorCode::invalid_input, "fault on activation '{}': no layer writes that value in {}", f.tensor, model);
      keep.insert(f.tensor);
    }
  }
  std::vector<std::unique_ptr<Model>> models;
  // The original gets its own parse: g0 keeps the file's weights while faults change the session's.
  models.push_back(open_model(load_onnx(model), model, o, keep));
  // Lists written before BatchNorm-folded layers had their sites moved name the conv's own
  // output, which the runtime never writes: say where such a fault belongs now. (The
  // session has run its passes; nothing is compiled or observed yet.)
  const auto& folded_now = models[0]->session->graph().folded_values;
  for (const auto& f : faults)
    if (f.target == FaultTarget::activation && folded_now.count(f.tensor))
      fail(ErrorCode::invalid_input,
           "fault on activation '{}': the runtime folds the op after that layer into it, so the layer writes '{}' instead; "
           "activation faults of this layer sit there (name it in the list)",
           f.tensor, written_value(folded_now, f.tensor));
  if (!o.faults_out.empty()) write_faults(faults, o.faults_out);
  r.faults_total = (int64_t)faults.size();

  if (!protected_model.empty()) models.push_back(open_model(std::move(gp), protected_model, o, keep));
  r.has_protected = models.size() > 1;

  // Golden outputs, once per model; their timing is the plain inference rate.
  for (auto& m : models) {
    m->golden.assign(n, -1);
    m->clean_batch_oob.assign(n, 0);
    m->clean_oob = run_all(*m, batches, nullptr, nullptr, [&](int64_t i, const float* row, int64_t c, int64_t oob) {
      m->clean_batch_oob[i] = oob;
      bool finite;
      m->golden[i] = top1(row, c, finite);
      if (i < (int64_t)labels.size() && m->golden[i] == labels[i]) m->tally.clean_correct++;
    });
  }
  {  // plans compiled above; time plain passes (at least 3, at least 0.3 s)
    auto t0 = Clock::now();
    int64_t runs = 0;
    double s = 0;
    while (runs < 3 || s < 0.3) {
      run_all(*models[0], batches, nullptr, nullptr, [](int64_t, const float*, int64_t, int64_t) {});
      runs++;
      s = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    r.plain_rate = runs * n / s;
  }

  std::vector<int64_t> mine;
  for (int64_t k = 0; k < (int64_t)faults.size(); k++)
    if (k % o.shards == o.shard) mine.push_back(k);
  auto t0 = Clock::now();
  int64_t done = 0;
  for (int64_t k : mine) {
    const Fault& f = faults[k];
    for (auto& m : models) {
      Tally& t = m->tally;
      float orig = 0;
      std::vector<std::string> touched;
      if (f.target == FaultTarget::weight) {
        orig = g0.initializer(f.tensor)->data<float>()[f.index];
        touched = m->session->set_weight_element(f.tensor, f.index, apply_fault(orig, f));
      }
      auto& bit = t.per_bit[bits_key(f)];
      auto& layer = t.per_layer[f.layer.empty() ? f.tensor : f.layer];
      bool weight = f.target == FaultTarget::weight;
      int64_t oob = run_all(*m, batches, weight ? nullptr : &f, weight ? &touched : nullptr,
                            [&](int64_t i, const float* row, int64_t c, int64_t batch_oob) {
                              bool finite;
                              int64_t y = top1(row, c, finite);
                              t.pairs++, bit[0]++, layer[0]++;
                              bool labelled = i < (int64_t)labels.size();
                              if (!finite) {
                                t.due++, bit[2]++, layer[2]++;
                              } else if (y != m->golden[i]) {
                                t.sdc++, bit[1]++, layer[1]++;
                                if (batch_oob <= m->clean_batch_oob[i]) t.undetected_sdc++;
                                if (labelled && m->golden[i] == labels[i] && y != labels[i]) t.critical_sdc++;
                              } else {
                                t.masked++;
                              }
                              if (labelled) {
                                t.labelled_pairs++;
                                if (finite && y == labels[i]) t.correct++;
                              }
                            });
      if (f.target == FaultTarget::weight) m->session->set_weight_element(f.tensor, f.index, orig);
      t.trials++;
      // Detected: the fault added out-of-range activations to what clean inputs show.
      if (oob > m->clean_oob) t.detected_trials++;
    }
    if (o.progress) o.progress(++done, (int64_t)mine.size());
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.campaign_rate = (double)mine.size() * n * models.size() / std::max(r.seconds, 1e-9);
  r.original = models[0]->tally;
  if (r.has_protected) r.protected_ = models[1]->tally;

  nlohmann::json targets = nlohmann::json::array();
  for (auto t : o.spec.targets) targets.push_back(t == FaultTarget::weight ? "weights" : "activations");
  std::string bits;
  for (int b : o.spec.bits) bits += (bits.empty() ? "" : ",") + std::to_string(b);
  r.settings = {{"model", model}, {"protected", protected_model.empty() ? nlohmann::json() : nlohmann::json(protected_model)},
                {"data", data.describe()}, {"samples", n}, {"labels", !labels.empty()},
                {"targets", targets}, {"kind", fault_kind_name(o.spec.kind)}, {"bits", bits.empty() ? "any" : bits},
                {"flips", o.spec.flips}, {"layers", o.spec.layers}, {"biases", o.spec.biases}, {"seed", o.seed},
                {"faults_in", o.faults_in}, {"trials_requested", o.trials}, {"margin", o.margin},
                {"confidence", o.confidence}, {"model_sha256", model_sha}};
  r.settings["clean_accuracy"] = labels.empty() ? nlohmann::json() : nlohmann::json((double)r.original.clean_correct / n);
  if (r.has_protected)
    r.settings["protected_clean_accuracy"] =
        labels.empty() ? nlohmann::json() : nlohmann::json((double)r.protected_.clean_correct / n);
  if (r.has_protected && models[1]->count >= 0)
    r.settings["protected_clean_oob_count"] = models[1]->clean_oob;  // the detector's baseline
  r.settings["shard"] = {o.shard, o.shards};
  return r;
}

nlohmann::json campaign_json(const CampaignResult& r) {
  nlohmann::json j;
  j["format"] = "rangeguard.campaign";
  j["version"] = 1;
  j["settings"] = r.settings;
  j["population"] = r.population;
  j["faults_total"] = r.faults_total;
  j["original"] = tally_json(r.original);
  if (r.has_protected) {
    j["protected"] = tally_json(r.protected_);
    put_reductions(j, r.original, r.protected_);
  }
  j["timing"] = {{"seconds", r.seconds}, {"plain_inferences_per_s", r.plain_rate},
                 {"campaign_inferences_per_s", r.campaign_rate},
                 {"ratio", r.plain_rate > 0 ? r.campaign_rate / r.plain_rate : 0.0}};
  return j;
}

nlohmann::json merge_campaigns(const std::vector<nlohmann::json>& shards) {
  if (shards.empty()) fail(ErrorCode::invalid_input, "nothing to merge");
  auto strip = [](nlohmann::json s) {
    s.erase("shard");
    return s;
  };
  Tally a, b;
  std::set<int> seen;
  int total = 0;
  for (const auto& s : shards) {
    if (s.value("format", "") != "rangeguard.campaign")
      fail(ErrorCode::invalid_input, "not a rangeguard campaign report (format '{}')", s.value("format", ""));
    if (strip(s.at("settings")) != strip(shards[0].at("settings")))
      fail(ErrorCode::invalid_input, "cannot merge reports of different campaigns (settings differ)");
    int i = s.at("settings").at("shard")[0], n = s.at("settings").at("shard")[1];
    total = n;
    if (!seen.insert(i).second) fail(ErrorCode::invalid_input, "shard {}/{} given twice", i, n);
    a.add(tally_from_json(s.at("original")));
    if (s.contains("protected")) b.add(tally_from_json(s.at("protected")));
  }
  nlohmann::json j = shards[0];
  j["settings"]["shard"] = {0, 1};
  j["settings"]["merged_shards"] = (int)seen.size();
  if ((int)seen.size() != total) j["settings"]["incomplete"] = fmt::format("{} of {} shards", seen.size(), total);
  j["original"] = tally_json(a);
  if (j.contains("protected")) {
    j["protected"] = tally_json(b);
    put_reductions(j, a, b);
  }
  j.erase("timing");
  return j;
}

}  // namespace rg

#include "faults/fault.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/file.h"

namespace rg {

const char* fault_kind_name(FaultKind k) {
  switch (k) {
    case FaultKind::bitflip: return "bitflip";
    case FaultKind::stuck_at_0: return "stuck-at-0";
    case FaultKind::stuck_at_1: return "stuck-at-1";
    case FaultKind::random_value: return "random-value";
  }
  return "?";
}

FaultKind parse_fault_kind(const std::string& s) {
  for (FaultKind k : {FaultKind::bitflip, FaultKind::stuck_at_0, FaultKind::stuck_at_1, FaultKind::random_value})
    if (s == fault_kind_name(k)) return k;
  fail(ErrorCode::invalid_input, "unknown fault kind '{}' (bitflip, stuck-at-0, stuck-at-1, random-value)", s);
}

float apply_fault(float v, const Fault& f) {
  if (f.kind == FaultKind::random_value) return f.value;
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int b : f.bits) {
    uint32_t m = 1u << b;
    if (f.kind == FaultKind::bitflip) u ^= m;
    else if (f.kind == FaultKind::stuck_at_0) u &= ~m;
    else u |= m;
  }
  std::memcpy(&v, &u, 4);
  return v;
}

std::vector<int> parse_bits(const std::string& s) {
  std::vector<int> r;
  if (s == "any") {
    for (int b = 0; b < 32; b++) r.push_back(b);
    return r;
  }
  int lo = -1, hi = -1;
  char dash = 0, extra = 0;
  std::istringstream in(s);
  if (s.find('-') == std::string::npos) {
    in >> lo;
    hi = lo;
  } else {
    in >> lo >> dash >> hi;
  }
  if (in.fail() || (in >> extra) || lo < 0 || hi > 31 || lo > hi)
    fail(ErrorCode::invalid_input, "--bits must be a bit 0-31, a range like 23-30, or 'any'; got '{}'", s);
  for (int b = lo; b <= hi; b++) r.push_back(b);
  return r;
}

void FaultSpec::validate() const {
  if (targets.empty()) fail(ErrorCode::invalid_input, "no fault target (weights, activations)");
  for (int b : bits)
    if (b < 0 || b > 31) fail(ErrorCode::invalid_input, "bit {} is out of range: float32 bits are 0-31", b);
  int n = bits.empty() ? 32 : (int)bits.size();
  if (flips < 1 || flips > n) fail(ErrorCode::invalid_input, "--flips must be 1..{} (the allowed bits), got {}", n, flips);
  if (kind != FaultKind::bitflip && flips != 1) fail(ErrorCode::invalid_input, "--flips applies to bitflip faults only");
}

std::string written_value(const std::map<std::string, std::string>& folded, std::string v) {
  for (auto f = folded.find(v); f != folded.end(); f = folded.find(v)) v = f->second;
  return v;
}

std::vector<FaultSite> fault_sites(const Graph& g, const FaultSpec& spec,
                                   const std::map<std::string, int64_t>& activation_elements,
                                   const std::map<std::string, std::string>& folded) {
  static const std::set<std::string> kLayers = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
  std::regex re;
  try {
    re = std::regex(spec.layers.empty() ? ".*" : spec.layers);
  } catch (const std::regex_error& e) {
    fail(ErrorCode::invalid_input, "--layers: '{}' is not a valid regular expression ({})", spec.layers, e.what());
  }
  std::vector<FaultSite> out;
  std::set<std::string> seen;
  for (const auto& n : g.nodes) {
    if (!n.domain.empty() || !kLayers.count(n.op_type)) continue;
    if (!std::regex_search(n.name, re) && !std::regex_match(n.op_type, re)) continue;
    for (FaultTarget t : spec.targets) {
      if (t == FaultTarget::weight) {
        for (int i = 1; i < (int)n.inputs.size(); i++) {
          if (i == 2 && !spec.biases) continue;
          const Tensor* w = g.initializer(n.inputs[i]);
          if (!w || w->dtype() != DType::f32 || !seen.insert(n.inputs[i]).second) continue;
          out.push_back({t, n.inputs[i], n.name, n.op_type, w->numel()});
        }
      } else if (!n.outputs.empty()) {
        std::string v = written_value(folded, n.outputs[0]);
        auto it = activation_elements.find(v);
        if (it != activation_elements.end() && it->second > 0) out.push_back({t, v, n.name, n.op_type, it->second});
      }
    }
  }
  if (out.empty())
    fail(ErrorCode::invalid_input, "no fault site: no float32 {}of a Conv/ConvTranspose/Gemm/MatMul{} in this model",
         spec.targets.size() > 1 ? "weight or output " : spec.targets[0] == FaultTarget::weight ? "weight " : "output ",
         spec.layers.empty() ? "" : " matching --layers '" + spec.layers + "'");
  return out;
}

double population_size(const std::vector<FaultSite>& sites, const FaultSpec& spec) {
  double elements = 0;
  for (const auto& s : sites) elements += (double)s.elements;
  if (spec.kind == FaultKind::random_value) return elements;
  double n = spec.bits.empty() ? 32 : (double)spec.bits.size(), choices = 1;
  for (int k = 0; k < spec.flips; k++) choices *= (n - k) / (k + 1);  // n choose flips
  return elements * choices;
}

std::vector<Fault> sample_faults(const std::vector<FaultSite>& sites, const FaultSpec& spec, int64_t n, uint64_t seed) {
  spec.validate();
  std::vector<int> bits = spec.bits;
  if (bits.empty())
    for (int b = 0; b < 32; b++) bits.push_back(b);
  std::vector<double> weights;
  for (const auto& s : sites) weights.push_back((double)s.elements);
  std::mt19937_64 rng(seed);
  std::discrete_distribution<size_t> pick_site(weights.begin(), weights.end());
  std::vector<Fault> out;
  for (int64_t k = 0; k < n; k++) {
    const FaultSite& s = sites[pick_site(rng)];
    Fault f;
    f.target = s.target;
    f.tensor = s.tensor;
    f.layer = s.layer;
    f.kind = spec.kind;
    f.index = std::uniform_int_distribution<int64_t>(0, s.elements - 1)(rng);
    if (spec.kind == FaultKind::random_value) {
      // Any finite float32, uniform over bit patterns: what a corrupted word looks like.
      uint32_t u;
      float v;
      do {
        u = (uint32_t)rng();
        std::memcpy(&v, &u, 4);
      } while (!std::isfinite(v));
      f.value = v;
    } else {
      std::vector<int> pool = bits;
      for (int j = 0; j < spec.flips; j++) {
        size_t at = std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng);
        f.bits.push_back(pool[at]);
        pool.erase(pool.begin() + (long)at);
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

void write_faults(const std::vector<Fault>& faults, const std::string& path) {
  std::string s;
  for (const auto& f : faults) {
    nlohmann::json j = {{"target", f.target == FaultTarget::weight ? "weight" : "activation"},
                        {"tensor", f.tensor}, {"layer", f.layer}, {"index", f.index},
                        {"kind", fault_kind_name(f.kind)}};
    if (f.kind == FaultKind::random_value) j["value"] = f.value;
    else j["bits"] = f.bits;
    s += j.dump() + "\n";
  }
  write_file(path, s);
}

std::vector<Fault> read_faults(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<Fault> out;
  std::string line;
  for (int no = 1; std::getline(in, line); no++) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      nlohmann::json j = nlohmann::json::parse(line);
      Fault f;
      std::string t = j.at("target").get<std::string>();
      if (t != "weight" && t != "activation") throw std::runtime_error("target must be weight or activation");
      f.target = t == "weight" ? FaultTarget::weight : FaultTarget::activation;
      f.tensor = j.at("tensor").get<std::string>();
      f.layer = j.value("layer", "");
      f.index = j.at("index").get<int64_t>();
      f.kind = parse_fault_kind(j.at("kind").get<std::string>());
      if (f.kind == FaultKind::random_value) f.value = j.at("value").get<float>();
      else f.bits = j.at("bits").get<std::vector<int>>();
      for (int b : f.bits)
        if (b < 0 || b > 31) throw std::runtime_error(fmt::format("bit {} is out of range 0-31", b));
      if (f.kind != FaultKind::random_value && f.bits.empty()) throw std::runtime_error("no bits");
      if (f.index < 0) throw std::runtime_error("negative index");
      out.push_back(std::move(f));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(ErrorCode::invalid_input, "{}:{}: not a fault: {}", path, no, e.what());
    }
  }
  if (out.empty()) fail(ErrorCode::invalid_input, "{}: no faults in the file", path);
  return out;
}

}  // namespace rg

#pragma once
// Fault models and fault lists. A fault is defined on the ONNX model (tensor name, flat
// element index, bits, kind), never on rangeguard's internal layouts, so a list written
// with --faults-out replays anywhere: in rangeguard, or in ONNX Runtime by editing that
// initializer. IEEE-754 float32 bit numbering: 0 = mantissa LSB, 23-30 exponent, 31 sign.
#include <cstdint>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rg {

enum class FaultKind { bitflip, stuck_at_0, stuck_at_1, random_value };
enum class FaultTarget { weight, activation };

struct Fault {
  FaultTarget target = FaultTarget::weight;
  std::string tensor;       // an initializer (weight) or a layer's output value (activation)
  std::string layer;        // the node that reads (weight) or writes (activation) it
  int64_t index = 0;        // flat element index (per sample, for activations)
  std::vector<int> bits;    // bit positions (bitflip, stuck-at)
  FaultKind kind = FaultKind::bitflip;
  float value = 0;          // random_value: the value written
};

const char* fault_kind_name(FaultKind k);
FaultKind parse_fault_kind(const std::string& s);  // bitflip|stuck-at-0|stuck-at-1|random-value

// The faulty value of `v` under `f`.
float apply_fault(float v, const Fault& f);

// One place a fault can land: a float32 tensor of a Conv/ConvTranspose/Gemm/MatMul.
struct FaultSite {
  FaultTarget target;
  std::string tensor, layer, op;
  int64_t elements = 0;  // per sample for activations
};

struct FaultSpec {
  std::vector<FaultTarget> targets{FaultTarget::weight};
  FaultKind kind = FaultKind::bitflip;
  std::vector<int> bits;   // allowed positions; empty = any (0-31)
  int flips = 1;           // bits per fault (bitflip)
  std::string layers;      // regex over node names or operator types; empty = all
  bool biases = false;     // weights: also the bias inputs
  void validate() const;
};

// "30", "23-30" or "any" -> positions; throws invalid_input on anything else.
std::vector<int> parse_bits(const std::string& s);

// The value a layer writes in the compiled model when its output is `v`: `v` itself, or
// where the passes folded it to (`folded`, Graph::folded_values, followed to the end).
std::string written_value(const std::map<std::string, std::string>& folded, std::string v);

// Every site of the spec in `g` (the model as loaded, before graph passes). Activation
// sites need `activation_elements`: value name -> elements per sample. A layer whose
// output the passes folded away (`folded`, Graph::folded_values: Conv -> BatchNorm) has
// its site on the value it writes in the compiled model (the BN's output).
std::vector<FaultSite> fault_sites(const Graph& g, const FaultSpec& spec,
                                   const std::map<std::string, int64_t>& activation_elements,
                                   const std::map<std::string, std::string>& folded);

// `n` faults drawn uniformly over the population (every element x every allowed bit
// combination), from `seed` alone: the same list on any machine and thread count.
std::vector<Fault> sample_faults(const std::vector<FaultSite>& sites, const FaultSpec& spec, int64_t n, uint64_t seed);

// Faults in the population: elements x bit choices (bitflip/stuck-at), elements otherwise.
double population_size(const std::vector<FaultSite>& sites, const FaultSpec& spec);

// JSON Lines, one fault per line.
void write_faults(const std::vector<Fault>& faults, const std::string& path);
std::vector<Fault> read_faults(const std::string& path);

}  // namespace rg

#pragma once
// Recognises activation functions in an ONNX graph, whether exported as one operator
// (Relu, HardSwish) or decomposed (Swish as x*Sigmoid(x), GELU as its Erf formula,
// HardSwish as x*HardSigmoid(x) or x*Clip(x+3,0,6)/6, Mish as x*Tanh(Softplus(x))).
//
// Two users share it: the runtime pass that rewrites decompositions into one node so the
// fast kernels can fuse them, and range supervision, which places its clamp after the
// whole pattern. Matching is structural and checks the constants, so a look-alike with
// other constants is not mistaken for an activation.
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rg {

struct ActivationMatch {
  std::string kind;        // relu, leakyrelu, prelu, elu, selu, celu, sigmoid, hardsigmoid, tanh,
                           // gelu, swish, hardswish, softplus, mish, relu6 (Clip)
  std::vector<int> nodes;  // indices of the nodes making up the pattern (the last produces output)
  std::string input;       // x
  std::string output;      // the value after the whole pattern
  std::string node_name;   // name of the node producing `output`
  bool tanh_approx = false;  // GELU written with the tanh approximation
};

// All activations in `g`, in graph order. Nodes that are part of a larger pattern (the
// Sigmoid inside a Swish) are not reported on their own.
std::vector<ActivationMatch> find_activations(const Graph& g);

// The tensor of an initializer or of a Constant node's `value`; null for anything else.
const Tensor* constant_tensor(const Graph& g, const std::string& value);

// The value of a scalar (single-element float) constant: an initializer or a Constant node.
std::optional<float> scalar_constant(const Graph& g, const std::string& value);

}  // namespace rg

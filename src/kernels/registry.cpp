#include <algorithm>
#include <cstring>

#include "kernels/ops.h"

namespace rg {
namespace {

const OpDef* const kOps[] = {
#define RG_OP(name) &kOp_##name,
#include "kernels/ops.def"
#undef RG_OP
};

const FastDef* const kFast[] = {
#define RG_FAST(name) &kFast_##name,
#include "kernels/fast_ops.def"
#undef RG_FAST
    nullptr,
};

}  // namespace

const OpDef* find_op(const std::string& domain, const std::string& op_type) {
  if (!domain.empty() && domain != "ai.onnx") return nullptr;
  for (const OpDef* d : kOps)
    if (op_type == d->op_type) return d;
  return nullptr;
}

const FastDef* find_fast(const std::string& op_type) {
  for (const FastDef* d : kFast)
    if (d && op_type == d->op_type) return d;
  return nullptr;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> r;
  for (const OpDef* d : kOps) r.push_back(d->op_type);
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace rg

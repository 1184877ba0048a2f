#include "kernels/dnnl/avx2_post.h"

#include <algorithm>
#include <cfloat>

#include "kernels/dnnl/dnnl_common.h"

namespace rg {
namespace {

Post clamp_post(int64_t k, float lo, float hi) { return {Post::clamp, std::vector<float>(k, lo), std::vector<float>(k, hi), {}}; }

// Runs of clamps become one per-channel clamp. With f(x) = min(max(x, a), b) and
// g(x) = min(max(x, c), d), g(f(x)) = min(max(x, g(a)), g(b)) for any a, b, c, d, and
// for NaN too (AVX max and min return their second operand then, so both give g(a)).
// A protected ReLU (ReLU, per-channel Max, per-channel Min) costs one max and one min.
void merge_clamps(std::vector<Post>& post) {
  std::vector<Post> out;
  for (Post& p : post) {
    if (p.kind != Post::clamp || out.empty() || out.back().kind != Post::clamp) {
      out.push_back(std::move(p));
      continue;
    }
    Post& q = out.back();
    for (size_t i = 0; i < q.lo.size(); i++) {
      q.lo[i] = std::min(std::max(q.lo[i], p.lo[i]), p.hi[i]);
      q.hi[i] = std::min(std::max(q.hi[i], p.lo[i]), p.hi[i]);
    }
  }
  post = std::move(out);
}

}  // namespace

bool build_post(const CompileCtx& c, int64_t k, std::vector<Post>& post, bool& has_sum) {
  using namespace dnnl_util;
  using A = dnnl::algorithm;
  dnnl::post_ops po;
  std::unordered_map<int, memory> args;
  if (!build_post_ops(c, true, 4, 1, po, has_sum, args)) return false;
  for (int i = 0; i < po.len(); i++) {
    if (po.kind(i) == dnnl::primitive::kind::sum) continue;
    if (po.kind(i) == dnnl::primitive::kind::eltwise) {
      float scale = 1, alpha = 0, beta = 0;
      A alg;
      po.get_params_eltwise(i, scale, alg, alpha, beta);
      if (alg == A::eltwise_relu && alpha == 0.f) post.push_back(clamp_post(k, 0.f, FLT_MAX));
      else if (alg == A::eltwise_relu) post.push_back({Post::leaky, {}, {}, std::vector<float>(k, alpha)});
      else if (alg == A::eltwise_clip || alg == A::eltwise_clip_v2) post.push_back(clamp_post(k, alpha, beta));
      else return false;
      continue;
    }
    if (po.kind(i) == dnnl::primitive::kind::prelu) {  // PRelu: slopes along axis 1
      const memory& m = args.at(DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_WEIGHTS);
      if (m.get_desc().dims()[1] != k) return false;
      const auto* v = static_cast<const float*>(m.get_data_handle());
      post.push_back({Post::leaky, {}, {}, std::vector<float>(v, v + k)});
      continue;
    }
    if (po.kind(i) != dnnl::primitive::kind::binary) return false;
    A alg;
    memory::desc md;
    po.get_params_binary(i, alg, md);  // per-channel Max/Min: bounds along axis 1
    if ((alg != A::binary_max && alg != A::binary_min) || md.dims()[1] != k) return false;
    const auto* v = static_cast<const float*>(args.at(DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1).get_data_handle());
    Post q = clamp_post(k, -FLT_MAX, FLT_MAX);
    std::copy(v, v + k, alg == A::binary_max ? q.lo.begin() : q.hi.begin());
    post.push_back(std::move(q));
  }
  merge_clamps(post);
  return true;
}

}  // namespace rg

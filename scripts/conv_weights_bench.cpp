// How much of a batch-1 convolution's time is waiting for its weights: each of oneDNN's
// implementations of resnet50's small-image layers, timed with one weight buffer (hot:
// it stays in cache between runs) and rotating over 48 copies (cold: each run streams its
// weights from memory, as in a whole model, where every layer's weights are new).
// Measured for docs/speed.md (why Winograd gives way on 7x7 images on AVX-512).
//
//   g++ -O2 -std=c++17 scripts/conv_weights_bench.cpp -o /tmp/conv_weights_bench -ldnnl
//   OMP_NUM_THREADS=1 /tmp/conv_weights_bench
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine eng(engine::kind::cpu, 0);
stream strm(eng);

memory zeroed(const memory::desc& d) {
  memory m(d, eng);
  std::memset(m.get_data_handle(), 0, d.get_size());
  return m;
}

// Median over 5 rounds of the mean time per run, in ms; each run takes the next of `weights`.
double time_ms(primitive& p, std::unordered_map<int, memory> args, const std::vector<memory>& weights) {
  const int runs = 48;
  std::vector<double> rounds;
  for (int r = 0; r < 6; r++) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; i++) {
      args[DNNL_ARG_WEIGHTS] = weights[i % weights.size()];
      p.execute(strm, args);
    }
    strm.wait();
    if (r > 0)  // the first round warms up
      rounds.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / runs);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

void layer(int ic, int oc, int hw, int k, int stride, algorithm alg) {
  int pad = k / 2, ohw = (hw + 2 * pad - k) / stride + 1;
  memory::desc src({1, ic, hw, hw}, dt::f32, tag::any), wei({oc, ic, k, k}, dt::f32, tag::any);
  memory::desc bias({oc}, dt::f32, tag::a), dst({1, oc, ohw, ohw}, dt::f32, tag::any);
  convolution_forward::desc d(prop_kind::forward_inference, alg, src, wei, bias, dst, {stride, stride}, {pad, pad},
                              {pad, pad});
  post_ops po;
  po.append_eltwise(1.f, algorithm::eltwise_relu, 0, 0);
  primitive_attr attr;
  attr.set_post_ops(po);
  convolution_forward::primitive_desc pd;
  try {
    pd = convolution_forward::primitive_desc(d, attr, eng);
  } catch (const dnnl::error&) {
    return;  // no Winograd for this shape or CPU
  }
  const double flops = 2.0 * ic * oc * k * k * ohw * ohw;
  do {
    std::string impl = pd.impl_info_str();
    if (impl.find("avx512") == std::string::npos) continue;  // the fast ones only
    convolution_forward conv(pd);
    std::vector<memory> copies;
    for (int i = 0; i < 48; i++) copies.push_back(zeroed(pd.weights_desc()));
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, zeroed(pd.src_desc())},
                                         {DNNL_ARG_BIAS, zeroed(pd.bias_desc())},
                                         {DNNL_ARG_DST, zeroed(pd.dst_desc())}};
    double hot = time_ms(conv, args, {copies[0]}), cold = time_ms(conv, args, copies);
    std::printf("%4d -> %4d, %dx%d on %2dx%-2d s%d  %-32s %6.1f MB  hot %.3f ms (%3.0f GFLOP/s)  cold %.3f ms\n", ic,
                oc, k, k, hw, hw, stride, impl.c_str(), pd.weights_desc().get_size() / 1e6, hot, flops / hot / 1e6,
                cold);
  } while (pd.next_impl());
}

}  // namespace

int main() {
  layer(64, 64, 56, 3, 1, algorithm::convolution_winograd);
  layer(128, 128, 28, 3, 1, algorithm::convolution_winograd);
  layer(512, 512, 7, 3, 1, algorithm::convolution_winograd);
  layer(512, 512, 7, 3, 1, algorithm::convolution_direct);
  layer(256, 256, 14, 3, 1, algorithm::convolution_winograd);
  layer(256, 256, 14, 3, 1, algorithm::convolution_direct);
  layer(512, 2048, 7, 1, 1, algorithm::convolution_direct);
  layer(2048, 512, 7, 1, 1, algorithm::convolution_direct);
}

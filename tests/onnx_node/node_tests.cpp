// Runs the ONNX backend node tests (Debian's libonnx-testdata) through a manifest.
// Every test either passes at the ONNX backend tolerances (rtol 1e-3, atol 1e-7) or is
// listed in expected_failures.txt with its reason. A listed test that now passes is also
// an error, so the list never goes stale (tract's node.txt discipline).
//
//   rg_node_tests [--data DIR]... [--manifest FILE] [--filter SUBSTR] [--reference] [-v]
// Without --data it runs Debian's node, pytorch-converted, pytorch-operator and simple suites.
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "io/file.h"
#include "ir/onnx_io.h"
#include "runtime/session.h"

using namespace rg;

namespace {

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> r;
  DIR* d = opendir(dir.c_str());
  if (!d) return r;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') r.push_back(e->d_name);
  closedir(d);
  std::sort(r.begin(), r.end());
  return r;
}

std::string compare(const Tensor& got, const Tensor& want, const std::string& name) {
  if (got.dtype() != want.dtype())
    return fmt::format("output '{}': dtype {} != expected {}", name, dtype_name(got.dtype()), dtype_name(want.dtype()));
  if (got.shape() != want.shape())
    return fmt::format("output '{}': shape {} != expected {}", name, shape_str(got.shape()), shape_str(want.shape()));
  std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  bool exact = !dtype_is_float(want.dtype());
  for (size_t i = 0; i < g.size(); i++) {
    if (std::isnan(w[i]) && std::isnan(g[i])) continue;
    if (std::isinf(w[i]) && g[i] == w[i]) continue;
    double tol = exact ? 0 : 1e-7 + 1e-3 * std::fabs(w[i]);
    if (!(std::fabs(g[i] - w[i]) <= tol))
      return fmt::format("output '{}' [{}]: {} != expected {}", name, i, g[i], w[i]);
  }
  return "";
}

// Returns "" on success, else the reason.
std::string run_test(const std::string& dir, bool reference) {
  try {
    Graph g = load_onnx(dir + "/model.onnx");
    SessionOptions o;
    o.fast_kernels = !reference;
    Session s(g, o);
    for (const auto& set : list_dir(dir)) {
      if (set.rfind("test_data_set_", 0) != 0) continue;
      std::string sd = dir + "/" + set;
      std::vector<Tensor> inputs;
      std::vector<Tensor> expected;
      for (size_t i = 0;; i++) {
        std::string p = sd + "/input_" + std::to_string(i) + ".pb";
        if (!file_exists(p)) break;
        inputs.push_back(load_tensor_pb(p));
      }
      for (size_t i = 0;; i++) {
        std::string p = sd + "/output_" + std::to_string(i) + ".pb";
        if (!file_exists(p)) break;
        expected.push_back(load_tensor_pb(p));
      }
      if (inputs.size() != s.graph().inputs.size())
        return fmt::format("{} input files for {} model inputs", inputs.size(), s.graph().inputs.size());
      // ONNX 1.12 stores bfloat16 test data as UINT16 TensorProtos: same bits, other tag.
      for (size_t i = 0; i < inputs.size(); i++)
        if (s.graph().inputs[i].dtype == DType::bf16 && inputs[i].dtype() == DType::u16)
          inputs[i] = Tensor::wrap(DType::bf16, inputs[i].shape(), inputs[i].raw(), std::make_shared<Tensor>(inputs[i]));
      for (size_t i = 0; i < expected.size() && i < s.graph().outputs.size(); i++)
        if (s.graph().outputs[i].dtype == DType::bf16 && expected[i].dtype() == DType::u16)
          expected[i] = Tensor::wrap(DType::bf16, expected[i].shape(), expected[i].raw(), std::make_shared<Tensor>(expected[i]));
      std::vector<Tensor> got = s.run(inputs);
      if (got.size() != expected.size())
        return fmt::format("{} outputs, expected {}", got.size(), expected.size());
      for (size_t i = 0; i < got.size(); i++) {
        std::string why = compare(got[i], expected[i], s.graph().outputs[i].name);
        if (!why.empty()) return set + ": " + why;
      }
    }
    return "";
  } catch (const std::exception& e) {
    std::string m = e.what();
    return m.empty() ? "exception" : m;
  }
}

std::map<std::string, std::string> read_manifest(const std::string& path) {
  std::map<std::string, std::string> m;
  std::ifstream f(path);
  if (!f) {
    std::cerr << "cannot read manifest " << path << "\n";
    std::exit(2);
  }
  std::string line;
  while (std::getline(f, line)) {
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t e = line.find_first_of(" \t", b);
    std::string name = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    std::string reason = e == std::string::npos ? "" : line.substr(e);
    size_t h = reason.find('#');
    reason = h == std::string::npos ? "(no reason given)" : reason.substr(h + 1);
    m[name] = reason;
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  // The suites Debian ships with data (data/real only lists models to download).
  const std::string base = "/usr/share/libonnx-testdata/data/";
  std::vector<std::string> dirs;
  std::string manifest = std::string(RG_SOURCE_DIR) + "/tests/onnx_node/expected_failures.txt";
  std::string filter;
  bool reference = false, verbose = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) dirs.push_back(argv[++i]);
    else if (a == "--manifest" && i + 1 < argc) manifest = argv[++i];
    else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else if (a == "--reference") reference = true;
    else if (a == "-v") verbose = true;
    else {
      std::cerr << "usage: rg_node_tests [--data DIR]... [--manifest FILE] [--filter SUBSTR] [--reference] [-v]\n";
      return 2;
    }
  }
  if (dirs.empty())
    for (const char* d : {"node", "pytorch-converted", "pytorch-operator", "simple"}) dirs.push_back(base + d);
  auto expected_fail = read_manifest(manifest);
  int passed = 0, failed = 0, listed = 0, stale = 0;
  std::vector<std::string> problems;
  std::vector<std::string> tests;
  for (const auto& d : dirs)
    for (const auto& t : list_dir(d)) tests.push_back(d + "/" + t);
  if (tests.empty()) {
    std::cerr << "no ONNX backend tests found (is libonnx-testdata installed?)\n";
    return 2;
  }
  for (const auto& path : tests) {
    std::string t = path.substr(path.rfind('/') + 1);
    if (!filter.empty() && t.find(filter) == std::string::npos) continue;
    std::string why = run_test(path, reference);
    bool listed_fail = expected_fail.count(t) != 0;
    if (why.empty() && !listed_fail) {
      passed++;
      if (verbose) std::cout << "PASS  " << t << "\n";
    } else if (why.empty()) {
      stale++;
      problems.push_back("UNEXPECTED PASS " + t + " (remove it from the manifest)");
    } else if (listed_fail) {
      listed++;
      if (verbose) std::cout << "XFAIL " << t << ":" << expected_fail[t] << "  [" << why << "]\n";
    } else {
      failed++;
      problems.push_back("FAIL  " + t + ": " + why);
    }
  }
  for (const auto& p : problems) std::cout << p << "\n";
  std::cout << fmt::format("onnx node tests ({}): {} passed, {} expected failures (listed), {} failed, {} unexpectedly passed\n",
                           reference ? "reference kernels" : "fast kernels", passed, listed, failed, stale);
  return failed || stale ? 1 : 0;
}

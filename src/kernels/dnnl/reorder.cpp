// Layout conversion between a fast kernel's layout and the ONNX layout.
#include "kernels/dnnl/dnnl_common.h"

namespace rg {
namespace {

using namespace dnnl_util;

class ReorderKernel : public Kernel {
 public:
  ReorderKernel(const memory::desc& from, const memory::desc& to)
      : src_(from, engine(), DNNL_MEMORY_NONE), dst_(to, engine(), DNNL_MEMORY_NONE), prim_(src_, dst_) {
    args_ = {{DNNL_ARG_FROM, src_}, {DNNL_ARG_TO, dst_}};
  }
  void run(KernelCtx& c) override {
    src_.set_data_handle(const_cast<void*>(c.input(0).raw()));
    dst_.set_data_handle(c.output(0).raw());
    prim_.execute(stream(), args_);
  }
  std::string impl() const override { return "dnnl:reorder"; }
  Layout out_layout(int) const override { return to_; }
  Layout to_ = plain_layout();

 private:
  memory src_, dst_;
  dnnl::reorder prim_;
  std::unordered_map<int, memory> args_;
};

}  // namespace

std::unique_ptr<Kernel> make_reorder(const Layout& from, const Layout& to, const Shape& shape, DType type) {
  memory::desc plain = plain_desc(shape, to_dt(type));
  memory::desc f = is_plain(from) ? plain : memory::desc(from);
  memory::desc t = is_plain(to) ? plain : memory::desc(to);
  auto k = std::make_unique<ReorderKernel>(f, t);
  k->to_ = to;
  return k;
}

}  // namespace rg

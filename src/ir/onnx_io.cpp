#include "ir/onnx_io.h"

#include <cstring>
#include <limits>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "io/file.h"

namespace rg {
namespace {

// Largest tensor we accept from a model file (elements). Far above any real model's
// single tensor; stops a hostile dims field from asking for petabytes.
constexpr int64_t kMaxElements = int64_t(1) << 36;

// Multiplies the element count `n` by a dimension `d` >= 0; false, leaving `n`, when the
// product would pass kMaxElements (and could overflow).
bool grow_count(int64_t& n, int64_t d) {
  if (d > 0 && n > kMaxElements / d) return false;
  n *= d;
  return true;
}

Shape tensor_dims(const onnx::TensorProto& t, const std::string& what) {
  Shape s;
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) fail(ErrorCode::invalid_model, "{}: tensor '{}' has a negative dimension", what, t.name());
    if (!grow_count(n, d)) fail(ErrorCode::invalid_model, "{}: tensor '{}' is implausibly large", what, t.name());
    s.push_back(d);
  }
  return s;
}

template <typename Src, typename Dst>
void copy_field(const google::protobuf::RepeatedField<Src>& f, Tensor& t, const std::string& what,
                const std::string& name) {
  if ((int64_t)f.size() != t.numel())
    fail(ErrorCode::invalid_model, "{}: tensor '{}' has {} values for {} elements", what, name,
         f.size(), t.numel());
  Dst* d = static_cast<Dst*>(t.raw());
  for (int i = 0; i < f.size(); i++) d[i] = (Dst)f.Get(i);
}

std::string external_bytes(const onnx::TensorProto& t, size_t want, const std::string& base_dir,
                           const std::string& what) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::atoll(kv.value().c_str());
    else if (kv.key() == "length") length = std::atoll(kv.value().c_str());
  }
  if (base_dir.empty())
    fail(ErrorCode::invalid_model, "{}: tensor '{}' uses external data, which needs a model file path", what, t.name());
  if (location.empty() || location[0] == '/' || location.find("..") != std::string::npos)
    fail(ErrorCode::invalid_model, "{}: tensor '{}' has an invalid external data location '{}'", what, t.name(), location);
  std::string path = base_dir + "/" + location;
  if (!file_exists(path))
    fail(ErrorCode::invalid_model, "{}: external data file '{}' for tensor '{}' is missing", what, path, t.name());
  std::string all = read_file(path);
  if (length < 0) length = (int64_t)all.size() - offset;
  if (offset < 0 || length < 0 || (size_t)offset > all.size() || (size_t)length > all.size() - (size_t)offset)
    fail(ErrorCode::invalid_model, "{}: external data for tensor '{}' lies outside '{}'", what, t.name(), path);
  if ((size_t)length != want)
    fail(ErrorCode::invalid_model, "{}: external data for tensor '{}' has {} bytes, expected {}", what,
         t.name(), length, want);
  return all.substr((size_t)offset, (size_t)length);
}

Tensor tensor_from_proto(const onnx::TensorProto& t, const std::string& base_dir, const std::string& what) {
  DType dt = dtype_from_onnx(t.data_type());
  if (dt == DType::undefined)
    fail(ErrorCode::unsupported_op, "{}: tensor '{}' has unsupported element type {}", what, t.name(), t.data_type());
  if (t.has_segment()) fail(ErrorCode::invalid_model, "{}: segmented tensor '{}' is not supported", what, t.name());
  Tensor out(dt, tensor_dims(t, what));
  size_t nbytes = out.nbytes();
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string b = external_bytes(t, nbytes, base_dir, what);
    if (nbytes) std::memcpy(out.raw(), b.data(), nbytes);
    return out;
  }
  if (t.has_raw_data()) {
    if (t.raw_data().size() != nbytes)
      fail(ErrorCode::invalid_model, "{}: tensor '{}' has {} raw bytes, expected {}", what, t.name(),
           t.raw_data().size(), nbytes);
    if (nbytes) std::memcpy(out.raw(), t.raw_data().data(), nbytes);
    return out;
  }
  const std::string& n = t.name();
  switch (dt) {
    case DType::f32: copy_field<float, float>(t.float_data(), out, what, n); break;
    case DType::f64: copy_field<double, double>(t.double_data(), out, what, n); break;
    case DType::i64: copy_field<int64_t, int64_t>(t.int64_data(), out, what, n); break;
    case DType::i32: copy_field<int32_t, int32_t>(t.int32_data(), out, what, n); break;
    case DType::i16: copy_field<int32_t, int16_t>(t.int32_data(), out, what, n); break;
    case DType::u16: case DType::f16: case DType::bf16:
      copy_field<int32_t, uint16_t>(t.int32_data(), out, what, n); break;
    case DType::i8: copy_field<int32_t, int8_t>(t.int32_data(), out, what, n); break;
    case DType::u8: case DType::boolean: copy_field<int32_t, uint8_t>(t.int32_data(), out, what, n); break;
    case DType::u32: copy_field<uint64_t, uint32_t>(t.uint64_data(), out, what, n); break;
    case DType::u64: copy_field<uint64_t, uint64_t>(t.uint64_data(), out, what, n); break;
    case DType::undefined: break;
  }
  return out;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(dtype_to_onnx(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(t.raw(), t.nbytes());
}

ValueInfo value_info_from_proto(const onnx::ValueInfoProto& v, const std::string& what) {
  ValueInfo vi;
  vi.name = v.name();
  if (!v.has_type()) return vi;
  if (!v.type().has_tensor_type())
    fail(ErrorCode::unsupported_op, "{}: value '{}' is not a tensor (sequences and maps are not supported)", what, v.name());
  const auto& tt = v.type().tensor_type();
  vi.dtype = dtype_from_onnx(tt.elem_type());
  if (tt.has_shape()) {
    vi.has_shape = true;
    int64_t n = 1;  // of the known dims: a declared shape no tensor could have is refused
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0) {
        if (!grow_count(n, d.dim_value()))
          fail(ErrorCode::invalid_model, "{}: value '{}' declares an implausibly large shape", what, v.name());
        vi.shape.push_back(d.dim_value());
        vi.dim_names.push_back("");
      } else {
        vi.shape.push_back(-1);
        vi.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
      }
    }
  }
  return vi;
}

void value_info_to_proto(const ValueInfo& vi, onnx::ValueInfoProto* p) {
  p->set_name(vi.name);
  auto* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_to_onnx(vi.dtype));
  if (!vi.has_shape) return;
  auto* sh = tt->mutable_shape();
  for (size_t i = 0; i < vi.shape.size(); i++) {
    auto* d = sh->add_dim();
    if (vi.shape[i] >= 0) d->set_dim_value(vi.shape[i]);
    else if (i < vi.dim_names.size() && !vi.dim_names[i].empty()) d->set_dim_param(vi.dim_names[i]);
  }
}

Attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& base_dir,
                               const std::string& what) {
  using AP = onnx::AttributeProto;
  Attribute r;
  int type = a.type();
  if (type == AP::UNDEFINED) {  // very old models leave type unset: infer from the field
    if (a.has_f()) type = AP::FLOAT;
    else if (a.has_i()) type = AP::INT;
    else if (a.has_s()) type = AP::STRING;
    else if (a.has_t()) type = AP::TENSOR;
    else if (a.has_g()) type = AP::GRAPH;
    else if (a.floats_size()) type = AP::FLOATS;
    else if (a.ints_size()) type = AP::INTS;
    else if (a.strings_size()) type = AP::STRINGS;
  }
  switch (type) {
    case AP::FLOAT: r.kind = Attribute::Kind::f; r.f = a.f(); break;
    case AP::INT: r.kind = Attribute::Kind::i; r.i = a.i(); break;
    case AP::STRING: r.kind = Attribute::Kind::s; r.s = a.s(); break;
    case AP::TENSOR: r.kind = Attribute::Kind::t; r.t = tensor_from_proto(a.t(), base_dir, what); break;
    case AP::FLOATS: r.kind = Attribute::Kind::floats_; r.floats.assign(a.floats().begin(), a.floats().end()); break;
    case AP::INTS: r.kind = Attribute::Kind::ints_; r.ints.assign(a.ints().begin(), a.ints().end()); break;
    case AP::STRINGS: r.kind = Attribute::Kind::strings_; r.strings.assign(a.strings().begin(), a.strings().end()); break;
    // Subgraphs (If/Loop/Scan bodies) and sparse tensors are kept as opaque markers; any
    // operator that needs them is unsupported and reported when the model is compiled.
    default: r.kind = Attribute::Kind::graph; break;
  }
  return r;
}

void attribute_to_proto(const std::string& name, const Attribute& a, onnx::AttributeProto* p) {
  using AP = onnx::AttributeProto;
  p->set_name(name);
  switch (a.kind) {
    case Attribute::Kind::f: p->set_type(AP::FLOAT); p->set_f(a.f); break;
    case Attribute::Kind::i: p->set_type(AP::INT); p->set_i(a.i); break;
    case Attribute::Kind::s: p->set_type(AP::STRING); p->set_s(a.s); break;
    case Attribute::Kind::t: p->set_type(AP::TENSOR); tensor_to_proto(a.t, "", p->mutable_t()); break;
    case Attribute::Kind::floats_: p->set_type(AP::FLOATS); for (float v : a.floats) p->add_floats(v); break;
    case Attribute::Kind::ints_: p->set_type(AP::INTS); for (int64_t v : a.ints) p->add_ints(v); break;
    case Attribute::Kind::strings_: p->set_type(AP::STRINGS); for (const auto& v : a.strings) p->add_strings(v); break;
    case Attribute::Kind::graph:
      fail(ErrorCode::unsupported_op, "cannot export a graph-valued attribute '{}'", name);
  }
}

}  // namespace

namespace {

onnx::ModelProto parse_model_proto(const void* data, size_t size, const std::string& what) {
  if (size > (size_t)std::numeric_limits<int>::max())
    fail(ErrorCode::invalid_model, "{}: file is over 2 GB; store the weights as ONNX external data", what);
  onnx::ModelProto m;
  if (!m.ParseFromArray(data, (int)size))
    fail(ErrorCode::invalid_model, "{}: not a valid ONNX model (protobuf parse failed: truncated or not ONNX)", what);
  return m;
}

Graph graph_from_proto(onnx::ModelProto& m, const std::string& base_dir, const std::string& what) {
  if (!m.has_graph())
    fail(ErrorCode::invalid_model, "{}: not a valid ONNX model (no graph)", what);

  Graph g;
  g.ir_version = m.ir_version();
  g.producer_name = m.producer_name();
  g.producer_version = m.producer_version();
  g.doc_string = m.doc_string();
  for (const auto& op : m.opset_import()) {
    std::string d = op.domain() == "ai.onnx" ? "" : op.domain();
    g.opsets[d] = op.version();
  }
  // Models from before opset_import existed (IR version 2) implicitly use opset 1.
  if (!g.opsets.count("")) g.opsets[""] = 1;
  for (const auto& kv : m.metadata_props()) g.metadata.emplace_back(kv.key(), kv.value());

  const auto& gp = m.graph();
  g.name = gp.name();
  if (gp.sparse_initializer_size())
    fail(ErrorCode::unsupported_op, "{}: sparse initializers are not supported", what);
  // Each initializer's bytes are released once copied, so a large model is not held
  // twice (file image aside) while loading.
  auto* mgraph = m.mutable_graph();
  for (int i = 0; i < mgraph->initializer_size(); i++) {
    onnx::TensorProto* t = mgraph->mutable_initializer(i);
    if (t->name().empty()) fail(ErrorCode::invalid_model, "{}: an initializer has no name", what);
    g.initializers[t->name()] = tensor_from_proto(*t, base_dir, what);
    t->clear_raw_data();
  }
  for (const auto& v : gp.input()) {
    if (g.initializers.count(v.name())) continue;  // IR < 4 lists initializers as inputs
    if (v.name().empty()) fail(ErrorCode::invalid_model, "{}: a graph input has no name", what);
    g.inputs.push_back(value_info_from_proto(v, what));
  }
  for (const auto& v : gp.output()) g.outputs.push_back(value_info_from_proto(v, what));
  for (const auto& v : gp.value_info()) {
    if (v.has_type() && !v.type().has_tensor_type()) continue;
    g.value_info[v.name()] = value_info_from_proto(v, what);
  }
  for (const auto& np : gp.node()) {
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) n.attrs[a.name()] = attribute_from_proto(a, base_dir, what);
    g.nodes.push_back(std::move(n));
  }
  g.sort_and_validate();
  return g;
}

}  // namespace

Graph parse_onnx(const void* data, size_t size, const std::string& base_dir, const std::string& what) {
  onnx::ModelProto m = parse_model_proto(data, size, what);
  return graph_from_proto(m, base_dir, what);
}

Graph load_onnx(const std::string& path) {
  onnx::ModelProto m;
  {
    std::string bytes = read_file(path);  // freed before the tensors are copied out
    m = parse_model_proto(bytes.data(), bytes.size(), path);
  }
  return graph_from_proto(m, dir_of(path), path);
}

std::string serialize_onnx(const Graph& g) {
  onnx::ModelProto m;
  m.set_ir_version(g.ir_version);
  m.set_producer_name(g.producer_name);
  m.set_producer_version(g.producer_version);
  if (!g.doc_string.empty()) m.set_doc_string(g.doc_string);
  for (const auto& kv : g.opsets) {
    auto* op = m.add_opset_import();
    op->set_domain(kv.first);
    op->set_version(kv.second);
  }
  for (const auto& kv : g.metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(kv.first);
    p->set_value(kv.second);
  }
  auto* gp = m.mutable_graph();
  gp->set_name(g.name.empty() ? "main" : g.name);
  for (const auto& kv : g.initializers) tensor_to_proto(kv.second, kv.first, gp->add_initializer());
  for (const auto& v : g.inputs) value_info_to_proto(v, gp->add_input());
  for (const auto& v : g.outputs) value_info_to_proto(v, gp->add_output());
  for (const auto& kv : g.value_info) value_info_to_proto(kv.second, gp->add_value_info());
  for (const auto& n : g.nodes) {
    auto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& kv : n.attrs) attribute_to_proto(kv.first, kv.second, np->add_attribute());
  }
  std::string out;
  if (!m.SerializeToString(&out)) fail(ErrorCode::internal, "ONNX serialisation failed");
  return out;
}

void save_onnx(const Graph& g, const std::string& path) { write_file(path, serialize_onnx(g)); }

void check_onnx(const Graph& g, bool full) {
  onnx::ModelProto m;
  if (!m.ParseFromString(serialize_onnx(g))) fail(ErrorCode::internal, "cannot re-read the exported model");
  try {
    onnx::checker::check_model(m);
    if (full) onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), {true, 1, false});
  } catch (const std::exception& e) {
    fail(ErrorCode::invalid_model, "the ONNX checker rejects the model: {}", e.what());
  }
}

Tensor load_tensor_pb(const std::string& path, std::string* name) {
  std::string bytes = read_file(path);
  onnx::TensorProto t;
  if (!t.ParseFromString(bytes)) fail(ErrorCode::io, "{}: not a TensorProto file", path);
  if (name) *name = t.name();
  return tensor_from_proto(t, dir_of(path), path);
}

}  // namespace rg

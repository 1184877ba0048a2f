#include "serve/protocol.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace rg::serve {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& msg) { throw HttpError(400, msg); }

// Largest element count a request may declare: far above any real tensor, low enough
// that count * element size cannot overflow and a lying shape is refused before any
// allocation (the body size limit is the real bound).
constexpr int64_t kMaxElements = int64_t(1) << 40;

template <typename T>
T integer_value(const json& v, const std::string& input) {
  if (!v.is_number_integer()) bad(fmt::format("input '{}': expected integers in data, got {}", input, v.type_name()));
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > (uint64_t)std::numeric_limits<T>::max()) bad(fmt::format("input '{}': value {} out of range", input, u));
    return (T)u;
  }
  int64_t s = v.get<int64_t>();
  if (s < (int64_t)std::numeric_limits<T>::min() || (s > 0 && (uint64_t)s > (uint64_t)std::numeric_limits<T>::max()))
    bad(fmt::format("input '{}': value {} out of range", input, s));
  return (T)s;
}

// Writes one JSON scalar into element k of t (of the request's datatype).
void put_element(const json& v, Tensor& t, int64_t k, const std::string& input) {
  auto number = [&] {
    if (!v.is_number()) bad(fmt::format("input '{}': expected numbers in data, got {}", input, v.type_name()));
    return v.get<double>();
  };
  switch (t.dtype()) {
    case DType::f32: t.data<float>()[k] = (float)number(); break;
    case DType::f64: t.data<double>()[k] = number(); break;
    case DType::f16: static_cast<uint16_t*>(t.raw())[k] = float_to_half((float)number()); break;
    case DType::bf16: static_cast<uint16_t*>(t.raw())[k] = float_to_bf16((float)number()); break;
    case DType::i8: t.data<int8_t>()[k] = integer_value<int8_t>(v, input); break;
    case DType::u8: t.data<uint8_t>()[k] = integer_value<uint8_t>(v, input); break;
    case DType::i16: t.data<int16_t>()[k] = integer_value<int16_t>(v, input); break;
    case DType::u16: t.data<uint16_t>()[k] = integer_value<uint16_t>(v, input); break;
    case DType::i32: t.data<int32_t>()[k] = integer_value<int32_t>(v, input); break;
    case DType::u32: t.data<uint32_t>()[k] = integer_value<uint32_t>(v, input); break;
    case DType::i64: t.data<int64_t>()[k] = integer_value<int64_t>(v, input); break;
    case DType::u64: t.data<uint64_t>()[k] = integer_value<uint64_t>(v, input); break;
    case DType::boolean:
      if (!v.is_boolean()) bad(fmt::format("input '{}': expected true/false in data, got {}", input, v.type_name()));
      t.data<bool>()[k] = v.get<bool>();
      break;
    default: bad(fmt::format("input '{}': unsupported datatype", input));
  }
}

// The protocol sends data flattened in row-major order; clients also send it nested
// (Triton accepts both), so nested arrays are walked in order. Depth is capped so a
// hostile body cannot exhaust the stack.
void fill(const json& v, Tensor& t, int64_t& k, int depth, const std::string& input) {
  if (v.is_array()) {
    if (depth > 32) bad(fmt::format("input '{}': data nested too deeply", input));
    for (const json& e : v) fill(e, t, k, depth + 1, input);
    return;
  }
  if (k >= t.numel()) bad(fmt::format("input '{}': more data elements than its shape {} holds", input, shape_str(t.shape())));
  put_element(v, t, k++, input);
}

Shape parse_shape(const json& s, const std::string& input) {
  if (!s.is_array()) bad(fmt::format("input '{}': 'shape' must be an array of integers", input));
  if (s.size() > 16) bad(fmt::format("input '{}': shape of rank {} is too large", input, s.size()));
  Shape shape;
  int64_t n = 1;
  for (const json& d : s) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      bad(fmt::format("input '{}': shape dims must be non-negative integers", input));
    int64_t v = d.get<int64_t>();
    if (v > kMaxElements || (v > 0 && n > kMaxElements / v)) bad(fmt::format("input '{}': shape is too large", input));
    n *= v;
    shape.push_back(v);
  }
  return shape;
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string names_of(const std::vector<ValueInfo>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x.name;
  return s;
}

json declared_shape(const ValueInfo& vi) { return vi.has_shape ? json(vi.shape) : json::array(); }

json data_array(const Tensor& t) {
  json::array_t a;
  a.reserve((size_t)t.numel());
  int64_t n = t.numel();
  switch (t.dtype()) {
    // NaN and Inf have no JSON spelling; they come back as null (binary output keeps them).
    case DType::f16:
      for (int64_t i = 0; i < n; i++) a.emplace_back(half_to_float(static_cast<const uint16_t*>(t.raw())[i]));
      break;
    case DType::bf16:
      for (int64_t i = 0; i < n; i++) a.emplace_back(bf16_to_float(static_cast<const uint16_t*>(t.raw())[i]));
      break;
    case DType::boolean:
      for (int64_t i = 0; i < n; i++) a.emplace_back(t.data<bool>()[i]);
      break;
    case DType::u64:
      for (int64_t i = 0; i < n; i++) a.emplace_back(t.data<uint64_t>()[i]);
      break;
    case DType::f32:
      for (int64_t i = 0; i < n; i++) a.emplace_back((double)t.data<float>()[i]);
      break;
    case DType::f64:
      for (int64_t i = 0; i < n; i++) a.emplace_back(t.data<double>()[i]);
      break;
    default:  // the other integer types
      for (int64_t v : t.to_int64s()) a.emplace_back(v);
  }
  return json(std::move(a));
}

}  // namespace

InferRequest decode_request(const std::string& body, std::optional<size_t> header_length, const Graph& model) {
  size_t json_len = header_length.value_or(body.size());
  if (json_len > body.size())
    bad(fmt::format("Inference-Header-Content-Length {} exceeds the body ({} bytes)", json_len, body.size()));
  json j = json::parse(body.begin(), body.begin() + (std::ptrdiff_t)json_len, nullptr, false);
  if (j.is_discarded()) bad("malformed JSON in the request body");
  if (!j.is_object()) bad("the request must be a JSON object");

  InferRequest r;
  if (const json* id = member(j, "id")) {
    if (!id->is_string()) bad("'id' must be a string");
    r.id = id->get<std::string>();
  }
  if (const json* p = member(j, "parameters")) {
    if (!p->is_object()) bad("'parameters' must be an object");
    if (const json* b = member(*p, "binary_data_output")) {
      if (!b->is_boolean()) bad("'binary_data_output' must be true or false");
      r.binary_default = b->get<bool>();
    }
  }

  const json* inputs = member(j, "inputs");
  if (!inputs || !inputs->is_array() || inputs->empty()) bad("'inputs' must be a non-empty array");
  std::vector<Tensor> by_index(model.inputs.size());
  size_t cursor = json_len;  // next unread binary byte
  for (const json& in : *inputs) {
    if (!in.is_object()) bad("each input must be an object");
    const json* name = member(in, "name");
    if (!name || !name->is_string()) bad("each input needs a string 'name'");
    std::string nm = name->get<std::string>();
    size_t idx = 0;
    while (idx < model.inputs.size() && model.inputs[idx].name != nm) idx++;
    if (idx == model.inputs.size())
      bad(fmt::format("unknown input '{}'; the model's inputs are: {}", nm, names_of(model.inputs)));
    if (by_index[idx].defined()) bad(fmt::format("input '{}' given twice", nm));
    const ValueInfo& vi = model.inputs[idx];

    const json* dt = member(in, "datatype");
    if (!dt || !dt->is_string()) bad(fmt::format("input '{}': needs a string 'datatype'", nm));
    DType type = dtype_from_v2(dt->get<std::string>());
    if (type == DType::undefined) bad(fmt::format("input '{}': unknown datatype '{}'", nm, dt->get<std::string>()));
    bool widen = type == DType::f16 && vi.dtype == DType::f32;
    if (type != vi.dtype && !widen)
      bad(fmt::format("input '{}': datatype {} does not match the model's {}", nm, dt->get<std::string>(),
                      dtype_to_v2(vi.dtype)));
    const json* sh = member(in, "shape");
    if (!sh) bad(fmt::format("input '{}': needs a 'shape'", nm));
    Shape shape = parse_shape(*sh, nm);
    // Checked before the data is read, so a wrong shape costs nothing.
    bool ok = !vi.has_shape || shape.size() == vi.shape.size();
    for (size_t d = 0; ok && vi.has_shape && d < shape.size(); d++) ok = vi.shape[d] < 0 || vi.shape[d] == shape[d];
    if (!ok) bad(fmt::format("input '{}': expected shape {}, got {}", nm, vi.shape_text(), shape_str(shape)));

    Tensor t(type, shape);
    const json* params = member(in, "parameters");
    const json* bsize = params && params->is_object() ? member(*params, "binary_data_size") : nullptr;
    if (bsize) {
      if (!bsize->is_number_unsigned()) bad(fmt::format("input '{}': 'binary_data_size' must be a non-negative integer", nm));
      uint64_t n = bsize->get<uint64_t>();
      if (n != t.nbytes())
        bad(fmt::format("input '{}': binary_data_size {} but shape {} of {} needs {} bytes", nm, n, shape_str(shape),
                        dtype_to_v2(type), t.nbytes()));
      if (body.size() - cursor < n) bad(fmt::format("input '{}': binary data runs past the end of the body", nm));
      if (n) std::memcpy(t.raw(), body.data() + cursor, n);
      if (type == DType::boolean)  // a byte other than 0/1 is not a valid bool
        for (int64_t k = 0; k < t.numel(); k++) static_cast<uint8_t*>(t.raw())[k] = static_cast<uint8_t*>(t.raw())[k] != 0;
      cursor += n;
    } else {
      const json* data = member(in, "data");
      if (!data) bad(fmt::format("input '{}': needs 'data' or a binary_data_size parameter", nm));
      int64_t k = 0;
      fill(*data, t, k, 0, nm);
      if (k != t.numel())
        bad(fmt::format("input '{}': {} data elements for shape {} ({} expected)", nm, k, shape_str(shape), t.numel()));
    }
    if (widen) {
      Tensor f(DType::f32, shape);
      const uint16_t* h = static_cast<const uint16_t*>(t.raw());
      for (int64_t k = 0; k < t.numel(); k++) f.data<float>()[k] = half_to_float(h[k]);
      t = f;
    }
    by_index[idx] = t;
  }
  for (size_t i = 0; i < by_index.size(); i++)
    if (!by_index[i].defined()) bad(fmt::format("missing input '{}'", model.inputs[i].name));
  if (cursor != body.size()) bad(fmt::format("{} bytes of binary data follow the inputs unclaimed", body.size() - cursor));
  r.inputs = std::move(by_index);

  if (const json* outs = member(j, "outputs")) {
    if (!outs->is_array()) bad("'outputs' must be an array");
    for (const json& o : *outs) {
      if (!o.is_object() || !member(o, "name") || !o["name"].is_string()) bad("each requested output needs a string 'name'");
      RequestedOutput ro{o["name"].get<std::string>(), r.binary_default};
      bool known = false;
      for (const auto& mo : model.outputs) known = known || mo.name == ro.name;
      if (!known) bad(fmt::format("unknown output '{}'; the model's outputs are: {}", ro.name, names_of(model.outputs)));
      if (const json* p = member(o, "parameters"); p && p->is_object())
        if (const json* b = member(*p, "binary_data")) {
          if (!b->is_boolean()) bad(fmt::format("output '{}': 'binary_data' must be true or false", ro.name));
          ro.binary = b->get<bool>();
        }
      r.outputs.push_back(ro);
    }
  }
  return r;
}

EncodedResponse encode_response(const InferRequest& req, const std::string& model_name,
                                const std::vector<Tensor>& outputs, const Graph& model) {
  std::vector<RequestedOutput> want = req.outputs;
  if (want.empty())
    for (const auto& o : model.outputs) want.push_back({o.name, req.binary_default});
  json j;
  j["model_name"] = model_name;
  j["model_version"] = "1";
  if (req.id) j["id"] = *req.id;
  json outs = json::array();
  std::string binary;
  for (const auto& w : want) {
    size_t i = 0;
    while (model.outputs[i].name != w.name) i++;  // names were checked when decoding
    const Tensor& t = outputs.at(i);
    json o = {{"name", w.name}, {"datatype", dtype_to_v2(t.dtype())}, {"shape", t.shape()}};
    if (w.binary) {
      o["parameters"] = {{"binary_data_size", t.nbytes()}};
      binary.append(static_cast<const char*>(t.raw()), t.nbytes());
    } else {
      o["data"] = data_array(t);
    }
    outs.push_back(std::move(o));
  }
  j["outputs"] = std::move(outs);
  EncodedResponse r;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (!binary.empty() || std::any_of(want.begin(), want.end(), [](const RequestedOutput& w) { return w.binary; })) {
    r.header_length = r.body.size();
    r.body += binary;
  }
  return r;
}

std::string model_metadata(const std::string& model_name, const Graph& model) {
  json j = {{"name", model_name}, {"versions", {"1"}}, {"platform", "onnx"}};
  for (const char* kind : {"inputs", "outputs"}) {
    json list = json::array();
    for (const auto& v : std::string(kind) == "inputs" ? model.inputs : model.outputs)
      list.push_back({{"name", v.name}, {"datatype", dtype_to_v2(v.dtype)}, {"shape", declared_shape(v)}});
    j[kind] = list;
  }
  return j.dump();
}

}  // namespace rg::serve

#include "util/json_decode.h"

#include <cmath>
#include <limits>
#include <strings.h>

namespace cdc {

const JsonDecoder::json* JsonDecoder::Find(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it != obj.end()) return it->is_null() ? nullptr : &*it;
  for (auto i = obj.begin(); i != obj.end(); ++i) {
    if (i.key().size() == key.size() && strncasecmp(i.key().data(), key.data(), key.size()) == 0) {
      return i->is_null() ? nullptr : &*i;
    }
  }
  return nullptr;
}

std::string JsonDecoder::TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "bool";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "int";
    case json::value_t::number_float: return "float";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    default: return "unknown";
  }
}

void JsonDecoder::AddError(const std::string& path, const std::string& expected, const json& got) {
  errors_.push_back("'" + path + "' expected type '" + expected + "', got '" + TypeName(got) + "'");
}

std::string JsonDecoder::ErrorText() const {
  std::string out;
  for (const auto& e : errors_) {
    if (!out.empty()) out += "; ";
    out += e;
  }
  return out;
}

void JsonDecoder::String(const json& obj, std::string_view key, const std::string& path, std::string* out) {
  const json* v = Find(obj, key);
  if (!v) return;
  if (!v->is_string()) return AddError(path, "string", *v);
  *out = v->get<std::string>();
}

void JsonDecoder::Int(const json& obj, std::string_view key, const std::string& path, int64_t* out) {
  const json* v = Find(obj, key);
  if (!v) return;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      errors_.push_back("'" + path + "' is out of range");
      return;
    }
    *out = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    *out = v->get<int64_t>();
  } else if (v->is_number_float()) {
    double d = v->get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 9.2e18) {
      errors_.push_back("'" + path + "' is out of range");
      return;
    }
    *out = static_cast<int64_t>(d);  // fractions are truncated, as the official decoder does
  } else {
    AddError(path, "int", *v);
  }
}

void JsonDecoder::Int(const json& obj, std::string_view key, const std::string& path, int* out) {
  int64_t wide = *out;
  size_t before = errors_.size();
  Int(obj, key, path, &wide);
  if (errors_.size() != before) return;
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
    errors_.push_back("'" + path + "' is out of range");
    return;
  }
  *out = static_cast<int>(wide);
}

void JsonDecoder::Bool(const json& obj, std::string_view key, const std::string& path, bool* out) {
  const json* v = Find(obj, key);
  if (!v) return;
  if (!v->is_boolean()) return AddError(path, "bool", *v);
  *out = v->get<bool>();
}

const JsonDecoder::json* JsonDecoder::Object(const json& obj, std::string_view key, const std::string& path) {
  const json* v = Find(obj, key);
  if (!v) return nullptr;
  if (!v->is_object()) {
    AddError(path, "object", *v);
    return nullptr;
  }
  return v;
}

const JsonDecoder::json* JsonDecoder::Array(const json& obj, std::string_view key, const std::string& path) {
  const json* v = Find(obj, key);
  if (!v) return nullptr;
  if (!v->is_array()) {
    AddError(path, "array", *v);
    return nullptr;
  }
  return v;
}

}  // namespace cdc

// JsonDecoder: reads typed fields out of client JSON the way the official server's
// decoder does (exact key, then a case-insensitive match; unknown keys ignored; numbers
// truncated into integers; no string-to-number coercion), collecting one error per
// mismatched field so the reply can name every bad field at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace cdc {

class JsonDecoder {
 public:
  using json = nlohmann::json;

  // Returns the member `key` of `obj` (exact match first, then case-insensitive), or nullptr.
  // A JSON null counts as absent.
  static const json* Find(const json& obj, std::string_view key);

  // Each reader leaves `out` untouched when the key is absent and records an error naming
  // `path` when the value has the wrong type.
  void String(const json& obj, std::string_view key, const std::string& path, std::string* out);
  void Int(const json& obj, std::string_view key, const std::string& path, int64_t* out);
  void Int(const json& obj, std::string_view key, const std::string& path, int* out);
  void Bool(const json& obj, std::string_view key, const std::string& path, bool* out);
  // An object; returns nullptr (and records an error on a type mismatch) otherwise.
  const json* Object(const json& obj, std::string_view key, const std::string& path);
  const json* Array(const json& obj, std::string_view key, const std::string& path);

  void AddError(const std::string& path, const std::string& expected, const json& got);
  bool ok() const { return errors_.empty(); }
  // "'a.b' expected type 'int', got 'string'; ..." in document order.
  std::string ErrorText() const;

  static std::string TypeName(const json& v);

 private:
  std::vector<std::string> errors_;
};

}  // namespace cdc

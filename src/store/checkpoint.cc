#include "store/checkpoint.h"

#include <nlohmann/json.hpp>

namespace cdc {

std::string EncodeCheckpoint(int64_t offset, uint64_t ts) {
  return nlohmann::json({{"offset", offset}, {"ts", ts}}).dump();
}

bool DecodeCheckpoint(const std::string& data, int64_t* offset, uint64_t* ts) {
  auto j = nlohmann::json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("offset") || !j.contains("ts")) return false;
  if (!j["offset"].is_number_integer() || !j["ts"].is_number_unsigned()) return false;
  *offset = j["offset"].get<int64_t>();
  *ts = j["ts"].get<uint64_t>();
  return true;
}

}  // namespace cdc

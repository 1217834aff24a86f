#include "task/pipeline.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace cdc {

using json = nlohmann::json;

std::string FailedChangeToJson(const FailedChange& c) {
  json j = {{"db", c.db},           {"collection", c.collection}, {"operation", c.operation},
            {"position", c.position}, {"message", c.message},       {"time", c.time_ms}};
  // Replace, not throw, should the target's answer hold bytes that are not UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<FailedChange> FailedChangeFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  FailedChange c;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"db", &c.db}, {"collection", &c.collection},
                          {"operation", &c.operation}, {"position", &c.position}, {"message", &c.message}}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    *out = it->get<std::string>();
  }
  auto time = j.find("time");
  if (time == j.end() || !time->is_number_integer()) return std::nullopt;
  c.time_ms = time->get<int64_t>();
  return c;
}

void FillLag(std::vector<ChannelProgress>* channels, int64_t now_ms) {
  for (auto& c : *channels) {
    if (c.replicate || c.ts == 0) continue;
    const int64_t applied_ms = static_cast<int64_t>(c.ts >> 18);  // physical part of a hybrid ts
    c.lag_ms = std::max<int64_t>(0, now_ms - applied_ms);
  }
}

}  // namespace cdc

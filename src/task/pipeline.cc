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

Status ValidateVerifyOptions(const TaskSpec& spec, const VerifyOptions& options) {
  if (options.level != "count" && options.level != "keys" && options.level != "rows") {
    return InvalidArgument("level must be one of count, keys, rows; got '" + options.level + "'");
  }
  if (options.repair && options.level == "count") {
    return InvalidArgument("repair needs the keys or rows level: the count level does not know which keys differ");
  }
  for (size_t i = 0; i < options.collections.size(); ++i) {
    const auto& [db_in, name] = options.collections[i];
    const std::string where = "collections[" + std::to_string(i) + "]";
    if (name.empty()) return InvalidArgument(where + ".name is empty: name the collection to verify");
    if (name == "*" || db_in == "*") {
      return InvalidArgument(where + ": name one collection, not `*`; leave `collections` out to verify the task's "
                             "whole scope");
    }
    const std::string db = db_in.empty() ? "default" : db_in;
    if (!spec.CollectionInScope(db, name)) {
      return InvalidArgument("the collection " + db + "." + name + " is not in the scope of the task, task_id: " +
                             spec.task_id);
    }
  }
  return Status::Ok();
}

}  // namespace cdc

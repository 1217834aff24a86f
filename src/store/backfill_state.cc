#include "store/backfill_state.h"

#include <nlohmann/json.hpp>

namespace cdc {

namespace {
constexpr const char* kChannelPrefix = "backfill/";
}

ChannelPosition EncodeBackfillState(const BackfillState& s) {
  nlohmann::json j = {{"db", s.db},
                      {"name", s.name},
                      {"state", s.state},
                      {"reason", s.reason},
                      {"partition_index", s.partition_index},
                      {"rows_copied", s.rows_copied},
                      {"rows_estimated", s.rows_estimated},
                      {"started_ms", s.started_ms},
                      {"finished_ms", s.finished_ms}};
  if (s.last_pk) {
    if (const auto* i = std::get_if<int64_t>(&*s.last_pk)) {
      j["last_pk"] = *i;
    } else {
      j["last_pk_str"] = std::get<std::string>(*s.last_pk);
    }
  }
  if (s.upper_pk) {
    if (const auto* i = std::get_if<int64_t>(&*s.upper_pk)) {
      j["upper_pk"] = *i;
    } else {
      j["upper_pk_str"] = std::get<std::string>(*s.upper_pk);
    }
  }
  return ChannelPosition{kBackfillId, kChannelPrefix + std::to_string(s.collection_id), j.dump()};
}

std::optional<BackfillState> DecodeBackfillState(const ChannelPosition& p) {
  const std::string prefix = kChannelPrefix;
  if (p.collection_id != kBackfillId || p.channel.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(p.data);
    BackfillState s;
    s.collection_id = std::stoll(p.channel.substr(prefix.size()));
    s.db = j.value("db", "");
    s.name = j.value("name", "");
    s.state = j.value("state", "pending");
    s.reason = j.value("reason", "");
    s.partition_index = j.value("partition_index", 0);
    s.rows_copied = j.value("rows_copied", int64_t{0});
    s.rows_estimated = j.value("rows_estimated", int64_t{-1});
    s.started_ms = j.value("started_ms", int64_t{0});
    s.finished_ms = j.value("finished_ms", int64_t{0});
    if (j.contains("last_pk")) s.last_pk = j["last_pk"].get<int64_t>();
    if (j.contains("last_pk_str")) s.last_pk = j["last_pk_str"].get<std::string>();
    if (j.contains("upper_pk")) s.upper_pk = j["upper_pk"].get<int64_t>();
    if (j.contains("upper_pk_str")) s.upper_pk = j["upper_pk_str"].get<std::string>();
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<BackfillState> BackfillStatesOf(const std::vector<ChannelPosition>& positions) {
  std::vector<BackfillState> out;
  for (const auto& p : positions) {
    if (auto s = DecodeBackfillState(p)) out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace cdc

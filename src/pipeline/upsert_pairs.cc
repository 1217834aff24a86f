#include "pipeline/upsert_pairs.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <variant>

#include "decode/decoder.h"

namespace cdc::pipeline {

namespace {

bool Is(const decode::Event& e, decode::MsgType t) { return e.msg_type == static_cast<int32_t>(t); }

// Primary keys as strings ("i<n>" or "s<text>"), so int and varchar keys compare alike.
void AppendKeys(const decode::PrimaryKeys& pks, std::vector<std::string>* out) {
  if (const auto* ints = std::get_if<std::vector<int64_t>>(&pks)) {
    for (int64_t k : *ints) out->push_back("i" + std::to_string(k));
  } else {
    for (const auto& k : std::get<std::vector<std::string>>(pks)) out->push_back("s" + k);
  }
}

}  // namespace

UpsertPairs FindUpsertPairs(const std::vector<source::RoutedEvent>& events) {
  // A partition-key collection's upsert has one Insert per partition the rows hashed to and
  // one Delete of all their keys, so the Inserts of one slot are matched as a group.
  UpsertPairs pairs;
  using Slot = std::tuple<int64_t, std::string, uint64_t>;  // collection, vchannel, ts
  std::multimap<Slot, const decode::Event*> deletes;
  for (const auto& r : events) {
    const auto& e = r.event;
    if (Is(e, decode::MsgType::kDelete) && e.begin_ts == e.end_ts) deletes.emplace(Slot{e.collection_id, e.vchannel, e.end_ts}, &e);
  }
  if (deletes.empty()) return pairs;
  std::map<Slot, std::pair<std::vector<const decode::Event*>, std::vector<std::string>>> inserts;
  for (const auto& r : events) {
    const auto& e = r.event;
    if (!Is(e, decode::MsgType::kInsert) || e.begin_ts != e.end_ts || !r.collection) continue;
    const Slot slot{e.collection_id, e.vchannel, e.end_ts};
    if (!deletes.count(slot)) continue;
    auto pks = decode::PrimaryKeysOf(e, r.collection->pk_field_id);
    if (!pks.ok()) continue;
    auto& [group, keys] = inserts[slot];
    group.push_back(&e);
    AppendKeys(*pks, &keys);
  }
  for (auto& [slot, group] : inserts) {
    std::sort(group.second.begin(), group.second.end());
    auto [lo, hi] = deletes.equal_range(slot);
    for (auto it = lo; it != hi; ++it) {
      auto pks = decode::PrimaryKeysOf(*it->second, 0);
      if (!pks.ok()) continue;
      std::vector<std::string> deleted;
      AppendKeys(*pks, &deleted);
      std::sort(deleted.begin(), deleted.end());
      if (deleted != group.second) continue;
      pairs.inserts.insert(group.first.begin(), group.first.end());
      pairs.deletes.insert(it->second);
      break;
    }
  }
  return pairs;
}

}  // namespace cdc::pipeline

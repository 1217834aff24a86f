#include "pipeline/upsert_pairs.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "decode/decoder.h"
#include "msg.pb.h"

namespace cdc::pipeline {

namespace msgpb = milvus::proto::msg;
namespace schemapb = milvus::proto::schema;

namespace {

bool Is(const decode::Event& e, decode::MsgType t) { return e.msg_type == static_cast<int32_t>(t); }

// Primary keys as sorted strings ("i<n>" or "s<text>"), so int and varchar keys compare alike.
std::vector<std::string> Keys(const schemapb::IDs& ids) {
  std::vector<std::string> out;
  for (int64_t k : ids.int_id().data()) out.push_back("i" + std::to_string(k));
  for (const auto& k : ids.str_id().data()) out.push_back("s" + k);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> InsertKeys(const msgpb::InsertRequest& req, int64_t pk_field_id) {
  schemapb::IDs ids;
  for (const auto& fd : req.fields_data()) {
    if (fd.field_id() != pk_field_id || !fd.has_scalars()) continue;
    if (fd.scalars().has_long_data()) *ids.mutable_int_id()->mutable_data() = fd.scalars().long_data().data();
    if (fd.scalars().has_string_data()) *ids.mutable_str_id()->mutable_data() = fd.scalars().string_data().data();
  }
  return Keys(ids);
}

std::vector<std::string> DeleteKeys(const msgpb::DeleteRequest& req) {
  if (req.has_primary_keys()) return Keys(req.primary_keys());
  schemapb::IDs ids;
  *ids.mutable_int_id()->mutable_data() = req.int64_primary_keys();
  return Keys(ids);
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
    const auto* insert = decode::PayloadAs<msgpb::InsertRequest>(e);
    if (!insert || !deletes.count(slot)) continue;
    auto& [group, keys] = inserts[slot];
    group.push_back(&e);
    auto more = InsertKeys(*insert, r.collection->pk_field_id);
    keys.insert(keys.end(), more.begin(), more.end());
  }
  for (auto& [slot, group] : inserts) {
    std::sort(group.second.begin(), group.second.end());
    auto [lo, hi] = deletes.equal_range(slot);
    for (auto it = lo; it != hi; ++it) {
      const auto* del = decode::PayloadAs<msgpb::DeleteRequest>(*it->second);
      if (!del || DeleteKeys(*del) != group.second) continue;
      pairs.inserts.insert(group.first.begin(), group.first.end());
      pairs.deletes.insert(it->second);
      break;
    }
  }
  return pairs;
}

}  // namespace cdc::pipeline

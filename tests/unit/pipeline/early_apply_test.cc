// Early apply (issue 17): which events PackAssembler::TakeEarly offers before their tick, which
// closed packs MisorderedSince sends back for a second, ordered pass, and a model check that
// the two together leave a target equal to the source for shuffled logs of inserts, deletes
// and upserts of a few keys.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "decode/decoder.h"
#include "decode/pack_assembler.h"
#include "msg.pb.h"
#include "pipeline/change_applier.h"
#include "pipeline/upsert_pairs.h"

namespace cdc::pipeline {
namespace {

namespace msgpb = milvus::proto::msg;
using decode::Event;
using decode::MsgType;

constexpr char kChannel[] = "by-dev-rootcoord-dml_0";
constexpr int64_t kPkField = 100;

std::shared_ptr<const source::CollectionMeta> Meta() {
  static auto meta = [] {
    auto m = std::make_shared<source::CollectionMeta>();
    m->id = 7;
    m->name = "c";
    m->db_name = "default";
    m->pk_field_id = kPkField;
    m->pchannels = {kChannel};
    return m;
  }();
  return meta;
}

int64_t next_offset = 1;

Event Base(MsgType type, int64_t msg_id, uint64_t ts) {
  Event e;
  e.msg_type = static_cast<int32_t>(type);
  e.msg_id = msg_id;
  e.begin_ts = e.end_ts = ts;
  e.position = decode::Position{kChannel, next_offset++, 0};
  e.collection_id = Meta()->id;
  e.vchannel = std::string(kChannel) + "_7v0";
  return e;
}

// An Insert of `keys` whose value column (field 101) holds `value`; `upsert_half`: the Insert
// of an Upsert, which Milvus 2.3 writes with base.timestamp 0.
Event Insert(int64_t msg_id, uint64_t ts, const std::vector<int64_t>& keys, int64_t value = 0,
             bool upsert_half = false) {
  Event e = Base(MsgType::kInsert, msg_id, ts);
  msgpb::InsertRequest req;
  req.mutable_base()->set_msgid(msg_id);
  if (!upsert_half) req.mutable_base()->set_timestamp(ts);
  req.set_collectionid(Meta()->id);
  req.set_shardname(e.vchannel);
  auto* pk = req.add_fields_data();
  pk->set_field_id(kPkField);
  pk->set_type(milvus::proto::schema::DataType::Int64);
  auto* val = req.add_fields_data();
  val->set_field_id(kPkField + 1);
  val->set_type(milvus::proto::schema::DataType::Int64);
  for (int64_t k : keys) {
    pk->mutable_scalars()->mutable_long_data()->add_data(k);
    val->mutable_scalars()->mutable_long_data()->add_data(value);
    req.add_timestamps(ts);
    req.add_rowids(k);
  }
  req.set_num_rows(keys.size());
  e.row_count = static_cast<int64_t>(keys.size());
  e.payload = std::make_shared<const msgpb::InsertRequest>(req);
  return e;
}

Event Delete(int64_t msg_id, uint64_t ts, const std::vector<int64_t>& keys) {
  Event e = Base(MsgType::kDelete, msg_id, ts);
  msgpb::DeleteRequest req;
  req.mutable_base()->set_msgid(msg_id);
  req.set_collectionid(Meta()->id);
  req.set_shardname(e.vchannel);
  for (int64_t k : keys) {
    req.mutable_primary_keys()->mutable_int_id()->add_data(k);
    req.add_timestamps(ts);
  }
  req.set_num_rows(keys.size());
  e.row_count = static_cast<int64_t>(keys.size());
  e.payload = std::make_shared<const msgpb::DeleteRequest>(req);
  return e;
}

Event Tick(uint64_t ts) {
  Event e = Base(MsgType::kTimeTick, 0, ts);
  e.collection_id = 0;
  return e;
}

std::vector<int64_t> Ids(const std::vector<Event>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.msg_id);
  return out;
}

std::vector<int64_t> Offer(decode::PackAssembler& a) {
  auto p = a.TakeEarly();
  if (!p) return {};
  EXPECT_TRUE(p->open);
  return Ids(p->events);
}

decode::Pack AddAll(decode::PackAssembler& a, std::vector<Event> events) {
  std::optional<decode::Pack> pack;
  for (auto& e : events) {
    auto r = a.Add(std::move(e));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok() && r->has_value()) pack = std::move(**r);
  }
  return pack.value_or(decode::Pack{});
}

TEST(TakeEarlyTest, DeletesAndPlainInsertsGoAtOnce) {
  decode::PackAssembler a(kChannel);
  AddAll(a, {Delete(1, 10, {1})});
  EXPECT_TRUE(a.early_ready());
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{1}));
  AddAll(a, {Insert(2, 20, {2}), Insert(3, 30, {3})});
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{})) << "each event is offered once";
  // The tick closes every event, early or not, into the pack.
  decode::Pack pack = AddAll(a, {Tick(40)});
  EXPECT_EQ(Ids(pack.events), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(pack.open);
}

TEST(TakeEarlyTest, AnUpsertsInsertHalfWaitsForItsDeleteAndBothGoTogether) {
  decode::PackAssembler a(kChannel);
  AddAll(a, {Insert(1, 10, {5}, 0, true)});
  EXPECT_FALSE(a.early_ready()) << "its Delete half follows at ts 10";
  AddAll(a, {Insert(2, 10, {6}, 0, true), Delete(3, 20, {7})});
  EXPECT_FALSE(a.early_ready()) << "a later Delete of another timestamp is not its half";
  AddAll(a, {Delete(4, 10, {5, 6})});
  EXPECT_FALSE(a.early_ready()) << "its Delete half was read after ts 20: it waits for the tick";
  decode::Pack pack = AddAll(a, {Tick(30)});
  EXPECT_EQ(Ids(pack.events), (std::vector<int64_t>{1, 2, 3, 4}));
  // In order, the halves go together (a partition-key upsert: an Insert per partition).
  AddAll(a, {Insert(5, 40, {8}, 0, true), Insert(6, 40, {9}, 0, true), Delete(7, 40, {8, 9})});
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{5, 6, 7}));
}

TEST(TakeEarlyTest, AnEventReadAfterALaterOneWaitsForTheTickAndSoDoesEverythingBehindIt) {
  decode::PackAssembler a(kChannel);
  AddAll(a, {Delete(1, 30, {1}), Delete(2, 20, {2}), Delete(3, 40, {3})});
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{1}));
  decode::Pack pack = AddAll(a, {Tick(35)});
  EXPECT_EQ(Ids(pack.events), (std::vector<int64_t>{1, 2}));
  // Delete 3 (ts 40) stays for the next pack; read in order, it may go now.
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{3}));
  pack = AddAll(a, {Tick(50)});
  EXPECT_EQ(Ids(pack.events), (std::vector<int64_t>{3}));
}

TEST(TakeEarlyTest, AnOfferedEventCarriedPastATickIsNotOfferedAgain) {
  decode::PackAssembler a(kChannel);
  AddAll(a, {Delete(1, 40, {1})});
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{1}));
  decode::Pack pack = AddAll(a, {Tick(30)});
  EXPECT_TRUE(pack.events.empty());
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{}));
  pack = AddAll(a, {Delete(2, 45, {2}), Tick(50)});
  EXPECT_EQ(Ids(pack.events), (std::vector<int64_t>{1, 2}));
}

TEST(TakeEarlyTest, AResentCopyIsOfferedOnceAndPackedOnce) {
  decode::PackAssembler a(kChannel);
  AddAll(a, {Delete(1, 10, {1}), Delete(1, 10, {1}), Delete(2, 20, {2})});
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{1, 2}));
  decode::Pack pack = AddAll(a, {Tick(30)});
  EXPECT_EQ(Ids(pack.events), (std::vector<int64_t>{1, 2}));
}

TEST(TakeEarlyTest, NothingIsOfferedWhileSeekingPastAStoredPosition) {
  decode::PackAssembler a(kChannel);
  a.ResumeFrom(decode::Position{kChannel, 1, 100});
  AddAll(a, {Delete(1, 150, {1})});
  EXPECT_FALSE(a.early_ready()) << "a tick at or past the resume point comes first";
  AddAll(a, {Tick(120), Delete(2, 160, {2})});
  EXPECT_EQ(Offer(a), (std::vector<int64_t>{1, 2}));
}

// --- MisorderedSince

source::RoutedEvent Routed(Event e, bool early = false) {
  e.early = early;
  return source::RoutedEvent{std::move(e), Meta()};
}

TEST(MisorderedSinceTest, InOrderPacksNeedNoSecondPass) {
  std::vector<source::RoutedEvent> pack = {Routed(Insert(1, 10, {1}), true), Routed(Delete(2, 20, {1}), true),
                                           Routed(Insert(3, 30, {1}))};
  EXPECT_EQ(MisorderedSince(pack, {}), 0u);
}

TEST(MisorderedSinceTest, ALateDeleteOfAKeyAnEarlierAppliedInsertWroteLater) {
  // Insert k=1 at 30 went early; the Delete of k=1 at 20 was read after it.
  std::vector<source::RoutedEvent> pack = {Routed(Insert(1, 30, {1}), true), Routed(Delete(2, 20, {1}))};
  EXPECT_EQ(MisorderedSince(pack, {}), 20u);
  // Other keys: the order between them does not matter.
  std::vector<source::RoutedEvent> other = {Routed(Insert(1, 30, {1}), true), Routed(Delete(2, 20, {2}))};
  EXPECT_EQ(MisorderedSince(other, {}), 0u);
}

TEST(MisorderedSinceTest, AnUpsertWhoseDeleteHalfCameAfterTheInsertWentEarly) {
  std::vector<source::RoutedEvent> pack = {Routed(Insert(1, 10, {4}, 0, true), true), Routed(Delete(2, 10, {4}))};
  EXPECT_EQ(MisorderedSince(pack, {}), 10u);
}

TEST(MisorderedSinceTest, AnEarlyEventCarriedPastTheTickCounts) {
  std::vector<source::RoutedEvent> carried = {Routed(Delete(1, 50, {3}), true)};
  std::vector<source::RoutedEvent> pack = {Routed(Insert(2, 30, {3}))};
  EXPECT_EQ(MisorderedSince(pack, carried), 30u);
}

TEST(SplitPairSinceTest, AnUpsertWhoseInsertHalfWentEarlyAsAPlainInsert) {
  std::vector<source::RoutedEvent> pack = {Routed(Insert(1, 10, {4}, 0, true), true), Routed(Delete(2, 10, {4}), true)};
  EXPECT_EQ(SplitPairSince(pack, {1}), 10u) << "applied as a plain Insert, its Delete apart";
  EXPECT_EQ(SplitPairSince(pack, {}), 0u) << "applied together, as one Upsert";
}

// --- the model: a target that applies calls in the order it gets them.

using Rows = std::multimap<int64_t, int64_t>;  // key -> value

struct Op {
  enum Kind { kInsert, kDelete, kUpsert } kind;
  int64_t key;
  uint64_t ts;
};

// What ChangeApplier::ApplyInOrder sends for `events` (sorted by ts, a Delete first at one ts,
// pairs as one Upsert); `repair`: RepairOrder's pass, which first deletes every key they touch.
void ApplyModel(Rows& rows, const std::vector<source::RoutedEvent>& events, bool repair) {
  std::vector<const source::RoutedEvent*> ordered;
  for (const auto& r : events) {
    if (!r.event.early) ordered.push_back(&r);
  }
  const UpsertPairs pairs = FindUpsertPairs(events);
  std::stable_sort(ordered.begin(), ordered.end(), [](const source::RoutedEvent* a, const source::RoutedEvent* b) {
    const bool a_del = a->event.type() == MsgType::kDelete, b_del = b->event.type() == MsgType::kDelete;
    if (a->event.begin_ts != b->event.begin_ts) return a->event.begin_ts < b->event.begin_ts;
    return a_del && !b_del;
  });
  if (repair) {
    for (const auto* r : ordered) {
      auto pks = decode::PrimaryKeysOf(r->event, kPkField);
      ASSERT_TRUE(pks.ok());
      for (int64_t k : std::get<std::vector<int64_t>>(*pks)) rows.erase(k);
    }
  }
  for (const auto* r : ordered) {
    const Event& e = r->event;
    auto pks = decode::PrimaryKeysOf(e, kPkField);
    ASSERT_TRUE(pks.ok());
    const auto& keys = std::get<std::vector<int64_t>>(*pks);
    if (e.type() == MsgType::kDelete) {
      if (pairs.deletes.count(&e)) continue;
      for (int64_t k : keys) rows.erase(k);
    } else {
      const bool upsert = pairs.inserts.count(&e) > 0;
      const auto* req = decode::PayloadAs<msgpb::InsertRequest>(e);
      for (size_t i = 0; i < keys.size(); ++i) {
        if (upsert) rows.erase(keys[i]);
        rows.emplace(keys[i], req->fields_data(1).scalars().long_data().data(static_cast<int>(i)));
      }
    }
  }
}

TEST(EarlyApplyModelTest, ShuffledLogsOfFewKeysEndEqualToTheSource) {
  std::mt19937 rng(17);
  int repaired = 0;
  size_t applied_early = 0;
  for (int run = 0; run < 400; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    // The source: requests in ts order on keys 0..3; inserts only of absent keys.
    Rows source;
    std::vector<std::vector<Event>> requests;  // each request's messages, in its own order
    int64_t msg_id = 1;
    for (uint64_t ts = 10; ts <= 10 * 40; ts += 10) {
      const int64_t key = static_cast<int64_t>(rng() % 4);
      const int kind = static_cast<int>(rng() % 3);
      if (!source.count(key)) {
        source.emplace(key, static_cast<int64_t>(ts));
        requests.push_back({Insert(msg_id++, ts, {key}, static_cast<int64_t>(ts))});
      } else if (kind == 0) {
        source.erase(key);
        requests.push_back({Delete(msg_id++, ts, {key})});
      } else {  // an upsert: Insert then Delete at one ts
        source.erase(key);
        source.emplace(key, static_cast<int64_t>(ts));
        requests.push_back({Insert(msg_id, ts, {key}, static_cast<int64_t>(ts), true), Delete(msg_id + 1, ts, {key})});
        msg_id += 2;
      }
    }
    // The log: messages in request order, then neighbours of different requests swapped, as
    // concurrent requests reach the log.
    std::vector<std::pair<size_t, Event>> log;
    for (size_t i = 0; i < requests.size(); ++i) {
      for (auto& e : requests[i]) log.emplace_back(i, e);
    }
    for (int s = 0; s < 12; ++s) {
      const size_t i = rng() % (log.size() - 1);
      if (log[i].first != log[i + 1].first) std::swap(log[i], log[i + 1]);
    }
    // Read it: ticks (ts x9) where every message at or below them was read; open packs at
    // random moments.
    decode::PackAssembler assembler(kChannel);
    Rows target;
    std::set<int64_t> early_ids;
    std::vector<source::RoutedEvent> open;  // applied early, not closed yet
    uint64_t last_tick = 0;
    for (size_t i = 0; i < log.size(); ++i) {
      ASSERT_TRUE(assembler.Add(log[i].second).ok());
      if (rng() % 2) {
        if (auto p = assembler.TakeEarly()) {
          std::vector<source::RoutedEvent> item;
          for (const auto& e : p->events) item.push_back(Routed(e));
          ApplyModel(target, item, false);
          for (const auto& r : item) early_ids.insert(r.event.msg_id);
          applied_early += item.size();
          open.insert(open.end(), item.begin(), item.end());
        }
      }
      uint64_t unread = 10 * 41;
      for (size_t j = i + 1; j < log.size(); ++j) unread = std::min(unread, log[j].second.end_ts);
      if (unread - 1 <= last_tick || (rng() % 3 && i + 1 < log.size())) continue;
      last_tick = unread - 1;
      auto closed = assembler.Add(Tick(last_tick));
      ASSERT_TRUE(closed.ok());
      if (!closed->has_value()) continue;
      std::vector<source::RoutedEvent> item;
      std::set<int64_t> closing;
      for (const auto& e : (*closed)->events) {
        item.push_back(Routed(e, early_ids.count(e.msg_id) > 0));
        if (item.back().event.early) closing.insert(e.msg_id);
      }
      ApplyModel(target, item, false);
      std::vector<source::RoutedEvent> carried;
      for (const auto& r : open) {
        if (!closing.count(r.event.msg_id)) carried.push_back(r);
      }
      open = carried;
      if (const uint64_t t0 = MisorderedSince(item, carried); t0 != 0) {
        ++repaired;
        std::vector<source::RoutedEvent> replay;
        for (const auto* list : {&item, &carried}) {
          for (auto r : *list) {
            if (r.event.end_ts < t0) continue;
            r.event.early = false;
            replay.push_back(std::move(r));
          }
        }
        ApplyModel(target, replay, true);
      }
    }
    ASSERT_TRUE(open.empty()) << "the last tick closes every event";
    ASSERT_EQ(target, source);
  }
  EXPECT_GT(repaired, 0) << "the shuffles should reach the second pass";
  EXPECT_GT(applied_early, 400u * 10) << "most events should go early";
}

}  // namespace
}  // namespace cdc::pipeline

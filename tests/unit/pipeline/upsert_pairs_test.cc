// FindUpsertPairs over the captured corpus (tests/testdata/bed-2.3): the workload's upsert is
// found on every shard, plain deletes and inserts are not paired; and the partition-key shape
// (one Insert per partition, one Delete of all keys) seen on the bed.
#include "pipeline/upsert_pairs.h"

#include <gtest/gtest.h>

#include "../decode/corpus.h"
#include "decode/decoder.h"
#include "msg.pb.h"

namespace cdc::pipeline {
namespace {

using decode::MsgType;
namespace msgpb = milvus::proto::msg;

bool Is(const decode::Event& e, MsgType t) { return e.msg_type == static_cast<int32_t>(t); }

TEST(UpsertPairsTest, TheCorpusUpsertIsPairedOnEveryShardAndNothingElse) {
  auto corpus = decode::testdata::LoadCorpus(decode::testdata::Bed23Dir());
  ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
  const auto& workload = corpus->workload;
  // Collection id -> its meta (only the pk field id matters here).
  std::map<int64_t, std::shared_ptr<source::CollectionMeta>> metas;
  std::map<int64_t, std::string> names;
  for (const auto& [name, c] : workload["collections"].items()) {
    auto m = std::make_shared<source::CollectionMeta>();
    m->id = c["id"].get<int64_t>();
    m->pk_field_id = c["pk_field_id"].get<int64_t>();
    metas[m->id] = m;
    names[m->id] = name;
  }
  size_t upsert_ops = 0;
  for (const auto& op : workload["ops"]) upsert_ops += op["op"] == "upsert";
  ASSERT_GE(upsert_ops, 1u);

  size_t paired_inserts = 0, paired_deletes = 0, deletes = 0;
  for (const auto& [channel, msgs] : corpus->messages) {
    if (channel == corpus->replicate_channel) continue;
    std::vector<source::RoutedEvent> events;
    for (const auto& m : msgs) {
      auto ev = decode::DecodeMessage(m.bytes, m.position());
      ASSERT_TRUE(ev.ok());
      if (!Is(*ev, MsgType::kInsert) && !Is(*ev, MsgType::kDelete)) continue;
      deletes += Is(*ev, MsgType::kDelete);
      events.push_back(source::RoutedEvent{*ev, metas.at(ev->collection_id)});
    }
    UpsertPairs pairs = FindUpsertPairs(events);
    for (const auto* e : pairs.inserts) {
      ASSERT_TRUE(Is(*e, MsgType::kInsert));
      EXPECT_EQ(decode::PayloadAs<msgpb::InsertRequest>(*e)->base().timestamp(), 0u);  // 2.3's upsert Insert
    }
    paired_inserts += pairs.inserts.size();
    paired_deletes += pairs.deletes.size();
  }
  // One Insert and one Delete per shard that received keys of the upsert; plain deletes stay.
  EXPECT_GE(paired_inserts, upsert_ops);
  EXPECT_EQ(paired_inserts, paired_deletes);
  EXPECT_LT(paired_deletes, deletes);
}

decode::Event Dml(MsgType type, const std::vector<std::string>& keys, uint64_t ts, const std::string& partition) {
  decode::Event e;
  e.msg_type = static_cast<int32_t>(type);
  e.collection_id = 7;
  e.vchannel = "dml_0_7v0";
  e.begin_ts = e.end_ts = ts;
  if (type == MsgType::kInsert) {
    auto req = std::make_shared<msgpb::InsertRequest>();
    req->set_partition_name(partition);
    auto* fd = req->add_fields_data();
    fd->set_field_id(100);
    for (const auto& k : keys) fd->mutable_scalars()->mutable_string_data()->add_data(k);
    req->set_num_rows(keys.size());
    e.payload = req;
  } else {
    auto req = std::make_shared<msgpb::DeleteRequest>();
    for (const auto& k : keys) req->mutable_primary_keys()->mutable_str_id()->add_data(k);
    req->set_num_rows(static_cast<int64_t>(keys.size()));
    e.payload = req;
  }
  return e;
}

TEST(UpsertPairsTest, PartitionKeyUpsertHasOneInsertPerPartitionAndOneDelete) {
  auto meta = std::make_shared<source::CollectionMeta>();
  meta->id = 7;
  meta->pk_field_id = 100;
  std::vector<source::RoutedEvent> events = {
      {Dml(MsgType::kInsert, {"a", "b"}, 10, "_default_1"), meta},  // a plain insert
      {Dml(MsgType::kDelete, {"a"}, 20, ""), meta},                 // a plain delete
      {Dml(MsgType::kInsert, {"new"}, 30, "_default_5"), meta},     // the upsert, as 2.3.5 writes it
      {Dml(MsgType::kInsert, {"k5"}, 30, "_default_0"), meta},
      {Dml(MsgType::kInsert, {"k4"}, 30, "_default_6"), meta},
      {Dml(MsgType::kDelete, {"k4", "k5", "new"}, 30, ""), meta},
  };
  UpsertPairs pairs = FindUpsertPairs(events);
  EXPECT_EQ(pairs.inserts.size(), 3u);
  EXPECT_EQ(pairs.deletes.size(), 1u);
  EXPECT_TRUE(pairs.deletes.count(&events[5].event));
  EXPECT_FALSE(pairs.inserts.count(&events[0].event));
  EXPECT_FALSE(pairs.deletes.count(&events[1].event));

  // Keys that do not match exactly are not an upsert: Delete then Insert, as before.
  events[5] = {Dml(MsgType::kDelete, {"k4", "k5"}, 30, ""), meta};
  pairs = FindUpsertPairs(events);
  EXPECT_TRUE(pairs.inserts.empty());
  EXPECT_TRUE(pairs.deletes.empty());
}


// Early apply offers a plain Insert at once and holds one whose base.timestamp is 0 until its
// Delete half was read: on the captured 2.3 log, only the Insert half of an upsert has it 0.
TEST(UpsertPairsTest, OnlyTheUpsertInsertHalfHasBaseTimestampZero) {
  auto corpus = decode::testdata::LoadCorpus(decode::testdata::Bed23Dir());
  ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
  std::map<int64_t, std::shared_ptr<source::CollectionMeta>> metas;
  for (const auto& [name, c] : corpus->workload["collections"].items()) {
    auto m = std::make_shared<source::CollectionMeta>();
    m->id = c["id"].get<int64_t>();
    m->pk_field_id = c["pk_field_id"].get<int64_t>();
    metas[m->id] = m;
  }
  size_t plain = 0, halves = 0;
  for (const auto& [channel, msgs] : corpus->messages) {
    if (channel == corpus->replicate_channel) continue;
    std::vector<source::RoutedEvent> events;
    for (const auto& m : msgs) {
      auto ev = decode::DecodeMessage(m.bytes, m.position());
      ASSERT_TRUE(ev.ok());
      if (!Is(*ev, MsgType::kInsert) && !Is(*ev, MsgType::kDelete)) continue;
      events.push_back(source::RoutedEvent{*ev, metas.at(ev->collection_id)});
    }
    UpsertPairs pairs = FindUpsertPairs(events);
    for (const auto& r : events) {
      if (!Is(r.event, MsgType::kInsert)) continue;
      const bool zero = decode::PayloadAs<msgpb::InsertRequest>(r.event)->base().timestamp() == 0;
      EXPECT_EQ(zero, pairs.inserts.count(&r.event) > 0) << decode::DescribePosition(r.event.position);
      (zero ? halves : plain) += 1;
    }
  }
  EXPECT_GT(plain, 0u);
  EXPECT_GT(halves, 0u);
}

}  // namespace
}  // namespace cdc::pipeline

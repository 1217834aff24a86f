// Decoder tests over the real bytes captured from a Milvus 2.3 source (tests/testdata/bed-2.3),
// checked against the workload that produced them, plus synthetic edge cases.
#include "decode/decoder.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common.pb.h"
#include "corpus.h"
#include "milvus.pb.h"
#include "msg.pb.h"
#include "schema.pb.h"

namespace cdc::decode {
namespace {

namespace msgpb = milvus::proto::msg;
namespace milvuspb = milvus::proto::milvus;
namespace commonpb = milvus::proto::common;
namespace schemapb = milvus::proto::schema;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testdata::Corpus;
using testdata::LoadCorpus;

constexpr int32_t T(MsgType t) { return static_cast<int32_t>(t); }

std::vector<std::string> PkStrings(const PrimaryKeys& pks) {
  std::vector<std::string> out;
  if (const auto* ints = std::get_if<std::vector<int64_t>>(&pks)) {
    for (int64_t v : *ints) out.push_back(std::to_string(v));
  } else {
    out = std::get<std::vector<std::string>>(pks);
  }
  return out;
}

std::vector<std::string> JsonPkStrings(const nlohmann::json& pks) {
  std::vector<std::string> out;
  for (const auto& v : pks) out.push_back(v.is_string() ? v.get<std::string>() : std::to_string(v.get<int64_t>()));
  std::sort(out.begin(), out.end());
  return out;
}

// The collections of the workload, in creation order.
struct Coll {
  std::string name, db, pk;
  int64_t id = 0, pk_field_id = 0;
  int shards = 0;
};

class DecoderCorpusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = LoadCorpus(testdata::Bed23Dir());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    corpus_ = new Corpus(std::move(c).value());
    events_ = new std::map<std::string, std::vector<Event>>();
    for (const auto& [channel, msgs] : corpus_->messages) {
      for (const auto& m : msgs) {
        auto ev = DecodeMessage(m.bytes, m.position());
        ASSERT_TRUE(ev.ok()) << ev.status().ToString();
        (*events_)[channel].push_back(std::move(ev).value());
      }
    }
  }
  static void TearDownTestSuite() {
    delete corpus_;
    delete events_;
  }

  static std::vector<Coll> Collections() {
    std::vector<Coll> out;
    for (const auto& op : corpus_->workload["ops"]) {
      if (op["op"] != "create_collection") continue;
      const auto& c = corpus_->workload["collections"][op["collection"].get<std::string>()];
      out.push_back(Coll{op["collection"], c["db"], c["pk"], c["id"].get<int64_t>(), c["pk_field_id"].get<int64_t>(),
                         c["shards"].get<int>()});
    }
    return out;
  }

  // Events of every DML channel (not the replicate channel) of one type, in channel+offset order.
  static std::vector<const Event*> DmlEvents(int32_t type, int64_t collection_id) {
    std::vector<const Event*> out;
    for (const auto& [channel, evs] : *events_) {
      if (channel == corpus_->replicate_channel) continue;
      for (const auto& e : evs) {
        if (e.msg_type == type && e.collection_id == collection_id) out.push_back(&e);
      }
    }
    return out;
  }

  static Corpus* corpus_;
  static std::map<std::string, std::vector<Event>>* events_;
};

Corpus* DecoderCorpusTest::corpus_ = nullptr;
std::map<std::string, std::vector<Event>>* DecoderCorpusTest::events_ = nullptr;

TEST_F(DecoderCorpusTest, CorpusIsThere) {
  EXPECT_GE(corpus_->dml_channels.size(), 2u);
  EXPECT_TRUE(corpus_->messages.count(corpus_->replicate_channel));
  EXPECT_THAT(corpus_->workload["server_version"].get<std::string>(), HasSubstr("2.3"));
  ASSERT_EQ(Collections().size(), 2u);
}

TEST_F(DecoderCorpusTest, EveryMessageDecodesWithItsTypePositionAndPayload) {
  size_t n = 0;
  for (const auto& [channel, msgs] : corpus_->messages) {
    const auto& evs = events_->at(channel);
    ASSERT_EQ(evs.size(), msgs.size());
    for (size_t i = 0; i < msgs.size(); ++i) {
      const Event& e = evs[i];
      SCOPED_TRACE(DescribePosition(e.position));
      EXPECT_EQ(e.msg_type, msgs[i].indexed_msg_type);
      EXPECT_TRUE(IsDecodedType(e.msg_type)) << MsgTypeName(e.msg_type);
      ASSERT_NE(e.payload, nullptr);
      EXPECT_EQ(e.position.channel, channel);
      EXPECT_EQ(e.position.offset, msgs[i].offset);
      EXPECT_EQ(e.position.timestamp, e.end_ts);
      EXPECT_EQ(e.payload_bytes, msgs[i].bytes.size());
      EXPECT_GT(e.begin_ts, 0u);
      EXPECT_LE(e.begin_ts, e.end_ts);
      // Hybrid timestamps of this decade: physical part within 2020..2100.
      EXPECT_GT(PhysicalMs(e.end_ts), 1577836800000ull);
      EXPECT_LT(PhysicalMs(e.end_ts), 4102444800000ull);
      if (e.IsDml()) {
        EXPECT_NE(e.msg_id, 0);
        EXPECT_EQ(e.position.channel + "_", e.vchannel.substr(0, channel.size() + 1)) << e.vchannel;
      }
      ++n;
    }
  }
  EXPECT_GT(n, 50u);
}

TEST_F(DecoderCorpusTest, TimeTicksCarryOnlyTheirTimestamp) {
  size_t ticks = 0;
  for (const auto& channel : corpus_->dml_channels) {
    for (const auto& e : events_->at(channel)) {
      if (!e.IsTimeTick()) continue;
      ++ticks;
      const auto* tt = PayloadAs<msgpb::TimeTickMsg>(e);
      ASSERT_NE(tt, nullptr);
      EXPECT_EQ(e.begin_ts, tt->base().timestamp());
      EXPECT_EQ(e.end_ts, tt->base().timestamp());
      EXPECT_EQ(e.collection_id, 0);
      EXPECT_EQ(e.row_count, 0);
    }
  }
  EXPECT_GT(ticks, 20u);
}

TEST_F(DecoderCorpusTest, DmlTimestampsComeFromTheRowsNotTheHeader) {
  // 2.3 upsert: the Insert half has base.timestamp 0; its rows carry the real ts.
  size_t zero_base = 0;
  for (const Event* e : DmlEvents(T(MsgType::kInsert), Collections()[0].id)) {
    const auto* ins = PayloadAs<msgpb::InsertRequest>(*e);
    ASSERT_NE(ins, nullptr);
    ASSERT_GT(ins->timestamps_size(), 0);
    auto [lo, hi] = std::minmax_element(ins->timestamps().begin(), ins->timestamps().end());
    EXPECT_EQ(e->begin_ts, *lo);
    EXPECT_EQ(e->end_ts, *hi);
    EXPECT_EQ(ins->timestamps_size(), e->row_count);
    if (ins->base().timestamp() == 0) ++zero_base;
  }
  EXPECT_GE(zero_base, 1u) << "the upsert's Insert (base.timestamp 0) is missing from the corpus";
}

// Inserts and deletes of each collection, grouped by operation (same msg type and ts across its
// shards), in ts order, must be exactly the workload's operations with their primary keys.
TEST_F(DecoderCorpusTest, DmlMatchesTheWorkloadPerOperation) {
  for (const Coll& coll : Collections()) {
    SCOPED_TRACE(coll.name);
    std::vector<std::vector<std::string>> want_ins, want_del;
    std::vector<std::string> want_ins_partition;
    std::vector<std::vector<std::string>> upserts;
    for (const auto& op : corpus_->workload["ops"]) {
      if (op.value("collection", "") != coll.name) continue;
      std::string kind = op["op"];
      if (kind == "insert" || kind == "upsert") {
        want_ins.push_back(JsonPkStrings(op["pks"]));
        want_ins_partition.push_back(op["partition"]);
      }
      if (kind == "delete" || kind == "upsert") want_del.push_back(JsonPkStrings(op["pks"]));
      if (kind == "upsert") upserts.push_back(JsonPkStrings(op["pks"]));
    }

    // ts -> pks (sorted) and the events, per type.
    auto group = [&](int32_t type) {
      std::map<uint64_t, std::pair<std::vector<std::string>, std::vector<const Event*>>> g;
      for (const Event* e : DmlEvents(type, coll.id)) {
        auto pks = PrimaryKeysOf(*e, coll.pk_field_id);
        EXPECT_TRUE(pks.ok()) << pks.status().ToString();
        if (!pks.ok()) continue;
        EXPECT_EQ(static_cast<int64_t>(PrimaryKeyCount(*pks)), e->row_count);
        EXPECT_EQ(e->begin_ts, e->end_ts) << "rows of one request share a ts";
        auto& slot = g[e->end_ts];
        for (auto& s : PkStrings(*pks)) slot.first.push_back(s);
        slot.second.push_back(e);
      }
      for (auto& [ts, v] : g) std::sort(v.first.begin(), v.first.end());
      return g;
    };
    auto ins = group(T(MsgType::kInsert));
    auto del = group(T(MsgType::kDelete));

    std::vector<std::vector<std::string>> got_ins, got_del;
    for (const auto& [ts, v] : ins) got_ins.push_back(v.first);
    for (const auto& [ts, v] : del) got_del.push_back(v.first);
    EXPECT_EQ(got_ins, want_ins);
    EXPECT_EQ(got_del, want_del);

    // Names and ids as a 2.3 proxy fills them: collection name yes, db name no.
    size_t i = 0;
    for (const auto& [ts, v] : ins) {
      for (const Event* e : v.second) {
        EXPECT_EQ(e->collection_name, coll.name);
        EXPECT_EQ(e->db_name, "") << "2.3 proxies leave Insert.db_name empty";
        if (i < want_ins_partition.size()) {
          EXPECT_EQ(e->partition_name, want_ins_partition[i]);
        }
        EXPECT_GT(e->partition_id, 0);
        auto by_name = InsertPrimaryKeysByName(*PayloadAs<msgpb::InsertRequest>(*e), coll.pk);
        ASSERT_TRUE(by_name.ok());
        EXPECT_EQ(PkStrings(*by_name), PkStrings(*PrimaryKeysOf(*e, coll.pk_field_id)));
      }
      ++i;
    }
    for (const auto& [ts, v] : del) {
      for (const Event* e : v.second) EXPECT_EQ(e->collection_name, coll.name);
    }

    // An upsert is a Delete and an Insert of the same keys at the same ts.
    for (const auto& keys : upserts) {
      uint64_t ins_ts = 0, del_ts = 0;
      for (const auto& [ts, v] : ins) if (v.first == keys) ins_ts = ts;
      for (const auto& [ts, v] : del) if (v.first == keys) del_ts = ts;
      EXPECT_NE(ins_ts, 0u);
      EXPECT_EQ(ins_ts, del_ts);
    }
  }
}

TEST_F(DecoderCorpusTest, DmlMsgIdsAreUniquePerChannel) {
  for (const auto& channel : corpus_->dml_channels) {
    std::set<int64_t> ids;
    for (const auto& e : events_->at(channel)) {
      if (e.IsDml()) {
        EXPECT_TRUE(ids.insert(e.msg_id).second) << DescribePosition(e.position);
      }
    }
  }
}

TEST_F(DecoderCorpusTest, CreateCollectionOncePerShardChannelWithItsVchannel) {
  for (const Coll& coll : Collections()) {
    SCOPED_TRACE(coll.name);
    auto creates = DmlEvents(T(MsgType::kCreateCollection), coll.id);
    ASSERT_EQ(creates.size(), static_cast<size_t>(coll.shards));
    std::set<std::string> channels;
    for (const Event* e : creates) {
      channels.insert(e->position.channel);
      const auto* cc = PayloadAs<msgpb::CreateCollectionRequest>(*e);
      ASSERT_NE(cc, nullptr);
      ASSERT_EQ(cc->virtualchannelnames_size(), coll.shards);
      ASSERT_EQ(cc->physicalchannelnames_size(), coll.shards);
      int shard = -1;
      for (int i = 0; i < coll.shards; ++i) {
        if (cc->physicalchannelnames(i) == e->position.channel) shard = i;
      }
      ASSERT_GE(shard, 0);
      EXPECT_EQ(e->vchannel, e->position.channel + "_" + std::to_string(coll.id) + "v" + std::to_string(shard));
      EXPECT_EQ(e->collection_name, "") << "rootcoord fills no names (wire §4)";
      // The schema travels as bytes, with system fields and $meta.
      schemapb::CollectionSchema schema;
      ASSERT_TRUE(schema.ParseFromString(cc->schema()));
      EXPECT_EQ(schema.name(), coll.name);
      bool pk_found = false;
      for (const auto& f : schema.fields()) {
        if (f.fieldid() == coll.pk_field_id) {
          EXPECT_EQ(f.name(), coll.pk);
          EXPECT_TRUE(f.is_primary_key());
          pk_found = true;
        }
      }
      EXPECT_TRUE(pk_found);
    }
    EXPECT_EQ(channels.size(), static_cast<size_t>(coll.shards)) << "one copy per pchannel";
  }
}

TEST_F(DecoderCorpusTest, DropPartitionAndDropCollectionOnEveryShard) {
  auto colls = Collections();
  const Coll& main = colls[0];
  auto drops = DmlEvents(T(MsgType::kDropPartition), main.id);
  ASSERT_EQ(drops.size(), static_cast<size_t>(main.shards));
  std::set<int64_t> p1_ids;
  for (const Event* e : DmlEvents(T(MsgType::kInsert), main.id)) {
    if (e->partition_name == "p1") p1_ids.insert(e->partition_id);
  }
  ASSERT_EQ(p1_ids.size(), 1u);
  for (const Event* e : drops) {
    EXPECT_EQ(e->partition_name, "p1");
    EXPECT_EQ(e->partition_id, *p1_ids.begin());
  }
  for (const Coll& coll : colls) {
    auto dc = DmlEvents(T(MsgType::kDropCollection), coll.id);
    EXPECT_EQ(dc.size(), static_cast<size_t>(coll.shards)) << coll.name;
    for (const Event* e : dc) EXPECT_EQ(e->collection_name, coll.name);
  }
  // CreatePartition never reaches the log in 2.3-2.5 (wire §2.4).
  for (const auto& channel : corpus_->dml_channels) {
    for (const auto& e : events_->at(channel)) EXPECT_NE(e.msg_type, T(MsgType::kCreatePartition));
  }
}

TEST_F(DecoderCorpusTest, ReplicateChannelMatchesTheWorkload) {
  // What each workload operation writes to the replicate channel of a 2.3.x source; the ones
  // mapped to 0 write nothing there on 2.3 (observed on the bed, docs/milvus-notes.md).
  const std::map<std::string, int32_t> kOpType = {
      {"create_index", T(MsgType::kCreateIndex)},     {"drop_index", T(MsgType::kDropIndex)},
      {"load_collection", T(MsgType::kLoadCollection)}, {"release_collection", T(MsgType::kReleaseCollection)},
      {"flush", T(MsgType::kFlush)},                  {"create_database", T(MsgType::kCreateDatabase)},
      {"drop_database", T(MsgType::kDropDatabase)},   {"load_partitions", 0},
      {"release_partitions", 0},                      {"create_user", 0},
      {"delete_user", 0},                             {"create_role", 0},
      {"drop_role", 0},                               {"add_user_to_role", 0},
      {"remove_user_from_role", 0},
  };
  std::vector<int32_t> want;
  std::vector<nlohmann::json> want_ops;
  for (const auto& op : corpus_->workload["ops"]) {
    auto it = kOpType.find(op["op"].get<std::string>());
    if (it != kOpType.end() && it->second != 0) {
      want.push_back(it->second);
      want_ops.push_back(op);
    }
  }
  const auto& evs = events_->at(corpus_->replicate_channel);
  std::vector<int32_t> got;
  for (const auto& e : evs) got.push_back(e.msg_type);
  std::vector<std::string> got_names;
  for (int32_t t : got) got_names.push_back(MsgTypeName(t));
  ASSERT_EQ(got, want) << ::testing::PrintToString(got_names);

  const std::string db2 = corpus_->workload["databases"][0];
  for (size_t i = 0; i < evs.size(); ++i) {
    const Event& e = evs[i];
    const auto& op = want_ops[i];
    SCOPED_TRACE(MsgTypeName(e.msg_type));
    EXPECT_EQ(e.begin_ts, e.end_ts);
    EXPECT_EQ(e.collection_id, 0) << "replicate-channel messages carry names, not ids";
    switch (static_cast<MsgType>(e.msg_type)) {
      case MsgType::kCreateDatabase:
      case MsgType::kDropDatabase:
        EXPECT_EQ(e.db_name, db2);
        break;
      case MsgType::kFlush:
        EXPECT_EQ(e.db_name, "default");
        EXPECT_THAT(CollectionNamesOf(e), ElementsAreArray(op["collections"].get<std::vector<std::string>>()));
        EXPECT_EQ(e.collection_name, "");
        break;
      case MsgType::kCreateIndex: {
        EXPECT_EQ(e.db_name, "default");
        EXPECT_EQ(e.collection_name, op["collection"]);
        const auto* ci = PayloadAs<milvuspb::CreateIndexRequest>(e);
        ASSERT_NE(ci, nullptr);
        EXPECT_EQ(ci->index_name(), op["index"]);
        EXPECT_EQ(ci->field_name(), op["field"]);
        std::map<std::string, std::string> params;
        for (const auto& kv : ci->extra_params()) params[kv.key()] = kv.value();
        EXPECT_EQ(params["index_type"], "IVF_FLAT");
        EXPECT_EQ(params["metric_type"], "L2");
        break;
      }
      case MsgType::kDropIndex:
        EXPECT_EQ(e.collection_name, op["collection"]);
        ASSERT_NE(PayloadAs<milvuspb::DropIndexRequest>(e), nullptr);
        EXPECT_EQ(PayloadAs<milvuspb::DropIndexRequest>(e)->index_name(), op["index"]);
        break;
      default:
        EXPECT_EQ(e.db_name, "default");
        EXPECT_EQ(e.collection_name, op["collection"]);
        EXPECT_THAT(CollectionNamesOf(e), ElementsAre(op["collection"].get<std::string>()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic cases

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

TEST(DecoderTest, UnknownMsgTypeIsAnEventWithoutPayload) {
  commonpb::MsgHeader h;
  h.mutable_base()->set_msg_type(static_cast<commonpb::MsgType>(1212));  // Replicate (2.5)
  h.mutable_base()->set_msgid(7);
  h.mutable_base()->set_timestamp(ComposeTs(1700000000000, 3));
  auto ev = DecodeMessage(Serialize(h), Position{"ch", 42, 0});
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  EXPECT_EQ(ev->msg_type, 1212);
  EXPECT_EQ(ev->payload, nullptr);
  EXPECT_EQ(ev->msg_id, 7);
  EXPECT_EQ(ev->end_ts, ComposeTs(1700000000000, 3));
  EXPECT_EQ(ev->position.offset, 42);
  EXPECT_FALSE(IsDecodedType(1212));

  h.mutable_base()->set_msg_type(static_cast<commonpb::MsgType>(99999));  // not even in the enum
  ev = DecodeMessage(Serialize(h), Position{"ch", 43, 0});
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->msg_type, 99999);
  EXPECT_EQ(ev->payload, nullptr);
  EXPECT_EQ(MsgTypeName(99999), "Unknown(99999)");
}

TEST(DecoderTest, CorruptedBytesAreAnErrorNamingChannelAndOffset) {
  auto corpus = LoadCorpus(testdata::Bed23Dir());
  ASSERT_TRUE(corpus.ok());
  const testdata::CorpusMessage* insert = nullptr;
  for (const auto& [ch, msgs] : corpus->messages) {
    for (const auto& m : msgs) {
      if (m.indexed_msg_type == T(MsgType::kInsert) && !insert) insert = &m;
    }
  }
  ASSERT_NE(insert, nullptr);
  std::string cut = insert->bytes.substr(0, insert->bytes.size() / 2);
  auto ev = DecodeMessage(cut, Position{"cdcsrc-rootcoord-dml_7", 1234, 0});
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.status().code(), StatusCode::kInternal);
  EXPECT_THAT(ev.status().message(), HasSubstr("cdcsrc-rootcoord-dml_7"));
  EXPECT_THAT(ev.status().message(), HasSubstr("1234"));

  for (const std::string& junk : {std::string("\xff\xff\xff\xff", 4), std::string("\x0a\x05\x08", 3)}) {
    ev = DecodeMessage(junk, Position{"chan-x", 99, 0});
    ASSERT_FALSE(ev.ok());
    EXPECT_THAT(ev.status().message(), HasSubstr("chan-x@99"));
  }
  ev = DecodeMessage("", Position{"chan-y", 5, 0});  // parses, but has no MsgBase
  ASSERT_FALSE(ev.ok());
  EXPECT_THAT(ev.status().message(), HasSubstr("chan-y@5"));
  EXPECT_THAT(ev.status().message(), HasSubstr("MsgBase"));
}

TEST(DecoderTest, HeaderParsesButBodyDoesNot) {
  // A valid MsgHeader saying Insert, followed by a shardName that is not UTF-8: proto3 rejects it.
  commonpb::MsgHeader h;
  h.mutable_base()->set_msg_type(commonpb::MsgType::Insert);
  std::string bytes = Serialize(h) + std::string("\x12\x02\xff\xfe", 4);
  auto ev = DecodeMessage(bytes, Position{"ch", 8, 0});
  ASSERT_FALSE(ev.ok());
  EXPECT_THAT(ev.status().message(), HasSubstr("ch@8"));
  EXPECT_THAT(ev.status().message(), HasSubstr("milvus.proto.msg.InsertRequest"));
}

TEST(DecoderTest, DeleteKeysFromPrimaryKeysOrTheDeprecatedList) {
  msgpb::DeleteRequest d;
  d.mutable_base()->set_msg_type(commonpb::MsgType::Delete);
  d.mutable_base()->set_msgid(5);
  d.set_shardname("ch_1v0");
  d.set_collectionid(1);
  d.set_partitionid(-1);
  d.add_int64_primary_keys(10);
  d.add_int64_primary_keys(11);
  d.add_timestamps(ComposeTs(1000, 2));
  d.add_timestamps(ComposeTs(1000, 1));
  d.set_num_rows(2);
  auto ev = DecodeMessage(Serialize(d), Position{"ch", 1, 0});
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->begin_ts, ComposeTs(1000, 1));
  EXPECT_EQ(ev->end_ts, ComposeTs(1000, 2));
  EXPECT_EQ(ev->row_count, 2);
  EXPECT_EQ(ev->partition_id, -1);
  auto pks = PrimaryKeysOf(*ev, 0);
  ASSERT_TRUE(pks.ok());
  EXPECT_THAT(std::get<std::vector<int64_t>>(*pks), ElementsAre(10, 11));

  d.mutable_primary_keys()->mutable_str_id()->add_data("a");
  pks = DeletePrimaryKeys(d);  // primary_keys wins over the deprecated list
  ASSERT_TRUE(pks.ok());
  EXPECT_THAT(std::get<std::vector<std::string>>(*pks), ElementsAre("a"));
  EXPECT_EQ(FormatPrimaryKeys(*pks, 5), "[\"a\"]");
}

TEST(DecoderTest, InsertKeysErrors) {
  msgpb::InsertRequest ins;
  ins.set_num_rows(2);
  auto* f = ins.add_fields_data();
  f->set_field_id(100);
  f->set_field_name("pk");
  f->mutable_scalars()->mutable_long_data()->add_data(1);  // one value for two rows
  auto* v = ins.add_fields_data();
  v->set_field_id(101);
  v->set_field_name("vec");
  v->mutable_vectors()->set_dim(2);

  auto pks = InsertPrimaryKeys(ins, 100);
  ASSERT_FALSE(pks.ok());
  EXPECT_THAT(pks.status().message(), HasSubstr("1 values for 2 rows"));
  f->mutable_scalars()->mutable_long_data()->add_data(2);
  pks = InsertPrimaryKeys(ins, 100);
  ASSERT_TRUE(pks.ok());
  EXPECT_EQ(FormatPrimaryKeys(*pks, 1), "[1, ... (+1)]");
  EXPECT_EQ(InsertPrimaryKeys(ins, 102).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(InsertPrimaryKeysByName(ins, "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(InsertPrimaryKeys(ins, 101).status().code(), StatusCode::kInvalidArgument);

  Event tick;
  tick.msg_type = T(MsgType::kTimeTick);
  EXPECT_EQ(PrimaryKeysOf(tick, 100).status().code(), StatusCode::kInvalidArgument);
}

TEST(DecoderTest, NamesOfPartitionRequests) {
  milvuspb::LoadPartitionsRequest lp;
  lp.mutable_base()->set_msg_type(commonpb::MsgType::LoadPartitions);
  lp.mutable_base()->set_timestamp(77);
  lp.set_db_name("db");
  lp.set_collection_name("c");
  lp.add_partition_names("p1");
  lp.add_partition_names("p2");
  auto ev = DecodeMessage(Serialize(lp), Position{"r", 0, 0});
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->db_name, "db");
  EXPECT_EQ(ev->collection_name, "c");
  EXPECT_EQ(ev->begin_ts, 77u);
  EXPECT_THAT(PartitionNamesOf(*ev), ElementsAre("p1", "p2"));
  EXPECT_THAT(CollectionNamesOf(*ev), ElementsAre("c"));
}

TEST(DecoderTest, MsgTypeNames) {
  EXPECT_EQ(MsgTypeName(400), "Insert");
  EXPECT_EQ(MsgTypeName(1200), "TimeTick");
  EXPECT_EQ(MsgTypeName(1801), "CreateDatabase");
  EXPECT_EQ(MsgTypeName(0), "Unknown(0)");
  EXPECT_EQ(MsgTypeName(-3), "Unknown(-3)");
  for (int32_t t : {100, 101, 106, 107, 200, 201, 205, 206, 300, 302, 304, 400, 401, 402, 1200, 1500, 1502, 1503,
                    1600, 1601, 1602, 1606, 1610, 1611, 1613, 1614, 1801, 1802, 1804}) {
    EXPECT_TRUE(IsDecodedType(t)) << t;
  }
  EXPECT_FALSE(IsDecodedType(404));  // Upsert never travels as such
  EXPECT_FALSE(IsDecodedType(1208));
}

}  // namespace
}  // namespace cdc::decode

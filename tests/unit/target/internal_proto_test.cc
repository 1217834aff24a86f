// Proves our own protos (proto/milvus, proto/etcd) compile, link, and use the expected field
// numbers: a CollectionInfo encoded by hand, byte by byte, must decode to the right values and
// re-encode to the same bytes.
#include <gtest/gtest.h>

#include <string>

#include "etcd/kv.pb.h"
#include "etcd/rpc.grpc.pb.h"
#include "milvus/etcd_meta.pb.h"
#include "milvus/index_coord.pb.h"

namespace cdc::target {
namespace {

namespace etcdpb = milvus::proto::etcd;

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}
std::string Len(const std::string& payload) {  // length prefix (< 128 bytes)
  return std::string(1, static_cast<char>(payload.size())) + payload;
}

TEST(InternalProtoTest, HandBuiltCollectionInfoRoundTrips) {
  const std::string vchan = "by-dev-rootcoord-dml_0_1001v0";
  const std::string pchan = "by-dev-rootcoord-dml_0";
  const std::string position = Bytes({0x2a, 0, 0, 0, 0, 0, 0, 0});  // Kafka offset 42, little endian
  std::string wire;
  wire += Bytes({0x08, 0xe9, 0x07});                               // 1 ID = 1001
  wire += Bytes({0x12}) + Len(Bytes({0x0a}) + Len("c1"));          // 2 schema { 1 name = "c1" }
  wire += Bytes({0x18, 0x07});                                      // 3 create_time = 7
  wire += Bytes({0x3a}) + Len(vchan);                               // 7 virtual_channel_names
  wire += Bytes({0x42}) + Len(pchan);                               // 8 physical_channel_names
  wire += Bytes({0x50, 0x01});                                      // 10 shards_num = 1
  wire += Bytes({0x5a}) + Len(Bytes({0x0a}) + Len(pchan) + Bytes({0x12}) + Len(position));  // 11
  wire += Bytes({0x60, 0x02});                                      // 12 consistency_level = Bounded
  wire += Bytes({0x68, 0x01});                                      // 13 state = CollectionCreating
  wire += Bytes({0x72}) + Len(Bytes({0x0a}) + Len("collection.ttl.seconds") + Bytes({0x12}) + Len("60"));
  wire += Bytes({0x78, 0x01});                                      // 15 db_id = 1
  wire += Bytes({0x80, 0x01, 0x05});                                // 16 UpdateTimestamp = 5

  etcdpb::CollectionInfo info;
  ASSERT_TRUE(info.ParseFromString(wire));
  EXPECT_EQ(info.id(), 1001);
  EXPECT_EQ(info.schema().name(), "c1");
  EXPECT_EQ(info.create_time(), 7u);
  ASSERT_EQ(info.virtual_channel_names_size(), 1);
  EXPECT_EQ(info.virtual_channel_names(0), vchan);
  EXPECT_EQ(info.physical_channel_names(0), pchan);
  EXPECT_EQ(info.shards_num(), 1);
  ASSERT_EQ(info.start_positions_size(), 1);
  EXPECT_EQ(info.start_positions(0).key(), pchan);
  EXPECT_EQ(info.start_positions(0).data(), position);
  EXPECT_EQ(info.consistency_level(), milvus::proto::common::Bounded);
  EXPECT_EQ(info.state(), etcdpb::CollectionCreating);
  ASSERT_EQ(info.properties_size(), 1);
  EXPECT_EQ(info.properties(0).key(), "collection.ttl.seconds");
  EXPECT_EQ(info.properties(0).value(), "60");
  EXPECT_EQ(info.db_id(), 1);
  EXPECT_EQ(info.updatetimestamp(), 5u);

  EXPECT_EQ(info.SerializeAsString(), wire);
}

TEST(InternalProtoTest, OtherMetaRecordsUseTheDocumentedNumbers) {
  etcdpb::PartitionInfo part;
  ASSERT_TRUE(part.ParseFromString(Bytes({0x08, 0x05, 0x12}) + Len("_default") + Bytes({0x20, 0x09, 0x28, 0x02})));
  EXPECT_EQ(part.partitionid(), 5);
  EXPECT_EQ(part.partitionname(), "_default");
  EXPECT_EQ(part.collection_id(), 9);
  EXPECT_EQ(part.state(), etcdpb::PartitionDropping);

  etcdpb::DatabaseInfo db;
  ASSERT_TRUE(db.ParseFromString(Bytes({0x12}) + Len("default") + Bytes({0x18, 0x01, 0x20, 0x01})));
  EXPECT_EQ(db.name(), "default");
  EXPECT_EQ(db.id(), 1);
  EXPECT_EQ(db.state(), etcdpb::DatabaseCreated);

  milvus::proto::index::FieldIndex fi;
  fi.mutable_index_info()->set_index_name("idx");
  fi.mutable_index_info()->set_is_auto_index(true);
  fi.set_deleted(true);
  milvus::proto::index::FieldIndex back;
  ASSERT_TRUE(back.ParseFromString(fi.SerializeAsString()));
  EXPECT_EQ(back.index_info().index_name(), "idx");
  EXPECT_TRUE(back.deleted());
}

TEST(InternalProtoTest, EtcdWatchResponseAndServiceNames) {
  // 2 watch_id = 3, 7 fragment = true, 11 events { 1 type = DELETE, 2 kv { 1 key = "k", 3 mod_revision = 9 } }
  std::string kv = Bytes({0x0a}) + Len("k") + Bytes({0x18, 0x09});
  std::string ev = Bytes({0x08, 0x01, 0x12}) + Len(kv);
  std::string wire = Bytes({0x10, 0x03, 0x38, 0x01, 0x5a}) + Len(ev);
  etcdserverpb::WatchResponse resp;
  ASSERT_TRUE(resp.ParseFromString(wire));
  EXPECT_EQ(resp.watch_id(), 3);
  EXPECT_TRUE(resp.fragment());
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).type(), mvccpb::Event::DELETE);
  EXPECT_EQ(resp.events(0).kv().key(), "k");
  EXPECT_EQ(resp.events(0).kv().mod_revision(), 9);

  EXPECT_STREQ(etcdserverpb::KV::service_full_name(), "etcdserverpb.KV");
  EXPECT_STREQ(etcdserverpb::Watch::service_full_name(), "etcdserverpb.Watch");
  const auto* lease = etcdserverpb::LeaseGrantRequest::descriptor()->file()->FindServiceByName("Lease");
  ASSERT_NE(lease, nullptr);
  EXPECT_NE(lease->FindMethodByName("LeaseKeepAlive"), nullptr);
  EXPECT_TRUE(lease->FindMethodByName("LeaseKeepAlive")->client_streaming());
  EXPECT_STREQ(etcdserverpb::Maintenance::service_full_name(), "etcdserverpb.Maintenance");
  EXPECT_STREQ(etcdserverpb::Auth::service_full_name(), "etcdserverpb.Auth");
}

}  // namespace
}  // namespace cdc::target

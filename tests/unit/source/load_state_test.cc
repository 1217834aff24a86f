// Reading which source collections are loaded: the record bytes as Milvus 2.3.5 wrote them,
// and the read over a real, private etcd.
#include "source/load_state.h"

#include <gtest/gtest.h>

#include "etcd_test_server.h"

namespace cdc::source {
namespace {

using cdc::testing::EtcdTestServer;

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// querycoord-collection-loadinfo/470800023355005680 on the bed's SOURCE after load():
// collectionID, replica_number 1, status Loaded, field_indexID {101: ...}, load_type LoadCollection.
const char kLoadedRecordHex[] = "08f0b5c8c287c4a7c406180120022a0c086510fbb5c8c287c4a7c4063002";

TEST(LoadStateTest, ParsesARecordMilvusWrote) {
  int64_t id = 0;
  int32_t replicas = 0;
  ASSERT_TRUE(ParseCollectionLoadInfo(FromHex(kLoadedRecordHex), &id, &replicas));
  EXPECT_EQ(id, 470800023355005680);
  EXPECT_EQ(replicas, 1);
}

TEST(LoadStateTest, PartialLoadsAndGarbageAreNotCollectionLoads) {
  int64_t id = 0;
  int32_t replicas = 0;
  // same record with load_type 1 (LoadPartition)
  std::string partial = FromHex(kLoadedRecordHex);
  partial.back() = '\x01';
  EXPECT_FALSE(ParseCollectionLoadInfo(partial, &id, &replicas));
  EXPECT_FALSE(ParseCollectionLoadInfo("not a protobuf \xff\xff", &id, &replicas));
  EXPECT_FALSE(ParseCollectionLoadInfo("", &id, &replicas)) << "no collection id";
}

TEST(LoadStateTest, ReadsEveryLoadedCollectionUnderTheMetaRoot) {
  if (!EtcdTestServer::Available()) GTEST_SKIP() << "etcd/etcdctl not on PATH (Debian package etcd-server)";
  EtcdTestServer server;
  ASSERT_EQ(server.Start(), "");
  EtcdOptions o;
  o.endpoints = {server.endpoint()};
  auto etcd = EtcdClient::Connect(o);
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  ASSERT_TRUE((*etcd)->Put("src/meta/querycoord-collection-loadinfo/470800023355005680", FromHex(kLoadedRecordHex)).ok());
  std::string partial = FromHex(kLoadedRecordHex);
  partial.back() = '\x01';
  ASSERT_TRUE((*etcd)->Put("src/meta/querycoord-collection-loadinfo/7", partial).ok());
  ASSERT_TRUE((*etcd)->Put("other/meta/querycoord-collection-loadinfo/9", FromHex(kLoadedRecordHex)).ok());

  auto loaded = ReadLoadedCollections(etcd->get(), "src/meta");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, (std::map<int64_t, int32_t>{{470800023355005680, 1}}));
  auto none = ReadLoadedCollections(etcd->get(), "empty/meta");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace cdc::source

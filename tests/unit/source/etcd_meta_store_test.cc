// EtcdMetaStore against a real, private etcd: the behaviours of the SQLite store, plus the key
// layout under rootPath. (Kept beside the etcd client tests, which own the etcd fixture.)
#include "store/etcd_meta_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "etcd_test_server.h"
#include "meta_store_contract.h"

namespace cdc {
namespace {

using cdc::testing::EtcdTestServer;
using source::EtcdClient;
using source::EtcdOptions;

// The MetaStore contract on a private etcd (every Open is a new client).
struct EtcdBackend {
  static std::string SkipReason() {
    return EtcdTestServer::Available() ? "" : "etcd/etcdctl not on PATH (Debian package etcd-server)";
  }
  void Start() { ASSERT_EQ(server.Start(), ""); }
  std::unique_ptr<MetaStore> Open(const std::string& root, char key) {
    EtcdOptions o;
    o.endpoints = {server.endpoint()};
    auto opened = EtcdMetaStore::Open(o, root, ContractBox(key));
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }
  EtcdTestServer server;
};
INSTANTIATE_TYPED_TEST_SUITE_P(Etcd, MetaStoreContract, EtcdBackend);

class EtcdMetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdTestServer::Available()) GTEST_SKIP() << "etcd/etcdctl not on PATH (Debian package etcd-server)";
    ASSERT_EQ(server_.Start(), "");
    auto client = EtcdClient::Connect(Options());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    store_ = std::make_unique<EtcdMetaStore>(client_, "cdc", ContractBox());
  }

  EtcdOptions Options() const {
    EtcdOptions o;
    o.endpoints = {server_.endpoint()};
    o.dial_timeout_s = 5;
    o.call_timeout_s = 5;
    return o;
  }

  // The raw value of a key, read past the store.
  std::string Raw(const std::string& key) {
    auto kv = client_->Get(key);
    EXPECT_TRUE(kv.ok() && kv->has_value()) << key;
    return kv.ok() && kv->has_value() ? (*kv)->value : "";
  }

  EtcdTestServer server_;
  std::shared_ptr<EtcdClient> client_;
  std::unique_ptr<EtcdMetaStore> store_;
};

TEST_F(EtcdMetaStoreTest, PutThenGetAndTheKeyLayout) {
  TaskRecord r = ContractRecord("t1", 1000, TaskState::kPaused);
  ASSERT_TRUE(store_->PutTask(r).ok());
  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ExpectSameRecord(**got, r);

  EXPECT_EQ(store_->TaskKey("t1"), "cdc/task_info/t1");
  auto j = nlohmann::json::parse(Raw("cdc/task_info/t1"), nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["task_id"], "t1");
  EXPECT_EQ(j["state"], 2);
  EXPECT_EQ(j["reason"], r.reason);
  EXPECT_EQ(j["spec"], r.spec_json);
  EXPECT_EQ(j["create_time_ms"], 1000);
  EXPECT_EQ(j["sealed_secrets"].get<std::string>().rfind("v1:", 0), 0u);

  ASSERT_TRUE(store_->PutPositions("t1", {{-10, "by-dev-replicate-msg", "r"}}).ok());
  auto p = nlohmann::json::parse(Raw("cdc/task_position/t1/-10/by-dev-replicate-msg"), nullptr, false);
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["collection_id"], -10);
  EXPECT_EQ(p["data"], Base64Encode("r"));
}

TEST_F(EtcdMetaStoreTest, DeleteRemovesThePositionKeysOfThatTaskOnly) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 1)).ok());
  ASSERT_TRUE(store_->PutTask(ContractRecord("t10", 2)).ok());  // shares "t1" as a string prefix
  ASSERT_TRUE(store_->PutPositions("t1", {{1, "by-dev-dml_0_1v0", "p1"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t10", {{2, "by-dev-dml_1_2v0", "p2"}}).ok());
  ASSERT_TRUE(store_->DeleteTask("t1").ok());
  auto raw = client_->GetPrefix("cdc/task_position/t1/");
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(raw->empty());
  auto kept = client_->GetPrefix("cdc/task_position/t10/");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);
}

TEST_F(EtcdMetaStoreTest, ManyPositionsAtOnce) {
  std::vector<ChannelPosition> many;
  for (int i = 0; i < 300; ++i) many.push_back({i, "ch_" + std::to_string(i), "pos" + std::to_string(i)});
  ASSERT_TRUE(store_->PutPositions("big", many).ok()) << "more than etcd's 128 ops per transaction";
  ASSERT_TRUE(store_->PutTask(ContractRecord("big", 1)).ok());
  auto got = store_->GetPositions("big");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 300u);
  EXPECT_EQ((*got)[299].data, "pos299");
  ASSERT_TRUE(store_->DeleteTask("big").ok());
  got = store_->GetPositions("big");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST_F(EtcdMetaStoreTest, CredentialsAreSealedInEtcd) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 1)).ok());
  auto raw = client_->GetPrefix("");  // every key etcd holds
  ASSERT_TRUE(raw.ok());
  std::string all;
  for (const auto& kv : *raw) all += kv.key + "=" + kv.value + "\n";
  ASSERT_NE(all.find("SPEC-MARKER-t1"), std::string::npos) << "the raw search cannot see the record";
  EXPECT_EQ(all.find(kContractToken), std::string::npos) << "the token is stored in clear text";
  EXPECT_EQ(all.find("pw-t1"), std::string::npos) << "the password is stored in clear text";
}

TEST_F(EtcdMetaStoreTest, InvalidStoredRecordsAreErrors) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 1)).ok());
  auto j = nlohmann::json::parse(Raw("cdc/task_info/t1"));
  j["state"] = 7;
  ASSERT_TRUE(client_->Put("cdc/task_info/t1", j.dump()).ok());
  auto all = store_->ListTasks();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), StatusCode::kInternal);
  EXPECT_EQ(all.status().message(), "task store holds an invalid state for task t1");

  ASSERT_TRUE(client_->Put("cdc/task_info/t1", "not json").ok());
  auto got = store_->GetTask("t1");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal);
  EXPECT_NE(got.status().message().find("cdc/task_info/t1"), std::string::npos) << got.status().message();
}

TEST_F(EtcdMetaStoreTest, ARecordWrittenBeforeFailedChangeExistedReadsAsNone) {
  TaskRecord r = ContractRecord("t1", 1, TaskState::kPaused);
  r.failed_change_json = R"({"db":"default"})";
  ASSERT_TRUE(store_->PutTask(r).ok());
  auto j = nlohmann::json::parse(Raw("cdc/task_info/t1"));
  EXPECT_EQ(j["failed_change"], r.failed_change_json);
  j.erase("failed_change");
  ASSERT_TRUE(client_->Put("cdc/task_info/t1", j.dump()).ok());
  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
  EXPECT_EQ((*got)->failed_change_json, "");
  EXPECT_EQ((*got)->reason, r.reason);

  j["failed_change"] = 5;
  ASSERT_TRUE(client_->Put("cdc/task_info/t1", j.dump()).ok());
  auto bad = store_->GetTask("t1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
  EXPECT_NE(bad.status().message().find("failed_change is not a string"), std::string::npos) << bad.status().message();
}

TEST_F(EtcdMetaStoreTest, TaskIdsWithSlashesAreRefused) {
  EXPECT_EQ(store_->PutTask(ContractRecord("a/b", 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutPositions("a/b", {{1, "ch", "x"}}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 1)).ok());
  auto got = store_->GetTask("t1/x");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(EtcdMetaStoreTest, EverythingSurvivesAnEtcdRestartAndANewStore) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 10)).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{7, "ch_7v0", std::string("\0pos", 4)}}).ok());
  server_.Kill();
  ASSERT_EQ(server_.Start(), "");
  auto reopened = EtcdMetaStore::Open(Options(), "cdc", ContractBox());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto all = (*reopened)->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 1u);
  ExpectSameRecord((*all)[0], ContractRecord("t1", 10));
  auto positions = (*reopened)->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  ASSERT_EQ(positions->size(), 1u);
  EXPECT_EQ((*positions)[0].data, std::string("\0pos", 4));
  // The first store's client reconnects by itself.
  auto again = store_->GetTask("t1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->has_value());
}

TEST_F(EtcdMetaStoreTest, EtcdDownIsUnavailableNamingEtcd) {
  EtcdOptions o = Options();
  o.call_timeout_s = 2;
  auto store = EtcdMetaStore::Open(o, "cdc", ContractBox());
  ASSERT_TRUE(store.ok());
  server_.Kill();
  for (Status st : {(*store)->PutTask(ContractRecord("t1", 1)), (*store)->ListTasks().status(),
                    (*store)->GetTask("t1").status(), (*store)->DeleteTask("t1"),
                    (*store)->PutPositions("t1", {{1, "c", "d"}}), (*store)->GetPositions("t1").status()}) {
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_NE(st.message().find("task store: etcd"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(server_.endpoint()), std::string::npos) << st.message();
  }
}

TEST(EtcdMetaStoreOpenTest, UnreachableEtcdFailsToOpen) {
  EtcdTestServer unused;  // a free port nobody listens on
  EtcdOptions o;
  o.endpoints = {unused.endpoint()};
  o.dial_timeout_s = 1;
  auto store = EtcdMetaStore::Open(o, "cdc", ContractBox());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("etcd task store: cannot connect to etcd at " + unused.endpoint()),
            std::string::npos)
      << store.status().message();
}

}  // namespace
}  // namespace cdc

// EtcdMetaStore against a real, private etcd: the behaviours of the SQLite store, plus the key
// layout under rootPath. (Kept beside the etcd client tests, which own the etcd fixture.)
#include "store/etcd_meta_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "etcd_test_server.h"

namespace cdc {
namespace {

using cdc::testing::EtcdTestServer;
using source::EtcdClient;
using source::EtcdOptions;

const char kToken[] = "tok-5f1e9c0d-SECRET-never-in-etcd";

SecretBox Box(char fill = 'k') { return std::move(SecretBox::FromKey(std::string(32, fill))).value(); }

TaskRecord Record(const std::string& id, int64_t created, TaskState state = TaskState::kRunning) {
  TaskRecord r;
  r.task_id = id;
  r.state = state;
  r.reason = "reason of " + id;
  r.spec_json = R"({"collection_infos":[{"name":"coll_)" + id + R"("}],"marker":"SPEC-MARKER-)" + id + R"("})";
  r.secrets_json = std::string(R"({"token":")") + kToken + R"(","password":"pw-)" + id + R"("})";
  r.create_time_ms = created;
  return r;
}

void ExpectSameRecord(const TaskRecord& a, const TaskRecord& b) {
  EXPECT_EQ(a.task_id, b.task_id);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.spec_json, b.spec_json);
  EXPECT_EQ(a.secrets_json, b.secrets_json);
  EXPECT_EQ(a.create_time_ms, b.create_time_ms);
}

std::vector<std::string> Ids(const std::vector<TaskRecord>& records) {
  std::vector<std::string> ids;
  for (const auto& r : records) ids.push_back(r.task_id);
  return ids;
}

class EtcdMetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdTestServer::Available()) GTEST_SKIP() << "etcd/etcdctl not on PATH (Debian package etcd-server)";
    ASSERT_EQ(server_.Start(), "");
    auto client = EtcdClient::Connect(Options());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    store_ = std::make_unique<EtcdMetaStore>(client_, "cdc", Box());
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
  TaskRecord r = Record("t1", 1000, TaskState::kPaused);
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

TEST_F(EtcdMetaStoreTest, GetUnknownOrEmptyIdIsEmpty) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  for (const char* id : {"nope", "", "T1", "t1 ", "t1/x"}) {
    auto got = store_->GetTask(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_FALSE(got->has_value()) << "'" << id << "'";
  }
}

TEST_F(EtcdMetaStoreTest, PutReplacesButKeepsCreateTime) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1000)).ok());
  TaskRecord updated = Record("t1", 5000, TaskState::kPaused);
  updated.reason = "manually pause through http interface";
  updated.spec_json = "{}";
  updated.secrets_json = "";
  ASSERT_TRUE(store_->PutTask(updated).ok());
  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->state, TaskState::kPaused);
  EXPECT_EQ((*got)->reason, "manually pause through http interface");
  EXPECT_EQ((*got)->spec_json, "{}");
  EXPECT_EQ((*got)->secrets_json, "");
  EXPECT_EQ((*got)->create_time_ms, 1000) << "an update must keep the original creation time";
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(EtcdMetaStoreTest, ListIsOldestFirstThenById) {
  auto empty = store_->ListTasks();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(store_->PutTask(Record("c", 300)).ok());
  ASSERT_TRUE(store_->PutTask(Record("b", 100)).ok());
  ASSERT_TRUE(store_->PutTask(Record("a", 300, TaskState::kInitial)).ok());
  ASSERT_TRUE(store_->PutTask(Record("d", 200)).ok());
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"b", "d", "a", "c"}));
  EXPECT_EQ((*all)[2].state, TaskState::kInitial);
  for (const auto& r : *all) EXPECT_NE(r.secrets_json.find(kToken), std::string::npos);
}

TEST_F(EtcdMetaStoreTest, DeleteRemovesTaskAndOnlyItsPositions) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  ASSERT_TRUE(store_->PutTask(Record("t10", 2)).ok());  // shares "t1" as a string prefix
  ASSERT_TRUE(store_->PutPositions("t1", {{1, "by-dev-dml_0_1v0", "p1"}, {-10, "by-dev-replicate-msg", "r"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t10", {{2, "by-dev-dml_1_2v0", "p2"}}).ok());

  ASSERT_TRUE(store_->DeleteTask("t1").ok());
  auto gone = store_->GetTask("t1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto positions = store_->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  EXPECT_TRUE(positions->empty());
  auto raw = client_->GetPrefix("cdc/task_position/t1/");
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(raw->empty());

  auto other = store_->GetPositions("t10");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].data, "p2");
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), std::vector<std::string>{"t10"});
}

TEST_F(EtcdMetaStoreTest, DeleteUnknownIsNotFoundAndChangesNothing) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  ASSERT_TRUE(store_->PutPositions("ghost", {{1, "ch_1v0", "x"}}).ok());
  Status st = store_->DeleteTask("ghost");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "not found the task, task_id: ghost");
  auto positions = store_->GetPositions("ghost");
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(positions->size(), 1u);

  ASSERT_TRUE(store_->DeleteTask("t1").ok());
  EXPECT_EQ(store_->DeleteTask("t1").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteTask("").code(), StatusCode::kNotFound);
}

TEST_F(EtcdMetaStoreTest, PositionsReplacePerChannelAndKeepBinaryData) {
  std::string binary("\x00\x01\xff\xfe msg id \x00 end", 16);
  ASSERT_TRUE(store_->PutPositions("t1", {{5, "ch_5v1", "old"}, {5, "ch_5v0", binary}, {-10, "rpc", "r0"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{5, "ch_5v1", "new"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {}).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{7, "dup", "first"}, {7, "dup", "last"}}).ok()) << "last one wins";
  auto positions = store_->GetPositions("t1");
  ASSERT_TRUE(positions.ok()) << positions.status().ToString();
  ASSERT_EQ(positions->size(), 4u);
  EXPECT_EQ((*positions)[0].collection_id, -10);
  EXPECT_EQ((*positions)[0].channel, "rpc");
  EXPECT_EQ((*positions)[0].data, "r0");
  EXPECT_EQ((*positions)[1].channel, "ch_5v0");
  EXPECT_EQ((*positions)[1].data, binary);
  EXPECT_EQ((*positions)[2].channel, "ch_5v1");
  EXPECT_EQ((*positions)[2].data, "new");
  EXPECT_EQ((*positions)[3].data, "last");

  ASSERT_TRUE(store_->PutPositions("t2", {{1, "ch", "a"}, {2, "ch", "b"}}).ok());
  auto two = store_->GetPositions("t2");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u) << "the same channel under two collections is two positions";
}

TEST_F(EtcdMetaStoreTest, ManyPositionsAtOnce) {
  std::vector<ChannelPosition> many;
  for (int i = 0; i < 300; ++i) many.push_back({i, "ch_" + std::to_string(i), "pos" + std::to_string(i)});
  ASSERT_TRUE(store_->PutPositions("big", many).ok()) << "more than etcd's 128 ops per transaction";
  ASSERT_TRUE(store_->PutTask(Record("big", 1)).ok());
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
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  auto raw = client_->GetPrefix("");  // every key etcd holds
  ASSERT_TRUE(raw.ok());
  std::string all;
  for (const auto& kv : *raw) all += kv.key + "=" + kv.value + "\n";
  ASSERT_NE(all.find("SPEC-MARKER-t1"), std::string::npos) << "the raw search cannot see the record";
  EXPECT_EQ(all.find(kToken), std::string::npos) << "the token is stored in clear text";
  EXPECT_EQ(all.find("pw-t1"), std::string::npos) << "the password is stored in clear text";
}

TEST_F(EtcdMetaStoreTest, WrongKeyCannotReadCredentials) {
  TaskRecord with = Record("with", 1);
  TaskRecord without = Record("without", 2);
  without.secrets_json = "";
  ASSERT_TRUE(store_->PutTask(with).ok());
  ASSERT_TRUE(store_->PutTask(without).ok());
  EtcdMetaStore other(client_, "cdc", Box('x'));
  auto all = other.ListTasks();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().message(),
            "task with credentials: sealed secret cannot be opened: wrong key or corrupted data");
  EXPECT_FALSE(other.GetTask("with").ok());
  auto plain = other.GetTask("without");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_TRUE(plain->has_value());
}

TEST_F(EtcdMetaStoreTest, InvalidStoredRecordsAreErrors) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
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

TEST_F(EtcdMetaStoreTest, RootPathIsolatesTwoStoresOnOneEtcd) {
  EtcdMetaStore a(client_, "server-a", Box());
  EtcdMetaStore b(client_, "server-a-b/", Box());  // a string prefix of nothing; trailing '/' ignored
  TaskRecord ra = Record("same-id", 1);
  TaskRecord rb = Record("same-id", 2, TaskState::kPaused);
  rb.reason = "b's own";
  ASSERT_TRUE(a.PutTask(ra).ok());
  ASSERT_TRUE(b.PutTask(rb).ok());
  ASSERT_TRUE(a.PutTask(Record("only-a", 3)).ok());
  ASSERT_TRUE(a.PutPositions("same-id", {{1, "ch_1v0", "a-pos"}}).ok());
  ASSERT_TRUE(b.PutPositions("same-id", {{1, "ch_1v0", "b-pos"}}).ok());

  auto list_a = a.ListTasks();
  auto list_b = b.ListTasks();
  ASSERT_TRUE(list_a.ok() && list_b.ok());
  EXPECT_EQ(Ids(*list_a), (std::vector<std::string>{"same-id", "only-a"}));
  EXPECT_EQ(Ids(*list_b), std::vector<std::string>{"same-id"});
  EXPECT_EQ((*list_b)[0].reason, "b's own");
  EXPECT_EQ(b.DeleteTask("only-a").code(), StatusCode::kNotFound);

  ASSERT_TRUE(a.DeleteTask("same-id").ok());
  auto pos_b = b.GetPositions("same-id");
  ASSERT_TRUE(pos_b.ok());
  ASSERT_EQ(pos_b->size(), 1u);
  EXPECT_EQ((*pos_b)[0].data, "b-pos");
  EXPECT_TRUE(Raw("server-a-b/task_info/same-id").size() > 0);
}

TEST_F(EtcdMetaStoreTest, TaskIdsWithSlashesAreRefused) {
  EXPECT_EQ(store_->PutTask(Record("a/b", 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutPositions("a/b", {{1, "ch", "x"}}).code(), StatusCode::kInvalidArgument);
}

TEST_F(EtcdMetaStoreTest, ConcurrentPutsKeepEveryRecord) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!store_->PutTask(Record(id, t * 1000 + i)).ok()) failures++;
        if (!store_->PutPositions(id, {{i, "ch_" + std::to_string(i) + "v0", id}}).ok()) failures++;
        if (i % 10 == 0 && !store_->ListTasks().ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  for (const auto& r : *all) ids.insert(r.task_id);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(EtcdMetaStoreTest, EverythingSurvivesAnEtcdRestartAndANewStore) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 10)).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{7, "ch_7v0", std::string("\0pos", 4)}}).ok());
  server_.Kill();
  ASSERT_EQ(server_.Start(), "");
  auto reopened = EtcdMetaStore::Open(Options(), "cdc", Box());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto all = (*reopened)->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 1u);
  ExpectSameRecord((*all)[0], Record("t1", 10));
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
  auto store = EtcdMetaStore::Open(o, "cdc", Box());
  ASSERT_TRUE(store.ok());
  server_.Kill();
  for (Status st : {(*store)->PutTask(Record("t1", 1)), (*store)->ListTasks().status(),
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
  auto store = EtcdMetaStore::Open(o, "cdc", Box());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("etcd task store: cannot connect to etcd at " + unused.endpoint()),
            std::string::npos)
      << store.status().message();
}

}  // namespace
}  // namespace cdc

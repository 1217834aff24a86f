// What every MetaStore backend must do, as one typed test suite. A backend test file defines a
// Backend with
//   static std::string SkipReason();                                   // "" when it can run
//   void Start();                                                       // once per test
//   std::unique_ptr<MetaStore> Open(const std::string& root, char key); // a store on the same data
// and instantiates the suite: INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, MetaStoreContract, SqliteBackend);
// Backend-specific behaviour (raw layout, outages, open errors) stays in the backend's own file.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/meta_store.h"
#include "util/secret_box.h"

namespace cdc {

inline const char kContractToken[] = "tok-5f1e9c0d-SECRET-never-stored-in-clear";

inline SecretBox ContractBox(char fill = 'k') { return std::move(SecretBox::FromKey(std::string(32, fill))).value(); }

inline TaskRecord ContractRecord(const std::string& id, int64_t created, TaskState state = TaskState::kRunning) {
  TaskRecord r;
  r.task_id = id;
  r.state = state;
  r.reason = "reason of " + id;
  r.spec_json = R"({"collection_infos":[{"name":"coll_)" + id + R"("}],"marker":"SPEC-MARKER-)" + id + R"("})";
  r.secrets_json = std::string(R"({"token":")") + kContractToken + R"(","password":"pw-)" + id + R"("})";
  r.create_time_ms = created;
  return r;
}

inline void ExpectSameRecord(const TaskRecord& a, const TaskRecord& b) {
  EXPECT_EQ(a.task_id, b.task_id);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.spec_json, b.spec_json);
  EXPECT_EQ(a.secrets_json, b.secrets_json);
  EXPECT_EQ(a.create_time_ms, b.create_time_ms);
  EXPECT_EQ(a.failed_change_json, b.failed_change_json);
}

inline std::vector<std::string> Ids(const std::vector<TaskRecord>& records) {
  std::vector<std::string> ids;
  for (const auto& r : records) ids.push_back(r.task_id);
  return ids;
}

template <typename Backend>
class MetaStoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Backend::SkipReason(); !why.empty()) GTEST_SKIP() << why;
    backend_.Start();
    Reopen();
  }
  void Reopen(char key = 'k') {
    store_.reset();
    store_ = backend_.Open("cdc", key);
    ASSERT_TRUE(store_ != nullptr);
  }

  Backend backend_;
  std::unique_ptr<MetaStore> store_;
};

TYPED_TEST_SUITE_P(MetaStoreContract);

TYPED_TEST_P(MetaStoreContract, PutThenGet) {
  TaskRecord r = ContractRecord("t1", 1000, TaskState::kPaused);
  ASSERT_TRUE(this->store_->PutTask(r).ok());
  auto got = this->store_->GetTask("t1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ExpectSameRecord(**got, r);
}

TYPED_TEST_P(MetaStoreContract, GetUnknownOrEmptyIdIsEmpty) {
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("t1", 1)).ok());
  for (const char* id : {"nope", "", "T1", "t1 "}) {
    auto got = this->store_->GetTask(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_FALSE(got->has_value()) << "'" << id << "'";
  }
}

TYPED_TEST_P(MetaStoreContract, PutReplacesButKeepsCreateTime) {
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("t1", 1000)).ok());
  TaskRecord updated = ContractRecord("t1", 5000, TaskState::kPaused);
  updated.reason = "manually pause through http interface";
  updated.spec_json = "{}";
  updated.secrets_json = "";
  ASSERT_TRUE(this->store_->PutTask(updated).ok());
  auto got = this->store_->GetTask("t1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->state, TaskState::kPaused);
  EXPECT_EQ((*got)->reason, "manually pause through http interface");
  EXPECT_EQ((*got)->spec_json, "{}");
  EXPECT_EQ((*got)->secrets_json, "");
  EXPECT_EQ((*got)->create_time_ms, 1000) << "an update must keep the original creation time";
  auto all = this->store_->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TYPED_TEST_P(MetaStoreContract, ListIsOldestFirstThenById) {
  auto empty = this->store_->ListTasks();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("c", 300)).ok());
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("b", 100)).ok());
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("a", 300, TaskState::kInitial)).ok());
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("d", 200, TaskState::kPaused)).ok());
  auto all = this->store_->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"b", "d", "a", "c"}));
  EXPECT_EQ((*all)[1].state, TaskState::kPaused);
  EXPECT_EQ((*all)[2].state, TaskState::kInitial);
  for (const auto& r : *all) EXPECT_NE(r.secrets_json.find(kContractToken), std::string::npos);
}

TYPED_TEST_P(MetaStoreContract, DeleteRemovesTaskAndOnlyItsPositions) {
  auto& store = this->store_;
  ASSERT_TRUE(store->PutTask(ContractRecord("t1", 1)).ok());
  ASSERT_TRUE(store->PutTask(ContractRecord("t10", 2)).ok());  // shares "t1" as a string prefix
  ASSERT_TRUE(store->PutPositions("t1", {{1, "by-dev-dml_0_1v0", "p1"}, {-10, "by-dev-replicate-msg", "r"}}).ok());
  ASSERT_TRUE(store->PutPositions("t10", {{2, "by-dev-dml_1_2v0", "p2"}}).ok());

  ASSERT_TRUE(store->DeleteTask("t1").ok());
  auto gone = store->GetTask("t1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto positions = store->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  EXPECT_TRUE(positions->empty());
  auto other = store->GetPositions("t10");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].data, "p2");
  auto all = store->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), std::vector<std::string>{"t10"});
}

TYPED_TEST_P(MetaStoreContract, DeleteUnknownIsNotFoundAndChangesNothing) {
  auto& store = this->store_;
  ASSERT_TRUE(store->PutTask(ContractRecord("t1", 1)).ok());
  // Orphan positions of an unknown task survive a failed delete.
  ASSERT_TRUE(store->PutPositions("ghost", {{1, "ch_1v0", "x"}}).ok());
  Status st = store->DeleteTask("ghost");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "not found the task, task_id: ghost");
  auto positions = store->GetPositions("ghost");
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(positions->size(), 1u);
  ASSERT_TRUE(store->DeleteTask("t1").ok());
  EXPECT_EQ(store->DeleteTask("t1").code(), StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteTask("").code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->PutTask(ContractRecord("t3", 3)).ok()) << "still usable after a failed delete";
}

TYPED_TEST_P(MetaStoreContract, PositionsReplacePerChannelAndKeepBinaryData) {
  auto& store = this->store_;
  std::string binary("\x00\x01\xff\xfe msg id \x00 end", 16);
  ASSERT_TRUE(store->PutPositions("t1", {{5, "ch_5v1", "old"}, {5, "ch_5v0", binary}, {-10, "rpc", "r0"}}).ok());
  ASSERT_TRUE(store->PutPositions("t1", {{5, "ch_5v1", "new"}}).ok());
  ASSERT_TRUE(store->PutPositions("t1", {}).ok());
  auto positions = store->GetPositions("t1");
  ASSERT_TRUE(positions.ok()) << positions.status().ToString();
  ASSERT_EQ(positions->size(), 3u);
  // Ordered by collection id, then channel.
  EXPECT_EQ((*positions)[0].collection_id, -10);
  EXPECT_EQ((*positions)[0].channel, "rpc");
  EXPECT_EQ((*positions)[0].data, "r0");
  EXPECT_EQ((*positions)[1].channel, "ch_5v0");
  EXPECT_EQ((*positions)[1].data, binary);
  EXPECT_EQ((*positions)[2].channel, "ch_5v1");
  EXPECT_EQ((*positions)[2].data, "new");

  ASSERT_TRUE(store->PutPositions("t2", {{1, "ch", "a"}, {2, "ch", "b"}}).ok());
  auto two = store->GetPositions("t2");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u) << "the same channel under two collections is two positions";
}

TYPED_TEST_P(MetaStoreContract, EverythingSurvivesReopen) {
  std::vector<TaskRecord> records = {ContractRecord("t1", 10), ContractRecord("t2", 20, TaskState::kPaused),
                                     ContractRecord("t3", 30, TaskState::kInitial)};
  records[2].secrets_json = "";  // a task without credentials
  for (const auto& r : records) ASSERT_TRUE(this->store_->PutTask(r).ok());
  ASSERT_TRUE(this->store_->PutPositions("t1", {{7, "ch_7v0", std::string("\0pos", 4)}}).ok());
  ASSERT_TRUE(this->store_->DeleteTask("t2").ok());

  this->Reopen();
  auto all = this->store_->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  ExpectSameRecord((*all)[0], records[0]);
  ExpectSameRecord((*all)[1], records[2]);
  auto positions = this->store_->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  ASSERT_EQ(positions->size(), 1u);
  EXPECT_EQ((*positions)[0].data, std::string("\0pos", 4));
}

TYPED_TEST_P(MetaStoreContract, WrongKeyCannotReadCredentials) {
  TaskRecord with = ContractRecord("with", 1);
  TaskRecord without = ContractRecord("without", 2);
  without.secrets_json = "";
  ASSERT_TRUE(this->store_->PutTask(with).ok());
  ASSERT_TRUE(this->store_->PutTask(without).ok());
  this->Reopen('x');
  auto all = this->store_->ListTasks();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().message(),
            "task with credentials: sealed secret cannot be opened: wrong key or corrupted data");
  EXPECT_FALSE(this->store_->GetTask("with").ok());
  auto plain = this->store_->GetTask("without");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_TRUE(plain->has_value());
}

TYPED_TEST_P(MetaStoreContract, RootPathIsolatesTwoStoresOnOneBackend) {
  auto a = this->backend_.Open("server-a", 'k');
  auto b = this->backend_.Open("server-a-b", 'k');  // "server-a" is a string prefix of it
  TaskRecord ra = ContractRecord("same-id", 1);
  TaskRecord rb = ContractRecord("same-id", 2, TaskState::kPaused);
  rb.reason = "b's own";
  ASSERT_TRUE(a->PutTask(ra).ok());
  ASSERT_TRUE(b->PutTask(rb).ok());
  ASSERT_TRUE(a->PutTask(ContractRecord("only-a", 3)).ok());
  ASSERT_TRUE(a->PutPositions("same-id", {{1, "ch_1v0", "a-pos"}}).ok());
  ASSERT_TRUE(b->PutPositions("same-id", {{1, "ch_1v0", "b-pos"}}).ok());

  auto list_a = a->ListTasks();
  auto list_b = b->ListTasks();
  ASSERT_TRUE(list_a.ok() && list_b.ok());
  EXPECT_EQ(Ids(*list_a), (std::vector<std::string>{"same-id", "only-a"}));
  EXPECT_EQ(Ids(*list_b), std::vector<std::string>{"same-id"});
  EXPECT_EQ((*list_b)[0].reason, "b's own");
  EXPECT_EQ(b->DeleteTask("only-a").code(), StatusCode::kNotFound);

  ASSERT_TRUE(a->DeleteTask("same-id").ok());
  auto still_b = b->GetTask("same-id");
  ASSERT_TRUE(still_b.ok());
  EXPECT_TRUE(still_b->has_value());
  auto pos_b = b->GetPositions("same-id");
  ASSERT_TRUE(pos_b.ok());
  ASSERT_EQ(pos_b->size(), 1u);
  EXPECT_EQ((*pos_b)[0].data, "b-pos");
  auto pos_a = a->GetPositions("same-id");
  ASSERT_TRUE(pos_a.ok());
  EXPECT_TRUE(pos_a->empty());
}

TYPED_TEST_P(MetaStoreContract, FailedChangeIsStoredReplacedClearedAndSurvivesReopen) {
  const std::string change = R"({"db":"default","collection":"c","operation":"Insert","time":1})";
  TaskRecord paused = ContractRecord("t1", 10, TaskState::kPaused);
  paused.failed_change_json = change;
  ASSERT_TRUE(this->store_->PutTask(paused).ok());
  ASSERT_TRUE(this->store_->PutTask(ContractRecord("t2", 20)).ok());
  this->Reopen();
  auto all = this->store_->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  ExpectSameRecord((*all)[0], paused);
  EXPECT_EQ((*all)[1].failed_change_json, "") << "none by default";

  TaskRecord resumed = paused;
  resumed.state = TaskState::kRunning;
  resumed.failed_change_json = "";
  ASSERT_TRUE(this->store_->PutTask(resumed).ok());
  auto got = this->store_->GetTask("t1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->failed_change_json, "") << "a put replaces the failed change, also with none";
  EXPECT_EQ((*got)->state, TaskState::kRunning);
}

TYPED_TEST_P(MetaStoreContract, ConcurrentPutsKeepEveryRecord) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  MetaStore* store = this->store_.get();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!store->PutTask(ContractRecord(id, t * 1000 + i)).ok()) failures++;
        if (!store->PutPositions(id, {{i, "ch_" + std::to_string(i) + "v0", id}}).ok()) failures++;
        if (i % 10 == 0 && !store->ListTasks().ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = store->ListTasks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  for (const auto& r : *all) {
    ids.insert(r.task_id);
    auto positions = store->GetPositions(r.task_id);
    ASSERT_TRUE(positions.ok());
    ASSERT_EQ(positions->size(), 1u) << r.task_id;
    EXPECT_EQ((*positions)[0].data, r.task_id);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
}

REGISTER_TYPED_TEST_SUITE_P(MetaStoreContract, PutThenGet, GetUnknownOrEmptyIdIsEmpty, PutReplacesButKeepsCreateTime,
                            ListIsOldestFirstThenById, DeleteRemovesTaskAndOnlyItsPositions,
                            DeleteUnknownIsNotFoundAndChangesNothing, PositionsReplacePerChannelAndKeepBinaryData,
                            EverythingSurvivesReopen, WrongKeyCannotReadCredentials,
                            RootPathIsolatesTwoStoresOnOneBackend, FailedChangeIsStoredReplacedClearedAndSurvivesReopen,
                            ConcurrentPutsKeepEveryRecord);

}  // namespace cdc

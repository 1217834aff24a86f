#include "store/sqlite_meta_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_helpers.h"

namespace cdc {
namespace {

using cdc::testing::ReadFileBytes;
using cdc::testing::TempDir;

const char kToken[] = "tok-5f1e9c0d-SECRET-never-on-disk";

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

class SqliteMetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    path_ = dir_.File("nested/dir/meta.db");  // parents are created by Open
    Reopen();
  }

  void Reopen(const std::string& root = "cdc", char key = 'k') {
    store_.reset();
    auto opened = SqliteMetaStore::Open(path_, root, Box(key));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  // Reads one column of task_info straight from the file, bypassing the store.
  std::string RawColumn(const std::string& column, const std::string& task_id) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    std::string sql = "SELECT " + column + " FROM task_info WHERE task_id = ?1";
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_text(st, 1, task_id.c_str(), -1, SQLITE_TRANSIENT);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* p = sqlite3_column_text(st, 0);
      if (p) out.assign(reinterpret_cast<const char*>(p), sqlite3_column_bytes(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<SqliteMetaStore> store_;
};

TEST(TaskStateNameTest, Names) {
  EXPECT_STREQ(TaskStateName(TaskState::kInitial), "Initial");
  EXPECT_STREQ(TaskStateName(TaskState::kRunning), "Running");
  EXPECT_STREQ(TaskStateName(TaskState::kPaused), "Paused");
}

TEST_F(SqliteMetaStoreTest, PutThenGet) {
  TaskRecord r = Record("t1", 1000);
  ASSERT_TRUE(store_->PutTask(r).ok());
  auto got = store_->GetTask("t1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ExpectSameRecord(**got, r);
}

TEST_F(SqliteMetaStoreTest, GetUnknownOrEmptyIdIsEmpty) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  for (const char* id : {"nope", "", "T1", "t1 "}) {
    auto got = store_->GetTask(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_FALSE(got->has_value()) << "'" << id << "'";
  }
}

TEST_F(SqliteMetaStoreTest, PutReplacesButKeepsCreateTime) {
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

TEST_F(SqliteMetaStoreTest, ListIsOldestFirstThenById) {
  ASSERT_TRUE(store_->PutTask(Record("c", 300)).ok());
  ASSERT_TRUE(store_->PutTask(Record("b", 100)).ok());
  ASSERT_TRUE(store_->PutTask(Record("a", 300)).ok());
  ASSERT_TRUE(store_->PutTask(Record("d", 200)).ok());
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"b", "d", "a", "c"}));
  for (const auto& r : *all) EXPECT_NE(r.secrets_json.find(kToken), std::string::npos);
}

TEST_F(SqliteMetaStoreTest, ListOfEmptyStoreIsEmpty) {
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(SqliteMetaStoreTest, AllStatesRoundTrip) {
  ASSERT_TRUE(store_->PutTask(Record("i", 1, TaskState::kInitial)).ok());
  ASSERT_TRUE(store_->PutTask(Record("r", 2, TaskState::kRunning)).ok());
  ASSERT_TRUE(store_->PutTask(Record("p", 3, TaskState::kPaused)).ok());
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].state, TaskState::kInitial);
  EXPECT_EQ((*all)[1].state, TaskState::kRunning);
  EXPECT_EQ((*all)[2].state, TaskState::kPaused);
  EXPECT_EQ(RawColumn("state", "p"), "2");  // the official integer encoding
}

TEST_F(SqliteMetaStoreTest, DeleteRemovesTaskAndOnlyItsPositions) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  ASSERT_TRUE(store_->PutTask(Record("t2", 2)).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{1, "by-dev-dml_0_1v0", "p1"}, {-10, "by-dev-replicate-msg", "r"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t2", {{2, "by-dev-dml_1_2v0", "p2"}}).ok());

  ASSERT_TRUE(store_->DeleteTask("t1").ok());
  auto gone = store_->GetTask("t1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto positions = store_->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  EXPECT_TRUE(positions->empty());

  auto other = store_->GetPositions("t2");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].data, "p2");
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), std::vector<std::string>{"t2"});
}

TEST_F(SqliteMetaStoreTest, DeleteUnknownIsNotFoundAndChangesNothing) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  // Orphan positions of an unknown task survive a failed delete (the transaction is rolled back).
  ASSERT_TRUE(store_->PutPositions("ghost", {{1, "ch_1v0", "x"}}).ok());
  Status st = store_->DeleteTask("ghost");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "not found the task, task_id: ghost");
  auto positions = store_->GetPositions("ghost");
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(positions->size(), 1u);

  ASSERT_TRUE(store_->DeleteTask("t1").ok());
  EXPECT_EQ(store_->DeleteTask("t1").code(), StatusCode::kNotFound);
  // The store is still usable after a rolled-back transaction.
  EXPECT_TRUE(store_->PutTask(Record("t3", 3)).ok());
}

TEST_F(SqliteMetaStoreTest, PositionsReplacePerChannelAndKeepBinaryData) {
  std::string binary("\x00\x01\xff\xfe msg id \x00 end", 16);
  ASSERT_TRUE(store_->PutPositions("t1", {{5, "ch_5v1", "old"}, {5, "ch_5v0", binary}, {-10, "rpc", "r0"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{5, "ch_5v1", "new"}}).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {}).ok());
  auto positions = store_->GetPositions("t1");
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
}

TEST_F(SqliteMetaStoreTest, SameChannelUnderTwoCollectionsIsTwoPositions) {
  ASSERT_TRUE(store_->PutPositions("t1", {{1, "ch", "a"}, {2, "ch", "b"}}).ok());
  auto positions = store_->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  ASSERT_EQ(positions->size(), 2u);
}

TEST_F(SqliteMetaStoreTest, EverythingSurvivesReopen) {
  std::vector<TaskRecord> records = {Record("t1", 10), Record("t2", 20, TaskState::kPaused),
                                     Record("t3", 30, TaskState::kInitial)};
  records[2].secrets_json = "";  // a task without credentials
  for (const auto& r : records) ASSERT_TRUE(store_->PutTask(r).ok());
  ASSERT_TRUE(store_->PutPositions("t1", {{7, "ch_7v0", std::string("\0pos", 4)}}).ok());
  ASSERT_TRUE(store_->DeleteTask("t2").ok());

  Reopen();
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  ExpectSameRecord((*all)[0], records[0]);
  ExpectSameRecord((*all)[1], records[2]);
  auto positions = store_->GetPositions("t1");
  ASSERT_TRUE(positions.ok());
  ASSERT_EQ(positions->size(), 1u);
  EXPECT_EQ((*positions)[0].data, std::string("\0pos", 4));
}

TEST_F(SqliteMetaStoreTest, CredentialsAreSealedOnDisk) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  ASSERT_TRUE(store_->PutTask(Record("t2", 2)).ok());

  const std::string sealed = RawColumn("sealed_secrets", "t1");
  EXPECT_EQ(sealed.rfind("v1:", 0), 0u) << sealed;
  EXPECT_EQ(sealed.find(kToken), std::string::npos);

  // Raw bytes of the database and its WAL: the spec is there, the token is not.
  store_.reset();  // close, so every page is in the files
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-journal", "-shm"}) bytes += ReadFileBytes(path_ + suffix);
  ASSERT_NE(bytes.find("SPEC-MARKER-t1"), std::string::npos) << "the raw-byte search cannot see the rows";
  EXPECT_EQ(bytes.find(kToken), std::string::npos) << "the token is stored in clear text";
  EXPECT_EQ(bytes.find("pw-t1"), std::string::npos) << "the password is stored in clear text";
}

TEST_F(SqliteMetaStoreTest, WrongKeyCannotReadCredentials) {
  TaskRecord with = Record("with", 1);
  TaskRecord without = Record("without", 2);
  without.secrets_json = "";
  ASSERT_TRUE(store_->PutTask(with).ok());
  ASSERT_TRUE(store_->PutTask(without).ok());
  Reopen("cdc", 'x');
  auto all = store_->ListTasks();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().message(),
            "task with credentials: sealed secret cannot be opened: wrong key or corrupted data");
  EXPECT_FALSE(store_->GetTask("with").ok());
  auto plain = store_->GetTask("without");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_TRUE(plain->has_value());
}

TEST_F(SqliteMetaStoreTest, InvalidStoredStateIsAnError) {
  ASSERT_TRUE(store_->PutTask(Record("t1", 1)).ok());
  RawExec("UPDATE task_info SET state = 7 WHERE task_id = 't1'");
  auto all = store_->ListTasks();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), StatusCode::kInternal);
  EXPECT_EQ(all.status().message(), "task store holds an invalid state for task t1");
}

TEST_F(SqliteMetaStoreTest, RootPathIsolatesTwoStoresOnOneFile) {
  auto a_or = SqliteMetaStore::Open(path_, "server-a", Box());
  auto b_or = SqliteMetaStore::Open(path_, "server-b", Box());
  ASSERT_TRUE(a_or.ok() && b_or.ok());
  auto a = std::move(a_or).value();
  auto b = std::move(b_or).value();

  TaskRecord ra = Record("same-id", 1);
  TaskRecord rb = Record("same-id", 2, TaskState::kPaused);
  rb.reason = "b's own";
  ASSERT_TRUE(a->PutTask(ra).ok());
  ASSERT_TRUE(b->PutTask(rb).ok());
  ASSERT_TRUE(a->PutTask(Record("only-a", 3)).ok());
  ASSERT_TRUE(a->PutPositions("same-id", {{1, "ch_1v0", "a-pos"}}).ok());
  ASSERT_TRUE(b->PutPositions("same-id", {{1, "ch_1v0", "b-pos"}}).ok());

  auto list_a = a->ListTasks();
  auto list_b = b->ListTasks();
  ASSERT_TRUE(list_a.ok() && list_b.ok());
  EXPECT_EQ(Ids(*list_a), (std::vector<std::string>{"same-id", "only-a"}));
  EXPECT_EQ(Ids(*list_b), std::vector<std::string>{"same-id"});
  EXPECT_EQ((*list_b)[0].reason, "b's own");
  auto got = b->GetTask("only-a");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
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

TEST_F(SqliteMetaStoreTest, ConcurrentPutsKeepEveryRow) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
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
  for (const auto& r : *all) {
    auto positions = store_->GetPositions(r.task_id);
    ASSERT_TRUE(positions.ok());
    ASSERT_EQ(positions->size(), 1u) << r.task_id;
    EXPECT_EQ((*positions)[0].data, r.task_id);
  }
}

TEST_F(SqliteMetaStoreTest, TwoConnectionsWritingTheSameFileConcurrently) {
  auto other_or = SqliteMetaStore::Open(path_, "cdc", Box());
  ASSERT_TRUE(other_or.ok());
  auto other = std::move(other_or).value();
  std::atomic<int> failures{0};
  auto writer = [&failures](SqliteMetaStore* s, const std::string& prefix) {
    for (int i = 0; i < 50; ++i) {
      if (!s->PutTask(Record(prefix + std::to_string(i), i)).ok()) failures++;
    }
  };
  std::thread a(writer, store_.get(), "a");
  std::thread b(writer, other.get(), "b");
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 100u);
}

TEST(SqliteMetaStoreOpenTest, UnopenablePathIsUnavailable) {
  TempDir dir;
  // The path is a directory.
  auto on_dir = SqliteMetaStore::Open(dir.path(), "cdc", Box());
  ASSERT_FALSE(on_dir.ok());
  EXPECT_EQ(on_dir.status().code(), StatusCode::kUnavailable);
  // A parent of the path is a regular file.
  cdc::testing::WriteFileBytes(dir.File("file"), "x");
  auto under_file = SqliteMetaStore::Open(dir.File("file/meta.db"), "cdc", Box());
  ASSERT_FALSE(under_file.ok());
  EXPECT_EQ(under_file.status().code(), StatusCode::kUnavailable);
}

TEST(SqliteMetaStoreOpenTest, NotADatabaseIsUnavailable) {
  TempDir dir;
  cdc::testing::WriteFileBytes(dir.File("garbage.db"), std::string(4096, 'g'));
  auto store = SqliteMetaStore::Open(dir.File("garbage.db"), "cdc", Box());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.status().message().rfind("task store: ", 0), 0u) << store.status().message();
}

}  // namespace
}  // namespace cdc

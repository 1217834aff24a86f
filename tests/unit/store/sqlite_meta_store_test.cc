#include "store/sqlite_meta_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "meta_store_contract.h"
#include "test_helpers.h"

namespace cdc {
namespace {

using cdc::testing::ReadFileBytes;
using cdc::testing::TempDir;

// The MetaStore contract on a SQLite file (every Open is a new connection to the same file).
struct SqliteBackend {
  static std::string SkipReason() { return ""; }
  void Start() { ASSERT_TRUE(dir.ok()); }
  std::unique_ptr<MetaStore> Open(const std::string& root, char key) {
    auto opened = SqliteMetaStore::Open(dir.File("nested/dir/meta.db"), root, ContractBox(key));
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }
  TempDir dir;
};
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, MetaStoreContract, SqliteBackend);

class SqliteMetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    path_ = dir_.File("nested/dir/meta.db");  // parents are created by Open
    Reopen();
  }

  void Reopen(const std::string& root = "cdc", char key = 'k') {
    store_.reset();
    auto opened = SqliteMetaStore::Open(path_, root, ContractBox(key));
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

TEST_F(SqliteMetaStoreTest, AllStatesRoundTrip) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("i", 1, TaskState::kInitial)).ok());
  ASSERT_TRUE(store_->PutTask(ContractRecord("r", 2, TaskState::kRunning)).ok());
  ASSERT_TRUE(store_->PutTask(ContractRecord("p", 3, TaskState::kPaused)).ok());
  auto all = store_->ListTasks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].state, TaskState::kInitial);
  EXPECT_EQ((*all)[1].state, TaskState::kRunning);
  EXPECT_EQ((*all)[2].state, TaskState::kPaused);
  EXPECT_EQ(RawColumn("state", "p"), "2");  // the official integer encoding
}

TEST_F(SqliteMetaStoreTest, CredentialsAreSealedOnDisk) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 1)).ok());
  ASSERT_TRUE(store_->PutTask(ContractRecord("t2", 2)).ok());

  const std::string sealed = RawColumn("sealed_secrets", "t1");
  EXPECT_EQ(sealed.rfind("v1:", 0), 0u) << sealed;
  EXPECT_EQ(sealed.find(kContractToken), std::string::npos);

  // Raw bytes of the database and its WAL: the spec is there, the token is not.
  store_.reset();  // close, so every page is in the files
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-journal", "-shm"}) bytes += ReadFileBytes(path_ + suffix);
  ASSERT_NE(bytes.find("SPEC-MARKER-t1"), std::string::npos) << "the raw-byte search cannot see the rows";
  EXPECT_EQ(bytes.find(kContractToken), std::string::npos) << "the token is stored in clear text";
  EXPECT_EQ(bytes.find("pw-t1"), std::string::npos) << "the password is stored in clear text";
}

TEST_F(SqliteMetaStoreTest, InvalidStoredStateIsAnError) {
  ASSERT_TRUE(store_->PutTask(ContractRecord("t1", 1)).ok());
  RawExec("UPDATE task_info SET state = 7 WHERE task_id = 't1'");
  auto all = store_->ListTasks();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), StatusCode::kInternal);
  EXPECT_EQ(all.status().message(), "task store holds an invalid state for task t1");
}

TEST_F(SqliteMetaStoreTest, TwoConnectionsWritingTheSameFileConcurrently) {
  auto other_or = SqliteMetaStore::Open(path_, "cdc", ContractBox());
  ASSERT_TRUE(other_or.ok());
  auto other = std::move(other_or).value();
  std::atomic<int> failures{0};
  auto writer = [&failures](SqliteMetaStore* s, const std::string& prefix) {
    for (int i = 0; i < 50; ++i) {
      if (!s->PutTask(ContractRecord(prefix + std::to_string(i), i)).ok()) failures++;
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

TEST(SqliteMetaStoreOpenTest, AFileWrittenBeforeFailedChangeExistedIsUpgraded) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  {
    // The task_info table as earlier versions created it, with one task in it.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* sql =
        "CREATE TABLE task_info (root TEXT NOT NULL, task_id TEXT NOT NULL, state INTEGER NOT NULL, "
        "reason TEXT NOT NULL, spec TEXT NOT NULL, sealed_secrets TEXT NOT NULL, create_time_ms INTEGER NOT NULL, "
        "PRIMARY KEY (root, task_id));"
        "INSERT INTO task_info VALUES ('cdc', 'old', 2, 'paused long ago', '{}', '', 5);";
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  for (int open = 0; open < 2; ++open) {  // the second open finds the column already there
    auto store = SqliteMetaStore::Open(path, "cdc", ContractBox());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto old = (*store)->GetTask("old");
    ASSERT_TRUE(old.ok() && old->has_value()) << old.status().ToString();
    EXPECT_EQ((*old)->reason, "paused long ago");
    EXPECT_EQ((*old)->failed_change_json, open == 0 ? "" : R"({"db":"open0"})");
    TaskRecord updated = **old;
    updated.failed_change_json = R"({"db":"open)" + std::to_string(open) + R"("})";
    ASSERT_TRUE((*store)->PutTask(updated).ok());
    auto again = (*store)->GetTask("old");
    ASSERT_TRUE(again.ok() && again->has_value());
    EXPECT_EQ((*again)->failed_change_json, updated.failed_change_json);
  }
}

TEST(SqliteMetaStoreOpenTest, UnopenablePathIsUnavailable) {
  TempDir dir;
  // The path is a directory.
  auto on_dir = SqliteMetaStore::Open(dir.path(), "cdc", ContractBox());
  ASSERT_FALSE(on_dir.ok());
  EXPECT_EQ(on_dir.status().code(), StatusCode::kUnavailable);
  // A parent of the path is a regular file.
  cdc::testing::WriteFileBytes(dir.File("file"), "x");
  auto under_file = SqliteMetaStore::Open(dir.File("file/meta.db"), "cdc", ContractBox());
  ASSERT_FALSE(under_file.ok());
  EXPECT_EQ(under_file.status().code(), StatusCode::kUnavailable);
}

TEST(SqliteMetaStoreOpenTest, NotADatabaseIsUnavailable) {
  TempDir dir;
  cdc::testing::WriteFileBytes(dir.File("garbage.db"), std::string(4096, 'g'));
  auto store = SqliteMetaStore::Open(dir.File("garbage.db"), "cdc", ContractBox());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.status().message().rfind("task store: ", 0), 0u) << store.status().message();
}

}  // namespace
}  // namespace cdc

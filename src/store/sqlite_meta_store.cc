#include "store/sqlite_meta_store.h"

#include <sqlite3.h>

#include <filesystem>

namespace cdc {

namespace {

const char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS task_info (
  root TEXT NOT NULL,
  task_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  reason TEXT NOT NULL,
  spec TEXT NOT NULL,
  sealed_secrets TEXT NOT NULL,
  create_time_ms INTEGER NOT NULL,
  failed_change TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (root, task_id)
);
CREATE TABLE IF NOT EXISTS task_position (
  root TEXT NOT NULL,
  task_id TEXT NOT NULL,
  collection_id INTEGER NOT NULL,
  channel TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (root, task_id, collection_id, channel)
);
)sql";

// Finalizes a prepared statement when it goes out of scope.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Text(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void Blob(int i, const std::string& v) { sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  std::string ColText(int i) {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, i)) : std::string();
  }
  std::string ColBlob(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, i)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace

const char* TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kInitial: return "Initial";
    case TaskState::kRunning: return "Running";
    case TaskState::kPaused: return "Paused";
  }
  return "Unknown";
}

StatusOr<std::unique_ptr<SqliteMetaStore>> SqliteMetaStore::Open(const std::string& path,
                                                                 const std::string& root_path,
                                                                 SecretBox secrets) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Unavailable("cannot create directory for the task store '" + parent.string() + "': " + ec.message());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Unavailable("cannot open the task store '" + path + "': " + msg);
  }
  std::unique_ptr<SqliteMetaStore> store(new SqliteMetaStore(db, root_path, std::move(secrets)));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  RETURN_IF_ERROR(store->Exec(kSchema));
  RETURN_IF_ERROR(store->AddFailedChangeColumn());
  return store;
}

// Files written before failed_change existed lack the column: add it (another server opening
// the same file may add it first).
Status SqliteMetaStore::AddFailedChangeColumn() {
  auto has_column = [this]() -> StatusOr<bool> {
    Stmt st(db_, "SELECT 1 FROM pragma_table_info('task_info') WHERE name = 'failed_change'");
    if (!st.ok()) return Error("prepare schema check");
    const int rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("schema check");
    return rc == SQLITE_ROW;
  };
  ASSIGN_OR_RETURN(bool present, has_column());
  if (present) return Status::Ok();
  Status added = Exec("ALTER TABLE task_info ADD COLUMN failed_change TEXT NOT NULL DEFAULT ''");
  if (added.ok()) return added;
  ASSIGN_OR_RETURN(present, has_column());
  return present ? Status::Ok() : added;
}

SqliteMetaStore::SqliteMetaStore(sqlite3* db, std::string root_path, SecretBox secrets)
    : db_(db), root_(std::move(root_path)), secrets_(std::move(secrets)) {}

SqliteMetaStore::~SqliteMetaStore() { sqlite3_close(db_); }

Status SqliteMetaStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Unavailable("task store: " + msg);
  }
  return Status::Ok();
}

Status SqliteMetaStore::Error(const std::string& what) const {
  return Unavailable("task store: " + what + ": " + sqlite3_errmsg(db_));
}

Status SqliteMetaStore::PutTask(const TaskRecord& task) {
  ASSIGN_OR_RETURN(std::string sealed, secrets_.Seal(task.secrets_json));
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "INSERT INTO task_info (root, task_id, state, reason, spec, sealed_secrets, create_time_ms, failed_change) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (root, task_id) DO UPDATE SET "
          "state = excluded.state, reason = excluded.reason, spec = excluded.spec, "
          "sealed_secrets = excluded.sealed_secrets, failed_change = excluded.failed_change");
  if (!st.ok()) return Error("prepare put task");
  st.Text(1, root_);
  st.Text(2, task.task_id);
  st.Int(3, static_cast<int>(task.state));
  st.Text(4, task.reason);
  st.Text(5, task.spec_json);
  st.Text(6, sealed);
  st.Int(7, task.create_time_ms);
  st.Text(8, task.failed_change_json);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return Error("put task " + task.task_id);
  return Status::Ok();
}

StatusOr<std::vector<TaskRecord>> SqliteMetaStore::QueryTasks(const std::string& task_id) {
  std::vector<TaskRecord> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, task_id.empty()
                     ? "SELECT task_id, state, reason, spec, sealed_secrets, create_time_ms, failed_change "
                       "FROM task_info WHERE root = ?1 ORDER BY create_time_ms, task_id"
                     : "SELECT task_id, state, reason, spec, sealed_secrets, create_time_ms, failed_change "
                       "FROM task_info WHERE root = ?1 AND task_id = ?2");
    if (!st.ok()) return Error("prepare list tasks");
    st.Text(1, root_);
    if (!task_id.empty()) st.Text(2, task_id);
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      TaskRecord r;
      r.task_id = st.ColText(0);
      int64_t state = sqlite3_column_int64(st.get(), 1);
      if (state < 0 || state > 2) return Internal("task store holds an invalid state for task " + r.task_id);
      r.state = static_cast<TaskState>(state);
      r.reason = st.ColText(2);
      r.spec_json = st.ColText(3);
      r.secrets_json = st.ColText(4);  // still sealed; opened below, outside the lock
      r.create_time_ms = sqlite3_column_int64(st.get(), 5);
      r.failed_change_json = st.ColText(6);
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return Error("list tasks");
  }
  for (auto& r : out) {
    auto opened = secrets_.Open(r.secrets_json);
    if (!opened.ok()) return opened.status().WithContext("task " + r.task_id + " credentials");
    r.secrets_json = std::move(opened).value();
  }
  return out;
}

StatusOr<std::optional<TaskRecord>> SqliteMetaStore::GetTask(const std::string& task_id) {
  if (task_id.empty()) return std::optional<TaskRecord>();
  ASSIGN_OR_RETURN(auto rows, QueryTasks(task_id));
  if (rows.empty()) return std::optional<TaskRecord>();
  return std::optional<TaskRecord>(std::move(rows.front()));
}

StatusOr<std::vector<TaskRecord>> SqliteMetaStore::ListTasks() { return QueryTasks(""); }

Status SqliteMetaStore::DeleteTask(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto rollback = [this](Status st) {
    (void)Exec("ROLLBACK");
    return st;
  };
  int changed = 0;
  {
    Stmt st(db_, "DELETE FROM task_info WHERE root = ?1 AND task_id = ?2");
    if (!st.ok()) return rollback(Error("prepare delete task"));
    st.Text(1, root_);
    st.Text(2, task_id);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return rollback(Error("delete task " + task_id));
    changed = sqlite3_changes(db_);
  }
  {
    Stmt st(db_, "DELETE FROM task_position WHERE root = ?1 AND task_id = ?2");
    if (!st.ok()) return rollback(Error("prepare delete positions"));
    st.Text(1, root_);
    st.Text(2, task_id);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return rollback(Error("delete positions of " + task_id));
  }
  if (changed == 0) return rollback(NotFound("not found the task, task_id: " + task_id));
  return Exec("COMMIT");
}

Status SqliteMetaStore::PutPositions(const std::string& task_id, const std::vector<ChannelPosition>& positions) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const auto& p : positions) {
    Stmt st(db_,
            "INSERT INTO task_position (root, task_id, collection_id, channel, data) VALUES (?1, ?2, ?3, ?4, ?5) "
            "ON CONFLICT (root, task_id, collection_id, channel) DO UPDATE SET data = excluded.data");
    if (!st.ok()) {
      Status err = Error("prepare put position");
      (void)Exec("ROLLBACK");
      return err;
    }
    st.Text(1, root_);
    st.Text(2, task_id);
    st.Int(3, p.collection_id);
    st.Text(4, p.channel);
    st.Blob(5, p.data);
    if (sqlite3_step(st.get()) != SQLITE_DONE) {
      Status err = Error("put position of " + task_id);
      (void)Exec("ROLLBACK");
      return err;
    }
  }
  return Exec("COMMIT");
}

StatusOr<std::vector<ChannelPosition>> SqliteMetaStore::GetPositions(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT collection_id, channel, data FROM task_position WHERE root = ?1 AND task_id = ?2 "
          "ORDER BY collection_id, channel");
  if (!st.ok()) return Error("prepare get positions");
  st.Text(1, root_);
  st.Text(2, task_id);
  std::vector<ChannelPosition> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    out.push_back(ChannelPosition{sqlite3_column_int64(st.get(), 0), st.ColText(1), st.ColBlob(2)});
  }
  if (rc != SQLITE_DONE) return Error("get positions of " + task_id);
  return out;
}

}  // namespace cdc

// SqliteMetaStore: the embedded default MetaStore, one SQLite file (WAL, synchronous
// FULL). Credentials are sealed with a SecretBox before they touch the file.
// Thread-safe: one connection guarded by mu_.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/meta_store.h"
#include "util/secret_box.h"

struct sqlite3;

namespace cdc {

class SqliteMetaStore : public MetaStore {
 public:
  // Opens (creating parent directory, file and schema as needed) the store at `path`.
  // `root_path` namespaces the rows so several servers may share one file.
  static StatusOr<std::unique_ptr<SqliteMetaStore>> Open(const std::string& path, const std::string& root_path,
                                                         SecretBox secrets);
  ~SqliteMetaStore() override;

  Status PutTask(const TaskRecord& task) override;
  StatusOr<std::optional<TaskRecord>> GetTask(const std::string& task_id) override;
  StatusOr<std::vector<TaskRecord>> ListTasks() override;
  Status DeleteTask(const std::string& task_id) override;
  Status PutPositions(const std::string& task_id, const std::vector<ChannelPosition>& positions) override;
  StatusOr<std::vector<ChannelPosition>> GetPositions(const std::string& task_id) override;

 private:
  SqliteMetaStore(sqlite3* db, std::string root_path, SecretBox secrets);
  Status Exec(const std::string& sql);
  Status AddFailedChangeColumn();
  Status Error(const std::string& what) const;
  StatusOr<std::vector<TaskRecord>> QueryTasks(const std::string& task_id);

  std::mutex mu_;
  sqlite3* db_;
  const std::string root_;
  const SecretBox secrets_;
};

}  // namespace cdc

// EtcdMetaStore: the MetaStore kept in etcd (metaStoreConfig.storeType: etcd), under
// metaStoreConfig.rootPath like the official server's store:
//
//   <root>/task_info/<taskID>                              JSON {"task_id", "state", "reason",
//                                                          "spec", "sealed_secrets", "create_time_ms"}
//   <root>/task_position/<taskID>/<collectionID>/<channel>  JSON {"collection_id", "channel",
//                                                          "data": base64 of the position bytes}
//
// Unlike the official store, credentials are sealed with a SecretBox (as in SqliteMetaStore) and
// a task's record is our own TaskRecord, not the Go TaskInfo: the two servers cannot share a root.
//
// Every operation is one etcd call or transaction with the client's deadline; etcd failures are
// kUnavailable naming etcd. Thread-safe: the client is; mu_ only makes PutTask's read-then-write
// (which keeps the first create_time_ms, as the SQLite store does) atomic within this process.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "source/etcd_client.h"
#include "store/meta_store.h"
#include "util/secret_box.h"

namespace cdc {

class EtcdMetaStore : public MetaStore {
 public:
  // Connects to etcd (see EtcdClient::Connect) and returns a store under `root_path`.
  static StatusOr<std::unique_ptr<EtcdMetaStore>> Open(const source::EtcdOptions& options,
                                                       const std::string& root_path, SecretBox secrets);
  // A store over an existing client (shared, e.g. with tests that read the raw keys).
  EtcdMetaStore(std::shared_ptr<source::EtcdClient> client, std::string root_path, SecretBox secrets);

  Status PutTask(const TaskRecord& task) override;
  StatusOr<std::optional<TaskRecord>> GetTask(const std::string& task_id) override;
  StatusOr<std::vector<TaskRecord>> ListTasks() override;
  Status DeleteTask(const std::string& task_id) override;
  Status PutPositions(const std::string& task_id, const std::vector<ChannelPosition>& positions) override;
  StatusOr<std::vector<ChannelPosition>> GetPositions(const std::string& task_id) override;

  // Key layout, for tests and tools.
  std::string TaskKey(const std::string& task_id) const;
  std::string PositionPrefix(const std::string& task_id) const;

 private:
  StatusOr<TaskRecord> DecodeTask(const source::EtcdKv& kv) const;

  std::mutex mu_;
  const std::shared_ptr<source::EtcdClient> client_;
  const std::string root_;  // without a trailing '/'
  const SecretBox secrets_;
};

}  // namespace cdc

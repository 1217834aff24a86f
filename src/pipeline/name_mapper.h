// NameMapper and scope predicates: which source databases and collections a task covers
// and what they are called on the target (`name_mapping`). Immutable; thread-safe.
#pragma once

#include <string>
#include <utility>

#include "target/connect_params.h"
#include "task/task_spec.h"

namespace cdc::pipeline {

// How to reach a task's target (uri/token or the legacy fields, TLS, connect timeout).
target::ConnectParams TargetConnectParams(const MilvusConnectParam& m);

class TaskScope {
 public:
  explicit TaskScope(TaskSpec spec) : spec_(std::move(spec)) {}

  // See TaskSpec::CollectionInScope: the list of `db` (else of `*`), minus excluded and
  // skipped collections.
  bool CollectionInScope(const std::string& db, const std::string& collection) const;
  // True when the entry covering it asks for `use_start_position`: its retained log is
  // replayed from its creation on the task's first start.
  bool ReplayFromCreation(const std::string& db, const std::string& collection) const;
  // Database-level operations (create/drop database) follow only for db_collections tasks
  // with a key that is that database or `*`.
  bool DatabaseInScope(const std::string& db) const;
  // Target names for a source (db, collection).
  std::pair<std::string, std::string> Map(const std::string& db, const std::string& collection) const;
  std::string MapDb(const std::string& db) const;
  const TaskSpec& spec() const { return spec_; }

 private:
  const TaskSpec spec_;
};

}  // namespace cdc::pipeline

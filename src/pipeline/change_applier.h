// ChangeApplier: the LogSink of a replication task. Turns each ordered SourceItem into
// plain Milvus calls on the target (through MilvusApplier), with the task's renames:
//   catalog CreateDatabase/CreateCollection/CreatePartition -> create on the target;
//   DML Insert/Delete -> Insert (Upsert while replaying) / Delete by primary key;
//   DML DropCollection/DropPartition -> drop once every shard's channel reached it;
//   replicate-channel index, load/release, flush and database operations -> the same call.
// Called on the LogReader's dispatch thread only; not thread-safe. Counters are atomic.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "msg.pb.h"
#include "pipeline/name_mapper.h"
#include "source/catalog.h"
#include "source/log_reader.h"
#include "target/milvus_applier.h"
#include "util/metrics.h"

namespace cdc::pipeline {

// Appends the rows of `from` to `into` (inserts into one collection: same fields in the
// same order). False, leaving `into` unchanged, when the two cannot be merged.
bool AppendRows(milvus::proto::msg::InsertRequest* into, const milvus::proto::msg::InsertRequest& from);

class ChangeApplier : public source::LogSink {
 public:
  // Called before a pack with inserts is applied, with the pack's channel and end
  // position, so a restart knows which inserts may already be on the target.
  using IntentWriter = std::function<Status(const std::string& channel, const decode::Position& end)>;

  ChangeApplier(std::string task_id, const TaskScope* scope, target::MilvusApplier* applier, Metrics* metrics,
                IntentWriter intent);

  // Inserts read again after a restart, up to these timestamps per channel, are
  // applied as upserts so no row is doubled.
  void SetReplayBounds(std::map<std::string, uint64_t> bounds) { replay_until_ = std::move(bounds); }
  // The timestamps the channels resumed from: a channel resumed past a drop already read
  // it before the restart, so the drop's barrier does not wait for it again.
  void SetResumedAt(std::map<std::string, uint64_t> ts) { resumed_at_ = std::move(ts); }

  // Makes the target hold every in-scope database, collection, partition and index the
  // catalog knows (existing ones are checked for schema equality), and loads the ones
  // `loaded` on the source (collection id -> replicas).
  Status Bootstrap(const source::Catalog& catalog, const std::map<int64_t, int32_t>& loaded = {});

  Status Apply(const source::SourceItem& item) override;

  int64_t rows_inserted() const { return rows_inserted_.load(); }
  int64_t rows_deleted() const { return rows_deleted_.load(); }
  int64_t operations() const { return operations_.load(); }

 private:
  Status ApplyPack(const source::SourceItem& item);  // times the stages of ApplyEvents
  Status ApplyEvents(const source::SourceItem& item);
  bool ResumedPast(const std::string& channel, uint64_t ts) const;
  Status ApplyCatalog(const source::CatalogEvent& e);
  Status ApplyReplicate(const decode::Event& e);
  Status EnsureDatabase(const std::string& target_db);
  Status EnsureCollection(const source::CollectionMeta& meta);
  // Drops the target database, first dropping the collections this task put there: on the
  // source, their DropCollection messages may carry a later timestamp than the drop of
  // their database.
  Status DropDatabase(const std::string& target_db);
  Status CreateIndexFromMeta(const source::CollectionMeta& meta, const source::IndexMeta& index);
  void CountOp(const std::string& api);
  std::string PkFieldName(const source::CollectionMeta& meta) const;

  const std::string task_id_;
  const TaskScope* const scope_;
  target::MilvusApplier* const applier_;
  Metrics* const metrics_;
  const IntentWriter intent_;

  std::map<std::string, uint64_t> replay_until_;
  std::map<std::string, uint64_t> resumed_at_;
  std::set<std::string> databases_;                  // target databases known to exist
  std::map<int64_t, std::pair<std::string, std::string>> collections_;  // source id -> target (db, name)
  std::set<int64_t> dropped_;                        // source collection ids dropped on the target
  std::map<int64_t, std::set<std::string>> drop_seen_;  // collection -> channels whose drop was read
  std::map<std::pair<int64_t, int64_t>, std::set<std::string>> partition_drop_seen_;
  std::set<int32_t> not_replicated_;  // replicate-channel types already reported as skipped
  std::atomic<int64_t> rows_inserted_{0};
  std::atomic<int64_t> rows_deleted_{0};
  std::atomic<int64_t> operations_{0};
};

}  // namespace cdc::pipeline

// ChangeApplier: the LogSink of a replication task. Turns each ordered SourceItem into
// plain Milvus calls on the target (through MilvusApplier), with the task's renames:
//   catalog CreateDatabase/CreateCollection/CreatePartition -> create on the target;
//   catalog aliases, renames, property changes -> CreateAlias/AlterAlias/DropAlias,
//     RenameCollection, AlterCollection; RBAC changes -> RbacSync (enable_user_role);
//   DML Insert/Delete -> Insert (Upsert while replaying) / Delete by primary key;
//   DML DropCollection/DropPartition -> drop once every shard's channel reached it;
//   replicate-channel index, load/release, flush and database operations -> the same call.
// Called on the LogReader's dispatch thread only; not thread-safe. Counters are atomic.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_set>
#include <string>
#include <vector>

#include "msg.pb.h"
#include "pipeline/backfill_gate.h"
#include "pipeline/name_mapper.h"
#include "pipeline/rbac_sync.h"
#include "pipeline/standby_writer.h"
#include "pipeline/upsert_pairs.h"
#include "task/pipeline.h"
#include "source/catalog.h"
#include "source/log_reader.h"
#include "target/milvus_applier.h"
#include "util/metrics.h"

namespace cdc::pipeline {

// Appends the rows of `from` to `into` (inserts into one collection: same fields in the
// same order). False, leaving `into` unchanged, when the two cannot be merged.
bool AppendRows(milvus::proto::msg::InsertRequest* into, const milvus::proto::msg::InsertRequest& from);

// Early apply: the timestamp t0 from which a closed pack's changes must be applied again,
// or 0. A change applied at the close (not early) whose keys an early change (of this pack,
// or `carried` over past its tick) with a timestamp at or after its own already wrote was
// applied out of order: concurrent writes reached the log out of timestamp order, or an
// Upsert's Delete half came after other writes.
uint64_t MisorderedSince(const std::vector<source::RoutedEvent>& events,
                         const std::vector<source::RoutedEvent>& carried);

// The timestamp of the earliest upsert of `events` (a closed pack) whose Insert half was applied
// early as a plain Insert (its msgID in `early_plain`), or 0.
uint64_t SplitPairSince(const std::vector<source::RoutedEvent>& events, const std::unordered_set<int64_t>& early_plain);

class ChangeApplier : public source::LogSink {
 public:
  // Called before a pack with inserts is applied, with the pack's channel and end
  // position, so a restart knows which inserts may already be on the target.
  using IntentWriter = std::function<Status(const std::string& channel, const decode::Position& end)>;

  // `catalog` resolves aliases and former names; it outlives the applier.
  ChangeApplier(std::string task_id, const TaskScope* scope, const source::Catalog* catalog,
                target::MilvusApplier* applier, Metrics* metrics, IntentWriter intent);

  // The source's current properties of a collection, read from the source Milvus (etcd holds
  // them one AlterCollection late in Milvus 2.3). Unset: the catalog's (etcd) values are used.
  using PropertiesReader = std::function<StatusOr<std::vector<std::pair<std::string, std::string>>>(
      const std::string& db, const std::string& collection)>;
  void SetPropertiesReader(PropertiesReader reader) { read_properties_ = std::move(reader); }

  // Backfill (backfill_gate.h): the applier reports applied keys and positions to `gate` and
  // writes its ready chunks between packs. `on_enter_scope` is told of a collection renamed
  // into the scope. Both set before Apply is first called.
  void SetBackfill(BackfillGate* gate, std::function<void(int64_t collection_id)> on_enter_scope) {
    gate_ = gate;
    on_enter_scope_ = std::move(on_enter_scope);
  }

  // Replicate write mode: data goes through `writer` (a standby target), DDL calls carry the
  // source's timestamps; no intents, no upserts. Set before Bootstrap.
  void SetStandby(StandbyWriter* writer) { standby_ = writer; }

  // Inserts read again after a restart, up to these timestamps per channel, are
  // applied as upserts so no row is doubled.
  void SetReplayBounds(std::map<std::string, uint64_t> bounds) {
    replay_until_ = std::move(bounds);
    intent_until_ = replay_until_;  // a stored bound never moves back
  }
  // The timestamps the channels resumed from: a channel resumed past a drop already read
  // it before the restart, so the drop's barrier does not wait for it again.
  void SetResumedAt(std::map<std::string, uint64_t> ts) { resumed_at_ = std::move(ts); }

  // Makes the target hold every in-scope database, collection (schema checked, properties
  // made equal), partition, index and alias the catalog knows, loads the ones `loaded` on the
  // source (collection id -> replicas), and with enable_user_role syncs roles and grants.
  Status Bootstrap(const std::map<int64_t, int32_t>& loaded = {});

  ~ChangeApplier() override;

  Status Apply(const source::SourceItem& item) override;

  int64_t rows_inserted() const { return rows_inserted_.load(); }
  int64_t rows_deleted() const { return rows_deleted_.load(); }
  int64_t operations() const { return operations_.load(); }
  // Thread-safe.
  std::vector<std::string> missing_users() const;
  // The change whose failure stopped Apply or Bootstrap (thread-safe).
  std::optional<FailedChange> failed_change() const;

 private:
  Status BootstrapInner(const std::map<int64_t, int32_t>& loaded);
  Status ApplyPack(const source::SourceItem& item);  // times the stages of ApplyEvents
  Status ApplyEvents(const source::SourceItem& item);
  // Applies `ordered` (sorted here into source order) with the pack's upsert pairs; `count`:
  // add them to the replicated-row counters.
  Status ApplyInOrder(const source::SourceItem& item, std::vector<const source::RoutedEvent*> ordered,
                      const UpsertPairs& pairs, const std::function<bool(const decode::Event&)>& as_upsert,
                      bool count);
  // Sends a plain insert call on its own thread, at most kMaxInFlight per channel (waiting for
  // the oldest); an error of an earlier call is returned here.
  Status Launch(const std::string& channel, std::function<Status()> call, std::string where);
  // Waits for every call in flight; the first error.
  Status Drain();
  // After a closed pack: applies again, in order, the channel's changes from t0 on (0: none),
  // this pack's and those `carried` past its tick.
  Status RepairOrder(const source::SourceItem& item, const std::vector<source::RoutedEvent>& carried, uint64_t t0);
  // ApplyEvents for a standby target: the pack's messages through the StandbyWriter.
  Status ApplyStandby(const source::SourceItem& item);
  // Names the DML-channel change being applied (for failed_change) and returns it for messages.
  std::string TrackEvent(const source::CollectionMeta& meta, const decode::Event& e);
  // A DropCollection/DropPartition message: the target call once every shard's channel read it.
  Status ApplyDrop(const source::SourceItem& item, const source::RoutedEvent& r, const std::string& where);
  // Reports the keys of a pack's inserts and deletes to the backfill gate.
  void TouchKeys(const source::SourceItem& item);
  // Writes the backfill chunks the gate has ready; a failure goes to the chunk, not the task.
  void EmitBackfill();
  bool ResumedPast(const std::string& channel, uint64_t ts) const;
  Status ApplyCatalog(const source::CatalogEvent& e);
  Status ApplyReplicate(const decode::Event& e);
  Status ApplyAlias(const source::CatalogEvent& e);
  Status ApplyRename(const source::CatalogEvent& e);
  Status ApplyProperties(const source::CollectionMeta& meta);
  StatusOr<std::vector<std::pair<std::string, std::string>>> SourceProperties(const source::CollectionMeta& meta);
  // Creates the collection's source aliases on the target.
  Status EnsureAliases(const source::CollectionMeta& meta);
  // Target names for a replicate-channel operation on source (db, name): a collection renamed
  // since is found under its new name.
  std::pair<std::string, std::string> MapReplicated(const std::string& db, const std::string& name) const;
  bool InScope(const source::CollectionMeta* meta) const;
  // The target (db, name) of a source collection: where it was created, else its mapped name.
  std::pair<std::string, std::string> TargetOf(const source::CollectionMeta& meta) const;
  // Records `st` (an error) as the failed change; returns it.
  Status Failed(Status st);
  // Names the change being applied, for failed_change().
  void Track(const std::string& db, const std::string& collection, const std::string& op, const std::string& position);
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
  const source::Catalog* const catalog_;
  target::MilvusApplier* const applier_;
  Metrics* const metrics_;
  const IntentWriter intent_;

  std::map<std::string, uint64_t> replay_until_;
  std::map<std::string, uint64_t> intent_until_;  // per channel: the stored intent's bound
  // Per channel: events applied from open packs whose closed pack has not come yet.
  std::map<std::string, std::vector<source::RoutedEvent>> early_open_;
  // Per channel: msgIDs of the Inserts of early_open_ applied as plain Inserts.
  std::map<std::string, std::unordered_set<int64_t>> early_plain_;
  struct InFlight {
    std::future<Status> result;
    std::string where;
  };
  std::map<std::string, std::deque<InFlight>> in_flight_;  // per channel, oldest first
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
  std::unique_ptr<RbacSync> rbac_;  // with enable_user_role
  StandbyWriter* standby_ = nullptr;  // replicate write mode
  BackfillGate* gate_ = nullptr;
  std::function<void(int64_t)> on_enter_scope_;
  std::atomic<int64_t> rows_backfilled_{0};
  PropertiesReader read_properties_;
  FailedChange current_;            // the change being applied
  mutable std::mutex failed_mu_;    // guards failed_
  std::optional<FailedChange> failed_;
};

}  // namespace cdc::pipeline

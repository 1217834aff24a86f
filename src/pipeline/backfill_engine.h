// BackfillEngine: copies the rows a source collection already holds onto the target while the
// task streams (TaskSpec::backfill, the `backfill` request, a collection renamed into scope).
// Its thread reads each collection in primary-key order through the source's Query API, a
// chunk at a time, and hands every chunk to the BackfillGate, which writes it (as an Upsert)
// between two source packs once the stream has caught up with the chunk's read time, without
// the keys the stream changed meanwhile (see backfill_gate.h). Progress is stored per
// collection after every chunk the target acknowledged (store/backfill_state.h), so a restart
// continues from there; re-writing a chunk is an Upsert, so nothing doubles.
//   pending -> copying -> done | failed (reason)
// Owned by a TaskPipeline; Start/Stop from its thread; Request and Progress from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pipeline/backfill_gate.h"
#include "pipeline/name_mapper.h"
#include "source/catalog.h"
#include "store/backfill_state.h"
#include "store/meta_store.h"
#include "target/source_reader.h"
#include "task/pipeline.h"
#include "util/metrics.h"

namespace cdc::pipeline {

class BackfillEngine {
 public:
  struct Context {
    std::string task_id;
    MetaStore* store = nullptr;
    Metrics* metrics = nullptr;
    const TaskScope* scope = nullptr;
    const source::Catalog* catalog = nullptr;
    target::SourceReader* source = nullptr;  // null: no sourceConfig.milvus; every copy fails saying so
    BackfillGate* gate = nullptr;
    int64_t max_chunk_bytes = 4 << 20;
  };

  explicit BackfillEngine(Context ctx);
  ~BackfillEngine();

  // Loads the stored states; with `queue_in_scope` (a first start of a task with backfill) every
  // in-scope collection the catalog holds is queued. Starts the thread.
  Status Start(bool queue_in_scope);
  void Stop();

  // Queues these source collections (db, name) for a fresh copy. Thread-safe.
  Status Request(const std::vector<std::pair<std::string, std::string>>& collections);
  // Queues a collection by id (a rename brought it into the scope). Thread-safe.
  void RequestId(int64_t collection_id);
  // Repair: re-copies these keys of a source collection (deleting on the target those the
  // source does not hold), through the gate like a copy; `done` is called once every chunk was
  // written or the repair failed. Not stored: an interrupted repair is simply asked again.
  // The source collection id of db.name; NotFound / InvalidArgument when not in the catalog or scope.
  StatusOr<int64_t> IdOf(const std::string& db, const std::string& name) const;
  void RepairKeys(int64_t collection_id, std::vector<target::PkValue> keys, std::function<void(const Status&)> done);
  std::vector<BackfillProgress> Progress() const;

 private:
  void Run();
  // Copies one collection from its stored state; returns when done, failed or stopping.
  void Copy(int64_t collection_id);
  Status CopyPartitions(BackfillState state, const source::CollectionMeta& meta);
  struct Repair {
    int64_t collection_id;
    std::vector<target::PkValue> keys;
    std::function<void(const Status&)> done;
  };
  Status RepairChunks(Repair& job);
  // Stores the collection's current state (one writer at a time, so the newest state wins).
  void Persist(int64_t collection_id);
  void Fail(int64_t collection_id, const std::string& reason);
  // Called on the dispatch thread when a chunk was written.
  void Acknowledged(int64_t collection_id, int partition_index, const target::PkValue& hi, const Status& st,
                    int64_t rows);
  void Queue(const source::CollectionMeta& meta);
  void LogProgress();

  const Context ctx_;
  std::thread thread_;
  std::mutex persist_mu_;  // serializes Persist
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable wake_;
  std::map<int64_t, BackfillState> states_;  // by source collection id
  std::deque<int64_t> queue_;                // ids to copy, in order
  std::deque<Repair> repairs_;
  struct Rate {
    std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> samples;  // (when, rows copied)
  };
  std::map<int64_t, Rate> rates_;
  std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace cdc::pipeline

// MetaFollower: keeps a Catalog equal to the source Milvus's etcd metadata. Start loads
// a consistent snapshot, then watches from the next revision; a compacted watch is
// repaired by a fresh read. Catalog events are queued for one consumer (TakeEvents).
// Owns its watch threads (Start/Stop). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "source/catalog.h"
#include "source/etcd_client.h"
#include "util/status.h"

namespace cdc::source {

class MetaFollower {
 public:
  MetaFollower(EtcdClient* etcd, Catalog* catalog);
  ~MetaFollower();

  // Reads the snapshot (blocking) and starts the watches.
  Status Start();
  // Stops the watches; blocks until their threads exited.
  void Stop();

  // Re-reads every watched key and applies what changed, so the catalog reflects every
  // etcd change made before this call (used when the log mentions a collection the
  // catalog does not know yet). Events it finds are queued like watch events.
  Status Refresh();

  // Takes the queued catalog events, oldest first.
  std::vector<CatalogEvent> TakeEvents();
  // Called (from a watch thread) whenever events were queued.
  void SetNotify(std::function<void()> notify);

  // OK while the watches are healthy; else the last error (naming etcd).
  Status health() const;

 private:
  Status LoadAndWatch(bool initial);
  void OnEvents(const std::vector<EtcdEvent>& raw_events);
  void OnError(const Status& st);
  void Queue(std::vector<CatalogEvent> events);
  void RepairLoop();

  EtcdClient* const etcd_;
  Catalog* const catalog_;

  mutable std::mutex mu_;  // guards everything below
  std::deque<CatalogEvent> events_;
  std::function<void()> notify_;
  Status health_;
  bool stopped_ = false;
  bool needs_repair_ = false;
  std::condition_variable repair_cv_;
  std::thread repair_thread_;  // re-reads and re-watches after a compacted watch
  std::vector<std::unique_ptr<EtcdClient::Watch>> watches_;
  std::mutex watch_mu_;  // serializes (re)starting watches
};

}  // namespace cdc::source

// LogReader: everything a task reads from the source, merged into one ordered stream
// for a LogSink. It follows the etcd metadata (MetaFollower/Catalog), reads every DML
// pchannel that an in-scope collection uses plus the replicate channel (one
// ChannelReader each, started and stopped as collections come and go), resolves each
// DML message's collection by id, drops what is out of scope, and orders the output:
//   - packs of one pchannel in log order;
//   - a DDL item (catalog change or replicate-channel operation) with timestamp T only
//     once every DML channel has been read past T, and before any pack ending after T.
// The sink is called on the LogReader's own dispatch thread; a failed Apply stops the
// reader with that error. Start/Stop own all threads. Status accessors are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "decode/event.h"
#include "source/catalog.h"
#include "source/channel_hub.h"
#include "source/channel_reader.h"
#include "source/meta_follower.h"
#include "source/mq_factory.h"
#include "util/status.h"

namespace cdc::source {

struct RoutedEvent {
  decode::Event event;
  std::shared_ptr<const CollectionMeta> collection;  // DML channels: the resolved collection
};

struct SourceItem {
  enum class Kind { kPack, kCatalog, kReplicate };
  Kind kind = Kind::kPack;
  std::string channel;
  uint64_t ts = 0;                // kPack: end_ts; others: the operation's timestamp
  decode::Position end_position;  // resume point after this item (kPack, kReplicate)
  std::chrono::steady_clock::time_point closed_at{};  // kPack: when its closing tick was read
  // kPack: an open pack's events, applied before their tick (end_position: the checkpoint as
  // it was). The closed pack repeats them, marked Event::early.
  bool open = false;
  std::vector<RoutedEvent> events;  // kPack: in-scope events (may be empty); kReplicate: one
  CatalogEvent catalog;             // kCatalog
};

class LogSink {
 public:
  virtual ~LogSink() = default;
  // Applies one item; returning an error stops the reader.
  virtual Status Apply(const SourceItem& item) = 0;
};

struct LogReaderOptions {
  MqConfig mq;
  std::string replicate_channel;  // empty: do not read it
  // Scope: which collections and databases the task covers.
  std::function<bool(const std::string& db, const std::string& collection)> collection_in_scope;
  std::function<bool(const std::string& db)> database_in_scope;
  bool rbac = false;  // pass role, user and grant changes (extra_info.enable_user_role)
  // Where to start channels without a stored position: kEarliest replays every collection's
  // retained log from its creation; replay_from_creation asks it per collection.
  enum class From { kLatest, kEarliest } from = From::kLatest;
  std::function<bool(const std::string& db, const std::string& collection)> replay_from_creation;
  // The end of each channel when the task first started: what a collection that does not replay
  // from its creation wrote before it predates the task and is dropped.
  std::map<std::string, int64_t> pins;
  std::map<std::string, decode::Position> resume;  // stored checkpoints by channel
  size_t queue_packs = 64;
  // Emit open packs (SourceItem::open): Inserts and Deletes as soon as they are read, ahead of
  // the tick that closes them, where the order allows (PackAssembler::TakeEarly, DDL items).
  bool early = false;
  // Share each DML channel's reader with the other tasks of this process (ChannelHub);
  // null: read every channel on our own.
  ChannelHub* hub = nullptr;
};

struct ChannelStatus {
  std::string channel;
  decode::Position applied;    // resume point after the last applied item
  uint64_t read_ts = 0;        // newest tick read
  int64_t next_offset = -1;
  int64_t high_watermark = -1;
  std::string error;
  bool active = false;         // still read (a retired channel keeps only its checkpoint)
};

class LogReader {
 public:
  LogReader(LogReaderOptions options, MetaFollower* follower, Catalog* catalog, LogSink* sink);
  ~LogReader();

  // Starts the channel readers for the in-scope collections the catalog knows (the
  // follower must be started) and the dispatch thread.
  Status Start();
  void Stop();

  // OK while reading; else the error that stopped it (names Kafka, etcd, a channel and
  // offset, or the sink's failure).
  Status health() const;
  // The error that stopped the dispatch (the sink failed, a message did not decode);
  // OK while it runs. Unlike a channel's outage it does not heal.
  Status fatal() const;
  std::vector<ChannelStatus> Channels() const;
  uint64_t skipped_unknown_collection() const { return skipped_unknown_.load(); }

 private:
  struct Pending {  // a DDL item waiting for the DML channels to pass its timestamp
    SourceItem item;
    bool operator<(const Pending& o) const { return item.ts < o.item.ts; }
  };

  void Dispatch();
  // One pass over inputs; returns true if it made progress.
  StatusOr<bool> Step();
  void TakeCatalogEvents();
  Status EnsureChannel(const std::string& pchannel, std::optional<int64_t> start_offset);
  void RetireIdleChannels();
  bool InScope(const CollectionMeta& c) const;
  bool Replays(const CollectionMeta& c) const;
  // True when `offset` of `channel` predates the task for a collection that does not replay.
  bool BeforePin(const std::string& channel, int64_t offset) const;
  bool ReplicateInScope(const decode::Event& ev) const;
  // Routes a pack's events; an unknown collection triggers one metadata refresh.
  StatusOr<SourceItem> Route(const decode::Pack& pack, bool* needs_refresh);
  Status Emit(const SourceItem& item);
  // Emits `pack` (its events up to `up_to` only, without advancing the checkpoint, when
  // splitting around a DDL item). False when a metadata refresh queued an earlier DDL
  // item, which must go first.
  StatusOr<bool> EmitPack(const std::string& channel, const decode::Pack& pack, uint64_t up_to);
  // Emits an open pack's events up to the next DDL item. Past it, or when they name a
  // collection or partition the catalog lacks, the channel's events wait for their tick.
  Status EmitOpen(const std::string& channel, const decode::Pack& pack, uint64_t next_ddl);
  // Pops a closed pack: its events applied early are done.
  void PopClosed(const std::string& channel, PackSource* reader, const decode::Pack& pack);
  void Wake();

  const LogReaderOptions options_;
  MetaFollower* const follower_;
  Catalog* const catalog_;
  LogSink* const sink_;

  std::thread dispatch_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> skipped_unknown_{0};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;

  // Dispatch thread only, except where noted.
  std::map<std::string, std::unique_ptr<PackSource>> dml_;  // guarded by status_mu_ for readers
  std::unique_ptr<ChannelReader> replicate_;
  std::multiset<Pending> pending_;
  std::set<int64_t> announced_;  // collections whose creation was emitted or pre-existed
  // In-scope collections each pchannel still carries (until their DropCollection message).
  std::map<std::string, std::set<int64_t>> channel_collections_;
  // Per channel: events of the queued head pack up to this ts were emitted by a split.
  std::map<std::string, uint64_t> partial_;
  // Per channel: msgIDs emitted from open packs and not yet closed; channels whose open
  // events wait for the tick until the current pack closes.
  std::map<std::string, std::unordered_set<int64_t>> early_ids_;
  std::set<std::string> early_blocked_;
  std::chrono::steady_clock::time_point last_open_refresh_{};

  mutable std::mutex status_mu_;  // guards health_, applied_, dml_ map shape
  Status health_;
  std::map<std::string, decode::Position> applied_;
};

}  // namespace cdc::source

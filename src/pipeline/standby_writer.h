// StandbyWriter: the data half of `replicate` write mode. A standby target (Milvus with
// common.ttMsgEnabled=false) takes the source's own msgstream messages through ReplicateMessage,
// one physical channel at a time, and its reads advance only with the time ticks we send.
//
//   source pack on pchannel P ──rewrite ids──> ReplicateMessage(Q, msgs)   for each target pchannel Q
//                              ──checkpoint P (stored before any tick covers it)
//                              ──TimeTick(t) on every Q fed by P, t = min over Q's feeders
//
// No doubles: a standby drops Insert/Delete whose msgID repeats between two ticks of a channel
// (MqTtMsgStream). A pack's data is only covered by a tick once its checkpoint is stored, so a
// restart re-sends exactly the packs no tick covered, with their original msgIDs, and the
// target drops what it already has. Messages keep their timestamps, rowIDs and columns; only
// collection/partition ids, shard and names are rewritten to the target's.
//
// One per task, called on the applier thread only; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "decode/event.h"
#include "source/catalog.h"
#include "source/log_reader.h"
#include "target/milvus_applier.h"
#include "util/status.h"

namespace cdc::pipeline {

class StandbyWriter {
 public:
  // Stores `end` as the checkpoint of `channel`, durably, before returning.
  using CheckpointWriter = std::function<Status(const std::string& channel, const decode::Position& end)>;

  StandbyWriter(target::MilvusApplier* applier, CheckpointWriter checkpoint,
                std::chrono::milliseconds tick_interval = std::chrono::milliseconds(200));

  // Learns where a source collection lives on the target (its id, shards and partitions), so
  // its messages can be rewritten and its channels ticked. Called once it exists there.
  Status Map(const source::CollectionMeta& meta, const std::string& db, const std::string& name);
  // The collection is gone on the target: stop writing to and ticking for it.
  void Forget(int64_t source_collection_id);
  bool Mapped(int64_t source_collection_id) const { return collections_.count(source_collection_id) > 0; }

  // Sends the pack's data (Insert, Delete, DropCollection, DropPartition of mapped collections)
  // to the target channels, stores its checkpoint when it had any, then ticks. `skip` says which
  // events stay out (e.g. a dropped collection's). Returns rows sent by kind through the counters.
  Status SendPack(const source::SourceItem& item, const std::function<bool(const source::RoutedEvent&)>& skip);

  // A pack with nothing for the standby (e.g. read while the task is paused): everything on
  // `channel` up to `ts` is sent; ticks the target channels it feeds.
  Status TickOnly(const std::string& channel, uint64_t ts);

  int64_t rows_inserted() const { return rows_inserted_; }
  int64_t rows_deleted() const { return rows_deleted_; }

 private:
  struct Target {  // one source collection on the target
    int64_t id = 0;
    std::string db, name;
    std::vector<std::string> vchannels, pchannels;  // by shard
    std::vector<std::string> source_pchannels;      // by shard
    std::map<std::string, int64_t> partitions;      // name -> target id
  };

  // The target shard of a source message (by its shard name); -1 if unknown.
  static int ShardOf(const source::CollectionMeta& meta, const std::string& vchannel);
  StatusOr<int64_t> PartitionId(Target& t, const std::string& name);
  // The message rewritten for the target, serialized; empty when it is not sent.
  StatusOr<std::string> Rewrite(const source::RoutedEvent& r, Target& t, int shard);
  // Ticks every target channel `channel` feeds that can advance.
  Status TickFrom(const std::string& channel);
  Status SendTick(const std::string& pchannel, uint64_t ts);

  target::MilvusApplier* const applier_;
  const CheckpointWriter checkpoint_;
  const std::chrono::milliseconds tick_interval_;

  std::map<int64_t, Target> collections_;                 // by source collection id
  std::map<std::string, std::map<std::string, int>> feeders_;  // target pchannel -> source pchannel -> uses
  std::map<std::string, uint64_t> safe_ts_;               // source pchannel -> every message up to it is sent and stored
  struct TickState {
    uint64_t ts = 0;
    std::chrono::steady_clock::time_point at{};
    uint64_t data_ts = 0;  // newest message time sent; a tick below it leaves data unticked
  };
  std::map<std::string, TickState> ticks_;                // by target pchannel
  int64_t rows_inserted_ = 0;
  int64_t rows_deleted_ = 0;
};

// The sink of a paused task's idle ticker: reads on from the stored checkpoints and forwards
// the source's ticks while no change is waiting, so Strong reads on the standby answer while
// the task is paused. A channel stops ticking at its first pack with an in-scope change (that
// change waits for the resume) or if it has no stored checkpoint; every channel stops at the
// first metadata change of the scope. Sends no data, stores nothing.
class StandbyTickSink : public source::LogSink {
 public:
  StandbyTickSink(StandbyWriter* writer, std::set<std::string> checkpointed)
      : writer_(writer), checkpointed_(std::move(checkpointed)) {}
  Status Apply(const source::SourceItem& item) override;

 private:
  StandbyWriter* const writer_;
  const std::set<std::string> checkpointed_;
  std::set<std::string> held_;  // channels with a change waiting
  bool held_all_ = false;       // a metadata change is waiting
};

}  // namespace cdc::pipeline

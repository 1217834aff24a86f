#include "pipeline/standby_writer.h"

#include <algorithm>
#include <limits>

#include "decode/decoder.h"
#include "msg.pb.h"
#include "util/log.h"

namespace cdc::pipeline {

namespace msgpb = milvus::proto::msg;
namespace commonpb = milvus::proto::common;
using decode::MsgType;

namespace {

// A ReplicateMessage request stays well under the target's 64 MiB receive limit; one is sent
// as soon as it holds kFlushBytes.
constexpr size_t kMaxRequestBytes = 32 << 20;
constexpr size_t kFlushBytes = 4 << 20;

bool Is(const decode::Event& e, MsgType t) { return e.msg_type == static_cast<int32_t>(t); }

// The serialized source message with some fields overridden: protobuf keeps the last value of a
// repeated singular field, so appending the overrides rewrites them without copying the rows.
template <typename M>
std::string WithOverrides(const google::protobuf::Message& source, const M& overrides) {
  std::string bytes = source.SerializeAsString();
  overrides.AppendToString(&bytes);
  return bytes;
}

}  // namespace

StandbyWriter::StandbyWriter(target::MilvusApplier* applier, CheckpointWriter checkpoint,
                             std::chrono::milliseconds tick_interval)
    : applier_(applier), checkpoint_(std::move(checkpoint)), tick_interval_(tick_interval) {}

Status StandbyWriter::Map(const source::CollectionMeta& meta, const std::string& db, const std::string& name) {
  ASSIGN_OR_RETURN(auto described, applier_->DescribeCollection(db, name));
  Target t;
  t.id = described.collectionid();
  t.db = db;
  t.name = name;
  t.vchannels.assign(described.virtual_channel_names().begin(), described.virtual_channel_names().end());
  t.pchannels.assign(described.physical_channel_names().begin(), described.physical_channel_names().end());
  t.source_pchannels = meta.pchannels;
  if (t.vchannels.size() != meta.vchannels.size() || t.pchannels.size() != meta.vchannels.size()) {
    return FailedPrecondition("collection " + db + "." + name + " has " + std::to_string(t.vchannels.size()) +
                              " shards on the target but " + std::to_string(meta.vchannels.size()) +
                              " on the source; a standby needs the same shard count");
  }
  ASSIGN_OR_RETURN(t.partitions, applier_->ShowPartitions(db, name));
  Forget(meta.id);
  for (size_t i = 0; i < t.pchannels.size(); ++i) {
    if (i < t.source_pchannels.size()) ++feeders_[t.pchannels[i]][t.source_pchannels[i]];
  }
  std::string channels;
  for (const auto& c : t.pchannels) channels += (channels.empty() ? "" : ",") + c;
  GetLogger("apply")->info("standby: {}.{} (source id {}) is target id {} on {}", db, name, meta.id, t.id, channels);
  collections_[meta.id] = std::move(t);
  return Status::Ok();
}

void StandbyWriter::Forget(int64_t source_collection_id) {
  auto it = collections_.find(source_collection_id);
  if (it == collections_.end()) return;
  const Target& t = it->second;
  for (size_t i = 0; i < t.pchannels.size() && i < t.source_pchannels.size(); ++i) {
    auto& uses = feeders_[t.pchannels[i]];
    if (--uses[t.source_pchannels[i]] <= 0) uses.erase(t.source_pchannels[i]);
    if (uses.empty()) feeders_.erase(t.pchannels[i]);
  }
  collections_.erase(it);
}

int StandbyWriter::ShardOf(const source::CollectionMeta& meta, const std::string& vchannel) {
  for (size_t i = 0; i < meta.vchannels.size(); ++i) {
    if (meta.vchannels[i] == vchannel) return static_cast<int>(i);
  }
  return -1;
}

StatusOr<int64_t> StandbyWriter::PartitionId(Target& t, const std::string& name) {
  if (auto it = t.partitions.find(name); it != t.partitions.end()) return it->second;
  ASSIGN_OR_RETURN(t.partitions, applier_->ShowPartitions(t.db, t.name));  // created since
  if (auto it = t.partitions.find(name); it != t.partitions.end()) return it->second;
  return NotFound("partition " + name + " of " + t.db + "." + t.name + " is not on the target");
}

StatusOr<std::string> StandbyWriter::Rewrite(const source::RoutedEvent& r, Target& t, int shard) {
  const decode::Event& e = r.event;
  if (const auto* m = decode::PayloadAs<msgpb::InsertRequest>(e)) {
    msgpb::InsertRequest o;
    o.set_shardname(t.vchannels[shard]);
    o.set_db_name(t.db);
    o.set_collection_name(t.name);
    o.set_collectionid(t.id);
    ASSIGN_OR_RETURN(int64_t pid, PartitionId(t, m->partition_name()));
    o.set_partitionid(pid);
    rows_inserted_ += static_cast<int64_t>(m->num_rows());
    return WithOverrides(*m, o);
  }
  if (const auto* m = decode::PayloadAs<msgpb::DeleteRequest>(e)) {
    msgpb::DeleteRequest o;
    o.set_shardname(t.vchannels[shard]);
    o.set_db_name(t.db);
    o.set_collection_name(t.name);
    o.set_collectionid(t.id);
    if (m->partitionid() != -1 && !m->partition_name().empty()) {
      ASSIGN_OR_RETURN(int64_t pid, PartitionId(t, m->partition_name()));
      o.set_partitionid(pid);
    }
    rows_deleted_ += m->num_rows();
    return WithOverrides(*m, o);
  }
  if (const auto* m = decode::PayloadAs<msgpb::DropCollectionRequest>(e)) {
    msgpb::DropCollectionRequest o;
    o.set_db_name(t.db);
    o.set_collectionname(t.name);
    o.set_collectionid(t.id);
    return WithOverrides(*m, o);
  }
  if (const auto* m = decode::PayloadAs<msgpb::DropPartitionRequest>(e)) {
    auto pid = PartitionId(t, m->partition_name());
    if (!pid.ok()) return std::string();  // already gone on the target
    msgpb::DropPartitionRequest o;
    o.set_db_name(t.db);
    o.set_collection_name(t.name);
    o.set_collectionid(t.id);
    o.set_partitionid(*pid);
    return WithOverrides(*m, o);
  }
  return std::string();
}

Status StandbyWriter::SendPack(const source::SourceItem& item,
                               const std::function<bool(const source::RoutedEvent&)>& skip) {
  // Messages go out per target channel in requests of up to kFlushBytes, as they are rewritten,
  // so memory holds about one request per channel, not a whole pack.
  struct Request {
    std::vector<std::string> msgs;
    size_t bytes = 0;
    uint64_t begin = std::numeric_limits<uint64_t>::max(), end = 0;
  };
  std::map<std::string, Request> pending;  // by target pchannel
  bool sent = false;
  auto flush = [&](const std::string& pchannel, Request& req) -> Status {
    if (req.msgs.empty()) return Status::Ok();
    RETURN_IF_ERROR(applier_->ReplicateMessage(pchannel, req.begin, req.end, std::move(req.msgs)));
    TickState& tick = ticks_[pchannel];
    tick.data_ts = std::max(tick.data_ts, req.end);
    sent = true;
    req = Request();
    return Status::Ok();
  };
  for (const auto& r : item.events) {
    const decode::Event& e = r.event;
    const bool dml = Is(e, MsgType::kInsert) || Is(e, MsgType::kDelete);
    if ((!dml && !Is(e, MsgType::kDropCollection) && !Is(e, MsgType::kDropPartition)) || skip(r)) continue;
    auto it = collections_.find(e.collection_id);
    if (it == collections_.end()) {
      return Internal("collection " + r.collection->db_name + "." + r.collection->name + " (source id " +
                      std::to_string(e.collection_id) + ") is not mapped to the standby");
    }
    Target& t = it->second;
    // A DML message names its shard; a drop is sent to every shard read from this channel.
    std::vector<int> shards;
    if (dml) {
      const int s = ShardOf(*r.collection, e.vchannel);
      if (s < 0 || s >= static_cast<int>(t.vchannels.size())) {
        return Internal("shard " + e.vchannel + " of " + t.db + "." + t.name + " is unknown");
      }
      shards.push_back(s);
    } else {
      for (size_t i = 0; i < t.source_pchannels.size() && i < t.pchannels.size(); ++i) {
        if (t.source_pchannels[i] == item.channel) shards.push_back(static_cast<int>(i));
      }
    }
    for (int shard : shards) {
      ASSIGN_OR_RETURN(std::string bytes, Rewrite(r, t, shard));
      if (bytes.empty()) continue;
      const std::string& pchannel = t.pchannels[shard];
      Request& req = pending[pchannel];
      if (req.bytes > 0 && req.bytes + bytes.size() > kMaxRequestBytes) RETURN_IF_ERROR(flush(pchannel, req));
      req.bytes += bytes.size();
      req.begin = std::min(req.begin, e.begin_ts);
      req.end = std::max(req.end, e.end_ts);
      req.msgs.push_back(std::move(bytes));
      if (req.bytes >= kFlushBytes) RETURN_IF_ERROR(flush(pchannel, req));
    }
  }
  for (auto& [pchannel, req] : pending) RETURN_IF_ERROR(flush(pchannel, req));
  // Stored before any tick covers this pack: a restart re-sends only what no tick covered.
  if (sent) RETURN_IF_ERROR(checkpoint_(item.channel, item.end_position));
  uint64_t& safe = safe_ts_[item.channel];
  safe = std::max(safe, item.end_position.timestamp);
  return TickFrom(item.channel);
}

Status StandbyWriter::TickOnly(const std::string& channel, uint64_t ts) {
  uint64_t& safe = safe_ts_[channel];
  safe = std::max(safe, ts);
  return TickFrom(channel);
}

Status StandbyWriter::TickFrom(const std::string& channel) {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [pchannel, sources] : feeders_) {
    if (!sources.count(channel)) continue;
    uint64_t ts = std::numeric_limits<uint64_t>::max();
    for (const auto& [src, uses] : sources) {
      auto it = safe_ts_.find(src);
      ts = std::min(ts, it == safe_ts_.end() ? 0 : it->second);
    }
    TickState& tick = ticks_[pchannel];
    if (ts == 0 || ts <= tick.ts) continue;
    const bool unticked_data = tick.data_ts > tick.ts;
    if (!unticked_data && now - tick.at < tick_interval_) continue;
    RETURN_IF_ERROR(SendTick(pchannel, ts));
    tick.ts = ts;
    tick.at = now;
  }
  return Status::Ok();
}

Status StandbyWriter::SendTick(const std::string& pchannel, uint64_t ts) {
  msgpb::TimeTickMsg tick;
  auto* base = tick.mutable_base();
  base->set_msg_type(commonpb::MsgType::TimeTick);
  base->set_msgid(0);
  base->set_timestamp(ts);
  base->set_sourceid(-1);
  return applier_->ReplicateMessage(pchannel, ts, ts, {tick.SerializeAsString()});
}

Status StandbyTickSink::Apply(const source::SourceItem& item) {
  if (item.kind != source::SourceItem::Kind::kPack && !held_all_) {
    // A change of the scope's metadata (a collection created or renamed into it, ...) may put
    // waiting rows on channels this sink would tick past: tick nothing until the resume.
    held_all_ = true;
    GetLogger("apply")->info("standby ticks wait for the resume: a metadata change is waiting");
  }
  if (held_all_ || item.kind != source::SourceItem::Kind::kPack || held_.count(item.channel)) return Status::Ok();
  if (!checkpointed_.count(item.channel) || !item.events.empty()) {
    held_.insert(item.channel);
    GetLogger("apply")->info("standby ticks from {} wait for the resume: {}", item.channel,
                             item.events.empty() ? "no stored checkpoint" : "a change is waiting");
    return Status::Ok();
  }
  return writer_->TickOnly(item.channel, item.end_position.timestamp);
}

}  // namespace cdc::pipeline

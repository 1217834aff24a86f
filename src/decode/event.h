// Change events: what one source log message means, decoded. Produced by the
// decoders (pure functions over message bytes), grouped into packs by time tick,
// routed to collections, and consumed by inspect and the appliers. Values; a decoded
// protobuf payload is shared read-only between copies.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace cdc::decode {

// Milvus common.MsgType values this server understands (proto/common.proto).
enum class MsgType : int32_t {
  kUnknown = 0,
  kCreateCollection = 100,
  kDropCollection = 101,
  kLoadCollection = 106,
  kReleaseCollection = 107,
  kCreatePartition = 200,
  kDropPartition = 201,
  kLoadPartitions = 205,
  kReleasePartitions = 206,
  kCreateIndex = 300,
  kDropIndex = 302,
  kAlterIndex = 304,
  kInsert = 400,
  kDelete = 401,
  kFlush = 402,
  kTimeTick = 1200,
  kCreateCredential = 1500,
  kDeleteCredential = 1502,
  kUpdateCredential = 1503,
  kCreateRole = 1600,
  kDropRole = 1601,
  kOperateUserRole = 1602,
  kOperatePrivilege = 1606,
  kCreatePrivilegeGroup = 1610,   // 2.5
  kDropPrivilegeGroup = 1611,     // 2.5
  kOperatePrivilegeGroup = 1613,  // 2.5
  kOperatePrivilegeV2 = 1614,     // later 2.5.x
  kCreateDatabase = 1801,
  kDropDatabase = 1802,
  kAlterDatabase = 1804,
};

// A name for logs and inspect output ("Insert", "TimeTick", ...; "Unknown(<n>)").
std::string MsgTypeName(int32_t msg_type);

// Where a message sits in the source log. For Kafka, `offset` is the partition-0
// offset; Milvus encodes it as an 8-byte little-endian msgID.
struct Position {
  std::string channel;     // topic = pchannel, or the replicate channel
  int64_t offset = -1;
  uint64_t timestamp = 0;  // hybrid ts: (physical_ms << 18) | logical
};

// Hybrid timestamp helpers.
inline uint64_t PhysicalMs(uint64_t ts) { return ts >> 18; }
inline uint64_t ComposeTs(uint64_t physical_ms, uint64_t logical = 0) { return (physical_ms << 18) | logical; }

struct Event {
  int32_t msg_type = 0;      // raw common.MsgType (unknown values kept as read)
  int64_t msg_id = 0;        // base.msgID
  uint64_t begin_ts = 0;     // DML: min of timestamps[]; others: base.timestamp
  uint64_t end_ts = 0;       // DML: max of timestamps[]; others: base.timestamp
  Position position;         // where the message was read

  // Filled where the message carries them (DML and DDL on DML channels carry ids,
  // replicate-channel messages carry names).
  std::string vchannel;      // Insert/Delete shardName
  int64_t collection_id = 0;
  int64_t partition_id = 0;
  std::string db_name;
  std::string collection_name;
  std::string partition_name;
  int64_t row_count = 0;     // Insert num_rows; Delete num_rows

  // The decoded request: msgpb.InsertRequest, msgpb.DeleteRequest, msgpb.TimeTickMsg,
  // msgpb.CreateCollectionRequest, ..., or a milvuspb.*Request on the replicate channel.
  std::shared_ptr<const google::protobuf::Message> payload;
  size_t payload_bytes = 0;
  // In a closed pack: already applied from an open pack (LogReader's early apply).
  bool early = false;

  MsgType type() const { return static_cast<MsgType>(msg_type); }
  bool IsTimeTick() const { return msg_type == static_cast<int32_t>(MsgType::kTimeTick); }
  bool IsDml() const {
    return msg_type == static_cast<int32_t>(MsgType::kInsert) || msg_type == static_cast<int32_t>(MsgType::kDelete);
  }
};

// Every message of one pchannel between two consecutive time ticks, as Milvus's own
// consumers group them: events with end_ts in (begin_ts, end_ts], in arrival order.
struct Pack {
  std::string channel;
  uint64_t begin_ts = 0;       // the previous tick
  uint64_t end_ts = 0;         // this tick
  Position start_position;     // resume point before this pack
  Position end_position;       // resume point after it: first unconsumed message, or the tick
  std::vector<Event> events;   // no time ticks
  std::chrono::steady_clock::time_point closed_at{};  // when the closing tick was read (for latency metrics)
  // An open pack: events read since the last tick that may be applied before it comes
  // (PackAssembler::TakeEarly). Both positions are the pack's start: it moves no checkpoint,
  // and the closed pack still holds its events. end_ts: the newest event's.
  bool open = false;
  // A closed pack: events read before its tick that belong to a later pack (0: the next pack
  // starts clean at end_position, so two readers of the channel agree from there on).
  size_t carried = 0;
};

// Sum of the events' payload_bytes (queue budgets).
size_t PayloadBytes(const Pack& pack);

}  // namespace cdc::decode

// MqChannelReader: what a ChannelReader needs from the source's message queue — one Milvus log
// channel read message by message from a start position. Kafka (kafka_reader.h) and Pulsar
// (pulsar_reader.h) implement it; the pipeline above sees only int64 "offsets":
//   - Kafka: the partition-0 offset;
//   - Pulsar: the message id (ledger, entry, batch index) packed into one int64 that orders
//     like the id (pulsar_id.h). offset + 1 is "just after this message" on both.
// Owner: one thread at a time (the ChannelReader's); Close() runs in the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "util/status.h"

namespace cdc::source {

// Where to start reading.
struct StartAt {
  enum class Kind { kEarliest, kLatest, kOffset };
  Kind kind = Kind::kLatest;
  int64_t offset = -1;  // kOffset: the first offset to read (inclusive)

  static StartAt Earliest() { return {Kind::kEarliest, -1}; }
  // The end at Open: the next message to be produced.
  static StartAt Latest() { return {Kind::kLatest, -1}; }
  static StartAt Offset(int64_t offset) { return {Kind::kOffset, offset}; }
};

// One message as read.
struct RawMessage {
  std::string topic;  // the channel name (Pulsar: without persistent://tenant/namespace/)
  int64_t offset = -1;
  std::string payload;        // the bare Milvus request protobuf
  int64_t timestamp_ms = -1;  // the queue's timestamp (Kafka create time, Pulsar publish time), -1 if none
};

class MqChannelReader {
 public:
  virtual ~MqChannelReader() = default;

  // "Kafka" or "Pulsar": how errors and logs name the queue.
  virtual const char* mq_name() const = 0;
  // The next message, or nullopt if none arrived within timeout_ms. Outages are retried
  // inside; errors are final for this reader (position lost to retention, not authorized,
  // end of topic, closed).
  virtual StatusOr<std::optional<RawMessage>> Poll(int timeout_ms) = 0;
  // The offset the next produced message will get (for lag); blocks up to timeout_ms.
  virtual StatusOr<int64_t> HighWatermark(int timeout_ms) = 0;
  // The same for the periodic lag figure, from what the reader last learned if it can: it must
  // not block on a broker that has just gone away.
  virtual StatusOr<int64_t> LagHighWatermark(int timeout_ms) { return HighWatermark(timeout_ms); }
  // Offset of the next message Poll returns; -1 when unknown.
  virtual int64_t next_offset() const = 0;
  // The last error seen since the last contact (empty if none), and the time since the
  // broker last answered.
  virtual std::string last_error() const = 0;
  virtual std::chrono::milliseconds SinceLastContact() const = 0;
  bool UnreachableFor(std::chrono::milliseconds threshold) const { return SinceLastContact() >= threshold; }
  virtual void Close() = 0;  // idempotent
};

}  // namespace cdc::source

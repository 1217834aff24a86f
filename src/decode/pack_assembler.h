// PackAssembler: groups the decoded events of ONE pchannel into packs bounded by time ticks,
// exactly as Milvus's own consumers do (MqTtMsgStream, milvus-wire.md §5.5), and applies the
// resume rule after a seek to a stored position (§5.4).
//
// Owner: whoever reads the channel (one assembler per pchannel reader). Not thread-safe; no
// I/O; a value type apart from its buffer. Memory is bounded: events are buffered only until a
// tick at or past their end_ts, and the buffer is capped by count and bytes (a source that stops
// ticking yields an error instead of eating memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>

#include "decode/event.h"
#include "util/status.h"

namespace cdc::decode {

struct PackAssemblerOptions {
  size_t max_buffered_events = 100'000;
  size_t max_buffered_bytes = 256ull << 20;  // sum of Event::payload_bytes
};

class PackAssembler {
 public:
  explicit PackAssembler(std::string channel, PackAssemblerOptions options = {});

  // Declares that reading starts at `from` (an inclusive seek to from.offset), for a position a
  // previous pack handed out as end_position. Until a time tick with ts >= from.timestamp
  // arrives, non-tick events with end_ts <= from.timestamp are dropped (they were in a pack
  // already) and ticks below it are ignored. The next pack then starts at from.timestamp with
  // start_position = from. Call before the first Add; without it the first pack starts at ts 0
  // with start_position = the first message added.
  void ResumeFrom(const Position& from);

  // Feeds the next event read from the channel, in log order. Returns the pack that a time tick
  // closes (tick ts > previous tick), else nullopt. Time ticks never appear in a pack.
  // Errors: an event of another channel (kInvalidArgument); the buffer limits would be exceeded
  // (kResourceExhausted, naming the channel; the event is not buffered).
  StatusOr<std::optional<Pack>> Add(Event event);

  // Early apply: the buffered Inserts and Deletes that may go to the target before their tick,
  // as an open pack (Pack::open), each offered once; nullopt when none. They are a prefix of
  // the buffer in read order that stops at the first event that is not an Insert or Delete,
  // or that was read after a message with a later timestamp (concurrent writes may reach the
  // log out of timestamp order: it waits for the tick), and that holds an Upsert's Insert half
  // (base.timestamp 0 in Milvus 2.3; a plain Insert has it set) only together with its Delete
  // half, which follows it at the same timestamp. Offered events stay buffered: the closed
  // pack holds them too.
  std::optional<Pack> TakeEarly();
  // True when TakeEarly would offer something.
  bool early_ready() const;

  const std::string& channel() const { return channel_; }
  uint64_t last_tick() const { return last_tick_; }  // end_ts of the last pack (or resume ts)
  bool seeking() const { return seeking_; }
  size_t buffered_events() const { return buffer_.size(); }
  size_t buffered_bytes() const { return buffered_bytes_; }
  // Counters for /metrics and tests.
  uint64_t duplicates_dropped() const { return duplicates_dropped_; }
  uint64_t dropped_on_resume() const { return dropped_on_resume_; }
  uint64_t stale_ticks() const { return stale_ticks_; }

 private:
  struct Buffered {
    Event event;
    bool in_order = true;  // no message read before it had a later timestamp
  };
  std::optional<Pack> OnTick(const Event& tick);
  // In order, an Insert or Delete, not while seeking.
  bool Offerable(const Buffered& b) const;
  // Where the events TakeEarly may offer end (index into buffer_).
  size_t EarlyEnd() const;
  static bool IsUpsertHalf(const Event& ev);

  std::string channel_;
  PackAssemblerOptions options_;
  std::deque<Buffered> buffer_;  // non-tick events not yet in a pack, in arrival order
  size_t offered_ = 0;           // buffer_[0, offered_) went out in open packs
  std::unordered_set<int64_t> offered_ids_;  // their DML msgIDs (a resent copy is not offered again)
  uint64_t max_read_ts_ = 0;     // newest end_ts of a non-tick event read
  size_t buffered_bytes_ = 0;
  uint64_t last_tick_ = 0;
  std::optional<Position> start_position_;  // end position of the previous pack
  bool seeking_ = false;
  uint64_t seek_ts_ = 0;
  uint64_t duplicates_dropped_ = 0;
  uint64_t dropped_on_resume_ = 0;
  uint64_t stale_ticks_ = 0;
};

}  // namespace cdc::decode

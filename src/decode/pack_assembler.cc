#include "decode/pack_assembler.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "decode/decoder.h"
#include "msg.pb.h"

namespace cdc::decode {

PackAssembler::PackAssembler(std::string channel, PackAssemblerOptions options)
    : channel_(std::move(channel)), options_(options) {}

void PackAssembler::ResumeFrom(const Position& from) {
  seeking_ = true;
  seek_ts_ = from.timestamp;
  last_tick_ = from.timestamp;
  start_position_ = from;
  start_position_->channel = channel_;
}

StatusOr<std::optional<Pack>> PackAssembler::Add(Event event) {
  if (!event.position.channel.empty() && event.position.channel != channel_) {
    return InvalidArgument("pack assembler of channel " + channel_ + " got a message from " +
                           DescribePosition(event.position));
  }
  event.position.channel = channel_;
  if (!start_position_) start_position_ = Position{channel_, event.position.offset, 0};

  if (seeking_) {
    if (event.IsTimeTick()) {
      if (event.end_ts < seek_ts_) return std::optional<Pack>();
      seeking_ = false;  // this tick is handled normally below (a pack only if ts > seek ts)
    } else if (event.end_ts <= seek_ts_) {
      // Milvus drops on BeginTs > position ts; end_ts is the exact complement of what a pack
      // ending at seek_ts_ emitted (all rows of one message share a ts in practice).
      ++dropped_on_resume_;
      return std::optional<Pack>();
    }
  }

  if (event.IsTimeTick()) return OnTick(event);

  if (buffer_.size() + 1 > options_.max_buffered_events ||
      buffered_bytes_ + event.payload_bytes > options_.max_buffered_bytes) {
    return ResourceExhausted("channel " + channel_ + ": " + std::to_string(buffer_.size()) + " messages (" +
                             std::to_string(buffered_bytes_) + " bytes) buffered without a time tick past them (limits " +
                             std::to_string(options_.max_buffered_events) + " messages, " +
                             std::to_string(options_.max_buffered_bytes) + " bytes; last tick " +
                             std::to_string(last_tick_) + ", at " + DescribePosition(event.position) + ")");
  }
  buffered_bytes_ += event.payload_bytes;
  const bool in_order = event.end_ts >= max_read_ts_;
  max_read_ts_ = std::max(max_read_ts_, event.end_ts);
  buffer_.push_back(Buffered{std::move(event), in_order});
  return std::optional<Pack>();
}

bool PackAssembler::Offerable(const Buffered& b) const {
  return !seeking_ && b.in_order && b.event.IsDml();
}

bool PackAssembler::IsUpsertHalf(const Event& ev) {
  if (ev.type() != MsgType::kInsert) return false;
  const auto* ins = PayloadAs<milvus::proto::msg::InsertRequest>(ev);
  return !ins || ins->base().timestamp() == 0;  // Milvus 2.3 sets it on plain inserts only
}

size_t PackAssembler::EarlyEnd() const {
  size_t end = offered_;
  while (end < buffer_.size() && Offerable(buffer_[end])) ++end;
  // An Upsert's Insert half goes only with its Delete (same collection and timestamp, after it).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = offered_; i < end; ++i) {
      const Event& ev = buffer_[i].event;
      if (!IsUpsertHalf(ev)) continue;
      size_t d = i + 1;
      while (d < end && !(buffer_[d].event.type() == MsgType::kDelete &&
                          buffer_[d].event.collection_id == ev.collection_id && buffer_[d].event.end_ts == ev.end_ts)) {
        ++d;
      }
      if (d >= end) {
        end = i;
        changed = true;
        break;
      }
    }
  }
  return end;
}

bool PackAssembler::early_ready() const { return EarlyEnd() > offered_; }

std::optional<Pack> PackAssembler::TakeEarly() {
  Pack pack;
  for (const size_t end = EarlyEnd(); offered_ < end; ++offered_) {
    const Event& ev = buffer_[offered_].event;
    if (!offered_ids_.insert(ev.msg_id).second) continue;  // a resent copy
    pack.events.push_back(ev);
    pack.end_ts = std::max(pack.end_ts, ev.end_ts);
  }
  if (pack.events.empty()) return std::nullopt;
  pack.channel = channel_;
  pack.open = true;
  pack.begin_ts = last_tick_;
  pack.start_position = pack.end_position = *start_position_;
  return pack;
}

std::optional<Pack> PackAssembler::OnTick(const Event& tick) {
  const uint64_t t = tick.end_ts;
  if (t <= last_tick_) {
    // Milvus skips a tick that does not advance; what is buffered waits for the next one.
    ++stale_ticks_;
    return std::nullopt;
  }

  Pack pack;
  pack.channel = channel_;
  pack.begin_ts = last_tick_;
  pack.end_ts = t;
  pack.start_position = *start_position_;

  std::deque<Buffered> remaining;
  size_t remaining_bytes = 0;
  size_t remaining_offered = 0;
  std::unordered_set<int64_t> remaining_ids;
  std::unordered_set<int64_t> dml_ids;
  for (size_t i = 0; i < buffer_.size(); ++i) {
    Event& ev = buffer_[i].event;
    if (ev.end_ts > t) {
      // Offered events are a prefix of the buffer, so they stay one among those that remain.
      if (i < offered_) {
        ++remaining_offered;
        if (ev.IsDml()) remaining_ids.insert(ev.msg_id);
      }
      remaining_bytes += ev.payload_bytes;
      remaining.push_back(std::move(buffer_[i]));
      continue;
    }
    if (ev.IsDml() && !dml_ids.insert(ev.msg_id).second) {
      ++duplicates_dropped_;
      continue;
    }
    pack.events.push_back(std::move(ev));
  }
  buffer_ = std::move(remaining);
  buffered_bytes_ = remaining_bytes;
  pack.carried = buffer_.size();
  offered_ = remaining_offered;
  offered_ids_ = std::move(remaining_ids);

  pack.end_position = buffer_.empty() ? tick.position : buffer_.front().event.position;
  pack.end_position.channel = channel_;
  pack.end_position.timestamp = t;
  start_position_ = pack.end_position;
  last_tick_ = t;
  return pack;
}

}  // namespace cdc::decode

#include "decode/pack_assembler.h"

#include <unordered_set>
#include <utility>

#include "decode/decoder.h"

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
  buffer_.push_back(std::move(event));
  return std::optional<Pack>();
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

  std::deque<Event> remaining;
  size_t remaining_bytes = 0;
  std::unordered_set<int64_t> dml_ids;
  for (auto& ev : buffer_) {
    if (ev.end_ts > t) {
      remaining_bytes += ev.payload_bytes;
      remaining.push_back(std::move(ev));
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

  pack.end_position = buffer_.empty() ? tick.position : buffer_.front().position;
  pack.end_position.channel = channel_;
  pack.end_position.timestamp = t;
  start_position_ = pack.end_position;
  last_tick_ = t;
  return pack;
}

}  // namespace cdc::decode

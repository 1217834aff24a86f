// ChannelReader: reads one source topic on its own thread — Kafka/Pulsar poll, decode, and
// (for DML pchannels) time-tick pack assembly — into a bounded queue of packs. On the
// replicate channel, which has no ticks, every message is a pack of its own.
// Owned by the LogReader (Start/Stop). Pop/Peek are for one consumer thread; status
// accessors are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "decode/event.h"
#include "decode/pack_assembler.h"
#include "source/mq_factory.h"
#include "util/status.h"

namespace cdc::source {

struct ChannelReaderOptions {
  MqConfig mq;
  std::string topic;
  StartAt start = StartAt::Latest();
  std::optional<decode::Position> resume;  // stored checkpoint: drop what it already covers
  bool plain = false;                      // replicate channel: one message per pack
  size_t queue_capacity = 64;              // packs
  // ... and at most this many payload bytes: a backlog is read ahead only this far (one
  // larger pack still passes, alone).
  size_t queue_bytes = 2 << 20;
  std::chrono::seconds unreachable_after{30};  // the queue silent this long: report it
};

class ChannelReader {
 public:
  // `notify` is called (from the reader thread) after each queued pack.
  ChannelReader(ChannelReaderOptions options, std::function<void()> notify);
  ~ChannelReader();

  Status Start();  // opens the consumer (an error names the queue and the topic) and starts the thread
  void Stop();     // blocks until the thread exited

  // The oldest queued pack, or nullptr; Pop removes it.
  const decode::Pack* Peek();
  void Pop();

  const std::string& topic() const { return options_.topic; }
  // end_ts of the newest pack produced: everything up to it has been read.
  uint64_t watermark() const { return watermark_.load(); }
  // OK, or why reading stopped or stalls (decode failure naming channel and offset,
  // the queue unreachable).
  Status health() const;
  // Next offset to read and the queue's high watermark (for lag), -1 when unknown.
  int64_t next_offset() const { return next_offset_.load(); }
  int64_t high_watermark() const { return high_watermark_.load(); }
  std::map<int32_t, uint64_t> unknown_types() const;

 private:
  void Run();
  Status Handle(const RawMessage& msg);
  void Push(decode::Pack pack);

  const ChannelReaderOptions options_;
  const std::function<void()> notify_;
  std::unique_ptr<MqChannelReader> mq_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> watermark_{0};
  std::atomic<int64_t> next_offset_{-1};
  std::atomic<int64_t> high_watermark_{-1};

  mutable std::mutex mu_;  // guards queue_, queued_bytes_, health_, unknown_
  std::condition_variable space_cv_;
  std::deque<decode::Pack> queue_;
  size_t queued_bytes_ = 0;  // payload bytes of the packs in queue_
  Status health_;
  std::map<int32_t, uint64_t> unknown_;
  std::unique_ptr<decode::PackAssembler> assembler_;  // DML channels only; reader thread only
};

}  // namespace cdc::source

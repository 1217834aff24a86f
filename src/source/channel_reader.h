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
  // DML channels: also queue open packs (PackAssembler::TakeEarly) when the queue has nothing
  // more to read right now, or `early_every` after the last one, whichever comes first.
  bool early = false;
  std::chrono::milliseconds early_every{20};
  // Instead of queueing: hand each pack to `sink` on the reader thread (a shared reader).
  std::function<void(decode::Pack&&)> sink;
  // Asked before a pack is queued, under the queue's lock: false drops it and ends the
  // reading (a shared reader delivers from there on; see finished()).
  std::function<bool(const decode::Pack&)> admit;
};

// What a LogReader reads one channel from: its own ChannelReader, or a subscription to the
// channel's shared reader (ChannelHub). Peek/Pop for one consumer; the rest thread-safe.
class PackSource {
 public:
  virtual ~PackSource() = default;
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  virtual const decode::Pack* Peek() = 0;
  virtual void Pop() = 0;
  virtual const std::string& topic() const = 0;
  // end_ts of the newest closed pack queued: everything up to it has been read.
  virtual uint64_t watermark() const = 0;
  virtual Status health() const = 0;
  virtual int64_t next_offset() const = 0;
  virtual int64_t high_watermark() const = 0;
};

class ChannelReader : public PackSource {
 public:
  // `notify` is called (from the reader thread) after each queued pack.
  ChannelReader(ChannelReaderOptions options, std::function<void()> notify);
  ~ChannelReader();

  Status Start() override;  // opens the consumer (an error names the queue and the topic) and starts the thread
  void Stop() override;     // blocks until the thread exited

  // The oldest queued pack, or nullptr; Pop removes it.
  const decode::Pack* Peek() override;
  void Pop() override;

  const std::string& topic() const override { return options_.topic; }
  // end_ts of the newest pack produced: everything up to it has been read.
  uint64_t watermark() const override { return watermark_.load(); }
  // OK, or why reading stopped or stalls (decode failure naming channel and offset,
  // the queue unreachable).
  Status health() const override;
  // Next offset to read and the queue's high watermark (for lag), -1 when unknown.
  int64_t next_offset() const override { return next_offset_.load(); }
  int64_t high_watermark() const override { return high_watermark_.load(); }
  // `admit` refused a pack: the reading ended.
  bool finished() const { return finished_.load(); }
  std::map<int32_t, uint64_t> unknown_types() const;

 private:
  void Run();
  Status Handle(const RawMessage& msg);
  void Push(decode::Pack pack);
  // Queues an open pack if one is ready and (`idle` or early_every passed).
  void OfferEarly(bool idle);

  const ChannelReaderOptions options_;
  const std::function<void()> notify_;
  std::unique_ptr<MqChannelReader> mq_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
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
  std::chrono::steady_clock::time_point last_early_{};  // reader thread only
};

}  // namespace cdc::source

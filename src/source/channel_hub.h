// ChannelHub: one reader per source channel for all the tasks of this process. Each task's
// LogReader subscribes per channel and gets a PackSource that
//   1. reads on its own (a ChannelReader from the task's checkpoint) until its packs meet the
//      shared reader's: both closed a pack at the same position with nothing carried past
//      it, so both would read alike from there;
//   2. then takes the shared reader's packs (one poll and one decode per message, the packs
//      shared, not copied) from its own bounded queue;
//   3. falls back to reading on its own, from the last closed pack it got, when that queue
//      outgrows its budget (a slow task never holds the shared reader back), and joins again
//      once it caught up.
// The shared reader starts at the channel's end when the first task subscribes and stops with
// the last subscription. Open packs may reach a task twice around a join (its own and the
// shared reader's); LogReader applies an event once by its msgID.
// Thread-safety: Subscribe and subscriptions' Start/Stop/status from any thread; Peek/Pop from
// the subscriber's one consumer thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "source/channel_reader.h"

namespace cdc::source {

class ChannelHub {
 public:
  struct Options {
    size_t queue_bytes = 16u << 20;  // per subscription: past it, the task reads on its own
    size_t queue_packs = 1024;
  };
  ChannelHub() : ChannelHub(Options{}) {}
  explicit ChannelHub(Options options) : options_(options) {}
  ~ChannelHub();

  // A source of `own.topic`'s packs for one task; `own` says how the task reads it on its
  // own (start, resume, early apply). Tasks share a reader only with the same `early`.
  std::unique_ptr<PackSource> Subscribe(ChannelReaderOptions own, std::function<void()> notify);

  // Shared readers running, and how often a task joined one or fell behind it (tests, logs).
  size_t shared_readers() const;
  uint64_t joins() const { return joins_.load(); }
  uint64_t fallbacks() const { return fallbacks_.load(); }

  struct Channel;       // one shared reader and its subscriptions
  class Subscription;

 private:
  std::shared_ptr<Channel> Acquire(const ChannelReaderOptions& own);
  void Release(const std::shared_ptr<Channel>& channel);

  const Options options_;
  std::atomic<uint64_t> joins_{0};
  std::atomic<uint64_t> fallbacks_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Channel>> channels_;  // by topic and early flag
};

}  // namespace cdc::source

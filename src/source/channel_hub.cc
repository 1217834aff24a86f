#include "source/channel_hub.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <vector>

#include "util/log.h"

namespace cdc::source {

namespace {

bool Same(const decode::Position& a, const decode::Position& b) {
  return a.offset == b.offset && a.timestamp == b.timestamp;
}


}  // namespace

struct ChannelHub::Channel {
  std::string key;
  std::unique_ptr<ChannelReader> reader;  // null when it could not start: tasks read on their own
  int refs = 0;                           // guarded by the hub's mutex

  std::mutex mu;  // guards subs, last_clean and the subscriptions' attached_/own_end_
  std::vector<Subscription*> subs;
  std::optional<decode::Position> last_clean;  // end of the shared reader's last pack, if clean

  void Fanout(decode::Pack&& pack);
};

class ChannelHub::Subscription : public PackSource {
 public:
  Subscription(ChannelHub* hub, std::shared_ptr<Channel> channel, ChannelReaderOptions own,
               std::function<void()> notify)
      : notify_(std::move(notify)), hub_(hub), channel_(std::move(channel)), own_options_(std::move(own)) {}
  ~Subscription() override { Stop(); }

  Status Start() override {
    {
      std::lock_guard<std::mutex> lock(channel_->mu);
      channel_->subs.push_back(this);
    }
    return StartOwn(own_options_);
  }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard<std::mutex> lock(channel_->mu);
      auto& subs = channel_->subs;
      subs.erase(std::remove(subs.begin(), subs.end(), this), subs.end());
      attached_ = false;
    }
    std::unique_ptr<ChannelReader> own;
    {
      std::lock_guard<std::mutex> lock(own_mu_);
      own = std::move(own_);
    }
    if (own) own->Stop();
    hub_->Release(channel_);
  }

  const decode::Pack* Peek() override {
    if (own_) {
      if (const decode::Pack* p = own_->Peek()) return p;
      bool attached = false;
      {
        std::lock_guard<std::mutex> lock(channel_->mu);
        attached = attached_;
      }
      // Joined (and perhaps fallen behind since: then the own reader refused a pack and ended):
      // everything it admitted was consumed; the shared packs follow.
      if (!attached && !own_->finished()) return nullptr;
      std::unique_ptr<ChannelReader> own;
      {
        std::lock_guard<std::mutex> lock(own_mu_);
        own = std::move(own_);
      }
      own->Stop();
      GetLogger("source")->info("channel {}: joined the shared reader", own_options_.topic);
    }
    std::optional<decode::Position> fallen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!queue_.empty()) return queue_.front().get();
      fallen.swap(fallen_);
    }
    if (!fallen) return nullptr;
    // Too slow for the shared reader: on our own from the last closed pack we got.
    GetLogger("source")->info("channel {}: fell behind the shared reader; reading on its own from offset {}",
                              own_options_.topic, fallen->offset);
    ChannelReaderOptions o = own_options_;
    o.start = StartAt::Offset(fallen->offset);
    o.resume = *fallen;
    if (Status st = StartOwn(o); !st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      health_ = st;
      fallen_ = fallen;  // try again on the next look
      return nullptr;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      health_ = Status::Ok();
    }
    return own_->Peek();
  }

  void Pop() override {
    if (own_) {
      own_->Pop();
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_.empty()) {
      queued_bytes_ -= decode::PayloadBytes(*queue_.front());
      queue_.pop_front();
    }
  }

  const std::string& topic() const override { return own_options_.topic; }

  uint64_t watermark() const override {
    uint64_t w = 0;
    {
      std::lock_guard<std::mutex> lock(own_mu_);
      if (own_) w = own_->watermark();
    }
    std::lock_guard<std::mutex> lock(mu_);
    return std::max(w, shared_watermark_);
  }

  Status health() const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!health_.ok()) return health_;
    }
    std::lock_guard<std::mutex> lock(own_mu_);
    if (own_) return own_->health();
    return channel_->reader ? channel_->reader->health() : Status::Ok();
  }
  int64_t next_offset() const override {
    std::lock_guard<std::mutex> lock(own_mu_);
    if (own_) return own_->next_offset();
    return channel_->reader ? channel_->reader->next_offset() : -1;
  }
  int64_t high_watermark() const override {
    std::lock_guard<std::mutex> lock(own_mu_);
    if (own_) return own_->high_watermark();
    return channel_->reader ? channel_->reader->high_watermark() : -1;
  }

  // --- under channel_->mu
  // The own reader queues `p` (under its queue's lock): false once joined.
  bool Admit(const decode::Pack& p) {
    std::lock_guard<std::mutex> lock(channel_->mu);
    if (attached_) return false;
    if (!p.open) {
      own_end_.reset();
      if (p.carried == 0) own_end_ = p.end_position;
      if (own_end_ && channel_->last_clean && Same(*own_end_, *channel_->last_clean)) AttachLocked(*own_end_);
    }
    return true;
  }
  void AttachLocked(const decode::Position& at) {
    attached_ = true;
    ++hub_->joins_;
    own_end_.reset();
    std::lock_guard<std::mutex> lock(mu_);
    last_closed_ = at;
  }
  // Queues a shared pack; false (and detached) when the queue is over its budget.
  bool DeliverLocked(const std::shared_ptr<const decode::Pack>& pack, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_.empty() &&
        (queued_bytes_ + bytes > hub_->options_.queue_bytes || queue_.size() >= hub_->options_.queue_packs)) {
      attached_ = false;
      fallen_ = last_closed_;
      ++hub_->fallbacks_;
      return false;
    }
    queue_.push_back(pack);
    queued_bytes_ += bytes;
    if (!pack->open) {
      last_closed_ = pack->end_position;
      shared_watermark_ = std::max(shared_watermark_, pack->end_ts);
    }
    return true;
  }
  bool attached_ = false;                    // the shared reader delivers to queue_
  std::optional<decode::Position> own_end_;  // the own reader's last pack end, if clean
  const std::function<void()> notify_;

 private:
  Status StartOwn(const ChannelReaderOptions& options) {
    ChannelReaderOptions o = options;
    o.admit = [this](const decode::Pack& p) { return Admit(p); };
    auto own = std::make_unique<ChannelReader>(o, notify_);
    RETURN_IF_ERROR(own->Start());
    std::lock_guard<std::mutex> lock(own_mu_);
    own_ = std::move(own);
    return Status::Ok();
  }

  ChannelHub* const hub_;
  const std::shared_ptr<Channel> channel_;
  const ChannelReaderOptions own_options_;
  bool stopped_ = false;

  mutable std::mutex own_mu_;  // guards own_ for the status accessors; the consumer changes it
  std::unique_ptr<ChannelReader> own_;

  mutable std::mutex mu_;  // guards what follows
  std::deque<std::shared_ptr<const decode::Pack>> queue_;
  size_t queued_bytes_ = 0;
  std::optional<decode::Position> last_closed_;  // resume point after the last closed pack queued
  std::optional<decode::Position> fallen_;       // detached: read on our own from here
  uint64_t shared_watermark_ = 0;
  Status health_;
};

void ChannelHub::Channel::Fanout(decode::Pack&& pack) {
  auto shared = std::make_shared<const decode::Pack>(std::move(pack));
  const size_t bytes = decode::PayloadBytes(*shared);
  std::vector<Subscription*> woken;
  std::lock_guard<std::mutex> lock(mu);
  for (Subscription* s : subs) {
    if (s->attached_ && s->DeliverLocked(shared, bytes)) woken.push_back(s);
  }
  if (!shared->open) {
    last_clean.reset();
    if (shared->carried == 0) last_clean = shared->end_position;
    for (Subscription* s : subs) {
      if (!s->attached_ && last_clean && s->own_end_ && Same(*s->own_end_, *last_clean)) s->AttachLocked(*last_clean);
    }
  }
  for (Subscription* s : woken) {
    if (s->notify_) s->notify_();
  }
}

ChannelHub::~ChannelHub() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [key, ch] : channels_) {
    if (ch->reader) ch->reader->Stop();
  }
}

std::shared_ptr<ChannelHub::Channel> ChannelHub::Acquire(const ChannelReaderOptions& own) {
  const std::string key = own.topic + (own.early ? "#early" : "");
  std::lock_guard<std::mutex> lock(mu_);
  auto& ch = channels_[key];
  if (!ch) {
    ch = std::make_shared<Channel>();
    ch->key = key;
    ChannelReaderOptions o;
    o.mq = own.mq;
    o.topic = own.topic;
    o.early = own.early;
    o.early_every = own.early_every;
    o.unreachable_after = own.unreachable_after;
    o.start = StartAt::Latest();
    Channel* raw = ch.get();
    o.sink = [raw](decode::Pack&& p) { raw->Fanout(std::move(p)); };
    auto reader = std::make_unique<ChannelReader>(o, nullptr);
    if (Status st = reader->Start(); st.ok()) {
      ch->reader = std::move(reader);
    } else {
      GetLogger("source")->warn("channel {}: no shared reader, tasks read it on their own: {}", own.topic, st.message());
    }
  }
  ++ch->refs;
  return ch;
}

void ChannelHub::Release(const std::shared_ptr<Channel>& channel) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (--channel->refs > 0) return;
    channels_.erase(channel->key);
  }
  if (channel->reader) channel->reader->Stop();
}

std::unique_ptr<PackSource> ChannelHub::Subscribe(ChannelReaderOptions own, std::function<void()> notify) {
  auto channel = Acquire(own);
  return std::make_unique<Subscription>(this, std::move(channel), std::move(own), std::move(notify));
}

size_t ChannelHub::shared_readers() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, ch] : channels_) n += ch->reader != nullptr;
  return n;
}

}  // namespace cdc::source

#include "source/channel_reader.h"

#include "decode/decoder.h"
#include "util/log.h"

namespace cdc::source {

ChannelReader::ChannelReader(ChannelReaderOptions options, std::function<void()> notify)
    : options_(std::move(options)), notify_(std::move(notify)) {}

ChannelReader::~ChannelReader() { Stop(); }

Status ChannelReader::Start() {
  auto mq = OpenMqReader(options_.mq, options_.topic, options_.start);
  if (!mq.ok()) return mq.status().WithContext(std::string("cannot read ") + options_.mq.name() + " topic " + options_.topic);
  mq_ = std::move(mq).value();
  if (!options_.plain) {
    assembler_ = std::make_unique<decode::PackAssembler>(options_.topic);
    if (options_.resume) assembler_->ResumeFrom(*options_.resume);
  }
  if (options_.resume) watermark_ = options_.resume->timestamp;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void ChannelReader::Stop() {
  stop_ = true;
  space_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (mq_) mq_->Close();
}

void ChannelReader::Run() {
  auto log = GetLogger("source");
  auto last_lag_check = std::chrono::steady_clock::now() - std::chrono::hours(1);
  bool reported_unreachable = false;
  while (!stop_) {
    // With an open pack ready, look without waiting: nothing more to read sends it now.
    const bool early = options_.early && assembler_ && assembler_->early_ready();
    auto msg = mq_->Poll(early ? 0 : 200);
    if (!msg.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      health_ = msg.status().WithContext(std::string(options_.mq.name()) + " topic " + options_.topic);
      log->error("channel {}: {}", options_.topic, health_.message());
      return;
    }
    if (*msg) {
      reported_unreachable = false;
      next_offset_ = (*msg)->offset + 1;
      if (Status st = Handle(**msg); !st.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        health_ = st;
        log->error("channel {}: reading stopped: {}", options_.topic, st.message());
        return;
      }
    }
    if (options_.early && assembler_) OfferEarly(!*msg);
    auto now = std::chrono::steady_clock::now();
    if (now - last_lag_check > std::chrono::seconds(2)) {
      last_lag_check = now;
      if (auto hw = mq_->LagHighWatermark(1000); hw.ok()) high_watermark_ = *hw;
      bool unreachable = mq_->UnreachableFor(options_.unreachable_after);
      std::lock_guard<std::mutex> lock(mu_);
      if (unreachable) {
        health_ = Unavailable(std::string(options_.mq.name()) + " is unreachable for topic " + options_.topic + " (" +
                              mq_->last_error() + ")");
        if (!reported_unreachable) log->warn("channel {}: {}", options_.topic, health_.message());
        reported_unreachable = true;
      } else if (health_.code() == StatusCode::kUnavailable) {
        health_ = Status::Ok();
      }
    }
  }
}

Status ChannelReader::Handle(const RawMessage& msg) {
  decode::Position where{msg.topic, msg.offset, 0};
  auto event = decode::DecodeMessage(msg.payload, where);
  if (!event.ok()) return event.status();
  if (!event->payload && !event->IsTimeTick()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (unknown_[event->msg_type]++ == 0) {
      GetLogger("source")->warn("channel {}: skipping messages of unknown type {} (first at offset {})",
                                options_.topic, decode::MsgTypeName(event->msg_type), msg.offset);
    }
    if (!options_.plain) return Status::Ok();
  }
  if (options_.plain) {
    if (!event->payload) return Status::Ok();
    decode::Pack pack;
    pack.channel = msg.topic;
    pack.begin_ts = event->begin_ts;
    pack.end_ts = event->end_ts;
    pack.start_position = where;
    pack.end_position = decode::Position{msg.topic, msg.offset + 1, event->end_ts};
    pack.events.push_back(std::move(event).value());
    Push(std::move(pack));
    return Status::Ok();
  }
  auto pack = assembler_->Add(std::move(event).value());
  if (!pack.ok()) return pack.status();
  if (*pack) Push(std::move(**pack));
  return Status::Ok();
}

void ChannelReader::OfferEarly(bool idle) {
  const auto now = std::chrono::steady_clock::now();
  if (!assembler_->early_ready() || (!idle && now - last_early_ < options_.early_every)) return;
  last_early_ = now;
  if (auto pack = assembler_->TakeEarly()) Push(std::move(*pack));
}

void ChannelReader::Push(decode::Pack pack) {
  pack.closed_at = std::chrono::steady_clock::now();
  const uint64_t end_ts = pack.end_ts;
  const bool open = pack.open;
  if (options_.sink) {
    if (!options_.plain && !open && end_ts > watermark_) watermark_ = end_ts;
    options_.sink(std::move(pack));
    return;
  }
  const size_t bytes = decode::PayloadBytes(pack);
  {
    std::unique_lock<std::mutex> lock(mu_);
    space_cv_.wait(lock, [&] {
      return stop_ || queue_.empty() ||
             (queue_.size() < options_.queue_capacity && queued_bytes_ + bytes <= options_.queue_bytes);
    });
    if (stop_) return;
    if (options_.admit && !options_.admit(pack)) {
      stop_ = true;
      finished_ = true;
      return;
    }
    queue_.push_back(std::move(pack));
    queued_bytes_ += bytes;
    // Under the lock: whoever sees the pack queued also sees the watermark.
    if (!options_.plain && !open && end_ts > watermark_) watermark_ = end_ts;
  }
  if (notify_) notify_();
}

const decode::Pack* ChannelReader::Peek() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() ? nullptr : &queue_.front();
}

void ChannelReader::Pop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_.empty()) {
      queued_bytes_ -= decode::PayloadBytes(queue_.front());
      queue_.pop_front();
    }
  }
  space_cv_.notify_all();
}

Status ChannelReader::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

std::map<int32_t, uint64_t> ChannelReader::unknown_types() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unknown_;
}

}  // namespace cdc::source

#include "source/kafka_reader.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <utility>

#include "util/log.h"

namespace cdc::source {

namespace {

constexpr int64_t kMaxMessageBytes = 10ll << 20;  // Milvus producers allow 10 MiB messages
constexpr int kStallMs = 20;  // nothing queued this long despite a backlog: the fetcher sleeps

// Our defaults, applied before the caller's properties.
const std::map<std::string, std::string>& DefaultProperties() {
  static const std::map<std::string, std::string> kDefaults = {
      // Read-ahead of a backlog is bounded here (and by the ChannelReader's queue): a reader
      // holds about one fetch plus this queue. A larger message still passes: the broker returns
      // a first record batch whatever its size, and librdkafka grows its request to fit it.
      // A small queue costs no throughput because Poll wakes a fetcher parked on a full queue
      // (docs/performance.md, "Memory").
      {"fetch.max.bytes", std::to_string(2 << 20)},
      {"max.partition.fetch.bytes", std::to_string(1 << 20)},
      {"queued.max.messages.kbytes", "2048"},  // prefetch bound per reader
      {"fetch.wait.max.ms", "100"},            // ticks arrive every 200 ms
      {"reconnect.backoff.max.ms", "5000"},
      {"socket.keepalive.enable", "true"},
  };
  return kDefaults;
}

// The one size limit that is a hard cut: a response larger than it is dropped as an error,
// so it must take a 10 MiB message. Size properties must be numbers.
Status CheckSizeLimit(const std::string& key, const std::string& value) {
  int64_t min = 1;
  if (key == "receive.message.max.bytes") {
    min = kMaxMessageBytes + (1 << 20);
  } else if (key != "fetch.max.bytes" && key != "max.partition.fetch.bytes" && key != "fetch.message.max.bytes" &&
             key != "queued.max.messages.kbytes") {
    return Status::Ok();
  }
  int64_t v = 0;
  try {
    size_t used = 0;
    v = std::stoll(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
  } catch (const std::exception&) {
    return InvalidArgument("kafka property " + key + "='" + value + "' is not a number");
  }
  if (v < min) {
    return InvalidArgument("kafka property " + key + "=" + value + " is below " + std::to_string(min) +
                           (min > 1 ? ": Milvus log messages reach 10 MiB" : ""));
  }
  return Status::Ok();
}

std::string RandomGroupId() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  static const char kHex[] = "0123456789abcdef";
  std::string id = "milvus-cdc-reader-";
  uint64_t v = gen();
  for (int i = 0; i < 16; ++i, v >>= 4) id += kHex[v & 0xf];
  return id;
}

bool IsUnknownTopic(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
         err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
}

}  // namespace

// librdkafka's error and log callbacks. Logs are forwarded to the consumer queue, so both run
// inside rd_kafka_consumer_poll on the owner thread; the mutex only guards against a reader of
// last_error() on another thread.
class KafkaChannelReader::Callbacks {
 public:
  explicit Callbacks(std::string topic) : topic_(std::move(topic)), log_(GetLogger("kafka")) {}

  static void OnError(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
    static_cast<Callbacks*>(opaque)->Error(static_cast<rd_kafka_resp_err_t>(err), reason ? reason : "");
  }
  static void OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto* self = static_cast<Callbacks*>(rd_kafka_opaque(rk));
    if (self) self->Log(level, fac ? fac : "", buf ? buf : "");
  }

  void Error(rd_kafka_resp_err_t err, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = std::string(rd_kafka_err2name(err)) + ": " + reason;
    if (err == RD_KAFKA_RESP_ERR__FATAL) fatal_ = true;
    if (Allow()) log_->warn("topic {}: {}", topic_, last_error_);
  }

  void Log(int level, const std::string& fac, const std::string& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    if (level <= 4) {  // syslog EMERG..WARNING: connection failures and the like
      if (Allow()) log_->warn("topic {}: librdkafka {}: {}", topic_, fac, msg);
    } else if (level <= 6) {
      log_->debug("topic {}: librdkafka {}: {}", topic_, fac, msg);
    } else {
      log_->trace("topic {}: librdkafka {}: {}", topic_, fac, msg);
    }
  }

  std::string last_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }
  void ClearError() {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_.clear();
  }
  bool fatal() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fatal_;
  }

 private:
  // One warning per 10 s per reader: an outage repeats the same complaint every backoff.
  bool Allow() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_warn_ < std::chrono::seconds(10)) return false;
    last_warn_ = now;
    return true;
  }

  const std::string topic_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mu_;
  std::string last_error_;
  bool fatal_ = false;
  std::chrono::steady_clock::time_point last_warn_{};
};

KafkaChannelReader::KafkaChannelReader(const KafkaReaderConfig& config, std::string topic)
    : config_(config),
      topic_(std::move(topic)),
      callbacks_(std::make_unique<Callbacks>(topic_)),
      last_contact_(std::chrono::steady_clock::now()),
      last_probe_(last_contact_) {}

KafkaChannelReader::~KafkaChannelReader() { Close(); }

StatusOr<std::unique_ptr<KafkaChannelReader>> KafkaChannelReader::Open(const KafkaReaderConfig& config,
                                                                       const std::string& topic, StartAt start) {
  if (config.bootstrap_servers.empty()) return InvalidArgument("kafka: no bootstrap servers configured");
  if (topic.empty()) return InvalidArgument("kafka: empty topic name");
  if (start.kind == StartAt::Kind::kOffset && start.offset < 0) {
    return InvalidArgument("kafka topic " + topic + ": start offset " + std::to_string(start.offset) +
                           " is negative");
  }
  if (config.sasl && config.sasl->username.empty()) {
    return InvalidArgument("kafka: SASL is configured without a username");
  }

  // Properties: our defaults, the caller's, SASL, then the ones this reader depends on.
  std::map<std::string, std::string> props = DefaultProperties();
  for (const auto& [k, v] : config.properties) {
    RETURN_IF_ERROR(CheckSizeLimit(k, v));
    props[k] = v;
  }
  if (config.sasl) {
    props["security.protocol"] = config.sasl->security_protocol;
    props["sasl.mechanisms"] = config.sasl->mechanisms;
    props["sasl.username"] = config.sasl->username;
    props["sasl.password"] = config.sasl->password;
  }
  props["bootstrap.servers"] = config.bootstrap_servers;
  props["client.id"] = config.client_id;
  props["group.id"] = RandomGroupId();  // never joined: partitions are assigned, not subscribed
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["enable.partition.eof"] = "true";   // end of partition counts as broker contact
  props["auto.offset.reset"] = "error";     // never jump silently when an offset is gone
  props["allow.auto.create.topics"] = "false";
  props["log.queue"] = "true";              // logs are served by our poll, on our thread

  std::unique_ptr<KafkaChannelReader> reader(new KafkaChannelReader(config, topic));
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      // Never echo a password back.
      std::string shown = k.find("password") != std::string::npos ? "***" : v;
      return InvalidArgument("kafka property " + k + "='" + shown + "': " + errstr);
    }
  }
  char features[512];
  size_t features_size = sizeof(features);
  if (rd_kafka_conf_get(conf, "builtin.features", features, &features_size) != RD_KAFKA_CONF_OK ||
      std::string(features).find("zstd") == std::string::npos) {
    rd_kafka_conf_destroy(conf);
    return FailedPrecondition("librdkafka " + std::string(rd_kafka_version_str()) +
                              " is built without zstd, which Milvus producers use");
  }
  rd_kafka_conf_set_opaque(conf, reader->callbacks_.get());
  rd_kafka_conf_set_error_cb(conf, &Callbacks::OnError);
  rd_kafka_conf_set_log_cb(conf, &Callbacks::OnLog);

  reader->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (!reader->rk_) {
    rd_kafka_conf_destroy(conf);  // only owned by rd_kafka_new on success
    return InvalidArgument(std::string("kafka: cannot create consumer: ") + errstr);
  }
  rd_kafka_set_log_queue(reader->rk_, nullptr);  // forward logs to the main queue...
  rd_kafka_poll_set_consumer(reader->rk_);       // ...which the consumer poll serves

  int64_t offset = start.offset;
  if (start.kind == StartAt::Kind::kEarliest) {
    offset = RD_KAFKA_OFFSET_BEGINNING;
  } else if (start.kind == StartAt::Kind::kLatest) {
    auto wm = reader->QueryWatermarksInternal(static_cast<int>(config.metadata_timeout.count()));
    if (!wm.ok()) return wm.status().WithContext("kafka topic " + topic + ": cannot resolve 'latest'");
    offset = wm->high;
  }
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = offset;
  rd_kafka_resp_err_t err = rd_kafka_assign(reader->rk_, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Internal("kafka topic " + topic + ": assign at offset " + std::to_string(offset) + " failed: " +
                    rd_kafka_err2str(err));
  }
  reader->next_offset_ = offset >= 0 ? offset : -1;
  GetLogger("kafka")->info("topic {}: reading partition 0 from {} (servers {})", topic,
                           offset >= 0 ? "offset " + std::to_string(offset) : std::string("earliest"),
                           config.bootstrap_servers);
  return reader;
}

StatusOr<std::optional<RawMessage>> KafkaChannelReader::Poll(int timeout_ms) {
  if (!rk_) return FailedPrecondition("kafka topic " + topic_ + ": reader is closed");
  // librdkafka < 2.1 stops fetching a partition whose queue is full and looks again only
  // when its broker thread wakes, up to a second later. With a backlog on the broker and
  // nothing queued for a moment, wake it: any request to the broker does (a watermark query).
  rd_kafka_message_t* m = nullptr;
  // Only while the broker answers: the wake-up is a watermark query, which would hang on a dead one.
  if (Backlogged() && timeout_ms > kStallMs && SinceLastContact() < config_.probe_interval) {
    m = rd_kafka_consumer_poll(rk_, kStallMs);
    if (!m) {
      WakeFetcher();
      m = rd_kafka_consumer_poll(rk_, timeout_ms - kStallMs);
    }
  } else {
    m = rd_kafka_consumer_poll(rk_, timeout_ms);
  }
  if (callbacks_->fatal()) {
    char errstr[512] = {0};
    rd_kafka_fatal_error(rk_, errstr, sizeof(errstr));
    if (m) rd_kafka_message_destroy(m);
    return Internal("kafka topic " + topic_ + ": fatal client error: " + errstr);
  }
  if (m) {
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> msg(m, rd_kafka_message_destroy);
    switch (msg->err) {
      case RD_KAFKA_RESP_ERR_NO_ERROR: {
        RawMessage out;
        out.topic = topic_;
        out.offset = msg->offset;
        if (msg->payload) out.payload.assign(static_cast<const char*>(msg->payload), msg->len);
        rd_kafka_timestamp_type_t ts_type;
        out.timestamp_ms = rd_kafka_message_timestamp(msg.get(), &ts_type);
        next_offset_ = msg->offset + 1;
        MarkContact();
        return std::optional<RawMessage>(std::move(out));
      }
      case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        if (next_offset_ < 0) next_offset_ = msg->offset;
        MarkContact();
        return std::optional<RawMessage>();
      case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
      case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
        return FailedPrecondition("kafka topic " + topic_ + ": offset " + std::to_string(next_offset_) +
                                  " is out of range (deleted by retention, or past the end): " +
                                  rd_kafka_message_errstr(msg.get()));
      case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return FailedPrecondition("kafka topic " + topic_ + ": not authorized: " +
                                  rd_kafka_message_errstr(msg.get()));
      case RD_KAFKA_RESP_ERR__FATAL:
        return Internal("kafka topic " + topic_ + ": fatal client error: " + rd_kafka_message_errstr(msg.get()));
      default:
        // Transient (unknown topic not created yet, transport...): librdkafka retries.
        callbacks_->Error(msg->err, rd_kafka_message_errstr(msg.get()));
        break;
    }
  }
  // Idle: probe the broker now and then so SinceLastContact() means "unreachable", not "quiet".
  // A metadata request, which honours its timeout (a watermark query does not).
  auto now = std::chrono::steady_clock::now();
  if (now - last_contact_ >= config_.probe_interval && now - last_probe_ >= config_.probe_interval) {
    last_probe_ = now;
    if (BrokerAnswers(static_cast<int>(config_.probe_timeout.count()))) {
      MarkContact();
    } else if (callbacks_->last_error().empty()) {
      callbacks_->Error(RD_KAFKA_RESP_ERR__TRANSPORT, "no broker answers a metadata request");
    }
  }
  return std::optional<RawMessage>();
}

void KafkaChannelReader::WakeFetcher() {
  ++fetcher_wakeups_;
  // Sending the request is the wake-up; the answer is not needed, so wait only briefly and
  // leave a slow or failed one to the health probe (no error recorded here).
  int64_t low = 0, high = 0;
  if (rd_kafka_query_watermark_offsets(rk_, topic_.c_str(), 0, &low, &high, kStallMs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    MarkContact();
  }
}

bool KafkaChannelReader::Backlogged() const {
  int64_t low = 0, high = 0;  // as of the last fetch reply: no request
  return next_offset_ >= 0 &&
         rd_kafka_get_watermark_offsets(rk_, topic_.c_str(), 0, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
         high > next_offset_;
}

StatusOr<Watermarks> KafkaChannelReader::QueryWatermarks(int timeout_ms) {
  if (!rk_) return FailedPrecondition("kafka topic " + topic_ + ": reader is closed");
  return QueryWatermarksInternal(timeout_ms);
}

StatusOr<int64_t> KafkaChannelReader::HighWatermark(int timeout_ms) {
  ASSIGN_OR_RETURN(Watermarks wm, QueryWatermarks(timeout_ms));
  return wm.high;
}

StatusOr<int64_t> KafkaChannelReader::LagHighWatermark(int /*timeout_ms*/) {
  if (!rk_) return FailedPrecondition("kafka topic " + topic_ + ": reader is closed");
  int64_t low = 0, high = 0;
  rd_kafka_resp_err_t err = rd_kafka_get_watermark_offsets(rk_, topic_.c_str(), 0, &low, &high);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0) {
    return Unavailable("kafka topic " + topic_ + ": no high watermark known yet");
  }
  return high;
}

StatusOr<Watermarks> KafkaChannelReader::QueryWatermarksInternal(int timeout_ms) {
  Watermarks wm;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_, topic_.c_str(), 0, &wm.low, &wm.high, timeout_ms);
  if (IsUnknownTopic(err) && !BrokerAnswers(timeout_ms)) {
    // librdkafka says "unknown partition" too when it cannot reach the partition's leader:
    // a topic not created yet counts as contact only if a broker answers.
    err = RD_KAFKA_RESP_ERR__TRANSPORT;
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || IsUnknownTopic(err)) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) wm = Watermarks{};  // not created yet: empty
    MarkContact();
    return wm;
  }
  std::string cause = callbacks_->last_error();  // e.g. the connection failure behind a timeout
  if (cause.empty()) callbacks_->Error(err, "watermark query failed");
  return Unavailable("kafka " + config_.bootstrap_servers + ": watermarks of topic " + topic_ + ": " +
                     rd_kafka_err2str(err) + (cause.empty() ? "" : " (last error: " + cause + ")"));
}

bool KafkaChannelReader::BrokerAnswers(int timeout_ms) {
  const rd_kafka_metadata_t* md = nullptr;  // brokers and the topics librdkafka knows: one request
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, nullptr, &md, std::max(timeout_ms, 1));
  if (md) rd_kafka_metadata_destroy(md);
  return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

std::string KafkaChannelReader::last_error() const { return callbacks_->last_error(); }

std::chrono::milliseconds KafkaChannelReader::SinceLastContact() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - last_contact_);
}

void KafkaChannelReader::MarkContact() {
  last_contact_ = std::chrono::steady_clock::now();
  callbacks_->ClearError();
}

void KafkaChannelReader::Close() {
  if (!rk_) return;
  rd_kafka_assign(rk_, nullptr);
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
}

}  // namespace cdc::source

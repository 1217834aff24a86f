// KafkaChannelReader: reads one Milvus log channel (a Kafka topic, partition 0) from an explicit
// start offset, message by message. One librdkafka consumer per reader, assigned (never
// subscribed): no consumer group, no committed offsets; positions are ours (milvus-wire.md §5.2).
//
// Owner: the pipeline thread that reads the channel. Thread-compatible: every method must be
// called from one thread at a time. Close() runs in the destructor.
//
// Outages: librdkafka retries connections and fetches itself; Poll reports only errors that
// will not heal (an offset out of range, an unauthorized topic, a fatal client error). A broker
// that stays away shows as a growing SinceLastContact() with the cause in last_error(), so the
// owner can pause its task naming Kafka after N seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "source/mq_reader.h"
#include "util/status.h"

struct rd_kafka_s;  // librdkafka's rd_kafka_t (C API: the top-level build finds only `rdkafka`)

namespace cdc::source {

struct KafkaSaslConfig {
  std::string security_protocol = "SASL_PLAINTEXT";  // or SASL_SSL
  std::string mechanisms = "PLAIN";                  // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
  std::string username;
  std::string password;
};

struct KafkaReaderConfig {
  std::string bootstrap_servers;  // "host:port[,host:port...]"
  // Extra librdkafka properties (e.g. ssl.ca.location), applied over our defaults. A
  // receive.message.max.bytes that cannot take a 10 MiB Milvus message is rejected.
  std::map<std::string, std::string> properties;
  std::optional<KafkaSaslConfig> sasl;
  std::string client_id = "milvus-cdc";
  // Timeout of the watermark query that resolves a "latest" start.
  std::chrono::milliseconds metadata_timeout{10'000};
  // With no message for this long, Poll probes the broker (a watermark query, at most
  // probe_timeout) so SinceLastContact() stays meaningful on idle topics.
  std::chrono::milliseconds probe_interval{5'000};
  std::chrono::milliseconds probe_timeout{500};
};

struct Watermarks {
  int64_t low = 0;   // first offset still stored
  int64_t high = 0;  // offset the next produced message will get
};

class KafkaChannelReader : public MqChannelReader {
 public:
  // Creates the consumer and assigns `topic` partition 0 at `start`. Errors: invalid config
  // (kInvalidArgument), a librdkafka without zstd (kFailedPrecondition), "latest" that cannot
  // be resolved because the broker is unreachable (kUnavailable). A topic that does not exist
  // yet is not an error: earliest and latest then mean offset 0.
  static StatusOr<std::unique_ptr<KafkaChannelReader>> Open(const KafkaReaderConfig& config,
                                                            const std::string& topic, StartAt start);
  ~KafkaChannelReader() override;
  const char* mq_name() const override { return "Kafka"; }
  KafkaChannelReader(const KafkaChannelReader&) = delete;
  KafkaChannelReader& operator=(const KafkaChannelReader&) = delete;

  // The next message, or nullopt if none arrived within timeout_ms (end of partition included).
  // May block up to timeout_ms + probe_timeout. Errors (all final for this reader):
  // kFailedPrecondition for an offset out of range (deleted by retention or past the end) or an
  // unauthorized topic, kInternal for a fatal librdkafka error, kFailedPrecondition after
  // Close().
  StatusOr<std::optional<RawMessage>> Poll(int timeout_ms) override;

  // Queries the broker (blocks up to timeout_ms). A missing topic reports {0, 0}.
  StatusOr<Watermarks> QueryWatermarks(int timeout_ms = 5000);
  StatusOr<int64_t> HighWatermark(int timeout_ms = 5000) override;
  // The high watermark of the last fetch reply: no request (librdkafka's watermark query waits
  // for its reply whatever timeout it is given, so it hangs while the broker is gone).
  StatusOr<int64_t> LagHighWatermark(int timeout_ms) override;

  const std::string& topic() const { return topic_; }
  // Offset of the next message Poll returns; -1 when started at earliest and nothing read yet.
  int64_t next_offset() const override { return next_offset_; }

  // Health: the last librdkafka error seen (empty if none since the last contact) and the time
  // since the broker last answered (a message, end of partition, or a watermark reply).
  std::string last_error() const override;
  std::chrono::milliseconds SinceLastContact() const override;

  // How often Poll woke librdkafka's fetcher, parked with a full queue while the broker had
  // more (see Poll).
  uint64_t fetcher_wakeups() const { return fetcher_wakeups_; }

  // Leaves the assignment and destroys the consumer. Idempotent.
  void Close() override;

 private:
  class Callbacks;  // librdkafka error and log callbacks
  KafkaChannelReader(const KafkaReaderConfig& config, std::string topic);

  void MarkContact();
  // The broker holds messages past next_offset_ (watermark cached from the last fetch).
  bool Backlogged() const;
  // Makes librdkafka's broker thread look at the partition again (see Poll).
  void WakeFetcher();
  StatusOr<Watermarks> QueryWatermarksInternal(int timeout_ms);
  // A metadata request answered within timeout_ms: some broker is reachable.
  bool BrokerAnswers(int timeout_ms);

  KafkaReaderConfig config_;
  std::string topic_;
  std::unique_ptr<Callbacks> callbacks_;  // outlives rk_ (it is the librdkafka opaque)
  rd_kafka_s* rk_ = nullptr;              // owned; destroyed by Close()
  int64_t next_offset_ = -1;
  std::chrono::steady_clock::time_point last_contact_;
  std::chrono::steady_clock::time_point last_probe_;
  uint64_t fetcher_wakeups_ = 0;
};

}  // namespace cdc::source

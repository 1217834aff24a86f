// PulsarChannelReader: reads one Milvus log channel from Apache Pulsar over the binary protocol
// (pulsar/ holds the wire pieces). A non-durable Exclusive subscription with a unique name per
// reader (a Pulsar "reader"): nothing is acked and nothing is left behind on the broker. The
// topic is persistent://{tenant}/{namespace}/{channel}, non-partitioned (Milvus's layout).
//
// Offsets are packed message ids (pulsar_id.h). A start at an offset subscribes at that entry
// (inclusive) and drops the messages before the offset; if the first entry delivered is not the
// one asked for, it is gone (retention) and Poll fails with kFailedPrecondition naming it.
// Connection loss, CLOSE_CONSUMER (topic unloaded/moved) and broker restarts are handled inside:
// look up again, resubscribe just after the last message returned, with backoff; the outage shows
// in SinceLastContact()/last_error() so the owner can pause its task naming Pulsar.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "source/mq_reader.h"

namespace cdc::source {

struct PulsarReaderConfig {
  // pulsar://host:port or pulsar+ssl://host:port (a list "host1:port,host2:port" after the
  // scheme is allowed; the first that answers is used for lookups).
  std::string service_url;
  std::string tenant = "public";
  std::string ns = "default";
  // Authentication: "" (none), "token" or org.apache.pulsar.client.impl.auth.AuthenticationToken
  // (auth_params "token:<jwt>" or "file:<path>"), "basic" ("userId:<u>,password:<p>"). Never logged.
  std::string auth_plugin;
  std::string auth_params;
  std::string tls_ca_file;           // pulsar+ssl: CA bundle; empty = the system's
  bool tls_allow_insecure = false;   // pulsar+ssl: skip certificate verification (tests only)
  bool tls_verify_hostname = true;
  size_t max_frame_bytes = 128u << 20;  // hard cap whatever CONNECTED announces
  std::chrono::milliseconds operation_timeout{30'000};  // each request (lookup, subscribe, last id)
  std::chrono::milliseconds keepalive{30'000};          // PING when the link was silent this long
  std::chrono::milliseconds backoff_max{5'000};         // reconnect backoff ceiling
  unsigned receiver_queue = 1000;                       // FLOW permits (messages)
};

class PulsarChannelReader : public MqChannelReader {
 public:
  // Connects, looks the topic up and subscribes at `start`. Errors: invalid config
  // (kInvalidArgument), the broker unreachable (kUnavailable), refused auth (kPermissionDenied
  // or kFailedPrecondition). A topic that does not exist yet is created (Milvus does the same).
  static StatusOr<std::unique_ptr<PulsarChannelReader>> Open(const PulsarReaderConfig& config,
                                                             const std::string& channel, StartAt start);
  ~PulsarChannelReader() override;

  const char* mq_name() const override { return "Pulsar"; }
  StatusOr<std::optional<RawMessage>> Poll(int timeout_ms) override;
  StatusOr<int64_t> HighWatermark(int timeout_ms) override;  // packed(last message id) + 1
  int64_t next_offset() const override;
  std::string last_error() const override;
  std::chrono::milliseconds SinceLastContact() const override;
  void Close() override;

 private:
  class Impl;
  explicit PulsarChannelReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdc::source

// One TCP (or TLS) connection to a Pulsar broker or proxy, with deadlines via poll(): send whole
// frames, read whole frames. No protocol state beyond framing; the reader drives CONNECT,
// LOOKUP, SUBSCRIBE... on top. Owner: one PulsarChannelReader; thread-compatible.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace cdc::source::pulsar {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  bool tls = false;
  std::string HostPort() const { return host + ":" + std::to_string(port); }
};

// "pulsar://h:p", "pulsar+ssl://h:p" or "pulsar://h1:p1,h2:p2". Default ports 6650 / 6651.
StatusOr<std::vector<Endpoint>> ParseServiceUrl(const std::string& url);

struct TlsOptions {
  std::string ca_file;  // empty: the system's store
  bool allow_insecure = false;
  bool verify_hostname = true;
};

class Connection {
 public:
  static StatusOr<std::unique_ptr<Connection>> Dial(const Endpoint& endpoint, const TlsOptions& tls,
                                                    Clock::time_point deadline);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }
  // Writes the whole frame or fails (kUnavailable / kDeadlineExceeded).
  Status Send(const std::string& frame, Clock::time_point deadline);
  // One frame body (after the u32 total), or nullopt when the deadline passed first. A frame above
  // max_frame_bytes is an error; a closed or broken link is kUnavailable.
  StatusOr<std::optional<std::string>> ReadFrame(Clock::time_point deadline, size_t max_frame_bytes);

 private:
  struct Tls;
  Connection(Endpoint endpoint, int fd);
  // Reads what is available into buf_; false when the deadline passed first.
  StatusOr<bool> Fill(Clock::time_point deadline);
  Status WaitFd(short events, Clock::time_point deadline, bool* timed_out);

  Endpoint endpoint_;
  int fd_ = -1;
  std::unique_ptr<Tls> tls_;
  std::string buf_;
};

}  // namespace cdc::source::pulsar

// A tiny in-process Pulsar broker for unit tests: enough of the binary protocol (CONNECT, LOOKUP,
// SUBSCRIBE, FLOW, MESSAGE, PING/PONG, GET_LAST_MESSAGE_ID, CLOSE_CONSUMER) to drive
// PulsarChannelReader end to end. One thread per connection; knobs are set before or while the
// reader runs. Entries live in a FakeTopic that two brokers can share (lookup redirects).
// Optionally TLS (FakeTlsServer): every accepted socket is wrapped in an OpenSSL server session.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace cdc::source::testing {

struct FakeEntry {
  int64_t ledger = 0;
  int64_t entry = 0;
  std::string payload;
  bool batched = true;  // Milvus 2.3/2.4: a batch of one; false: 2.5's plain message
};

class FakeTopic {
 public:
  explicit FakeTopic(int64_t ledger = 3) : ledger_(ledger) {}
  void Append(const std::string& payload, bool batched = true);
  void Trim(size_t n);     // retention: the first n entries are gone
  void RollLedger();       // the next entry starts a new ledger
  std::vector<FakeEntry> Snapshot() const;
  int64_t ledger() const;

 private:
  mutable std::mutex mu_;
  int64_t ledger_;
  int64_t next_entry_ = 0;
  std::vector<FakeEntry> entries_;
};

// TLS mode: the broker's certificate chain and key (PEM). url() is then pulsar+ssl://, and LOOKUP
// answers brokerServiceUrlTls (pulsar+ssl://) besides brokerServiceUrl, as a real broker does.
struct FakeTlsServer {
  std::string cert_pem;
  std::string key_pem;
};

class FakeBroker {
 public:
  explicit FakeBroker(std::shared_ptr<FakeTopic> topic);
  FakeBroker(std::shared_ptr<FakeTopic> topic, const FakeTlsServer& tls);
  ~FakeBroker();
  std::string url() const { return (ssl_ctx_ ? "pulsar+ssl://" : "pulsar://") + host_port(); }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }

  // Knobs.
  std::string redirect_to;                  // LOOKUP answers Redirect to this URL (set before use)
  std::atomic<int> drop_after{-1};          // close the connection after this many MESSAGEs (once)
  std::atomic<int> close_consumer_after{-1};  // send CLOSE_CONSUMER after this many MESSAGEs (once)
  std::atomic<bool> refuse{false};          // accept and close at once (an outage)
  std::atomic<bool> answer_ping{true};
  std::atomic<bool> end_of_topic{false};    // send REACHED_END_OF_TOPIC after the backlog
  std::atomic<bool> refuse_auth{false};     // answer CONNECT with ERROR AuthenticationError
  std::atomic<int> auth_challenge_after{-1};  // send AUTH_CHALLENGE after this many MESSAGEs (once)

  // Records.
  std::atomic<int> connections{0};
  std::atomic<int> lookups{0};
  std::atomic<int> subscribes{0};
  std::vector<std::pair<int64_t, int64_t>> SubscribeStarts() const;  // (-1,-1): none sent
  std::vector<int32_t> SubscribeBatchIndexes() const;
  std::string LastAuthData() const;
  std::string LastAuthMethod() const;
  std::vector<std::pair<std::string, std::string>> AuthResponses() const;  // (method, data)
  std::atomic<int> tls_handshake_failures{0};
  std::vector<std::string> Snis() const;  // the server name each TLS client sent ("" for none)

 private:
  void AcceptLoop();
  void Serve(int fd);
  void Start();

  std::shared_ptr<FakeTopic> topic_;
  ::ssl_ctx_st* ssl_ctx_ = nullptr;  // TLS mode
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<std::thread> conn_threads_;
  std::vector<std::pair<int64_t, int64_t>> starts_;
  std::vector<int32_t> batch_indexes_;
  std::string auth_data_;
  std::string auth_method_;
  std::vector<std::string> snis_;
  std::vector<std::pair<std::string, std::string>> auth_responses_;
};

}  // namespace cdc::source::testing

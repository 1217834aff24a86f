#include "pulsar_fake_broker.h"

#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include <chrono>
#include <csignal>
#include <stdexcept>

#include "source/pulsar/frame.h"

namespace cdc::source::testing {

namespace pb = cdc::pulsar;
using source::pulsar::EncodeCommand;
using source::pulsar::EncodePayloadCommand;

void FakeTopic::Append(const std::string& payload, bool batched) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back({ledger_, next_entry_++, payload, batched});
}

void FakeTopic::Trim(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(std::min(n, entries_.size())));
}

void FakeTopic::RollLedger() {
  std::lock_guard<std::mutex> lock(mu_);
  ++ledger_;
  next_entry_ = 0;
}

std::vector<FakeEntry> FakeTopic::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_;
}

int64_t FakeTopic::ledger() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ledger_;
}

FakeBroker::FakeBroker(std::shared_ptr<FakeTopic> topic) : topic_(std::move(topic)) { Start(); }

FakeBroker::FakeBroker(std::shared_ptr<FakeTopic> topic, const FakeTlsServer& tls) : topic_(std::move(topic)) {
  // SSL_write uses write(): a peer that hung up would raise SIGPIPE (main.cc ignores it too).
  std::signal(SIGPIPE, SIG_IGN);
  ssl_ctx_ = SSL_CTX_new(TLS_server_method());
  BIO* cert_bio = BIO_new_mem_buf(tls.cert_pem.data(), static_cast<int>(tls.cert_pem.size()));
  BIO* key_bio = BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  const bool ok = ssl_ctx_ && cert && key && SSL_CTX_use_certificate(ssl_ctx_, cert) == 1 &&
                  SSL_CTX_use_PrivateKey(ssl_ctx_, key) == 1 && SSL_CTX_check_private_key(ssl_ctx_) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cert_bio);
  BIO_free(key_bio);
  if (!ok) throw std::runtime_error("FakeBroker: bad TLS certificate or key");
  Start();
}

void FakeBroker::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 16);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

FakeBroker::~FakeBroker() {
  stop_ = true;
  accept_thread_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(conn_threads_);
  }
  for (auto& t : threads) t.join();
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
}

std::vector<std::pair<int64_t, int64_t>> FakeBroker::SubscribeStarts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return starts_;
}

std::vector<int32_t> FakeBroker::SubscribeBatchIndexes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batch_indexes_;
}

std::string FakeBroker::LastAuthData() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auth_data_;
}

std::string FakeBroker::LastAuthMethod() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auth_method_;
}

std::vector<std::string> FakeBroker::Snis() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snis_;
}

std::vector<std::pair<std::string, std::string>> FakeBroker::AuthResponses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auth_responses_;
}

void FakeBroker::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections;
    if (refuse) {
      ::close(fd);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    conn_threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

namespace {
// One accepted (blocking) socket, plain or TLS.
struct Peer {
  int fd = -1;
  SSL* ssl = nullptr;

  bool SendAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ssl ? SSL_write(ssl, s.data() + off, static_cast<int>(s.size() - off))
                            : ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Bytes read; 0 when nothing came within wait_ms; -1 when the link is closed or broken.
  ssize_t Read(char* buf, size_t cap, int wait_ms) {
    if (!ssl || SSL_pending(ssl) == 0) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, wait_ms) <= 0) return 0;
    }
    if (!ssl) {
      const ssize_t n = ::recv(fd, buf, cap, 0);
      return n > 0 ? n : -1;
    }
    const int n = SSL_read(ssl, buf, static_cast<int>(cap));
    if (n > 0) return n;
    return SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ ? 0 : -1;  // e.g. a post-handshake record
  }
  void Close() {
    if (ssl) SSL_free(ssl);
    ssl = nullptr;
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

std::string MessageFrame(uint64_t consumer_id, const FakeEntry& e) {
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::MESSAGE);
  cmd.mutable_message()->set_consumer_id(consumer_id);
  cmd.mutable_message()->mutable_message_id()->set_ledgerid(static_cast<uint64_t>(e.ledger));
  cmd.mutable_message()->mutable_message_id()->set_entryid(static_cast<uint64_t>(e.entry));
  std::string raw = e.payload;
  pb::MessageMetadata md;
  md.set_producer_name("fake");
  md.set_sequence_id(static_cast<uint64_t>(e.entry));
  md.set_publish_time(static_cast<uint64_t>(1700000000000 + e.entry));
  if (e.batched) {
    pb::SingleMessageMetadata smm;
    smm.set_payload_size(static_cast<int>(e.payload.size()));
    const std::string s = smm.SerializeAsString();
    raw.clear();
    source::pulsar::PutU32(&raw, static_cast<uint32_t>(s.size()));
    raw += s + e.payload;
    md.set_num_messages_in_batch(1);
  }
  std::string z(ZSTD_compressBound(raw.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), raw.data(), raw.size(), 1));
  md.set_compression(pb::ZSTD);
  md.set_uncompressed_size(static_cast<uint32_t>(raw.size()));
  return EncodePayloadCommand(cmd, md, z);
}
}  // namespace

void FakeBroker::Serve(int fd) {
  Peer peer{fd, nullptr};
  if (ssl_ctx_) {
    timeval tv{5, 0};  // a client that stalls the handshake does not hang the broker's destructor
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    peer.ssl = SSL_new(ssl_ctx_);
    SSL_set_fd(peer.ssl, fd);
    if (SSL_accept(peer.ssl) != 1) {
      ++tls_handshake_failures;
      peer.Close();
      return;
    }
    {
      const char* sni = SSL_get_servername(peer.ssl, TLSEXT_NAMETYPE_host_name);
      std::lock_guard<std::mutex> lock(mu_);
      snis_.push_back(sni ? sni : "");
    }
    tv = timeval{0, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  std::string buf;
  uint64_t consumer_id = 0;
  bool subscribed = false;
  int64_t permits = 0;
  std::pair<int64_t, int64_t> next{-1, -1};  // the next entry to deliver, by id
  bool end_sent = false;
  auto send_cmd = [&](const pb::BaseCommand& c) { return peer.SendAll(EncodeCommand(c)); };
  while (!stop_) {
    // Deliver what the permits allow.
    if (subscribed) {
      const auto entries = topic_->Snapshot();
      for (const auto& e : entries) {
        if (permits <= 0) break;
        if (std::make_pair(e.ledger, e.entry) < next) continue;
        if (!peer.SendAll(MessageFrame(consumer_id, e))) break;
        --permits;
        next = {e.ledger, e.entry + 1};
        if (drop_after > 0 && --drop_after == 0) {
          drop_after = -1;
          peer.Close();
          return;
        }
        if (auth_challenge_after > 0 && --auth_challenge_after == 0) {
          auth_challenge_after = -1;
          pb::BaseCommand c;  // what a broker sends when the client's credentials are about to expire
          c.set_type(pb::BaseCommand::AUTH_CHALLENGE);
          c.mutable_authchallenge()->set_server_version("fake");
          c.mutable_authchallenge()->set_protocol_version(18);
          c.mutable_authchallenge()->mutable_challenge()->set_auth_method_name("token");
          c.mutable_authchallenge()->mutable_challenge()->set_auth_data("refresh");
          send_cmd(c);
        }
        if (close_consumer_after > 0 && --close_consumer_after == 0) {
          close_consumer_after = -1;
          pb::BaseCommand c;
          c.set_type(pb::BaseCommand::CLOSE_CONSUMER);
          c.mutable_close_consumer()->set_consumer_id(consumer_id);
          c.mutable_close_consumer()->set_request_id(0);
          send_cmd(c);
          subscribed = false;
          break;
        }
      }
      if (subscribed && end_of_topic && !end_sent && permits > 0) {
        pb::BaseCommand c;
        c.set_type(pb::BaseCommand::REACHED_END_OF_TOPIC);
        c.mutable_reachedendoftopic()->set_consumer_id(consumer_id);
        send_cmd(c);
        end_sent = true;
      }
    }
    char tmp[65536];
    const ssize_t n = peer.Read(tmp, sizeof(tmp), 20);
    if (n == 0) continue;
    if (n < 0) break;
    buf.append(tmp, static_cast<size_t>(n));
    while (buf.size() >= 4 && buf.size() >= 4 + source::pulsar::GetU32(buf.data())) {
      const uint32_t total = source::pulsar::GetU32(buf.data());
      auto f = source::pulsar::DecodeFrame(std::string_view(buf).substr(4, total));
      buf.erase(0, 4 + total);
      if (!f.ok()) continue;
      const auto& c = f->command;
      pb::BaseCommand r;
      switch (c.type()) {
        case pb::BaseCommand::CONNECT: {
          std::lock_guard<std::mutex> lock(mu_);
          auth_data_ = c.connect().auth_data();
          auth_method_ = c.connect().auth_method_name();
          if (refuse_auth) {  // what a broker answers an invalid token (and then closes)
            r.set_type(pb::BaseCommand::ERROR);
            r.mutable_error()->set_request_id(static_cast<uint64_t>(-1));
            r.mutable_error()->set_error(pb::AuthenticationError);
            r.mutable_error()->set_message("Failed to authenticate");
            break;
          }
          r.set_type(pb::BaseCommand::CONNECTED);
          r.mutable_connected()->set_server_version("fake");
          r.mutable_connected()->set_protocol_version(18);
          r.mutable_connected()->set_max_message_size(5 << 20);
          break;
        }
        case pb::BaseCommand::LOOKUP:
          ++lookups;
          r.set_type(pb::BaseCommand::LOOKUP_RESPONSE);
          r.mutable_lookuptopicresponse()->set_request_id(c.lookuptopic().request_id());
          {
            // A real broker fills both URLs; a pulsar+ssl client must take brokerServiceUrlTls. Here
            // the plain URL of a TLS broker names its TLS port, so a client that took it fails.
            const std::string to = redirect_to.empty() ? url() : redirect_to;
            const std::string host_port = to.substr(to.find("://") + 3);
            r.mutable_lookuptopicresponse()->set_response(redirect_to.empty()
                                                              ? pb::CommandLookupTopicResponse::Connect
                                                              : pb::CommandLookupTopicResponse::Redirect);
            if (ssl_ctx_) {
              r.mutable_lookuptopicresponse()->set_brokerserviceurl("pulsar://" + host_port);
              r.mutable_lookuptopicresponse()->set_brokerserviceurltls("pulsar+ssl://" + host_port);
            } else {
              r.mutable_lookuptopicresponse()->set_brokerserviceurl(to);
            }
          }
          break;
        case pb::BaseCommand::SUBSCRIBE: {
          ++subscribes;
          const auto& s = c.subscribe();
          consumer_id = s.consumer_id();
          const auto entries = topic_->Snapshot();
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (s.has_start_message_id()) {
              starts_.push_back({static_cast<int64_t>(s.start_message_id().ledgerid()),
                                 static_cast<int64_t>(s.start_message_id().entryid())});
              batch_indexes_.push_back(s.start_message_id().batch_index());
            } else {
              starts_.push_back({-1, -1});
              batch_indexes_.push_back(-1);
            }
          }
          if (s.has_start_message_id()) {  // the start entry itself (the broker steps back one)
            next = {static_cast<int64_t>(s.start_message_id().ledgerid()),
                    static_cast<int64_t>(s.start_message_id().entryid())};
          } else if (s.initialposition() == pb::CommandSubscribe::Earliest) {
            next = {-1, -1};
          } else {
            next = entries.empty() ? std::make_pair(topic_->ledger(), int64_t{0})
                                   : std::make_pair(entries.back().ledger, entries.back().entry + 1);
          }
          subscribed = true;
          permits = 0;
          r.set_type(pb::BaseCommand::SUCCESS);
          r.mutable_success()->set_request_id(s.request_id());
          break;
        }
        case pb::BaseCommand::FLOW:
          permits += c.flow().messagepermits();
          continue;
        case pb::BaseCommand::AUTH_RESPONSE: {
          std::lock_guard<std::mutex> lock(mu_);
          auth_responses_.emplace_back(c.authresponse().response().auth_method_name(),
                                       c.authresponse().response().auth_data());
          continue;
        }
        case pb::BaseCommand::PING:
          if (!answer_ping) continue;
          r.set_type(pb::BaseCommand::PONG);
          r.mutable_pong();
          break;
        case pb::BaseCommand::GET_LAST_MESSAGE_ID: {
          const auto entries = topic_->Snapshot();
          r.set_type(pb::BaseCommand::GET_LAST_MESSAGE_ID_RESPONSE);
          auto* resp = r.mutable_getlastmessageidresponse();
          resp->set_request_id(c.getlastmessageid().request_id());
          auto* id = resp->mutable_last_message_id();
          if (entries.empty()) {
            id->set_ledgerid(static_cast<uint64_t>(topic_->ledger()));
            id->set_entryid(static_cast<uint64_t>(-1));
          } else {
            id->set_ledgerid(static_cast<uint64_t>(entries.back().ledger));
            id->set_entryid(static_cast<uint64_t>(entries.back().entry));
            if (entries.back().batched) id->set_batch_index(0);
          }
          break;
        }
        default:
          continue;
      }
      if (!send_cmd(r)) break;
      if (r.type() == pb::BaseCommand::ERROR && c.type() == pb::BaseCommand::CONNECT) {
        peer.Close();
        return;
      }
    }
  }
  peer.Close();
}

}  // namespace cdc::source::testing

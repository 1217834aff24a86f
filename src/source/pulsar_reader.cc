// PulsarChannelReader: the protocol flow on top of pulsar/ (framing, connection, decoding).
// Everything runs on the owner's thread inside Poll/HighWatermark: blocking I/O bounded by
// poll() deadlines, no background thread.
//
// Decisions worth knowing:
//  - A reconnect attempt inside Poll may take up to operation_timeout per step (dial, CONNECT,
//    lookup, subscribe), past Poll's own timeout; between attempts Poll sleeps (backoff), never spins.
//  - Latest pins "just after the last message at Open" (GET_LAST_MESSAGE_ID), so a reconnect before
//    the first message loses nothing; on an empty ledger it resubscribes at Latest again.
//  - HighWatermark: packed(last id) + 1; an empty current ledger (entry -1) gives (ledger, 0, 0), the
//    id the next message gets; no ledger at all gives next_offset() (or 0). Never below next_offset().
//  - The gap check holds for starts at a message that existed (Milvus positions, "just after" a
//    read message); a start at an entry never written can read as a gap once the ledger rolls.
#include "source/pulsar_reader.h"

#include <algorithm>
#include <deque>
#include <random>
#include <thread>

#include "source/pulsar/auth.h"
#include "source/pulsar/connection.h"
#include "source/pulsar/frame.h"
#include "source/pulsar/message.h"
#include "source/pulsar_id.h"
#include "util/log.h"

namespace cdc::source {

namespace pb = cdc::pulsar;
using pulsar::Clock;
using pulsar::Connection;
using pulsar::Endpoint;

namespace {
constexpr int kProtocolVersion = 18;  // what the Go clients send; >= 20 may get TOPIC_MIGRATED
constexpr size_t kFramePadding = 10 * 1024;
constexpr size_t kDefaultMaxMessage = 5u << 20;  // brokers that do not announce one
constexpr int kMaxRedirects = 20;
constexpr char kClientVersion[] = "milvus-cdc";
constexpr std::chrono::milliseconds kFirstBackoff{100};

std::string RandomHex(int n) {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(kHex[gen() % 16]);
  return s;
}

// A broker error as a Status: refusals that will not heal are kFailedPrecondition, the rest
// kUnavailable (retried).
Status ServerStatus(pb::ServerError error, const std::string& message, const std::string& what) {
  const std::string text = what + ": " + pb::ServerError_Name(error) + (message.empty() ? "" : " (" + message + ")");
  switch (error) {
    case pb::AuthenticationError:
    case pb::AuthorizationError:
    case pb::TopicTerminatedError:
    case pb::InvalidTopicName:
    case pb::NotAllowedError:
    case pb::UnsupportedVersionError:
      return FailedPrecondition(text);
    default:
      return Unavailable(text);
  }
}

bool Retriable(const Status& st) {
  return st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded;
}

std::optional<uint64_t> ResponseRequestId(const pb::BaseCommand& c) {
  switch (c.type()) {
    case pb::BaseCommand::SUCCESS: return c.success().request_id();
    case pb::BaseCommand::ERROR: return c.error().request_id();
    case pb::BaseCommand::LOOKUP_RESPONSE: return c.lookuptopicresponse().request_id();
    case pb::BaseCommand::GET_LAST_MESSAGE_ID_RESPONSE: return c.getlastmessageidresponse().request_id();
    default: return std::nullopt;
  }
}

// The answer to an AUTH_CHALLENGE: our current credentials.
pb::BaseCommand AuthResponse(const pulsar::AuthData& auth) {
  pb::BaseCommand resp;
  resp.set_type(pb::BaseCommand::AUTH_RESPONSE);
  resp.mutable_authresponse()->set_client_version(kClientVersion);
  resp.mutable_authresponse()->set_protocol_version(kProtocolVersion);
  resp.mutable_authresponse()->mutable_response()->set_auth_method_name(auth.method);
  resp.mutable_authresponse()->mutable_response()->set_auth_data(auth.data);
  return resp;
}

pb::BaseCommand Simple(pb::BaseCommand::Type type) {
  pb::BaseCommand c;
  c.set_type(type);
  if (type == pb::BaseCommand::PING) c.mutable_ping();
  if (type == pb::BaseCommand::PONG) c.mutable_pong();
  return c;
}

// Where to (re)subscribe.
struct SubscribeAt {
  StartAt::Kind kind = StartAt::Kind::kLatest;
  int64_t offset = -1;
  bool gap_check = true;  // kOffset: the entry of `offset` must be the first delivered
};
}  // namespace

class PulsarChannelReader::Impl {
 public:
  Impl(PulsarReaderConfig config, std::string channel, StartAt start, std::vector<Endpoint> service)
      : config_(std::move(config)),
        channel_(std::move(channel)),
        topic_("persistent://" + config_.tenant + "/" + config_.ns + "/" + channel_),
        start_(start),
        service_(std::move(service)),
        log_(GetLogger("pulsar")),
        sub_base_("milvus-cdc-" + RandomHex(12)),
        last_contact_(Clock::now()) {
    tls_.ca_file = config_.tls_ca_file;
    tls_.allow_insecure = config_.tls_allow_insecure;
    tls_.verify_hostname = config_.tls_verify_hostname;
  }

  Status Establish();
  void ResolveLatestResume();
  StatusOr<std::optional<RawMessage>> Poll(int timeout_ms);
  StatusOr<int64_t> HighWatermark(int timeout_ms);
  int64_t next_offset() const;
  std::string last_error() const { return last_error_; }
  std::chrono::milliseconds SinceLastContact() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_contact_);
  }
  void Close() {
    closed_ = true;
    link_.reset();
    pending_.clear();
  }

 private:
  struct Link {
    std::unique_ptr<Connection> conn;
    std::string proxy_to;  // proxy mode: the broker behind the service URL
    size_t max_frame = 0;
  };
  struct Target {
    Endpoint broker;
    bool via_proxy = false;
    Endpoint service;
  };

  StatusOr<Link> Open(const Endpoint& ep, const std::string& proxy_to, Clock::time_point deadline);
  StatusOr<Target> Lookup(const Endpoint& service, Clock::time_point deadline, Link* link);
  StatusOr<pb::BaseCommand> Request(Link& link, bool consumer, const pb::BaseCommand& cmd, uint64_t request_id,
                                    Clock::time_point deadline, const char* what);
  Status Subscribe(const SubscribeAt& at, Clock::time_point deadline);
  Status SendFlow(uint32_t permits);
  void HandleFrame(pulsar::Frame& frame);
  void OnMessage(const pulsar::Frame& frame);
  void Drop(const std::string& cause, bool immediate);
  void NoteError(const std::string& error) { last_error_ = error; }
  void Touch() {
    last_contact_ = last_received_ = Clock::now();
    ping_outstanding_ = false;
    last_error_.clear();
  }
  SubscribeAt NextSubscription() const;
  std::string Where() const { return "Pulsar topic " + topic_; }

  const PulsarReaderConfig config_;
  const std::string channel_;
  const std::string topic_;
  const StartAt start_;
  const std::vector<Endpoint> service_;
  pulsar::TlsOptions tls_;
  std::shared_ptr<spdlog::logger> log_;
  const std::string sub_base_;

  std::optional<Link> link_;  // the consumer's connection; empty while disconnected
  uint64_t next_request_id_ = 1;
  uint64_t consumer_id_ = 0;
  std::deque<RawMessage> pending_;
  std::optional<SubscribeAt> resume_;  // set once a message was returned (or a latest start resolved)
  int64_t drop_before_ = -1;           // current subscription: drop messages below this offset
  std::optional<std::pair<int64_t, int64_t>> expect_first_;  // current subscription: gap check
  uint32_t permits_used_ = 0;
  std::optional<std::string> drop_;  // set by HandleFrame: drop the link (Poll does it)
  bool drop_immediate_ = false;

  Clock::time_point last_contact_;
  Clock::time_point last_received_;
  Clock::time_point ping_sent_;
  bool ping_outstanding_ = false;
  std::string last_error_;
  Status fatal_;
  bool closed_ = false;
  Clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
  int failures_ = 0;
};

// ---- connections ---------------------------------------------------------------------------

StatusOr<PulsarChannelReader::Impl::Link> PulsarChannelReader::Impl::Open(const Endpoint& ep,
                                                                         const std::string& proxy_to,
                                                                         Clock::time_point deadline) {
  Link link;
  link.proxy_to = proxy_to;
  link.max_frame = config_.max_frame_bytes;
  ASSIGN_OR_RETURN(link.conn, Connection::Dial(ep, tls_, deadline));
  auto auth = pulsar::ResolveAuth(config_.auth_plugin, config_.auth_params);
  if (!auth.ok()) return FailedPrecondition(auth.status().message());

  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::CONNECT);
  auto* c = cmd.mutable_connect();
  c->set_client_version(kClientVersion);
  c->set_protocol_version(kProtocolVersion);
  if (!auth->method.empty()) {
    c->set_auth_method_name(auth->method);
    c->set_auth_data(auth->data);
  }
  if (!proxy_to.empty()) c->set_proxy_to_broker_url(proxy_to);
  c->mutable_feature_flags()->set_supports_auth_refresh(true);
  const std::string where = "Pulsar " + ep.HostPort() + (proxy_to.empty() ? "" : " (proxy to " + proxy_to + ")");
  RETURN_IF_ERROR(link.conn->Send(pulsar::EncodeCommand(cmd), deadline).WithContext(where));
  for (;;) {
    ASSIGN_OR_RETURN(auto body, link.conn->ReadFrame(deadline, link.max_frame));
    if (!body) return Unavailable(where + ": no CONNECTED within the operation timeout");
    ASSIGN_OR_RETURN(pulsar::Frame f, pulsar::DecodeFrame(*body));
    Touch();
    const auto& r = f.command;
    if (r.type() == pb::BaseCommand::CONNECTED) {
      const size_t max_msg = r.connected().has_max_message_size() && r.connected().max_message_size() > 0
                                 ? static_cast<size_t>(r.connected().max_message_size())
                                 : kDefaultMaxMessage;
      link.max_frame = std::min(config_.max_frame_bytes, max_msg + kFramePadding);
      return link;
    }
    if (r.type() == pb::BaseCommand::ERROR) return ServerStatus(r.error().error(), r.error().message(), where + " refused CONNECT");
    if (r.type() == pb::BaseCommand::AUTH_CHALLENGE) {
      RETURN_IF_ERROR(link.conn->Send(pulsar::EncodeCommand(AuthResponse(*auth)), deadline));
    } else if (r.type() == pb::BaseCommand::PING) {
      RETURN_IF_ERROR(link.conn->Send(pulsar::EncodeCommand(Simple(pb::BaseCommand::PONG)), deadline));
    }
  }
}

StatusOr<pb::BaseCommand> PulsarChannelReader::Impl::Request(Link& link, bool consumer, const pb::BaseCommand& cmd,
                                                            uint64_t request_id, Clock::time_point deadline,
                                                            const char* what) {
  RETURN_IF_ERROR(link.conn->Send(pulsar::EncodeCommand(cmd), deadline).WithContext(Where() + ": " + what));
  for (;;) {
    auto body = link.conn->ReadFrame(deadline, link.max_frame);
    if (!body.ok()) return body.status().WithContext(Where() + ": " + what);
    if (!*body) return DeadlineExceeded(Where() + ": " + what + " got no answer within the timeout");
    auto f = pulsar::DecodeFrame(**body);
    if (!f.ok()) return f.status().WithContext(Where() + ": " + what);
    Touch();
    if (ResponseRequestId(f->command) == request_id) return std::move(f->command);
    if (consumer) {
      HandleFrame(*f);
      if (drop_) return Unavailable(Where() + ": " + what + ": " + *drop_);
    } else if (f->command.type() == pb::BaseCommand::PING) {
      RETURN_IF_ERROR(link.conn->Send(pulsar::EncodeCommand(Simple(pb::BaseCommand::PONG)), deadline));
    } else if (f->command.type() == pb::BaseCommand::AUTH_CHALLENGE) {  // a token refresh mid-lookup
      ASSIGN_OR_RETURN(pulsar::AuthData auth, pulsar::ResolveAuth(config_.auth_plugin, config_.auth_params));
      RETURN_IF_ERROR(link.conn->Send(pulsar::EncodeCommand(AuthResponse(auth)), deadline));
    }
  }
}

StatusOr<PulsarChannelReader::Impl::Target> PulsarChannelReader::Impl::Lookup(const Endpoint& service,
                                                                             Clock::time_point deadline,
                                                                             Link* link) {
  ASSIGN_OR_RETURN(*link, Open(service, "", deadline));
  bool authoritative = false;
  for (int i = 0; i <= kMaxRedirects; ++i) {
    pb::BaseCommand cmd;
    cmd.set_type(pb::BaseCommand::LOOKUP);
    const uint64_t rid = next_request_id_++;
    cmd.mutable_lookuptopic()->set_topic(topic_);
    cmd.mutable_lookuptopic()->set_request_id(rid);
    cmd.mutable_lookuptopic()->set_authoritative(authoritative);
    ASSIGN_OR_RETURN(pb::BaseCommand resp, Request(*link, false, cmd, rid, deadline, "lookup"));
    if (resp.type() == pb::BaseCommand::ERROR) {
      return ServerStatus(resp.error().error(), resp.error().message(), Where() + ": lookup");
    }
    const auto& r = resp.lookuptopicresponse();
    if (r.response() == pb::CommandLookupTopicResponse::Failed) {
      return ServerStatus(r.error(), r.message(), Where() + ": lookup failed");
    }
    const std::string url = service.tls ? r.brokerserviceurltls() : r.brokerserviceurl();
    if (url.empty()) return Unavailable(Where() + ": lookup answered without a broker URL" + (service.tls ? " for TLS" : ""));
    auto broker = pulsar::ParseServiceUrl(url);
    if (!broker.ok()) return Unavailable(Where() + ": lookup answered a bad broker URL: " + broker.status().message());
    Target target{broker->front(), r.proxy_through_service_url(), service};
    if (r.response() == pb::CommandLookupTopicResponse::Connect) return target;
    // Redirect: ask the named broker (through the proxy when told so).
    authoritative = r.authoritative();
    log_->debug("topic {}: lookup redirected to {}{}", topic_, url, target.via_proxy ? " via the proxy" : "");
    if (target.via_proxy) {
      ASSIGN_OR_RETURN(*link, Open(service, target.broker.HostPort(), deadline));
    } else {
      ASSIGN_OR_RETURN(*link, Open(target.broker, "", deadline));
    }
  }
  return Unavailable(Where() + ": lookup redirected more than " + std::to_string(kMaxRedirects) + " times");
}

Status PulsarChannelReader::Impl::Establish() {
  const Clock::time_point deadline = Clock::now() + config_.operation_timeout;
  Status last;
  std::optional<Target> target;
  Link lookup_link;
  for (const Endpoint& ep : service_) {
    auto t = Lookup(ep, deadline, &lookup_link);
    if (t.ok()) {
      target = *t;
      break;
    }
    last = t.status();
    if (!Retriable(last)) return last;
  }
  if (!target) return last;

  // The lookup's last connection serves the topic when it already leads to that broker.
  const std::string want_proxy = target->via_proxy ? target->broker.HostPort() : "";
  const Endpoint& want_ep = target->via_proxy ? target->service : target->broker;
  Link data;
  const Endpoint* have = lookup_link.conn ? &lookup_link.conn->endpoint() : nullptr;
  if (have && lookup_link.proxy_to == want_proxy && have->HostPort() == want_ep.HostPort() && have->tls == want_ep.tls) {
    data = std::move(lookup_link);
  } else {
    lookup_link = Link{};
    ASSIGN_OR_RETURN(data, Open(want_ep, want_proxy, deadline));
  }
  link_ = std::move(data);
  drop_.reset();
  const SubscribeAt at = NextSubscription();
  Status st = Subscribe(at, deadline);
  if (!st.ok()) {
    link_.reset();
    return st;
  }
  log_->info("topic {}: subscribed at {} via {}{}", topic_,
             at.kind == StartAt::Kind::kOffset ? "offset " + std::to_string(at.offset) + " (ledger " +
                                                     std::to_string(UnpackPulsarId(at.offset).ledger) + " entry " +
                                                     std::to_string(UnpackPulsarId(at.offset).entry) + " batch " +
                                                     std::to_string(UnpackPulsarId(at.offset).batch_index) + ")"
             : at.kind == StartAt::Kind::kEarliest ? std::string("earliest")
                                                    : std::string("latest"),
             target->broker.HostPort(), target->via_proxy ? " (proxy " + target->service.HostPort() + ")" : "");
  return Status::Ok();
}

Status PulsarChannelReader::Impl::Subscribe(const SubscribeAt& at, Clock::time_point deadline) {
  consumer_id_++;
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::SUBSCRIBE);
  const uint64_t rid = next_request_id_++;
  auto* s = cmd.mutable_subscribe();
  s->set_topic(topic_);
  // A fresh name per subscribe: a consumer the broker has not yet dropped never blocks us.
  s->set_subscription(sub_base_ + "-" + std::to_string(consumer_id_));
  s->set_subtype(pb::CommandSubscribe::Exclusive);
  s->set_consumer_id(consumer_id_);
  s->set_request_id(rid);
  s->set_consumer_name(kClientVersion);
  s->set_durable(false);
  s->set_force_topic_creation(true);
  drop_before_ = -1;
  expect_first_.reset();
  switch (at.kind) {
    case StartAt::Kind::kEarliest:
      s->set_initialposition(pb::CommandSubscribe::Earliest);
      break;
    case StartAt::Kind::kLatest:
      s->set_initialposition(pb::CommandSubscribe::Latest);
      break;
    case StartAt::Kind::kOffset: {
      const PulsarId id = UnpackPulsarId(at.offset);
      auto* m = s->mutable_start_message_id();
      m->set_ledgerid(static_cast<uint64_t>(id.ledger));
      m->set_entryid(static_cast<uint64_t>(id.entry));
      m->set_batch_index(std::max(id.batch_index, 0));  // >= 0: the broker steps back one entry
      s->set_initialposition(pb::CommandSubscribe::Earliest);
      drop_before_ = at.offset;
      if (at.gap_check) expect_first_ = {id.ledger, id.entry};
      break;
    }
  }
  ASSIGN_OR_RETURN(pb::BaseCommand resp, Request(*link_, true, cmd, rid, deadline, "subscribe"));
  if (resp.type() == pb::BaseCommand::ERROR) {
    return ServerStatus(resp.error().error(), resp.error().message(), Where() + ": subscribe");
  }
  permits_used_ = 0;
  return SendFlow(std::max(1u, config_.receiver_queue));
}

Status PulsarChannelReader::Impl::SendFlow(uint32_t permits) {
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::FLOW);
  cmd.mutable_flow()->set_consumer_id(consumer_id_);
  cmd.mutable_flow()->set_messagepermits(permits);
  return link_->conn->Send(pulsar::EncodeCommand(cmd), Clock::now() + config_.operation_timeout)
      .WithContext(Where() + ": flow");
}

void PulsarChannelReader::Impl::ResolveLatestResume() {
  // Latest: pin "just after the last message at Open" so a reconnect before the first message
  // loses nothing. An empty topic or ledger leaves it to initialPosition Latest.
  if (!link_) return;
  const uint64_t rid = next_request_id_++;
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::GET_LAST_MESSAGE_ID);
  cmd.mutable_getlastmessageid()->set_consumer_id(consumer_id_);
  cmd.mutable_getlastmessageid()->set_request_id(rid);
  auto resp = Request(*link_, true, cmd, rid, Clock::now() + config_.operation_timeout, "get last message id");
  if (!resp.ok() || resp->type() != pb::BaseCommand::GET_LAST_MESSAGE_ID_RESPONSE) return;
  const auto& id = resp->getlastmessageidresponse().last_message_id();
  const auto packed = PackPulsarId({static_cast<int64_t>(id.ledgerid()), static_cast<int64_t>(id.entryid()),
                                    std::max(id.batch_index(), 0), 0});
  if (packed.ok() && !resume_ && pending_.empty()) resume_ = SubscribeAt{StartAt::Kind::kOffset, *packed + 1, false};
}

SubscribeAt PulsarChannelReader::Impl::NextSubscription() const {
  if (resume_) return *resume_;
  return SubscribeAt{start_.kind, start_.offset, true};
}

// ---- reading -------------------------------------------------------------------------------

void PulsarChannelReader::Impl::Drop(const std::string& cause, bool immediate) {
  NoteError(cause);
  ++failures_;
  if (failures_ == 1 || failures_ % 20 == 0) log_->warn("topic {}: {} (reconnecting)", topic_, cause);
  if (!pending_.empty()) resume_ = SubscribeAt{StartAt::Kind::kOffset, pending_.front().offset, true};
  pending_.clear();
  link_.reset();
  drop_.reset();
  if (immediate) {
    backoff_ = std::chrono::milliseconds(0);
  } else {
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, config_.backoff_max);
  }
  next_attempt_ = Clock::now() + backoff_;
}

void PulsarChannelReader::Impl::HandleFrame(pulsar::Frame& f) {
  const auto& c = f.command;
  switch (c.type()) {
    case pb::BaseCommand::PING: {
      Status st = link_->conn->Send(pulsar::EncodeCommand(Simple(pb::BaseCommand::PONG)),
                                    Clock::now() + config_.operation_timeout);
      if (!st.ok()) drop_ = st.message();
      break;
    }
    case pb::BaseCommand::MESSAGE:
      if (c.message().consumer_id() == consumer_id_) OnMessage(f);
      break;
    case pb::BaseCommand::CLOSE_CONSUMER:
      if (c.close_consumer().consumer_id() == consumer_id_) {
        drop_ = "the broker closed the consumer (topic unloaded or moved)";
        drop_immediate_ = true;
      }
      break;
    case pb::BaseCommand::REACHED_END_OF_TOPIC:
      fatal_ = FailedPrecondition(Where() + " reached its end (terminated): no more messages will come");
      break;
    case pb::BaseCommand::AUTH_CHALLENGE: {
      auto auth = pulsar::ResolveAuth(config_.auth_plugin, config_.auth_params);
      if (!auth.ok()) {
        drop_ = "auth refresh: " + auth.status().message();
        break;
      }
      Status st = link_->conn->Send(pulsar::EncodeCommand(AuthResponse(*auth)), Clock::now() + config_.operation_timeout);
      if (!st.ok()) drop_ = st.message();
      break;
    }
    case pb::BaseCommand::ERROR:
      NoteError(Where() + ": broker error " + pb::ServerError_Name(c.error().error()) + " " + c.error().message());
      log_->warn("{}", last_error_);
      break;
    default:  // PONG, ACTIVE_CONSUMER_CHANGE, late responses: nothing to do
      break;
  }
}

void PulsarChannelReader::Impl::OnMessage(const pulsar::Frame& f) {
  const auto& mid = f.command.message().message_id();
  const int64_t ledger = static_cast<int64_t>(mid.ledgerid());
  const int64_t entry = static_cast<int64_t>(mid.entryid());
  const std::string at = Where() + " ledger " + std::to_string(ledger) + " entry " + std::to_string(entry);
  log_->debug("{}: MESSAGE (drop before {})", at, drop_before_);
  if (expect_first_) {
    const auto want = *expect_first_;
    expect_first_.reset();
    if (std::make_pair(ledger, entry) > want) {
      fatal_ = FailedPrecondition("Pulsar position ledger " + std::to_string(want.first) + " entry " +
                                  std::to_string(want.second) + " of topic " + topic_ +
                                  " is gone (retention?) — first available is ledger " + std::to_string(ledger) +
                                  " entry " + std::to_string(entry));
      return;
    }
  }
  if (!f.has_payload) {
    fatal_ = InvalidArgument(at + ": MESSAGE without a payload");
    return;
  }
  auto decoded = pulsar::DecodeEntry(f.metadata, f.payload, config_.max_frame_bytes);
  if (!decoded.ok()) {
    fatal_ = decoded.status().WithContext(at);
    return;
  }
  permits_used_ += static_cast<uint32_t>(decoded->num_messages);
  for (auto& m : decoded->messages) {
    auto offset = PackPulsarId({ledger, entry, m.batch_index, 0});
    if (!offset.ok()) {
      fatal_ = offset.status().WithContext(Where());
      return;
    }
    if (*offset < drop_before_) continue;
    RawMessage msg;
    msg.topic = channel_;
    msg.offset = *offset;
    msg.payload = std::move(m.payload);
    msg.timestamp_ms = f.metadata.has_publish_time() ? static_cast<int64_t>(f.metadata.publish_time()) : -1;
    pending_.push_back(std::move(msg));
  }
  if (permits_used_ >= std::max(1u, config_.receiver_queue / 2)) {
    Status st = SendFlow(permits_used_);
    permits_used_ = 0;
    if (!st.ok()) drop_ = st.message();
  }
}

StatusOr<std::optional<RawMessage>> PulsarChannelReader::Impl::Poll(int timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (;;) {
    if (closed_) return FailedPrecondition(Where() + ": the reader is closed");
    if (!fatal_.ok()) return fatal_;
    if (!pending_.empty()) {
      RawMessage msg = std::move(pending_.front());
      pending_.pop_front();
      resume_ = SubscribeAt{StartAt::Kind::kOffset, msg.offset + 1, true};
      return std::optional<RawMessage>(std::move(msg));
    }
    if (drop_) {
      Drop(*drop_, drop_immediate_);
      drop_immediate_ = false;
      continue;
    }
    Clock::time_point now = Clock::now();
    if (!link_) {
      if (next_attempt_ > now) {
        if (next_attempt_ >= deadline) {
          std::this_thread::sleep_until(deadline);
          return std::optional<RawMessage>();
        }
        std::this_thread::sleep_until(next_attempt_);
      }
      Status st = Establish();
      if (!st.ok()) {
        if (!Retriable(st)) {
          fatal_ = st;
          continue;
        }
        Drop(st.message(), false);
        if (Clock::now() >= deadline) return std::optional<RawMessage>();
        continue;
      }
      failures_ = 0;
      backoff_ = std::chrono::milliseconds(0);
      continue;
    }
    // Keepalive: PING after a silent `keepalive`, and a missing PONG after another one is a dead link.
    if (ping_outstanding_ && now - ping_sent_ >= config_.keepalive) {
      Drop("no PONG from the broker within " + std::to_string(config_.keepalive.count()) + " ms", false);
      continue;
    }
    if (!ping_outstanding_ && now - last_received_ >= config_.keepalive) {
      Status st = link_->conn->Send(pulsar::EncodeCommand(Simple(pb::BaseCommand::PING)), now + config_.operation_timeout);
      if (!st.ok()) {
        Drop(st.message(), false);
        continue;
      }
      ping_outstanding_ = true;
      ping_sent_ = now;
    }
    const Clock::time_point wake =
        std::min(deadline, (ping_outstanding_ ? ping_sent_ : last_received_) + config_.keepalive);
    auto body = link_->conn->ReadFrame(wake, link_->max_frame);
    if (!body.ok()) {
      if (body.status().code() == StatusCode::kResourceExhausted) {
        fatal_ = body.status().WithContext(Where());
      } else {
        Drop(body.status().message(), false);
      }
      continue;
    }
    if (*body) {
      auto f = pulsar::DecodeFrame(**body);
      if (!f.ok()) {
        Drop(f.status().message(), false);  // a corrupted frame: read it again on a new link
        continue;
      }
      Touch();
      HandleFrame(*f);
      if (!pending_.empty() || !fatal_.ok() || drop_) continue;
    }
    if (Clock::now() >= deadline) return std::optional<RawMessage>();
  }
}

StatusOr<int64_t> PulsarChannelReader::Impl::HighWatermark(int timeout_ms) {
  if (closed_) return FailedPrecondition(Where() + ": the reader is closed");
  if (!fatal_.ok()) return fatal_;
  if (!link_) return Unavailable(Where() + ": not connected" + (last_error_.empty() ? "" : ": " + last_error_));
  const uint64_t rid = next_request_id_++;
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::GET_LAST_MESSAGE_ID);
  cmd.mutable_getlastmessageid()->set_consumer_id(consumer_id_);
  cmd.mutable_getlastmessageid()->set_request_id(rid);
  auto resp = Request(*link_, true, cmd, rid, Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0)),
                      "get last message id");
  if (!resp.ok()) {
    if (resp.status().code() != StatusCode::kDeadlineExceeded) drop_ = resp.status().message();
    return resp.status();
  }
  if (resp->type() == pb::BaseCommand::ERROR) {
    return ServerStatus(resp->error().error(), resp->error().message(), Where() + ": get last message id");
  }
  const auto& id = resp->getlastmessageidresponse().last_message_id();
  const int64_t ledger = static_cast<int64_t>(id.ledgerid());
  const int64_t entry = static_cast<int64_t>(id.entryid());
  if (ledger < 0) return std::max<int64_t>(next_offset(), 0);  // no ledger yet: nothing written
  if (entry < 0) {
    // An empty current ledger: the next message gets (ledger, 0); never below what we read.
    ASSIGN_OR_RETURN(int64_t first, PackPulsarId({ledger, 0, 0, 0}));
    return std::max(first, next_offset());
  }
  ASSIGN_OR_RETURN(int64_t last, PackPulsarId({ledger, entry, std::max(id.batch_index(), 0), 0}));
  return last + 1;
}

int64_t PulsarChannelReader::Impl::next_offset() const {
  if (!pending_.empty()) return pending_.front().offset;
  if (resume_) return resume_->offset;
  return start_.kind == StartAt::Kind::kOffset ? start_.offset : -1;
}

// ---- PulsarChannelReader -------------------------------------------------------------------

StatusOr<std::unique_ptr<PulsarChannelReader>> PulsarChannelReader::Open(const PulsarReaderConfig& config,
                                                                         const std::string& channel,
                                                                         StartAt start) {
  if (channel.empty() || channel.find('/') != std::string::npos) {
    return InvalidArgument("Pulsar channel '" + channel + "' must be a plain topic name");
  }
  if (config.tenant.empty() || config.ns.empty()) return InvalidArgument("Pulsar tenant and namespace must be set");
  if (start.kind == StartAt::Kind::kOffset && start.offset < 0) {
    return InvalidArgument("Pulsar start offset " + std::to_string(start.offset) + " is negative");
  }
  if (config.operation_timeout.count() <= 0 || config.keepalive.count() <= 0 || config.backoff_max.count() <= 0) {
    return InvalidArgument("Pulsar operation_timeout, keepalive and backoff_max must be positive");
  }
  ASSIGN_OR_RETURN(std::vector<Endpoint> service, pulsar::ParseServiceUrl(config.service_url));
  {
    auto auth = pulsar::ResolveAuth(config.auth_plugin, config.auth_params);
    if (!auth.ok()) return auth.status();
  }
  auto impl = std::make_unique<Impl>(config, channel, start, std::move(service));
  Status st = impl->Establish();
  if (!st.ok()) return st;
  if (start.kind == StartAt::Kind::kLatest) impl->ResolveLatestResume();
  return std::unique_ptr<PulsarChannelReader>(new PulsarChannelReader(std::move(impl)));
}

PulsarChannelReader::PulsarChannelReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PulsarChannelReader::~PulsarChannelReader() { Close(); }

StatusOr<std::optional<RawMessage>> PulsarChannelReader::Poll(int timeout_ms) { return impl_->Poll(timeout_ms); }
StatusOr<int64_t> PulsarChannelReader::HighWatermark(int timeout_ms) { return impl_->HighWatermark(timeout_ms); }
int64_t PulsarChannelReader::next_offset() const { return impl_->next_offset(); }
std::string PulsarChannelReader::last_error() const { return impl_->last_error(); }
std::chrono::milliseconds PulsarChannelReader::SinceLastContact() const { return impl_->SinceLastContact(); }
void PulsarChannelReader::Close() { impl_->Close(); }

}  // namespace cdc::source

#include "source/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>

#include "etcd/rpc.grpc.pb.h"
#include "util/log.h"

namespace cdc::source {

namespace {

namespace pb = etcdserverpb;
using Clock = std::chrono::system_clock;  // gRPC deadlines are system_clock time points
using std::chrono::milliseconds;

constexpr int kMaxAttempts = 5;  // per unary call, while the endpoint is unavailable
constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxConnectBackoff{1000};
constexpr milliseconds kMaxWatchBackoff{5000};
// A retry's wait for a (re)connection; above gRPC's reconnect backoff cap (2 s, set in Connect).
constexpr milliseconds kRetryWait{2000};
constexpr milliseconds kReconnectWait{2000};
constexpr auto kWatchWarnInterval = std::chrono::seconds(30);
// etcd refuses pings more frequent than --grpc-keepalive-min-time (5 s) and pings on idle
// connections, so ping only while a call (a watch) is open, every 10 s.
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 5'000;
constexpr size_t kMaxKeyInMessage = 200;

// "host:port" from a configured endpoint ("http://host:port/" is accepted).
std::string EndpointAddress(std::string ep) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (ep.rfind(scheme, 0) == 0) ep = ep.substr(scheme.size());
  }
  while (!ep.empty() && ep.back() == '/') ep.pop_back();
  return ep;
}

// A key as it appears in messages: quoted, non-printable bytes escaped, long keys cut.
std::string Quote(std::string_view key) {
  std::string out = "'";
  for (size_t i = 0; i < key.size() && i < kMaxKeyInMessage; ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (key.size() > kMaxKeyInMessage) out += "...";
  return out + "'";
}

const char* GrpcCauseName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
    case grpc::StatusCode::PERMISSION_DENIED: return "permission denied";
    case grpc::StatusCode::UNIMPLEMENTED: return "not implemented by the server";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource exhausted";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid argument";
    case grpc::StatusCode::NOT_FOUND: return "not found";
    case grpc::StatusCode::FAILED_PRECONDITION: return "failed precondition";
    case grpc::StatusCode::OUT_OF_RANGE: return "out of range";
    case grpc::StatusCode::INTERNAL: return "internal error";
    default: return "error";
  }
}

StatusCode CodeForGrpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::ABORTED: return StatusCode::kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return StatusCode::kDeadlineExceeded;
    case grpc::StatusCode::INVALID_ARGUMENT: return StatusCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND: return StatusCode::kNotFound;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: return StatusCode::kFailedPrecondition;  // e.g. compacted
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return StatusCode::kResourceExhausted;
    case grpc::StatusCode::UNIMPLEMENTED: return StatusCode::kUnimplemented;
    default: return StatusCode::kInternal;
  }
}

bool Contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// etcd's answers for a token it no longer knows (simple tokens expire, and die with a restart).
bool IsInvalidToken(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::UNAUTHENTICATED || Contains(st.error_message(), "invalid auth token") ||
         Contains(st.error_message(), "auth store is old");
}

bool IsTransient(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::UNAVAILABLE || st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

std::string Redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t pos; (pos = text.find(secret)) != std::string::npos;) text.replace(pos, secret.size(), "<redacted>");
  return text;
}

StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(std::string("bad etcd TLS config: cannot read ") + what + " '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().empty()) {
    return InvalidArgument(std::string("bad etcd TLS config: ") + what + " '" + path + "' is empty");
  }
  return buf.str();
}

EtcdKv ToKv(const mvccpb::KeyValue& kv) {
  EtcdKv out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

void SetRangeOfPrefix(const std::string& prefix, std::string* key, std::string* range_end) {
  *key = prefix.empty() ? std::string(1, '\0') : prefix;
  *range_end = PrefixRangeEnd(prefix);
}

}  // namespace

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

EtcdOptions EtcdOptions::FromConfig(const EtcdConfig& config) {
  EtcdOptions o;
  o.endpoints = config.endpoints;
  if (config.enable_auth) {
    o.username = config.username;
    o.password = config.password;
  }
  o.enable_tls = config.enable_tls;
  o.tls_cert_path = config.tls_cert_path;
  o.tls_key_path = config.tls_key_path;
  o.tls_ca_cert_path = config.tls_ca_cert_path;
  return o;
}

// ---- Connection state ---------------------------------------------------------------------------

// Shared by the client and its watches. `endpoints` and `options` are immutable after Connect;
// mu guards the endpoint in use and the auth token.
struct EtcdClient::Conn {
  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Maintenance::Stub> maintenance;
    std::unique_ptr<pb::Auth::Stub> auth;
  };
  struct Snapshot {
    const Endpoint* ep;
    size_t index;
    std::string token;
  };

  EtcdOptions options;  // keeps the password for re-authentication; never logged
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  std::shared_ptr<spdlog::logger> log = GetLogger("etcd");

  mutable std::mutex mu;
  size_t current = 0;
  std::string token;

  Snapshot Current() const {
    std::lock_guard<std::mutex> lock(mu);
    return Snapshot{endpoints[current].get(), current, token};
  }

  // Moves to the next endpoint unless another thread already moved away from `from`.
  void FailOver(size_t from) {
    if (endpoints.size() < 2) return;
    std::lock_guard<std::mutex> lock(mu);
    if (current != from) return;
    current = (current + 1) % endpoints.size();
    log->warn("etcd endpoint {} unavailable; switching to {}", endpoints[from]->address,
              endpoints[current]->address);
  }

  void Prepare(grpc::ClientContext* ctx, const std::string& tok, Clock::time_point deadline) const {
    if (!tok.empty()) ctx->AddMetadata("token", tok);
    ctx->set_deadline(deadline);
  }

  std::string Cause(const grpc::Status& st) const {
    std::string cause = GrpcCauseName(st.error_code());
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return "deadline exceeded (call timeout " + std::to_string(options.call_timeout_s) + "s)";
    }
    if (!st.error_message().empty()) {
      cause += ": " + Redact(Redact(st.error_message(), options.password), CurrentToken());
    }
    return cause;
  }

  std::string CurrentToken() const {
    std::lock_guard<std::mutex> lock(mu);
    return token;
  }

  Status Convert(const grpc::Status& st, std::string_view op, const std::string& subject,
                 const std::string& address) const {
    std::string msg = "etcd " + std::string(op);
    if (!subject.empty()) msg += " " + subject;
    msg += " on " + address + ": " + Cause(st);
    if (Contains(st.error_message(), "user name is empty")) {
      msg += " (etcd requires authentication: set username/password)";
    }
    return Status(CodeForGrpc(st.error_code()), std::move(msg));
  }

  // One Authenticate RPC; fills *tok. A server without auth enabled gives an empty token.
  grpc::Status AuthenticateRpc(const Endpoint& ep, Clock::time_point deadline, std::string* tok) const {
    pb::AuthenticateRequest req;
    req.set_name(options.username);
    req.set_password(options.password);
    pb::AuthenticateResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status st = ep.auth->Authenticate(&ctx, req, &resp);
    if (st.ok()) {
      *tok = resp.token();
    } else if (Contains(st.error_message(), "authentication is not enabled")) {
      log->warn("etcd at {} has authentication disabled; ignoring the configured user '{}'", ep.address,
                options.username);
      tok->clear();
      return grpc::Status::OK;
    }
    return st;
  }

  Status AuthError(const grpc::Status& st, const Endpoint& ep) const {
    return Status(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? StatusCode::kInvalidArgument
                                                                         : CodeForGrpc(st.error_code()),
                  "etcd authentication on " + ep.address + " failed for user " + Quote(options.username) + ": " +
                      Cause(st));
  }

  Status Reauthenticate(const Endpoint& ep, Clock::time_point deadline) {
    std::string tok;
    grpc::Status st = AuthenticateRpc(ep, deadline, &tok);
    if (!st.ok()) return AuthError(st, ep);
    std::lock_guard<std::mutex> lock(mu);
    token = std::move(tok);
    log->info("re-authenticated to etcd at {} as {}", ep.address, Quote(options.username));
    return Status::Ok();
  }

  // Runs `fn(endpoint, ctx)` (a unary RPC) with a deadline of call_timeout_s for the whole call.
  // UNAVAILABLE is retried with backoff, on the next endpoint if there is one; retries wait (up
  // to kRetryWait each) for the channel to reconnect, which rides out an etcd restart. An
  // invalid token is renewed once.
  template <typename Fn>
  Status Call(std::string_view op, const std::string& subject, Fn&& fn) {
    const auto deadline = Clock::now() + std::chrono::seconds(options.call_timeout_s);
    auto backoff = kFirstBackoff;
    bool reauthenticated = false;
    for (int attempt = 1;; ++attempt) {
      Snapshot s = Current();
      grpc::ClientContext ctx;
      Prepare(&ctx, s.token, attempt == 1 ? deadline : std::min(deadline, Clock::now() + kRetryWait));
      if (attempt > 1) ctx.set_wait_for_ready(true);
      grpc::Status st = fn(*s.ep, &ctx);
      if (st.ok()) return Status::Ok();
      if (!options.username.empty() && !reauthenticated && IsInvalidToken(st)) {
        reauthenticated = true;
        RETURN_IF_ERROR(Reauthenticate(*s.ep, deadline).WithContext("etcd " + std::string(op) + " " + subject));
        continue;
      }
      const bool no_connection = attempt > 1 && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      if ((st.error_code() == grpc::StatusCode::UNAVAILABLE || no_connection) && attempt < kMaxAttempts &&
          Clock::now() + backoff < deadline) {
        FailOver(s.index);
        std::this_thread::sleep_for(backoff);
        backoff *= 2;
        continue;
      }
      if (no_connection) {
        st = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "no usable connection after " + std::to_string(attempt) + " attempts within " +
                              std::to_string(options.call_timeout_s) + "s");
      }
      return Convert(st, op, subject, s.ep->address);
    }
  }
};

// ---- Connect ------------------------------------------------------------------------------------

EtcdClient::EtcdClient(std::shared_ptr<Conn> conn) : conn_(std::move(conn)) {}
EtcdClient::~EtcdClient() = default;

StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Connect(const EtcdOptions& options) {
  auto conn = std::make_shared<Conn>();
  conn->options = options;
  EtcdOptions& o = conn->options;
  if (o.dial_timeout_s <= 0) o.dial_timeout_s = 5;
  if (o.call_timeout_s <= 0) o.call_timeout_s = 10;
  if (o.range_page_size <= 0) o.range_page_size = 1000;
  if (o.endpoints.empty()) return InvalidArgument("etcd: no endpoints configured");
  if (o.username.empty() && !o.password.empty()) return InvalidArgument("etcd: a password is set but no username");

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.enable_tls) {
    grpc::SslCredentialsOptions ssl;
    if (!o.tls_ca_cert_path.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(o.tls_ca_cert_path, "tlsCACertPath"));
    }
    if (o.tls_cert_path.empty() != o.tls_key_path.empty()) {
      return InvalidArgument("bad etcd TLS config: tlsCertPath and tlsKeyPath must be set together");
    }
    if (!o.tls_cert_path.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(o.tls_cert_path, "tlsCertPath"));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(o.tls_key_path, "tlsKeyPath"));
    }
    creds = grpc::SslCredentials(ssl);
    if (!creds) return InvalidArgument("bad etcd TLS config: gRPC rejected the TLS credentials");
  } else {
    creds = grpc::InsecureChannelCredentials();
  }

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // an idle watch is still a live call
  // Come back quickly after an etcd restart (gRPC's default backoff grows to two minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // After a refused connection gRPC 1.51 may wait for a re-resolution, which is rate-limited to
  // one per 30 s by default: seen as a channel staying down for seconds after etcd came back.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 200);
  for (const auto& configured : o.endpoints) {
    auto ep = std::make_unique<Conn::Endpoint>();
    ep->address = EndpointAddress(configured);
    if (ep->address.empty()) return InvalidArgument("etcd: empty endpoint in the endpoint list");
    ep->channel = grpc::CreateCustomChannel(ep->address, creds, args);
    if (!ep->channel) return Internal("etcd: cannot create a gRPC channel to " + ep->address);
    ep->kv = pb::KV::NewStub(ep->channel);
    ep->watch = pb::Watch::NewStub(ep->channel);
    ep->lease = pb::Lease::NewStub(ep->channel);
    ep->maintenance = pb::Maintenance::NewStub(ep->channel);
    ep->auth = pb::Auth::NewStub(ep->channel);
    conn->endpoints.push_back(std::move(ep));
  }

  // Try the endpoints in order, in rounds, until one answers or the budget is spent. Each try
  // gets a share of the budget so that one silent endpoint cannot use it all.
  const auto budget = std::chrono::seconds(o.dial_timeout_s);
  const auto deadline = Clock::now() + budget;
  const auto share = std::max<Clock::duration>(std::chrono::seconds(1), budget / conn->endpoints.size());
  auto backoff = kFirstBackoff;
  std::string last_cause = "no attempt finished";
  std::string last_address = conn->endpoints.front()->address;
  while (true) {
    for (size_t i = 0; i < conn->endpoints.size() && Clock::now() < deadline; ++i) {
      const Conn::Endpoint& ep = *conn->endpoints[i];
      const auto try_deadline = std::min(deadline, Clock::now() + share);
      grpc::Status st;
      if (!o.username.empty()) {
        std::string tok;
        st = conn->AuthenticateRpc(ep, try_deadline, &tok);
        if (st.ok()) conn->token = std::move(tok);
        if (!st.ok() && !IsTransient(st)) return conn->AuthError(st, ep).WithContext("cannot connect to etcd");
      } else {
        pb::StatusResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(try_deadline);
        st = ep.maintenance->Status(&ctx, pb::StatusRequest(), &resp);
        if (!st.ok() && !IsTransient(st)) {
          return conn->Convert(st, "Status", "", ep.address).WithContext("cannot connect to etcd");
        }
      }
      if (st.ok()) {
        conn->current = i;
        conn->log->info("connected to etcd at {}{}", ep.address,
                        o.username.empty() ? "" : " as " + Quote(o.username));
        return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(conn)));
      }
      last_cause = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? "no answer" : conn->Cause(st);
      last_address = ep.address;
    }
    if (Clock::now() + backoff >= deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxConnectBackoff);
  }
  std::string all;
  for (const auto& ep : conn->endpoints) all += (all.empty() ? "" : ", ") + ep->address;
  return Unavailable("cannot connect to etcd at " + all + " within " + std::to_string(o.dial_timeout_s) +
                     "s (last error from " + last_address + ": " + last_cause + ")");
}

std::string EtcdClient::endpoint() const { return conn_->Current().ep->address; }

// ---- KV -----------------------------------------------------------------------------------------

StatusOr<std::optional<EtcdKv>> EtcdClient::Get(const std::string& key) {
  pb::RangeRequest req;
  req.set_key(key);
  pb::RangeResponse resp;
  RETURN_IF_ERROR(conn_->Call("Get", Quote(key), [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Range(ctx, req, &resp);
  }));
  if (resp.kvs_size() == 0) return std::optional<EtcdKv>();
  return std::optional<EtcdKv>(ToKv(resp.kvs(0)));
}

StatusOr<std::vector<EtcdKv>> EtcdClient::GetPrefix(const std::string& prefix, int64_t* revision) {
  for (int round = 1;; ++round) {
    std::vector<EtcdKv> out;
    int64_t rev = 0;
    pb::RangeRequest req;
    SetRangeOfPrefix(prefix, req.mutable_key(), req.mutable_range_end());
    req.set_limit(conn_->options.range_page_size);
    grpc::StatusCode last_code = grpc::StatusCode::OK;
    Status st;
    while (true) {
      req.set_revision(rev);  // 0 for the first page: the newest revision
      pb::RangeResponse resp;
      st = conn_->Call("GetPrefix", Quote(prefix), [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
        resp.Clear();
        grpc::Status s = ep.kv->Range(ctx, req, &resp);
        last_code = s.error_code();
        return s;
      });
      if (!st.ok()) break;
      if (rev == 0) rev = resp.header().revision();
      for (const auto& kv : resp.kvs()) out.push_back(ToKv(kv));
      if (!resp.more() || resp.kvs_size() == 0) break;
      req.set_key(resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0'));
    }
    if (st.ok()) {
      if (revision) *revision = rev;
      return out;
    }
    // The snapshot revision was compacted between two pages: start over at the newest revision.
    if (round == 1 && rev != 0 && last_code == grpc::StatusCode::OUT_OF_RANGE) {
      conn_->log->info("etcd revision {} compacted while reading prefix {}; reading again", rev, Quote(prefix));
      continue;
    }
    return st;
  }
}

Status EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  pb::PutResponse resp;
  return conn_->Call("Put", Quote(key), [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->Put(ctx, req, &resp);
  });
}

Status EtcdClient::Delete(const std::string& key) {
  pb::DeleteRangeRequest req;
  req.set_key(key);
  pb::DeleteRangeResponse resp;
  return conn_->Call("Delete", Quote(key), [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->DeleteRange(ctx, req, &resp);
  });
}

Status EtcdClient::DeletePrefix(const std::string& prefix) {
  if (prefix.empty()) return InvalidArgument("etcd DeletePrefix: refusing to delete every key (empty prefix)");
  pb::DeleteRangeRequest req;
  SetRangeOfPrefix(prefix, req.mutable_key(), req.mutable_range_end());
  pb::DeleteRangeResponse resp;
  return conn_->Call("DeletePrefix", Quote(prefix), [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->DeleteRange(ctx, req, &resp);
  });
}

Status EtcdClient::Txn(const std::vector<EtcdOp>& ops, std::vector<int64_t>* deleted) {
  if (deleted) deleted->clear();
  if (ops.empty()) return Status::Ok();
  pb::TxnRequest req;
  for (const auto& op : ops) {
    pb::RequestOp* r = req.add_success();
    switch (op.type) {
      case EtcdOp::Type::kPut: {
        pb::PutRequest* put = r->mutable_request_put();
        put->set_key(op.key);
        put->set_value(op.value);
        break;
      }
      case EtcdOp::Type::kDelete: r->mutable_request_delete_range()->set_key(op.key); break;
      case EtcdOp::Type::kDeletePrefix: {
        if (op.key.empty()) return InvalidArgument("etcd Txn: refusing to delete every key (empty prefix)");
        pb::DeleteRangeRequest* del = r->mutable_request_delete_range();
        SetRangeOfPrefix(op.key, del->mutable_key(), del->mutable_range_end());
        break;
      }
    }
  }
  pb::TxnResponse resp;
  std::string subject = "of " + std::to_string(ops.size()) + " ops (first key " + Quote(ops.front().key) + ")";
  RETURN_IF_ERROR(conn_->Call("Txn", subject, [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Txn(ctx, req, &resp);
  }));
  if (!resp.succeeded()) return Internal("etcd Txn " + subject + ": not applied although it has no conditions");
  if (deleted) {
    for (const auto& r : resp.responses()) {
      deleted->push_back(r.has_response_delete_range() ? r.response_delete_range().deleted() : 0);
    }
  }
  return Status::Ok();
}

StatusOr<int64_t> EtcdClient::CurrentRevision(const std::string& prefix) {
  pb::RangeRequest req;
  SetRangeOfPrefix(prefix, req.mutable_key(), req.mutable_range_end());
  req.set_count_only(true);
  pb::RangeResponse resp;
  RETURN_IF_ERROR(conn_->Call("Range", Quote(prefix), [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Range(ctx, req, &resp);
  }));
  return resp.header().revision();
}

// ---- Lease --------------------------------------------------------------------------------------

StatusOr<int64_t> EtcdClient::GrantLease(int64_t ttl_s) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_s);
  pb::LeaseGrantResponse resp;
  const std::string subject = "ttl " + std::to_string(ttl_s) + "s";
  RETURN_IF_ERROR(conn_->Call("LeaseGrant", subject, [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.lease->LeaseGrant(ctx, req, &resp);
  }));
  if (!resp.error().empty()) return Internal("etcd LeaseGrant " + subject + ": " + resp.error());
  return resp.id();
}

Status EtcdClient::RevokeLease(int64_t id) {
  pb::LeaseRevokeRequest req;
  req.set_id(id);
  pb::LeaseRevokeResponse resp;
  return conn_->Call("LeaseRevoke", "lease " + std::to_string(id),
                     [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
                       return ep.lease->LeaseRevoke(ctx, req, &resp);
                     });
}

Status EtcdClient::KeepAliveOnce(int64_t id) {
  pb::LeaseKeepAliveRequest req;
  req.set_id(id);
  pb::LeaseKeepAliveResponse resp;
  const std::string subject = "lease " + std::to_string(id);
  RETURN_IF_ERROR(conn_->Call("LeaseKeepAlive", subject, [&](const Conn::Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    auto stream = ep.lease->LeaseKeepAlive(ctx);
    if (stream->Write(req) && stream->Read(&resp)) {
      stream->WritesDone();
      grpc::Status st = stream->Finish();
      // The answer arrived; a close error after it does not matter.
      return st.ok() || st.error_code() == grpc::StatusCode::CANCELLED ? grpc::Status::OK : st;
    }
    grpc::Status st = stream->Finish();
    return st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed without an answer") : st;
  }));
  if (resp.ttl() <= 0) return NotFound("etcd LeaseKeepAlive " + subject + ": the lease has expired or was revoked");
  return Status::Ok();
}

// ---- Watch --------------------------------------------------------------------------------------

namespace {

using EventsFn = std::function<void(const std::vector<EtcdEvent>&, int64_t)>;
using ErrorFn = std::function<void(const Status&)>;

// One watch: a thread that keeps one Watch stream open, reconnecting as needed. next_rev_,
// in_outage_, backoff_, reauth_tried_ and last_warn_ belong to the thread; mu_ guards stopping_ and ctx_ (the open
// stream's context, cancelled by Stop).
class WatchImpl : public EtcdClient::Watch {
 public:
  WatchImpl(std::shared_ptr<EtcdClient::Conn> conn, std::string prefix, int64_t start_revision, EventsFn on_events,
            ErrorFn on_error)
      : conn_(std::move(conn)),
        prefix_(std::move(prefix)),
        next_rev_(start_revision),
        on_events_(std::move(on_events)),
        on_error_(std::move(on_error)) {}

  ~WatchImpl() override { Stop(); }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (ctx_) ctx_->TryCancel();
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  enum class Outcome { kStopped, kEnded, kBroken, kDenied };

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void ReportError(const Status& st) {
    if (on_error_) on_error_(st);
  }

  std::string What() const { return "etcd watch of prefix " + Quote(prefix_); }

  void Run() {
    while (!Stopping()) {
      EtcdClient::Conn::Snapshot snap = conn_->Current();
      grpc::Status st;
      Outcome outcome = RunStream(snap, &st);
      if (outcome == Outcome::kStopped || outcome == Outcome::kEnded) return;
      const bool with_auth = !conn_->options.username.empty();
      auto auth_deadline = [this] { return Clock::now() + std::chrono::seconds(conn_->options.call_timeout_s); };
      if (outcome == Outcome::kDenied) {
        // With auth on, etcd answers an expired or unknown token (e.g. after an etcd restart) by
        // cancelling the watch as "permission denied": renew the token once before giving up.
        if (!with_auth || reauth_tried_) {
          ReportError(FailedPrecondition(What() + " on " + snap.ep->address + ": cancelled by etcd: " +
                                         st.error_message()));
          return;
        }
        reauth_tried_ = true;
        if (conn_->Reauthenticate(*snap.ep, auth_deadline()).ok()) continue;
      } else {
        if (with_auth && IsInvalidToken(st)) (void)conn_->Reauthenticate(*snap.ep, auth_deadline());
        if (st.error_code() == grpc::StatusCode::UNAVAILABLE) conn_->FailOver(snap.index);
      }
      const auto now = std::chrono::steady_clock::now();
      const std::string cause = conn_->Cause(st);
      if (!in_outage_) {
        in_outage_ = true;
        last_warn_ = now;
        conn_->log->warn("{} on {} broken ({}); reconnecting from revision {}", What(), snap.ep->address, cause,
                         next_rev_);
        ReportError(Unavailable(What() + " on " + snap.ep->address + ": stream broken (" + cause +
                                "); retrying from revision " + std::to_string(next_rev_)));
      } else if (now - last_warn_ >= kWatchWarnInterval) {
        last_warn_ = now;
        conn_->log->warn("{} on {} still down ({}); retrying", What(), snap.ep->address, cause);
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, backoff_, [this] { return stopping_; });
      backoff_ = std::min(backoff_ * 2, kMaxWatchBackoff);
    }
  }

  // Opens one stream from next_rev_ and reads it until it breaks, the watch ends or Stop.
  Outcome RunStream(const EtcdClient::Conn::Snapshot& snap, grpc::Status* status) {
    grpc::ClientContext ctx;
    if (!snap.token.empty()) ctx.AddMetadata("token", snap.token);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return Outcome::kStopped;
      ctx_ = &ctx;
    }
    Outcome outcome = ReadStream(snap, &ctx, status);
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = nullptr;
    if (stopping_) return Outcome::kStopped;
    return outcome;
  }

  // Waits, in short slices so Stop stays prompt, for the channel to (re)connect: a stream opened
  // on a channel in reconnect backoff would fail at once.
  bool WaitConnected(grpc::Channel* channel) {
    const auto until = Clock::now() + kReconnectWait;
    while (!Stopping()) {
      auto slice = std::min(until, Clock::now() + milliseconds(200));
      if (channel->WaitForConnected(slice)) return true;
      if (Clock::now() >= until) return false;
    }
    return false;
  }

  Outcome ReadStream(const EtcdClient::Conn::Snapshot& snap, grpc::ClientContext* ctx, grpc::Status* status) {
    if (!WaitConnected(snap.ep->channel.get())) {
      *status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "no connection");
      return Outcome::kBroken;
    }
    auto stream = snap.ep->watch->Watch(ctx);
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    SetRangeOfPrefix(prefix_, create->mutable_key(), create->mutable_range_end());
    create->set_start_revision(next_rev_);
    create->set_prev_kv(true);
    create->set_progress_notify(true);
    Outcome outcome = Outcome::kBroken;
    bool open = stream->Write(req);
    pb::WatchResponse resp;
    while (open && stream->Read(&resp)) {
      if (resp.compact_revision() != 0) {
        ReportError(FailedPrecondition(What() + " on " + snap.ep->address + ": revision " +
                                       std::to_string(next_rev_) + " was compacted (etcd compacted up to " +
                                       std::to_string(resp.compact_revision()) +
                                       "); the watch cannot resume without losing events"));
        outcome = Outcome::kEnded;
        break;
      }
      if (resp.canceled()) {
        *status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                               resp.cancel_reason().empty() ? "no reason given" : resp.cancel_reason());
        outcome = Outcome::kDenied;
        break;
      }
      if (resp.created()) {
        reauth_tried_ = false;
        if (in_outage_) conn_->log->info("{} resumed on {} from revision {}", What(), snap.ep->address, next_rev_);
        in_outage_ = false;
        backoff_ = kFirstBackoff;
      }
      if (resp.events_size() == 0) {
        // A progress notification: every event up to header.revision was sent. Resume from that
        // revision, not past it: etcd 3.4 may send the notification just before the events of
        // its own revision (etcd issue 15220), and a resume at it repeats nothing we delivered.
        if (!resp.created() && resp.header().revision() > next_rev_) next_rev_ = resp.header().revision();
        continue;
      }
      std::vector<EtcdEvent> events;
      events.reserve(resp.events_size());
      for (const auto& e : resp.events()) {
        EtcdEvent ev;
        ev.type = e.type() == mvccpb::Event::DELETE ? EtcdEvent::Type::kDelete : EtcdEvent::Type::kPut;
        ev.kv = ToKv(e.kv());
        if (e.has_prev_kv()) ev.prev_kv = ToKv(e.prev_kv());
        events.push_back(std::move(ev));
      }
      next_rev_ = events.back().kv.mod_revision + 1;
      on_events_(events, resp.header().revision());
      if (Stopping()) break;
    }
    if (open && outcome == Outcome::kBroken && !Stopping()) {
      *status = stream->Finish();  // Read returned false: the stream is over
      if (status->ok()) *status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcd closed the watch stream");
      return outcome;
    }
    ctx->TryCancel();
    grpc::Status fin = stream->Finish();
    if (!open) *status = fin;
    return outcome;
  }

  const std::shared_ptr<EtcdClient::Conn> conn_;
  const std::string prefix_;
  int64_t next_rev_;
  bool in_outage_ = false;
  bool reauth_tried_ = false;  // since the last stream that etcd accepted
  milliseconds backoff_ = kFirstBackoff;
  std::chrono::steady_clock::time_point last_warn_;
  const EventsFn on_events_;
  const ErrorFn on_error_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  grpc::ClientContext* ctx_ = nullptr;
  std::thread thread_;
};

}  // namespace

StatusOr<std::unique_ptr<EtcdClient::Watch>> EtcdClient::WatchPrefix(const std::string& prefix, int64_t start_revision,
                                                                     EventsFn on_events, ErrorFn on_error) {
  if (!on_events) return InvalidArgument("etcd watch of prefix " + Quote(prefix) + ": no event callback");
  int64_t start = start_revision;
  if (start <= 0) {
    // "From now" is pinned to the revision at this call, so changes made right after it returns
    // are never missed, whatever the watch thread's start-up delay.
    ASSIGN_OR_RETURN(int64_t now, CurrentRevision(prefix));
    start = now + 1;
  }
  auto watch = std::make_unique<WatchImpl>(conn_, prefix, start, std::move(on_events), std::move(on_error));
  watch->Start();
  return std::unique_ptr<Watch>(std::move(watch));
}

}  // namespace cdc::source

#include "target/milvus_client.h"

#include <unistd.h>

#include <ctime>

namespace cdc::target {

namespace {

namespace common = milvus::proto::common;
namespace mpb = milvus::proto::milvus;

constexpr int kDefaultConnectTimeoutS = 5;
constexpr int kDefaultCallTimeoutS = 30;
// Milvus servers enforce a minimum ping interval of 5 s; stay well above it.
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 20'000;

int ConnectTimeoutS(const ConnectParams& p) {
  return p.connect_timeout_s > 0 ? p.connect_timeout_s : kDefaultConnectTimeoutS;
}
int CallTimeoutS(const ConnectParams& p) {
  return p.call_timeout_s > 0 ? p.call_timeout_s : kDefaultCallTimeoutS;
}

std::string LocalTimeString() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
  return std::string(buf, n);
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

StatusCode CodeForGrpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::DEADLINE_EXCEEDED: return StatusCode::kDeadlineExceeded;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::ABORTED: return StatusCode::kUnavailable;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE: return StatusCode::kInvalidArgument;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::FAILED_PRECONDITION: return StatusCode::kFailedPrecondition;
    case grpc::StatusCode::NOT_FOUND: return StatusCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return StatusCode::kAlreadyExists;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return StatusCode::kResourceExhausted;
    case grpc::StatusCode::UNIMPLEMENTED: return StatusCode::kUnimplemented;
    default: return StatusCode::kInternal;
  }
}

const char* GrpcCauseName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::UNAUTHENTICATED: return "authentication failed";
    case grpc::StatusCode::PERMISSION_DENIED: return "permission denied";
    case grpc::StatusCode::UNIMPLEMENTED: return "not implemented by the server";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource exhausted";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid argument";
    case grpc::StatusCode::NOT_FOUND: return "not found";
    case grpc::StatusCode::ALREADY_EXISTS: return "already exists";
    case grpc::StatusCode::FAILED_PRECONDITION: return "failed precondition";
    case grpc::StatusCode::ABORTED: return "aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "out of range";
    case grpc::StatusCode::INTERNAL: return "internal error";
    case grpc::StatusCode::DATA_LOSS: return "data loss";
    default: return "error";
  }
}

// The deprecated `error_code` is still what 2.3 servers fill, so we must read it; keep the
// deprecation warning (an error under CDC_WERROR) confined to this one accessor.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
common::ErrorCode LegacyErrorCode(const common::Status& st) { return st.error_code(); }
#pragma GCC diagnostic pop

// Legacy error codes that mean "try again later" or "no such thing"; everything else that is
// not Success becomes kInternal unless the server marked it retriable.
StatusCode CodeForCommon(const common::Status& st) {
  if (st.retriable()) return StatusCode::kUnavailable;
  // New-style codes (pkg/util/merr) seen from a 2.3 server: 100 collection not found,
  // 800 database not found. Both arrive with legacy error_code UnexpectedError.
  if (st.code() == 100 || st.code() == 800) return StatusCode::kNotFound;
  switch (LegacyErrorCode(st)) {
    case common::RateLimit:
    case common::NotReadyServe:
    case common::NotReadyCoordActivating:
    case common::DataCoordNA:
    case common::ConnectFailed: return StatusCode::kUnavailable;
    case common::PermissionDenied: return StatusCode::kFailedPrecondition;
    case common::CollectionNotExists:
    case common::CollectionNameNotFound:
    case common::IndexNotExist: return StatusCode::kNotFound;
    case common::IllegalArgument:
    case common::IllegalDimension:
    case common::IllegalIndexType:
    case common::IllegalCollectionName:
    case common::IllegalMetricType:
    case common::SchemaMismatch: return StatusCode::kInvalidArgument;
    case common::MemoryQuotaExhausted:
    case common::DiskQuotaExhausted:
    case common::ForceDeny: return StatusCode::kResourceExhausted;
    default: return StatusCode::kInternal;
  }
}

}  // namespace

MilvusClient::MilvusClient(ConnectParams params, std::string endpoint,
                           std::shared_ptr<grpc::Channel> channel)
    : params_(std::move(params)),
      endpoint_(std::move(endpoint)),
      authorization_(params_.token.empty() ? std::string() : Base64Encode(params_.token)),
      channel_(std::move(channel)),
      stub_(mpb::MilvusService::NewStub(channel_)) {}

StatusOr<std::unique_ptr<MilvusClient>> MilvusClient::Connect(const ConnectParams& params) {
  ASSIGN_OR_RETURN(TargetUri uri, ParseTargetUri(params.uri));
  if (!IsValidMetadataValue(params.db_name)) {
    return InvalidArgument("bad db_name: must be printable ASCII");
  }
  ASSIGN_OR_RETURN(TlsMaterial tls, LoadTlsMaterial(params, uri.tls));

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Our own subchannel pool: a client never shares a broken connection with another task's.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetUserAgentPrefix(std::string("milvus-cdc/") + CDC_TARGET_CLIENT_VERSION);

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls.enabled) {
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = tls.root_pem;
    opts.pem_cert_chain = tls.cert_chain_pem;
    opts.pem_private_key = tls.private_key_pem;
    creds = grpc::SslCredentials(opts);
    if (!creds) return InvalidArgument("bad TLS config: gRPC rejected the TLS credentials");
    if (!tls.target_name_override.empty()) args.SetSslTargetNameOverride(tls.target_name_override);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }

  std::string endpoint = uri.Authority();
  auto channel = grpc::CreateCustomChannel(endpoint, creds, args);
  if (!channel) return Internal("cannot create a gRPC channel to " + endpoint);

  const int timeout_s = ConnectTimeoutS(params);
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(timeout_s);
  std::unique_ptr<MilvusClient> client(new MilvusClient(params, endpoint, std::move(channel)));
  RETURN_IF_ERROR(client->Handshake(deadline, timeout_s));
  return client;
}

Status MilvusClient::Handshake(std::chrono::system_clock::time_point deadline, int timeout_s) {
  auto fail = [&](const grpc::Status& st) -> Status {
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return DeadlineExceeded("deadline exceeded after " + std::to_string(timeout_s) + "s connecting to " +
                              endpoint_);
    }
    std::string cause = GrpcCauseName(st.error_code());
    if (!st.error_message().empty()) cause += ": " + RedactSecrets(st.error_message(), params_.token);
    return Status(CodeForGrpc(st.error_code()), "cannot connect to Milvus at " + endpoint_ + ": " + cause);
  };
  auto prepare = [&](grpc::ClientContext* ctx) {
    PrepareContext(ctx);
    ctx->set_deadline(deadline);  // one budget for the whole handshake
  };

  mpb::ConnectRequest req;
  common::ClientInfo* info = req.mutable_client_info();
  info->set_sdk_type("milvus-cdc");
  info->set_sdk_version(CDC_TARGET_CLIENT_VERSION);
  info->set_local_time(LocalTimeString());
  info->set_host(HostName());
  if (size_t colon = params_.token.find(':'); colon != std::string::npos) {
    info->set_user(params_.token.substr(0, colon));  // the user name only, never the password
  }
  mpb::ConnectResponse resp;
  grpc::ClientContext ctx;
  prepare(&ctx);
  grpc::Status st = stub_->Connect(&ctx, req, &resp);
  if (st.ok()) {
    if (Status s = ConvertCommon(resp.status(), "Connect"); !s.ok()) {
      return Status(s.code(), "cannot connect to Milvus at " + endpoint_ + ": Connect failed: " +
                                  CommonCause(resp.status()));
    }
    session_id_ = resp.identifier();
    return Status::Ok();
  }
  if (st.error_code() != grpc::StatusCode::UNIMPLEMENTED) return fail(st);

  // Servers before Connect existed: any real RPC proves the channel, auth and TLS.
  mpb::GetVersionResponse vresp;
  grpc::ClientContext vctx;
  prepare(&vctx);
  grpc::Status vst = stub_->GetVersion(&vctx, mpb::GetVersionRequest(), &vresp);
  if (vst.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return Unimplemented("cannot connect to Milvus at " + endpoint_ +
                         ": the server implements neither Connect nor GetVersion; is it a Milvus proxy? (" +
                         RedactSecrets(vst.error_message(), params_.token) + ")");
  }
  if (!vst.ok()) return fail(vst);
  if (Status s = ConvertCommon(vresp.status(), "GetVersion"); !s.ok()) {
    return Status(s.code(), "cannot connect to Milvus at " + endpoint_ + ": GetVersion failed: " +
                                CommonCause(vresp.status()));
  }
  return Status::Ok();
}

StatusOr<std::string> MilvusClient::GetVersion() {
  CallContext ctx(this);
  mpb::GetVersionResponse resp;
  grpc::Status st = stub_->GetVersion(ctx.get(), mpb::GetVersionRequest(), &resp);
  RETURN_IF_ERROR(CheckCall(st, resp.status(), "GetVersion"));
  return resp.version();
}

void MilvusClient::PrepareContext(grpc::ClientContext* ctx, const std::string& db_name) const {
  if (!authorization_.empty()) ctx->AddMetadata("authorization", authorization_);
  const std::string& db = db_name.empty() ? params_.db_name : db_name;
  if (!db.empty() && IsValidMetadataValue(db)) ctx->AddMetadata("dbname", db);
  if (session_id_ != 0) ctx->AddMetadata("identifier", std::to_string(session_id_));
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(CallTimeoutS(params_)));
}

void MilvusClient::Cancel() {
  std::lock_guard<std::mutex> lock(calls_mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
}

void MilvusClient::Register(grpc::ClientContext* ctx) const {
  std::lock_guard<std::mutex> lock(calls_mu_);
  if (cancelled_) ctx->TryCancel();  // the call then fails at once with CANCELLED
  calls_.insert(ctx);
}

void MilvusClient::Unregister(grpc::ClientContext* ctx) const {
  std::lock_guard<std::mutex> lock(calls_mu_);
  calls_.erase(ctx);
}

CallContext::CallContext(const MilvusClient* client, const std::string& db_name) : client_(client) {
  client_->PrepareContext(&ctx_, db_name);
  client_->Register(&ctx_);
}

CallContext::~CallContext() { client_->Unregister(&ctx_); }

Status MilvusClient::CheckCall(const grpc::Status& grpc_status, const common::Status& resp_status,
                               std::string_view rpc) const {
  if (!grpc_status.ok()) return ConvertGrpc(grpc_status, rpc);
  return ConvertCommon(resp_status, rpc);
}

Status MilvusClient::CheckCall(const grpc::Status& grpc_status, std::string_view rpc) const {
  if (!grpc_status.ok()) return ConvertGrpc(grpc_status, rpc);
  return Status::Ok();
}

Status MilvusClient::ConvertGrpc(const grpc::Status& st, std::string_view rpc) const {
  if (st.ok()) return Status::Ok();
  std::string msg = std::string(rpc) + " on " + endpoint_ + ": ";
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    msg += "deadline exceeded (call timeout " + std::to_string(CallTimeoutS(params_)) + "s)";
  } else {
    msg += GrpcCauseName(st.error_code());
    if (!st.error_message().empty()) msg += ": " + RedactSecrets(st.error_message(), params_.token);
  }
  return Status(CodeForGrpc(st.error_code()), std::move(msg));
}

Status MilvusClient::ConvertCommon(const common::Status& st, std::string_view rpc) const {
  if (st.code() == 0 && LegacyErrorCode(st) == common::Success) return Status::Ok();
  return Status(CodeForCommon(st), std::string(rpc) + " on " + endpoint_ + " failed: " + CommonCause(st));
}

std::string MilvusClient::CommonCause(const common::Status& st) const {
  // Server-provided text is scrubbed of the token; our own text never contains it.
  std::string reason = RedactSecrets(st.reason().empty() ? st.detail() : st.reason(), params_.token);
  if (reason.empty()) reason = "no reason given";
  std::string out = reason + " (code " + std::to_string(st.code());
  const common::ErrorCode legacy = LegacyErrorCode(st);
  if (legacy != common::Success) {
    std::string name = common::ErrorCode_Name(legacy);
    out += ", error_code " + (name.empty() ? std::to_string(legacy) : name);
  }
  return out + ")";
}

}  // namespace cdc::target

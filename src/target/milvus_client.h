// MilvusClient: the one object that talks to a target Milvus over gRPC. It owns the channel and
// the MilvusService stub; auth (`authorization`), database (`dbname`) metadata and the per-call
// deadline are added in one place, PrepareContext. Results are checked at both levels (gRPC
// status, then the common.Status inside the response) by CheckCall.
//
// Ownership: created by Connect and owned by the caller (one per task target). Thread-safety:
// every method may be called from any thread concurrently (gRPC stubs are thread-safe); Cancel
// aborts the calls in flight (each runs in a CallContext) and every later one.
//
// Secrets: the token is never logged and never appears in a returned Status message.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "milvus.grpc.pb.h"
#include "target/connect_params.h"
#include "util/status.h"

namespace cdc::target {

class MilvusClient {
 public:
  // Opens the channel and proves the server answers a real RPC (Connect; GetVersion if Connect
  // is unimplemented) within connect_timeout_s, with the given auth and TLS. Blocks up to
  // connect_timeout_s. Errors name the cause, e.g. "deadline exceeded after 5s connecting to
  // 127.0.0.1:19999", "cannot connect to Milvus at h:p: authentication failed: ...",
  // "bad TLS config: cannot read ca_pem_path <file>: ...".
  static StatusOr<std::unique_ptr<MilvusClient>> Connect(const ConnectParams& params);

  MilvusClient(const MilvusClient&) = delete;
  MilvusClient& operator=(const MilvusClient&) = delete;

  // The server's version string, e.g. "v2.3.9". Blocks up to call_timeout_s.
  StatusOr<std::string> GetVersion();

  // "host:port" of the target; safe to put in messages and logs.
  const std::string& endpoint() const { return endpoint_; }

  // For the appliers. Pair every call with PrepareContext and CheckCall.
  milvus::proto::milvus::MilvusService::Stub* stub() { return stub_.get(); }

  // Adds authorization/dbname (db_name if not empty, else ConnectParams::db_name) metadata, the
  // Connect session identifier, and a deadline of call_timeout_s from now. A db_name that is not
  // a valid metadata value (see IsValidMetadataValue) is not sent.
  void PrepareContext(grpc::ClientContext* ctx, const std::string& db_name = "") const;

  // Maps a finished call to our Status: first the gRPC status, then `resp_status` (its `code`
  // and the legacy `error_code`). The message names `rpc`, the endpoint and the cause.
  Status CheckCall(const grpc::Status& grpc_status, const milvus::proto::common::Status& resp_status,
                   std::string_view rpc) const;
  // Same, for a call whose response carries no common.Status or failed at the gRPC level.
  Status CheckCall(const grpc::Status& grpc_status, std::string_view rpc) const;

  // The session id the server returned from the Connect RPC (0 when it fell back to GetVersion).
  int64_t session_id() const { return session_id_; }

  // Aborts every call in flight and fails every later one with CANCELLED, so a stopping task
  // does not wait for a hung target up to the call deadline. Irreversible.
  void Cancel();

 private:
  friend class CallContext;
  void Register(grpc::ClientContext* ctx) const;
  void Unregister(grpc::ClientContext* ctx) const;

  MilvusClient(ConnectParams params, std::string endpoint, std::shared_ptr<grpc::Channel> channel);

  // Runs Connect (or GetVersion) with an absolute deadline; see Connect.
  Status Handshake(std::chrono::system_clock::time_point deadline, int timeout_s);
  Status ConvertGrpc(const grpc::Status& st, std::string_view rpc) const;
  Status ConvertCommon(const milvus::proto::common::Status& st, std::string_view rpc) const;
  // "reason (code N[, error_code NAME])", with secrets redacted.
  std::string CommonCause(const milvus::proto::common::Status& st) const;

  const ConnectParams params_;
  const std::string endpoint_;
  const std::string authorization_;  // base64(token), empty when no token
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<milvus::proto::milvus::MilvusService::Stub> stub_;
  int64_t session_id_ = 0;  // written only during Connect

  mutable std::mutex calls_mu_;  // guards calls_ and cancelled_
  mutable std::set<grpc::ClientContext*> calls_;
  bool cancelled_ = false;
};

// The context of one RPC: PrepareContext applied and registered with the client for Cancel.
//   CallContext ctx(client, db);
//   client->CheckCall(client->stub()->Insert(ctx.get(), req, &resp), resp.status(), "Insert");
class CallContext {
 public:
  explicit CallContext(const MilvusClient* client, const std::string& db_name = "");
  ~CallContext();
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;
  grpc::ClientContext* get() { return &ctx_; }

 private:
  const MilvusClient* client_;
  grpc::ClientContext ctx_;
};

}  // namespace cdc::target

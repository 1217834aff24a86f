// FakeMilvus: an in-process MilvusService for MilvusClient tests, the fake at the target seam.
// It implements Connect, GetVersion, Insert and Upsert, records the metadata each call carried
// (and the rows of writes), and can be told to fail or hang. FakeMilvusServer runs it on a free 127.0.0.1 port.
// Thread-safety: the service is called on gRPC threads; all recorded state is under mu_.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "milvus.grpc.pb.h"

namespace cdc::target::testing {

class FakeMilvus final : public milvus::proto::milvus::MilvusService::Service {
 public:
  enum class Mode {
    kOk,
    kConnectUnimplemented,  // like a server older than the Connect RPC
    kStatusError,           // common.Status with the new `code`
    kLegacyStatusError,     // common.Status with only the deprecated `error_code`
    kHang,                  // never answers until the caller gives up
    kUnauthenticated,       // gRPC UNAUTHENTICATED, message echoes the credentials
    kApplyThenHangOnce,     // the next write is recorded (applied), then hangs; later calls are kOk
  };
  static constexpr int64_t kIdentifier = 4242;

  void set_mode(Mode m) { mode_ = m; }

  grpc::Status Connect(grpc::ServerContext* ctx, const milvus::proto::milvus::ConnectRequest* req,
                       milvus::proto::milvus::ConnectResponse* resp) override;
  grpc::Status GetVersion(grpc::ServerContext* ctx, const milvus::proto::milvus::GetVersionRequest* req,
                          milvus::proto::milvus::GetVersionResponse* resp) override;
  grpc::Status Insert(grpc::ServerContext* ctx, const milvus::proto::milvus::InsertRequest* req,
                      milvus::proto::milvus::MutationResult* resp) override;
  grpc::Status Upsert(grpc::ServerContext* ctx, const milvus::proto::milvus::UpsertRequest* req,
                      milvus::proto::milvus::MutationResult* resp) override;
  // Query over the VARCHAR keys given to set_keys, for expressions `pk > "…"` and `pk >= "…"`
  // (a JSON string literal), with a limit; counts the calls.
  grpc::Status Query(grpc::ServerContext* ctx, const milvus::proto::milvus::QueryRequest* req,
                     milvus::proto::milvus::QueryResults* resp) override;
  void set_keys(std::vector<std::string> keys);
  // Like a writer with growing keys: every Query first adds the key "<prefix><n>", n = 1, 2, …
  void grow_each_query(std::string prefix) { std::lock_guard<std::mutex> lock(mu_); grow_ = std::move(prefix); }
  int queries() const { return queries_; }

  struct Call {
    std::string method;
    std::multimap<std::string, std::string> metadata;
    std::string client_sdk_type, client_user;
    std::string collection;                 // writes: db.collection
    std::vector<milvus::proto::schema::FieldData> fields;  // writes: the columns
    uint32_t num_rows = 0;
  };
  std::vector<Call> calls();
  // Makes hanging handlers return (called before server shutdown).
  void Release() { released_ = true; }

 private:
  Call Record(grpc::ServerContext* ctx, const char* method);
  grpc::Status Misbehave(grpc::ServerContext* ctx, milvus::proto::common::Status* status);
  grpc::Status HangUntilCancelled(grpc::ServerContext* ctx);
  template <typename Req>
  grpc::Status Write(grpc::ServerContext* ctx, const char* method, const Req& req,
                     milvus::proto::milvus::MutationResult* resp);

  std::atomic<Mode> mode_{Mode::kOk};
  std::atomic<bool> released_{false};
  std::atomic<int> queries_{0};
  std::vector<std::string> keys_;  // sorted; under mu_
  std::string grow_;
  int grown_ = 0;
  std::mutex mu_;
  std::vector<Call> calls_;
};

class FakeMilvusServer {
 public:
  // Starts on 127.0.0.1 with an OS-chosen port; creds default to insecure.
  explicit FakeMilvusServer(std::shared_ptr<grpc::ServerCredentials> creds = nullptr);
  ~FakeMilvusServer();
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  FakeMilvus& service() { return service_; }

 private:
  FakeMilvus service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A 127.0.0.1 port with nothing listening on it (bound, read, closed).
int UnusedPort();

}  // namespace cdc::target::testing

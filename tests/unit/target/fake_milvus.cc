#include "fake_milvus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

namespace cdc::target::testing {

namespace mpb = milvus::proto::milvus;
namespace common = milvus::proto::common;

namespace {
// A 2.3-style failure: only the deprecated field is set.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void SetLegacyError(common::Status* st, common::ErrorCode code) { st->set_error_code(code); }
int LegacyError(const common::Status& st) { return st.error_code(); }
#pragma GCC diagnostic pop
}  // namespace

FakeMilvus::Call FakeMilvus::Record(grpc::ServerContext* ctx, const char* method) {
  Call call;
  call.method = method;
  for (const auto& [k, v] : ctx->client_metadata()) {
    call.metadata.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  return call;
}

grpc::Status FakeMilvus::HangUntilCancelled(grpc::ServerContext* ctx) {
  while (!ctx->IsCancelled() && !released_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return grpc::Status(grpc::StatusCode::CANCELLED, "gave up");
}

grpc::Status FakeMilvus::Misbehave(grpc::ServerContext* ctx, common::Status* status) {
  switch (mode_.load()) {
    case Mode::kStatusError:
      status->set_code(800);
      status->set_reason("database not found[database=nope]");
      return grpc::Status::OK;
    case Mode::kLegacyStatusError:
      SetLegacyError(status, common::UnexpectedError);
      status->set_reason("something broke");
      return grpc::Status::OK;
    case Mode::kHang:
      return HangUntilCancelled(ctx);
    case Mode::kUnauthenticated: {
      std::string echoed;
      auto it = ctx->client_metadata().find("authorization");
      if (it != ctx->client_metadata().end()) echoed = std::string(it->second.data(), it->second.size());
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "auth check failure for " + echoed + " (root:wrongpass1)");
    }
    default:
      return grpc::Status::OK;
  }
}

template <typename Req>
grpc::Status FakeMilvus::Write(grpc::ServerContext* ctx, const char* method, const Req& req,
                               mpb::MutationResult* resp) {
  Call call = Record(ctx, method);
  call.collection = req.db_name() + "." + req.collection_name();
  call.fields.assign(req.fields_data().begin(), req.fields_data().end());
  call.num_rows = req.num_rows();
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(call));
  }
  Mode once = Mode::kApplyThenHangOnce;
  if (mode_.compare_exchange_strong(once, Mode::kOk)) {
    return HangUntilCancelled(ctx);  // applied, but the answer never comes: a stalled target
  }
  return Misbehave(ctx, resp->mutable_status());
}

grpc::Status FakeMilvus::Insert(grpc::ServerContext* ctx, const mpb::InsertRequest* req, mpb::MutationResult* resp) {
  return Write(ctx, "Insert", *req, resp);
}

grpc::Status FakeMilvus::Upsert(grpc::ServerContext* ctx, const mpb::UpsertRequest* req, mpb::MutationResult* resp) {
  return Write(ctx, "Upsert", *req, resp);
}

grpc::Status FakeMilvus::Connect(grpc::ServerContext* ctx, const mpb::ConnectRequest* req,
                                 mpb::ConnectResponse* resp) {
  Call call = Record(ctx, "Connect");
  call.client_sdk_type = req->client_info().sdk_type();
  call.client_user = req->client_info().user();
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(call));
  }
  if (mode_ == Mode::kConnectUnimplemented) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method Connect");
  }
  grpc::Status st = Misbehave(ctx, resp->mutable_status());
  if (st.ok() && resp->status().code() == 0 && LegacyError(resp->status()) == 0) {
    resp->set_identifier(kIdentifier);
    resp->mutable_server_info()->set_build_tags("fake");
  }
  return st;
}

grpc::Status FakeMilvus::GetVersion(grpc::ServerContext* ctx, const mpb::GetVersionRequest*,
                                    mpb::GetVersionResponse* resp) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(Record(ctx, "GetVersion"));
  }
  Mode m = mode_;
  if (m == Mode::kConnectUnimplemented) {
    resp->set_version("v2.1.0-fake");
    return grpc::Status::OK;
  }
  grpc::Status st = Misbehave(ctx, resp->mutable_status());
  if (st.ok()) resp->set_version("v2.3.9-fake");
  return st;
}

std::vector<FakeMilvus::Call> FakeMilvus::calls() {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

FakeMilvusServer::FakeMilvusServer(std::shared_ptr<grpc::ServerCredentials> creds) {
  if (!creds) creds = grpc::InsecureServerCredentials();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", creds, &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
}

FakeMilvusServer::~FakeMilvusServer() {
  service_.Release();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

void FakeMilvus::set_keys(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(keys);
}

grpc::Status FakeMilvus::Query(grpc::ServerContext*, const mpb::QueryRequest* req, mpb::QueryResults* resp) {
  ++queries_;
  const std::string& expr = req->expr();
  const size_t space = expr.find(' ');
  const size_t quote = expr.find(' ', space + 1);
  if (space == std::string::npos || quote == std::string::npos) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "fake Query cannot parse " + expr);
  }
  const std::string op = expr.substr(space + 1, quote - space - 1);
  const std::string value = nlohmann::json::parse(expr.substr(quote + 1)).get<std::string>();
  int64_t limit = 1 << 30;
  for (const auto& kv : req->query_params()) {
    if (kv.key() == "limit") limit = std::stoll(kv.value());
  }
  auto* field = resp->add_fields_data();
  field->set_field_name(req->output_fields_size() ? req->output_fields(0) : "pk");
  field->set_type(milvus::proto::schema::DataType::VarChar);
  auto* out = field->mutable_scalars()->mutable_string_data();
  std::lock_guard<std::mutex> lock(mu_);
  if (!grow_.empty()) {
    char n[16];
    std::snprintf(n, sizeof n, "%08d", ++grown_);
    keys_.insert(std::upper_bound(keys_.begin(), keys_.end(), grow_ + n), grow_ + n);
  }
  for (const auto& k : keys_) {
    if (out->data_size() >= limit) break;
    if ((op == ">" && k > value) || (op == ">=" && k >= value)) out->add_data(k);
  }
  return grpc::Status::OK;
}

}  // namespace cdc::target::testing

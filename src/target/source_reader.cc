#include "target/source_reader.h"

#include <chrono>
#include <thread>

namespace cdc::target {

namespace milvuspb = milvus::proto::milvus;

StatusOr<std::vector<std::pair<std::string, std::string>>> SourceReader::CollectionProperties(
    const std::string& db, const std::string& name) {
  Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
    milvuspb::DescribeCollectionRequest req;
    req.set_db_name(db);
    req.set_collection_name(name);
    milvuspb::DescribeCollectionResponse resp;
    CallContext ctx(client_, db);
    grpc::Status call = client_->stub()->DescribeCollection(ctx.get(), req, &resp);  // before reading resp.status()
    last = client_->CheckCall(call, resp.status(), "DescribeCollection");
    if (last.ok()) {
      std::vector<std::pair<std::string, std::string>> out;
      for (const auto& kv : resp.properties()) out.emplace_back(kv.key(), kv.value());
      return out;
    }
    const std::string& m = last.message();
    if (m.find("can't find collection") != std::string::npos || m.find("not found") != std::string::npos ||
        m.find("not exist") != std::string::npos) {
      return NotFound("the source has no collection " + db + "." + name);
    }
  }
  return Status(StatusCode::kUnavailable, "the source Milvus: " + last.message());
}

StatusOr<uint64_t> SourceReader::AllocTimestamp() {
  milvuspb::AllocTimestampRequest req;
  milvuspb::AllocTimestampResponse resp;
  CallContext ctx(client_);
  grpc::Status call = client_->stub()->AllocTimestamp(ctx.get(), req, &resp);  // before reading resp.status()
  Status st = client_->CheckCall(call, resp.status(), "AllocTimestamp");
  if (!st.ok()) return Status(st.code(), "the source Milvus: " + st.message());
  if (resp.timestamp() == 0) return Internal("AllocTimestamp on the source Milvus " + client_->endpoint() + " returned no timestamp");
  return resp.timestamp();
}

}  // namespace cdc::target

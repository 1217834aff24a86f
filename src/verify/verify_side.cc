#include "verify/verify_side.h"

#include "milvus.pb.h"
#include "target/source_reader.h"

namespace cdc::verify {

namespace milvuspb = milvus::proto::milvus;

namespace {

bool IsNotFound(const Status& st) {
  const std::string& m = st.message();
  return m.find("can't find collection") != std::string::npos || m.find("not found") != std::string::npos ||
         m.find("not exist") != std::string::npos;
}

target::CollectionReader ReaderFor(target::MilvusClient* client, const Table& t) {
  return target::CollectionReader(client, t.db, t.name, t.pk_field, t.varchar_pk);
}

ReadOptions WithPartition(const Table& t, ReadOptions options) {
  if (!t.partition.empty()) options.partitions = {t.partition};
  return options;
}

}  // namespace


StatusOr<std::vector<std::string>> MilvusSide::ListDatabases() {
  milvuspb::ListDatabasesRequest req;
  milvuspb::ListDatabasesResponse resp;
  target::CallContext ctx(client_);
  grpc::Status call = client_->stub()->ListDatabases(ctx.get(), req, &resp);
  RETURN_IF_ERROR(client_->CheckCall(call, resp.status(), "ListDatabases"));
  return std::vector<std::string>(resp.db_names().begin(), resp.db_names().end());
}

StatusOr<std::vector<std::string>> MilvusSide::ListCollections(const std::string& db) {
  milvuspb::ShowCollectionsRequest req;
  req.set_db_name(db);
  milvuspb::ShowCollectionsResponse resp;
  target::CallContext ctx(client_, db);
  grpc::Status call = client_->stub()->ShowCollections(ctx.get(), req, &resp);
  RETURN_IF_ERROR(client_->CheckCall(call, resp.status(), "ShowCollections").WithContext("database " + db));
  return std::vector<std::string>(resp.collection_names().begin(), resp.collection_names().end());
}

StatusOr<std::optional<milvus::proto::schema::CollectionSchema>> MilvusSide::Describe(const std::string& db,
                                                                                    const std::string& name) {
  milvuspb::DescribeCollectionRequest req;
  req.set_db_name(db);
  req.set_collection_name(name);
  milvuspb::DescribeCollectionResponse resp;
  target::CallContext ctx(client_, db);
  grpc::Status call = client_->stub()->DescribeCollection(ctx.get(), req, &resp);
  Status st = client_->CheckCall(call, resp.status(), "DescribeCollection");
  if (!st.ok() && call.ok() && IsNotFound(st)) return std::optional<milvus::proto::schema::CollectionSchema>();
  RETURN_IF_ERROR(st.WithContext(db + "." + name));
  return std::optional<milvus::proto::schema::CollectionSchema>(resp.schema());
}

StatusOr<std::vector<std::string>> MilvusSide::ListPartitions(const std::string& db, const std::string& name) {
  milvuspb::ShowPartitionsRequest req;
  req.set_db_name(db);
  req.set_collection_name(name);
  milvuspb::ShowPartitionsResponse resp;
  target::CallContext ctx(client_, db);
  grpc::Status call = client_->stub()->ShowPartitions(ctx.get(), req, &resp);
  RETURN_IF_ERROR(client_->CheckCall(call, resp.status(), "ShowPartitions").WithContext(db + "." + name));
  return std::vector<std::string>(resp.partition_names().begin(), resp.partition_names().end());
}

StatusOr<Page> MilvusSide::ReadRange(const Table& table, const std::optional<PkValue>& after,
                                     const std::optional<PkValue>& upto, int64_t limit, const ReadOptions& options) {
  return ReaderFor(client_, table).ReadRange(after, upto, limit, WithPartition(table, options));
}

StatusOr<Page> MilvusSide::ReadKeys(const Table& table, const std::vector<PkValue>& keys, const ReadOptions& options) {
  return ReaderFor(client_, table).ReadKeys(keys, WithPartition(table, options));
}

StatusOr<int64_t> MilvusSide::Count(const Table& table, const std::optional<PkValue>& after,
                                    const std::optional<PkValue>& upto, const ReadOptions& options) {
  return ReaderFor(client_, table).Count(after, upto, WithPartition(table, options));
}

StatusOr<uint64_t> MilvusSide::AllocTimestamp() { return target::SourceReader(client_).AllocTimestamp(); }

}  // namespace cdc::verify

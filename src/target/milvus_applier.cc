#include "target/milvus_applier.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <thread>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "util/log.h"

namespace cdc::target {

namespace milvuspb = milvus::proto::milvus;
namespace schemapb = milvus::proto::schema;
namespace commonpb = milvus::proto::common;
using Stub = milvuspb::MilvusService::Stub;

namespace {

constexpr size_t kDeleteChunk = 1000;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool MessageHas(const Status& st, std::initializer_list<const char*> needles) {
  const std::string m = Lower(st.message());
  for (const char* n : needles) {
    if (m.find(n) != std::string::npos) return true;
  }
  return false;
}

bool IsAlreadyExists(const Status& st) { return MessageHas(st, {"already exist", "duplicate"}); }
bool IsMissing(const Status& st) {
  return st.code() == StatusCode::kNotFound ||
         MessageHas(st, {"not found", "not exist", "doesn't exist", "does not exist", "can't find"});
}

std::string TypeParam(const schemapb::FieldSchema& f, const std::string& key) {
  for (const auto& kv : f.type_params()) {
    if (kv.key() == key) return kv.value();
  }
  return "";
}

// skip_max_length: leave out an ARRAY's element max_length (a target that does not report it).
std::string Describe(const schemapb::FieldSchema& f, bool skip_max_length = false) {
  std::string out = schemapb::DataType_Name(f.data_type());
  for (const char* key : {"dim", "max_length", "max_capacity"}) {
    if (skip_max_length && std::string(key) == "max_length") continue;
    std::string v = TypeParam(f, key);
    if (!v.empty()) out += std::string("(") + key + "=" + v + ")";
  }
  if (f.data_type() == schemapb::DataType::Array) out += "<" + schemapb::DataType_Name(f.element_type()) + ">";
  return out;
}

}  // namespace

bool IsRetriable(const Status& st) {
  switch (st.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kResourceExhausted:
      return true;
    default:
      // Also a target still starting: its proxy answers while its own inner connections fail
      // (seen after a restart of 2.3.5: "empty grpc client: failed to connect ... connection refused").
      return MessageHas(st, {"rate limit", "too many requests", "not ready", "service unavailable", "not healthy",
                             "empty grpc client", "connection refused", "error while dialing"});
  }
}

Status ExplainWriteRefusal(const Status& st) {
  if (!MessageHas(st, {"can't produce the msg in the backup instance", "backup instance", "deny to write"})) {
    return st;
  }
  return FailedPrecondition(
      "the target refuses plain writes because it runs with common.ttMsgEnabled=false (a backup instance); "
      "set common.ttMsgEnabled: true in the target's milvus.yaml (or its config source) and resume the task. "
      "Target said: " + st.message());
}

std::string SchemaDifference(const schemapb::CollectionSchema& source, const schemapb::CollectionSchema& target) {
  std::vector<const schemapb::FieldSchema*> s;
  std::vector<const schemapb::FieldSchema*> t;
  for (const auto& f : source.fields()) {
    if (f.fieldid() >= 100 && !f.is_dynamic()) s.push_back(&f);
  }
  for (const auto& f : target.fields()) {
    if ((f.fieldid() == 0 || f.fieldid() >= 100) && !f.is_dynamic() && f.name() != "RowID" && f.name() != "Timestamp") {
      t.push_back(&f);
    }
  }
  for (size_t i = 0; i < std::max(s.size(), t.size()); ++i) {
    if (i >= s.size()) return "field '" + t[i]->name() + "' exists only on the target";
    if (i >= t.size()) return "field '" + s[i]->name() + "' exists only on the source";
    if (s[i]->name() != t[i]->name()) {
      return "field " + std::to_string(i + 1) + " is '" + s[i]->name() + "' on the source and '" + t[i]->name() +
             "' on the target";
    }
    // milvus-lite 3.2.2 does not report an ARRAY<VARCHAR>'s element max_length: a length the target
    // does not report is no difference (a target that reports one must report the source's).
    const bool unreported = t[i]->data_type() == schemapb::DataType::Array &&
                            s[i]->data_type() == schemapb::DataType::Array && TypeParam(*t[i], "max_length").empty();
    if (Describe(*s[i], unreported) != Describe(*t[i], unreported)) {
      return "field '" + s[i]->name() + "' is " + Describe(*s[i]) + " on the source and " + Describe(*t[i]) +
             " on the target";
    }
    if (s[i]->is_primary_key() != t[i]->is_primary_key()) {
      return "field '" + s[i]->name() + "' is " + (s[i]->is_primary_key() ? "" : "not ") +
             "the primary key on the source but " + (t[i]->is_primary_key() ? "" : "not ") + "on the target";
    }
    if (s[i]->is_partition_key() != t[i]->is_partition_key()) {
      return "field '" + s[i]->name() + "' differs in being the partition key";
    }
  }
  if (source.enable_dynamic_field() != target.enable_dynamic_field()) {
    return std::string("the dynamic field is ") + (source.enable_dynamic_field() ? "enabled" : "disabled") +
           " on the source but " + (target.enable_dynamic_field() ? "enabled" : "disabled") + " on the target";
  }
  return "";
}

namespace {

// The same rows as an Upsert (both requests carry the same fields).
milvuspb::UpsertRequest UpsertOf(const milvuspb::InsertRequest& insert) {
  milvuspb::UpsertRequest u;
  u.set_db_name(insert.db_name());
  u.set_collection_name(insert.collection_name());
  u.set_partition_name(insert.partition_name());
  *u.mutable_fields_data() = insert.fields_data();
  *u.mutable_hash_keys() = insert.hash_keys();
  u.set_num_rows(insert.num_rows());
  return u;
}

}  // namespace

const char* WriteModeName(WriteMode mode) { return mode == WriteMode::kReplicate ? "replicate" : "api"; }

template <typename Req>
void MilvusApplier::MarkReplicated(Req* req, commonpb::MsgType type) const {
  if (replicate_ts_ == 0) return;
  auto* base = req->mutable_base();
  if (type != commonpb::MsgType::Undefined) base->set_msg_type(type);
  base->mutable_replicateinfo()->set_isreplicate(true);
  base->mutable_replicateinfo()->set_msgtimestamp(replicate_ts_);
}

StatusOr<WriteMode> MilvusApplier::DetectWriteMode() {
  // Code 1900: "deny to use the replicate message in the normal instance"; 1100: the empty channel
  // name of a standby, checked after the mode (internal/proxy/impl.go, Milvus 2.3.5).
  StatusOr<WriteMode> mode = Unavailable("not asked");
  Status st = WithRetry("ReplicateMessage (write mode probe)", [&]() -> Status {
    milvuspb::ReplicateMessageRequest req;
    milvuspb::ReplicateMessageResponse resp;
    CallContext ctx(client_);
    grpc::Status call = client_->stub()->ReplicateMessage(ctx.get(), req, &resp);
    if (call.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      mode = WriteMode::kApi;
      return Status::Ok();
    }
    if (!call.ok()) return client_->CheckCall(call, "ReplicateMessage");
    const int32_t code = resp.status().code();
    if (code == 1900) {
      mode = WriteMode::kApi;
    } else if (code == 1100) {
      mode = WriteMode::kReplicate;
    } else {
      Status checked = client_->CheckCall(call, resp.status(), "ReplicateMessage");
      return checked.ok() ? Internal("the target accepted a ReplicateMessage without a channel") : checked;
    }
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext("cannot tell whether the target is a standby (write_mode auto)");
  return mode;
}

Status MilvusApplier::ReplicateMessage(const std::string& channel, uint64_t begin_ts, uint64_t end_ts,
                                       std::vector<std::string>&& msgs) {
  milvuspb::ReplicateMessageRequest req;
  req.mutable_base()->mutable_replicateinfo()->set_isreplicate(true);
  req.set_channel_name(channel);
  req.set_begints(begin_ts);
  req.set_endts(end_ts);
  for (auto& m : msgs) req.add_msgs(std::move(m));  // the request owns the bytes
  return WithRetry("ReplicateMessage " + channel, [&] {
    milvuspb::ReplicateMessageResponse resp;
    CallContext ctx(client_);
    grpc::Status call = client_->stub()->ReplicateMessage(ctx.get(), req, &resp);  // before resp.status()
    return client_->CheckCall(call, resp.status(), "ReplicateMessage");
  });
}

MilvusApplier::MilvusApplier(MilvusClient* client, RetryPolicy retry, const std::atomic<bool>* stopping)
    : client_(client), retry_(retry), stopping_(stopping) {}

Status MilvusApplier::WithRetry(const std::string& what, const std::function<Status()>& call) {
  auto backoff = retry_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    Status st = call();
    if (st.ok() || !IsRetriable(st)) return st;
    if (stopping_ && stopping_->load()) return Status(StatusCode::kUnavailable, what + " interrupted: task stopping");
    if (on_retry_) on_retry_(st);
    if (retry_.max_attempts > 0 && attempt >= retry_.max_attempts) {
      return Status(st.code(), "the target Milvus is failing: " + what + " still failing after " +
                                   std::to_string(attempt) + " attempts: " + st.message());
    }
    if (attempt == 1 || attempt % 10 == 0) {
      GetLogger("target")->warn("{} on {} failed (attempt {}), retrying in {} ms: {}", what, client_->endpoint(),
                                attempt, backoff.count(), st.message());
    }
    auto until = std::chrono::steady_clock::now() + backoff;
    while (std::chrono::steady_clock::now() < until) {
      if (stopping_ && stopping_->load()) return Status(StatusCode::kUnavailable, what + " interrupted: task stopping");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, retry_.max_backoff);
  }
}

Status MilvusApplier::CreateDatabase(const std::string& db) {
  Status st = WithRetry("CreateDatabase " + db, [&] {
    milvuspb::CreateDatabaseRequest req;
    req.set_db_name(db);
    MarkReplicated(&req, commonpb::MsgType::CreateDatabase);
    commonpb::Status resp;
    CallContext ctx(client_);
    return client_->CheckCall(client_->stub()->CreateDatabase(ctx.get(), req, &resp), resp, "CreateDatabase");
  });
  return st.ok() || IsAlreadyExists(st) ? Status::Ok() : st;
}

Status MilvusApplier::DropDatabase(const std::string& db) {
  Status st = WithRetry("DropDatabase " + db, [&] {
    milvuspb::DropDatabaseRequest req;
    req.set_db_name(db);
    MarkReplicated(&req, commonpb::MsgType::DropDatabase);
    commonpb::Status resp;
    CallContext ctx(client_);
    return client_->CheckCall(client_->stub()->DropDatabase(ctx.get(), req, &resp), resp, "DropDatabase");
  });
  return st.ok() || IsMissing(st) ? Status::Ok() : st;
}

template <typename Req, typename Resp>
Status MilvusApplier::Read(const std::string& what, const std::string& db, const Req& req, ReadCall<Req, Resp> call,
                          Resp* resp) {
  const std::string rpc = what.substr(0, what.find(' '));
  return WithRetry(what, [&] {
    CallContext ctx(client_, db);
    grpc::Status st = (client_->stub()->*call)(ctx.get(), req, resp);  // before reading resp->status()
    return client_->CheckCall(st, resp->status(), rpc);
  });
}

StatusOr<std::vector<std::string>> MilvusApplier::ListDatabases() {
  milvuspb::ListDatabasesResponse resp;
  Status st = Read("ListDatabases", "", milvuspb::ListDatabasesRequest(), &Stub::ListDatabases, &resp);
  if (!st.ok()) return st;
  return std::vector<std::string>(resp.db_names().begin(), resp.db_names().end());
}

StatusOr<bool> MilvusApplier::HasCollection(const std::string& db, const std::string& name) {
  auto described = DescribeCollection(db, name);
  const Status& st = described.status();
  if (st.ok()) return true;
  if (IsMissing(st)) return false;
  return st;
}

Status MilvusApplier::CreateCollection(const CollectionSpec& spec) {
  const std::string full = spec.db_name + "." + spec.name;
  schemapb::CollectionSchema schema = spec.schema;
  schema.set_name(spec.name);
  for (auto& f : *schema.mutable_fields()) {
    f.set_autoid(false);  // keep the source's primary keys
    f.clear_fieldid();
  }

  auto existing = DescribeCollection(spec.db_name, spec.name);
  const Status& described = existing.status();
  if (described.ok()) {
    std::string diff = SchemaDifference(spec.schema, existing->schema());
    if (!diff.empty()) {
      return FailedPrecondition("target collection " + full + " exists with a different schema: " + diff);
    }
    return Status::Ok();  // already there, same shape
  }
  if (!IsMissing(described)) return described;

  Status st = WithRetry("CreateCollection " + full, [&] {
    milvuspb::CreateCollectionRequest req;
    req.set_db_name(spec.db_name);
    req.set_collection_name(spec.name);
    req.set_schema(schema.SerializeAsString());
    req.set_shards_num(spec.shards_num);
    req.set_consistency_level(static_cast<commonpb::ConsistencyLevel>(spec.consistency_level));
    for (const auto& [k, v] : spec.properties) {
      auto* kv = req.add_properties();
      kv->set_key(k);
      kv->set_value(v);
    }
    if (spec.num_partitions > 0) req.set_num_partitions(spec.num_partitions);
    MarkReplicated(&req, commonpb::MsgType::CreateCollection);
    commonpb::Status resp;
    CallContext ctx(client_, spec.db_name);
    return client_->CheckCall(client_->stub()->CreateCollection(ctx.get(), req, &resp), resp, "CreateCollection");
  });
  if (!st.ok() && IsAlreadyExists(st)) return Status::Ok();
  return st;
}

Status MilvusApplier::DropCollection(const std::string& db, const std::string& name) {
  Status st = WithRetry("DropCollection " + db + "." + name, [&] {
    milvuspb::DropCollectionRequest req;
    req.set_db_name(db);
    req.set_collection_name(name);
    MarkReplicated(&req, commonpb::MsgType::DropCollection);
    commonpb::Status resp;
    CallContext ctx(client_, db);
    return client_->CheckCall(client_->stub()->DropCollection(ctx.get(), req, &resp), resp, "DropCollection");
  });
  return st.ok() || IsMissing(st) ? Status::Ok() : st;
}

Status MilvusApplier::CreatePartition(const std::string& db, const std::string& coll, const std::string& partition) {
  Status st = WithRetry("CreatePartition " + db + "." + coll + "." + partition, [&] {
    milvuspb::CreatePartitionRequest req;
    req.set_db_name(db);
    req.set_collection_name(coll);
    req.set_partition_name(partition);
    MarkReplicated(&req, commonpb::MsgType::CreatePartition);
    commonpb::Status resp;
    CallContext ctx(client_, db);
    return client_->CheckCall(client_->stub()->CreatePartition(ctx.get(), req, &resp), resp, "CreatePartition");
  });
  if (st.ok() || IsAlreadyExists(st)) return Status::Ok();
  // milvus-lite 3.2.2 refuses an existing partition with only its name as the reason (code 1), which
  // no message test can tell from a failure: if the partition is there, the call did what we wanted.
  auto exists = HasPartition(db, coll, partition);
  return exists.ok() && *exists ? Status::Ok() : st;
}

Status MilvusApplier::DropPartition(const std::string& db, const std::string& coll, const std::string& partition) {
  // Milvus refuses to drop a loaded partition; release it first (a no-op when not loaded).
  milvuspb::ReleasePartitionsRequest release;
  release.set_db_name(db);
  release.set_collection_name(coll);
  release.add_partition_names(partition);
  // A target without partition-level release (milvus-lite 3.2.2: UNIMPLEMENTED) drops a loaded
  // partition as it is.
  Status released = ReleasePartitions(release);
  if (!released.ok() && !IsMissing(released) && released.code() != StatusCode::kUnimplemented) return released;
  Status st = WithRetry("DropPartition " + db + "." + coll + "." + partition, [&] {
    milvuspb::DropPartitionRequest req;
    req.set_db_name(db);
    req.set_collection_name(coll);
    req.set_partition_name(partition);
    MarkReplicated(&req, commonpb::MsgType::DropPartition);
    commonpb::Status resp;
    CallContext ctx(client_, db);
    return client_->CheckCall(client_->stub()->DropPartition(ctx.get(), req, &resp), resp, "DropPartition");
  });
  if (st.ok() || IsMissing(st)) return Status::Ok();
  // milvus-lite 3.2.2 answers a missing partition with only its name (code 200): gone is what we wanted.
  auto exists = HasPartition(db, coll, partition);
  return exists.ok() && !*exists ? Status::Ok() : st;
}

StatusOr<bool> MilvusApplier::HasPartition(const std::string& db, const std::string& coll,
                                           const std::string& partition) {
  milvuspb::HasPartitionRequest req;
  req.set_db_name(db);
  req.set_collection_name(coll);
  req.set_partition_name(partition);
  milvuspb::BoolResponse resp;
  RETURN_IF_ERROR(Read("HasPartition " + db + "." + coll + "." + partition, db, req, &Stub::HasPartition, &resp));
  return resp.value();
}

namespace {

bool IsUserColumn(const schemapb::FieldData& fd) {
  if (!fd.is_dynamic() && fd.field_id() > 0 && fd.field_id() < 100) return false;  // RowID, Timestamp
  return fd.field_name() != "RowID" && fd.field_name() != "Timestamp";
}

template <typename Req>
void SetInsertHeader(const std::string& db, const std::string& coll, const milvus::proto::msg::InsertRequest& src,
                     Req* out) {
  out->set_db_name(db);
  out->set_collection_name(coll);
  out->set_partition_name(src.partition_name());
  out->set_num_rows(static_cast<uint32_t>(src.num_rows()));
}

}  // namespace

template <typename Req>
void CopyRowsInto(const std::string& db, const std::string& coll, const milvus::proto::msg::InsertRequest& src,
                  Req* out) {
  SetInsertHeader(db, coll, src, out);
  for (const auto& fd : src.fields_data()) {
    if (IsUserColumn(fd)) *out->add_fields_data() = fd;
  }
}

template <typename Req>
void MoveRowsInto(const std::string& db, const std::string& coll, milvus::proto::msg::InsertRequest&& src, Req* out) {
  SetInsertHeader(db, coll, src, out);
  for (auto& fd : *src.mutable_fields_data()) {
    if (IsUserColumn(fd)) out->add_fields_data()->Swap(&fd);
  }
}

template void CopyRowsInto(const std::string&, const std::string&, const milvus::proto::msg::InsertRequest&,
                           milvuspb::InsertRequest*);
template void CopyRowsInto(const std::string&, const std::string&, const milvus::proto::msg::InsertRequest&,
                           milvuspb::UpsertRequest*);
template void MoveRowsInto(const std::string&, const std::string&, milvus::proto::msg::InsertRequest&&,
                           milvuspb::InsertRequest*);
template void MoveRowsInto(const std::string&, const std::string&, milvus::proto::msg::InsertRequest&&,
                           milvuspb::UpsertRequest*);

template <typename Req>
Status MilvusApplier::SendRows(const std::string& db, const std::string& coll, const Req& req, uint64_t rows) {
  constexpr bool kUpsert = std::is_same_v<Req, milvuspb::UpsertRequest>;
  // An Insert that failed may still have been applied (a deadline that expired while TARGET
  // was stalled, a connection lost after sending): inserting again would double its rows.
  // So every retry of an Insert is an Upsert of the same rows, which is the same if the
  // first attempt was lost and replaces the rows if it was not (target pks are never auto).
  std::optional<milvuspb::UpsertRequest> retry_as_upsert;
  int attempts = 0;
  Status st = WithRetry(std::string(kUpsert ? "Upsert" : "Insert") + " into " + db + "." + coll, [&] {
    milvuspb::MutationResult resp;
    CallContext ctx(client_, db);
    grpc::Status call;
    if constexpr (kUpsert) {
      call = client_->stub()->Upsert(ctx.get(), req, &resp);
      return client_->CheckCall(call, resp.status(), "Upsert");  // after the call: resp.status() is set
    } else {
      if (++attempts == 1) {
        call = client_->stub()->Insert(ctx.get(), req, &resp);
        return client_->CheckCall(call, resp.status(), "Insert");
      }
      if (!retry_as_upsert) retry_as_upsert = UpsertOf(req);
      call = client_->stub()->Upsert(ctx.get(), *retry_as_upsert, &resp);
      return client_->CheckCall(call, resp.status(), "Upsert (retrying an Insert)");
    }
  });
  if (!st.ok()) return ExplainWriteRefusal(st);
  rows_inserted_ += static_cast<int64_t>(rows);
  return Status::Ok();
}

Status MilvusApplier::Insert(const std::string& db, const std::string& coll, const std::string& partition,
                             const milvus::proto::msg::InsertRequest& src, bool upsert) {
  if (upsert) {
    milvuspb::UpsertRequest req;
    CopyRowsInto(db, coll, src, &req);
    req.set_partition_name(partition);
    return SendRows(db, coll, req, src.num_rows());
  }
  milvuspb::InsertRequest req;
  CopyRowsInto(db, coll, src, &req);
  req.set_partition_name(partition);
  return SendRows(db, coll, req, src.num_rows());
}

Status MilvusApplier::Insert(const std::string& db, const std::string& coll, const std::string& partition,
                             milvus::proto::msg::InsertRequest&& src, bool upsert) {
  const uint64_t rows = src.num_rows();
  if (upsert) {
    milvuspb::UpsertRequest req;
    MoveRowsInto(db, coll, std::move(src), &req);
    req.set_partition_name(partition);
    return SendRows(db, coll, req, rows);
  }
  milvuspb::InsertRequest req;
  MoveRowsInto(db, coll, std::move(src), &req);
  req.set_partition_name(partition);
  return SendRows(db, coll, req, rows);
}

Status MilvusApplier::UpsertColumns(const std::string& db, const std::string& coll, const std::string& partition,
                                    std::vector<schemapb::FieldData>&& columns, int64_t rows) {
  milvuspb::UpsertRequest req;
  req.set_db_name(db);
  req.set_collection_name(coll);
  req.set_partition_name(partition);
  req.set_num_rows(static_cast<uint32_t>(rows));
  for (auto& col : columns) {
    if (IsUserColumn(col)) req.add_fields_data()->Swap(&col);
  }
  return SendRows(db, coll, req, static_cast<uint64_t>(rows));
}

Status MilvusApplier::Delete(const std::string& db, const std::string& coll, const std::string& partition,
                             const schemapb::IDs& ids, const std::string& pk_field) {
  const bool is_int = ids.has_int_id();
  const size_t n = is_int ? ids.int_id().data_size() : ids.str_id().data_size();
  for (size_t start = 0; start < n; start += kDeleteChunk) {
    size_t end = std::min(n, start + kDeleteChunk);
    std::string expr = pk_field + " in [";
    for (size_t i = start; i < end; ++i) {
      if (i > start) expr += ",";
      expr += is_int ? std::to_string(ids.int_id().data(static_cast<int>(i)))
                     : nlohmann::json(ids.str_id().data(static_cast<int>(i))).dump();
    }
    expr += "]";
    Status st = WithRetry("Delete from " + db + "." + coll, [&] {
      milvuspb::DeleteRequest req;
      req.set_db_name(db);
      req.set_collection_name(coll);
      req.set_partition_name(partition);
      req.set_expr(expr);
      milvuspb::MutationResult resp;
      CallContext ctx(client_, db);
      grpc::Status call = client_->stub()->Delete(ctx.get(), req, &resp);  // before reading resp.status()
      return client_->CheckCall(call, resp.status(), "Delete");
    });
    if (!st.ok()) return ExplainWriteRefusal(st);
    rows_deleted_ += static_cast<int64_t>(end - start);
  }
  return Status::Ok();
}

// Sends a replicate-channel request as it came (without its base), with retry. With
// `tolerate_missing`, "not found" counts as done (the thing is already gone).
template <typename Req>
Status MilvusApplier::Forward(const char* name, Req req, StubCall<Req> call, bool tolerate_missing) {
  const auto type = req.base().msg_type();
  req.clear_base();
  MarkReplicated(&req, type);
  Status st = WithRetry(std::string(name) + " " + req.db_name() + "." + req.collection_name(), [&] {
    commonpb::Status resp;
    CallContext ctx(client_, req.db_name());
    return client_->CheckCall((client_->stub()->*call)(ctx.get(), req, &resp), resp, name);
  });
  return st.ok() || (tolerate_missing && IsMissing(st)) ? Status::Ok() : st;
}

Status MilvusApplier::CreateIndex(milvuspb::CreateIndexRequest req) {
  return Forward("CreateIndex", std::move(req), &Stub::CreateIndex, false);
}
Status MilvusApplier::DropIndex(milvuspb::DropIndexRequest req) {
  return Forward("DropIndex", std::move(req), &Stub::DropIndex, true);
}
Status MilvusApplier::LoadCollection(milvuspb::LoadCollectionRequest req) {
  return Forward("LoadCollection", std::move(req), &Stub::LoadCollection, false);
}
Status MilvusApplier::ReleaseCollection(milvuspb::ReleaseCollectionRequest req) {
  return Forward("ReleaseCollection", std::move(req), &Stub::ReleaseCollection, true);
}
Status MilvusApplier::LoadPartitions(milvuspb::LoadPartitionsRequest req) {
  return Forward("LoadPartitions", std::move(req), &Stub::LoadPartitions, false);
}
Status MilvusApplier::ReleasePartitions(milvuspb::ReleasePartitionsRequest req) {
  return Forward("ReleasePartitions", std::move(req), &Stub::ReleasePartitions, true);
}

Status MilvusApplier::Flush(milvuspb::FlushRequest req) {
  req.clear_base();
  MarkReplicated(&req, commonpb::MsgType::Flush);
  return WithRetry("Flush " + req.db_name(), [&] {
    milvuspb::FlushResponse resp;
    CallContext ctx(client_, req.db_name());
    grpc::Status call = client_->stub()->Flush(ctx.get(), req, &resp);  // before reading resp.status()
    return client_->CheckCall(call, resp.status(), "Flush");
  });
}

}  // namespace cdc::target

namespace cdc::target {

namespace {

bool IsAliasMissing(const Status& st) { return IsMissing(st) || MessageHas(st, {"alias not exist", "alias not found"}); }

}  // namespace

template <typename Req>
Status MilvusApplier::Call(const std::string& what, const std::string& db, const Req& req, StubCall<Req> call) {
  const std::string rpc = what.substr(0, what.find(' '));
  return WithRetry(what, [&] {
    commonpb::Status resp;
    CallContext ctx(client_, db);
    grpc::Status st = (client_->stub()->*call)(ctx.get(), req, &resp);  // before reading resp
    return client_->CheckCall(st, resp, rpc);
  });
}

Status MilvusApplier::CreateAlias(const std::string& db, const std::string& coll, const std::string& alias) {
  milvuspb::CreateAliasRequest req;
  req.set_db_name(db);
  req.set_collection_name(coll);
  req.set_alias(alias);
  Status st = Call("CreateAlias " + db + "." + alias + " -> " + coll, db, req, &Stub::CreateAlias);
  if (!st.ok() && IsAlreadyExists(st)) return AlterAlias(db, coll, alias);
  return st;
}

Status MilvusApplier::AlterAlias(const std::string& db, const std::string& coll, const std::string& alias) {
  milvuspb::AlterAliasRequest req;
  req.set_db_name(db);
  req.set_collection_name(coll);
  req.set_alias(alias);
  Status st = Call("AlterAlias " + db + "." + alias + " -> " + coll, db, req, &Stub::AlterAlias);
  if (!st.ok() && IsAliasMissing(st) && MessageHas(st, {"alias"})) {
    milvuspb::CreateAliasRequest create;
    create.set_db_name(db);
    create.set_collection_name(coll);
    create.set_alias(alias);
    return Call("CreateAlias " + db + "." + alias + " -> " + coll, db, create, &Stub::CreateAlias);
  }
  return st;
}

Status MilvusApplier::DropAlias(const std::string& db, const std::string& alias) {
  milvuspb::DropAliasRequest req;
  req.set_db_name(db);
  req.set_alias(alias);
  Status st = Call("DropAlias " + db + "." + alias, db, req, &Stub::DropAlias);
  return st.ok() || IsAliasMissing(st) ? Status::Ok() : st;
}

Status MilvusApplier::RenameCollection(const std::string& db, const std::string& old_name, const std::string& new_db,
                                       const std::string& new_name) {
  milvuspb::RenameCollectionRequest req;
  req.set_db_name(db);
  req.set_oldname(old_name);
  req.set_newname(new_name);
  if (new_db != db) req.set_newdbname(new_db);
  return Call("RenameCollection " + db + "." + old_name + " -> " + new_db + "." + new_name, db, req,
              &Stub::RenameCollection);
}

Status MilvusApplier::AlterCollection(const std::string& db, const std::string& coll,
                                      const std::vector<std::pair<std::string, std::string>>& properties) {
  milvuspb::AlterCollectionRequest req;
  req.set_db_name(db);
  req.set_collection_name(coll);
  for (const auto& [k, v] : properties) {
    auto* kv = req.add_properties();
    kv->set_key(k);
    kv->set_value(v);
  }
  return Call("AlterCollection " + db + "." + coll, db, req, &Stub::AlterCollection);
}

StatusOr<milvuspb::DescribeCollectionResponse> MilvusApplier::DescribeCollection(const std::string& db,
                                                                                const std::string& name) {
  milvuspb::DescribeCollectionRequest req;
  req.set_db_name(db);
  req.set_collection_name(name);
  milvuspb::DescribeCollectionResponse resp;
  RETURN_IF_ERROR(Read("DescribeCollection " + db + "." + name, db, req, &Stub::DescribeCollection, &resp));
  return resp;
}

StatusOr<std::map<std::string, int64_t>> MilvusApplier::ShowPartitions(const std::string& db,
                                                                        const std::string& name) {
  milvuspb::ShowPartitionsRequest req;
  req.set_db_name(db);
  req.set_collection_name(name);
  milvuspb::ShowPartitionsResponse resp;
  RETURN_IF_ERROR(Read("ShowPartitions " + db + "." + name, db, req, &Stub::ShowPartitions, &resp));
  std::map<std::string, int64_t> out;
  for (int i = 0; i < resp.partition_names_size() && i < resp.partitionids_size(); ++i) {
    out[resp.partition_names(i)] = resp.partitionids(i);
  }
  return out;
}

Status MilvusApplier::CreateRole(const std::string& role) {
  milvuspb::CreateRoleRequest req;
  req.mutable_entity()->set_name(role);
  Status st = Call("CreateRole " + role, "", req, &Stub::CreateRole);
  return st.ok() || IsAlreadyExists(st) ? Status::Ok() : st;
}

Status MilvusApplier::DropRole(const std::string& role) {
  milvuspb::DropRoleRequest req;
  req.set_role_name(role);
  Status st = Call("DropRole " + role, "", req, &Stub::DropRole);
  return st.ok() || IsMissing(st) ? Status::Ok() : st;
}

Status MilvusApplier::OperateUserRole(const std::string& user, const std::string& role, bool add) {
  milvuspb::OperateUserRoleRequest req;
  req.set_username(user);
  req.set_role_name(role);
  req.set_type(add ? milvuspb::AddUserToRole : milvuspb::RemoveUserFromRole);
  Status st = Call(std::string("OperateUserRole ") + (add ? "add " : "remove ") + user + " / " + role, "", req,
                   &Stub::OperateUserRole);
  if (st.ok() || (add && IsAlreadyExists(st)) || (!add && IsMissing(st))) return Status::Ok();
  return st;
}

Status MilvusApplier::OperatePrivilege(const RbacGrant& g, bool grant_it) {
  milvuspb::OperatePrivilegeRequest req;
  auto* e = req.mutable_entity();
  e->mutable_role()->set_name(g.role);
  e->mutable_object()->set_name(g.object_type);
  e->set_object_name(g.object_name);
  e->set_db_name(g.db);
  e->mutable_grantor()->mutable_privilege()->set_name(g.privilege);
  req.set_type(grant_it ? milvuspb::Grant : milvuspb::Revoke);
  const std::string what = std::string("OperatePrivilege ") + (grant_it ? "grant " : "revoke ") + g.privilege +
                           " on " + g.object_type + " " + g.db + "." + g.object_name + " to " + g.role;
  Status st = Call(what, g.db, req, &Stub::OperatePrivilege);
  if (st.ok() || (grant_it && IsAlreadyExists(st)) || (!grant_it && IsMissing(st))) return Status::Ok();
  return st;
}

Status MilvusApplier::CreateCredential(const std::string& user, const std::string& password) {
  milvuspb::CreateCredentialRequest req;
  req.set_username(user);
  req.set_password(Base64Encode(password));
  Status st = Call("CreateCredential " + user, "", req, &Stub::CreateCredential);
  return st.ok() || IsAlreadyExists(st) ? Status::Ok() : st;
}

Status MilvusApplier::DeleteCredential(const std::string& user) {
  milvuspb::DeleteCredentialRequest req;
  req.set_username(user);
  Status st = Call("DeleteCredential " + user, "", req, &Stub::DeleteCredential);
  return st.ok() || IsMissing(st) ? Status::Ok() : st;
}

StatusOr<std::vector<std::string>> MilvusApplier::ListUsers() {
  milvuspb::ListCredUsersResponse resp;
  RETURN_IF_ERROR(Read("ListCredUsers", "", milvuspb::ListCredUsersRequest(), &Stub::ListCredUsers, &resp));
  return std::vector<std::string>(resp.usernames().begin(), resp.usernames().end());
}

StatusOr<std::map<std::string, std::vector<std::string>>> MilvusApplier::SelectRoles() {
  milvuspb::SelectRoleRequest req;
  req.set_include_user_info(true);
  milvuspb::SelectRoleResponse resp;
  RETURN_IF_ERROR(Read("SelectRole", "", req, &Stub::SelectRole, &resp));
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& r : resp.results()) {
    auto& users = out[r.role().name()];
    for (const auto& u : r.users()) users.push_back(u.name());
  }
  return out;
}

StatusOr<std::vector<RbacGrant>> MilvusApplier::SelectGrants(const std::string& role, const std::string& db) {
  milvuspb::SelectGrantRequest req;
  req.mutable_entity()->mutable_role()->set_name(role);
  req.mutable_entity()->set_db_name(db);
  milvuspb::SelectGrantResponse resp;
  RETURN_IF_ERROR(Read("SelectGrant " + role, db, req, &Stub::SelectGrant, &resp));
  std::vector<RbacGrant> out;
  for (const auto& e : resp.entities()) {
    out.push_back(RbacGrant{e.role().name(), e.object().name(), e.object_name(), e.db_name().empty() ? db : e.db_name(),
                            e.grantor().privilege().name()});
  }
  return out;
}

}  // namespace cdc::target

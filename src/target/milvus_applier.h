// MilvusApplier: applies replicated changes to a target Milvus with plain MilvusService
// calls (strategy "plain API": works against any 2.3+ target with common.ttMsgEnabled=true).
// Every call retries retriable failures with exponential backoff within the retry
// budget; what is left is returned as a Status naming the target and the operation.
// Owned by one task pipeline; not thread-safe (one applier thread per task).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "milvus.pb.h"
#include "msg.pb.h"
#include "schema.pb.h"
#include "target/milvus_client.h"
#include "util/status.h"

namespace cdc::target {

struct RetryPolicy {
  int max_attempts = 0;  // 0: unlimited (until stopped)
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
};

// One privilege of a role on an object, as the RBAC API names it.
struct RbacGrant {
  std::string role;
  std::string object_type;  // "Global", "Collection", "User"
  std::string object_name;
  std::string db;
  std::string privilege;  // e.g. "Search"
};

// What to create: the source collection, already renamed for the target.
struct CollectionSpec {
  std::string db_name;
  std::string name;
  milvus::proto::schema::CollectionSchema schema;  // user fields in source field-id order
  int32_t shards_num = 1;
  int32_t consistency_level = 0;
  std::vector<std::pair<std::string, std::string>> properties;
  int64_t num_partitions = 0;  // partition-key collections
};

// How rows reach the target: plain Insert/Delete (a writable target, ttMsgEnabled=true), or
// ReplicateMessage with the source's own messages and timestamps (a standby, ttMsgEnabled=false).
enum class WriteMode { kApi, kReplicate };
const char* WriteModeName(WriteMode mode);

class MilvusApplier {
 public:
  // `stopping` is polled between retries so a pause interrupts a long backoff.
  MilvusApplier(MilvusClient* client, RetryPolicy retry, const std::atomic<bool>* stopping);

  Status CreateDatabase(const std::string& db);
  Status DropDatabase(const std::string& db);
  StatusOr<std::vector<std::string>> ListDatabases();

  // Creates the collection with auto-id off (primary keys stay identical). If it exists,
  // checks that its schema matches and returns FailedPrecondition naming the first
  // difference otherwise.
  Status CreateCollection(const CollectionSpec& spec);
  Status DropCollection(const std::string& db, const std::string& name);
  StatusOr<bool> HasCollection(const std::string& db, const std::string& name);
  StatusOr<bool> HasPartition(const std::string& db, const std::string& coll, const std::string& partition);
  Status CreatePartition(const std::string& db, const std::string& coll, const std::string& partition);
  Status DropPartition(const std::string& db, const std::string& coll, const std::string& partition);

  // Writes the rows of a source insert message into `partition` (empty: none named, as a
  // partition-key collection requires). `upsert` replaces rows with the same primary keys
  // (used when re-reading after a restart). The request is built once, before any retry; the
  // rvalue form moves the columns out of `src` (a batch the caller gives up) instead of
  // copying them.
  Status Insert(const std::string& db, const std::string& coll, const std::string& partition,
                const milvus::proto::msg::InsertRequest& src, bool upsert);
  Status Insert(const std::string& db, const std::string& coll, const std::string& partition,
                milvus::proto::msg::InsertRequest&& src, bool upsert);
  // Upserts rows given as columns (a Query's output: every field, the dynamic one as $meta)
  // into `partition` (empty: none named). The columns are moved into the call.
  Status UpsertColumns(const std::string& db, const std::string& coll, const std::string& partition,
                       std::vector<milvus::proto::schema::FieldData>&& columns, int64_t rows);
  // Deletes by primary key (int64 or varchar), in chunks.
  Status Delete(const std::string& db, const std::string& coll, const std::string& partition,
                const milvus::proto::schema::IDs& ids, const std::string& pk_field);

  // Replicate-channel operations: the source request, renamed, sent as is.
  Status CreateIndex(milvus::proto::milvus::CreateIndexRequest req);
  Status DropIndex(milvus::proto::milvus::DropIndexRequest req);
  Status LoadCollection(milvus::proto::milvus::LoadCollectionRequest req);
  Status ReleaseCollection(milvus::proto::milvus::ReleaseCollectionRequest req);
  Status LoadPartitions(milvus::proto::milvus::LoadPartitionsRequest req);
  Status ReleasePartitions(milvus::proto::milvus::ReleasePartitionsRequest req);
  Status Flush(milvus::proto::milvus::FlushRequest req);

  // Aliases, rename and properties (etcd-only operations on the source).
  Status CreateAlias(const std::string& db, const std::string& coll, const std::string& alias);
  // Points `alias` at `coll`, creating it when the target does not have it.
  Status AlterAlias(const std::string& db, const std::string& coll, const std::string& alias);
  Status DropAlias(const std::string& db, const std::string& alias);
  Status RenameCollection(const std::string& db, const std::string& old_name, const std::string& new_db,
                          const std::string& new_name);
  Status AlterCollection(const std::string& db, const std::string& coll,
                         const std::vector<std::pair<std::string, std::string>>& properties);
  StatusOr<milvus::proto::milvus::DescribeCollectionResponse> DescribeCollection(const std::string& db,
                                                                               const std::string& name);
  // The collection's partitions: name -> id.
  StatusOr<std::map<std::string, int64_t>> ShowPartitions(const std::string& db, const std::string& name);

  // Roles, users and grants. Creating what exists and removing what is gone count as done.
  Status CreateRole(const std::string& role);
  Status DropRole(const std::string& role);
  Status OperateUserRole(const std::string& user, const std::string& role, bool add);
  Status OperatePrivilege(const RbacGrant& grant, bool grant_it);
  // `password` in clear; it is sent base64-encoded, as the SDKs do, and never logged.
  Status CreateCredential(const std::string& user, const std::string& password);
  Status DeleteCredential(const std::string& user);
  StatusOr<std::vector<std::string>> ListUsers();
  // Every role with the users bound to it.
  StatusOr<std::map<std::string, std::vector<std::string>>> SelectRoles();
  // The grants of `role` in database `db`.
  StatusOr<std::vector<RbacGrant>> SelectGrants(const std::string& role, const std::string& db);

  // Asks the target which writes it takes, writing nothing: a ReplicateMessage without a channel
  // is refused with code 1900 by a ttMsgEnabled=true target (-> kApi) and with 1100 "invalid
  // channel name" by a standby (-> kReplicate); a target without the RPC (before 2.3.2) is kApi.
  StatusOr<WriteMode> DetectWriteMode();
  // Sends serialized msgstream messages (msgpb Insert/Delete/TimeTick/...) to one physical
  // channel of a standby target, in order, with retry. `begin_ts`/`end_ts` bound their
  // timestamps. Any refusal means not (fully) written: retry the whole request.
  Status ReplicateMessage(const std::string& channel, uint64_t begin_ts, uint64_t end_ts,
                          std::vector<std::string>&& msgs);
  // Standby targets: from now on DDL calls carry base.replicateInfo{isReplicate: true,
  // msgTimestamp: ts}, the source's time of the operation; 0 sends none (plain calls).
  void set_replicate_ts(uint64_t ts) { replicate_ts_ = ts; }
  uint64_t replicate_ts() const { return replicate_ts_; }

  // Called (on the calling thread) with each failure a retry absorbs, e.g. for `get`.
  void set_on_retry(std::function<void(const Status&)> cb) { on_retry_ = std::move(cb); }

  // Rows and operations applied so far (for metrics).
  int64_t rows_inserted() const { return rows_inserted_; }
  int64_t rows_deleted() const { return rows_deleted_; }

 private:
  // Runs `call` until it succeeds, fails with a non-retriable error, the budget is spent
  // or the task stops.
  Status WithRetry(const std::string& what, const std::function<Status()>& call);
  // Sends a built milvus.InsertRequest or milvus.UpsertRequest of `rows` rows, with retry.
  template <typename Req>
  Status SendRows(const std::string& db, const std::string& coll, const Req& req, uint64_t rows);
  template <typename Req>
  using StubCall = grpc::Status (milvus::proto::milvus::MilvusService::Stub::*)(grpc::ClientContext*, const Req&,
                                                                              milvus::proto::common::Status*);
  template <typename Req>
  Status Forward(const char* name, Req req, StubCall<Req> call, bool tolerate_missing);
  // One call answered by a common.Status, with retry; `what` names it in messages.
  template <typename Req>
  Status Call(const std::string& what, const std::string& db, const Req& req, StubCall<Req> call);
  // One call whose response carries a status, with retry; `resp` holds the last answer.
  template <typename Req, typename Resp>
  using ReadCall = grpc::Status (milvus::proto::milvus::MilvusService::Stub::*)(grpc::ClientContext*, const Req&, Resp*);
  template <typename Req, typename Resp>
  Status Read(const std::string& what, const std::string& db, const Req& req, ReadCall<Req, Resp> call, Resp* resp);

  // Sets base.replicateInfo on a DDL request when replicate_ts_ is set.
  template <typename Req>
  void MarkReplicated(Req* req, milvus::proto::common::MsgType type) const;

  MilvusClient* const client_;
  const RetryPolicy retry_;
  uint64_t replicate_ts_ = 0;
  const std::atomic<bool>* const stopping_;
  std::function<void(const Status&)> on_retry_;
  std::atomic<int64_t> rows_inserted_{0};  // inserts may be sent from several threads
  std::atomic<int64_t> rows_deleted_{0};
};

// The target call for the rows of a source insert: every user column (and the dynamic field)
// of `src`, without RowID and Timestamp, into `db`.`coll`. Req is milvus.InsertRequest or
// milvus.UpsertRequest. MoveRowsInto takes the columns out of `src` instead of copying them.
template <typename Req>
void CopyRowsInto(const std::string& db, const std::string& coll, const milvus::proto::msg::InsertRequest& src,
                  Req* out);
template <typename Req>
void MoveRowsInto(const std::string& db, const std::string& coll, milvus::proto::msg::InsertRequest&& src, Req* out);

// True for errors worth retrying (target down, overloaded, deadline, rate limited).
bool IsRetriable(const Status& st);

// Explains a target that refuses plain writes because of common.ttMsgEnabled=false.
Status ExplainWriteRefusal(const Status& st);

// Compares two schemas field by field (names, order, types, dim/max_length, primary
// key, dynamic field); returns an empty string when they match, else the first difference. An
// ARRAY element max_length the target does not report (milvus-lite 3.2.2) is not compared.
std::string SchemaDifference(const milvus::proto::schema::CollectionSchema& source,
                             const milvus::proto::schema::CollectionSchema& target);

}  // namespace cdc::target

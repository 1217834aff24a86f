// Decoders: the bytes of one source log message -> an Event (decode/event.h), plus helpers to
// read primary keys and names out of decoded events. Pure functions over their arguments: no
// I/O, no state, safe to call from any thread.
//
// Wire format (milvus-wire.md §5.2): one Kafka record = the bare protobuf serialization of one
// request whose field 1 is common.MsgBase, so every payload parses as common.MsgHeader; the
// header's base.msg_type selects the concrete message (msgpb.* on DML channels, milvuspb.* on
// the replicate channel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "decode/event.h"
#include "util/status.h"

namespace milvus::proto::msg {
class InsertRequest;
class DeleteRequest;
}  // namespace milvus::proto::msg

namespace cdc::decode {

// Decodes one message read at `where` (channel and offset; where.timestamp is ignored).
//
// The result's position copies channel and offset and carries timestamp = end_ts. Timestamps:
// Insert/Delete begin_ts/end_ts = min/max of timestamps[] (base.timestamp only if that list is
// empty: a 2.3 upsert's Insert has base.timestamp 0), every other type base.timestamp.
//
// A msg_type this decoder does not parse (IsDecodedType false) is NOT an error: the Event keeps
// msg_type, msg_id and base.timestamp, with payload == nullptr; callers count and skip it.
// Bytes that do not parse as the header or as the concrete type, or carry no MsgBase, are an
// error (kInternal) naming the channel and offset.
StatusOr<Event> DecodeMessage(std::string_view bytes, const Position& where);

// True for the msg types DecodeMessage parses into a payload:
//   DML channels: Insert, Delete, TimeTick, CreateCollection, DropCollection, CreatePartition,
//                 DropPartition (msgpb.*);
//   replicate channel: CreateDatabase, DropDatabase, AlterDatabase, CreateIndex, DropIndex,
//                 AlterIndex, LoadCollection, ReleaseCollection, LoadPartitions,
//                 ReleasePartitions, Flush, Create/Delete/UpdateCredential, CreateRole, DropRole,
//                 OperateUserRole, OperatePrivilege, OperatePrivilegeV2, Create/Drop/
//                 OperatePrivilegeGroup (milvuspb.*Request).
bool IsDecodedType(int32_t msg_type);

// The decoded payload as its concrete type, or nullptr when absent or of another type.
template <typename T>
const T* PayloadAs(const Event& event) {
  return dynamic_cast<const T*>(event.payload.get());
}

// Primary keys of an Insert or Delete, in row order: int64 or VarChar.
using PrimaryKeys = std::variant<std::vector<int64_t>, std::vector<std::string>>;

size_t PrimaryKeyCount(const PrimaryKeys& pks);
// "[1, 2, 3, ... (+17)]" / "["a", "b"]": at most `max_shown` keys, for logs and inspect.
std::string FormatPrimaryKeys(const PrimaryKeys& pks, size_t max_shown);

// The primary-key column of an insert: the fields_data entry with field_id == pk_field_id
// (source collections number user fields from 100; the pk is whichever the schema marks).
// Errors: no such column, a column that is neither Int64 nor VarChar, or a column whose length
// differs from num_rows.
StatusOr<PrimaryKeys> InsertPrimaryKeys(const milvus::proto::msg::InsertRequest& req, int64_t pk_field_id);
// The same, selecting the column by field name.
StatusOr<PrimaryKeys> InsertPrimaryKeysByName(const milvus::proto::msg::InsertRequest& req,
                                              std::string_view field_name);
// primary_keys, or the deprecated int64_primary_keys when primary_keys is unset.
StatusOr<PrimaryKeys> DeletePrimaryKeys(const milvus::proto::msg::DeleteRequest& req);
// InsertPrimaryKeys for an Insert event, DeletePrimaryKeys for a Delete event (pk_field_id is
// then unused); an error for any other event or a missing payload.
StatusOr<PrimaryKeys> PrimaryKeysOf(const Event& event, int64_t pk_field_id);

// Names a replicate-channel event refers to, for routing. Flush names several collections and
// Load/ReleasePartitions several partitions (Event's single name fields stay empty for those);
// otherwise the event's own non-empty collection_name / partition_name, if any.
std::vector<std::string> CollectionNamesOf(const Event& event);
std::vector<std::string> PartitionNamesOf(const Event& event);

// "channel@offset": how decode errors and logs name a message.
std::string DescribePosition(const Position& where);

}  // namespace cdc::decode

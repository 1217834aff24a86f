#include "decode/decoder.h"

#include <algorithm>
#include <climits>
#include <memory>
#include <utility>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "common.pb.h"
#include "milvus.pb.h"
#include "msg.pb.h"
#include "schema.pb.h"

namespace cdc::decode {

namespace {

namespace common = milvus::proto::common;
namespace msgpb = milvus::proto::msg;
namespace milvuspb = milvus::proto::milvus;
namespace schemapb = milvus::proto::schema;

Status ParseError(const Position& where, const std::string& what) {
  return Internal("message at " + DescribePosition(where) + ": " + what);
}

// Parses `bytes` as T into a fresh message, or an error naming the position.
template <typename T>
StatusOr<std::shared_ptr<T>> Parse(std::string_view bytes, const Position& where) {
  auto msg = std::make_shared<T>();
  if (!msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return ParseError(where, "bytes do not parse as " + T::descriptor()->full_name() + " (" +
                                 std::to_string(bytes.size()) + " bytes)");
  }
  return msg;
}

// Reads the common.MsgBase (field 1) of a serialized request, as parsing it as common.MsgHeader
// would, without copying the other fields: MsgHeader would keep them (an insert's rows) in its
// unknown-field set. They are skipped, checked only for being well-formed. False when the bytes
// are not a valid message; *has_base tells whether field 1 was there.
bool ParseHeaderBase(std::string_view bytes, common::MsgBase* base, bool* has_base) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  *has_base = false;
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.CurrentPosition() == static_cast<int>(bytes.size());  // end, or a bad tag
    if (WireFormatLite::GetTagFieldNumber(tag) == 1 &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      int length = 0;
      std::string field;
      if (!in.ReadVarintSizeAsInt(&length) || !in.ReadString(&field, length) || !base->MergeFromString(field)) {
        return false;
      }
      *has_base = true;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

// DML timestamps: min/max of the per-row list, else the header's.
template <typename Repeated>
void SetDmlTimestamps(const Repeated& timestamps, uint64_t base_ts, Event& ev) {
  if (timestamps.empty()) {
    ev.begin_ts = ev.end_ts = base_ts;
    return;
  }
  auto [lo, hi] = std::minmax_element(timestamps.begin(), timestamps.end());
  ev.begin_ts = *lo;
  ev.end_ts = *hi;
}

void FillInsert(const msgpb::InsertRequest& m, Event& ev) {
  SetDmlTimestamps(m.timestamps(), m.base().timestamp(), ev);
  ev.vchannel = m.shardname();
  ev.collection_id = m.collectionid();
  ev.partition_id = m.partitionid();
  ev.db_name = m.db_name();
  ev.collection_name = m.collection_name();
  ev.partition_name = m.partition_name();
  ev.row_count = static_cast<int64_t>(m.num_rows());
}

void FillDelete(const msgpb::DeleteRequest& m, Event& ev) {
  SetDmlTimestamps(m.timestamps(), m.base().timestamp(), ev);
  ev.vchannel = m.shardname();
  ev.collection_id = m.collectionid();
  ev.partition_id = m.partitionid();
  ev.db_name = m.db_name();
  ev.collection_name = m.collection_name();
  ev.partition_name = m.partition_name();
  ev.row_count = m.num_rows();
}

void FillCreateCollection(const msgpb::CreateCollectionRequest& m, Event& ev) {
  ev.collection_id = m.collectionid();
  ev.partition_id = m.partitionid();
  ev.db_name = m.db_name();
  ev.collection_name = m.collectionname();
  ev.partition_name = m.partitionname();
  // One copy is broadcast per pchannel: the shard on the channel it was read from.
  for (int i = 0; i < m.physicalchannelnames_size() && i < m.virtualchannelnames_size(); ++i) {
    if (m.physicalchannelnames(i) == ev.position.channel) {
      ev.vchannel = m.virtualchannelnames(i);
      break;
    }
  }
}

void FillDropCollection(const msgpb::DropCollectionRequest& m, Event& ev) {
  ev.collection_id = m.collectionid();
  ev.db_name = m.db_name();
  ev.collection_name = m.collectionname();
}

template <typename T>  // msgpb.CreatePartitionRequest / DropPartitionRequest
void FillPartitionDdl(const T& m, Event& ev) {
  ev.collection_id = m.collectionid();
  ev.partition_id = m.partitionid();
  ev.db_name = m.db_name();
  ev.collection_name = m.collection_name();
  ev.partition_name = m.partition_name();
}

// Replicate-channel requests carrying db_name and collection_name.
template <typename T>
void FillDbCollection(const T& m, Event& ev) {
  ev.db_name = m.db_name();
  ev.collection_name = m.collection_name();
}

template <typename T>
void FillDbOnly(const T& m, Event& ev) {
  ev.db_name = m.db_name();
}

template <typename T>
void FillNothing(const T&, Event&) {}

// Parses the concrete type, stores it as the payload and lets `fill` copy its fields.
template <typename T, typename Fill>
Status DecodeAs(std::string_view bytes, const Position& where, Event& ev, Fill fill) {
  auto parsed = Parse<T>(bytes, where);
  if (!parsed.ok()) return parsed.status();
  fill(**parsed, ev);
  ev.payload = std::move(parsed).value();
  return Status::Ok();
}

// Dispatch on msg_type. Returns false (and touches nothing) for a type not decoded here.
bool DecodeByType(int32_t type, std::string_view bytes, const Position& where, Event& ev, Status& st) {
  switch (static_cast<MsgType>(type)) {
    // ---- DML channels
    case MsgType::kInsert:
      st = DecodeAs<msgpb::InsertRequest>(bytes, where, ev, FillInsert);
      return true;
    case MsgType::kDelete:
      st = DecodeAs<msgpb::DeleteRequest>(bytes, where, ev, FillDelete);
      return true;
    case MsgType::kTimeTick:
      st = DecodeAs<msgpb::TimeTickMsg>(bytes, where, ev, FillNothing<msgpb::TimeTickMsg>);
      return true;
    case MsgType::kCreateCollection:
      st = DecodeAs<msgpb::CreateCollectionRequest>(bytes, where, ev, FillCreateCollection);
      return true;
    case MsgType::kDropCollection:
      st = DecodeAs<msgpb::DropCollectionRequest>(bytes, where, ev, FillDropCollection);
      return true;
    case MsgType::kCreatePartition:
      st = DecodeAs<msgpb::CreatePartitionRequest>(bytes, where, ev,
                                                   FillPartitionDdl<msgpb::CreatePartitionRequest>);
      return true;
    case MsgType::kDropPartition:
      st = DecodeAs<msgpb::DropPartitionRequest>(bytes, where, ev,
                                                 FillPartitionDdl<msgpb::DropPartitionRequest>);
      return true;

    // ---- replicate channel: databases
    case MsgType::kCreateDatabase:
      st = DecodeAs<milvuspb::CreateDatabaseRequest>(bytes, where, ev,
                                                     FillDbOnly<milvuspb::CreateDatabaseRequest>);
      return true;
    case MsgType::kDropDatabase:
      st = DecodeAs<milvuspb::DropDatabaseRequest>(bytes, where, ev,
                                                   FillDbOnly<milvuspb::DropDatabaseRequest>);
      return true;
    case MsgType::kAlterDatabase:
      st = DecodeAs<milvuspb::AlterDatabaseRequest>(bytes, where, ev,
                                                    FillDbOnly<milvuspb::AlterDatabaseRequest>);
      return true;

    // ---- replicate channel: indexes, load state, flush
    case MsgType::kCreateIndex:
      st = DecodeAs<milvuspb::CreateIndexRequest>(bytes, where, ev,
                                                  FillDbCollection<milvuspb::CreateIndexRequest>);
      return true;
    case MsgType::kDropIndex:
      st = DecodeAs<milvuspb::DropIndexRequest>(bytes, where, ev,
                                                FillDbCollection<milvuspb::DropIndexRequest>);
      return true;
    case MsgType::kAlterIndex:
      st = DecodeAs<milvuspb::AlterIndexRequest>(bytes, where, ev,
                                                 FillDbCollection<milvuspb::AlterIndexRequest>);
      return true;
    case MsgType::kLoadCollection:
      st = DecodeAs<milvuspb::LoadCollectionRequest>(bytes, where, ev,
                                                     FillDbCollection<milvuspb::LoadCollectionRequest>);
      return true;
    case MsgType::kReleaseCollection:
      st = DecodeAs<milvuspb::ReleaseCollectionRequest>(
          bytes, where, ev, FillDbCollection<milvuspb::ReleaseCollectionRequest>);
      return true;
    case MsgType::kLoadPartitions:
      st = DecodeAs<milvuspb::LoadPartitionsRequest>(bytes, where, ev,
                                                     FillDbCollection<milvuspb::LoadPartitionsRequest>);
      return true;
    case MsgType::kReleasePartitions:
      st = DecodeAs<milvuspb::ReleasePartitionsRequest>(
          bytes, where, ev, FillDbCollection<milvuspb::ReleasePartitionsRequest>);
      return true;
    case MsgType::kFlush:
      st = DecodeAs<milvuspb::FlushRequest>(bytes, where, ev, FillDbOnly<milvuspb::FlushRequest>);
      return true;

    // ---- replicate channel: RBAC (late 2.4 / 2.5 sources)
    case MsgType::kCreateCredential:
      st = DecodeAs<milvuspb::CreateCredentialRequest>(bytes, where, ev,
                                                       FillNothing<milvuspb::CreateCredentialRequest>);
      return true;
    case MsgType::kDeleteCredential:
      st = DecodeAs<milvuspb::DeleteCredentialRequest>(bytes, where, ev,
                                                       FillNothing<milvuspb::DeleteCredentialRequest>);
      return true;
    case MsgType::kUpdateCredential:
      st = DecodeAs<milvuspb::UpdateCredentialRequest>(bytes, where, ev,
                                                       FillNothing<milvuspb::UpdateCredentialRequest>);
      return true;
    case MsgType::kCreateRole:
      st = DecodeAs<milvuspb::CreateRoleRequest>(bytes, where, ev,
                                                 FillNothing<milvuspb::CreateRoleRequest>);
      return true;
    case MsgType::kDropRole:
      st = DecodeAs<milvuspb::DropRoleRequest>(bytes, where, ev, FillNothing<milvuspb::DropRoleRequest>);
      return true;
    case MsgType::kOperateUserRole:
      st = DecodeAs<milvuspb::OperateUserRoleRequest>(bytes, where, ev,
                                                      FillNothing<milvuspb::OperateUserRoleRequest>);
      return true;
    case MsgType::kOperatePrivilege:
      st = DecodeAs<milvuspb::OperatePrivilegeRequest>(
          bytes, where, ev, [](const milvuspb::OperatePrivilegeRequest& m, Event& e) {
            e.db_name = m.entity().db_name();
            if (m.entity().object().name() == "Collection") e.collection_name = m.entity().object_name();
          });
      return true;
    case MsgType::kOperatePrivilegeV2:
      st = DecodeAs<milvuspb::OperatePrivilegeV2Request>(
          bytes, where, ev, FillDbCollection<milvuspb::OperatePrivilegeV2Request>);
      return true;
    case MsgType::kCreatePrivilegeGroup:
      st = DecodeAs<milvuspb::CreatePrivilegeGroupRequest>(
          bytes, where, ev, FillNothing<milvuspb::CreatePrivilegeGroupRequest>);
      return true;
    case MsgType::kDropPrivilegeGroup:
      st = DecodeAs<milvuspb::DropPrivilegeGroupRequest>(
          bytes, where, ev, FillNothing<milvuspb::DropPrivilegeGroupRequest>);
      return true;
    case MsgType::kOperatePrivilegeGroup:
      st = DecodeAs<milvuspb::OperatePrivilegeGroupRequest>(
          bytes, where, ev, FillNothing<milvuspb::OperatePrivilegeGroupRequest>);
      return true;

    default:
      return false;
  }
}

// Reads a scalar pk column (LongArray or StringArray) into PrimaryKeys.
StatusOr<PrimaryKeys> PkColumn(const schemapb::FieldData& f, uint64_t num_rows) {
  PrimaryKeys out;
  if (f.scalars().has_long_data()) {
    const auto& d = f.scalars().long_data().data();
    out = std::vector<int64_t>(d.begin(), d.end());
  } else if (f.scalars().has_string_data()) {
    const auto& d = f.scalars().string_data().data();
    out = std::vector<std::string>(d.begin(), d.end());
  } else {
    return InvalidArgument("field '" + f.field_name() + "' (id " + std::to_string(f.field_id()) +
                           ") is not an Int64 or VarChar column");
  }
  if (PrimaryKeyCount(out) != num_rows) {
    return InvalidArgument("primary-key column '" + f.field_name() + "' has " +
                           std::to_string(PrimaryKeyCount(out)) + " values for " +
                           std::to_string(num_rows) + " rows");
  }
  return out;
}

}  // namespace

std::string DescribePosition(const Position& where) {
  return where.channel + "@" + std::to_string(where.offset);
}

StatusOr<Event> DecodeMessage(std::string_view bytes, const Position& where) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return ParseError(where, "message of " + std::to_string(bytes.size()) + " bytes is too large");
  }
  common::MsgBase base;
  bool has_base = false;
  if (!ParseHeaderBase(bytes, &base, &has_base)) {
    return ParseError(where, "bytes do not parse as common.MsgHeader (" + std::to_string(bytes.size()) +
                                 " bytes)");
  }
  if (!has_base) {
    return ParseError(where, "no MsgBase (" + std::to_string(bytes.size()) + " bytes)");
  }

  Event ev;
  ev.msg_type = static_cast<int32_t>(base.msg_type());
  ev.msg_id = base.msgid();
  ev.begin_ts = ev.end_ts = base.timestamp();
  ev.position.channel = where.channel;
  ev.position.offset = where.offset;
  ev.payload_bytes = bytes.size();

  Status st;
  if (DecodeByType(ev.msg_type, bytes, ev.position, ev, st) && !st.ok()) return st;
  ev.position.timestamp = ev.end_ts;
  return ev;
}

bool IsDecodedType(int32_t msg_type) {
  // Probe the dispatcher with an empty message: every known type parses from zero bytes.
  Event ev;
  Status st;
  return DecodeByType(msg_type, std::string_view(), Position(), ev, st);
}

size_t PrimaryKeyCount(const PrimaryKeys& pks) {
  return std::visit([](const auto& v) { return v.size(); }, pks);
}

std::string FormatPrimaryKeys(const PrimaryKeys& pks, size_t max_shown) {
  std::string out = "[";
  size_t n = PrimaryKeyCount(pks);
  size_t shown = std::min(n, max_shown);
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    if (const auto* ints = std::get_if<std::vector<int64_t>>(&pks)) {
      out += std::to_string((*ints)[i]);
    } else {
      out += "\"" + std::get<std::vector<std::string>>(pks)[i] + "\"";
    }
  }
  if (shown < n) out += (shown > 0 ? ", ... (+" : "... (+") + std::to_string(n - shown) + ")";
  return out + "]";
}

StatusOr<PrimaryKeys> InsertPrimaryKeys(const msgpb::InsertRequest& req, int64_t pk_field_id) {
  for (const auto& f : req.fields_data()) {
    if (f.field_id() == pk_field_id) return PkColumn(f, req.num_rows());
  }
  return NotFound("insert into collection " + std::to_string(req.collectionid()) + " has no field id " +
                  std::to_string(pk_field_id));
}

StatusOr<PrimaryKeys> InsertPrimaryKeysByName(const msgpb::InsertRequest& req, std::string_view field_name) {
  for (const auto& f : req.fields_data()) {
    if (f.field_name() == field_name) return PkColumn(f, req.num_rows());
  }
  return NotFound("insert into collection " + std::to_string(req.collectionid()) + " has no field '" +
                  std::string(field_name) + "'");
}

StatusOr<PrimaryKeys> DeletePrimaryKeys(const msgpb::DeleteRequest& req) {
  if (req.has_primary_keys()) {
    if (req.primary_keys().has_int_id()) {
      const auto& d = req.primary_keys().int_id().data();
      return PrimaryKeys(std::vector<int64_t>(d.begin(), d.end()));
    }
    if (req.primary_keys().has_str_id()) {
      const auto& d = req.primary_keys().str_id().data();
      return PrimaryKeys(std::vector<std::string>(d.begin(), d.end()));
    }
  }
  const auto& d = req.int64_primary_keys();
  return PrimaryKeys(std::vector<int64_t>(d.begin(), d.end()));
}

StatusOr<PrimaryKeys> PrimaryKeysOf(const Event& event, int64_t pk_field_id) {
  if (const auto* ins = PayloadAs<msgpb::InsertRequest>(event)) {
    auto pks = InsertPrimaryKeys(*ins, pk_field_id);
    if (!pks.ok()) return pks.status().WithContext("message at " + DescribePosition(event.position));
    return pks;
  }
  if (const auto* del = PayloadAs<msgpb::DeleteRequest>(event)) return DeletePrimaryKeys(*del);
  return InvalidArgument("message at " + DescribePosition(event.position) + " is " +
                         MsgTypeName(event.msg_type) + ", not a decoded Insert or Delete");
}

std::vector<std::string> CollectionNamesOf(const Event& event) {
  if (const auto* flush = PayloadAs<milvuspb::FlushRequest>(event)) {
    return {flush->collection_names().begin(), flush->collection_names().end()};
  }
  if (event.collection_name.empty()) return {};
  return {event.collection_name};
}

std::vector<std::string> PartitionNamesOf(const Event& event) {
  if (const auto* load = PayloadAs<milvuspb::LoadPartitionsRequest>(event)) {
    return {load->partition_names().begin(), load->partition_names().end()};
  }
  if (const auto* release = PayloadAs<milvuspb::ReleasePartitionsRequest>(event)) {
    return {release->partition_names().begin(), release->partition_names().end()};
  }
  if (event.partition_name.empty()) return {};
  return {event.partition_name};
}

}  // namespace cdc::decode

// The `replicate` write mode against an in-process fake standby target (a MilvusService with
// common.ttMsgEnabled=false), reached through a real MilvusClient and MilvusApplier:
//   - the write-mode probe (DetectWriteMode);
//   - what ReplicateMessage carries: the source's own messages with the target's collection id,
//     partition id, shard and names, everything else unchanged;
//   - data -> checkpoint -> time tick, and what a failure in between leaves out;
//   - how ticks advance (min over the source channels feeding a target channel, throttled when
//     idle, never past a split item, never backwards), and the paused task's StandbyTickSink;
//   - base.replicateInfo on DDL calls, and ChangeApplier driving it all for a collection's life.
#include "pipeline/standby_writer.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "decode/event.h"
#include "milvus.grpc.pb.h"
#include "msg.pb.h"
#include "pipeline/change_applier.h"
#include "pipeline/name_mapper.h"
#include "source/catalog.h"
#include "source/log_reader.h"
#include "target/milvus_applier.h"
#include "target/milvus_client.h"
#include "util/metrics.h"

namespace cdc::pipeline {
namespace {

namespace milvuspb = milvus::proto::milvus;
namespace commonpb = milvus::proto::common;
namespace msgpb = milvus::proto::msg;
namespace schemapb = milvus::proto::schema;
using google::protobuf::util::MessageDifferencer;
using std::chrono::milliseconds;

uint64_t Ts(uint64_t ms) { return decode::ComposeTs(ms, 0); }

commonpb::MsgType TypeOf(const std::string& msg) {
  commonpb::MsgHeader h;
  if (!h.ParseFromString(msg)) return commonpb::MsgType::Undefined;
  return h.base().msg_type();
}

// One ReplicateMessage (with a channel) the fake took.
struct Replicated {
  std::string channel;
  uint64_t begin_ts = 0, end_ts = 0;
  std::vector<std::string> msgs;
  bool is_replicate = false;  // the request's own base.replicateInfo.isReplicate
};

// One DDL call the fake took, with what its base carried.
struct Ddl {
  std::string method, db, collection, partition;
  bool has_replicate_info = false;
  bool is_replicate = false;
  uint64_t msg_timestamp = 0;
  commonpb::MsgType msg_type = commonpb::MsgType::Undefined;
};

// The fake standby: collections with ids, channels and partitions; ReplicateMessage recorded per
// request; DDL calls recorded with their base; one ordered log of everything (the tests add
// their checkpoint writes to it) to check what happened before what.
class FakeStandby final : public milvuspb::MilvusService::Service {
 public:
  enum class Probe { kStandby, kWritable, kUnimplemented, kOtherError, kGrpcError, kAccepted };
  struct Collection {
    int64_t id = 0;
    std::vector<std::string> vchannels, pchannels;
    std::map<std::string, int64_t> partitions;
    std::string schema;  // serialized CollectionSchema
  };

  void set_probe(Probe p) { probe_ = p; }
  // While set, ReplicateMessage to a channel is refused with 1303 (and nothing is recorded).
  void set_refuse(bool refuse) { refuse_ = refuse; }
  // Collection `name` created by CreateCollection gets these pchannels, one per shard.
  void Place(const std::string& name, std::vector<std::string> pchannels) {
    std::lock_guard<std::mutex> lock(mu_);
    placement_[name] = std::move(pchannels);
  }
  void Add(const std::string& db, const std::string& name, Collection c) {
    std::lock_guard<std::mutex> lock(mu_);
    collections_[db + "." + name] = std::move(c);
  }
  void AddPartition(const std::string& db, const std::string& name, const std::string& partition, int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    collections_[db + "." + name].partitions[partition] = id;
  }
  std::optional<Collection> Get(const std::string& db, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find(db + "." + name);
    if (it == collections_.end()) return std::nullopt;
    return it->second;
  }
  void Note(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(std::move(what));
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  std::vector<Replicated> replicated() {
    std::lock_guard<std::mutex> lock(mu_);
    return replicated_;
  }
  std::vector<Ddl> ddl() {
    std::lock_guard<std::mutex> lock(mu_);
    return ddl_;
  }
  // Probes: ReplicateMessage calls without a channel, with how many messages they carried.
  std::vector<int> probes() {
    std::lock_guard<std::mutex> lock(mu_);
    return probes_;
  }
  // The timestamps of the ticks sent to `channel`, in order.
  std::vector<uint64_t> ticks(const std::string& channel) {
    std::vector<uint64_t> out;
    for (const auto& r : replicated()) {
      if (r.channel != channel) continue;
      for (const auto& m : r.msgs) {
        msgpb::TimeTickMsg tick;
        if (TypeOf(m) == commonpb::MsgType::TimeTick && tick.ParseFromString(m)) out.push_back(tick.base().timestamp());
      }
    }
    return out;
  }

  grpc::Status Connect(grpc::ServerContext*, const milvuspb::ConnectRequest*, milvuspb::ConnectResponse*) override {
    return grpc::Status::OK;
  }

  grpc::Status ReplicateMessage(grpc::ServerContext*, const milvuspb::ReplicateMessageRequest* req,
                                milvuspb::ReplicateMessageResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (req->channel_name().empty()) {  // as the 2.3.5 proxy checks: mode first, then the channel
      probes_.push_back(req->msgs_size());
      switch (probe_.load()) {
        case Probe::kWritable:
          resp->mutable_status()->set_code(1900);
          resp->mutable_status()->set_reason("deny to use the replicate message in the normal instance");
          return grpc::Status::OK;
        case Probe::kStandby:
          resp->mutable_status()->set_code(1100);
          resp->mutable_status()->set_reason(
              "invalid channel name for the replicate message request: invalid parameter");
          return grpc::Status::OK;
        case Probe::kUnimplemented:
          return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method ReplicateMessage");
        case Probe::kOtherError:
          resp->mutable_status()->set_code(65535);
          resp->mutable_status()->set_reason("unexpected error: the proxy broke");
          return grpc::Status::OK;
        case Probe::kGrpcError:
          return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no privilege for ReplicateMessage");
        case Probe::kAccepted:
          return grpc::Status::OK;
      }
    }
    if (refuse_) {
      resp->mutable_status()->set_code(1303);
      resp->mutable_status()->set_reason("deny to write the message to mq");
      return grpc::Status::OK;
    }
    Replicated r;
    r.channel = req->channel_name();
    r.begin_ts = req->begints();
    r.end_ts = req->endts();
    r.msgs.assign(req->msgs().begin(), req->msgs().end());
    r.is_replicate = req->base().replicateinfo().isreplicate();
    std::string entry = "replicate " + r.channel;
    for (const auto& m : r.msgs) {
      const commonpb::MsgType type = TypeOf(m);
      entry += " " + commonpb::MsgType_Name(type);
      msgpb::TimeTickMsg tick;
      if (type == commonpb::MsgType::TimeTick && tick.ParseFromString(m)) {
        entry += "@" + std::to_string(tick.base().timestamp());
      }
    }
    log_.push_back(entry);
    replicated_.push_back(std::move(r));
    return grpc::Status::OK;
  }

  grpc::Status DescribeCollection(grpc::ServerContext*, const milvuspb::DescribeCollectionRequest* req,
                                  milvuspb::DescribeCollectionResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find(req->db_name() + "." + req->collection_name());
    if (it == collections_.end()) {
      NotFound(req->collection_name(), resp->mutable_status());
      return grpc::Status::OK;
    }
    resp->set_collectionid(it->second.id);
    resp->set_collection_name(req->collection_name());
    resp->set_db_name(req->db_name());
    for (const auto& v : it->second.vchannels) resp->add_virtual_channel_names(v);
    for (const auto& p : it->second.pchannels) resp->add_physical_channel_names(p);
    resp->set_shards_num(static_cast<int32_t>(it->second.pchannels.size()));
    if (!resp->mutable_schema()->ParseFromString(it->second.schema)) resp->clear_schema();
    return grpc::Status::OK;
  }

  grpc::Status ShowPartitions(grpc::ServerContext*, const milvuspb::ShowPartitionsRequest* req,
                              milvuspb::ShowPartitionsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back("ShowPartitions " + req->db_name() + "." + req->collection_name());
    auto it = collections_.find(req->db_name() + "." + req->collection_name());
    if (it == collections_.end()) {
      NotFound(req->collection_name(), resp->mutable_status());
      return grpc::Status::OK;
    }
    for (const auto& [name, id] : it->second.partitions) {
      resp->add_partition_names(name);
      resp->add_partitionids(id);
    }
    return grpc::Status::OK;
  }

  grpc::Status CreateCollection(grpc::ServerContext*, const milvuspb::CreateCollectionRequest* req,
                                commonpb::Status* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    Record("CreateCollection", req->db_name(), req->collection_name(), "", *req);
    Collection c;
    c.id = next_id_++;
    c.schema = req->schema();
    auto placed = placement_.find(req->collection_name());
    for (int i = 0; i < req->shards_num(); ++i) {
      std::string p = placed != placement_.end() && i < static_cast<int>(placed->second.size())
                          ? placed->second[i]
                          : "tgt-dml_" + std::to_string(i);
      c.vchannels.push_back(p + "_" + std::to_string(c.id) + "v" + std::to_string(i));
      c.pchannels.push_back(p);
    }
    c.partitions["_default"] = next_id_++;
    collections_[req->db_name() + "." + req->collection_name()] = std::move(c);
    (void)resp;
    return grpc::Status::OK;
  }

  grpc::Status DropCollection(grpc::ServerContext*, const milvuspb::DropCollectionRequest* req,
                              commonpb::Status* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    Record("DropCollection", req->db_name(), req->collection_name(), "", *req);
    if (!collections_.erase(req->db_name() + "." + req->collection_name())) NotFound(req->collection_name(), resp);
    return grpc::Status::OK;
  }

  grpc::Status CreatePartition(grpc::ServerContext*, const milvuspb::CreatePartitionRequest* req,
                               commonpb::Status* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    Record("CreatePartition", req->db_name(), req->collection_name(), req->partition_name(), *req);
    auto it = collections_.find(req->db_name() + "." + req->collection_name());
    if (it == collections_.end()) {
      NotFound(req->collection_name(), resp);
      return grpc::Status::OK;
    }
    it->second.partitions[req->partition_name()] = next_id_++;
    return grpc::Status::OK;
  }

 private:
  static void NotFound(const std::string& name, commonpb::Status* st) {
    st->set_code(100);
    st->set_reason("collection not found[collection=" + name + "]");
  }
  template <typename Req>
  void Record(const std::string& method, const std::string& db, const std::string& coll, const std::string& part,
              const Req& req) {
    Ddl d;
    d.method = method;
    d.db = db;
    d.collection = coll;
    d.partition = part;
    d.has_replicate_info = req.has_base() && req.base().has_replicateinfo();
    d.is_replicate = req.base().replicateinfo().isreplicate();
    d.msg_timestamp = req.base().replicateinfo().msgtimestamp();
    d.msg_type = req.base().msg_type();
    log_.push_back(method + " " + db + "." + coll + (part.empty() ? "" : "." + part));
    ddl_.push_back(d);
  }

  std::atomic<Probe> probe_{Probe::kStandby};
  std::atomic<bool> refuse_{false};
  std::mutex mu_;
  int64_t next_id_ = 5001;
  std::map<std::string, std::vector<std::string>> placement_;
  std::map<std::string, Collection> collections_;  // by "db.name"
  std::vector<std::string> log_;
  std::vector<Replicated> replicated_;
  std::vector<Ddl> ddl_;
  std::vector<int> probes_;
};

// ---- Source-side builders ---------------------------------------------------------------------

schemapb::CollectionSchema SourceSchema(const std::string& name) {
  schemapb::CollectionSchema s;
  s.set_name(name);
  auto* pk = s.add_fields();
  pk->set_fieldid(100);
  pk->set_name("pk");
  pk->set_data_type(schemapb::DataType::Int64);
  pk->set_is_primary_key(true);
  auto* vec = s.add_fields();
  vec->set_fieldid(101);
  vec->set_name("vec");
  vec->set_data_type(schemapb::DataType::FloatVector);
  auto* dim = vec->add_type_params();
  dim->set_key("dim");
  dim->set_value("4");
  auto* title = s.add_fields();
  title->set_fieldid(102);
  title->set_name("title");
  title->set_data_type(schemapb::DataType::VarChar);
  auto* len = title->add_type_params();
  len->set_key("max_length");
  len->set_value("64");
  return s;
}

// A source collection whose shard i is on pchannels[i]. Its vchannels are not in lexical order
// of shard when the pchannels are not: the shard is a position, never a sort.
std::shared_ptr<source::CollectionMeta> SourceCollection(int64_t id, const std::string& db, const std::string& name,
                                                         const std::vector<std::string>& pchannels) {
  auto meta = std::make_shared<source::CollectionMeta>();
  meta->id = id;
  meta->db_name = db;
  meta->name = name;
  meta->schema = SourceSchema(name);
  meta->pk_field_id = 100;
  meta->shards_num = static_cast<int32_t>(pchannels.size());
  meta->pchannels = pchannels;
  for (size_t i = 0; i < pchannels.size(); ++i) {
    meta->vchannels.push_back(pchannels[i] + "_" + std::to_string(id) + "v" + std::to_string(i));
  }
  meta->create_time = Ts(1000);
  meta->partitions[id * 10] = source::PartitionMeta{id * 10, "_default", Ts(1000)};
  meta->partitions[id * 10 + 1] = source::PartitionMeta{id * 10 + 1, "p1", Ts(1001)};
  return meta;
}

// The target side of a collection: shard i on pchannels[i].
FakeStandby::Collection TargetCollection(int64_t id, const std::vector<std::string>& pchannels,
                                         std::map<std::string, int64_t> partitions) {
  FakeStandby::Collection c;
  c.id = id;
  for (size_t i = 0; i < pchannels.size(); ++i) {
    c.pchannels.push_back(pchannels[i]);
    c.vchannels.push_back(pchannels[i] + "_" + std::to_string(id) + "v" + std::to_string(i));
  }
  c.partitions = std::move(partitions);
  return c;
}

// An Insert of `pks` into shard `shard` of `meta`, as the source's msgstream carries it.
msgpb::InsertRequest SourceInsert(const source::CollectionMeta& meta, int shard, const std::string& partition,
                                  int64_t msg_id, uint64_t ts, const std::vector<int64_t>& pks) {
  msgpb::InsertRequest req;
  auto* base = req.mutable_base();
  base->set_msg_type(commonpb::MsgType::Insert);
  base->set_msgid(msg_id);
  base->set_timestamp(ts);
  base->set_sourceid(17);
  req.set_shardname(meta.vchannels[shard]);
  req.set_db_name(meta.db_name);
  req.set_collection_name(meta.name);
  req.set_partition_name(partition);
  req.set_dbid(1);
  req.set_collectionid(meta.id);
  req.set_partitionid(meta.id * 10 + (partition == "_default" ? 0 : 1));
  req.set_segmentid(444001);
  auto* pk = req.add_fields_data();
  pk->set_type(schemapb::DataType::Int64);
  pk->set_field_name("pk");
  pk->set_field_id(100);
  auto* vec = req.add_fields_data();
  vec->set_type(schemapb::DataType::FloatVector);
  vec->set_field_name("vec");
  vec->set_field_id(101);
  vec->mutable_vectors()->set_dim(4);
  auto* title = req.add_fields_data();
  title->set_type(schemapb::DataType::VarChar);
  title->set_field_name("title");
  title->set_field_id(102);
  for (size_t i = 0; i < pks.size(); ++i) {
    req.add_timestamps(ts);
    req.add_rowids(900000 + pks[i]);
    pk->mutable_scalars()->mutable_long_data()->add_data(pks[i]);
    for (int d = 0; d < 4; ++d) vec->mutable_vectors()->mutable_float_vector()->add_data(0.25f * d + pks[i]);
    title->mutable_scalars()->mutable_string_data()->add_data("title-" + std::to_string(pks[i]) + "-ü");
  }
  req.set_num_rows(pks.size());
  req.set_version(msgpb::InsertDataVersion::ColumnBased);
  return req;
}

// A Delete of `pks` from shard `shard`; no partition named when `partition` is empty.
msgpb::DeleteRequest SourceDelete(const source::CollectionMeta& meta, int shard, const std::string& partition,
                                  int64_t msg_id, uint64_t ts, const std::vector<int64_t>& pks) {
  msgpb::DeleteRequest req;
  auto* base = req.mutable_base();
  base->set_msg_type(commonpb::MsgType::Delete);
  base->set_msgid(msg_id);
  base->set_timestamp(ts);
  base->set_sourceid(17);
  req.set_shardname(meta.vchannels[shard]);
  req.set_db_name(meta.db_name);
  req.set_collection_name(meta.name);
  req.set_partition_name(partition);
  req.set_dbid(1);
  req.set_collectionid(meta.id);
  req.set_partitionid(partition.empty() ? -1 : meta.id * 10 + 1);
  for (int64_t k : pks) {
    req.mutable_primary_keys()->mutable_int_id()->add_data(k);
    req.add_timestamps(ts);
  }
  req.set_num_rows(static_cast<int64_t>(pks.size()));
  return req;
}

msgpb::DropCollectionRequest SourceDropCollection(const source::CollectionMeta& meta, int64_t msg_id, uint64_t ts) {
  msgpb::DropCollectionRequest req;
  req.mutable_base()->set_msg_type(commonpb::MsgType::DropCollection);
  req.mutable_base()->set_msgid(msg_id);
  req.mutable_base()->set_timestamp(ts);
  req.set_db_name(meta.db_name);
  req.set_collectionname(meta.name);
  req.set_dbid(1);
  req.set_collectionid(meta.id);
  return req;
}

// The decoded event of a source message, as LogReader routes it.
source::RoutedEvent Routed(const msgpb::InsertRequest& req, std::shared_ptr<const source::CollectionMeta> meta) {
  source::RoutedEvent r;
  decode::Event& e = r.event;
  e.msg_type = static_cast<int32_t>(decode::MsgType::kInsert);
  e.msg_id = req.base().msgid();
  e.begin_ts = req.timestamps(0);
  e.end_ts = req.timestamps(req.timestamps_size() - 1);
  e.position = decode::Position{meta->pchannels[0], 1, e.end_ts};
  e.vchannel = req.shardname();
  e.collection_id = req.collectionid();
  e.partition_id = req.partitionid();
  e.db_name = req.db_name();
  e.collection_name = req.collection_name();
  e.partition_name = req.partition_name();
  e.row_count = static_cast<int64_t>(req.num_rows());
  e.payload = std::make_shared<const msgpb::InsertRequest>(req);
  r.collection = std::move(meta);
  return r;
}

source::RoutedEvent Routed(const msgpb::DeleteRequest& req, std::shared_ptr<const source::CollectionMeta> meta) {
  source::RoutedEvent r;
  decode::Event& e = r.event;
  e.msg_type = static_cast<int32_t>(decode::MsgType::kDelete);
  e.msg_id = req.base().msgid();
  e.begin_ts = req.timestamps(0);
  e.end_ts = req.timestamps(req.timestamps_size() - 1);
  e.vchannel = req.shardname();
  e.collection_id = req.collectionid();
  e.partition_id = req.partitionid();
  e.db_name = req.db_name();
  e.collection_name = req.collection_name();
  e.partition_name = req.partition_name();
  e.row_count = req.num_rows();
  e.payload = std::make_shared<const msgpb::DeleteRequest>(req);
  r.collection = std::move(meta);
  return r;
}

msgpb::DropPartitionRequest SourceDropPartition(const source::CollectionMeta& meta, const std::string& partition,
                                                int64_t msg_id, uint64_t ts) {
  msgpb::DropPartitionRequest req;
  req.mutable_base()->set_msg_type(commonpb::MsgType::DropPartition);
  req.mutable_base()->set_msgid(msg_id);
  req.mutable_base()->set_timestamp(ts);
  req.set_db_name(meta.db_name);
  req.set_collection_name(meta.name);
  req.set_partition_name(partition);
  req.set_dbid(1);
  req.set_collectionid(meta.id);
  req.set_partitionid(meta.id * 10 + 1);
  return req;
}

source::RoutedEvent Routed(const msgpb::DropPartitionRequest& req,
                           std::shared_ptr<const source::CollectionMeta> meta) {
  source::RoutedEvent r;
  decode::Event& e = r.event;
  e.msg_type = static_cast<int32_t>(decode::MsgType::kDropPartition);
  e.msg_id = req.base().msgid();
  e.begin_ts = e.end_ts = req.base().timestamp();
  e.collection_id = req.collectionid();
  e.partition_id = req.partitionid();
  e.db_name = req.db_name();
  e.collection_name = req.collection_name();
  e.partition_name = req.partition_name();
  e.payload = std::make_shared<const msgpb::DropPartitionRequest>(req);
  r.collection = std::move(meta);
  return r;
}

source::RoutedEvent Routed(const msgpb::DropCollectionRequest& req,
                           std::shared_ptr<const source::CollectionMeta> meta) {
  source::RoutedEvent r;
  decode::Event& e = r.event;
  e.msg_type = static_cast<int32_t>(decode::MsgType::kDropCollection);
  e.msg_id = req.base().msgid();
  e.begin_ts = e.end_ts = req.base().timestamp();
  e.collection_id = req.collectionid();
  e.db_name = req.db_name();
  e.collection_name = req.collectionname();
  e.payload = std::make_shared<const msgpb::DropCollectionRequest>(req);
  r.collection = std::move(meta);
  return r;
}

// A pack of `channel` ending at `end_ts`, whose checkpoint is (`offset`, `end_ts`).
source::SourceItem Pack(const std::string& channel, int64_t offset, uint64_t end_ts,
                        std::vector<source::RoutedEvent> events = {}) {
  source::SourceItem item;
  item.kind = source::SourceItem::Kind::kPack;
  item.channel = channel;
  item.ts = end_ts;
  item.end_position = decode::Position{channel, offset, end_ts};
  item.events = std::move(events);
  return item;
}

bool NoSkip(const source::RoutedEvent&) { return false; }

std::string TickEntry(const std::string& channel, uint64_t ts) {
  return "replicate " + channel + " TimeTick@" + std::to_string(ts);
}
std::string CheckpointEntry(const std::string& channel, int64_t offset, uint64_t ts) {
  return "checkpoint " + channel + " " + std::to_string(offset) + "@" + std::to_string(ts);
}

// ---- Fixture ---------------------------------------------------------------------------------------

class StandbyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&fake_);
    builder.SetMaxReceiveMessageSize(64 << 20);  // the proxy's serverMaxRecvSize
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target::ConnectParams params;
    params.uri = "http://127.0.0.1:" + std::to_string(port_);
    auto client = target::MilvusClient::Connect(params);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    applier_ = std::make_unique<target::MilvusApplier>(client_.get(), target::RetryPolicy{1}, &stop_);
  }
  void TearDown() override { server_->Shutdown(); }

  // A writer whose checkpoints go to the fake's log; they fail while fail_checkpoints_ is set.
  std::unique_ptr<StandbyWriter> Writer(milliseconds tick_interval = milliseconds(0)) {
    return std::make_unique<StandbyWriter>(
        applier_.get(),
        [this](const std::string& channel, const decode::Position& end) -> Status {
          if (fail_checkpoints_) return Unavailable("the meta store is down");
          fake_.Note(CheckpointEntry(channel, end.offset, end.timestamp));
          return Status::Ok();
        },
        tick_interval);
  }

  // Source db1.c1 with shard 0 on src-dml_5 and shard 1 on src-dml_2, and its target tdb.tc1 (id
  // 7001) with shard 0 on tgt-dml_3 and shard 1 on tgt-dml_7: paired by position, not by sorting.
  void MapC1(StandbyWriter* writer) {
    c1_ = SourceCollection(1001, "db1", "c1", {"src-dml_5", "src-dml_2"});
    fake_.Add("tdb", "tc1", TargetCollection(7001, {"tgt-dml_3", "tgt-dml_7"}, {{"_default", 7101}, {"p1", 7102}}));
    Status st = writer->Map(*c1_, "tdb", "tc1");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  FakeStandby fake_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<target::MilvusClient> client_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<target::MilvusApplier> applier_;
  bool fail_checkpoints_ = false;
  std::shared_ptr<source::CollectionMeta> c1_;
};

// ---- 1. DetectWriteMode --------------------------------------------------------------------------

TEST_F(StandbyTest, DetectWriteModeCode1100IsReplicate) {
  fake_.set_probe(FakeStandby::Probe::kStandby);
  auto mode = applier_->DetectWriteMode();
  ASSERT_TRUE(mode.ok()) << mode.status().ToString();
  EXPECT_EQ(*mode, target::WriteMode::kReplicate);
  EXPECT_EQ(fake_.probes(), std::vector<int>{0});  // one probe, no message in it
  EXPECT_TRUE(fake_.replicated().empty());         // nothing written
}

TEST_F(StandbyTest, DetectWriteModeCode1900IsApi) {
  fake_.set_probe(FakeStandby::Probe::kWritable);
  auto mode = applier_->DetectWriteMode();
  ASSERT_TRUE(mode.ok()) << mode.status().ToString();
  EXPECT_EQ(*mode, target::WriteMode::kApi);
  EXPECT_EQ(fake_.probes(), std::vector<int>{0});
}

TEST_F(StandbyTest, DetectWriteModeUnimplementedIsApi) {
  fake_.set_probe(FakeStandby::Probe::kUnimplemented);  // a target before 2.3.2
  auto mode = applier_->DetectWriteMode();
  ASSERT_TRUE(mode.ok()) << mode.status().ToString();
  EXPECT_EQ(*mode, target::WriteMode::kApi);
}

TEST_F(StandbyTest, DetectWriteModeOtherErrorIsAnError) {
  fake_.set_probe(FakeStandby::Probe::kOtherError);
  auto mode = applier_->DetectWriteMode();
  ASSERT_FALSE(mode.ok());
  EXPECT_NE(mode.status().message().find("write_mode auto"), std::string::npos) << mode.status().message();
  EXPECT_NE(mode.status().message().find("the proxy broke"), std::string::npos) << mode.status().message();
  EXPECT_EQ(fake_.probes().size(), 1u);

  fake_.set_probe(FakeStandby::Probe::kGrpcError);
  mode = applier_->DetectWriteMode();
  ASSERT_FALSE(mode.ok());
  EXPECT_NE(mode.status().message().find("no privilege"), std::string::npos) << mode.status().message();
}

TEST_F(StandbyTest, DetectWriteModeAnAcceptedEmptyProbeIsAnError) {
  fake_.set_probe(FakeStandby::Probe::kAccepted);  // neither answer: not a Milvus we know
  auto mode = applier_->DetectWriteMode();
  EXPECT_FALSE(mode.ok());
}

// ---- 2. Rewrite ----------------------------------------------------------------------------------

TEST_F(StandbyTest, InsertArrivesWithTargetIdsShardAndNamesAndTheSourceRowsUnchanged) {
  auto writer = Writer();
  MapC1(writer.get());
  const msgpb::InsertRequest src = SourceInsert(*c1_, 1, "p1", 424242, Ts(2000), {11, 12, 13});
  Status st = writer->SendPack(Pack("src-dml_2", 40, Ts(2001), {Routed(src, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 2u);  // the data, then its tick
  EXPECT_EQ(sent[0].channel, "tgt-dml_7");  // the target pchannel of shard 1
  EXPECT_EQ(sent[0].begin_ts, Ts(2000));
  EXPECT_EQ(sent[0].end_ts, Ts(2000));
  EXPECT_TRUE(sent[0].is_replicate);
  ASSERT_EQ(sent[0].msgs.size(), 1u);
  msgpb::InsertRequest got;
  ASSERT_TRUE(got.ParseFromString(sent[0].msgs[0]));

  EXPECT_EQ(got.collectionid(), 7001);
  EXPECT_EQ(got.partitionid(), 7102);               // p1 on the target, by name
  EXPECT_EQ(got.shardname(), "tgt-dml_7_7001v1");   // the target vchannel of shard 1
  EXPECT_EQ(got.db_name(), "tdb");
  EXPECT_EQ(got.collection_name(), "tc1");
  EXPECT_EQ(got.partition_name(), "p1");
  EXPECT_EQ(got.base().msgid(), 424242);
  EXPECT_EQ(got.base().msg_type(), commonpb::MsgType::Insert);
  EXPECT_EQ(got.base().timestamp(), Ts(2000));
  EXPECT_EQ(got.num_rows(), 3u);
  EXPECT_EQ(std::vector<uint64_t>(got.timestamps().begin(), got.timestamps().end()),
            std::vector<uint64_t>(src.timestamps().begin(), src.timestamps().end()));
  EXPECT_EQ(std::vector<int64_t>(got.rowids().begin(), got.rowids().end()),
            (std::vector<int64_t>{900011, 900012, 900013}));
  ASSERT_EQ(got.fields_data_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(got.fields_data(i), src.fields_data(i))) << "column " << i;
  }
  EXPECT_EQ(got.fields_data(1).vectors().float_vector().data_size(), 12);
  EXPECT_EQ(got.fields_data(2).scalars().string_data().data(2), "title-13-ü");

  // Nothing else differs from the source message.
  msgpb::InsertRequest expected = src;
  expected.set_collectionid(7001);
  expected.set_partitionid(7102);
  expected.set_shardname("tgt-dml_7_7001v1");
  expected.set_db_name("tdb");
  expected.set_collection_name("tc1");
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, got)) << diff;
}

TEST_F(StandbyTest, ShardIsThePositionOfTheEventsVchannelInTheSourceMeta) {
  auto writer = Writer();
  MapC1(writer.get());
  const auto s0 = SourceInsert(*c1_, 0, "_default", 1, Ts(2000), {1});
  Status st = writer->SendPack(Pack("src-dml_5", 1, Ts(2001), {Routed(s0, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto sent = fake_.replicated();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].channel, "tgt-dml_3");
  msgpb::InsertRequest got;
  ASSERT_TRUE(got.ParseFromString(sent[0].msgs[0]));
  EXPECT_EQ(got.shardname(), "tgt-dml_3_7001v0");
  EXPECT_EQ(got.partitionid(), 7101);  // _default on the target
}

TEST_F(StandbyTest, DeleteNamingNoPartitionKeepsPartitionIdMinusOne) {
  auto writer = Writer();
  MapC1(writer.get());
  const msgpb::DeleteRequest src = SourceDelete(*c1_, 1, "", 5150, Ts(2100), {11, 12});
  Status st = writer->SendPack(Pack("src-dml_2", 41, Ts(2101), {Routed(src, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].channel, "tgt-dml_7");
  msgpb::DeleteRequest got;
  ASSERT_TRUE(got.ParseFromString(sent[0].msgs[0]));
  EXPECT_EQ(got.partitionid(), -1);
  EXPECT_EQ(got.collectionid(), 7001);
  EXPECT_EQ(got.shardname(), "tgt-dml_7_7001v1");
  EXPECT_EQ(got.db_name(), "tdb");
  EXPECT_EQ(got.collection_name(), "tc1");
  EXPECT_EQ(got.base().msgid(), 5150);
  EXPECT_EQ(got.num_rows(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(got.primary_keys(), src.primary_keys()));
  msgpb::DeleteRequest expected = src;
  expected.set_collectionid(7001);
  expected.set_shardname("tgt-dml_7_7001v1");
  expected.set_db_name("tdb");
  expected.set_collection_name("tc1");
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, got)) << diff;
  EXPECT_EQ(writer->rows_deleted(), 2);
}

TEST_F(StandbyTest, DeleteNamingAPartitionGetsTheTargetPartitionId) {
  auto writer = Writer();
  MapC1(writer.get());
  const msgpb::DeleteRequest src = SourceDelete(*c1_, 0, "p1", 5151, Ts(2100), {7});
  Status st = writer->SendPack(Pack("src-dml_5", 41, Ts(2101), {Routed(src, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto sent = fake_.replicated();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].channel, "tgt-dml_3");
  msgpb::DeleteRequest got;
  ASSERT_TRUE(got.ParseFromString(sent[0].msgs[0]));
  EXPECT_EQ(got.partitionid(), 7102);
  EXPECT_EQ(got.shardname(), "tgt-dml_3_7001v0");
}

TEST_F(StandbyTest, PartitionCreatedAfterMapIsFoundByAskingTheTargetAgain) {
  auto writer = Writer();
  MapC1(writer.get());
  fake_.AddPartition("tdb", "tc1", "p2", 7103);  // created on the target since
  const auto src = SourceInsert(*c1_, 0, "p2", 9, Ts(2000), {1});
  Status st = writer->SendPack(Pack("src-dml_5", 1, Ts(2001), {Routed(src, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();
  msgpb::InsertRequest got;
  ASSERT_TRUE(got.ParseFromString(fake_.replicated().at(0).msgs.at(0)));
  EXPECT_EQ(got.partitionid(), 7103);
}

TEST_F(StandbyTest, InsertIntoAPartitionTheTargetLacksFailsAndSendsNothing) {
  auto writer = Writer();
  MapC1(writer.get());
  const auto src = SourceInsert(*c1_, 0, "nope", 9, Ts(2000), {1});
  Status st = writer->SendPack(Pack("src-dml_5", 1, Ts(2001), {Routed(src, c1_)}), NoSkip);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nope"), std::string::npos) << st.message();
  EXPECT_TRUE(fake_.replicated().empty());
  for (const auto& l : fake_.log()) EXPECT_EQ(l.rfind("checkpoint", 0), std::string::npos) << l;
}

TEST_F(StandbyTest, MapRefusesADifferentShardCount) {
  auto writer = Writer();
  auto meta = SourceCollection(1001, "db1", "c1", {"src-dml_5", "src-dml_2"});
  fake_.Add("tdb", "tc1", TargetCollection(7001, {"tgt-dml_3"}, {{"_default", 7101}}));
  Status st = writer->Map(*meta, "tdb", "tc1");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_FALSE(writer->Mapped(1001));
}

TEST_F(StandbyTest, DropPartitionMessageGetsTheTargetIdsAndAGonePartitionIsSkipped) {
  auto writer = Writer();
  MapC1(writer.get());
  const auto drop = SourceDropPartition(*c1_, "p1", 66, Ts(2200));
  Status st = writer->SendPack(Pack("src-dml_5", 50, Ts(2201), {Routed(drop, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 2u);  // the shard read from src-dml_5 only, then its tick
  EXPECT_EQ(sent[0].channel, "tgt-dml_3");
  msgpb::DropPartitionRequest got;
  ASSERT_TRUE(got.ParseFromString(sent[0].msgs.at(0)));
  EXPECT_EQ(got.collectionid(), 7001);
  EXPECT_EQ(got.partitionid(), 7102);
  EXPECT_EQ(got.db_name(), "tdb");
  EXPECT_EQ(got.collection_name(), "tc1");
  EXPECT_EQ(got.partition_name(), "p1");
  EXPECT_EQ(got.base().msgid(), 66);
  EXPECT_EQ(got.base().timestamp(), Ts(2200));

  // A partition the target no longer has: nothing to forward, nothing to store, not an error.
  const auto gone = SourceDropPartition(*c1_, "gone", 67, Ts(2300));
  st = writer->SendPack(Pack("src-dml_2", 51, Ts(2301), {Routed(gone, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();
  sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(fake_.ticks("tgt-dml_7"), std::vector<uint64_t>{Ts(2301)});
  for (const auto& l : fake_.log()) EXPECT_NE(l, CheckpointEntry("src-dml_2", 51, Ts(2301)));
}

TEST_F(StandbyTest, SkippedAndUnmappedEvents) {
  auto writer = Writer();
  MapC1(writer.get());
  auto other = SourceCollection(1002, "db1", "other", {"src-dml_5"});
  const auto ins = SourceInsert(*other, 0, "_default", 5, Ts(2000), {1});
  // Not mapped and not skipped: the caller broke the contract; nothing is sent.
  Status st = writer->SendPack(Pack("src-dml_5", 3, Ts(2001), {Routed(ins, other)}), NoSkip);
  EXPECT_EQ(st.code(), StatusCode::kInternal) << st.ToString();
  EXPECT_TRUE(fake_.replicated().empty());
  // Skipped: no data, no checkpoint, the channel still ticks.
  st = writer->SendPack(Pack("src-dml_5", 3, Ts(2001), {Routed(ins, other)}),
                        [](const source::RoutedEvent& r) { return r.collection->id == 1002; });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(fake_.log().back(), TickEntry("tgt-dml_3", Ts(2001)));
  for (const auto& l : fake_.log()) EXPECT_EQ(l.rfind("checkpoint", 0), std::string::npos) << l;
}

// The proxy takes at most 64 MiB per request: a big pack goes in several requests of at most
// 32 MiB of messages, in order, all before the checkpoint and the one tick.
// A big pack goes out as it is rewritten: a request is sent once it holds 4 MiB (never more than
// 32 MiB), in order, so memory does not hold the whole pack.
TEST_F(StandbyTest, BigPackIsSentInRequestsOfAboutFourMiBInOrder) {
  auto writer = Writer();
  MapC1(writer.get());
  std::vector<source::RoutedEvent> events;
  for (int i = 0; i < 6; ++i) {
    auto ins = SourceInsert(*c1_, 0, "_default", 100 + i, Ts(2000 + i), {i});
    ins.mutable_fields_data(2)->mutable_scalars()->mutable_string_data()->set_data(0, std::string(3 << 19, 'a' + i));
    events.push_back(Routed(ins, c1_));
  }
  Status st = writer->SendPack(Pack("src-dml_5", 60, Ts(2010), std::move(events)), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 3u);  // two data requests of three 1.5 MiB messages, then the tick
  std::vector<int64_t> ids;
  for (int r = 0; r < 2; ++r) {
    size_t bytes = 0;
    for (const auto& m : sent[r].msgs) {
      bytes += m.size();
      msgpb::InsertRequest got;
      ASSERT_TRUE(got.ParseFromString(m));
      ids.push_back(got.base().msgid());
      EXPECT_GE(got.timestamps(0), sent[r].begin_ts);
      EXPECT_LE(got.timestamps(0), sent[r].end_ts);
    }
    EXPECT_GE(bytes, size_t{4} << 20) << "request " << r;
    EXPECT_LE(bytes, size_t{32} << 20) << "request " << r;
    EXPECT_EQ(sent[r].channel, "tgt-dml_3");
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{100, 101, 102, 103, 104, 105}));
  EXPECT_EQ(sent[0].begin_ts, Ts(2000));
  EXPECT_EQ(sent[0].end_ts, Ts(2002));
  EXPECT_EQ(sent[1].begin_ts, Ts(2003));
  EXPECT_EQ(sent[1].end_ts, Ts(2005));
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(2010)});
}

// ---- 3. Order and durability ---------------------------------------------------------------------

TEST_F(StandbyTest, DataThenCheckpointThenTickAtTheEndPosition) {
  auto writer = Writer();
  MapC1(writer.get());
  const auto ins = SourceInsert(*c1_, 1, "p1", 1, Ts(2000), {1, 2});
  const auto del = SourceDelete(*c1_, 1, "", 2, Ts(2000), {3});
  Status st = writer->SendPack(Pack("src-dml_2", 77, Ts(2005), {Routed(del, c1_), Routed(ins, c1_)}), NoSkip);
  ASSERT_TRUE(st.ok()) << st.ToString();

  std::vector<std::string> log;
  for (const auto& l : fake_.log()) {
    if (l.rfind("ShowPartitions", 0) != 0) log.push_back(l);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"replicate tgt-dml_7 Delete Insert",  // in the pack's order
                                           CheckpointEntry("src-dml_2", 77, Ts(2005)),
                                           TickEntry("tgt-dml_7", Ts(2005))}));
  auto sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].begin_ts, Ts(2005));
  EXPECT_EQ(sent[1].end_ts, Ts(2005));
  ASSERT_EQ(sent[1].msgs.size(), 1u);
  msgpb::TimeTickMsg tick;
  ASSERT_TRUE(tick.ParseFromString(sent[1].msgs[0]));
  EXPECT_EQ(tick.base().msg_type(), commonpb::MsgType::TimeTick);
  EXPECT_EQ(tick.base().timestamp(), Ts(2005));
  EXPECT_EQ(tick.base().sourceid(), -1);
  EXPECT_EQ(tick.base().msgid(), 0);
  EXPECT_EQ(writer->rows_inserted(), 2);
  EXPECT_EQ(writer->rows_deleted(), 1);
}

TEST_F(StandbyTest, CheckpointFailureSendsNoTick) {
  auto writer = Writer();
  MapC1(writer.get());
  fail_checkpoints_ = true;
  const auto ins = SourceInsert(*c1_, 1, "p1", 1, Ts(2000), {1});
  Status st = writer->SendPack(Pack("src-dml_2", 77, Ts(2005), {Routed(ins, c1_)}), NoSkip);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("meta store is down"), std::string::npos) << st.message();
  EXPECT_TRUE(fake_.ticks("tgt-dml_7").empty());
  ASSERT_EQ(fake_.replicated().size(), 1u);  // the data only: no tick covers it
}

TEST_F(StandbyTest, RefusedReplicateMessageStoresNoCheckpointAndSendsNoTick) {
  auto writer = Writer();
  MapC1(writer.get());
  fake_.set_refuse(true);
  const auto ins = SourceInsert(*c1_, 1, "p1", 1, Ts(2000), {1});
  Status st = writer->SendPack(Pack("src-dml_2", 77, Ts(2005), {Routed(ins, c1_)}), NoSkip);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("deny to write"), std::string::npos) << st.message();
  for (const auto& l : fake_.log()) EXPECT_EQ(l.rfind("checkpoint", 0), std::string::npos) << l;
  EXPECT_TRUE(fake_.replicated().empty());
}

// ---- 4. Ticks ----------------------------------------------------------------------------------------

// Source a (pchannel src-dml_0) and b (pchannel src-dml_1) both land on target pchannel tgt-dml_0.
TEST_F(StandbyTest, SharedTargetChannelTicksAtTheMinOfItsSourcesOnceBothDelivered) {
  auto writer = Writer();
  auto a = SourceCollection(1001, "db1", "a", {"src-dml_0"});
  auto b = SourceCollection(1002, "db1", "b", {"src-dml_1"});
  fake_.Add("db1", "a", TargetCollection(7001, {"tgt-dml_0"}, {{"_default", 7101}}));
  fake_.Add("db1", "b", TargetCollection(7002, {"tgt-dml_0"}, {{"_default", 7201}}));
  ASSERT_TRUE(writer->Map(*a, "db1", "a").ok());
  ASSERT_TRUE(writer->Map(*b, "db1", "b").ok());

  ASSERT_TRUE(writer->SendPack(Pack("src-dml_0", 1, Ts(100)), NoSkip).ok());
  EXPECT_TRUE(fake_.ticks("tgt-dml_0").empty()) << "ticked before src-dml_1 delivered anything";

  ASSERT_TRUE(writer->SendPack(Pack("src-dml_1", 1, Ts(90)), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(90)});

  const auto ins = SourceInsert(*a, 0, "_default", 5, Ts(110), {1});
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_0", 2, Ts(120), {Routed(ins, a)}), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(90)}) << "ticked past what src-dml_1 delivered";

  ASSERT_TRUE(writer->SendPack(Pack("src-dml_1", 2, Ts(150)), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), (std::vector<uint64_t>{Ts(90), Ts(120)}));

  ASSERT_TRUE(writer->SendPack(Pack("src-dml_1", 3, Ts(200)), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), (std::vector<uint64_t>{Ts(90), Ts(120)}));

  // The data of a, its checkpoint, then the tick covering it.
  auto log = fake_.log();
  auto at = [&](const std::string& s) { return std::find(log.begin(), log.end(), s) - log.begin(); };
  const auto data = at("replicate tgt-dml_0 Insert");
  const auto stored = at(CheckpointEntry("src-dml_0", 2, Ts(120)));
  const auto tick = at(TickEntry("tgt-dml_0", Ts(120)));
  ASSERT_LT(tick, static_cast<long>(log.size()));
  EXPECT_LT(data, stored);
  EXPECT_LT(stored, tick);
}

TEST_F(StandbyTest, ForgottenCollectionNoLongerHoldsBackTheSharedChannel) {
  auto writer = Writer();
  auto a = SourceCollection(1001, "db1", "a", {"src-dml_0"});
  auto b = SourceCollection(1002, "db1", "b", {"src-dml_1"});
  fake_.Add("db1", "a", TargetCollection(7001, {"tgt-dml_0"}, {{"_default", 7101}}));
  fake_.Add("db1", "b", TargetCollection(7002, {"tgt-dml_0"}, {{"_default", 7201}}));
  ASSERT_TRUE(writer->Map(*a, "db1", "a").ok());
  ASSERT_TRUE(writer->Map(*b, "db1", "b").ok());
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_0", 1, Ts(100)), NoSkip).ok());
  EXPECT_TRUE(fake_.ticks("tgt-dml_0").empty());
  writer->Forget(1002);  // b dropped: only src-dml_0 feeds tgt-dml_0 now
  EXPECT_FALSE(writer->Mapped(1002));
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_0", 2, Ts(130)), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(130)});
}

TEST_F(StandbyTest, IdleChannelTicksAtMostOncePerIntervalUnlessDataWasSent) {
  auto writer = Writer(milliseconds(30000));
  MapC1(writer.get());
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(100)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)});  // the first one goes at once
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(200)).ok());
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_5", 3, Ts(250)), NoSkip).ok());  // an empty pack is idle too
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)});

  const auto ins = SourceInsert(*c1_, 0, "_default", 5, Ts(290), {1});
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_5", 4, Ts(300), {Routed(ins, c1_)}), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(100), Ts(300)}));  // data: at once

  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(400)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(100), Ts(300)}));
  EXPECT_TRUE(fake_.ticks("tgt-dml_7").empty());  // src-dml_2 never delivered
}

TEST_F(StandbyTest, IdleChannelTicksAgainOnceTheIntervalPassed) {
  auto writer = Writer(milliseconds(100));
  MapC1(writer.get());
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(100)).ok());
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(200)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)});
  std::this_thread::sleep_for(milliseconds(150));
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(300)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(100), Ts(300)}));
}

// LogReader splits a pack around a DDL item: the events up to the item go first, with the pack's
// start position as end_position (older than the events), so the checkpoint stays before the pack.
TEST_F(StandbyTest, SplitItemDoesNotTickPastItsEndPosition) {
  auto writer = Writer();
  MapC1(writer.get());
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_5", 10, Ts(100)), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)});

  const auto first = SourceInsert(*c1_, 0, "_default", 21, Ts(150), {1});
  source::SourceItem split = Pack("src-dml_5", 10, Ts(100), {Routed(first, c1_)});
  split.ts = Ts(160);  // the DDL item's timestamp
  ASSERT_TRUE(writer->SendPack(split, NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)}) << "a tick covers the split's data";
  EXPECT_EQ(fake_.log().back(), CheckpointEntry("src-dml_5", 10, Ts(100)));

  const auto rest = SourceInsert(*c1_, 0, "_default", 22, Ts(180), {2});
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_5", 14, Ts(200), {Routed(rest, c1_)}), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(100), Ts(200)}));
}

TEST_F(StandbyTest, TicksNeverGoBackwards) {
  auto writer = Writer();
  MapC1(writer.get());
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(200)).ok());
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(150)).ok());
  const auto ins = SourceInsert(*c1_, 0, "_default", 5, Ts(170), {1});
  ASSERT_TRUE(writer->SendPack(Pack("src-dml_5", 3, Ts(180), {Routed(ins, c1_)}), NoSkip).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(200)});
  ASSERT_TRUE(writer->TickOnly("src-dml_5", Ts(250)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(200), Ts(250)}));
}

// A collection created later on the same target pchannel, whose source channel is behind what
// that pchannel was already ticked to: the next tick waits for it instead of going back.
TEST_F(StandbyTest, ACollectionMappedLaterDoesNotPullTheTickBack) {
  auto writer = Writer();
  auto a = SourceCollection(1001, "db1", "a", {"src-dml_0"});
  auto b = SourceCollection(1002, "db1", "b", {"src-dml_1"});
  fake_.Add("db1", "a", TargetCollection(7001, {"tgt-dml_0"}, {{"_default", 7101}}));
  fake_.Add("db1", "b", TargetCollection(7002, {"tgt-dml_0"}, {{"_default", 7201}}));
  ASSERT_TRUE(writer->Map(*a, "db1", "a").ok());
  ASSERT_TRUE(writer->TickOnly("src-dml_1", Ts(120)).ok());  // src-dml_1 read for other collections
  ASSERT_TRUE(writer->TickOnly("src-dml_0", Ts(200)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(200)});

  ASSERT_TRUE(writer->Map(*b, "db1", "b").ok());  // b is created, on tgt-dml_0 too
  ASSERT_TRUE(writer->TickOnly("src-dml_0", Ts(250)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(200)}) << "ticked back to src-dml_1's 120";
  ASSERT_TRUE(writer->TickOnly("src-dml_1", Ts(260)).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), (std::vector<uint64_t>{Ts(200), Ts(250)}));
}

// ---- 5. StandbyTickSink -----------------------------------------------------------------------------

TEST_F(StandbyTest, TickSinkTicksCheckpointedChannelsWithEmptyPacks) {
  auto writer = Writer();
  fail_checkpoints_ = true;  // the idle ticker stores nothing
  MapC1(writer.get());
  StandbyTickSink sink(writer.get(), {"src-dml_5", "src-dml_2"});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 1, Ts(100))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_2", 1, Ts(110))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 2, Ts(200))).ok());
  source::SourceItem catalog;
  catalog.kind = source::SourceItem::Kind::kCatalog;
  catalog.channel = "src-dml_5";
  catalog.ts = Ts(250);
  ASSERT_TRUE(sink.Apply(catalog).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(100), Ts(200)}));
  EXPECT_EQ(fake_.ticks("tgt-dml_7"), std::vector<uint64_t>{Ts(110)});
  for (const auto& r : fake_.replicated()) {
    for (const auto& m : r.msgs) EXPECT_EQ(TypeOf(m), commonpb::MsgType::TimeTick);
  }
}

TEST_F(StandbyTest, TickSinkStopsAtAChannelsFirstChangeForGood) {
  auto writer = Writer();
  fail_checkpoints_ = true;
  MapC1(writer.get());
  StandbyTickSink sink(writer.get(), {"src-dml_5", "src-dml_2"});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 1, Ts(100))).ok());
  const auto ins = SourceInsert(*c1_, 0, "_default", 5, Ts(150), {1});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 2, Ts(200), {Routed(ins, c1_)})).ok());  // waits for the resume
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 3, Ts(300))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 4, Ts(400))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)});
  // The other channel goes on.
  ASSERT_TRUE(sink.Apply(Pack("src-dml_2", 1, Ts(410))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_7"), std::vector<uint64_t>{Ts(410)});
  ASSERT_EQ(fake_.replicated().size(), 2u);  // two ticks, no data
}

// A metadata change (e.g. a collection created into the scope) may put waiting rows on any
// standby channel: every channel stops ticking until the resume.
TEST_F(StandbyTest, TickSinkStopsEveryChannelAtAMetadataChange) {
  auto writer = Writer();
  fail_checkpoints_ = true;
  MapC1(writer.get());
  StandbyTickSink sink(writer.get(), {"src-dml_5", "src-dml_2"});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 1, Ts(100))).ok());
  source::SourceItem created;
  created.kind = source::SourceItem::Kind::kCatalog;
  created.ts = Ts(150);
  ASSERT_TRUE(sink.Apply(created).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 2, Ts(500))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_2", 1, Ts(600))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(100)});
  EXPECT_TRUE(fake_.ticks("tgt-dml_7").empty());
}

TEST_F(StandbyTest, TickSinkNeverTicksAChannelWithoutAStoredCheckpoint) {
  auto writer = Writer();
  fail_checkpoints_ = true;
  MapC1(writer.get());
  StandbyTickSink sink(writer.get(), {"src-dml_5"});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_2", 1, Ts(100))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_2", 2, Ts(200))).ok());
  EXPECT_TRUE(fake_.ticks("tgt-dml_7").empty());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_5", 1, Ts(300))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), std::vector<uint64_t>{Ts(300)});
  EXPECT_TRUE(fake_.ticks("tgt-dml_7").empty());
}

// A target pchannel fed by a checkpointed channel and one that waits: the tick stays behind.
TEST_F(StandbyTest, TickSinkSharedChannelStaysBehindAHeldFeeder) {
  auto writer = Writer();
  fail_checkpoints_ = true;
  auto a = SourceCollection(1001, "db1", "a", {"src-dml_0"});
  auto b = SourceCollection(1002, "db1", "b", {"src-dml_1"});
  fake_.Add("db1", "a", TargetCollection(7001, {"tgt-dml_0"}, {{"_default", 7101}}));
  fake_.Add("db1", "b", TargetCollection(7002, {"tgt-dml_0"}, {{"_default", 7201}}));
  ASSERT_TRUE(writer->Map(*a, "db1", "a").ok());
  ASSERT_TRUE(writer->Map(*b, "db1", "b").ok());
  StandbyTickSink sink(writer.get(), {"src-dml_0", "src-dml_1"});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_0", 1, Ts(100))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_1", 1, Ts(100))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(100)});
  const auto ins = SourceInsert(*b, 0, "_default", 5, Ts(150), {1});
  ASSERT_TRUE(sink.Apply(Pack("src-dml_1", 2, Ts(200), {Routed(ins, b)})).ok());  // b's change waits
  ASSERT_TRUE(sink.Apply(Pack("src-dml_0", 2, Ts(300))).ok());
  ASSERT_TRUE(sink.Apply(Pack("src-dml_0", 3, Ts(400))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_0"), std::vector<uint64_t>{Ts(100)}) << "ticked past b's waiting change";
}

// ---- 6. MarkReplicated ------------------------------------------------------------------------------

target::CollectionSpec Spec(const std::string& db, const std::string& name) {
  target::CollectionSpec spec;
  spec.db_name = db;
  spec.name = name;
  spec.schema = SourceSchema(name);
  spec.shards_num = 2;
  return spec;
}

TEST_F(StandbyTest, DdlCarriesReplicateInfoWithTheSetTimestamp) {
  applier_->set_replicate_ts(Ts(4242));
  ASSERT_TRUE(applier_->CreateCollection(Spec("db1", "c9")).ok());
  ASSERT_TRUE(applier_->CreatePartition("db1", "c9", "p1").ok());
  ASSERT_TRUE(applier_->DropCollection("db1", "c9").ok());
  auto ddl = fake_.ddl();
  ASSERT_EQ(ddl.size(), 3u);
  EXPECT_EQ(ddl[0].method, "CreateCollection");
  EXPECT_EQ(ddl[0].msg_type, commonpb::MsgType::CreateCollection);
  EXPECT_EQ(ddl[1].method, "CreatePartition");
  EXPECT_EQ(ddl[1].msg_type, commonpb::MsgType::CreatePartition);
  EXPECT_EQ(ddl[2].method, "DropCollection");
  EXPECT_EQ(ddl[2].msg_type, commonpb::MsgType::DropCollection);
  for (const auto& d : ddl) {
    EXPECT_TRUE(d.has_replicate_info) << d.method;
    EXPECT_TRUE(d.is_replicate) << d.method;
    EXPECT_EQ(d.msg_timestamp, Ts(4242)) << d.method;
  }
}

TEST_F(StandbyTest, DdlWithoutReplicateTsCarriesNoReplicateInfo) {
  applier_->set_replicate_ts(Ts(4242));
  applier_->set_replicate_ts(0);
  ASSERT_TRUE(applier_->CreateCollection(Spec("db1", "c9")).ok());
  ASSERT_TRUE(applier_->CreatePartition("db1", "c9", "p1").ok());
  ASSERT_TRUE(applier_->DropCollection("db1", "c9").ok());
  auto ddl = fake_.ddl();
  ASSERT_EQ(ddl.size(), 3u);
  for (const auto& d : ddl) {
    EXPECT_FALSE(d.has_replicate_info) << d.method;
    EXPECT_FALSE(d.is_replicate) << d.method;
  }
}

// ---- ChangeApplier in replicate mode --------------------------------------------------------------

class StandbyChangeApplierTest : public StandbyTest {
 protected:
  void SetUp() override {
    StandbyTest::SetUp();
    TaskSpec spec;
    spec.task_id = "t1";
    spec.collection_infos = std::vector<CollectionInfo>{CollectionInfo{"*", std::nullopt, false}};
    spec.name_mapping = {NameMapping{"default", "", {{"c1", "c1_standby"}}}};
    scope_ = std::make_unique<TaskScope>(spec);
    writer_ = Writer();
    sink_ = std::make_unique<ChangeApplier>("t1", scope_.get(), &catalog_, applier_.get(), &metrics_,
                                            [](const std::string&, const decode::Position&) {
                                              ADD_FAILURE() << "a standby task writes no intents";
                                              return Status::Ok();
                                            });
    sink_->SetStandby(writer_.get());
    meta_ = SourceCollection(1001, "default", "c1", {"src-dml_5", "src-dml_2"});
    fake_.Place("c1_standby", {"tgt-dml_3", "tgt-dml_7"});
  }

  std::unique_ptr<TaskScope> scope_;
  source::Catalog catalog_{"by-dev/meta"};
  Metrics metrics_;
  std::unique_ptr<StandbyWriter> writer_;
  std::unique_ptr<ChangeApplier> sink_;
  std::shared_ptr<source::CollectionMeta> meta_;
};

TEST_F(StandbyChangeApplierTest, FirstInsertCreatesTheCollectionAsReplicatedThenSendsItsRows) {
  const auto ins = SourceInsert(*meta_, 1, "p1", 31, Ts(2000), {1, 2});
  Status st = sink_->Apply(Pack("src-dml_2", 9, Ts(2010), {Routed(ins, meta_)}));
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto target = fake_.Get("default", "c1_standby");
  ASSERT_TRUE(target.has_value());
  ASSERT_TRUE(target->partitions.count("p1"));
  auto ddl = fake_.ddl();
  ASSERT_GE(ddl.size(), 2u);
  EXPECT_EQ(ddl[0].method, "CreateCollection");
  EXPECT_TRUE(ddl[0].is_replicate);
  EXPECT_EQ(ddl[0].msg_timestamp, meta_->create_time);  // the source's creation time
  EXPECT_EQ(ddl[1].method, "CreatePartition");
  EXPECT_EQ(ddl[1].partition, "p1");
  EXPECT_TRUE(ddl[1].is_replicate);

  auto sent = fake_.replicated();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].channel, "tgt-dml_7");
  msgpb::InsertRequest got;
  ASSERT_TRUE(got.ParseFromString(sent[0].msgs.at(0)));
  EXPECT_EQ(got.collectionid(), target->id);
  EXPECT_EQ(got.partitionid(), target->partitions.at("p1"));
  EXPECT_EQ(got.shardname(), target->vchannels[1]);
  EXPECT_EQ(got.db_name(), "default");
  EXPECT_EQ(got.collection_name(), "c1_standby");
  EXPECT_EQ(got.base().msgid(), 31);
  EXPECT_EQ(fake_.ticks("tgt-dml_7"), std::vector<uint64_t>{Ts(2010)});
  auto log = fake_.log();
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[log.size() - 2], CheckpointEntry("src-dml_2", 9, Ts(2010)));
  EXPECT_EQ(log.back(), TickEntry("tgt-dml_7", Ts(2010)));
  EXPECT_EQ(sink_->rows_inserted(), 2);
}

TEST_F(StandbyChangeApplierTest, DropCollectionIsForwardedOnEveryChannelThenDroppedAsReplicated) {
  const auto ins = SourceInsert(*meta_, 0, "_default", 31, Ts(2000), {1});
  ASSERT_TRUE(sink_->Apply(Pack("src-dml_5", 9, Ts(2010), {Routed(ins, meta_)})).ok());
  ASSERT_TRUE(sink_->Apply(Pack("src-dml_2", 9, Ts(2010))).ok());
  const int64_t target_id = fake_.Get("default", "c1_standby")->id;

  const auto drop = SourceDropCollection(*meta_, 88, Ts(3000));
  Status st = sink_->Apply(Pack("src-dml_5", 10, Ts(3010), {Routed(drop, meta_)}));
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (const auto& d : fake_.ddl()) EXPECT_NE(d.method, "DropCollection") << "dropped before every shard read it";
  st = sink_->Apply(Pack("src-dml_2", 10, Ts(3020), {Routed(drop, meta_)}));
  ASSERT_TRUE(st.ok()) << st.ToString();

  // The DropCollection message went to each target channel, rewritten, before the RPC.
  std::vector<std::string> drops;
  for (const auto& r : fake_.replicated()) {
    for (const auto& m : r.msgs) {
      if (TypeOf(m) != commonpb::MsgType::DropCollection) continue;
      msgpb::DropCollectionRequest got;
      ASSERT_TRUE(got.ParseFromString(m));
      EXPECT_EQ(got.collectionid(), target_id);
      EXPECT_EQ(got.collectionname(), "c1_standby");
      EXPECT_EQ(got.db_name(), "default");
      EXPECT_EQ(got.base().msgid(), 88);
      drops.push_back(r.channel);
    }
  }
  EXPECT_EQ(drops, (std::vector<std::string>{"tgt-dml_3", "tgt-dml_7"}));
  auto ddl = fake_.ddl();
  ASSERT_FALSE(ddl.empty());
  EXPECT_EQ(ddl.back().method, "DropCollection");
  EXPECT_TRUE(ddl.back().is_replicate);
  EXPECT_EQ(ddl.back().msg_timestamp, Ts(3020));
  EXPECT_FALSE(fake_.Get("default", "c1_standby").has_value());
  auto log = fake_.log();
  EXPECT_EQ(log.back(), "DropCollection default.c1_standby");
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(2010), Ts(3010)}));
  EXPECT_EQ(fake_.ticks("tgt-dml_7"), (std::vector<uint64_t>{Ts(2010), Ts(3020)}));

  // Gone: its channels are no longer ticked for it.
  ASSERT_TRUE(sink_->Apply(Pack("src-dml_5", 11, Ts(4000))).ok());
  ASSERT_TRUE(sink_->Apply(Pack("src-dml_2", 11, Ts(4000))).ok());
  EXPECT_EQ(fake_.ticks("tgt-dml_3"), (std::vector<uint64_t>{Ts(2010), Ts(3010)}));
}

}  // namespace
}  // namespace cdc::pipeline

#include "pipeline/change_applier.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <unordered_map>
#include <unordered_set>

#include "decode/decoder.h"
#include "pipeline/upsert_pairs.h"
#include "milvus.pb.h"
#include "msg.pb.h"
#include "util/log.h"
#include "util/clock.h"

namespace cdc::pipeline {

namespace milvuspb = milvus::proto::milvus;
namespace msgpb = milvus::proto::msg;
using decode::MsgType;

namespace {

bool Is(const decode::Event& e, MsgType t) { return e.msg_type == static_cast<int32_t>(t); }

bool IsPartitionKeyCollection(const source::CollectionMeta& meta) {
  for (const auto& f : meta.schema.fields()) {
    if (f.is_partition_key()) return true;
  }
  return false;
}

using Clock = std::chrono::steady_clock;

std::string DbOrDefault(const std::string& db) { return db.empty() ? "default" : db; }

// Inserts of one collection and partition that follow each other are sent as one call of
// up to this many payload bytes.
constexpr size_t kMaxInsertBatchBytes = 2 << 20;
// How far past the inserts being written a stored intent reaches (1 s of hybrid time).
constexpr uint64_t kIntentAhead = uint64_t{1000} << 18;
// Plain insert calls in flight per source channel.
constexpr size_t kMaxInFlight = 4;

}  // namespace

bool AppendRows(msgpb::InsertRequest* into, const msgpb::InsertRequest& from) {
  if (into->fields_data_size() != from.fields_data_size()) return false;
  for (int i = 0; i < from.fields_data_size(); ++i) {
    const auto& a = into->fields_data(i);
    const auto& b = from.fields_data(i);
    if (a.field_name() != b.field_name() || a.type() != b.type() || a.field_case() != b.field_case()) return false;
    if (b.has_vectors() && (a.vectors().dim() != b.vectors().dim() ||
                            a.vectors().data_case() != b.vectors().data_case() ||
                            b.vectors().data_case() == milvus::proto::schema::VectorField::kSparseFloatVector)) {
      return false;
    }
  }
  for (int i = 0; i < from.fields_data_size(); ++i) {
    auto* a = into->mutable_fields_data(i);
    const auto& b = from.fields_data(i);
    if (b.has_vectors() && b.vectors().data_case() != milvus::proto::schema::VectorField::kFloatVector) {
      auto* v = a->mutable_vectors();
      switch (b.vectors().data_case()) {
        case milvus::proto::schema::VectorField::kBinaryVector:
          v->mutable_binary_vector()->append(b.vectors().binary_vector());
          break;
        case milvus::proto::schema::VectorField::kFloat16Vector:
          v->mutable_float16_vector()->append(b.vectors().float16_vector());
          break;
        case milvus::proto::schema::VectorField::kBfloat16Vector:
          v->mutable_bfloat16_vector()->append(b.vectors().bfloat16_vector());
          break;
        default:
          break;
      }
      for (bool valid : b.valid_data()) a->add_valid_data(valid);
      continue;
    }
    a->MergeFrom(b);  // repeated columns append; scalars (name, type, dim) are equal
  }
  into->set_num_rows(into->num_rows() + from.num_rows());
  into->mutable_timestamps()->MergeFrom(from.timestamps());
  into->mutable_rowids()->MergeFrom(from.rowids());
  return true;
}


ChangeApplier::ChangeApplier(std::string task_id, const TaskScope* scope, const source::Catalog* catalog,
                             target::MilvusApplier* applier, Metrics* metrics, IntentWriter intent)
    : task_id_(std::move(task_id)),
      scope_(scope),
      catalog_(catalog),
      applier_(applier),
      metrics_(metrics),
      intent_(std::move(intent)) {
  if (scope_->spec().enable_user_role) {
    rbac_ = std::make_unique<RbacSync>(task_id_, applier_, scope_->spec().user_passwords);
  }
  metrics_->Describe("milvus_cdc_pack_latency_ms", Metrics::Type::kHistogram,
                     "Milliseconds per source pack with changes, by stage: queued (its closing tick read, or "
                     "an open pack formed, to its apply starting), intent (the write-ahead record), apply (the "
                     "target calls), source_to_target (the newest change's source timestamp to the target's answer)",
                     {5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 3200});
}

void ChangeApplier::CountOp(const std::string& api) {
  ++operations_;
  metrics_->Add("milvus_cdc_api_execute_total", {{"task_id", task_id_}, {"api_type", api}});
}

std::string ChangeApplier::PkFieldName(const source::CollectionMeta& meta) const {
  for (const auto& f : meta.schema.fields()) {
    if (f.is_primary_key()) return f.name();
  }
  return "";
}

Status ChangeApplier::EnsureDatabase(const std::string& target_db) {
  if (target_db == "default" || databases_.count(target_db)) return Status::Ok();
  RETURN_IF_ERROR(applier_->CreateDatabase(target_db));
  databases_.insert(target_db);
  CountOp("CreateDatabase");
  return Status::Ok();
}

Status ChangeApplier::EnsureCollection(const source::CollectionMeta& meta) {
  if (collections_.count(meta.id)) return Status::Ok();
  auto [db, name] = scope_->Map(meta.db_name, meta.name);
  RETURN_IF_ERROR(EnsureDatabase(db));
  target::CollectionSpec spec;
  spec.db_name = db;
  spec.name = name;
  spec.schema = meta.schema;
  spec.shards_num = meta.shards_num;
  spec.consistency_level = meta.consistency_level;
  auto properties = SourceProperties(meta);
  spec.properties = properties.ok() ? *properties : meta.properties;  // not found: dropped meanwhile
  const bool partition_key = IsPartitionKeyCollection(meta);
  if (partition_key) spec.num_partitions = static_cast<int64_t>(meta.partitions.size());
  const uint64_t item_ts = applier_->replicate_ts();
  if (standby_) applier_->set_replicate_ts(meta.create_time);  // the standby's creation time = the source's
  Status created = applier_->CreateCollection(spec);
  if (standby_) applier_->set_replicate_ts(item_ts);
  RETURN_IF_ERROR(created);
  CountOp("CreateCollection");
  if (!partition_key) {
    for (const auto& [id, p] : meta.partitions) {
      if (p.name == "_default") continue;
      RETURN_IF_ERROR(applier_->CreatePartition(db, name, p.name));
    }
  }
  if (standby_) RETURN_IF_ERROR(standby_->Map(meta, db, name));
  collections_[meta.id] = {db, name};
  dropped_.erase(meta.id);
  GetLogger("apply")->info("task {}: collection {}.{} (source id {}) is on the target as {}.{}", task_id_,
                           meta.db_name, meta.name, meta.id, db, name);
  return EnsureAliases(meta);
}

Status ChangeApplier::EnsureAliases(const source::CollectionMeta& meta) {
  auto [db, name] = TargetOf(meta);
  for (const auto& a : catalog_->AliasesOf(meta.id)) {
    RETURN_IF_ERROR(applier_->CreateAlias(db, name, a.name));
    CountOp("CreateAlias");
  }
  return Status::Ok();
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ChangeApplier::SourceProperties(
    const source::CollectionMeta& meta) {
  if (!read_properties_) return meta.properties;
  auto got = read_properties_(meta.db_name, meta.name);
  if (got.ok() || got.status().code() == StatusCode::kNotFound) return got;
  GetLogger("apply")->warn("task {}: cannot read the properties of {}.{} from the source Milvus, using etcd's: {}",
                           task_id_, meta.db_name, meta.name, got.status().message());
  return meta.properties;
}

Status ChangeApplier::ApplyProperties(const source::CollectionMeta& meta) {
  auto wanted = SourceProperties(meta);
  if (!wanted.ok() && wanted.status().code() == StatusCode::kNotFound) return Status::Ok();  // gone (renamed, dropped)
  if (!wanted.ok()) return wanted.status();
  auto [db, name] = TargetOf(meta);
  ASSIGN_OR_RETURN(auto described, applier_->DescribeCollection(db, name));
  std::map<std::string, std::string> have;
  for (const auto& kv : described.properties()) have[kv.key()] = kv.value();
  std::vector<std::pair<std::string, std::string>> changed;
  for (const auto& [k, v] : *wanted) {
    if (auto it = have.find(k); it == have.end() || it->second != v) changed.emplace_back(k, v);
  }
  if (changed.empty()) return Status::Ok();
  RETURN_IF_ERROR(applier_->AlterCollection(db, name, changed));
  CountOp("AlterCollection");
  return Status::Ok();
}

std::pair<std::string, std::string> ChangeApplier::TargetOf(const source::CollectionMeta& meta) const {
  if (auto it = collections_.find(meta.id); it != collections_.end()) return it->second;
  return scope_->Map(meta.db_name, meta.name);
}

bool ChangeApplier::InScope(const source::CollectionMeta* meta) const {
  return meta && scope_->CollectionInScope(meta->db_name, meta->name);
}

void ChangeApplier::Track(const std::string& db, const std::string& collection, const std::string& op,
                          const std::string& position) {
  current_ = FailedChange{db, collection, op, position, "", 0};
}

std::vector<std::string> ChangeApplier::missing_users() const {
  return rbac_ ? rbac_->missing_users() : std::vector<std::string>{};
}

std::optional<FailedChange> ChangeApplier::failed_change() const {
  std::lock_guard<std::mutex> lock(failed_mu_);
  return failed_;
}

Status ChangeApplier::DropDatabase(const std::string& target_db) {
  for (auto it = collections_.begin(); it != collections_.end();) {
    if (it->second.first != target_db) {
      ++it;
      continue;
    }
    RETURN_IF_ERROR(applier_->DropCollection(it->second.first, it->second.second));
    CountOp("DropCollection");
    dropped_.insert(it->first);
    it = collections_.erase(it);
  }
  RETURN_IF_ERROR(applier_->DropDatabase(target_db));
  databases_.erase(target_db);
  return Status::Ok();
}

Status ChangeApplier::CreateIndexFromMeta(const source::CollectionMeta& meta, const source::IndexMeta& index) {
  auto [db, name] = TargetOf(meta);
  milvuspb::CreateIndexRequest req;
  req.set_db_name(db);
  req.set_collection_name(name);
  req.set_index_name(index.index_name);
  for (const auto& f : meta.schema.fields()) {
    if (f.fieldid() == index.field_id) req.set_field_name(f.name());
  }
  for (const auto& [k, v] : index.index_params) {
    auto* kv = req.add_extra_params();
    kv->set_key(k);
    kv->set_value(v);
  }
  return applier_->CreateIndex(std::move(req));
}

Status ChangeApplier::Failed(Status st) {
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(failed_mu_);
    failed_ = current_;
    failed_->message = st.message();
    failed_->time_ms = NowMs();
  }
  return st;
}

Status ChangeApplier::Bootstrap(const std::map<int64_t, int32_t>& loaded) {
  return Failed(BootstrapInner(loaded));
}

Status ChangeApplier::BootstrapInner(const std::map<int64_t, int32_t>& loaded) {
  for (const auto& db : catalog_->Databases()) {
    if (db.name == "default" || !scope_->DatabaseInScope(db.name)) continue;
    Track(db.name, "", "CreateDatabase", "task start");
    RETURN_IF_ERROR(EnsureDatabase(scope_->MapDb(db.name)));
  }
  for (const auto& meta : catalog_->Collections()) {
    if (!scope_->CollectionInScope(meta->db_name, meta->name)) continue;
    Track(meta->db_name, meta->name, "CreateCollection", "task start");
    RETURN_IF_ERROR(EnsureCollection(*meta));
    Track(meta->db_name, meta->name, "AlterCollection", "task start");
    RETURN_IF_ERROR(ApplyProperties(*meta));
    for (const auto& [id, index] : meta->indexes) {
      Status st = CreateIndexFromMeta(*meta, index);
      if (!st.ok()) {
        GetLogger("apply")->warn("task {}: index {} of {}.{} not copied at start: {}", task_id_, index.index_name,
                                 meta->db_name, meta->name, st.message());
      }
    }
    if (auto l = loaded.find(meta->id); l != loaded.end()) {  // loaded on the source before the task
      auto [db, name] = TargetOf(*meta);
      milvuspb::LoadCollectionRequest req;
      req.set_db_name(db);
      req.set_collection_name(name);
      req.set_replica_number(l->second);
      Status st = applier_->LoadCollection(std::move(req));
      if (!st.ok()) {
        GetLogger("apply")->warn("task {}: {}.{} is loaded on the source but could not be loaded on the target: {}",
                                 task_id_, meta->db_name, meta->name, st.message());
      }
    }
  }
  if (rbac_) {
    Track("", "", "SyncRoles", "task start");
    RETURN_IF_ERROR(rbac_->Start(*catalog_->Rbac()));
  }
  return Status::Ok();
}

Status ChangeApplier::Apply(const source::SourceItem& item) {
  if (standby_) applier_->set_replicate_ts(item.ts);
  if (item.kind != source::SourceItem::Kind::kPack) {
    if (Status st = Drain(); !st.ok()) return Failed(std::move(st));
  }
  Status st;
  switch (item.kind) {
    case source::SourceItem::Kind::kPack:
      st = ApplyPack(item);
      break;
    case source::SourceItem::Kind::kCatalog: {
      const auto& e = item.catalog;
      Track(e.db_name, e.collection_name, source::CatalogEventName(e.kind), "etcd");
      st = ApplyCatalog(e);
      break;
    }
    case source::SourceItem::Kind::kReplicate:
      st = item.events.empty() ? Status::Ok() : ApplyReplicate(item.events.front().event);
      break;
  }
  return Failed(std::move(st));
}

void ChangeApplier::TouchKeys(const source::SourceItem& item) {
  for (const auto& r : item.events) {
    const auto& e = r.event;
    if ((!Is(e, MsgType::kInsert) && !Is(e, MsgType::kDelete)) || !gate_->Watching(e.collection_id)) continue;
    auto pks = decode::PrimaryKeysOf(e, r.collection->pk_field_id);
    if (!pks.ok()) continue;
    std::vector<std::string> keys;
    if (const auto* ints = std::get_if<std::vector<int64_t>>(&*pks)) {
      for (int64_t k : *ints) keys.push_back(GateKey(target::PkValue(k)));
    } else {
      for (const auto& k : std::get<std::vector<std::string>>(*pks)) keys.push_back(GateKey(target::PkValue(k)));
    }
    // The partition the change was in; empty for a delete of every partition and for a
    // partition-key collection (backfill copies it without partitions).
    std::string partition;
    if (!IsPartitionKeyCollection(*r.collection)) {
      if (const auto* ins = decode::PayloadAs<msgpb::InsertRequest>(e)) partition = ins->partition_name();
      if (Is(e, MsgType::kDelete) && e.partition_id != -1) partition = e.partition_name;
    }
    gate_->Touch(e.collection_id, partition, keys, e.end_ts);
  }
}

void ChangeApplier::EmitBackfill() {
  auto ready = gate_->TakeReady([this](int64_t id) {
    auto meta = catalog_->CollectionByIdAny(id);
    return meta ? meta->pchannels : std::vector<std::string>{};
  });
  for (auto& chunk : ready) {
    const int64_t rows = static_cast<int64_t>(chunk.rows.keys.size());
    if (rows == 0 && chunk.deletes.empty()) {
      chunk.done(Status::Ok(), 0);
      continue;
    }
    auto meta = catalog_->CollectionByIdAny(chunk.collection_id);
    if (!meta || dropped_.count(chunk.collection_id)) {
      chunk.done(FailedPrecondition("the collection was dropped"), 0);
      continue;
    }
    Status st = EnsureCollection(*meta);
    auto [db, name] = TargetOf(*meta);
    if (st.ok() && rows > 0) {
      st = applier_->UpsertColumns(db, name, chunk.partition, std::move(chunk.rows.fields), rows);
      if (st.ok()) {
        rows_backfilled_ += rows;
        CountOp("Upsert");
      }
    }
    if (st.ok() && !chunk.deletes.empty()) {  // a repair: keys the source does not hold
      milvus::proto::schema::IDs ids;
      for (const auto& k : chunk.deletes) {
        if (const auto* i = std::get_if<int64_t>(&k)) {
          ids.mutable_int_id()->add_data(*i);
        } else {
          ids.mutable_str_id()->add_data(std::get<std::string>(k));
        }
      }
      st = applier_->Delete(db, name, "", ids, chunk.pk_field);
      if (st.ok()) CountOp("Delete");
    }
    chunk.done(st, rows);
  }
}

bool ChangeApplier::ResumedPast(const std::string& channel, uint64_t ts) const {
  auto it = resumed_at_.find(channel);
  return it != resumed_at_.end() && it->second >= ts;
}

Status ChangeApplier::ApplyPack(const source::SourceItem& item) {
  // Inserts about to be written: a restart replays them as upserts. The stored bound runs
  // kIntentAhead past them, so a steady stream stores an intent once per that time per channel.
  uint64_t insert_ts = 0;
  for (const auto& r : item.events) {
    if (Is(r.event, MsgType::kInsert) && !r.event.early) insert_ts = std::max(insert_ts, r.event.end_ts);
  }
  const auto start = Clock::now();
  uint64_t& intent_until = intent_until_[item.channel];
  if (insert_ts > intent_until && intent_ && !standby_) {
    const uint64_t until = insert_ts + kIntentAhead;
    RETURN_IF_ERROR(intent_(item.channel, decode::Position{item.channel, item.end_position.offset, until}));
    intent_until = until;
  }
  const auto intent_done = Clock::now();
  if (gate_) {
    gate_->Applying(item.channel, item.ts);
    TouchKeys(item);
  }
  RETURN_IF_ERROR(standby_ ? ApplyStandby(item) : ApplyEvents(item));
  // A closed pack moves the checkpoint: every call of it is answered first.
  if (!item.open) RETURN_IF_ERROR(Drain());
  if (gate_ && !item.open) {  // an open pack's events are applied, not everything up to its ts
    gate_->Applied(item.channel, item.ts);
    EmitBackfill();
  }
  if (!item.events.empty() && item.closed_at != Clock::time_point{}) {
    auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    static constexpr const char* stages[] = {"queued", "intent", "apply"};
    const double values[] = {ms(start - item.closed_at), ms(intent_done - start), ms(Clock::now() - intent_done)};
    for (int i = 0; i < 3; ++i) {
      metrics_->Observe("milvus_cdc_pack_latency_ms", {{"task_id", task_id_}, {"stage", stages[i]}}, values[i]);
    }
    // The source's clock in the newest change's timestamp, to the target's answer: the whole
    // replication delay up to TARGET's own visibility (both clocks on one machine in the bench).
    uint64_t newest = 0;
    for (const auto& r : item.events) {
      if (r.event.IsDml() && !r.event.early) newest = std::max(newest, r.event.end_ts);
    }
    if (newest != 0) {
      const double since = static_cast<double>(NowMs() - static_cast<int64_t>(newest >> 18));
      metrics_->Observe("milvus_cdc_pack_latency_ms", {{"task_id", task_id_}, {"stage", "source_to_target"}},
                        std::max(0.0, since));
    }
  }
  return Status::Ok();
}

Status ChangeApplier::ApplyEvents(const source::SourceItem& item) {
  auto bound = replay_until_.find(item.channel);
  const uint64_t replay_until = bound == replay_until_.end() ? 0 : bound->second;
  // Milvus 2.3 writes an upsert as Insert then Delete of the same keys at one timestamp: a
  // pair found is applied as one Upsert (ApplyInOrder). Events applied early are done.
  const UpsertPairs pairs = FindUpsertPairs(item.events);
  std::vector<const source::RoutedEvent*> todo;
  for (const auto& r : item.events) {
    if (!r.event.early) todo.push_back(&r);
  }
  RETURN_IF_ERROR(ApplyInOrder(item, std::move(todo), pairs, [&](const decode::Event& ev) {
    return ev.end_ts <= replay_until || pairs.inserts.count(&ev) > 0;
  }, true));
  auto& open = early_open_[item.channel];
  auto& plain = early_plain_[item.channel];
  if (item.open) {
    open.insert(open.end(), item.events.begin(), item.events.end());
    for (const auto& r : item.events) {
      if (Is(r.event, MsgType::kInsert) && !pairs.inserts.count(&r.event)) plain.insert(r.event.msg_id);
    }
    return Status::Ok();
  }
  if (open.empty()) return Status::Ok();
  // An upsert whose Insert half went early as a plain Insert, its Delete half apart (not in
  // Milvus 2.3, whose Insert half waits for its Delete: PackAssembler::TakeEarly).
  const uint64_t split = SplitPairSince(item.events, plain);
  // The pack closed: its early events are done; the rest of `open` was read past its tick.
  std::unordered_set<int64_t> closed;
  for (const auto& r : item.events) {
    if (r.event.early) closed.insert(r.event.msg_id);
  }
  std::vector<source::RoutedEvent> carried;
  for (auto& r : open) {
    if (!closed.count(r.event.msg_id)) carried.push_back(std::move(r));
  }
  open = std::move(carried);
  for (int64_t id : closed) plain.erase(id);
  const uint64_t misordered = MisorderedSince(item.events, open);
  const uint64_t t0 = split == 0 ? misordered : misordered == 0 ? split : std::min(split, misordered);
  return RepairOrder(item, open, t0);
}

Status ChangeApplier::RepairOrder(const source::SourceItem& item, const std::vector<source::RoutedEvent>& carried,
                                  uint64_t t0) {
  if (t0 == 0) return Status::Ok();
  RETURN_IF_ERROR(Drain());
  // Every change of this channel from t0 on: their keys are deleted, then the changes are
  // applied again in timestamp order as the source made them (a plain insert as an Insert, an
  // upsert as an Upsert, so a partition-key collection places the rows as the source did).
  std::vector<source::RoutedEvent> replay;
  for (const auto* events : {&item.events, &carried}) {
    for (const auto& r : *events) {
      if (r.event.IsDml() && r.event.end_ts >= t0) replay.push_back(r);
    }
  }
  GetLogger("apply")->warn("task {}: channel {}: writes of one key were read out of timestamp order; {} changes "
                           "from ts {} applied again in order",
                           task_id_, item.channel, replay.size(), t0);
  std::map<int64_t, std::pair<const source::CollectionMeta*, milvus::proto::schema::IDs>> keys;
  for (auto& r : replay) {
    r.event.early = false;
    auto pks = decode::PrimaryKeysOf(r.event, r.collection->pk_field_id);
    if (!pks.ok()) return pks.status();
    auto& [meta, ids] = keys[r.collection->id];
    meta = r.collection.get();
    if (const auto* ints = std::get_if<std::vector<int64_t>>(&*pks)) {
      for (int64_t k : *ints) ids.mutable_int_id()->add_data(k);
    } else {
      for (const auto& k : std::get<std::vector<std::string>>(*pks)) ids.mutable_str_id()->add_data(k);
    }
  }
  for (const auto& [id, entry] : keys) {
    if (dropped_.count(id) || !collections_.count(id)) continue;
    auto [db, name] = TargetOf(*entry.first);
    RETURN_IF_ERROR(applier_->Delete(db, name, "", entry.second, PkFieldName(*entry.first)));
  }
  const UpsertPairs pairs = FindUpsertPairs(replay);
  std::vector<const source::RoutedEvent*> todo;
  for (const auto& r : replay) todo.push_back(&r);
  RETURN_IF_ERROR(ApplyInOrder(item, std::move(todo), pairs,
                               [&](const decode::Event& ev) { return pairs.inserts.count(&ev) > 0; }, false));
  return Drain();
}

uint64_t SplitPairSince(const std::vector<source::RoutedEvent>& events, const std::unordered_set<int64_t>& early_plain) {
  if (early_plain.empty()) return 0;
  uint64_t t0 = 0;
  const UpsertPairs pairs = FindUpsertPairs(events);
  for (const decode::Event* ins : pairs.inserts) {
    if (ins->early && early_plain.count(ins->msg_id) && (t0 == 0 || ins->end_ts < t0)) t0 = ins->end_ts;
  }
  return t0;
}

uint64_t MisorderedSince(const std::vector<source::RoutedEvent>& events,
                         const std::vector<source::RoutedEvent>& carried) {
  uint64_t max_early = 0;
  for (const auto* list : {&events, &carried}) {
    for (const auto& r : *list) {
      if (r.event.early || list == &carried) max_early = std::max(max_early, r.event.end_ts);
    }
  }
  std::vector<const source::RoutedEvent*> late;
  for (const auto& r : events) {
    if (!r.event.early && r.event.IsDml() && r.event.end_ts <= max_early) late.push_back(&r);
  }
  if (late.empty()) return 0;
  auto keys_of = [](const source::RoutedEvent& r) {
    std::vector<std::string> out;
    auto pks = decode::PrimaryKeysOf(r.event, r.collection->pk_field_id);
    if (!pks.ok()) return out;
    const std::string prefix = std::to_string(r.event.collection_id) + "/";
    if (const auto* ints = std::get_if<std::vector<int64_t>>(&*pks)) {
      for (int64_t k : *ints) out.push_back(prefix + GateKey(target::PkValue(k)));
    } else {
      for (const auto& k : std::get<std::vector<std::string>>(*pks)) out.push_back(prefix + GateKey(target::PkValue(k)));
    }
    return out;
  };
  std::unordered_map<std::string, uint64_t> early_keys;  // key -> newest early change
  for (const auto* list : {&events, &carried}) {
    for (const auto& r : *list) {
      if (!(r.event.early || list == &carried) || !r.event.IsDml()) continue;
      for (auto& k : keys_of(r)) {
        uint64_t& ts = early_keys[std::move(k)];
        ts = std::max(ts, r.event.end_ts);
      }
    }
  }
  uint64_t t0 = 0;
  for (const auto* r : late) {
    for (const auto& k : keys_of(*r)) {
      auto it = early_keys.find(k);
      if (it != early_keys.end() && it->second >= r->event.end_ts && (t0 == 0 || r->event.end_ts < t0)) {
        t0 = r->event.end_ts;
      }
    }
  }
  return t0;
}

Status ChangeApplier::ApplyInOrder(const source::SourceItem& item, std::vector<const source::RoutedEvent*> ordered,
                                   const UpsertPairs& pairs, const std::function<bool(const decode::Event&)>& as_upsert,
                                   bool count) {
  // Source order is timestamp order; at one timestamp a Delete goes first, so an unpaired
  // Delete+Insert leaves the new row in place.
  std::stable_sort(ordered.begin(), ordered.end(), [](const source::RoutedEvent* a, const source::RoutedEvent* b) {
    const bool a_del = Is(a->event, MsgType::kDelete);
    const bool b_del = Is(b->event, MsgType::kDelete);
    if (a->event.begin_ts != b->event.begin_ts) return a->event.begin_ts < b->event.begin_ts;
    return a_del && !b_del;
  });

  for (size_t k = 0; k < ordered.size(); ++k) {
    const auto& r = *ordered[k];
    const auto& e = r.event;
    const source::CollectionMeta& meta = *r.collection;
    if (dropped_.count(meta.id) && !Is(e, MsgType::kCreateCollection)) continue;
    // By id: the target's name for it stays the one it was created or renamed to until the
    // rename is applied, even when the catalog already shows the new name.
    auto [db, name] = TargetOf(meta);
    const std::string where = TrackEvent(meta, e);
    // Milvus hashes a partition-key collection's rows to its partitions itself and refuses
    // a partition name; the target has the same partitions, so the same key lands alike.
    const bool partition_key = IsPartitionKeyCollection(meta);
    if (Is(e, MsgType::kInsert)) {
      RETURN_IF_ERROR(EnsureCollection(meta));
      const auto* req = decode::PayloadAs<msgpb::InsertRequest>(e);
      if (!req) continue;
      const bool upsert = as_upsert(e);
      // Batch the inserts that follow into the same collection and partition.
      msgpb::InsertRequest batch;
      const msgpb::InsertRequest* send = req;
      int64_t rows = e.row_count;
      size_t bytes = e.payload_bytes;
      while (k + 1 < ordered.size()) {
        const auto& next = ordered[k + 1]->event;
        const auto* next_req = decode::PayloadAs<msgpb::InsertRequest>(next);
        if (!Is(next, MsgType::kInsert) || !next_req || next.collection_id != e.collection_id ||
            (!partition_key && next_req->partition_name() != req->partition_name()) || as_upsert(next) != upsert ||
            bytes + next.payload_bytes > kMaxInsertBatchBytes) {
          break;
        }
        if (send == req) batch = *req;
        if (!AppendRows(&batch, *next_req)) break;
        send = &batch;
        rows += next.row_count;
        bytes += next.payload_bytes;
        ++k;
      }
      // A batch is ours to give up: its columns move into the call instead of being copied.
      const std::string partition = partition_key ? "" : req->partition_name();
      if (!upsert) {
        // Plain inserts of one channel overlap (their keys are new); the next other change waits.
        std::function<Status()> call;
        if (send == &batch) {
          auto owned = std::make_shared<msgpb::InsertRequest>(std::move(batch));
          call = [this, db, name, partition, owned] { return applier_->Insert(db, name, partition, std::move(*owned), false); };
        } else {
          call = [this, db, name, partition, req, keep = e.payload] { return applier_->Insert(db, name, partition, *req, false); };
        }
        RETURN_IF_ERROR(Launch(item.channel, std::move(call), where));
      } else {
        RETURN_IF_ERROR(Drain());
        Status sent = send == &batch ? applier_->Insert(db, name, partition, std::move(batch), upsert)
                                     : applier_->Insert(db, name, partition, *req, upsert);
        RETURN_IF_ERROR(sent.WithContext(where));
      }
      if (!count) continue;
      rows_inserted_ += rows;
      metrics_->Add("milvus_cdc_replicate_data_cnt",
                    {{"task_id", task_id_}, {"collection_id", std::to_string(meta.id)}, {"collection_name", meta.name},
                     {"op_type", "write"}, {"api_type", "insert"}},
                    static_cast<double>(rows));
      CountOp(upsert ? "Upsert" : "Insert");
    } else if (Is(e, MsgType::kDelete)) {
      RETURN_IF_ERROR(EnsureCollection(meta));
      if (pairs.deletes.count(&e)) continue;  // the Delete half of an upsert sent as one Upsert
      RETURN_IF_ERROR(Drain());
      const auto* req = decode::PayloadAs<msgpb::DeleteRequest>(e);
      if (!req) continue;
      milvus::proto::schema::IDs ids;
      if (req->has_primary_keys()) {
        ids = req->primary_keys();
      } else {
        for (int64_t pk : req->int64_primary_keys()) ids.mutable_int_id()->add_data(pk);
      }
      const std::string partition = e.partition_id == -1 || partition_key ? "" : e.partition_name;
      RETURN_IF_ERROR(applier_->Delete(db, name, partition, ids, PkFieldName(meta)).WithContext(where));
      if (!count) continue;
      rows_deleted_ += e.row_count;
      metrics_->Add("milvus_cdc_replicate_data_cnt",
                    {{"task_id", task_id_}, {"collection_id", std::to_string(meta.id)}, {"collection_name", meta.name},
                     {"op_type", "write"}, {"api_type", "delete"}},
                    static_cast<double>(e.row_count));
      CountOp("Delete");
    } else if (Is(e, MsgType::kCreateCollection)) {
      RETURN_IF_ERROR(Drain());
      RETURN_IF_ERROR(EnsureCollection(meta).WithContext(where));
    } else if (Is(e, MsgType::kDropCollection) || Is(e, MsgType::kDropPartition)) {
      RETURN_IF_ERROR(Drain());
      RETURN_IF_ERROR(ApplyDrop(item, r, where));
    }
  }
  return Status::Ok();
}

Status ChangeApplier::Launch(const std::string& channel, std::function<Status()> call, std::string where) {
  auto& calls = in_flight_[channel];
  while (calls.size() >= kMaxInFlight) {
    Status st = calls.front().result.get().WithContext(calls.front().where);
    calls.pop_front();
    if (!st.ok()) {
      (void)Drain();
      return st;
    }
  }
  calls.push_back(InFlight{std::async(std::launch::async, std::move(call)), std::move(where)});
  return Status::Ok();
}

Status ChangeApplier::Drain() {
  Status first;
  for (auto& [channel, calls] : in_flight_) {
    for (auto& c : calls) {
      Status st = c.result.get();
      if (!st.ok() && first.ok()) first = st.WithContext(c.where);
    }
    calls.clear();
  }
  return first;
}

ChangeApplier::~ChangeApplier() { (void)Drain(); }

std::string ChangeApplier::TrackEvent(const source::CollectionMeta& meta, const decode::Event& e) {
  Track(meta.db_name, meta.name, decode::MsgTypeName(e.msg_type), decode::DescribePosition(e.position));
  return "task " + task_id_ + ", " + decode::MsgTypeName(e.msg_type) + " of " + meta.db_name + "." + meta.name +
         " at " + decode::DescribePosition(e.position);
}

Status ChangeApplier::ApplyDrop(const source::SourceItem& item, const source::RoutedEvent& r,
                                const std::string& where) {
  const auto& e = r.event;
  const source::CollectionMeta& meta = *r.collection;
  // A drop is written on every shard's channel: it is applied once all of them read it.
  auto everywhere = [&](std::set<std::string>& seen) {
    seen.insert(item.channel);
    for (const auto& ch : meta.pchannels) {
      if (!seen.count(ch) && !ResumedPast(ch, e.end_ts)) return false;
    }
    return true;
  };
  auto [db, name] = TargetOf(meta);
  if (Is(e, MsgType::kDropCollection)) {
    if (!everywhere(drop_seen_[meta.id]) || dropped_.count(meta.id)) return Status::Ok();
    RETURN_IF_ERROR(applier_->DropCollection(db, name).WithContext(where));
    if (standby_) standby_->Forget(meta.id);
    dropped_.insert(meta.id);
    collections_.erase(meta.id);
    drop_seen_.erase(meta.id);
    CountOp("DropCollection");
    return Status::Ok();
  }
  if (!everywhere(partition_drop_seen_[{meta.id, e.partition_id}])) return Status::Ok();
  if (!e.partition_name.empty() && !IsPartitionKeyCollection(meta)) {
    RETURN_IF_ERROR(applier_->DropPartition(db, name, e.partition_name).WithContext(where));
    CountOp("DropPartition");
  }
  partition_drop_seen_.erase({meta.id, e.partition_id});
  return Status::Ok();
}

Status ChangeApplier::ApplyStandby(const source::SourceItem& item) {
  // Every collection the pack writes exists (and is mapped) on the standby first.
  for (const auto& r : item.events) {
    const auto& e = r.event;
    if (dropped_.count(r.collection->id)) continue;
    if (Is(e, MsgType::kInsert) || Is(e, MsgType::kDelete) || Is(e, MsgType::kCreateCollection)) {
      TrackEvent(*r.collection, e);
      RETURN_IF_ERROR(EnsureCollection(*r.collection));
    }
  }
  // Rows per (collection, Insert/Delete), for the metric; counted before drops change dropped_.
  std::map<std::pair<int64_t, int32_t>, std::pair<const source::CollectionMeta*, double>> rows;
  for (const auto& r : item.events) {
    if ((Is(r.event, MsgType::kInsert) || Is(r.event, MsgType::kDelete)) && !dropped_.count(r.collection->id)) {
      auto& [meta, n] = rows[{r.collection->id, r.event.msg_type}];
      meta = r.collection.get();
      n += static_cast<double>(r.event.row_count);
    }
  }
  const int64_t inserted = standby_->rows_inserted(), deleted = standby_->rows_deleted();
  Track("", "", "ReplicateMessage", decode::DescribePosition(item.end_position));
  RETURN_IF_ERROR(standby_->SendPack(item, [this](const source::RoutedEvent& r) {
    return dropped_.count(r.collection->id) > 0 || !standby_->Mapped(r.collection->id);
  }));
  rows_inserted_ += standby_->rows_inserted() - inserted;
  rows_deleted_ += standby_->rows_deleted() - deleted;
  if (!rows.empty()) CountOp("ReplicateMessage");
  for (const auto& [key, value] : rows) {
    metrics_->Add("milvus_cdc_replicate_data_cnt",
                  {{"task_id", task_id_}, {"collection_id", std::to_string(key.first)},
                   {"collection_name", value.first->name}, {"op_type", "write"},
                   {"api_type", key.second == static_cast<int32_t>(MsgType::kInsert) ? "insert" : "delete"}},
                  value.second);
  }
  // Drops: their messages went out with the pack; the call follows once every channel read it.
  for (const auto& r : item.events) {
    if (Is(r.event, MsgType::kDropCollection) || Is(r.event, MsgType::kDropPartition)) {
      RETURN_IF_ERROR(ApplyDrop(item, r, TrackEvent(*r.collection, r.event)));
    }
  }
  return Status::Ok();
}

Status ChangeApplier::ApplyCatalog(const source::CatalogEvent& e) {
  switch (e.kind) {
    case source::CatalogEvent::Kind::kCreateDatabase:
      return EnsureDatabase(scope_->MapDb(e.db_name));
    case source::CatalogEvent::Kind::kDropDatabase:
      CountOp("DropDatabase");
      return DropDatabase(scope_->MapDb(e.db_name));
    case source::CatalogEvent::Kind::kCreateCollection:
      return e.collection ? EnsureCollection(*e.collection) : Status::Ok();
    case source::CatalogEvent::Kind::kCreatePartition: {
      if (!e.collection || IsPartitionKeyCollection(*e.collection)) return Status::Ok();
      if (!collections_.count(e.collection_id)) return EnsureCollection(*e.collection);  // includes partitions
      auto [db, name] = TargetOf(*e.collection);
      RETURN_IF_ERROR(applier_->CreatePartition(db, name, e.partition_name));
      CountOp("CreatePartition");
      return Status::Ok();
    }
    case source::CatalogEvent::Kind::kCreateAlias:
    case source::CatalogEvent::Kind::kDropAlias:
      return ApplyAlias(e);
    case source::CatalogEvent::Kind::kRenameCollection:
      return ApplyRename(e);
    case source::CatalogEvent::Kind::kAlterCollection:
      if (!InScope(e.collection.get()) || !collections_.count(e.collection_id)) return Status::Ok();
      return ApplyProperties(*e.collection);
    case source::CatalogEvent::Kind::kRbacChanged:
      return rbac_ && e.rbac ? rbac_->Sync(*e.rbac) : Status::Ok();
    default:
      return Status::Ok();  // indexes come from the replicate channel, drops from the DML channels
  }
}

Status ChangeApplier::ApplyAlias(const source::CatalogEvent& e) {
  const bool now_in = InScope(e.collection.get());
  const bool was_in = InScope(e.previous.get());
  if (e.kind == source::CatalogEvent::Kind::kDropAlias) {
    if (!now_in) return Status::Ok();  // the alias named a collection of another scope
    RETURN_IF_ERROR(applier_->DropAlias(TargetOf(*e.collection).first, e.alias));
    CountOp("DropAlias");
    return Status::Ok();
  }
  if (now_in) {
    RETURN_IF_ERROR(EnsureCollection(*e.collection));
    auto [db, name] = TargetOf(*e.collection);
    RETURN_IF_ERROR(e.previous ? applier_->AlterAlias(db, name, e.alias) : applier_->CreateAlias(db, name, e.alias));
    CountOp(e.previous ? "AlterAlias" : "CreateAlias");
  } else if (was_in) {  // re-pointed at a collection outside the scope: not ours any more
    RETURN_IF_ERROR(applier_->DropAlias(TargetOf(*e.previous).first, e.alias));
    CountOp("DropAlias");
  }
  return Status::Ok();
}

Status ChangeApplier::ApplyRename(const source::CatalogEvent& e) {
  const bool now_in = InScope(e.collection.get());
  const bool was_in = InScope(e.previous.get());
  auto log = GetLogger("apply");
  if (!now_in) {
    if (was_in) {
      log->warn("task {}: {}.{} was renamed to {}.{}, which is outside the task's scope: it is no longer followed; "
                "the target keeps it as it was",
                task_id_, e.previous->db_name, e.previous->name, e.collection->db_name, e.collection->name);
      collections_.erase(e.collection_id);
    }
    return Status::Ok();
  }
  auto [db, name] = scope_->Map(e.collection->db_name, e.collection->name);
  auto on_target = collections_.find(e.collection_id);
  if (!was_in || on_target == collections_.end()) {
    // Entered the scope (or not created yet): from now on it is followed under its new name;
    // with backfill its existing rows are copied too.
    RETURN_IF_ERROR(EnsureCollection(*e.collection));
    if (!was_in && on_enter_scope_) on_enter_scope_(e.collection_id);
    return Status::Ok();
  }
  if (on_target->second == std::make_pair(db, name)) return Status::Ok();  // same target name (name_mapping)
  RETURN_IF_ERROR(EnsureDatabase(db));
  RETURN_IF_ERROR(applier_->RenameCollection(on_target->second.first, on_target->second.second, db, name));
  CountOp("RenameCollection");
  log->info("task {}: {}.{} renamed to {}.{} on the target", task_id_, on_target->second.first,
            on_target->second.second, db, name);
  on_target->second = {db, name};
  return Status::Ok();
}

std::pair<std::string, std::string> ChangeApplier::MapReplicated(const std::string& db, const std::string& name) const {
  auto meta = catalog_->CollectionByName(db, name);
  if (!meta) meta = catalog_->CollectionByFormerName(db, name);
  return meta ? TargetOf(*meta) : scope_->Map(db, name);
}

Status ChangeApplier::ApplyReplicate(const decode::Event& e) {
  Track(DbOrDefault(e.db_name), decode::CollectionNamesOf(e).empty() ? "" : decode::CollectionNamesOf(e).front(),
        decode::MsgTypeName(e.msg_type), decode::DescribePosition(e.position));
  auto map = [&](auto req) {
    auto [db, name] = MapReplicated(DbOrDefault(req.db_name()), req.collection_name());
    req.set_db_name(db);
    req.set_collection_name(name);
    return req;
  };
  Status st;
  std::string api = decode::MsgTypeName(e.msg_type);
  if (const auto* r = decode::PayloadAs<milvuspb::CreateDatabaseRequest>(e)) {
    st = EnsureDatabase(scope_->MapDb(r->db_name()));
  } else if (const auto* r = decode::PayloadAs<milvuspb::DropDatabaseRequest>(e)) {
    st = DropDatabase(scope_->MapDb(r->db_name()));
  } else if (const auto* r = decode::PayloadAs<milvuspb::CreateIndexRequest>(e)) {
    st = applier_->CreateIndex(map(*r));
  } else if (const auto* r = decode::PayloadAs<milvuspb::DropIndexRequest>(e)) {
    st = applier_->DropIndex(map(*r));
  } else if (const auto* r = decode::PayloadAs<milvuspb::LoadCollectionRequest>(e)) {
    st = applier_->LoadCollection(map(*r));
  } else if (const auto* r = decode::PayloadAs<milvuspb::ReleaseCollectionRequest>(e)) {
    st = applier_->ReleaseCollection(map(*r));
  } else if (const auto* r = decode::PayloadAs<milvuspb::LoadPartitionsRequest>(e)) {
    st = applier_->LoadPartitions(map(*r));
  } else if (const auto* r = decode::PayloadAs<milvuspb::ReleasePartitionsRequest>(e)) {
    st = applier_->ReleasePartitions(map(*r));
  } else if (const auto* r = decode::PayloadAs<milvuspb::FlushRequest>(e)) {
    // One Flush per target database, with the in-scope collections renamed.
    std::map<std::string, milvuspb::FlushRequest> by_db;
    const std::string src_db = DbOrDefault(r->db_name());
    for (const auto& coll : r->collection_names()) {
      if (!scope_->CollectionInScope(src_db, coll)) continue;
      auto [db, name] = MapReplicated(src_db, coll);
      by_db[db].set_db_name(db);
      by_db[db].add_collection_names(name);
    }
    for (auto& [db, req] : by_db) {
      st = applier_->Flush(req);
      if (!st.ok()) break;
    }
  } else {
    if (not_replicated_.insert(e.msg_type).second) {
      GetLogger("apply")->info("task {}: {} from the replicate channel is not replicated", task_id_, api);
    }
    return Status::Ok();
  }
  if (!st.ok()) return st.WithContext("task " + task_id_ + ", " + api + " at " + decode::DescribePosition(e.position));
  CountOp(api);
  return Status::Ok();
}

}  // namespace cdc::pipeline

#include "source/catalog.h"

#include <charconv>

#include "milvus/etcd_meta.pb.h"
#include "milvus/index_coord.pb.h"

namespace cdc::source {

namespace etcdpb = milvus::proto::etcd;
namespace indexpb = milvus::proto::index;
namespace schemapb = milvus::proto::schema;

namespace {

constexpr std::string_view kTombstone = "\xE2\x9B\xBC";
constexpr int64_t kDefaultDbId = 1;

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::vector<std::string_view> SplitPath(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) slash = s.size();
    parts.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// What a key under the meta root is about.
struct KeyInfo {
  enum class Kind { kOther, kDatabase, kCollection, kPartition, kField, kIndex, kAlias, kCredential } kind = Kind::kOther;
  int64_t db_id = 0;
  int64_t collection_id = 0;
  int64_t child_id = 0;  // partition, field or index id
  std::string name;      // alias name; credential key below "root-coord/credential/"
};

constexpr std::string_view kCredentialPrefix = "root-coord/credential/";

KeyInfo Classify(std::string_view rel) {
  KeyInfo k;
  auto p = SplitPath(rel);
  if (p.size() == 4 && p[0] == "root-coord" && p[1] == "database" && p[2] == "db-info") {
    if (ParseInt(p[3], &k.db_id)) k.kind = KeyInfo::Kind::kDatabase;
  } else if (p.size() == 5 && p[0] == "root-coord" && p[1] == "database" && p[2] == "collection-info") {
    if (ParseInt(p[3], &k.db_id) && ParseInt(p[4], &k.collection_id)) k.kind = KeyInfo::Kind::kCollection;
  } else if (p.size() == 3 && p[0] == "root-coord" && p[1] == "collection") {
    k.db_id = kDefaultDbId;  // clusters upgraded from 2.2 keep pre-database keys
    if (ParseInt(p[2], &k.collection_id)) k.kind = KeyInfo::Kind::kCollection;
  } else if (p.size() == 4 && p[0] == "root-coord" && p[1] == "partitions") {
    if (ParseInt(p[2], &k.collection_id) && ParseInt(p[3], &k.child_id)) k.kind = KeyInfo::Kind::kPartition;
  } else if (p.size() == 4 && p[0] == "root-coord" && p[1] == "fields") {
    if (ParseInt(p[2], &k.collection_id) && ParseInt(p[3], &k.child_id)) k.kind = KeyInfo::Kind::kField;
  } else if (p.size() == 3 && p[0] == "field-index") {
    if (ParseInt(p[1], &k.collection_id) && ParseInt(p[2], &k.child_id)) k.kind = KeyInfo::Kind::kIndex;
  } else if (p.size() == 5 && p[0] == "root-coord" && p[1] == "database" && p[2] == "aliases") {
    if (ParseInt(p[3], &k.db_id) && !p[4].empty()) {
      k.kind = KeyInfo::Kind::kAlias;
      k.name = std::string(p[4]);
    }
  } else if (p.size() == 3 && p[0] == "root-coord" && p[1] == "aliases" && !p[2].empty()) {
    k.db_id = kDefaultDbId;  // pre-database alias keys
    k.kind = KeyInfo::Kind::kAlias;
    k.name = std::string(p[2]);
  } else if (StartsWith(rel, kCredentialPrefix)) {
    k.kind = KeyInfo::Kind::kCredential;
    k.name = std::string(rel.substr(kCredentialPrefix.size()));
  }
  return k;
}

CatalogEvent MakeEvent(CatalogEvent::Kind kind) {
  CatalogEvent e;
  e.kind = kind;
  return e;
}

// An event about one collection, its names filled from `c`.
CatalogEvent CollectionEvent(CatalogEvent::Kind kind, std::shared_ptr<const CollectionMeta> c) {
  CatalogEvent e = MakeEvent(kind);
  e.db_name = c->db_name;
  e.collection_id = c->id;
  e.collection_name = c->name;
  e.collection = std::move(c);
  return e;
}

}  // namespace

bool IsTombstone(std::string_view value) { return value == kTombstone; }

const char* CatalogEventName(CatalogEvent::Kind kind) {
  switch (kind) {
    case CatalogEvent::Kind::kCreateDatabase: return "CreateDatabase";
    case CatalogEvent::Kind::kDropDatabase: return "DropDatabase";
    case CatalogEvent::Kind::kCreateCollection: return "CreateCollection";
    case CatalogEvent::Kind::kDropCollection: return "DropCollection";
    case CatalogEvent::Kind::kCreatePartition: return "CreatePartition";
    case CatalogEvent::Kind::kDropPartition: return "DropPartition";
    case CatalogEvent::Kind::kCreateIndex: return "CreateIndex";
    case CatalogEvent::Kind::kDropIndex: return "DropIndex";
    case CatalogEvent::Kind::kCreateAlias: return "CreateAlias";
    case CatalogEvent::Kind::kDropAlias: return "DropAlias";
    case CatalogEvent::Kind::kRenameCollection: return "RenameCollection";
    case CatalogEvent::Kind::kAlterCollection: return "AlterCollection";
    case CatalogEvent::Kind::kRbacChanged: return "RbacChanged";
  }
  return "Unknown";
}

struct Catalog::Raw {
  bool has_info = false;
  etcdpb::CollectionInfo info;
  int64_t db_id = 0;
  std::map<int64_t, schemapb::FieldSchema> fields;
  std::map<int64_t, etcdpb::PartitionInfo> partitions;  // not dropping or dropped
  std::map<int64_t, indexpb::FieldIndex> indexes;       // not deleted
  bool announced = false;                               // the collection is live and was published
  bool dropped = false;
};

Catalog::Catalog(std::string meta_root) : root_(meta_root.empty() || meta_root.back() == '/' ? meta_root : meta_root + "/") {}

std::vector<std::string> Catalog::WatchPrefixes() const { return {root_ + "root-coord/", root_ + "field-index/"}; }

Status Catalog::LoadSnapshot(const std::vector<Kv>& kvs, std::vector<std::string>* problems) {
  std::lock_guard<std::mutex> lock(mu_);
  databases_.clear();
  dropped_db_names_.clear();
  raw_.clear();
  collections_.clear();
  dropped_.clear();
  key_revision_.clear();
  aliases_.clear();
  former_names_.clear();
  rbac_.Clear();
  // Databases first so collections resolve their names; collection infos last so
  // their fields and partitions are in place when they are published.
  auto rank = [this](const std::string& key) {
    auto kind = Classify(std::string_view(key).substr(std::min(key.size(), root_.size()))).kind;
    return kind == KeyInfo::Kind::kDatabase ? 0 : kind == KeyInfo::Kind::kCollection ? 2 : 1;
  };
  // Within a rank, values before tombstones: a collection renamed into another database has
  // a value under its new key and a tombstone under its old one.
  for (int pass = 0; pass < 6; ++pass) {
    for (const auto& [key, value, revision] : kvs) {
      if (rank(key) * 2 + (IsTombstone(value) ? 1 : 0) != pass) continue;
      key_revision_[key] = revision;
      if (!StartsWith(key, root_)) continue;
      KeyInfo k = Classify(std::string_view(key).substr(root_.size()));
      if (k.kind == KeyInfo::Kind::kOther) continue;
      if (!IsTombstone(value) && k.kind != KeyInfo::Kind::kField) {
        // Parse errors are reported by PutLocked's callers only here, during a snapshot.
        bool ok = true;
        if (k.kind == KeyInfo::Kind::kDatabase) ok = etcdpb::DatabaseInfo().ParseFromString(value);
        if (k.kind == KeyInfo::Kind::kCollection) ok = etcdpb::CollectionInfo().ParseFromString(value);
        if (k.kind == KeyInfo::Kind::kPartition) ok = etcdpb::PartitionInfo().ParseFromString(value);
        if (k.kind == KeyInfo::Kind::kIndex) ok = indexpb::FieldIndex().ParseFromString(value);
        if (k.kind == KeyInfo::Kind::kAlias) ok = etcdpb::AliasInfo().ParseFromString(value);
        if (!ok && problems) problems->push_back("cannot parse etcd value of " + key);
      }
      PutLocked(key, value, /*emit=*/false);
    }
  }
  rbac_state_ = std::make_shared<RbacState>(rbac_.State());
  return Status::Ok();
}

bool Catalog::IsStaleLocked(std::string_view key, int64_t revision) {
  if (revision <= 0) return false;
  auto it = key_revision_.find(key);
  if (it != key_revision_.end() && it->second >= revision) return true;
  key_revision_[std::string(key)] = revision;
  return false;
}

std::vector<CatalogEvent> Catalog::Put(std::string_view key, std::string_view value, int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (IsStaleLocked(key, revision)) return {};
  return PutLocked(key, value, true);
}

std::vector<CatalogEvent> Catalog::Delete(std::string_view key, int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (IsStaleLocked(key, revision)) return {};
  return DeleteLocked(key, true);
}

std::vector<CatalogEvent> Catalog::PutLocked(std::string_view key, std::string_view value, bool emit) {
  std::vector<CatalogEvent> events;
  if (!StartsWith(key, root_)) return events;
  KeyInfo k = Classify(key.substr(root_.size()));
  if (k.kind == KeyInfo::Kind::kOther) return events;
  if (IsTombstone(value)) return DeleteLocked(key, emit);

  switch (k.kind) {
    case KeyInfo::Kind::kDatabase: {
      etcdpb::DatabaseInfo info;
      if (!info.ParseFromArray(value.data(), static_cast<int>(value.size()))) return events;
      if (info.state() == etcdpb::DatabaseDropping || info.state() == etcdpb::DatabaseDropped) {
        return DeleteLocked(key, emit);
      }
      if (info.state() == etcdpb::DatabaseCreating) return events;
      bool is_new = databases_.count(k.db_id) == 0;
      databases_[k.db_id] = DatabaseMeta{k.db_id, info.name(), info.created_time()};
      if (emit && is_new) {
        CatalogEvent e = MakeEvent(CatalogEvent::Kind::kCreateDatabase);
        e.db_name = info.name();
        e.ts = info.created_time();
        events.push_back(std::move(e));
      }
      return events;
    }
    case KeyInfo::Kind::kCollection: {
      etcdpb::CollectionInfo info;
      if (!info.ParseFromArray(value.data(), static_cast<int>(value.size()))) return events;
      auto& raw = raw_[k.collection_id];
      if (!raw) raw = std::make_shared<Raw>();
      raw->has_info = true;
      raw->info = std::move(info);
      raw->db_id = raw->info.db_id() != 0 ? raw->info.db_id() : k.db_id;
      const auto state = raw->info.state();
      if (state == etcdpb::CollectionDropping || state == etcdpb::CollectionDropped) {
        return DeleteLocked(key, emit);
      }
      if (state != etcdpb::CollectionCreated) return events;  // Creating: not visible yet
      std::shared_ptr<const CollectionMeta> before;
      if (auto b = collections_.find(k.collection_id); raw->announced && b != collections_.end()) before = b->second;
      RebuildLocked(k.collection_id);
      if (before && emit) {
        auto after = collections_[k.collection_id];
        if (before->db_id != after->db_id || before->name != after->name) {
          former_names_[{before->db_name, before->name}] = k.collection_id;
          former_names_.erase({after->db_name, after->name});
          CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kRenameCollection, after);
          e.previous = before;
          events.push_back(std::move(e));  // ts 0: before any data read after it
        }
        // Any rewrite may be an AlterCollection: Milvus 2.3 writes the properties one alter
        // late, so an alter can leave them unchanged here (the applier asks the source).
        CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kAlterCollection, after);
        e.previous = before;
        events.push_back(std::move(e));
      }
      if (!raw->announced) {
        raw->announced = true;
        if (emit) {
          CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kCreateCollection, collections_[k.collection_id]);
          e.ts = raw->info.create_time();
          events.push_back(std::move(e));
        }
      }
      return events;
    }
    case KeyInfo::Kind::kPartition: {
      etcdpb::PartitionInfo info;
      if (!info.ParseFromArray(value.data(), static_cast<int>(value.size()))) return events;
      if (info.state() == etcdpb::PartitionDropping || info.state() == etcdpb::PartitionDropped) {
        return DeleteLocked(key, emit);
      }
      if (info.state() != etcdpb::PartitionCreated) return events;
      auto& raw = raw_[k.collection_id];
      if (!raw) raw = std::make_shared<Raw>();
      bool is_new = raw->partitions.count(k.child_id) == 0;
      raw->partitions[k.child_id] = info;
      if (raw->announced) {
        RebuildLocked(k.collection_id);
        if (emit && is_new) {
          CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kCreatePartition, collections_[k.collection_id]);
          e.partition_id = k.child_id;
          e.partition_name = info.partitionname();
          e.ts = info.partition_created_timestamp();
          events.push_back(std::move(e));
        }
      }
      return events;
    }
    case KeyInfo::Kind::kField: {
      schemapb::FieldSchema field;
      if (!field.ParseFromArray(value.data(), static_cast<int>(value.size()))) return events;
      auto& raw = raw_[k.collection_id];
      if (!raw) raw = std::make_shared<Raw>();
      raw->fields[k.child_id] = std::move(field);
      if (raw->announced) RebuildLocked(k.collection_id);
      return events;
    }
    case KeyInfo::Kind::kIndex: {
      indexpb::FieldIndex index;
      if (!index.ParseFromArray(value.data(), static_cast<int>(value.size()))) return events;
      if (index.deleted()) return DeleteLocked(key, emit);
      auto& raw = raw_[k.collection_id];
      if (!raw) raw = std::make_shared<Raw>();
      bool is_new = raw->indexes.count(k.child_id) == 0;
      raw->indexes[k.child_id] = index;
      if (raw->announced) {
        RebuildLocked(k.collection_id);
        if (emit && is_new) {
          CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kCreateIndex, collections_[k.collection_id]);
          e.index_name = index.index_info().index_name();
          e.ts = index.create_time();
          events.push_back(std::move(e));
        }
      }
      return events;
    }
    case KeyInfo::Kind::kAlias:
      return PutAliasLocked({k.db_id, k.name}, value, emit);
    case KeyInfo::Kind::kCredential:
      return RbacEventLocked(rbac_.Put(k.name, value), emit);
    case KeyInfo::Kind::kOther:
      break;
  }
  return events;
}

std::vector<CatalogEvent> Catalog::PutAliasLocked(const std::pair<int64_t, std::string>& key, std::string_view value,
                                                  bool emit) {
  etcdpb::AliasInfo info;
  if (!info.ParseFromArray(value.data(), static_cast<int>(value.size()))) return {};
  if (info.state() == etcdpb::AliasDropping || info.state() == etcdpb::AliasDropped) return DropAliasLocked(key, emit);
  if (info.state() != etcdpb::AliasCreated) return {};
  AliasMeta a{key.second, key.first, DbNameLocked(key.first), info.collection_id(), info.created_time()};
  std::optional<int64_t> before;
  if (auto it = aliases_.find(key); it != aliases_.end()) before = it->second.collection_id;
  aliases_[key] = a;
  if (!emit || (before && *before == a.collection_id)) return {};
  auto view = [this](int64_t id) -> std::shared_ptr<const CollectionMeta> {
    if (auto it = collections_.find(id); it != collections_.end()) return it->second;
    if (auto it = dropped_.find(id); it != dropped_.end()) return it->second;
    return nullptr;
  };
  CatalogEvent e = MakeEvent(CatalogEvent::Kind::kCreateAlias);
  e.alias = a.name;
  e.db_name = a.db_name;
  e.collection_id = a.collection_id;
  e.collection = view(a.collection_id);
  if (e.collection) e.collection_name = e.collection->name;
  if (before) e.previous = view(*before);
  e.ts = before ? 0 : a.created_time;
  return {std::move(e)};
}

std::vector<CatalogEvent> Catalog::DropAliasLocked(const std::pair<int64_t, std::string>& key, bool emit) {
  auto it = aliases_.find(key);
  if (it == aliases_.end()) return {};
  AliasMeta a = std::move(it->second);
  aliases_.erase(it);
  if (!emit) return {};
  CatalogEvent e = MakeEvent(CatalogEvent::Kind::kDropAlias);
  e.alias = a.name;
  e.db_name = a.db_name;
  e.collection_id = a.collection_id;
  if (auto c = collections_.find(a.collection_id); c != collections_.end()) e.collection = c->second;
  if (auto c = dropped_.find(a.collection_id); !e.collection && c != dropped_.end()) e.collection = c->second;
  if (e.collection) e.collection_name = e.collection->name;
  return {std::move(e)};
}

std::vector<CatalogEvent> Catalog::RbacEventLocked(bool changed, bool emit) {
  if (!changed) return {};
  rbac_state_ = std::make_shared<RbacState>(rbac_.State());
  if (!emit) return {};
  CatalogEvent e = MakeEvent(CatalogEvent::Kind::kRbacChanged);
  e.rbac = rbac_state_;
  return {std::move(e)};
}

std::vector<CatalogEvent> Catalog::DeleteLocked(std::string_view key, bool emit) {
  std::vector<CatalogEvent> events;
  if (!StartsWith(key, root_)) return events;
  KeyInfo k = Classify(key.substr(root_.size()));
  switch (k.kind) {
    case KeyInfo::Kind::kDatabase: {
      auto it = databases_.find(k.db_id);
      if (it == databases_.end()) return events;
      if (emit) {
        CatalogEvent e = MakeEvent(CatalogEvent::Kind::kDropDatabase);
        e.db_name = it->second.name;
        events.push_back(std::move(e));
      }
      dropped_db_names_[k.db_id] = it->second.name;
      databases_.erase(it);
      return events;
    }
    case KeyInfo::Kind::kCollection: {
      auto it = raw_.find(k.collection_id);
      if (it == raw_.end()) return events;
      // A rename into another database writes the new key, then tombstones the old one.
      if (it->second->has_info && it->second->db_id != k.db_id) return events;
      auto built = collections_.find(k.collection_id);
      if (built == collections_.end() && it->second->has_info && !it->second->dropped) {
        RebuildLocked(k.collection_id);  // keep a view of a collection first seen while dropping
        built = collections_.find(k.collection_id);
      }
      if (emit && it->second->announced && !it->second->dropped && built != collections_.end()) {
        CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kDropCollection, built->second);
        events.push_back(std::move(e));
      }
      it->second->dropped = true;
      if (built != collections_.end()) dropped_[k.collection_id] = built->second;
      collections_.erase(k.collection_id);
      return events;
    }
    case KeyInfo::Kind::kPartition: {
      auto it = raw_.find(k.collection_id);
      if (it == raw_.end()) return events;
      auto part = it->second->partitions.find(k.child_id);
      if (part == it->second->partitions.end()) return events;
      std::string name = part->second.partitionname();
      it->second->partitions.erase(part);
      if (it->second->announced && !it->second->dropped) {
        RebuildLocked(k.collection_id);
        if (emit) {
          CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kDropPartition, collections_[k.collection_id]);
          e.partition_id = k.child_id;
          e.partition_name = name;
          events.push_back(std::move(e));
        }
      }
      return events;
    }
    case KeyInfo::Kind::kField: {
      auto it = raw_.find(k.collection_id);
      if (it != raw_.end()) it->second->fields.erase(k.child_id);
      return events;
    }
    case KeyInfo::Kind::kIndex: {
      auto it = raw_.find(k.collection_id);
      if (it == raw_.end()) return events;
      auto idx = it->second->indexes.find(k.child_id);
      if (idx == it->second->indexes.end()) return events;
      std::string name = idx->second.index_info().index_name();
      it->second->indexes.erase(idx);
      if (it->second->announced && !it->second->dropped) {
        RebuildLocked(k.collection_id);
        if (emit) {
          CatalogEvent e = CollectionEvent(CatalogEvent::Kind::kDropIndex, collections_[k.collection_id]);
          e.index_name = name;
          events.push_back(std::move(e));
        }
      }
      return events;
    }
    case KeyInfo::Kind::kAlias:
      return DropAliasLocked({k.db_id, k.name}, emit);
    case KeyInfo::Kind::kCredential:
      return RbacEventLocked(rbac_.Delete(k.name), emit);
    case KeyInfo::Kind::kOther:
      break;
  }
  return events;
}

void Catalog::RebuildLocked(int64_t id) {
  auto it = raw_.find(id);
  if (it == raw_.end() || !it->second->has_info || it->second->dropped) return;
  const Raw& raw = *it->second;
  auto meta = std::make_shared<CollectionMeta>();
  meta->id = id;
  meta->db_id = raw.db_id;
  meta->db_name = DbNameLocked(raw.db_id);
  meta->name = raw.info.schema().name();
  meta->schema.set_name(raw.info.schema().name());
  meta->schema.set_description(raw.info.schema().description());
  meta->schema.set_enable_dynamic_field(raw.info.schema().enable_dynamic_field());
  for (const auto& [field_id, field] : raw.fields) {  // std::map: field-id order
    if (field.is_dynamic() || field.name() == "$meta") {
      meta->schema.set_enable_dynamic_field(true);
      continue;
    }
    if (field_id < 100) continue;  // RowID and Timestamp
    *meta->schema.add_fields() = field;
    if (field.is_primary_key()) meta->pk_field_id = field_id;
  }
  meta->shards_num = raw.info.shards_num();
  meta->consistency_level = raw.info.consistency_level();
  for (const auto& kv : raw.info.properties()) meta->properties.emplace_back(kv.key(), kv.value());
  meta->vchannels.assign(raw.info.virtual_channel_names().begin(), raw.info.virtual_channel_names().end());
  meta->pchannels.assign(raw.info.physical_channel_names().begin(), raw.info.physical_channel_names().end());
  for (const auto& sp : raw.info.start_positions()) meta->start_positions[sp.key()] = sp.data();
  meta->create_time = raw.info.create_time();
  meta->state = raw.info.state();
  for (const auto& [pid, p] : raw.partitions) {
    meta->partitions[pid] = PartitionMeta{pid, p.partitionname(), p.partition_created_timestamp()};
  }
  for (const auto& [iid, idx] : raw.indexes) {
    IndexMeta im;
    im.index_id = iid;
    im.field_id = idx.index_info().fieldid();
    im.index_name = idx.index_info().index_name();
    // What the user asked for (as DescribeIndex shows it, e.g. with "params": "{}"); older
    // records have only the resolved index_params.
    const auto& params = idx.index_info().user_index_params_size() > 0 ? idx.index_info().user_index_params()
                                                                        : idx.index_info().index_params();
    for (const auto& kv : params) im.index_params.emplace_back(kv.key(), kv.value());
    im.create_time = idx.create_time();
    meta->indexes[iid] = std::move(im);
  }
  collections_[id] = std::move(meta);
}

std::string Catalog::DbNameLocked(int64_t db_id) const {
  if (auto it = databases_.find(db_id); it != databases_.end()) return it->second.name;
  if (auto it = dropped_db_names_.find(db_id); it != dropped_db_names_.end()) return it->second;
  if (db_id == kDefaultDbId || db_id == 0) return "default";
  return "";
}

std::shared_ptr<const CollectionMeta> Catalog::CollectionById(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(id);
  return it == collections_.end() ? nullptr : it->second;
}

std::shared_ptr<const CollectionMeta> Catalog::CollectionByIdAny(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = collections_.find(id); it != collections_.end()) return it->second;
  if (auto it = dropped_.find(id); it != dropped_.end()) return it->second;
  return nullptr;
}

std::shared_ptr<const CollectionMeta> Catalog::CollectionByName(const std::string& db, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<const CollectionMeta> best;
  for (const auto& [id, c] : collections_) {
    if (c->db_name == db && c->name == name && (!best || c->create_time > best->create_time)) best = c;
  }
  return best;
}

std::vector<std::shared_ptr<const CollectionMeta>> Catalog::Collections() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const CollectionMeta>> out;
  for (const auto& [id, c] : collections_) out.push_back(c);
  return out;
}

std::vector<DatabaseMeta> Catalog::Databases() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DatabaseMeta> out;
  for (const auto& [id, d] : databases_) out.push_back(d);
  return out;
}

std::optional<std::string> Catalog::DatabaseName(int64_t db_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string name = DbNameLocked(db_id);
  if (name.empty()) return std::nullopt;
  return name;
}

std::optional<int64_t> Catalog::CollectionOfVchannel(const std::string& vchannel) const {
  auto underscore = vchannel.rfind('_');
  if (underscore == std::string::npos) return std::nullopt;
  auto v = vchannel.find('v', underscore);
  if (v == std::string::npos) return std::nullopt;
  int64_t id = 0;
  if (!ParseInt(std::string_view(vchannel).substr(underscore + 1, v - underscore - 1), &id)) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  if (collections_.count(id) == 0) return std::nullopt;
  return id;
}

}  // namespace cdc::source

namespace cdc::source {

std::vector<AliasMeta> Catalog::Aliases() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AliasMeta> out;
  for (const auto& [key, a] : aliases_) out.push_back(a);
  return out;
}

std::vector<AliasMeta> Catalog::AliasesOf(int64_t collection_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AliasMeta> out;
  for (const auto& [key, a] : aliases_) {
    if (a.collection_id == collection_id) out.push_back(a);
  }
  return out;
}

std::shared_ptr<const CollectionMeta> Catalog::CollectionByFormerName(const std::string& db,
                                                                      const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = former_names_.find({db, name});
  if (it == former_names_.end()) return nullptr;
  auto c = collections_.find(it->second);
  return c == collections_.end() ? nullptr : c->second;
}

std::shared_ptr<const RbacState> Catalog::Rbac() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rbac_state_;
}

}  // namespace cdc::source

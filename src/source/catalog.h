// Catalog: the source Milvus's databases, collections (schema, channels, start
// positions), partitions and indexes, rebuilt from its etcd metadata. Fed with raw
// etcd keys and values (a snapshot, then watch events) by the MetaFollower; tells
// what changed as CatalogEvents. Thread-safe: one mutex; readers get immutable
// snapshots (shared_ptr<const ...>).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema.pb.h"
#include "source/rbac.h"
#include "util/status.h"

namespace cdc::source {

struct DatabaseMeta {
  int64_t id = 0;
  std::string name;
  uint64_t created_time = 0;
};

struct PartitionMeta {
  int64_t id = 0;
  std::string name;
  uint64_t created_ts = 0;
};

struct IndexMeta {
  int64_t index_id = 0;
  int64_t field_id = 0;
  std::string index_name;
  std::vector<std::pair<std::string, std::string>> index_params;  // user params when auto index
  uint64_t create_time = 0;
};

struct AliasMeta {
  std::string name;
  int64_t db_id = 0;
  std::string db_name;
  int64_t collection_id = 0;
  uint64_t created_time = 0;
};

struct CollectionMeta {
  int64_t id = 0;
  int64_t db_id = 0;
  std::string db_name;
  std::string name;
  // User fields only, in field-id order; `$meta` becomes enable_dynamic_field.
  milvus::proto::schema::CollectionSchema schema;
  int64_t pk_field_id = 0;
  int32_t shards_num = 0;
  int32_t consistency_level = 0;
  std::vector<std::pair<std::string, std::string>> properties;
  std::vector<std::string> vchannels;  // indexed by shard
  std::vector<std::string> pchannels;  // indexed by shard
  std::map<std::string, std::string> start_positions;  // pchannel -> MQ id bytes
  uint64_t create_time = 0;
  int32_t state = 0;  // etcdpb.CollectionState: 0 Created, 1 Creating, 2 Dropping, 3 Dropped
  std::map<int64_t, PartitionMeta> partitions;
  std::map<int64_t, IndexMeta> indexes;
};

struct CatalogEvent {
  enum class Kind {
    kCreateDatabase,
    kDropDatabase,
    kCreateCollection,
    kDropCollection,
    kCreatePartition,
    kDropPartition,
    kCreateIndex,
    kDropIndex,
    kCreateAlias,       // also an alias re-pointed (AlterAlias): `previous` is its old collection
    kDropAlias,
    kRenameCollection,  // `previous` is the collection under its old database and name
    kAlterCollection,   // the collection's info was rewritten: its properties may have changed
    kRbacChanged,       // roles, users, bindings or grants changed: `rbac` is the new state
  };
  Kind kind = Kind::kCreateDatabase;
  std::string db_name;
  int64_t collection_id = 0;
  std::string collection_name;
  int64_t partition_id = 0;
  std::string partition_name;
  std::string index_name;
  std::string alias;
  uint64_t ts = 0;  // the DDL's hybrid timestamp where etcd has it
  // The collection as it was when the event happened (create: complete; drop: last known;
  // alias: the collection it names, null when the catalog does not know it).
  std::shared_ptr<const CollectionMeta> collection;
  std::shared_ptr<const CollectionMeta> previous;  // see Kind
  std::shared_ptr<const RbacState> rbac;          // kRbacChanged
};

const char* CatalogEventName(CatalogEvent::Kind kind);

class Catalog {
 public:
  // `meta_root` is "<etcd rootPath>/<metaSubPath>", e.g. "by-dev/meta".
  explicit Catalog(std::string meta_root);

  // Prefixes to read and watch, in this order.
  std::vector<std::string> WatchPrefixes() const;

  // Replaces the whole state with a snapshot of every key under WatchPrefixes().
  // Emits no events. Values that cannot be parsed are skipped and reported.
  struct Kv {
    std::string key;
    std::string value;
    int64_t revision = 0;
  };
  Status LoadSnapshot(const std::vector<Kv>& kvs, std::vector<std::string>* problems = nullptr);

  // Applies one change. `revision` is the etcd mod revision of the change (0: unknown,
  // always applied); a change older than what was already applied to the key is ignored,
  // so a direct re-read and a lagging watch can be mixed safely. Returns what changed.
  std::vector<CatalogEvent> Put(std::string_view key, std::string_view value, int64_t revision = 0);
  std::vector<CatalogEvent> Delete(std::string_view key, int64_t revision = 0);

  std::shared_ptr<const CollectionMeta> CollectionById(int64_t id) const;
  // Also finds dropped collections (their last known shape), for log messages that were
  // written before the drop and are read after it.
  std::shared_ptr<const CollectionMeta> CollectionByIdAny(int64_t id) const;
  std::shared_ptr<const CollectionMeta> CollectionByName(const std::string& db, const std::string& name) const;
  // Live (Created) collections.
  std::vector<std::shared_ptr<const CollectionMeta>> Collections() const;
  std::vector<DatabaseMeta> Databases() const;
  std::optional<std::string> DatabaseName(int64_t db_id) const;
  // The collection whose shard this vchannel is ("<pchannel>_<id>v<shard>").
  std::optional<int64_t> CollectionOfVchannel(const std::string& vchannel) const;
  // Live aliases, and those of one collection.
  std::vector<AliasMeta> Aliases() const;
  std::vector<AliasMeta> AliasesOf(int64_t collection_id) const;
  // The collection a source (db, name) named before it was renamed, if one was.
  std::shared_ptr<const CollectionMeta> CollectionByFormerName(const std::string& db, const std::string& name) const;
  std::shared_ptr<const RbacState> Rbac() const;

 private:
  struct Raw;  // per-collection raw pieces (info, fields, partitions, indexes)

  bool IsStaleLocked(std::string_view key, int64_t revision);
  std::vector<CatalogEvent> PutLocked(std::string_view key, std::string_view value, bool emit);
  std::vector<CatalogEvent> DeleteLocked(std::string_view key, bool emit);
  // Rebuilds the published CollectionMeta of `id` from its raw pieces.
  void RebuildLocked(int64_t id);
  std::string DbNameLocked(int64_t db_id) const;
  std::vector<CatalogEvent> PutAliasLocked(const std::pair<int64_t, std::string>& key, std::string_view value, bool emit);
  std::vector<CatalogEvent> DropAliasLocked(const std::pair<int64_t, std::string>& key, bool emit);
  std::vector<CatalogEvent> RbacEventLocked(bool changed, bool emit);

  const std::string root_;  // meta root with a trailing '/'
  mutable std::mutex mu_;
  std::map<int64_t, DatabaseMeta> databases_;         // live databases
  std::map<int64_t, std::string> dropped_db_names_;   // remembered to resolve late keys
  std::map<int64_t, std::shared_ptr<Raw>> raw_;       // collection id -> raw pieces
  std::map<int64_t, std::shared_ptr<const CollectionMeta>> collections_;  // built views
  std::map<int64_t, std::shared_ptr<const CollectionMeta>> dropped_;  // last view of dropped ones
  std::map<std::string, int64_t, std::less<>> key_revision_;  // last applied mod revision per key
  std::map<std::pair<int64_t, std::string>, AliasMeta> aliases_;  // (db id, alias) -> live alias
  std::map<std::pair<std::string, std::string>, int64_t> former_names_;  // (db, name) before a rename -> id
  RbacKeys rbac_;
  std::shared_ptr<const RbacState> rbac_state_ = std::make_shared<RbacState>();
};

// The tombstone Milvus writes instead of deleting metadata keys.
bool IsTombstone(std::string_view value);

}  // namespace cdc::source

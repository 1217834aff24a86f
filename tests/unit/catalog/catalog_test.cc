// Catalog: etcd keys and values in, collections and events out. Values are built with
// the same protos Milvus writes; key layouts follow what the test bed shows.
#include "source/catalog.h"

#include <gtest/gtest.h>

#include "milvus/etcd_meta.pb.h"
#include "milvus/index_coord.pb.h"

namespace cdc::source {
namespace {

namespace etcdpb = milvus::proto::etcd;
namespace schemapb = milvus::proto::schema;

const std::string kRoot = "by-dev/meta/";
const std::string kTomb = "\xE2\x9B\xBC";

std::string Db(int64_t id, const std::string& name, etcdpb::DatabaseState state = etcdpb::DatabaseCreated) {
  etcdpb::DatabaseInfo info;
  info.set_id(id);
  info.set_name(name);
  info.set_state(state);
  info.set_created_time(111);
  return info.SerializeAsString();
}

std::string Coll(int64_t id, int64_t db, const std::string& name, etcdpb::CollectionState state, int shards = 2) {
  etcdpb::CollectionInfo info;
  info.set_id(id);
  info.set_db_id(db);
  info.mutable_schema()->set_name(name);
  info.set_create_time(4242);
  info.set_shards_num(shards);
  info.set_state(state);
  for (int i = 0; i < shards; ++i) {
    std::string p = "by-dev-rootcoord-dml_" + std::to_string(i);
    info.add_physical_channel_names(p);
    info.add_virtual_channel_names(p + "_" + std::to_string(id) + "v" + std::to_string(i));
    auto* sp = info.add_start_positions();
    sp->set_key(p);
    sp->set_data(std::string("\x05\0\0\0\0\0\0\0", 8));
  }
  auto* prop = info.add_properties();
  prop->set_key("collection.ttl.seconds");
  prop->set_value("60");
  return info.SerializeAsString();
}

std::string Field(int64_t id, const std::string& name, schemapb::DataType type, bool pk = false, bool dynamic = false) {
  schemapb::FieldSchema f;
  f.set_fieldid(id);
  f.set_name(name);
  f.set_data_type(type);
  f.set_is_primary_key(pk);
  f.set_is_dynamic(dynamic);
  return f.SerializeAsString();
}

std::string Part(int64_t id, int64_t coll, const std::string& name, etcdpb::PartitionState state) {
  etcdpb::PartitionInfo p;
  p.set_partitionid(id);
  p.set_collection_id(coll);
  p.set_partitionname(name);
  p.set_state(state);
  return p.SerializeAsString();
}

std::string Index(int64_t id, int64_t field, const std::string& name, bool deleted) {
  milvus::proto::index::FieldIndex idx;
  idx.mutable_index_info()->set_indexid(id);
  idx.mutable_index_info()->set_fieldid(field);
  idx.mutable_index_info()->set_index_name(name);
  auto* kv = idx.mutable_index_info()->add_index_params();
  kv->set_key("index_type");
  kv->set_value("HNSW");
  idx.set_deleted(deleted);
  return idx.SerializeAsString();
}

std::string CollKey(int64_t db, int64_t id) {
  return kRoot + "root-coord/database/collection-info/" + std::to_string(db) + "/" + std::to_string(id);
}

// The sequence rootcoord writes for CreateCollection: Creating, fields, partitions, Created.
std::vector<CatalogEvent> CreateCollection(Catalog& c, int64_t id, int64_t db, const std::string& name) {
  std::vector<CatalogEvent> all;
  auto add = [&](std::vector<CatalogEvent> ev) { all.insert(all.end(), ev.begin(), ev.end()); };
  add(c.Put(CollKey(db, id), Coll(id, db, name, etcdpb::CollectionCreating)));
  std::string f = kRoot + "root-coord/fields/" + std::to_string(id) + "/";
  add(c.Put(f + "0", Field(0, "RowID", schemapb::DataType::Int64)));
  add(c.Put(f + "1", Field(1, "Timestamp", schemapb::DataType::Int64)));
  add(c.Put(f + "101", Field(101, "vec", schemapb::DataType::FloatVector)));
  add(c.Put(f + "100", Field(100, "pk", schemapb::DataType::Int64, true)));
  add(c.Put(f + "102", Field(102, "$meta", schemapb::DataType::JSON, false, true)));
  add(c.Put(kRoot + "root-coord/partitions/" + std::to_string(id) + "/9" + std::to_string(id),
            Part(9, id, "_default", etcdpb::PartitionCreated)));
  add(c.Put(CollKey(db, id), Coll(id, db, name, etcdpb::CollectionCreated)));
  return all;
}

TEST(CatalogTest, CreateCollectionIsAnnouncedOnceWhenCreated) {
  Catalog c("by-dev/meta");
  c.Put(kRoot + "root-coord/database/db-info/1", Db(1, "default"));
  auto events = CreateCollection(c, 500, 1, "books");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, CatalogEvent::Kind::kCreateCollection);
  EXPECT_EQ(events[0].db_name, "default");
  EXPECT_EQ(events[0].collection_name, "books");
  EXPECT_EQ(events[0].ts, 4242u);

  auto meta = c.CollectionById(500);
  ASSERT_TRUE(meta);
  ASSERT_EQ(meta->schema.fields_size(), 2);  // system fields and $meta removed
  EXPECT_EQ(meta->schema.fields(0).name(), "pk");
  EXPECT_EQ(meta->schema.fields(1).name(), "vec");
  EXPECT_TRUE(meta->schema.enable_dynamic_field());
  EXPECT_EQ(meta->pk_field_id, 100);
  EXPECT_EQ(meta->shards_num, 2);
  EXPECT_EQ(meta->vchannels[1], "by-dev-rootcoord-dml_1_500v1");
  EXPECT_EQ(meta->start_positions.at("by-dev-rootcoord-dml_0").size(), 8u);
  EXPECT_EQ(meta->properties.at(0).first, "collection.ttl.seconds");
  EXPECT_EQ(meta->partitions.size(), 1u);
  EXPECT_EQ(c.CollectionOfVchannel("by-dev-rootcoord-dml_1_500v1"), 500);
  EXPECT_FALSE(c.CollectionOfVchannel("by-dev-rootcoord-dml_1_501v1").has_value());
  EXPECT_EQ(c.CollectionByName("default", "books")->id, 500);

  // Re-putting the same Created info announces no new collection, only that its info was
  // rewritten (an AlterCollection: Milvus 2.3 persists the properties one alter late).
  auto again = c.Put(CollKey(1, 500), Coll(500, 1, "books", etcdpb::CollectionCreated));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].kind, CatalogEvent::Kind::kAlterCollection);
}

TEST(CatalogTest, PartitionsIndexesAndDrops) {
  Catalog c("by-dev/meta");
  CreateCollection(c, 7, 1, "c");
  const std::string pkey = kRoot + "root-coord/partitions/7/70";
  EXPECT_TRUE(c.Put(pkey, Part(70, 7, "p1", etcdpb::PartitionCreating)).empty());
  auto ev = c.Put(pkey, Part(70, 7, "p1", etcdpb::PartitionCreated));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kCreatePartition);
  EXPECT_EQ(ev[0].partition_name, "p1");

  const std::string ikey = kRoot + "field-index/7/88";
  ev = c.Put(ikey, Index(88, 101, "vec_idx", false));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kCreateIndex);
  EXPECT_EQ(c.CollectionById(7)->indexes.at(88).index_params.at(0).second, "HNSW");
  ev = c.Put(ikey, Index(88, 101, "vec_idx", true));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kDropIndex);

  ev = c.Put(pkey, Part(70, 7, "p1", etcdpb::PartitionDropping));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kDropPartition);
  EXPECT_TRUE(c.Put(pkey, kTomb).empty());  // the tombstone after Dropping adds nothing

  ev = c.Put(CollKey(1, 7), Coll(7, 1, "c", etcdpb::CollectionDropping));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kDropCollection);
  EXPECT_EQ(ev[0].collection_name, "c");
  EXPECT_FALSE(c.CollectionById(7));
  EXPECT_TRUE(c.Put(CollKey(1, 7), kTomb).empty());
}

TEST(CatalogTest, DatabasesAndNamesAfterDrop) {
  Catalog c("by-dev/meta");
  auto ev = c.Put(kRoot + "root-coord/database/db-info/2", Db(2, "db2"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kCreateDatabase);
  CreateCollection(c, 9, 2, "inner");
  EXPECT_EQ(c.CollectionById(9)->db_name, "db2");
  ev = c.Put(CollKey(2, 9), kTomb);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].db_name, "db2");
  ev = c.Put(kRoot + "root-coord/database/db-info/2", kTomb);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CatalogEvent::Kind::kDropDatabase);
  EXPECT_EQ(ev[0].db_name, "db2");
  EXPECT_EQ(c.DatabaseName(2), "db2");  // remembered for late keys
  EXPECT_EQ(c.Databases().size(), 0u);
}

TEST(CatalogTest, SnapshotLoadsLegacyKeysAndSkipsTombstones) {
  Catalog c("by-dev/meta");
  std::vector<Catalog::Kv> kvs = {
      {kRoot + "root-coord/collection/3", Coll(3, 0, "legacy", etcdpb::CollectionCreated, 1)},
      {kRoot + "root-coord/fields/3/100", Field(100, "id", schemapb::DataType::VarChar, true)},
      {CollKey(1, 4), kTomb},
      {kRoot + "root-coord/database/db-info/1", Db(1, "default")},
      {kRoot + "root-coord/credential/users/root", "{}"},
      {kRoot + "root-coord/fields/5/100", "not a proto \xff\xff"},
  };
  std::vector<std::string> problems;
  ASSERT_TRUE(c.LoadSnapshot(kvs, &problems).ok());
  auto all = c.Collections();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]->name, "legacy");
  EXPECT_EQ(all[0]->db_name, "default");
  EXPECT_EQ(all[0]->pk_field_id, 100);
  EXPECT_EQ(c.Databases().size(), 1u);
}

TEST(CatalogTest, OlderRevisionsAreIgnored) {
  Catalog c("by-dev/meta");
  CreateCollection(c, 11, 1, "r");
  // A direct re-read saw the drop at revision 50; the watch then delivers an older put.
  auto ev = c.Put(CollKey(1, 11), Coll(11, 1, "r", etcdpb::CollectionDropping), 50);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(c.Put(CollKey(1, 11), Coll(11, 1, "r", etcdpb::CollectionCreated), 40).empty());
  EXPECT_FALSE(c.CollectionById(11));
  EXPECT_TRUE(c.Put(CollKey(1, 11), Coll(11, 1, "r", etcdpb::CollectionDropping), 50).empty());
}

TEST(CatalogTest, TombstoneBytes) {
  EXPECT_TRUE(IsTombstone("\xE2\x9B\xBC"));
  EXPECT_FALSE(IsTombstone(""));
}

}  // namespace
}  // namespace cdc::source

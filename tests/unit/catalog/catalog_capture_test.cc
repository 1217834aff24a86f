// Catalog over etcd changes captured from the test bed's Milvus 2.3.5 (tests/testdata/bed-2.3/
// etcd-changes.json, see its "about"): aliases, an alter, renames (also into another database),
// a database, and roles, users and grants, as the watch delivered them.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "milvus/etcd_meta.pb.h"
#include "source/catalog.h"
#include "util/secret_box.h"

namespace cdc::source {
namespace {

namespace etcdpb = milvus::proto::etcd;

struct Captured {
  std::string type, key, value;
  int64_t revision = 0;
};

std::vector<Captured> LoadCapture() {
  std::ifstream in(std::string(CDC_TESTDATA_DIR) + "/bed-2.3/etcd-changes.json");
  EXPECT_TRUE(in) << "missing capture";
  auto doc = nlohmann::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  std::vector<Captured> out;
  for (const auto& e : doc.at("events")) {
    auto value = Base64Decode(e.at("value").get<std::string>());
    EXPECT_TRUE(value.ok());
    out.push_back({e.at("type").get<std::string>(), e.at("key").get<std::string>(), value.ok() ? *value : "",
                   e.at("revision").get<int64_t>()});
  }
  return out;
}

// Replays the capture the way MetaFollower does (values before tombstones within a revision)
// and returns every event, in order.
std::vector<CatalogEvent> Replay(Catalog* c, const std::vector<Captured>& changes) {
  etcdpb::DatabaseInfo def;
  def.set_id(1);
  def.set_name("default");
  def.set_state(etcdpb::DatabaseCreated);
  EXPECT_TRUE(c->LoadSnapshot({{"cdcsrc/meta/root-coord/database/db-info/1", def.SerializeAsString(), 1}}).ok());
  std::vector<Captured> ordered = changes;
  std::stable_sort(ordered.begin(), ordered.end(), [](const Captured& a, const Captured& b) {
    if (a.revision != b.revision) return a.revision < b.revision;
    return !IsTombstone(a.value) && IsTombstone(b.value);
  });
  std::vector<CatalogEvent> events;
  for (const auto& ch : ordered) {
    auto ev = ch.type == "DELETE" ? c->Delete(ch.key, ch.revision) : c->Put(ch.key, ch.value, ch.revision);
    events.insert(events.end(), ev.begin(), ev.end());
  }
  return events;
}

std::vector<const CatalogEvent*> OfKind(const std::vector<CatalogEvent>& events, CatalogEvent::Kind kind) {
  std::vector<const CatalogEvent*> out;
  for (const auto& e : events) {
    if (e.kind == kind) out.push_back(&e);
  }
  return out;
}

TEST(CatalogCaptureTest, AliasesAreCreatedRepointedAndDropped) {
  Catalog c("cdcsrc/meta");
  auto events = Replay(&c, LoadCapture());
  auto created = OfKind(events, CatalogEvent::Kind::kCreateAlias);
  ASSERT_EQ(created.size(), 2u);
  EXPECT_EQ(created[0]->alias, "al1");
  ASSERT_TRUE(created[0]->collection);
  EXPECT_EQ(created[0]->collection->name, "pk_a");
  EXPECT_FALSE(created[0]->previous);  // a new alias
  EXPECT_EQ(created[1]->alias, "al1");
  EXPECT_EQ(created[1]->collection->name, "pk_b");
  ASSERT_TRUE(created[1]->previous);  // re-pointed: AlterAlias
  EXPECT_EQ(created[1]->previous->name, "pk_a");
  auto dropped = OfKind(events, CatalogEvent::Kind::kDropAlias);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0]->alias, "al1");
  EXPECT_EQ(dropped[0]->db_name, "default");
  ASSERT_TRUE(dropped[0]->collection);
  EXPECT_EQ(dropped[0]->collection->name, "pk_b2");  // the alias's collection, renamed by then
  EXPECT_TRUE(c.Aliases().empty());
}

TEST(CatalogCaptureTest, RenamesAreFollowedWithinAndAcrossDatabases) {
  Catalog c("cdcsrc/meta");
  auto events = Replay(&c, LoadCapture());
  auto renames = OfKind(events, CatalogEvent::Kind::kRenameCollection);
  ASSERT_EQ(renames.size(), 2u);
  EXPECT_EQ(renames[0]->previous->name, "pk_b");
  EXPECT_EQ(renames[0]->collection->name, "pk_b2");
  EXPECT_EQ(renames[0]->collection->db_name, "default");
  // Into database d2: the new key and a tombstone on the old one, in one transaction. It is a
  // move, not a drop.
  EXPECT_EQ(renames[1]->previous->db_name, "default");
  EXPECT_EQ(renames[1]->previous->name, "pk_a");
  EXPECT_EQ(renames[1]->collection->db_name, "d2");
  EXPECT_EQ(renames[1]->collection->name, "pk_a_moved");
  EXPECT_TRUE(OfKind(events, CatalogEvent::Kind::kDropCollection).empty());
  auto moved = c.CollectionByName("d2", "pk_a_moved");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->partitions.size(), 8u);  // partition-key partitions kept
  EXPECT_EQ(c.CollectionByFormerName("default", "pk_a"), moved);
  EXPECT_FALSE(c.CollectionByName("default", "pk_a"));
  EXPECT_EQ(c.CollectionByFormerName("default", "pk_b")->name, "pk_b2");
}

TEST(CatalogCaptureTest, EveryRewriteOfACollectionMayBeAnAlter) {
  // Milvus 2.3.5 persists a collection's properties one AlterCollection late: the capture's
  // set_properties(ttl 60) rewrote pk_a's info without them. The catalog reports the rewrite
  // so the applier can ask the source's API (sourceConfig.milvus).
  Catalog c("cdcsrc/meta");
  auto events = Replay(&c, LoadCapture());
  const CatalogEvent* alter = nullptr;
  for (const auto* e : OfKind(events, CatalogEvent::Kind::kAlterCollection)) {
    if (!alter && e->collection->name == "pk_a" && e->previous->name == "pk_a") alter = e;
  }
  ASSERT_TRUE(alter);
  EXPECT_TRUE(alter->collection->properties.empty());  // the ttl is not there yet
  // The next rewrite (the rename into d2) carried the ttl of that alter.
  auto moved = c.CollectionByName("d2", "pk_a_moved");
  ASSERT_EQ(moved->properties.size(), 1u);
  EXPECT_EQ(moved->properties[0], std::make_pair(std::string("collection.ttl.seconds"), std::string("60")));
}

TEST(CatalogCaptureTest, RolesUsersBindingsAndGrants) {
  Catalog c("cdcsrc/meta");
  auto events = Replay(&c, LoadCapture());
  auto rbac = OfKind(events, CatalogEvent::Kind::kRbacChanged);
  ASSERT_FALSE(rbac.empty());
  const RbacState& s = *rbac.back()->rbac;
  EXPECT_EQ(s.roles, (std::set<std::string>{"r1"}));
  EXPECT_EQ(s.users, (std::set<std::string>{"u1"}));
  EXPECT_EQ(s.bindings, (std::set<std::pair<std::string, std::string>>{{"u1", "r1"}}));
  EXPECT_EQ(s.grants, (std::set<Grant>{{"r1", "Collection", "default", "pk_b2", "Search"},
                                       {"r1", "Global", "default", "*", "CreateCollection"}}));
  EXPECT_EQ(*c.Rbac(), s);
}

TEST(CatalogCaptureTest, RbacKeysRemovedOneByOne) {
  RbacKeys k;
  EXPECT_TRUE(k.Put("roles/r1", ""));
  EXPECT_FALSE(k.Put("roles/r1", ""));  // unchanged
  EXPECT_TRUE(k.Put("grantee-privileges/r1/Collection/db1.c1", "id7"));
  EXPECT_TRUE(k.State().grants.empty());  // no privilege under id7 yet
  EXPECT_TRUE(k.Put("grantee-id/id7/PrivilegeInsert", "root"));
  EXPECT_TRUE(k.Put("grantee-id/id7/PrivilegeQuery", "root"));
  EXPECT_EQ(k.State().grants.size(), 2u);
  EXPECT_EQ(k.State().grants.begin()->db, "db1");
  EXPECT_TRUE(k.Put("grantee-privileges/r1/Collection/legacy", "id8"));  // pre-database key
  EXPECT_TRUE(k.Put("grantee-id/id8/PrivilegeSearch", "root"));
  EXPECT_TRUE(k.State().grants.count(Grant{"r1", "Collection", "default", "legacy", "Search"}));
  EXPECT_TRUE(k.Delete("grantee-id/id7/PrivilegeInsert"));
  EXPECT_EQ(k.State().grants.size(), 2u);
  EXPECT_TRUE(k.Delete("grantee-privileges/r1/Collection/db1.c1"));
  EXPECT_EQ(k.State().grants.size(), 1u);
  EXPECT_FALSE(k.Put("something-else/x", ""));
}

}  // namespace
}  // namespace cdc::source

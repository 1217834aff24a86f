// TaskScope: what a task covers and the target names of what it copies.
#include "pipeline/name_mapper.h"

#include <gtest/gtest.h>

namespace cdc::pipeline {
namespace {

TaskSpec WithInfos(const std::string& name) {
  TaskSpec s;
  s.collection_infos = std::vector<CollectionInfo>{CollectionInfo{name, std::nullopt, false}};
  return s;
}

TEST(TaskScopeTest, CollectionInfosCoverOnlyTheDefaultDatabase) {
  TaskScope scope(WithInfos("*"));
  EXPECT_TRUE(scope.CollectionInScope("default", "a"));
  EXPECT_FALSE(scope.CollectionInScope("db2", "a"));
  EXPECT_FALSE(scope.DatabaseInScope("db2"));
}

TEST(TaskScopeTest, ExclusionsWin) {
  TaskSpec s = WithInfos("*");
  s.exclude_collections = {"default.owned"};
  TaskScope scope(s);
  EXPECT_FALSE(scope.CollectionInScope("default", "owned"));
  EXPECT_TRUE(scope.CollectionInScope("default", "other"));
}

TEST(TaskScopeTest, DbCollectionsWildcardCoversNewDatabases) {
  TaskSpec s;
  s.db_collections = std::map<std::string, std::vector<CollectionInfo>>{{"*", {CollectionInfo{"*", std::nullopt, false}}}};
  TaskScope scope(s);
  EXPECT_TRUE(scope.CollectionInScope("anything", "c"));
  EXPECT_TRUE(scope.DatabaseInScope("later"));
}

TEST(TaskScopeTest, NameMappingRenamesCollectionsAndDatabases) {
  TaskSpec s = WithInfos("*");
  s.name_mapping = {NameMapping{"default", "copy", {{"a", "a2"}}}, NameMapping{"db2", "db3", {}}};
  TaskScope scope(s);
  EXPECT_EQ(scope.Map("default", "a"), std::make_pair(std::string("copy"), std::string("a2")));
  EXPECT_EQ(scope.Map("default", "b"), std::make_pair(std::string("default"), std::string("b")));
  EXPECT_EQ(scope.Map("db2", "x"), std::make_pair(std::string("db3"), std::string("x")));
  EXPECT_EQ(scope.MapDb("db2"), "db3");
}

TEST(TaskScopeTest, EveryEntryOfSeveralCollectionInfosIsInScope) {
  TaskSpec s;
  s.collection_infos = std::vector<CollectionInfo>{{"a", std::nullopt, false}, {"b", std::nullopt, true}};
  TaskScope scope(s);
  EXPECT_TRUE(scope.CollectionInScope("default", "a"));
  EXPECT_TRUE(scope.CollectionInScope("default", "b"));
  EXPECT_FALSE(scope.CollectionInScope("default", "c"));
  EXPECT_FALSE(scope.CollectionInScope("db1", "a"));
  EXPECT_FALSE(scope.DatabaseInScope("default"));
}

TEST(TaskScopeTest, SeveralDatabasesEachWithItsList) {
  TaskSpec s;
  s.db_collections = std::map<std::string, std::vector<CollectionInfo>>{
      {"db1", {{"a", std::nullopt, false}, {"b", std::nullopt, false}}}, {"db2", {{"*", std::nullopt, false}}}};
  TaskScope scope(s);
  EXPECT_TRUE(scope.CollectionInScope("db1", "a"));
  EXPECT_TRUE(scope.CollectionInScope("db1", "b"));
  EXPECT_FALSE(scope.CollectionInScope("db1", "c"));
  EXPECT_TRUE(scope.CollectionInScope("db2", "anything"));
  EXPECT_FALSE(scope.CollectionInScope("db3", "a"));
  EXPECT_TRUE(scope.DatabaseInScope("db1"));
  EXPECT_TRUE(scope.DatabaseInScope("db2"));
  EXPECT_FALSE(scope.DatabaseInScope("db3"));
}

TEST(TaskScopeTest, ADatabasesOwnListWinsOverTheStarList) {
  TaskSpec s;
  s.db_collections = std::map<std::string, std::vector<CollectionInfo>>{{"db1", {{"a", std::nullopt, false}}},
                                                                        {"*", {{"*", std::nullopt, false}}}};
  TaskScope scope(s);
  EXPECT_TRUE(scope.CollectionInScope("db1", "a"));
  EXPECT_FALSE(scope.CollectionInScope("db1", "b"));
  EXPECT_TRUE(scope.CollectionInScope("db9", "b"));
  EXPECT_TRUE(scope.DatabaseInScope("db9"));
}

TEST(TaskScopeTest, SkippedCollectionsAreOutOfScope) {
  TaskSpec s = WithInfos("*");
  s.skip_collections = {"default.broken"};
  TaskScope scope(s);
  EXPECT_FALSE(scope.CollectionInScope("default", "broken"));
  EXPECT_TRUE(scope.CollectionInScope("default", "fine"));

  TaskSpec named;
  named.db_collections = std::map<std::string, std::vector<CollectionInfo>>{
      {"db1", {{"a", std::nullopt, false}, {"b", std::nullopt, false}}}};
  named.skip_collections = {"db1.a"};
  TaskScope named_scope(named);
  EXPECT_FALSE(named_scope.CollectionInScope("db1", "a"));
  EXPECT_TRUE(named_scope.CollectionInScope("db1", "b"));
  EXPECT_TRUE(named_scope.DatabaseInScope("db1")) << "skipping one collection keeps its database";
}

}  // namespace
}  // namespace cdc::pipeline

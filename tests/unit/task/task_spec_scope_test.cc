// TaskSpec with several collections and databases: validation, CollectionInScope, and the
// server-set skip list in the stored spec.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "task/task_spec.h"

namespace cdc {
namespace {

using json = nlohmann::json;

json Body(const char* scope_json) {
  json body = {{"milvus_connect_param", {{"uri", "http://target:19530"}}}};
  json scope = json::parse(scope_json);
  for (auto it = scope.begin(); it != scope.end(); ++it) body[it.key()] = *it;
  return body;
}

Status Validate(const json& body, int max_name_length = 256) {
  auto spec = DecodeTaskSpec(body);
  if (!spec.ok()) return spec.status();
  SpecLimits limits;
  limits.max_name_length = max_name_length;
  limits.replicate_chan = "by-dev-replicate-msg";
  return ValidateSpec(*spec, limits);
}

TaskSpec Decoded(const char* scope_json) {
  auto spec = DecodeTaskSpec(Body(scope_json));
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? std::move(spec).value() : TaskSpec{};
}

TEST(SeveralCollectionsTest, AcceptedAsTheOfficialTestSuiteSendsThem) {
  for (const char* scope : {
           R"({"collection_infos": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})",
           R"({"db_collections": {"db1": [{"name": "a"}, {"name": "b"}], "db2": [{"name": "*"}]}})",
           R"({"db_collections": {"db1": [{"name": "a"}], "*": [{"name": "*"}]}})",
           R"({"db_collections": {"db1": [{"name": "a"}], "db2": [{"name": "a"}]}})",
           R"({"collection_infos": [{"name": "a", "positions": {"dml_0_100v0": "AAAA"}},
                                    {"name": "b", "positions": {"dml_1_200v0": "AAAA"}}]})",
       }) {
    Status st = Validate(Body(scope));
    EXPECT_TRUE(st.ok()) << scope << ": " << st.ToString();
  }
}

TEST(SeveralCollectionsTest, UseStartPositionStaysPerEntry) {
  TaskSpec s = Decoded(R"({"collection_infos": [{"name": "a", "use_start_position": true}, {"name": "b"}]})");
  ASSERT_EQ(s.collection_infos->size(), 2u);
  EXPECT_TRUE(s.collection_infos->at(0).use_start_position);
  EXPECT_FALSE(s.collection_infos->at(1).use_start_position);
  json echoed = SpecToTaskObject(s)["collection_infos"];
  EXPECT_EQ(echoed, json::parse(R"([{"name": "a", "positions": null, "use_start_position": true},
                                    {"name": "b", "positions": null, "use_start_position": false}])"));
}

TEST(SeveralCollectionsTest, RejectedWithAMessageNamingTheProblem) {
  const std::string long257(257, 'n');
  const std::pair<std::string, std::string> cases[] = {
      {R"({"collection_infos": [{"name": "a"}], "db_collections": {"db1": [{"name": "b"}]}})",
       "the collection info and db collection info should be only one"},
      {R"({"collection_infos": [{"name": "a"}, {"name": "b"}, {"name": "a"}, {"name": "b"}]})",
       "there are duplicate collection names in the list of database default, [a b]"},
      {R"({"db_collections": {"db1": [{"name": "a"}], "db2": [{"name": "c"}, {"name": "c"}]}})",
       "there are duplicate collection names in the list of database db2, [c]"},
      {R"({"collection_infos": [{"name": "*"}, {"name": "*"}]})",
       "there are duplicate collection names in the list of database default, [*]"},
      {R"({"collection_infos": [{"name": "a"}, {"name": "*"}, {"name": "b"}]})",
       "in the list of database default, `*` already covers every collection, so these names are redundant: [a b]"},
      {R"({"db_collections": {"*": [{"name": "*"}, {"name": "x"}]}})",
       "in the list of database *, `*` already covers every collection, so these names are redundant: [x]"},
      {R"({"collection_infos": [{"name": "a"}, {"name": ""}]})", "there is a collection name that is empty. "},
      {R"({"db_collections": {"db1": [{"name": "a"}], "db2": [{"name": "b"}, {"name": ""}]}})",
       "there is a collection name that is empty. "},
      {R"({"collection_infos": [{"name": "a"}, {"name": ")" + long257 + R"("}]})",
       "there are some collection names whose length exceeds 256 characters, [" + long257 + "]"},
      {R"({"db_collections": {"db1": [{"name": "a"}], "db2": []}})", "empty collection info"},
      {R"({"db_collections": {"db1": [{"name": "a"}], "": [{"name": "b"}]}})", "the db name is empty"},
      {R"({"collection_infos": [{"name": "a", "positions": {"dml_0_100v0": "AAAA", "dml_1_200v1": "AAAA"}},
                                {"name": "b"}]})",
       "the channel position info should be in the same collection"},
      {R"({"db_collections": {"db1": [{"name": "a", "positions": {"by-dev-dml_0_xv0": "AAAA"}}]}})",
       "the vchannel is invalid, by-dev-dml_0_xv0, err: it does not match <pchannel>_<id>v<shard>"},
  };
  for (const auto& [scope, message] : cases) {
    Status st = Validate(Body(scope.c_str()));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << scope;
    EXPECT_EQ(st.message(), message) << scope;
  }
}

TEST(SeveralCollectionsTest, ScopeNamesListEveryEntry) {
  EXPECT_EQ(Decoded(R"({"collection_infos": [{"name": "a"}, {"name": "b"}]})").ScopeNames(),
            (std::vector<std::string>{"default.a", "default.b"}));
  EXPECT_EQ(Decoded(R"({"db_collections": {"db2": [{"name": "*"}], "db1": [{"name": "a"}, {"name": "b"}]}})")
                .ScopeNames(),
            (std::vector<std::string>{"db1.a", "db1.b", "db2.*"}));
}

TEST(CollectionInScopeTest, CollectionInfosCoverTheirNamesInDefaultOnly) {
  TaskSpec s = Decoded(R"({"collection_infos": [{"name": "a"}, {"name": "b"}]})");
  EXPECT_TRUE(s.CollectionInScope("default", "a"));
  EXPECT_TRUE(s.CollectionInScope("default", "b"));
  EXPECT_FALSE(s.CollectionInScope("default", "c"));
  EXPECT_FALSE(s.CollectionInScope("db1", "a"));
}

TEST(CollectionInScopeTest, TheDatabasesOwnListWinsOverTheStarList) {
  // As the official server: the list of the message's database, else the `*` list.
  TaskSpec s = Decoded(R"({"db_collections": {"db1": [{"name": "a"}, {"name": "b"}], "*": [{"name": "*"}]}})");
  EXPECT_TRUE(s.CollectionInScope("db1", "a"));
  EXPECT_TRUE(s.CollectionInScope("db1", "b"));
  EXPECT_FALSE(s.CollectionInScope("db1", "c")) << "db1 has its own list";
  EXPECT_TRUE(s.CollectionInScope("db2", "anything"));
  EXPECT_TRUE(s.CollectionInScope("default", "x"));

  TaskSpec named = Decoded(R"({"db_collections": {"db1": [{"name": "a"}], "db2": [{"name": "*"}]}})");
  EXPECT_TRUE(named.CollectionInScope("db1", "a"));
  EXPECT_FALSE(named.CollectionInScope("db1", "b"));
  EXPECT_TRUE(named.CollectionInScope("db2", "b"));
  EXPECT_FALSE(named.CollectionInScope("db3", "a"));
  EXPECT_FALSE(named.CollectionInScope("default", "a"));
}

TEST(CollectionInScopeTest, ExcludedAndSkippedCollectionsAreOut) {
  TaskSpec s = Decoded(R"({"db_collections": {"*": [{"name": "*"}]}})");
  s.exclude_collections = {"db1.*", "db2.owned"};
  s.skip_collections = {"db3.broken", "default.a"};
  EXPECT_FALSE(s.CollectionInScope("db1", "x"));
  EXPECT_FALSE(s.CollectionInScope("db2", "owned"));
  EXPECT_TRUE(s.CollectionInScope("db2", "other"));
  EXPECT_FALSE(s.CollectionInScope("db3", "broken"));
  EXPECT_TRUE(s.CollectionInScope("db3", "fine"));
  EXPECT_FALSE(s.CollectionInScope("default", "a"));
  EXPECT_TRUE(s.CollectionInScope("default", "b"));
}

TEST(SkipCollectionsTest, StoredWithTheSpecNeverShownByTheTaskObject) {
  TaskSpec s = Decoded(R"({"collection_infos": [{"name": "a"}, {"name": "b"}]})");
  EXPECT_FALSE(SpecToJson(s).contains("skip_collections")) << "absent when none";
  s.skip_collections = {"default.a"};
  json stored = SpecToJson(s);
  EXPECT_EQ(stored["skip_collections"], json::array({"default.a"}));
  EXPECT_FALSE(SpecToTaskObject(s).contains("skip_collections")) << "the API layer shows it as skipped_collections";
  auto restored = SpecFromStored(stored.dump(), "");
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->skip_collections, std::vector<std::string>{"default.a"});
  EXPECT_FALSE(restored->CollectionInScope("default", "a"));
  EXPECT_TRUE(restored->CollectionInScope("default", "b"));
}

}  // namespace
}  // namespace cdc

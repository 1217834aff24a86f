// The verifier over fake sides: exact differences at each level, paging, partitions, duplicate
// keys, and the re-check generations that tell changes in flight from real differences.
#include "verify/verifier.h"

#include <gtest/gtest.h>

#include <atomic>

#include "fake_side.h"

namespace cdc::verify {
namespace {

using testing::FakeRow;
using testing::FakeSide;
using json = nlohmann::json;

FakeRow Row(int64_t v) {
  FakeRow r;
  r.val = v;
  r.vec = {static_cast<float>(v), 0.5f};
  r.meta = R"({"v":)" + std::to_string(v) + R"(,"tag":"t"})";
  return r;
}

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest() {
    options_.key_page_rows = 7;  // many pages even for small collections
    options_.row_page_bytes = 200;
    options_.applied_wait = std::chrono::milliseconds(300);
    options_.applied_stall = std::chrono::milliseconds(300);
    options_.applied_ts = [this]() -> StatusOr<uint64_t> { return applied_.load(); };
    applied_ = ~uint64_t{0};  // caught up unless a test says otherwise
  }

  // The same rows 0..n-1 on both sides.
  void Both(int n, bool varchar = false, const std::string& name = "c") {
    source_.AddCollection("default", name, varchar);
    target_.AddCollection("default", name, varchar);
    for (int i = 0; i < n; ++i) {
      PkValue k = varchar ? PkValue("k" + std::to_string(i)) : PkValue(int64_t{i});
      source_.Put("default", name, k, Row(i));
      target_.Put("default", name, k, Row(i));
    }
  }

  CollectionReport Run(const std::string& level, const std::string& name = "c") {
    VerifierOptions o = options_;
    o.level = level;
    Verifier v(&source_, &target_, o);
    return v.Verify(CollectionRef{"default", name, "default", name});
  }

  FakeSide source_{"source"};
  FakeSide target_{"target"};
  VerifierOptions options_;
  std::atomic<uint64_t> applied_{0};
};

TEST_F(VerifierTest, EqualCollectionsAtEveryLevel) {
  Both(50);
  for (const char* level : {"count", "keys", "rows"}) {
    auto r = Run(level);
    EXPECT_TRUE(r.Equal()) << level << ": " << ToJson(r).dump();
    EXPECT_EQ(r.source_rows, 50) << level;
    EXPECT_EQ(r.target_rows, 50) << level;
    EXPECT_EQ(r.diff.total(), 0) << level;
    EXPECT_EQ(r.generations, 0) << level << ": nothing to re-check";
  }
}

TEST_F(VerifierTest, KeysLevelFindsExactlyTheMissingAndExtraKeys) {
  Both(40);
  target_.Erase("default", "c", int64_t{0});   // first page
  target_.Erase("default", "c", int64_t{20});  // middle
  target_.Erase("default", "c", int64_t{39});  // last
  target_.Put("default", "c", int64_t{100}, Row(100));  // after the source's last key
  target_.Put("default", "c", int64_t{-5}, Row(-5));    // before its first
  target_.RowsOf("default", "c")[int64_t{7}].val = 999;  // content: invisible to `keys`
  auto r = Run("keys");
  EXPECT_FALSE(r.Equal());
  EXPECT_EQ(r.diff.missing, 3);
  EXPECT_EQ(r.diff.extra, 2);
  EXPECT_EQ(r.diff.different, 0);
  EXPECT_EQ(r.diff.missing_keys, (std::vector<PkValue>{int64_t{0}, int64_t{20}, int64_t{39}}));
  EXPECT_EQ(r.diff.extra_keys, (std::vector<PkValue>{int64_t{-5}, int64_t{100}}));
  EXPECT_EQ(r.generations, 1) << "the differences persist in the first re-check";
  EXPECT_EQ(r.source_rows, 40);
  EXPECT_EQ(r.target_rows, 39);
  EXPECT_EQ(r.rows_compared, 42);
}

TEST_F(VerifierTest, RowsLevelFindsDifferentRowsAndNamesTheField) {
  Both(30);
  auto& rows = target_.RowsOf("default", "c");
  rows[int64_t{3}].val = -1;
  rows[int64_t{11}].vec = {11.0f, -0.0f};  // bits differ
  rows[int64_t{12}].meta = R"({"tag":"t","v":12})";  // same JSON, other key order: equal
  rows[int64_t{25}].meta = R"({"v":25,"tag":"u"})";
  target_.Erase("default", "c", int64_t{4});
  auto r = Run("rows");
  EXPECT_EQ(r.diff.different, 3) << ToJson(r).dump();
  EXPECT_EQ(r.diff.missing, 1);
  EXPECT_EQ(r.diff.extra, 0);
  EXPECT_EQ(r.diff.different_keys, (std::vector<PkValue>{int64_t{3}, int64_t{11}, int64_t{25}}));
  EXPECT_EQ(r.diff.different_fields, (std::map<std::string, int64_t>{{"meta", 1}, {"val", 1}, {"vec", 1}}));
}

TEST_F(VerifierTest, VarCharKeysInByteOrder) {
  source_.AddCollection("default", "v", true);
  target_.AddCollection("default", "v", true);
  for (std::string k : {"a", "B", "ab", "\xc3\xa9", "z", "", "a b"}) {
    source_.Put("default", "v", k, Row(1));
    if (k != "ab") target_.Put("default", "v", k, Row(1));
  }
  target_.Put("default", "v", std::string("zz"), Row(1));
  options_.key_page_rows = 2;
  auto r = Run("rows", "v");
  EXPECT_EQ(r.diff.missing_keys, (std::vector<PkValue>{std::string("ab")}));
  EXPECT_EQ(r.diff.extra_keys, (std::vector<PkValue>{std::string("zz")}));
  EXPECT_EQ(r.source_rows, 7);
}

TEST_F(VerifierTest, MissingTargetCollectionMeansEveryRowMissing) {
  source_.AddCollection("default", "c");
  for (int i = 0; i < 12; ++i) source_.Put("default", "c", int64_t{i}, Row(i));
  auto r = Run("keys");
  EXPECT_FALSE(r.target_exists);
  EXPECT_FALSE(r.Equal());
  EXPECT_EQ(r.diff.missing, 12);
  EXPECT_FALSE(r.warnings.empty());
  auto c = Run("count");
  EXPECT_EQ(c.diff.missing, 12);
  EXPECT_EQ(c.target_rows, 0);
}

TEST_F(VerifierTest, MissingSourceCollectionIsAnError) {
  auto r = Run("keys", "nope");
  EXPECT_NE(r.error.find("the source has no collection default.nope"), std::string::npos) << r.error;
  EXPECT_FALSE(r.Equal());
}

TEST_F(VerifierTest, PartitionsAreComparedOneByOne) {
  source_.AddCollection("default", "p", false, {"_default", "p1", "p2"});
  target_.AddCollection("default", "p", false, {"_default", "p1"});
  for (int i = 0; i < 10; ++i) {
    source_.Put("default", "p", int64_t{i}, Row(i), "p1");
    target_.Put("default", "p", int64_t{i}, Row(i), i == 4 ? "_default" : "p1");  // 4 landed elsewhere
  }
  source_.Put("default", "p", int64_t{50}, Row(50), "p2");  // a partition the target lacks
  auto r = Run("keys", "p");
  EXPECT_EQ(r.partitions, 3);
  EXPECT_EQ(r.diff.missing, 2) << ToJson(r).dump();  // 4 in p1, 50 in p2
  EXPECT_EQ(r.diff.extra, 1);                        // 4 in _default
  EXPECT_EQ(r.diff.extra_keys, (std::vector<PkValue>{int64_t{4}}));
}

TEST_F(VerifierTest, PartitionKeyCollectionsAreComparedWhole) {
  source_.AddCollection("default", "pk", false, {"_default_0", "_default_1"}, true);
  target_.AddCollection("default", "pk", false, {"_default_0", "_default_1"}, true);
  source_.Put("default", "pk", int64_t{1}, Row(1), "_default_0");
  target_.Put("default", "pk", int64_t{1}, Row(1), "_default_1");
  auto r = Run("rows", "pk");
  EXPECT_TRUE(r.Equal()) << ToJson(r).dump();
  EXPECT_EQ(r.partitions, 0);
}

TEST_F(VerifierTest, DuplicateKeysOnTheTargetAreReportedAndNoKeyIsLost) {
  Both(40);
  auto& rows = target_.RowsOf("default", "c");
  for (int64_t k : {2, 3, 17, 30}) rows[k].copies = 2;  // doubled rows: short pages
  rows[int64_t{31}].copies = 3;
  auto r = Run("keys");
  EXPECT_EQ(r.target_duplicates, 6) << ToJson(r).dump();
  EXPECT_EQ(r.source_duplicates, 0);
  EXPECT_EQ(r.diff.total(), 0) << "every key was read despite the short pages";
  EXPECT_EQ(r.target_rows, 40);
  EXPECT_FALSE(r.Equal()) << "copies on one side only are a difference";
  auto c = Run("count");
  EXPECT_EQ(c.target_rows, 46);
  EXPECT_EQ(c.diff.extra, 6);
}

TEST_F(VerifierTest, RowsWrittenBetweenAPageAndItsCountAreNotCopies) {
  source_.AddCollection("default", "c");
  target_.AddCollection("default", "c");
  for (int64_t k = 0; k < 40; k += 2) {
    source_.Put("default", "c", k, Row(k));
    target_.Put("default", "c", k, Row(k));
  }
  int64_t next = 1;
  source_.SetHook([&](const std::string& op) {
    if (op != "Count" || next > 39) return;
    source_.Put("default", "c", next, Row(next));  // a writer inside the page's range...
    target_.Put("default", "c", next, Row(next));  // ...that the stream applies at once
    next += 2;
  });
  auto r = Run("keys");
  EXPECT_EQ(r.source_duplicates, 0) << ToJson(r).dump();
  EXPECT_TRUE(r.Equal()) << ToJson(r).dump();
}

TEST_F(VerifierTest, AKeyInFlightIsResolvedByTheRecheck) {
  Both(20);
  target_.Erase("default", "c", int64_t{5});  // the stream has not applied it yet...
  applied_ = 0;
  options_.applied_wait = std::chrono::seconds(5);
  options_.applied_ts = [this]() -> StatusOr<uint64_t> {
    target_.Put("default", "c", int64_t{5}, Row(5));  // ...and does so while the verifier waits
    return source_.last_ts();
  };
  auto r = Run("rows");
  EXPECT_TRUE(r.Equal()) << ToJson(r).dump();
  EXPECT_EQ(r.generations, 1);
  EXPECT_TRUE(r.warnings.empty());
}

TEST_F(VerifierTest, AKeyThatKeepsChangingIsInFluxNotADifference) {
  Both(20);
  target_.RowsOf("default", "c")[int64_t{9}].val = -9;
  int64_t next = 1000;
  source_.SetHook([&](const std::string& op) {
    if (op == "ReadKeys") source_.RowsOf("default", "c")[int64_t{9}].val = next++;  // a hot key
  });
  auto r = Run("rows");
  EXPECT_EQ(r.diff.in_flux, 1) << ToJson(r).dump();
  EXPECT_EQ(r.diff.different, 0);
  EXPECT_EQ(r.generations, 3);
  EXPECT_TRUE(r.Equal()) << "a key in flux gets no verdict";
}

TEST_F(VerifierTest, ADifferenceIsConfirmedOnceItsSourceRowStopsChanging) {
  Both(20);
  target_.RowsOf("default", "c")[int64_t{9}].val = -9;
  int reads = 0;
  source_.SetHook([&](const std::string& op) {
    if (op == "ReadKeys" && ++reads == 1) source_.RowsOf("default", "c")[int64_t{9}].val = 77;  // one change
  });
  auto r = Run("rows");
  EXPECT_EQ(r.diff.different, 1) << ToJson(r).dump();
  EXPECT_EQ(r.diff.in_flux, 0);
  EXPECT_EQ(r.generations, 2);
}

TEST_F(VerifierTest, ATaskThatDoesNotAdvanceIsNamedInTheWarnings) {
  Both(10);
  target_.Erase("default", "c", int64_t{1});
  applied_ = 5;  // never reaches the re-check's timestamp
  auto started = std::chrono::steady_clock::now();
  auto r = Run("keys");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3)) << "the stall cuts the wait";
  EXPECT_EQ(r.diff.missing, 1);
  ASSERT_EQ(r.warnings.size(), 1u) << ToJson(r).dump();
  EXPECT_NE(r.warnings[0].find("did not advance"), std::string::npos) << r.warnings[0];
}

TEST_F(VerifierTest, WithoutAppliedPositionTheReasonIsGiven) {
  Both(10);
  target_.Erase("default", "c", int64_t{1});
  options_.applied_ts = nullptr;
  options_.no_applied_reason = "the task is paused";
  auto r = Run("keys");
  EXPECT_EQ(r.diff.missing, 1);
  EXPECT_EQ(r.warnings, std::vector<std::string>{"the task is paused"});
}

TEST_F(VerifierTest, DifferencesBeyondTheRecheckBoundAreCountedUnchecked) {
  Both(30);
  for (int64_t k = 0; k < 10; ++k) target_.Erase("default", "c", k);
  options_.max_recheck_keys = 4;
  auto r = Run("keys");
  EXPECT_EQ(r.diff.missing, 10);
  EXPECT_EQ(r.unchecked, 6);
  EXPECT_FALSE(r.Equal());
}

TEST_F(VerifierTest, CountLevelInFluxAndPersistent) {
  Both(10);
  target_.Erase("default", "c", int64_t{0});
  auto persistent = Run("count");
  EXPECT_EQ(persistent.diff.missing, 1);
  EXPECT_EQ(persistent.diff.in_flux, 0);
  int64_t next = 100;
  source_.SetHook([&](const std::string& op) {
    if (op == "AllocTimestamp") source_.Put("default", "c", next++, Row(1));  // a steady writer
  });
  auto moving = Run("count");
  EXPECT_EQ(moving.diff.missing, 0) << ToJson(moving).dump();
  EXPECT_GT(moving.diff.in_flux, 0);
}

TEST_F(VerifierTest, RepairSeamGetsTheKeysAndTheResultIsVerifiedAgain) {
  source_.AddCollection("default", "p", false, {"_default", "p1"});
  target_.AddCollection("default", "p", false, {"_default", "p1"});
  for (int i = 0; i < 20; ++i) {
    source_.Put("default", "p", int64_t{i}, Row(i), "p1");
    if (i != 3) target_.Put("default", "p", int64_t{i}, Row(i), i == 8 ? "_default" : "p1");
  }
  target_.RowsOf("default", "p", "p1")[int64_t{5}].val = -5;
  target_.Put("default", "p", int64_t{70}, Row(70), "p1");
  std::vector<PkValue> copied;
  std::vector<PkValue> deleted;
  options_.repair = true;
  options_.repair_fn = [&](const CollectionRef& c, const std::vector<PkValue>& copy, const std::vector<PkValue>& del) {
    EXPECT_EQ(c.target_name, "p");
    copied = copy;
    deleted = del;
    for (const auto& k : del) target_.Erase("default", "p", k, "p1");
    for (const auto& k : copy) {  // what the backfill path does: an upsert of the source row
      target_.Erase("default", "p", k, "_default");
      target_.Put("default", "p", k, source_.RowsOf("default", "p", "p1")[k], "p1");
    }
    return Status::Ok();
  };
  auto r = Run("rows", "p");
  EXPECT_EQ(copied, (std::vector<PkValue>{int64_t{3}, int64_t{5}, int64_t{8}})) << ToJson(r).dump();
  EXPECT_EQ(deleted, (std::vector<PkValue>{int64_t{70}})) << "8 is copied into place, not deleted";
  ASSERT_TRUE(r.repair.has_value());
  EXPECT_EQ(r.diff.total(), 5) << "before: 3 and 8 missing from p1, 8 extra in _default, 5 different, 70 extra";
  EXPECT_EQ(r.repair->after.total(), 0);
  EXPECT_TRUE(r.Equal());
  auto j = ToJson(r);
  EXPECT_EQ(j["repair"]["copy_keys"], 3);
  EXPECT_EQ(j["repair"]["delete_keys"], 1);
  EXPECT_EQ(j["repair"]["after"]["missing"], 0);
}

TEST_F(VerifierTest, RepairThatFailsOrFixesNothingIsReported) {
  Both(10);
  target_.Erase("default", "c", int64_t{2});
  options_.repair = true;
  options_.repair_fn = [](const CollectionRef&, const std::vector<PkValue>&, const std::vector<PkValue>&) {
    return Unavailable("backfill path is down");
  };
  auto failed = Run("keys");
  ASSERT_TRUE(failed.repair.has_value());
  EXPECT_EQ(failed.repair->error, "backfill path is down");
  EXPECT_FALSE(failed.Equal());
  options_.repair_fn = [](const CollectionRef&, const std::vector<PkValue>&, const std::vector<PkValue>&) {
    return Status::Ok();  // claims success, changes nothing
  };
  auto idle = Run("keys");
  EXPECT_EQ(idle.repair->after.missing, 1);
  EXPECT_FALSE(idle.Equal());
}

TEST_F(VerifierTest, StopsWhenCancelled) {
  Both(100);
  options_.cancelled = [] { return true; };
  auto r = Run("keys");
  EXPECT_NE(r.error.find("stopped"), std::string::npos) << r.error;
  EXPECT_FALSE(r.Equal());
}

TEST_F(VerifierTest, ReportJsonHasTheIssuesShape) {
  Both(5);
  target_.Erase("default", "c", int64_t{1});
  auto j = ToJson(Run("keys"));
  for (const char* key : {"db", "name", "target_db", "target_name", "source_rows", "target_rows", "missing", "extra",
                          "different", "sample_keys", "equal", "level", "in_flux", "duplicates", "rows_compared",
                          "seconds", "samples", "generations"}) {
    EXPECT_TRUE(j.contains(key)) << key << " in " << j.dump();
  }
  EXPECT_EQ(j["sample_keys"], json::array({1}));
  EXPECT_EQ(j["missing"], 1);
  EXPECT_EQ(j["equal"], false);
  VerifyReport all;
  all.level = "keys";
  all.collections.push_back(Run("keys"));
  EXPECT_EQ(ToJson(all)["equal"], false);
  EXPECT_EQ(ToJson(all)["collections"].size(), 1u);
}

TEST_F(VerifierTest, SampleKeysStopAtTwenty) {
  Both(60);
  for (int64_t k = 0; k < 50; ++k) target_.Erase("default", "c", k);
  auto j = ToJson(Run("keys"));
  EXPECT_EQ(j["missing"], 50);
  EXPECT_EQ(j["sample_keys"].size(), 20u);
  EXPECT_EQ(j["sample_keys"][0], 0);
}

TEST(VerifierResolveTest, ScopeAndNameMapping) {
  FakeSide source("source");
  FakeSide target("target");
  source.AddCollection("default", "a");
  source.AddCollection("default", "b");
  source.AddCollection("db2", "x");
  TaskSpec spec;
  spec.task_id = "t1";
  spec.db_collections = std::map<std::string, std::vector<CollectionInfo>>{
      {"default", {CollectionInfo{"a", std::nullopt, false}}}, {"db2", {CollectionInfo{"*", std::nullopt, false}}}};
  spec.name_mapping = {NameMapping{"db2", "db3", {}}};
  Verifier v(&source, &target, VerifierOptions{});
  auto refs = v.Resolve(spec, {});
  ASSERT_TRUE(refs.ok()) << refs.status().message();
  ASSERT_EQ(refs->size(), 2u);  // databases in byte order: db2 before default
  EXPECT_EQ((*refs)[0].db, "db2");
  EXPECT_EQ((*refs)[0].name, "x");
  EXPECT_EQ((*refs)[0].target_db, "db3");
  EXPECT_EQ((*refs)[1].name, "a");
  EXPECT_EQ((*refs)[1].target_db, "default");
  auto named = v.Resolve(spec, {{"db2", "x"}});
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->size(), 1u);
  auto outside = v.Resolve(spec, {{"", "b"}});
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(outside.status().message().find("default.b is not in the scope"), std::string::npos);
}

TEST(VerifierSchemaTest, AutoIdIsNotADifference) {
  milvus::proto::schema::CollectionSchema s;
  auto* pk = s.add_fields();
  pk->set_name("pk");
  pk->set_is_primary_key(true);
  pk->set_data_type(milvus::proto::schema::Int64);
  pk->set_autoid(true);
  auto t = s;
  t.mutable_fields(0)->set_autoid(false);
  EXPECT_TRUE(SchemaDifferences(s, t).empty());
  auto* vec = t.add_fields();
  vec->set_name("v");
  t.set_enable_dynamic_field(true);
  auto d = SchemaDifferences(s, t);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "field 'v' exists only on the target");
}

}  // namespace
}  // namespace cdc::verify

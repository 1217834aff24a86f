// TaskManager::Skip: a collection leaves a task's scope.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "task/task_manager.h"
#include "task_manager_fixture.h"
#include "test_helpers.h"

namespace cdc {
namespace {

using cdc::testing::kToken;
using cdc::testing::Spec;
using cdc::testing::SpecOf;
using cdc::testing::TaskManagerTest;
using cdc::testing::WaitFor;
using cdc::testing::WithId;
using json = nlohmann::json;

std::vector<std::string> StoredSkips(const TaskRecord& r) {
  json spec = json::parse(r.spec_json);
  if (!spec.contains("skip_collections")) return {};
  return spec["skip_collections"].get<std::vector<std::string>>();
}

TEST_F(TaskManagerTest, SkipOfARunningTaskRestartsItsPipelineWithTheNewScope) {
  const std::string id = MustCreate(SpecOf(R"({"collection_infos": [{"name": "a"}, {"name": "b"}]})"));
  ASSERT_TRUE(manager_->Skip(id, "", "a").ok());
  EXPECT_EQ(pipelines_.CountsFor(id).starts, 2);
  EXPECT_EQ(pipelines_.CountsFor(id).stops, 1);
  EXPECT_EQ(pipelines_.Running(id), 1);
  const TaskSpec running = pipelines_.SpecFor(id);
  EXPECT_EQ(running.skip_collections, std::vector<std::string>{"default.a"});
  EXPECT_FALSE(running.CollectionInScope("default", "a"));
  EXPECT_TRUE(running.CollectionInScope("default", "b"));
  EXPECT_EQ(running.milvus.token, kToken) << "the restarted pipeline still has the credentials";

  auto view = manager_->Get(id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state, TaskState::kRunning);
  EXPECT_EQ(view->spec.skip_collections, std::vector<std::string>{"default.a"});
  EXPECT_EQ(StoredSkips(*fake_store_.Find(id)), std::vector<std::string>{"default.a"});
  EXPECT_EQ(fake_store_.Find(id)->state, TaskState::kRunning);

  ASSERT_TRUE(manager_->Skip(id, "default", "b").ok());
  EXPECT_EQ(manager_->Get(id)->spec.skip_collections, (std::vector<std::string>{"default.a", "default.b"}));
}

TEST_F(TaskManagerTest, SkipOfAPausedTaskKeepsItPausedUntilResumed) {
  const std::string id = MustCreate(Spec("*"));
  ASSERT_TRUE(manager_->Pause(id).ok());
  ASSERT_TRUE(manager_->Skip(id, "default", "broken").ok());
  EXPECT_EQ(StateOf(id), TaskState::kPaused);
  EXPECT_EQ(manager_->Get(id)->reason, "manually pause through http interface");
  EXPECT_EQ(pipelines_.CountsFor(id).starts, 1) << "a paused task is not started by a skip";
  EXPECT_EQ(pipelines_.Running(id), 0);
  ASSERT_TRUE(manager_->Resume(id).ok());
  EXPECT_EQ(pipelines_.SpecFor(id).skip_collections, std::vector<std::string>{"default.broken"});
}

TEST_F(TaskManagerTest, SkippingTwiceChangesNothing) {
  const std::string id = MustCreate(Spec("*"));
  ASSERT_TRUE(manager_->Skip(id, "", "x").ok());
  ASSERT_TRUE(manager_->Skip(id, "default", "x").ok());
  EXPECT_EQ(manager_->Get(id)->spec.skip_collections, std::vector<std::string>{"default.x"});
  EXPECT_EQ(pipelines_.CountsFor(id).starts, 2) << "only the first skip restarts the pipeline";
}

TEST_F(TaskManagerTest, SkipErrors) {
  const std::string id = MustCreate(SpecOf(R"({"collection_infos": [{"name": "a"}, {"name": "b"}]})"));
  struct Case {
    std::string task_id, db, collection;
    StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "", "a", StatusCode::kInvalidArgument, "task_id is empty"},
      {"nope", "", "a", StatusCode::kNotFound, "not found the task, task_id: nope"},
      {id, "", "", StatusCode::kInvalidArgument, "collection_name is empty: name the collection to skip"},
      {id, "", "*", StatusCode::kInvalidArgument,
       "skip takes one collection: db_name and collection_name cannot be `*`"},
      {id, "*", "a", StatusCode::kInvalidArgument,
       "skip takes one collection: db_name and collection_name cannot be `*`"},
      {id, "", "c", StatusCode::kInvalidArgument,
       "the collection default.c is not in the scope of the task, task_id: " + id},
      {id, "db1", "a", StatusCode::kInvalidArgument,
       "the collection db1.a is not in the scope of the task, task_id: " + id},
  };
  for (const auto& c : cases) {
    Status st = manager_->Skip(c.task_id, c.db, c.collection);
    EXPECT_EQ(st.code(), c.code) << c.message;
    EXPECT_EQ(st.message(), c.message);
  }
  EXPECT_TRUE(manager_->Get(id)->spec.skip_collections.empty());
  EXPECT_EQ(pipelines_.CountsFor(id).starts, 1);
}

TEST_F(TaskManagerTest, ACollectionAnotherTaskOwnsCannotBeSkipped) {
  MustCreate(Spec("owned"));
  const std::string star = MustCreate(Spec("*"));
  EXPECT_EQ(manager_->Skip(star, "", "owned").message(),
            "the collection default.owned is not in the scope of the task, task_id: " + star);
  EXPECT_TRUE(manager_->Skip(star, "", "other").ok());
}

TEST_F(TaskManagerTest, SkipInAnAllDatabasesTask) {
  const std::string id = MustCreate(SpecOf(R"({"db_collections": {"*": [{"name": "*"}]}})"));
  ASSERT_TRUE(manager_->Skip(id, "db7", "x").ok());
  EXPECT_EQ(manager_->Get(id)->spec.skip_collections, std::vector<std::string>{"db7.x"});
  EXPECT_FALSE(pipelines_.SpecFor(id).CollectionInScope("db7", "x"));
  EXPECT_TRUE(pipelines_.SpecFor(id).CollectionInScope("db7", "y"));
}

TEST_F(TaskManagerTest, SkipSurvivesARestartAndKeepsTheCreateIdempotent) {
  MustCreate(WithId(Spec("*"), "my-task"));
  ASSERT_TRUE(manager_->Skip("my-task", "", "x").ok());
  auto again = manager_->Create(WithId(Spec("*"), "my-task"));
  ASSERT_TRUE(again.ok()) << "the skip list is the server's, not the request's: " << again.status().ToString();
  MakeManager();
  EXPECT_EQ(manager_->Get("my-task")->spec.skip_collections, std::vector<std::string>{"default.x"});
  EXPECT_EQ(pipelines_.SpecFor("my-task").skip_collections, std::vector<std::string>{"default.x"});
  EXPECT_TRUE(manager_->Create(WithId(Spec("*"), "my-task")).ok());
}

TEST_F(TaskManagerTest, ASkipTheStoreRefusesChangesNothing) {
  const std::string id = MustCreate(Spec("*"));
  fake_store_.FailPut(true);
  Status st = manager_->Skip(id, "", "x");
  fake_store_.FailPut(false);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "fail to store the skipped collection, task_id: " + id + ": fake store refuses put");
  EXPECT_TRUE(manager_->Get(id)->spec.skip_collections.empty());
  EXPECT_EQ(pipelines_.CountsFor(id).starts, 1);
  EXPECT_EQ(pipelines_.Running(id), 1);
}

TEST_F(TaskManagerTest, ARunningTaskThatCannotRestartAfterASkipIsPaused) {
  const std::string id = MustCreate(Spec("*"));
  pipelines_.FailStartFor(id, Unavailable("target down"));
  Status st = manager_->Skip(id, "", "x");
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(st.message(),
            "the collection default.x is skipped, but the task could not restart and is paused: target down");
  EXPECT_EQ(StateOf(id), TaskState::kPaused);
  EXPECT_EQ(manager_->Get(id)->reason, "fail to start task, err: target down");
  EXPECT_EQ(fake_store_.Find(id)->state, TaskState::kPaused);
  EXPECT_EQ(StoredSkips(*fake_store_.Find(id)), std::vector<std::string>{"default.x"});
  EXPECT_EQ(pipelines_.Running(id), 0);
  pipelines_.FailStartFor(id, Status::Ok());
  EXPECT_TRUE(manager_->Resume(id).ok());
}

TEST_F(TaskManagerTest, AFailureReportedByThePipelineBeforeTheSkipIsIgnored) {
  const std::string id = MustCreate(Spec("*"));
  const std::string sentinel = MustCreate(Spec("s", "http://other:19530"));
  ASSERT_TRUE(manager_->Skip(id, "", "bad").ok());
  ASSERT_TRUE(pipelines_.ReportFailure(id, "from the pipeline the skip replaced", 0));
  ASSERT_TRUE(pipelines_.ReportFailure(sentinel, "marker"));
  ASSERT_TRUE(WaitFor([&] { return StateOf(sentinel) == TaskState::kPaused; }));
  EXPECT_EQ(StateOf(id), TaskState::kRunning);
}

TEST_F(TaskManagerTest, SkipKeepsTheFailedChangeUntilTheResume) {
  const std::string id = MustCreate(Spec("*"));
  FailedChange change{"default", "bad", "Insert", "by-dev-rootcoord-dml_0@17", "schema mismatch", 1700000000000};
  ASSERT_TRUE(pipelines_.ReportFailure(id, "fail to handle the op message pack, err: schema mismatch", -1, change));
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == TaskState::kPaused; }));
  ASSERT_TRUE(manager_->Skip(id, "default", "bad").ok());
  auto view = manager_->Get(id);
  ASSERT_TRUE(view.ok() && view->failed_change.has_value());
  EXPECT_EQ(view->failed_change->collection, "bad");
  ASSERT_TRUE(manager_->Resume(id).ok());
  EXPECT_FALSE(manager_->Get(id)->failed_change.has_value());
  EXPECT_FALSE(pipelines_.SpecFor(id).CollectionInScope("default", "bad"));
}

}  // namespace
}  // namespace cdc

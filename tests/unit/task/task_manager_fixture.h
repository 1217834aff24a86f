// The TaskManager test fixture, shared by the task manager test files: a manager over the
// fakes of task_test_fakes.h that a test can re-create over the same store (a restart).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "task/task_manager.h"
#include "task_test_fakes.h"

namespace cdc::testing {

inline constexpr char kToken[] = "root:TOKEN-in-memory-only";

// A create request for one collection of database default.
inline TaskSpec Spec(const std::string& collection, const std::string& uri = "http://target:19530") {
  nlohmann::json body = {{"milvus_connect_param", {{"uri", uri}, {"token", kToken}}},
                         {"collection_infos", {{{"name", collection}}}}};
  auto spec = DecodeTaskSpec(body);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return std::move(spec).value();
}

// A create request with the given scope, e.g. R"({"collection_infos": [{"name": "a"}, {"name": "b"}]})".
inline TaskSpec SpecOf(const char* scope_json) {
  nlohmann::json body = {{"milvus_connect_param", {{"uri", "http://target:19530"}, {"token", kToken}}}};
  nlohmann::json scope = nlohmann::json::parse(scope_json);
  for (auto it = scope.begin(); it != scope.end(); ++it) body[it.key()] = *it;
  auto spec = DecodeTaskSpec(body);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return std::move(spec).value();
}

inline TaskSpec WithId(TaskSpec s, const std::string& id) {
  s.task_id = id;
  return s;
}

class TaskManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeManager(); }
  void TearDown() override { manager_.reset(); }

  // (Re)creates the manager over the same store, as a server restart does.
  void MakeManager(int max_task_num = 100) {
    manager_.reset();
    TaskManagerOptions options;
    options.max_task_num = max_task_num;
    options.limits.max_name_length = 256;
    options.limits.replicate_chan = "by-dev-replicate-msg";
    manager_ = std::make_unique<TaskManager>(options, store(), &pipelines_, checker_.AsChecker(), &metrics_);
    Status st = manager_->Recover();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  virtual MetaStore* store() { return &fake_store_; }

  std::string MustCreate(TaskSpec spec) {
    auto id = manager_->Create(std::move(spec));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  TaskState StateOf(const std::string& id) {
    auto view = manager_->Get(id);
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    return view.ok() ? view->state : TaskState::kInitial;
  }

  Metrics metrics_;
  FakeMetaStore fake_store_;
  FakePipelineFactory pipelines_;
  FakeChecker checker_;
  std::unique_ptr<TaskManager> manager_;  // last: destroyed first
};

}  // namespace cdc::testing

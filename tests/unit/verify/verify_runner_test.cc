// VerifyRunner: one run at a time on its own thread, its report as JSON, its metrics, and the
// errors the API shows.
#include "verify/verify_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fake_side.h"

namespace cdc::verify {
namespace {

using testing::FakeRow;
using testing::FakeSide;
using json = nlohmann::json;

TaskSpec Spec() {
  TaskSpec s;
  s.task_id = "task-1";
  s.collection_infos = std::vector<CollectionInfo>{CollectionInfo{"*", std::nullopt, false}};
  return s;
}

// Polls until the runner's report leaves "running".
json WaitDone(const VerifyRunner& runner) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    json r = runner.Report();
    if (!r.is_null() && r.value("state", "") != "running") return r;
    if (std::chrono::steady_clock::now() > deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

class VerifyRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto source = std::make_unique<FakeSide>("source");
    auto target = std::make_unique<FakeSide>("target");
    for (const char* name : {"a", "b"}) {
      source->AddCollection("default", name);
      target->AddCollection("default", name);
      for (int64_t k = 0; k < 30; ++k) {
        source->Put("default", name, k, FakeRow{});
        target->Put("default", name, k, FakeRow{});
      }
    }
    target->Erase("default", "b", int64_t{7});
    source_ = source.get();
    target_ = target.get();
    RunnerTuning tuning;
    tuning.applied_wait = std::chrono::milliseconds(200);
    tuning.applied_stall = std::chrono::milliseconds(200);
    tuning.key_page_rows = 8;
    runner_ = std::make_unique<VerifyRunner>(
        "task-1", std::move(source), std::move(target), Spec(),
        []() -> StatusOr<uint64_t> { return ~uint64_t{0}; }, nullptr, &metrics_, tuning);
  }

  Metrics metrics_;
  FakeSide* source_ = nullptr;
  FakeSide* target_ = nullptr;
  std::unique_ptr<VerifyRunner> runner_;
};

TEST_F(VerifyRunnerTest, RunsAndReportsPerCollection) {
  EXPECT_TRUE(runner_->Report().is_null()) << "no run yet";
  VerifyOptions o;
  ASSERT_TRUE(runner_->Start(o).ok());
  json r = WaitDone(*runner_);
  EXPECT_EQ(r["state"], "done") << r.dump();
  EXPECT_EQ(r["equal"], false);
  EXPECT_EQ(r["level"], "rows") << "the default level";
  EXPECT_EQ(r["rows_compared"], 60);
  ASSERT_EQ(r["collections"].size(), 2u);
  EXPECT_EQ(r["collections"][0]["name"], "a");
  EXPECT_EQ(r["collections"][0]["equal"], true);
  EXPECT_EQ(r["collections"][1]["missing"], 1);
  EXPECT_EQ(r["collections"][1]["sample_keys"], json::array({7}));
  EXPECT_TRUE(r.contains("started") && r.contains("finished") && r.contains("seconds")) << r.dump();
  const std::string text = metrics_.Render();
  EXPECT_NE(text.find(R"(milvus_cdc_verify_rows_compared_total{task_id="task-1"} 60)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(milvus_cdc_verify_differences{task_id="task-1",kind="missing"} 1)"), std::string::npos)
      << text;
}

TEST_F(VerifyRunnerTest, NamedCollectionsOnly) {
  VerifyOptions o;
  o.collections = {{"default", "a"}};
  o.level = "rows";
  ASSERT_TRUE(runner_->Start(o).ok());
  json r = WaitDone(*runner_);
  EXPECT_EQ(r["equal"], true) << r.dump();
  EXPECT_EQ(r["collections"].size(), 1u);
  EXPECT_EQ(r["level"], "rows");
}

TEST_F(VerifyRunnerTest, OneRunAtATimeWithProgressWhileRunning) {
  std::atomic<bool> release{false};
  source_->SetHook([&](const std::string& op) {
    while (op == "ReadRange" && !release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  ASSERT_TRUE(runner_->Start(VerifyOptions{}).ok());
  json running = runner_->Report();
  EXPECT_EQ(running["state"], "running");
  EXPECT_FALSE(running.contains("equal")) << "not known yet";
  Status again = runner_->Start(VerifyOptions{});
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("already going"), std::string::npos) << again.message();
  release = true;
  EXPECT_EQ(WaitDone(*runner_)["state"], "done");
  EXPECT_TRUE(runner_->Start(VerifyOptions{}).ok()) << "a finished run makes room for the next";
  WaitDone(*runner_);
}

TEST_F(VerifyRunnerTest, StopMarksTheRunFailed) {
  std::atomic<bool> stopping{false};
  source_->SetHook([&](const std::string& op) {
    while (op == "ReadRange" && !stopping) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  ASSERT_TRUE(runner_->Start(VerifyOptions{}).ok());
  stopping = true;
  runner_->Stop();
  json r = runner_->Report();
  EXPECT_EQ(r["state"], "failed") << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("stopped"), std::string::npos) << r.dump();
  EXPECT_EQ(r["equal"], false);
}

TEST_F(VerifyRunnerTest, RefusesWhatItCannotDo) {
  VerifyOptions bad_level;
  bad_level.level = "deep";
  Status st = runner_->Start(bad_level);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "level must be one of count, keys, rows; got 'deep'");

  VerifyOptions outside;
  outside.collections = {{"db9", "x"}};
  st = runner_->Start(outside);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("db9.x is not in the scope"), std::string::npos) << st.message();

  VerifyOptions repair;
  repair.repair = true;
  st = runner_->Start(repair);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("repair is not available"), std::string::npos) << st.message();

  repair.level = "count";
  EXPECT_EQ(runner_->Start(repair).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(runner_->Report().is_null()) << "nothing started";

  VerifyRunner no_source("t", nullptr, nullptr, Spec(), nullptr, nullptr, &metrics_);
  st = no_source.Start(VerifyOptions{});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("sourceConfig.milvus.uri"), std::string::npos) << st.message();
}

TEST_F(VerifyRunnerTest, RepairGoesThroughTheSeam) {
  auto source = std::make_unique<FakeSide>("source");
  auto target = std::make_unique<FakeSide>("target");
  source->AddCollection("default", "a");
  target->AddCollection("default", "a");
  source->Put("default", "a", int64_t{1}, FakeRow{});
  FakeSide* tgt = target.get();
  int calls = 0;
  RepairFn repair = [&](const CollectionRef&, const std::vector<PkValue>& copy, const std::vector<PkValue>&) {
    ++calls;
    for (const auto& k : copy) tgt->Put("default", "a", k, FakeRow{});
    return Status::Ok();
  };
  VerifyRunner runner("task-1", std::move(source), std::move(target), Spec(),
                      []() -> StatusOr<uint64_t> { return ~uint64_t{0}; }, repair, &metrics_);
  VerifyOptions o;
  o.repair = true;
  ASSERT_TRUE(runner.Start(o).ok());
  json r = WaitDone(runner);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r["equal"], true) << r.dump();
  EXPECT_EQ(r["repair"], true);
  EXPECT_EQ(r["collections"][0]["missing"], 1) << "before";
  EXPECT_EQ(r["collections"][0]["repair"]["after"]["missing"], 0);
}

TEST(AppliedTsOfTest, SmallestDmlChannelAndUnknownIsZero) {
  std::vector<ChannelProgress> channels(3);
  channels[0].ts = 50;
  channels[1].ts = 40;
  channels[2].replicate = true;
  channels[2].ts = 0;
  EXPECT_EQ(AppliedTsOf(channels), 40u);
  channels[1].ts = 0;
  EXPECT_EQ(AppliedTsOf(channels), 0u) << "a channel not known yet";
  EXPECT_EQ(AppliedTsOf({}), 0u);
}

}  // namespace
}  // namespace cdc::verify

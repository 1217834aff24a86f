// Fakes at the TaskManager's seams, shared by the task and api unit tests:
// an in-memory MetaStore with failure injection, a PipelineFactory whose pipelines
// record Start/Stop and can fail, and a TargetChecker that counts calls.
#pragma once

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "store/meta_store.h"
#include "task/pipeline.h"
#include "task/task_manager.h"

namespace cdc::testing {

// MetaStore in memory. Thread-safe. The fail_* switches make the next calls fail.
class FakeMetaStore : public MetaStore {
 public:
  Status PutTask(const TaskRecord& task) override {
    std::lock_guard<std::mutex> lock(mu_);
    puts_++;
    if (fail_put_) return Unavailable("fake store refuses put");
    auto it = tasks_.find(task.task_id);
    TaskRecord r = task;
    if (it != tasks_.end()) r.create_time_ms = it->second.create_time_ms;
    tasks_[task.task_id] = r;
    return Status::Ok();
  }
  StatusOr<std::optional<TaskRecord>> GetTask(const std::string& task_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return std::optional<TaskRecord>();
    return std::optional<TaskRecord>(it->second);
  }
  StatusOr<std::vector<TaskRecord>> ListTasks() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_list_) return Unavailable("fake store refuses list");
    std::vector<TaskRecord> out;
    for (const auto& [id, r] : tasks_) out.push_back(r);
    std::sort(out.begin(), out.end(), [](const TaskRecord& a, const TaskRecord& b) {
      return std::tie(a.create_time_ms, a.task_id) < std::tie(b.create_time_ms, b.task_id);
    });
    return out;
  }
  Status DeleteTask(const std::string& task_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_delete_) return Unavailable("fake store refuses delete");
    if (!tasks_.erase(task_id)) return NotFound("not found the task, task_id: " + task_id);
    positions_.erase(task_id);
    return Status::Ok();
  }
  Status PutPositions(const std::string& task_id, const std::vector<ChannelPosition>& positions) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = positions_[task_id];
    for (const auto& p : positions) {
      auto same = std::find_if(list.begin(), list.end(), [&](const ChannelPosition& q) {
        return q.collection_id == p.collection_id && q.channel == p.channel;
      });
      if (same != list.end()) {
        *same = p;
      } else {
        list.push_back(p);
      }
    }
    return Status::Ok();
  }
  StatusOr<std::vector<ChannelPosition>> GetPositions(const std::string& task_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = positions_.find(task_id);
    if (it == positions_.end()) return std::vector<ChannelPosition>();
    return it->second;
  }

  void FailPut(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_put_ = fail;
  }
  void FailDelete(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_delete_ = fail;
  }
  void FailList(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_list_ = fail;
  }
  size_t Size() {
    std::lock_guard<std::mutex> lock(mu_);
    return tasks_.size();
  }
  std::optional<TaskRecord> Find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, TaskRecord> tasks_;
  std::map<std::string, std::vector<ChannelPosition>> positions_;
  bool fail_put_ = false;
  bool fail_delete_ = false;
  bool fail_list_ = false;
  int puts_ = 0;
};

// Creates pipelines that record their lifecycle per task id. Thread-safe.
class FakePipelineFactory : public PipelineFactory {
 public:
  struct Counts {
    int creates = 0;
    int starts = 0;
    int stops = 0;
  };

  std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                   PipelineFailure on_failure) override {
    std::lock_guard<std::mutex> lock(mu_);
    counts_[task_id].creates++;
    callbacks_[task_id] = on_failure;
    all_callbacks_[task_id].push_back(on_failure);
    specs_[task_id] = spec;
    if (return_null_) return nullptr;
    return std::make_unique<FakePipeline>(this, task_id);
  }

  // Every later Start (of any task, or of `task_id` only) returns `st`.
  void FailStart(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_all_ = std::move(st);
  }
  void FailStartFor(const std::string& task_id, Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_for_[task_id] = std::move(st);
  }
  void ReturnNull(bool v) {
    std::lock_guard<std::mutex> lock(mu_);
    return_null_ = v;
  }
  // What every pipeline's Note and Progress answer from now on.
  void SetNote(std::string note) {
    std::lock_guard<std::mutex> lock(mu_);
    note_ = std::move(note);
  }
  void SetProgress(PipelineProgress progress) {
    std::lock_guard<std::mutex> lock(mu_);
    progress_ = std::move(progress);
  }
  // StartVerify answers `start`; once it succeeded, VerifyReport answers `report` (until
  // SetVerifyReport changes it). The default: Unimplemented, as the Pipeline interface.
  void SetVerify(Status start, nlohmann::json report) {
    std::lock_guard<std::mutex> lock(mu_);
    verify_start_ = std::move(start);
    verify_next_report_ = std::move(report);
    verify_set_ = true;
  }
  void SetVerifyReport(nlohmann::json report) {
    std::lock_guard<std::mutex> lock(mu_);
    verify_report_ = std::move(report);
  }
  // The options of the last StartVerify, and how many there were.
  std::optional<VerifyOptions> LastVerify() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_verify_;
  }
  int VerifyStarts() {
    std::lock_guard<std::mutex> lock(mu_);
    return verify_starts_;
  }

  Counts CountsFor(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[task_id];
  }
  // Started and not yet stopped.
  int Running(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    const Counts& c = counts_[task_id];
    return c.starts - c.stops;
  }
  int TotalRunning() {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& [id, c] : counts_) n += c.starts - c.stops;
    return n;
  }
  int TotalCreates() {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& [id, c] : counts_) n += c.creates;
    return n;
  }
  TaskSpec SpecFor(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return specs_[task_id];
  }

  // Reports a failure through the callback of the latest pipeline of `task_id`
  // (index selects an older one: 0 is the first pipeline ever created for it), with the
  // source change to blame when `change` is given.
  bool ReportFailure(const std::string& task_id, const std::string& reason, int index = -1,
                     const std::optional<FailedChange>& change = std::nullopt) {
    PipelineFailure cb;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& list = all_callbacks_[task_id];
      if (list.empty()) return false;
      cb = index < 0 ? list.back() : list.at(static_cast<size_t>(index));
    }
    cb(task_id, reason, change);
    return true;
  }

 private:
  class FakePipeline : public Pipeline {
   public:
    FakePipeline(FakePipelineFactory* factory, std::string id) : factory_(factory), id_(std::move(id)) {}
    Status Start() override { return factory_->OnStart(id_); }
    void Stop() override { factory_->OnStop(id_); }
    std::string Note() const override {
      std::lock_guard<std::mutex> lock(factory_->mu_);
      return factory_->note_;
    }
    PipelineProgress Progress() const override {
      std::lock_guard<std::mutex> lock(factory_->mu_);
      return factory_->progress_;
    }
    Status StartVerify(const VerifyOptions& options) override {
      std::lock_guard<std::mutex> lock(factory_->mu_);
      if (!factory_->verify_set_) return Pipeline::StartVerify(options);
      factory_->last_verify_ = options;
      factory_->verify_starts_++;
      if (factory_->verify_start_.ok()) factory_->verify_report_ = factory_->verify_next_report_;
      return factory_->verify_start_;
    }
    nlohmann::json VerifyReport() const override {
      std::lock_guard<std::mutex> lock(factory_->mu_);
      return factory_->verify_report_;
    }

   private:
    FakePipelineFactory* factory_;
    std::string id_;
  };

  Status OnStart(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_all_.ok()) return fail_all_;
    auto it = fail_for_.find(id);
    if (it != fail_for_.end() && !it->second.ok()) return it->second;
    counts_[id].starts++;
    return Status::Ok();
  }
  void OnStop(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    counts_[id].stops++;
  }

  std::mutex mu_;
  std::map<std::string, Counts> counts_;
  std::map<std::string, PipelineFailure> callbacks_;
  std::map<std::string, std::vector<PipelineFailure>> all_callbacks_;
  std::map<std::string, TaskSpec> specs_;
  Status fail_all_;
  std::map<std::string, Status> fail_for_;
  bool return_null_ = false;
  std::string note_;
  PipelineProgress progress_;
  bool verify_set_ = false;
  Status verify_start_;
  nlohmann::json verify_next_report_;
  nlohmann::json verify_report_;
  std::optional<VerifyOptions> last_verify_;
  int verify_starts_ = 0;
};

// A TargetChecker that answers `result` and counts calls. Thread-safe.
class FakeChecker {
 public:
  TargetChecker AsChecker() {
    return [this](const MilvusConnectParam& m) {
      calls_++;
      std::lock_guard<std::mutex> lock(mu_);
      last_ = m;
      return result_;
    };
  }
  void Fail(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = std::move(st);
  }
  int calls() const { return calls_.load(); }
  MilvusConnectParam last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  std::atomic<int> calls_{0};
  std::mutex mu_;
  Status result_;
  MilvusConnectParam last_;
};

}  // namespace cdc::testing

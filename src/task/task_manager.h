// TaskManager: the task lifecycle (Initial -> Running <-> Paused, delete from any state).
// Every change is written to the MetaStore before it is acknowledged; the in-memory map
// mirrors the store. Owned by main; thread-safe (mu_ guards tasks_; failures reported by
// pipelines are queued and handled on the manager's own thread, so a pipeline never
// waits on mu_).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/meta_store.h"
#include "task/pipeline.h"
#include "task/task_spec.h"
#include "util/metrics.h"
#include "util/status.h"

namespace cdc {

// Proves the target answers (a real RPC with the task's auth and TLS) or says why not.
using TargetChecker = std::function<Status(const MilvusConnectParam&)>;

struct TaskManagerOptions {
  int max_task_num = 100;
  SpecLimits limits;
};

// A snapshot of one task for get/list.
struct TaskView {
  TaskSpec spec;
  TaskState state = TaskState::kInitial;
  std::string reason;
  PipelineProgress progress;  // Get only: live, or the stored checkpoints; lag filled in
  std::optional<FailedChange> failed_change;  // Get only: the change that paused the task
  nlohmann::json verify;  // Get only: the current or last verify run (null when none)
};

class TaskManager {
 public:
  TaskManager(TaskManagerOptions options, MetaStore* store, PipelineFactory* pipelines, TargetChecker checker,
              Metrics* metrics);
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Loads stored tasks: Running/Initial ones start again (or pause when they disable
  // auto start), Paused ones stay paused. Starts the failure-handling thread.
  Status Recover();
  // Stops every pipeline and the manager's thread; tasks keep their stored state.
  void Shutdown();

  // Validates, checks the target, persists and starts a task; returns its id. The
  // connectivity check (up to connect_timeout) runs without holding the manager's lock.
  StatusOr<std::string> Create(TaskSpec spec);
  Status Delete(const std::string& task_id, bool ignore_not_found);
  Status Pause(const std::string& task_id);
  Status Resume(const std::string& task_id);
  // Leaves source collection `db`.`collection` (db empty: "default") out of the task's scope
  // from now on and stores that with the spec. A running task's pipeline is restarted with the
  // new scope (blocks like Pause); a paused task stays paused. Idempotent.
  Status Skip(const std::string& task_id, const std::string& db, const std::string& collection);
  // (Re)copies the rows of these source collections (db, name) of a running task.
  Status Backfill(const std::string& task_id, const std::vector<std::pair<std::string, std::string>>& collections);
  StatusOr<TaskView> Get(const std::string& task_id);
  std::vector<TaskView> List();
  StatusOr<std::vector<ChannelPosition>> Positions(const std::string& task_id);
  // Starts a verify run on a running task's pipeline (options checked first: InvalidArgument
  // naming the problem; FailedPrecondition for a task that is not running or a run already
  // going), then waits up to `wait` for it to finish without holding the manager's lock.
  // Returns the run's report: finished, or still running with its progress.
  StatusOr<nlohmann::json> Verify(const std::string& task_id, const VerifyOptions& options,
                                  std::chrono::milliseconds wait);
  // Sets milvus_cdc_task_lag_ms{task_id,channel} for every task and DML channel, from the
  // running pipeline or, for a paused task or one still starting, its stored checkpoints.
  void RefreshLagMetrics();

 private:
  struct Entry {
    TaskRecord record;
    TaskSpec spec;
    std::unique_ptr<Pipeline> pipeline;
    std::unique_ptr<Pipeline> idle_ticker;  // while paused (standby targets)
    uint64_t generation = 0;  // bumps on every pipeline start; stale failures are ignored
    nlohmann::json last_verify;  // the last verify report of a pipeline that has been stopped
  };

  Status StartPipelineLocked(Entry& e);
  // Stops the pipeline and the idle ticker.
  void StopPipelineLocked(Entry& e);
  // Starts the idle ticker of a paused task, if its factory has one.
  void StartIdleTickerLocked(Entry& e);
  // Stores the new state and reason; `change` replaces the stored failed change (none clears it).
  Status PersistLocked(Entry& e, TaskState state, const std::string& reason,
                       const std::optional<FailedChange>& change = std::nullopt);
  TaskView ViewLocked(const Entry& e) const;
  nlohmann::json VerifyReportLocked(const Entry& e) const;
  PipelineProgress ProgressLocked(const Entry& e) const;
  void UpdateMetricsLocked();
  void OnPipelineFailure(const std::string& task_id, uint64_t generation, const std::string& reason,
                         const std::optional<FailedChange>& change);
  void FailureLoop();

  const TaskManagerOptions options_;
  MetaStore* const store_;
  PipelineFactory* const pipelines_;
  const TargetChecker checker_;
  Metrics* const metrics_;

  std::mutex mu_;  // guards tasks_ and every store write of a task
  std::map<std::string, Entry> tasks_;
  uint64_t generation_ = 0;  // last pipeline generation handed out
  std::map<std::string, std::set<std::string>> lag_series_;  // task -> channels with a lag gauge

  struct Failure {
    std::string task_id;
    uint64_t generation;
    std::string reason;
    std::optional<FailedChange> change;
  };
  std::mutex failure_mu_;  // guards failures_ and stopping_
  std::condition_variable failure_cv_;
  std::deque<Failure> failures_;
  bool stopping_ = false;
  std::thread failure_thread_;
};

// A random UUIDv4 as 32 lowercase hex characters.
std::string NewTaskId();

}  // namespace cdc

#include "task/task_manager.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "store/backfill_state.h"
#include "store/checkpoint.h"
#include "task/scope.h"
#include "util/log.h"
#include "util/clock.h"

namespace cdc {

namespace {

const char kManualPause[] = "manually pause through http interface";
// How long `create` waits for a new task to pin where it starts reading.
constexpr std::chrono::milliseconds kPinWait{5000};
const char kDisabledAutoStart[] = "the task is disabled auto start";

// Two specs are "the same request" when everything but the id and the server-set lists match.
bool SameRequest(TaskSpec a, TaskSpec b) {
  a.task_id.clear();
  b.task_id.clear();
  a.exclude_collections.clear();
  b.exclude_collections.clear();
  a.skip_collections.clear();
  b.skip_collections.clear();
  return SpecToJson(a) == SpecToJson(b) && SecretsToJson(a) == SecretsToJson(b);
}

}  // namespace

std::string NewTaskId() {
  std::random_device rd;
  unsigned char bytes[16];
  for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

TaskManager::TaskManager(TaskManagerOptions options, MetaStore* store, PipelineFactory* pipelines,
                         TargetChecker checker, Metrics* metrics)
    : options_(std::move(options)),
      store_(store),
      pipelines_(pipelines),
      checker_(std::move(checker)),
      metrics_(metrics) {
  metrics_->Describe("milvus_cdc_task_num", Metrics::Type::kGauge, "Number of tasks per state");
  metrics_->Describe("milvus_cdc_task_state", Metrics::Type::kGauge,
                     "Task state: 0 Initial, 1 Running, 2 Paused, -1 deleted");
  metrics_->Describe("milvus_cdc_task_lag_ms", Metrics::Type::kGauge,
                     "Milliseconds between now (the source's head: it ticks every channel) and the time "
                     "applied up to, per task and source DML channel");
}

TaskManager::~TaskManager() { Shutdown(); }

Status TaskManager::Recover() {
  auto log = GetLogger("task");
  ASSIGN_OR_RETURN(auto records, store_->ListTasks());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : records) {
      auto spec = SpecFromStored(r.spec_json, r.secrets_json);
      if (!spec.ok()) return spec.status().WithContext("cannot load task " + r.task_id);
      Entry& e = tasks_[r.task_id];
      e.record = std::move(r);
      e.spec = std::move(spec).value();
      e.spec.task_id = e.record.task_id;
    }
    for (auto& [id, e] : tasks_) {
      if (e.record.state == TaskState::kPaused) {
        log->info("task {} stays paused after restart (reason: {})", id, e.record.reason);
        StartIdleTickerLocked(e);
        continue;
      }
      if (e.spec.disable_auto_start) {
        RETURN_IF_ERROR(PersistLocked(e, TaskState::kPaused, kDisabledAutoStart));
        log->info("task {} paused after restart: auto start is disabled", id);
        StartIdleTickerLocked(e);
        continue;
      }
      Status st = StartPipelineLocked(e);
      if (!st.ok()) {
        log->error("task {} failed to start after restart: {}", id, st.message());
        RETURN_IF_ERROR(PersistLocked(e, TaskState::kPaused, "fail to start task, err: " + st.message()));
        StartIdleTickerLocked(e);
        continue;
      }
      RETURN_IF_ERROR(PersistLocked(e, TaskState::kRunning, ""));
      log->info("task {} resumed after restart", id);
    }
    UpdateMetricsLocked();
  }
  failure_thread_ = std::thread([this] { FailureLoop(); });
  return Status::Ok();
}

void TaskManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(failure_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  failure_cv_.notify_all();
  if (failure_thread_.joinable()) failure_thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, e] : tasks_) StopPipelineLocked(e);
}

StatusOr<std::string> TaskManager::Create(TaskSpec spec) {
  RETURN_IF_ERROR(ValidateSpec(spec, options_.limits));
  // An existing client-chosen id answers before any network call: same body -> same id.
  if (!spec.task_id.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(spec.task_id);
    if (it != tasks_.end()) {
      if (SameRequest(it->second.spec, spec)) return spec.task_id;
      return AlreadyExists("the task_id " + spec.task_id + " already exists with a different request");
    }
  }
  if (Status st = checker_(spec.milvus); !st.ok()) {
    return Status(StatusCode::kUnavailable, "fail to connect the milvus: " + st.message());
  }

  std::lock_guard<std::mutex> lock(mu_);
  if (!spec.task_id.empty() && tasks_.count(spec.task_id)) {  // created meanwhile by a concurrent request
    if (SameRequest(tasks_[spec.task_id].spec, spec)) return spec.task_id;
    return AlreadyExists("the task_id " + spec.task_id + " already exists with a different request");
  }
  const std::string target = TargetKey(spec);
  std::vector<TaskSpec> same_target;
  for (const auto& [id, e] : tasks_) {
    if (TargetKey(e.spec) == target) same_target.push_back(e.spec);
  }
  RETURN_IF_ERROR(CheckScope(&spec, same_target));
  if (static_cast<int>(tasks_.size()) >= options_.max_task_num) {
    return ResourceExhausted("the task num has reach the limit, " + std::to_string(options_.max_task_num));
  }
  if (spec.task_id.empty()) spec.task_id = NewTaskId();
  const std::string id = spec.task_id;

  Entry e;
  e.spec = spec;
  e.record.task_id = id;
  e.record.state = TaskState::kInitial;
  e.record.spec_json = SpecToJson(spec).dump();
  e.record.secrets_json = SecretsToJson(spec);
  e.record.create_time_ms = NowMs();
  if (Status st = store_->PutTask(e.record); !st.ok()) {
    return Status(st.code(), "fail to put the task info to the store: " + st.message());
  }
  Status started = StartPipelineLocked(e);
  if (started.ok()) started = PersistLocked(e, TaskState::kRunning, "");
  // Answer once the task pinned where it starts reading: a client's next write is then copied.
  if (started.ok() && e.pipeline) e.pipeline->WaitStarted(kPinWait);
  if (!started.ok()) {
    StopPipelineLocked(e);
    (void)store_->DeleteTask(id);  // a create that fails after persisting leaves nothing behind
    return started.WithContext("fail to start the task, task_id: " + id);
  }
  tasks_[id] = std::move(e);
  UpdateMetricsLocked();
  std::string scope;
  for (const auto& name : spec.ScopeNames()) scope += (scope.empty() ? "" : " ") + name;
  GetLogger("task")->info("task {} created for target {} scope [{}]", id, target, scope);
  return id;
}

Status TaskManager::Delete(const std::string& task_id, bool ignore_not_found) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) {
    if (ignore_not_found) return Status::Ok();
    return NotFound("not found the task, task_id: " + task_id);
  }
  StopPipelineLocked(it->second);
  Status st = store_->DeleteTask(task_id);
  if (!st.ok() && st.code() != StatusCode::kNotFound) {
    // Still stored: put the pipeline back as it was so memory keeps mirroring the store.
    if (it->second.record.state == TaskState::kRunning) (void)StartPipelineLocked(it->second);
    return st.WithContext("fail to delete the task, task_id: " + task_id);
  }
  tasks_.erase(it);
  metrics_->Set("milvus_cdc_task_state", {{"task_id", task_id}}, -1);
  metrics_->Remove("milvus_cdc_task_lag_ms", "task_id", task_id);
  metrics_->Remove("milvus_cdc_pack_latency_ms", "task_id", task_id);
  metrics_->Remove("milvus_cdc_verify_rows_compared_total", "task_id", task_id);
  metrics_->Remove("milvus_cdc_verify_differences", "task_id", task_id);
  lag_series_.erase(task_id);
  UpdateMetricsLocked();
  GetLogger("task")->info("task {} deleted", task_id);
  return Status::Ok();
}

Status TaskManager::Pause(const std::string& task_id) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("not found the task, task_id: " + task_id);
  Entry& e = it->second;
  if (e.record.state == TaskState::kPaused) return FailedPrecondition("the task has paused, task_id: " + task_id);
  StopPipelineLocked(e);
  Status st = PersistLocked(e, TaskState::kPaused, kManualPause);
  if (!st.ok()) {
    (void)StartPipelineLocked(e);
    return st.WithContext("fail to update the task state, task_id: " + task_id);
  }
  StartIdleTickerLocked(e);
  UpdateMetricsLocked();
  GetLogger("task")->info("task {} paused", task_id);
  return Status::Ok();
}

Status TaskManager::Resume(const std::string& task_id) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("not found the task, task_id: " + task_id);
  Entry& e = it->second;
  if (e.record.state == TaskState::kRunning) return FailedPrecondition("the task has running, task_id: " + task_id);
  Status st = StartPipelineLocked(e);
  if (st.ok()) st = PersistLocked(e, TaskState::kRunning, "");
  if (!st.ok()) {
    StopPipelineLocked(e);
    return Status(StatusCode::kInternal, "fail to start the task, task_id: " + task_id + ": " + st.message());
  }
  UpdateMetricsLocked();
  GetLogger("task")->info("task {} resumed", task_id);
  return Status::Ok();
}

Status TaskManager::Skip(const std::string& task_id, const std::string& db_name, const std::string& collection) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  if (collection.empty()) return InvalidArgument("collection_name is empty: name the collection to skip");
  const std::string db = db_name.empty() ? "default" : db_name;
  if (db == "*" || collection == "*") {
    return InvalidArgument("skip takes one collection: db_name and collection_name cannot be `*`");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("not found the task, task_id: " + task_id);
  Entry& e = it->second;
  const std::string name = db + "." + collection;
  auto& skipped = e.spec.skip_collections;
  if (std::find(skipped.begin(), skipped.end(), name) != skipped.end()) return Status::Ok();
  if (!e.spec.CollectionInScope(db, collection)) {
    return InvalidArgument("the collection " + name + " is not in the scope of the task, task_id: " + task_id);
  }
  TaskSpec spec = e.spec;
  spec.skip_collections.push_back(name);
  std::sort(spec.skip_collections.begin(), spec.skip_collections.end());
  TaskRecord updated = e.record;
  updated.spec_json = SpecToJson(spec).dump();
  if (Status st = store_->PutTask(updated); !st.ok()) {
    return st.WithContext("fail to store the skipped collection, task_id: " + task_id);
  }
  e.record = std::move(updated);
  e.spec = std::move(spec);
  auto log = GetLogger("task");
  log->info("task {} skips collection {}", task_id, name);
  if (e.record.state != TaskState::kRunning) {  // the operator resumes it; the idle ticker takes the new scope
    StopPipelineLocked(e);
    StartIdleTickerLocked(e);
    return Status::Ok();
  }

  // The pipeline holds the scope it started with: restart it (from its checkpoints).
  StopPipelineLocked(e);
  Status started = StartPipelineLocked(e);
  if (started.ok()) return Status::Ok();
  StopPipelineLocked(e);
  Status persisted = PersistLocked(e, TaskState::kPaused, "fail to start task, err: " + started.message());
  UpdateMetricsLocked();
  log->error("task {} paused: it could not restart after skipping {}: {}", task_id, name, started.message());
  if (!persisted.ok()) {
    return Internal("the collection " + name + " is skipped, but the task could not restart: " + started.message() +
                    " (and its pause could not be stored: " + persisted.message() + ")");
  }
  return Internal("the collection " + name + " is skipped, but the task could not restart and is paused: " +
                  started.message());
}

StatusOr<TaskView> TaskManager::Get(const std::string& task_id) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("not found: [" + task_id + "]");
  TaskView v = ViewLocked(it->second);
  v.progress = ProgressLocked(it->second);
  if (!it->second.record.failed_change_json.empty()) {
    v.failed_change = FailedChangeFromJson(it->second.record.failed_change_json);
  }
  v.verify = VerifyReportLocked(it->second);
  return v;
}

nlohmann::json TaskManager::VerifyReportLocked(const Entry& e) const {
  nlohmann::json report = e.pipeline ? e.pipeline->VerifyReport() : nlohmann::json();
  return report.is_null() ? e.last_verify : report;
}

StatusOr<nlohmann::json> TaskManager::Verify(const std::string& task_id, const VerifyOptions& options,
                                             std::chrono::milliseconds wait) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return NotFound("not found the task, task_id: " + task_id);
    Entry& e = it->second;
    RETURN_IF_ERROR(ValidateVerifyOptions(e.spec, options));
    if (e.record.state != TaskState::kRunning || !e.pipeline) {
      return FailedPrecondition(std::string("the task is not running (state ") + TaskStateName(e.record.state) +
                                "): resume it, or run `milvus-cdc verify` offline, task_id: " + task_id);
    }
    RETURN_IF_ERROR(e.pipeline->StartVerify(options));
  }
  // Wait for the run without holding the lock: other requests (and a pause) go on meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    nlohmann::json report;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = tasks_.find(task_id);
      if (it == tasks_.end()) return NotFound("the task was deleted during the verify run, task_id: " + task_id);
      report = VerifyReportLocked(it->second);
    }
    const bool running = report.is_object() && report.value("state", "") == "running";
    if (!running || std::chrono::steady_clock::now() >= deadline) return report;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

PipelineProgress TaskManager::ProgressLocked(const Entry& e) const {
  PipelineProgress p;
  if (e.pipeline) p = e.pipeline->Progress();
  if (p.channels.empty()) {  // paused, or not reading yet: the stored checkpoints
    auto stored = store_->GetPositions(e.record.task_id);
    if (stored.ok()) {
      if (p.backfill.empty()) {
        for (const auto& b : BackfillStatesOf(*stored)) {
          p.backfill.push_back(BackfillProgress{b.db, b.name, b.state, b.reason, b.rows_copied, b.rows_estimated, 0});
        }
      }
      for (const auto& pos : *stored) {
        if (pos.collection_id != kCheckpointId && pos.collection_id != kReplicateCheckpointId) continue;
        ChannelProgress c;
        c.channel = pos.channel;
        c.replicate = pos.collection_id == kReplicateCheckpointId;
        if (!DecodeCheckpoint(pos.data, &c.offset, &c.ts)) continue;
        p.channels.push_back(std::move(c));
      }
    } else if (p.last_error.empty()) {
      p.last_error = "cannot read the stored checkpoints: " + stored.status().message();
      p.last_error_ms = NowMs();
    }
  }
  FillLag(&p.channels, NowMs());
  return p;
}

void TaskManager::RefreshLagMetrics() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, e] : tasks_) {
    std::set<std::string> now;
    for (const auto& c : ProgressLocked(e).channels) {
      if (c.lag_ms < 0) continue;
      now.insert(c.channel);
      metrics_->Set("milvus_cdc_task_lag_ms", {{"task_id", id}, {"channel", c.channel}}, static_cast<double>(c.lag_ms));
    }
    for (const auto& gone : lag_series_[id]) {  // channels no longer read: no frozen value
      if (!now.count(gone)) metrics_->Erase("milvus_cdc_task_lag_ms", {{"task_id", id}, {"channel", gone}});
    }
    lag_series_[id] = std::move(now);
  }
}

std::vector<TaskView> TaskManager::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Entry*> entries;
  for (const auto& [id, e] : tasks_) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->record.create_time_ms, a->record.task_id) < std::tie(b->record.create_time_ms, b->record.task_id);
  });
  std::vector<TaskView> out;
  for (const Entry* e : entries) out.push_back(ViewLocked(*e));
  return out;
}

StatusOr<std::vector<ChannelPosition>> TaskManager::Positions(const std::string& task_id) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tasks_.count(task_id)) return NotFound("not found the task, task_id: " + task_id);
  }
  return store_->GetPositions(task_id);
}

Status TaskManager::StartPipelineLocked(Entry& e) {
  if (e.idle_ticker) {  // never both: the pipeline sends its own ticks
    e.idle_ticker->Stop();
    e.idle_ticker.reset();
  }
  const uint64_t generation = ++generation_;  // unique across tasks, so a stale report never matches
  e.generation = generation;
  auto pipeline = pipelines_->Create(e.record.task_id, e.spec,
                                     [this, generation](const std::string& id, const std::string& reason,
                                                        const std::optional<FailedChange>& change) {
                                       OnPipelineFailure(id, generation, reason, change);
                                     });
  if (!pipeline) return Internal("no pipeline could be created");
  RETURN_IF_ERROR(pipeline->Start());
  e.pipeline = std::move(pipeline);
  return Status::Ok();
}

void TaskManager::StartIdleTickerLocked(Entry& e) {
  if (e.idle_ticker || e.pipeline) return;
  auto ticker = pipelines_->CreateIdleTicker(e.record.task_id, e.spec);
  if (!ticker || !ticker->Start().ok()) return;
  e.idle_ticker = std::move(ticker);
}

void TaskManager::StopPipelineLocked(Entry& e) {
  if (e.idle_ticker) {
    e.idle_ticker->Stop();
    e.idle_ticker.reset();
  }
  if (!e.pipeline) return;
  e.pipeline->Stop();
  // Keep the last verify report (a stopped run says so) for get, past the pipeline.
  nlohmann::json report = e.pipeline->VerifyReport();
  if (!report.is_null()) e.last_verify = std::move(report);
  e.pipeline.reset();
}

Status TaskManager::PersistLocked(Entry& e, TaskState state, const std::string& reason,
                                  const std::optional<FailedChange>& change) {
  TaskRecord updated = e.record;
  updated.state = state;
  updated.reason = reason;
  updated.failed_change_json = change ? FailedChangeToJson(*change) : "";
  RETURN_IF_ERROR(store_->PutTask(updated));
  e.record = std::move(updated);
  return Status::Ok();
}

TaskView TaskManager::ViewLocked(const Entry& e) const {
  TaskView v;
  v.spec = e.spec;
  v.state = e.record.state;
  v.reason = e.record.reason;
  if (v.reason.empty() && e.pipeline) v.reason = e.pipeline->Note();
  if (e.pipeline) v.progress.write_mode = e.pipeline->Progress().write_mode;
  return v;
}

void TaskManager::UpdateMetricsLocked() {
  int counts[3] = {0, 0, 0};
  for (const auto& [id, e] : tasks_) {
    counts[static_cast<int>(e.record.state)]++;
    metrics_->Set("milvus_cdc_task_state", {{"task_id", id}}, static_cast<int>(e.record.state));
  }
  for (int s = 0; s < 3; ++s) {
    metrics_->Set("milvus_cdc_task_num", {{"task_state", TaskStateName(static_cast<TaskState>(s))}}, counts[s]);
  }
}

void TaskManager::OnPipelineFailure(const std::string& task_id, uint64_t generation, const std::string& reason,
                                    const std::optional<FailedChange>& change) {
  {
    std::lock_guard<std::mutex> lock(failure_mu_);
    failures_.push_back(Failure{task_id, generation, reason, change});
  }
  failure_cv_.notify_one();
}

void TaskManager::FailureLoop() {
  for (;;) {
    Failure f;
    {
      std::unique_lock<std::mutex> lock(failure_mu_);
      failure_cv_.wait(lock, [this] { return stopping_ || !failures_.empty(); });
      if (stopping_) return;
      f = std::move(failures_.front());
      failures_.pop_front();
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(f.task_id);
    if (it == tasks_.end() || it->second.generation != f.generation ||
        it->second.record.state != TaskState::kRunning) {
      continue;  // deleted, paused or restarted since: the report is stale
    }
    StopPipelineLocked(it->second);
    if (f.change && f.change->time_ms == 0) f.change->time_ms = NowMs();
    Status st = PersistLocked(it->second, TaskState::kPaused, f.reason, f.change);
    StartIdleTickerLocked(it->second);
    GetLogger("task")->error("task {} paused: {}{}", f.task_id, f.reason,
                             st.ok() ? "" : " (and the pause could not be stored: " + st.message() + ")");
    UpdateMetricsLocked();
  }
}

Status TaskManager::Backfill(const std::string& task_id,
                             const std::vector<std::pair<std::string, std::string>>& collections) {
  if (task_id.empty()) return InvalidArgument("task_id is empty");
  if (collections.empty()) {
    return InvalidArgument("collections is empty: name at least one collection as {\"db\": ..., \"name\": ...}");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("not found the task, task_id: " + task_id);
  if (!it->second.pipeline) {
    return FailedPrecondition(std::string("the task is not running (state ") + TaskStateName(it->second.record.state) +
                              "): resume it, then request the backfill");
  }
  return it->second.pipeline->RequestBackfill(collections);
}

}  // namespace cdc

// VerifyRunner: the server side of `verify` for one task. Runs one verify at a time on its own
// thread and keeps the current or last run as JSON for the API (`verify` answers it, `get`
// shows it): state running/done/failed, start and finish times, progress (rows compared, the
// collection being compared) and the report. Exports milvus_cdc_verify_rows_compared_total
// {task_id} and milvus_cdc_verify_differences{task_id, kind}.
//
// A TaskPipeline owns one and implements Pipeline::StartVerify / VerifyReport with it:
//   runner_ = std::make_unique<verify::VerifyRunner>(task_id, source_client, target_client, spec,
//       [this] { return AppliedTs(); }, repair_fn_or_nullptr, metrics);
//   Status StartVerify(const VerifyOptions& o) override { return runner_->Start(o); }
//   nlohmann::json VerifyReport() const override { return runner_->Report(); }
// and calls runner_->Stop() before the clients go away (AppliedTsOf helps with AppliedTs).
// Thread-safe: Start, Report and Stop may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "target/milvus_client.h"
#include "task/pipeline.h"
#include "task/task_spec.h"
#include "util/metrics.h"
#include "verify/verifier.h"
#include "verify/verify_side.h"

namespace cdc::verify {

// The applied timestamp of a task from its channels' progress: the smallest over its DML
// channels (the replicate channel has no time ticks); 0 while one is not known yet or there is
// none.
uint64_t AppliedTsOf(const std::vector<ChannelProgress>& channels);

// Both sides of a run, connected on the run's thread (a runner with clients of its own).
using Sides = std::pair<std::unique_ptr<VerifySide>, std::unique_ptr<VerifySide>>;
using SidesConnector = std::function<StatusOr<Sides>()>;

// Knobs a test may turn; the defaults are what the server uses.
struct RunnerTuning {
  std::chrono::milliseconds applied_wait{30000};
  std::chrono::milliseconds applied_stall{5000};
  int generations = 3;
  int64_t key_page_rows = 16384;
  size_t row_page_bytes = 4u << 20;
  size_t max_recheck_keys = 100000;
};

class VerifyRunner {
 public:
  // `source` may be null (sourceConfig.milvus not set): Start then says how to enable verify.
  // `repair` may be null: `repair: true` is then refused. The clients and metrics outlive the
  // runner.
  VerifyRunner(std::string task_id, target::MilvusClient* source, target::MilvusClient* target, TaskSpec spec,
               AppliedTsFn applied_ts, RepairFn repair, Metrics* metrics, RunnerTuning tuning = {});
  // Over given sides (tests).
  VerifyRunner(std::string task_id, std::unique_ptr<VerifySide> source, std::unique_ptr<VerifySide> target,
               TaskSpec spec, AppliedTsFn applied_ts, RepairFn repair, Metrics* metrics, RunnerTuning tuning = {});
  // Over sides `connect` opens at the start of a run (on the run's thread, so a slow or
  // unreachable Milvus never blocks Start); they are cancelled by Stop and reopened by the next
  // run after it.
  VerifyRunner(std::string task_id, SidesConnector connect, TaskSpec spec, AppliedTsFn applied_ts, RepairFn repair,
               Metrics* metrics, RunnerTuning tuning = {});
  ~VerifyRunner();
  VerifyRunner(const VerifyRunner&) = delete;
  VerifyRunner& operator=(const VerifyRunner&) = delete;

  // Checks the options (InvalidArgument naming the problem; FailedPrecondition when a run is
  // going, or when repair or the source API is not available) and starts a run. Does not block.
  Status Start(const VerifyOptions& options);
  // The current or last run, or null before the first.
  nlohmann::json Report() const;
  // Stops a run (its report says it was stopped) and joins the thread. Blocks up to the
  // Milvus calls in flight.
  void Stop();

 private:
  void Run(VerifyOptions options);
  void OnRows(const CollectionRef& c, int64_t rows);

  const std::string task_id_;
  const SidesConnector connect_;  // null: the sides were given
  const TaskSpec spec_;
  const AppliedTsFn applied_ts_;
  const RepairFn repair_;
  Metrics* const metrics_;
  const RunnerTuning tuning_;

  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // guards everything below; thread_ is joined outside it
  // Set by the constructor, or by the run's thread when it connects; the run's thread reads them
  // without the lock (nothing else replaces them while it runs).
  std::unique_ptr<VerifySide> source_;
  std::unique_ptr<VerifySide> target_;
  std::thread thread_;
  bool running_ = false;
  nlohmann::json state_;  // the run so far: state, times, options, progress
  std::vector<CollectionReport> done_;
  std::string current_;  // "db.name" being compared
  int64_t rows_compared_ = 0;
};

}  // namespace cdc::verify

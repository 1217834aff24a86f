// Pipeline: the replication work behind one running task (read the source, apply to
// the target, checkpoint). The TaskManager owns one per running task and is its only
// caller; Start and Stop are never called concurrently for the same pipeline.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <atomic>
#include <variant>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/meta_store.h"
#include "task/task_spec.h"
#include "util/status.h"

namespace cdc {

// How far a task has applied one source channel.
struct ChannelProgress {
  std::string channel;
  bool replicate = false;  // the replicate channel: it has no time ticks, so no lag
  int64_t offset = -1;     // checkpoint: next offset to read
  uint64_t ts = 0;         // checkpoint: hybrid timestamp applied up to (0: not known yet)
  std::string error;       // the channel reader's current error, if any
  int64_t lag_ms = -1;     // now minus the applied time; -1 when unknown (see FillLag)
};

// One collection's backfill (copy of the rows it held when it entered the task), for get.
struct BackfillProgress {
  std::string db;
  std::string name;
  std::string state;           // pending, copying, done, failed
  std::string reason;          // why it failed
  int64_t rows_copied = 0;
  int64_t rows_estimated = -1;  // count(*) when the copy started; -1 unknown
  double rows_per_s = 0;        // over the last few seconds while copying
};

struct PipelineProgress {
  std::vector<ChannelProgress> channels;  // empty until the pipeline reads the log
  std::string last_error;                 // the last failure retried or reported
  int64_t last_error_ms = 0;              // its unix time in ms
  // Source users (extra_info.enable_user_role) that do not exist on the target and could not
  // be created because no initial password was given for them (user_passwords).
  std::vector<std::string> missing_users;
  std::vector<BackfillProgress> backfill;
  std::string write_mode;  // "api" or "replicate" once the running task has detected it
};

// A verify run: options in, report out (JSON as `verify` answers and get shows it).
struct VerifyOptions {
  std::vector<std::pair<std::string, std::string>> collections;  // (db, name); empty: the task's scope
  std::string level = "rows";                                     // count, keys, rows
  bool repair = false;
};

// InvalidArgument naming the problem: a level other than count/keys/rows, repair at the count
// level, an empty or `*` collection name, a collection outside the task's scope (db empty
// means "default").
Status ValidateVerifyOptions(const TaskSpec& spec, const VerifyOptions& options);

// The source change a task could not apply: what paused it, shown by get until a resume.
struct FailedChange {
  std::string db;          // source database
  std::string collection;  // source collection (empty for database-level operations)
  std::string operation;   // e.g. "Insert", "CreateAlias"
  std::string position;    // where in the source log, e.g. "by-dev-rootcoord-dml_0@1234"
  std::string message;     // the target's answer
  int64_t time_ms = 0;     // unix time in ms
};

// The stored form of a FailedChange (a JSON object with the keys get shows), and back;
// nullopt for text that is not one.
std::string FailedChangeToJson(const FailedChange& change);
std::optional<FailedChange> FailedChangeFromJson(const std::string& text);

// Sets lag_ms for DML channels with a known timestamp. The source writes a time tick on
// every DML channel every few hundred ms, so its head time is "now" while it runs; the lag
// keeps growing while the task is stuck or paused.
void FillLag(std::vector<ChannelProgress>* channels, int64_t now_ms);

class Pipeline {
 public:
  virtual ~Pipeline() = default;
  // Starts background work and returns without waiting for it.
  virtual Status Start() = 0;
  // Waits (at most `timeout`) until a first start has stored where the task begins reading,
  // so that whatever a client writes after `create` answered is copied; returns at once when
  // the pipeline stopped or failed first.
  virtual void WaitStarted(std::chrono::milliseconds timeout) { (void)timeout; }
  // Stops background work; blocks until its threads have exited.
  virtual void Stop() = 0;
  // A short human-readable note on what the pipeline is doing, shown by get/list
  // while the task runs (empty when there is nothing to say).
  virtual std::string Note() const = 0;
  // Live per-channel progress and the last error (empty before reading starts).
  virtual PipelineProgress Progress() const { return {}; }
  // (Re)copies the rows of these source collections (db, name) while streaming.
  virtual Status RequestBackfill(const std::vector<std::pair<std::string, std::string>>& collections) {
    (void)collections;
    return Unimplemented("backfill is not supported by this pipeline");
  }
  // Re-copies these keys of a source collection through the backfill path (deleting on the
  // target those the source does not hold); blocks until the target acknowledged them, or
  // `cancel` becomes true, or the pipeline stops.
  virtual Status RepairKeys(const std::string& db, const std::string& name,
                            const std::vector<std::variant<int64_t, std::string>>& keys, const std::atomic<bool>& cancel) {
    (void)db, (void)name, (void)keys, (void)cancel;
    return Unimplemented("repair is not supported by this pipeline");
  }
  // Starts a verify run (one at a time per task); its report is VerifyReport().
  virtual Status StartVerify(const VerifyOptions& options) {
    (void)options;
    return Unimplemented("verify is not supported by this pipeline");
  }
  // The current or last verify run as JSON (null when none ran).
  virtual nlohmann::json VerifyReport() const { return nullptr; }
};

// Called from a pipeline thread when the pipeline gives up; the task is paused with `reason`.
// `change` names the source change that could not be applied, when one is to blame.
using PipelineFailure = std::function<void(const std::string& task_id, const std::string& reason,
                                           const std::optional<FailedChange>& change)>;

class PipelineFactory {
 public:
  virtual ~PipelineFactory() = default;
  virtual std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                           PipelineFailure on_failure) = 0;
  // What runs while the task is paused, or null: for a standby target, a ticker that keeps its
  // reads advancing while no change is waiting (see TaskPipeline). Never runs with Create's.
  virtual std::unique_ptr<Pipeline> CreateIdleTicker(const std::string& task_id, const TaskSpec& spec) {
    (void)task_id, (void)spec;
    return nullptr;
  }
};


}  // namespace cdc

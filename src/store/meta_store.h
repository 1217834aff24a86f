// MetaStore: where tasks and their checkpoints live. Backends: SQLite (default) and,
// with source capture, etcd. Implementations are thread-safe; every method is one
// durable transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace cdc {

enum class TaskState { kInitial = 0, kRunning = 1, kPaused = 2 };

const char* TaskStateName(TaskState state);

struct TaskRecord {
  std::string task_id;
  TaskState state = TaskState::kInitial;
  std::string reason;
  std::string spec_json;     // the create request with every credential removed
  std::string secrets_json;  // the credentials, in clear in memory only: stores seal them
  int64_t create_time_ms = 0;
  // The source change that paused the task (JSON written by the task layer; opaque to the
  // store), empty when none. Kept beside `reason` so a restart still shows it.
  std::string failed_change_json;
};

// One checkpoint: how far a task has applied one source channel.
struct ChannelPosition {
  int64_t collection_id = 0;  // -10: the replicate channel, as in the official store
  std::string channel;
  std::string data;  // serialized position (opaque to the store)
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // Inserts or replaces the task.
  virtual Status PutTask(const TaskRecord& task) = 0;
  virtual StatusOr<std::optional<TaskRecord>> GetTask(const std::string& task_id) = 0;
  // All tasks, oldest first.
  virtual StatusOr<std::vector<TaskRecord>> ListTasks() = 0;
  // Removes the task and all its positions in one transaction. NotFound if absent.
  virtual Status DeleteTask(const std::string& task_id) = 0;

  // Replaces the stored positions of the given channels of a task.
  virtual Status PutPositions(const std::string& task_id, const std::vector<ChannelPosition>& positions) = 0;
  virtual StatusOr<std::vector<ChannelPosition>> GetPositions(const std::string& task_id) = 0;
};

}  // namespace cdc

// TaskPipeline: the replication behind one running task. Its own thread connects to the
// source etcd, Kafka and the target (retrying with backoff), makes the target hold the
// in-scope collections, then runs a LogReader whose sink is a ChangeApplier, and every
// half second stores the applied positions as the task's checkpoints.
//   LogReader (Kafka -> decode -> packs -> route) -> ChangeApplier -> MilvusApplier -> target
//                                                  -> checkpoint (MetaStore)
// A failure that outlasts the retry budget pauses the task with a reason naming the
// component. Owned by the TaskManager through the Pipeline interface.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.h"
#include "store/meta_store.h"
#include "task/pipeline.h"
#include "util/metrics.h"

namespace cdc::pipeline {

struct PipelineContext {
  const Config* config = nullptr;
  MetaStore* store = nullptr;
  Metrics* metrics = nullptr;
};

class TaskPipelineFactory : public PipelineFactory {
 public:
  explicit TaskPipelineFactory(PipelineContext context) : context_(context) {}
  std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                   PipelineFailure on_failure) override;

 private:
  PipelineContext context_;
};

// Position records in the task store: checkpoints (collection id 0; the replicate
// channel as -10, as the official server) and write-ahead intents (-100).
constexpr int64_t kCheckpointId = 0;
constexpr int64_t kReplicateCheckpointId = -10;
constexpr int64_t kIntentId = -100;

// A position as stored: {"offset": N, "ts": T}.
std::string EncodePosition(int64_t offset, uint64_t ts);
bool DecodePosition(const std::string& data, int64_t* offset, uint64_t* ts);

}  // namespace cdc::pipeline

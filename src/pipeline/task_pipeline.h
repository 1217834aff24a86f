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
#include "source/channel_hub.h"
#include "store/meta_store.h"
#include "task/pipeline.h"
#include "util/metrics.h"

namespace cdc::pipeline {

struct PipelineContext {
  const Config* config = nullptr;
  MetaStore* store = nullptr;
  Metrics* metrics = nullptr;
  source::ChannelHub* hub = nullptr;  // shared channel readers; null: each task reads on its own
};

class TaskPipelineFactory : public PipelineFactory {
 public:
  explicit TaskPipelineFactory(PipelineContext context) : context_(context) {}
  std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                   PipelineFailure on_failure) override;
  std::unique_ptr<Pipeline> CreateIdleTicker(const std::string& task_id, const TaskSpec& spec) override;

 private:
  PipelineContext context_;
};

}  // namespace cdc::pipeline

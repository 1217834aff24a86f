// Pipeline: the replication work behind one running task (read the source, apply to
// the target, checkpoint). The TaskManager owns one per running task and is its only
// caller; Start and Stop are never called concurrently for the same pipeline.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "store/meta_store.h"
#include "task/task_spec.h"
#include "util/status.h"

namespace cdc {

class Pipeline {
 public:
  virtual ~Pipeline() = default;
  // Starts background work and returns without waiting for it.
  virtual Status Start() = 0;
  // Stops background work; blocks until its threads have exited.
  virtual void Stop() = 0;
  // A short human-readable note on what the pipeline is doing, shown by get/list
  // while the task runs (empty when there is nothing to say).
  virtual std::string Note() const = 0;
};

// Called from a pipeline thread when the pipeline gives up; the task is paused with `reason`.
using PipelineFailure = std::function<void(const std::string& task_id, const std::string& reason)>;

class PipelineFactory {
 public:
  virtual ~PipelineFactory() = default;
  virtual std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                           PipelineFailure on_failure) = 0;
};

// Until replication lands: a pipeline that does nothing and says so.
class IdlePipelineFactory : public PipelineFactory {
 public:
  std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                   PipelineFailure on_failure) override;
};

}  // namespace cdc

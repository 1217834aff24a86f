// VerifyingPipelineFactory: gives the pipelines of another factory the `verify` request without
// changing them. Each pipeline it creates forwards everything to the inner pipeline; StartVerify
// goes to the inner pipeline first and, while that answers Unimplemented, to a VerifyRunner of
// its own, which connects its own clients to the source's API (sourceConfig.milvus) and to the
// task's target at the start of a run, and takes the applied position from the inner pipeline's
// Progress(). So a pipeline that implements verify itself (say, sharing its clients) takes over
// without a change here. `repair: true` hands the differing keys to the inner pipeline's
// RepairKeys (the backfill path).
//
// Owned by main next to the factory it wraps; both outlive the TaskManager. Thread-safe as the
// inner factory is.
#pragma once

#include <memory>
#include <string>

#include "target/connect_params.h"
#include "task/pipeline.h"
#include "util/metrics.h"

namespace cdc::verify {

class VerifyingPipelineFactory : public PipelineFactory {
 public:
  // `source` dials the source's own API; an empty uri means it is not configured (verify then
  // says how to configure it).
  VerifyingPipelineFactory(PipelineFactory* inner, target::ConnectParams source, Metrics* metrics);

  std::unique_ptr<Pipeline> Create(const std::string& task_id, const TaskSpec& spec,
                                   PipelineFailure on_failure) override;
  std::unique_ptr<Pipeline> CreateIdleTicker(const std::string& task_id, const TaskSpec& spec) override {
    return inner_->CreateIdleTicker(task_id, spec);
  }

 private:
  PipelineFactory* const inner_;
  const target::ConnectParams source_;
  Metrics* const metrics_;
};

}  // namespace cdc::verify

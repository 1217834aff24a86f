#include "task/pipeline.h"

namespace cdc {

namespace {
class IdlePipeline : public Pipeline {
 public:
  Status Start() override { return Status::Ok(); }
  void Stop() override {}
  std::string Note() const override {
    return "replication is not implemented in this build yet: the task is stored and managed but copies no data";
  }
};
}  // namespace

std::unique_ptr<Pipeline> IdlePipelineFactory::Create(const std::string&, const TaskSpec&, PipelineFailure) {
  return std::make_unique<IdlePipeline>();
}

}  // namespace cdc

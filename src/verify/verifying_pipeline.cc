#include "pipeline/name_mapper.h"
#include "verify/verifying_pipeline.h"

#include <mutex>

#include "verify/verify_runner.h"

namespace cdc::verify {

namespace {

class VerifyingPipeline : public Pipeline {
 public:
  VerifyingPipeline(std::unique_ptr<Pipeline> inner, const std::string& task_id, const TaskSpec& spec,
                    const target::ConnectParams& source, Metrics* metrics)
      : inner_(std::move(inner)), source_configured_(!source.uri.empty()) {
    target::ConnectParams target = pipeline::TargetConnectParams(spec.milvus);
    target.call_timeout_s = 60;  // a page of rows can take a while on a busy server
    SidesConnector connect = [source, target]() -> StatusOr<Sides> {
      auto s = target::MilvusClient::Connect(source);
      if (!s.ok()) return s.status().WithContext("cannot connect to the source Milvus");
      auto t = target::MilvusClient::Connect(target);
      if (!t.ok()) return t.status().WithContext("cannot connect to the target Milvus");
      return Sides(std::make_unique<MilvusSide>(std::move(s).value(), "source"),
                   std::make_unique<MilvusSide>(std::move(t).value(), "target"));
    };
    Pipeline* p = inner_.get();
    AppliedTsFn applied = [p]() -> StatusOr<uint64_t> { return AppliedTsOf(p->Progress().channels); };
    // Repair goes through the inner pipeline's backfill path; the keys the source still holds
    // are copied, the others deleted, as the source says when the repair reads it.
    RepairFn repair = [p, cancel = &repair_cancel_](const CollectionRef& c, const std::vector<PkValue>& copy_keys,
                                                   const std::vector<PkValue>& delete_keys) {
      std::vector<std::variant<int64_t, std::string>> keys(copy_keys.begin(), copy_keys.end());
      keys.insert(keys.end(), delete_keys.begin(), delete_keys.end());
      return p->RepairKeys(c.db, c.name, keys, *cancel);
    };
    runner_ = std::make_unique<VerifyRunner>(task_id, std::move(connect), spec, std::move(applied), std::move(repair),
                                             metrics);
  }

  // The run stops (its thread reads the inner pipeline) before the inner pipeline goes.
  ~VerifyingPipeline() override {
    repair_cancel_ = true;
    runner_->Stop();
  }

  Status Start() override { return inner_->Start(); }
  void WaitStarted(std::chrono::milliseconds timeout) override { inner_->WaitStarted(timeout); }
  // The run first: it reads the inner pipeline's progress.
  void Stop() override {
    repair_cancel_ = true;
    runner_->Stop();
    inner_->Stop();
  }
  std::string Note() const override { return inner_->Note(); }
  PipelineProgress Progress() const override { return inner_->Progress(); }
  Status RequestBackfill(const std::vector<std::pair<std::string, std::string>>& collections) override {
    return inner_->RequestBackfill(collections);
  }
  Status RepairKeys(const std::string& db, const std::string& name,
                    const std::vector<std::variant<int64_t, std::string>>& keys,
                    const std::atomic<bool>& cancel) override {
    return inner_->RepairKeys(db, name, keys, cancel);
  }

  Status StartVerify(const VerifyOptions& options) override {
    Status inner = inner_->StartVerify(options);
    if (inner.code() != StatusCode::kUnimplemented) {
      std::lock_guard<std::mutex> lock(mu_);
      inner_verifies_ = true;
      return inner;
    }
    if (!source_configured_) {
      return FailedPrecondition(
          "verify reads the source through its own API: set sourceConfig.milvus.uri (and token) in the server's "
          "configuration");
    }
    return runner_->Start(options);
  }

  nlohmann::json VerifyReport() const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (inner_verifies_) return inner_->VerifyReport();
    }
    return runner_->Report();
  }

 private:
  const std::unique_ptr<Pipeline> inner_;
  const bool source_configured_;
  std::atomic<bool> repair_cancel_{false};
  std::unique_ptr<VerifyRunner> runner_;
  mutable std::mutex mu_;  // guards inner_verifies_
  bool inner_verifies_ = false;
};

}  // namespace

VerifyingPipelineFactory::VerifyingPipelineFactory(PipelineFactory* inner, target::ConnectParams source,
                                                   Metrics* metrics)
    : inner_(inner), source_(std::move(source)), metrics_(metrics) {}

std::unique_ptr<Pipeline> VerifyingPipelineFactory::Create(const std::string& task_id, const TaskSpec& spec,
                                                           PipelineFailure on_failure) {
  auto inner = inner_->Create(task_id, spec, std::move(on_failure));
  if (!inner) return nullptr;
  return std::make_unique<VerifyingPipeline>(std::move(inner), task_id, spec, source_, metrics_);
}

}  // namespace cdc::verify

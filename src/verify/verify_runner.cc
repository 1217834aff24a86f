#include "verify/verify_runner.h"

#include <algorithm>

#include "util/log.h"
#include "util/clock.h"

namespace cdc::verify {

using json = nlohmann::json;

namespace {

const char kRowsMetric[] = "milvus_cdc_verify_rows_compared_total";
const char kDiffMetric[] = "milvus_cdc_verify_differences";

}  // namespace

uint64_t AppliedTsOf(const std::vector<ChannelProgress>& channels) {
  uint64_t min_ts = 0;
  bool any = false;
  for (const auto& c : channels) {
    if (c.replicate) continue;
    if (c.ts == 0) return 0;
    min_ts = any ? std::min(min_ts, c.ts) : c.ts;
    any = true;
  }
  return any ? min_ts : 0;
}

VerifyRunner::VerifyRunner(std::string task_id, target::MilvusClient* source, target::MilvusClient* target,
                           TaskSpec spec, AppliedTsFn applied_ts, RepairFn repair, Metrics* metrics,
                           RunnerTuning tuning)
    : VerifyRunner(std::move(task_id), source ? std::make_unique<MilvusSide>(source, "source") : nullptr,
                   target ? std::make_unique<MilvusSide>(target, "target") : nullptr, std::move(spec),
                   std::move(applied_ts), std::move(repair), metrics, tuning) {}

VerifyRunner::VerifyRunner(std::string task_id, std::unique_ptr<VerifySide> source, std::unique_ptr<VerifySide> target,
                           TaskSpec spec, AppliedTsFn applied_ts, RepairFn repair, Metrics* metrics,
                           RunnerTuning tuning)
    : VerifyRunner(std::move(task_id), SidesConnector(), std::move(spec), std::move(applied_ts), std::move(repair),
                   metrics, tuning) {
  source_ = std::move(source);
  target_ = std::move(target);
}

VerifyRunner::VerifyRunner(std::string task_id, SidesConnector connect, TaskSpec spec, AppliedTsFn applied_ts,
                           RepairFn repair, Metrics* metrics, RunnerTuning tuning)
    : task_id_(std::move(task_id)),
      connect_(std::move(connect)),
      spec_(std::move(spec)),
      applied_ts_(std::move(applied_ts)),
      repair_(std::move(repair)),
      metrics_(metrics),
      tuning_(tuning) {
  if (metrics_) {
    metrics_->Describe(kRowsMetric, Metrics::Type::kCounter, "Rows compared by verify runs (both sides, each key once)");
    metrics_->Describe(kDiffMetric, Metrics::Type::kGauge,
                       "Differences the last verify run found, by kind (missing, extra, different, in_flux, "
                       "duplicates on the target)");
  }
}

VerifyRunner::~VerifyRunner() { Stop(); }

Status VerifyRunner::Start(const VerifyOptions& options) {
  RETURN_IF_ERROR(ValidateVerifyOptions(spec_, options));
  if (!connect_) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!source_) {
      return FailedPrecondition(
          "verify reads the source through its own API: set sourceConfig.milvus.uri (and token) in the server's "
          "configuration");
    }
    if (!target_) return FailedPrecondition("the task is not connected to its target yet: try again in a moment");
  }
  if (options.repair && !repair_) {
    return FailedPrecondition(
        "repair is not available on this server yet (it re-copies keys through the backfill path); run verify "
        "without repair to see the differences");
  }
  std::thread finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) {
      return FailedPrecondition("a verify run is already going for task " + task_id_ + " (level " +
                                state_.value("level", "") + ", started " +
                                std::to_string(state_.value("started", int64_t{0})) +
                                "): wait for it to finish, `get` shows its progress");
    }
    finished = std::move(thread_);
    running_ = true;
    stop_ = false;
    done_.clear();
    current_.clear();
    rows_compared_ = 0;
    state_ = {{"state", "running"}, {"level", options.level}, {"repair", options.repair}, {"started", NowMs()}};
  }
  if (finished.joinable()) finished.join();  // the last run is over: its thread only returns
  try {
    std::thread t([this, options] { Run(options); });
    std::lock_guard<std::mutex> lock(mu_);
    thread_ = std::move(t);
  } catch (const std::system_error& e) {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    state_["state"] = "failed";
    state_["error"] = std::string("cannot start the verify thread: ") + e.what();
    return Internal(state_["error"].get<std::string>());
  }
  GetLogger("verify")->info("task {}: verify started (level {}, {} collections named{})", task_id_, options.level,
                            options.collections.size(), options.repair ? ", repair" : "");
  return Status::Ok();
}

void VerifyRunner::Stop() {
  stop_ = true;
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    t = std::move(thread_);
    if (connect_ && running_) {  // our own clients: abort their calls in flight
      if (source_) source_->Cancel();
      if (target_) target_->Cancel();
    }
  }
  if (t.joinable()) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (connect_) {  // cancelled clients cannot be used again: the next run connects anew
    source_.reset();
    target_.reset();
  }
}

void VerifyRunner::OnRows(const CollectionRef& c, int64_t rows) {
  (void)c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows_compared_ += rows;
  }
  if (metrics_) metrics_->Add(kRowsMetric, {{"task_id", task_id_}}, static_cast<double>(rows));
}

void VerifyRunner::Run(VerifyOptions options) {
  auto log = GetLogger("verify");
  VerifierOptions vo;
  vo.level = options.level;
  vo.repair = options.repair;
  vo.repair_fn = repair_;
  vo.applied_ts = applied_ts_;
  vo.no_applied_reason = "the task's applied position is not known: the re-checks did not wait for it";
  vo.applied_wait = tuning_.applied_wait;
  vo.applied_stall = tuning_.applied_stall;
  vo.generations = tuning_.generations;
  vo.key_page_rows = tuning_.key_page_rows;
  vo.row_page_bytes = tuning_.row_page_bytes;
  vo.max_recheck_keys = tuning_.max_recheck_keys;
  vo.cancelled = [this] { return stop_.load(); };
  vo.on_rows = [this](const CollectionRef& c, int64_t rows) { OnRows(c, rows); };

  std::string error;
  VerifySide* source = source_.get();
  VerifySide* target = target_.get();
  if ((!source || !target) && connect_) {
    auto sides = connect_();
    if (sides.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      source_ = std::move(sides->first);
      target_ = std::move(sides->second);
      source = source_.get();
      target = target_.get();
    } else {
      error = sides.status().message();
    }
  }
  StatusOr<std::vector<CollectionRef>> refs = Internal("not connected");
  Verifier verifier(source, target, vo);
  if (error.empty()) {
    refs = verifier.Resolve(spec_, options.collections);
    if (!refs.ok()) error = "cannot list the task's collections: " + refs.status().message();
  }
  if (error.empty()) {
    for (const auto& ref : *refs) {
      if (stop_) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        current_ = ref.db + "." + ref.name;
      }
      CollectionReport report = verifier.Verify(ref);
      log->info("task {}: verify {}.{}: {} (missing {}, extra {}, different {}, in flux {}){}", task_id_, ref.db,
                ref.name, report.Equal() ? "equal" : "NOT equal", report.diff.missing, report.diff.extra,
                report.diff.different, report.diff.in_flux, report.error.empty() ? "" : ": " + report.error);
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(report));
    }
  }
  if (stop_ && error.empty()) error = "the run was stopped (the task was paused, deleted or restarted)";

  VerifyReport summary;
  std::lock_guard<std::mutex> lock(mu_);
  summary.collections = done_;
  int64_t kinds[5] = {0, 0, 0, 0, 0};
  for (const auto& c : done_) {
    const Differences& d = c.repair ? c.repair->after : c.diff;
    kinds[0] += d.missing;
    kinds[1] += d.extra;
    kinds[2] += d.different;
    kinds[3] += d.in_flux;
    kinds[4] += c.target_duplicates;
  }
  if (metrics_) {
    const char* names[5] = {"missing", "extra", "different", "in_flux", "duplicates"};
    for (int k = 0; k < 5; ++k) {
      metrics_->Set(kDiffMetric, {{"task_id", task_id_}, {"kind", names[k]}}, static_cast<double>(kinds[k]));
    }
  }
  running_ = false;
  current_.clear();
  state_["finished"] = NowMs();
  state_["state"] = error.empty() ? "done" : "failed";
  if (!error.empty()) state_["error"] = error;
  log->info("task {}: verify {}: {}", task_id_, state_["state"].get<std::string>(),
            !error.empty() ? error : summary.Equal() ? "equal" : "NOT equal");
}

json VerifyRunner::Report() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.is_null()) return nullptr;
  VerifyReport summary;
  summary.level = state_.value("level", "");
  summary.repair = state_.value("repair", false);
  summary.collections = done_;
  json out = ToJson(summary);
  for (auto it = state_.begin(); it != state_.end(); ++it) out[it.key()] = it.value();
  out["rows_compared"] = rows_compared_;
  const std::string state = state_.value("state", "");
  const int64_t started = state_.value("started", int64_t{0});
  const int64_t end = state == "running" ? NowMs() : state_.value("finished", started);
  out["seconds"] = static_cast<double>(end - started) / 1000.0;
  if (state == "running") {
    out.erase("equal");  // not known yet
    if (!current_.empty()) out["current"] = current_;
  } else if (state == "failed") {
    out["equal"] = false;
  }
  return out;
}

}  // namespace cdc::verify

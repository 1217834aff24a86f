#include "pipeline/task_pipeline.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "pipeline/backfill_engine.h"
#include "pipeline/change_applier.h"
#include "pipeline/name_mapper.h"
#include "pipeline/standby_writer.h"
#include "source/catalog.h"
#include "source/etcd_client.h"
#include "source/mq_factory.h"
#include "source/load_state.h"
#include "source/log_reader.h"
#include "source/meta_follower.h"
#include "store/checkpoint.h"
#include "target/milvus_applier.h"
#include "target/milvus_client.h"
#include "target/source_reader.h"
#include "util/log.h"
#include "util/clock.h"

namespace cdc::pipeline {

namespace {

using Clock = std::chrono::steady_clock;

// The standby targets this process writes to, each by one task: a standby channel must get its
// data and ticks from one writer (another's ticks would close its windows early, and data behind
// a tick is dropped by the standby). A claim lasts while the task's pipeline or idle ticker runs.
class StandbyClaims {
 public:
  // Empty when `task_id` now holds `endpoint`; else the task that does.
  static std::string Claim(const std::string& endpoint, const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu());
    auto [it, added] = holders().emplace(endpoint, task_id);
    return added || it->second == task_id ? "" : it->second;
  }
  static void Release(const std::string& endpoint, const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu());
    auto it = holders().find(endpoint);
    if (it != holders().end() && it->second == task_id) holders().erase(it);
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::map<std::string, std::string>& holders() {
    static std::map<std::string, std::string> h;
    return h;
  }
};

class TaskPipeline : public Pipeline {
 public:
  // `idle_ticker`: the paused task's ticker (RunIdleTicker) instead of the replication.
  TaskPipeline(PipelineContext ctx, std::string task_id, const TaskSpec& spec, PipelineFailure on_failure,
               bool idle_ticker = false)
      : ctx_(ctx), task_id_(std::move(task_id)), scope_(spec), on_failure_(std::move(on_failure)),
        idle_ticker_(idle_ticker) {
    const RetryConfig& r = ctx_.config->retry;
    retry_.initial_backoff = std::chrono::milliseconds(std::max(1, r.init_backoff_s) * 1000);
    retry_.max_backoff = std::chrono::milliseconds(std::max(1, r.max_backoff_s) * 1000);
    retry_.max_attempts = r.retry_times > 0 ? r.retry_times : 17280;
    // How long a dependency may stay down before the task pauses.
    outage_budget_ = std::chrono::seconds(static_cast<int64_t>(retry_.max_attempts) * std::max(1, r.max_backoff_s));
  }

  ~TaskPipeline() override { Stop(); }

  Status Start() override {
    SetNote("starting: connecting to the source etcd");
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  // Asks the thread to finish the item it is applying and store its checkpoints; after
  // kStopGrace, calls still in flight on the target are cancelled (a replay covers them).
  void Stop() override {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
    if (!cv_.wait_for(lock, kStopGrace, [this] { return finished_; })) {
      if (client_) client_->Cancel();
      if (source_client_) source_client_->Cancel();
    }
    lock.unlock();
    if (thread_.joinable()) thread_.join();
  }

  void WaitStarted(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return pinned_ || finished_ || stop_; });
  }

  std::string Note() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return note_;
  }

  PipelineProgress Progress() const override {
    std::lock_guard<std::mutex> lock(mu_);
    PipelineProgress p;
    if (reader_) p.channels = ProgressOf(reader_->Channels());
    p.missing_users = sink_ ? sink_->missing_users() : missing_users_;
    if (backfill_) p.backfill = backfill_->Progress();
    p.last_error = last_error_;
    p.last_error_ms = last_error_ms_;
    p.write_mode = write_mode_;
    return p;
  }

  Status RequestBackfill(const std::vector<std::pair<std::string, std::string>>& collections) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_mode_ == "replicate") return FailedPrecondition(kNoBackfillOnStandby);
    if (!backfill_) return Unavailable("the task is starting; request the backfill again in a moment");
    return backfill_->Request(collections);
  }

  // Waits for the engine's answer outside the lock, watching that the engine is still the one
  // asked (it goes with the pipeline thread, which then never answers).
  Status RepairKeys(const std::string& db, const std::string& name,
                    const std::vector<std::variant<int64_t, std::string>>& keys,
                    const std::atomic<bool>& cancel) override {
    struct Answer {
      std::mutex mu;
      std::condition_variable cv;
      std::optional<Status> status;
    };
    auto answer = std::make_shared<Answer>();
    BackfillEngine* engine = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!backfill_) return Unavailable("the task is starting; ask again in a moment");
      engine = backfill_;
      ASSIGN_OR_RETURN(int64_t id, engine->IdOf(db, name));
      engine->RepairKeys(id, std::vector<target::PkValue>(keys.begin(), keys.end()), [answer](const Status& st) {
        std::lock_guard<std::mutex> lock(answer->mu);
        answer->status = st;
        answer->cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(answer->mu);
    while (!answer->status) {
      answer->cv.wait_for(lock, std::chrono::milliseconds(200));
      if (answer->status) break;
      if (cancel) return Unavailable("the repair was stopped");
      std::lock_guard<std::mutex> pipeline(mu_);
      if (backfill_ != engine) return Unavailable("the task stopped during the repair");
    }
    return *answer->status;
  }

 private:
  static constexpr std::chrono::milliseconds kStopGrace{600};
  static constexpr const char* kNoBackfillOnStandby =
      "backfill and repair write with plain Upsert calls, which a standby target (write_mode replicate) refuses";
  static constexpr int64_t kChunksAhead = 2;

  void SetError(const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = message;
    last_error_ms_ = NowMs();
  }

  // The channels still read, as get shows them.
  std::vector<ChannelProgress> ProgressOf(const std::vector<source::ChannelStatus>& channels) const {
    std::vector<ChannelProgress> out;
    for (const auto& c : channels) {
      if (!c.active) continue;  // retired: its collections were dropped
      ChannelProgress p;
      p.channel = c.channel;
      p.replicate = c.channel == ctx_.config->source.replicate_chan;
      p.offset = c.applied.offset;
      p.ts = c.applied.timestamp;
      p.error = c.error;
      out.push_back(std::move(p));
    }
    return out;
  }

  // While set, get shows the sink's missing users; when cleared, what it last reported and
  // the change it failed on are kept for the failure report.
  void SetSink(ChangeApplier* sink) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sink && sink_) {
      missing_users_ = sink_->missing_users();
      failed_change_ = sink_->failed_change();
    }
    sink_ = sink;
  }

  void SetBackfill(BackfillEngine* backfill) {
    std::lock_guard<std::mutex> lock(mu_);
    backfill_ = backfill;
  }

  void SetReader(source::LogReader* reader) {
    std::lock_guard<std::mutex> lock(mu_);
    reader_ = reader;
  }

  void SetNote(std::string note) {
    std::lock_guard<std::mutex> lock(mu_);
    note_ = std::move(note);
  }

  // Sleeps up to `d`; false when the pipeline is stopping.
  bool Wait(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [this] { return stop_.load(); });
    return !stop_;
  }

  // Retries `attempt` with backoff while it fails with a retriable error, up to the
  // outage budget. Returns the last error, or Ok.
  Status Retry(const std::string& what, const std::function<Status()>& attempt) {
    auto backoff = retry_.initial_backoff;
    const auto deadline = Clock::now() + outage_budget_;
    for (int n = 1;; ++n) {
      Status st = attempt();
      if (st.ok() || stop_) return st;
      const bool retriable = st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded;
      if (!retriable || Clock::now() + backoff > deadline) return st;
      if (n == 1 || n % 10 == 0) {
        GetLogger("pipeline")->warn("task {}: {} failed (attempt {}), retrying in {} ms: {}", task_id_, what, n,
                                    backoff.count(), st.message());
      }
      SetNote("waiting for " + what + ": " + st.message());
      SetError(st.message());
      if (!Wait(backoff)) return Unavailable("stopped");
      backoff = std::min(backoff * 2, retry_.max_backoff);
    }
  }

  void Fail(const std::string& reason) {
    if (stop_) return;
    GetLogger("pipeline")->error("task {}: {}", task_id_, reason);
    SetNote(reason);
    std::optional<FailedChange> change;
    {
      std::lock_guard<std::mutex> lock(mu_);
      change = failed_change_;
    }
    on_failure_(task_id_, reason, change);
  }

  void Run() {
    Status st = RunInner();
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      client_ = nullptr;
      source_client_ = nullptr;
    }
    cv_.notify_all();
    if (!st.ok() && !stop_ && idle_ticker_) {
      GetLogger("pipeline")->warn("task {}: the paused task's standby ticker stopped: {}", task_id_, st.message());
    } else if (!st.ok() && !stop_) {
      SetError(st.message());
      Fail(st.message());
    }
  }

  Status RunInner() {
    const Config& cfg = *ctx_.config;
    // 1. Source metadata.
    std::unique_ptr<source::EtcdClient> etcd;
    Status st = Retry("the source etcd", [&]() -> Status {
      auto c = source::EtcdClient::Connect(source::EtcdOptions::FromConfig(cfg.source.etcd));
      if (!c.ok()) return c.status();
      etcd = std::move(c).value();
      return Status::Ok();
    });
    if (!st.ok()) return st.WithContext("fail to connect the source etcd");
    source::Catalog catalog(cfg.source.etcd.root_path + "/" + cfg.source.etcd.meta_sub_path);
    source::MetaFollower follower(etcd.get(), &catalog);
    st = Retry("the source etcd", [&] { return follower.Start(); });
    if (!st.ok()) return st.WithContext("fail to read the source metadata");

    // 2. Target.
    SetNote("starting: connecting to the target Milvus");
    const auto& m = scope_.spec().milvus;
    const target::ConnectParams params = TargetConnectParams(m);
    std::unique_ptr<target::MilvusClient> client;
    std::unique_ptr<target::MilvusClient> source_client;
    // Stop may cancel the clients' calls while they are published; unpublish them on every
    // way out, before they are destroyed (declared after them, so it runs first).
    struct Unpublish {
      TaskPipeline* p;
      ~Unpublish() {
        std::lock_guard<std::mutex> lock(p->mu_);
        p->client_ = nullptr;
        p->source_client_ = nullptr;
      }
    } unpublish{this};
    st = Retry("the target Milvus", [&]() -> Status {
      auto c = target::MilvusClient::Connect(params);
      if (!c.ok()) return c.status();
      client = std::move(c).value();
      return Status::Ok();
    });
    if (!st.ok()) return st.WithContext("fail to connect target milvus server");
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Status::Ok();
      client_ = client.get();  // Stop may cancel its calls from now on
    }
    // 2b. The source's own API, when configured (collection properties; see SourceReader).
    if (!cfg.source.milvus.uri.empty()) {
      target::ConnectParams sp;
      sp.uri = cfg.source.milvus.uri;
      sp.token = cfg.source.milvus.token;
      sp.server_pem_path = cfg.source.milvus.ca_pem_path;
      sp.server_name = cfg.source.milvus.server_name;
      sp.connect_timeout_s = cfg.source.milvus.connect_timeout_s;
      sp.call_timeout_s = 10;
      st = Retry("the source Milvus", [&]() -> Status {
        auto c = target::MilvusClient::Connect(sp);
        if (!c.ok()) return c.status();
        source_client = std::move(c).value();
        return Status::Ok();
      });
      if (!st.ok()) return st.WithContext("fail to connect the source milvus server");
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Status::Ok();
      source_client_ = source_client.get();
    }
    target::MilvusApplier applier(client.get(), retry_, &stop_);
    applier.set_on_retry([this](const Status& e) { SetError(e.message()); });
    auto mode = ResolveWriteMode(applier);
    if (!mode.ok()) return mode.status();
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_mode_ = target::WriteModeName(*mode);
    }
    struct Claim {
      std::string endpoint, task;
      ~Claim() {
        if (!endpoint.empty()) StandbyClaims::Release(endpoint, task);
      }
    } claim;
    if (*mode == target::WriteMode::kReplicate) {
      const std::string holder = StandbyClaims::Claim(client->endpoint(), task_id_);
      if (!holder.empty() && idle_ticker_) return Status::Ok();  // the other task ticks it
      if (!holder.empty()) {
        return FailedPrecondition("task " + holder + " already replicates into the standby " + client->endpoint() +
                                  "; a standby takes one replicate-mode task (their time ticks would interleave)");
      }
      claim.endpoint = client->endpoint();
      claim.task = task_id_;
    }
    if (idle_ticker_) {
      if (*mode != target::WriteMode::kReplicate) return Status::Ok();  // a writable target ticks itself
      Status ticked = RunIdleTicker(catalog, follower, applier);
      follower.Stop();
      return ticked;
    }
    if (*mode == target::WriteMode::kReplicate && scope_.spec().backfill) {
      return FailedPrecondition(std::string("fail to start the task: ") + kNoBackfillOnStandby +
                                "; create the task without backfill");
    }

    // 3. Where to start: stored checkpoints, and the intents that bound a replay.
    std::map<std::string, decode::Position> resume;
    std::map<std::string, uint64_t> replay;
    std::map<std::string, int64_t> pins;
    auto stored = ctx_.store->GetPositions(task_id_);
    if (!stored.ok()) return stored.status().WithContext("fail to read the task positions");
    for (const auto& p : *stored) {
      int64_t offset = 0;
      uint64_t ts = 0;
      if (!DecodeCheckpoint(p.data, &offset, &ts)) continue;
      if (p.collection_id == kIntentId) {
        replay[p.channel] = ts;
      } else if (p.collection_id == kPinId) {
        pins[p.channel] = offset;
      } else {
        resume[p.channel] = decode::Position{p.channel, offset, ts};
      }
    }
    ChangeApplier sink(task_id_, &scope_, &catalog, &applier, ctx_.metrics,
                       [this](const std::string& channel, const decode::Position& end) {
                         return ctx_.store->PutPositions(
                             task_id_, {ChannelPosition{kIntentId, channel, EncodeCheckpoint(end.offset, end.timestamp)}});
                       });
    sink.SetReplayBounds(replay);
    std::optional<StandbyWriter> standby;
    if (*mode == target::WriteMode::kReplicate) {
      standby.emplace(&applier, [this](const std::string& channel, const decode::Position& end) {
        const int64_t id = channel == ctx_.config->source.replicate_chan ? kReplicateCheckpointId : kCheckpointId;
        return StoreCheckpoints({{id, channel, end}});
      });
      sink.SetStandby(&*standby);
    }
    std::optional<target::SourceReader> source_reader;
    if (source_client) {
      source_reader.emplace(source_client.get());
      sink.SetPropertiesReader([&source_reader](const std::string& db, const std::string& name) {
        return source_reader->CollectionProperties(db, name);
      });
    }
    std::map<std::string, uint64_t> resumed_at;
    for (const auto& [channel, pos] : resume) resumed_at[channel] = pos.timestamp;
    sink.SetResumedAt(resumed_at);

    // A first start copies from "now": pin the current end of every channel the task
    // reads before preparing the target, so nothing written meanwhile is missed. Collections
    // whose entry asks for use_start_position replay their retained log from their creation;
    // their channels start there, and the pins drop what the others wrote before the task.
    const bool first_start = resume.empty() && pins.empty();
    if (first_start) {
      st = PinLatest(catalog, &resume, &pins);
      if (!st.ok()) return st.WithContext("fail to store the task's start positions");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      pinned_ = true;
    }
    cv_.notify_all();

    // 4. The target holds every in-scope collection before any change is applied.
    SetNote("starting: creating the task's collections on the target");
    auto loaded = source::ReadLoadedCollections(etcd.get(), cfg.source.etcd.root_path + "/" + cfg.source.etcd.meta_sub_path);
    if (!loaded.ok()) GetLogger("pipeline")->warn("task {}: {}", task_id_, loaded.status().message());
    // Backfill: chunks meet the stream at the gate; the engine reads the source (see
    // backfill_engine.h). A collection renamed into the scope is copied too when the task
    // backfills.
    // Chunks read ahead of the writes: enough to keep the target busy, bounded so a copy's
    // memory does not depend on the collection's size.
    BackfillGate gate(static_cast<size_t>(kChunksAhead * cfg.backfill.max_chunk_bytes));
    BackfillEngine::Context bc;
    bc.task_id = task_id_;
    bc.store = ctx_.store;
    bc.metrics = ctx_.metrics;
    bc.scope = &scope_;
    bc.catalog = &catalog;
    bc.source = source_reader ? &*source_reader : nullptr;
    bc.gate = &gate;
    bc.max_chunk_bytes = cfg.backfill.max_chunk_bytes;
    BackfillEngine backfill(bc);
    sink.SetBackfill(&gate, [this, &backfill](int64_t id) {
      if (scope_.spec().backfill) backfill.RequestId(id);
    });
    SetSink(&sink);
    st = sink.Bootstrap(loaded.ok() ? *loaded : std::map<int64_t, int32_t>{});
    if (!st.ok()) {
      SetSink(nullptr);
      return st.WithContext("fail to prepare the target");
    }

    // 5. Follow the log.
    source::LogReaderOptions ro = ReaderOptions(resume, pins);
    ro.replicate_channel = cfg.source.replicate_chan;
    ro.early = cfg.source.early_apply && *mode == target::WriteMode::kApi;  // a standby goes by ticks
    ro.hub = ctx_.hub;
    source::LogReader reader(ro, &follower, &catalog, &sink);
    st = Retry(ro.mq.name(), [&] { return reader.Start(); });
    if (!st.ok()) return st.WithContext("fail to read the message, err");
    GetLogger("pipeline")->info("task {}: replicating ({} stored positions)", task_id_, resume.size());
    SetReader(&reader);
    st = backfill.Start(first_start && scope_.spec().backfill);
    if (!st.ok()) return st.WithContext("fail to read the task's backfill state");
    SetBackfill(&backfill);

    Status result = Monitor(reader, follower, sink);
    SetBackfill(nullptr);
    backfill.Stop();
    SetReader(nullptr);
    SetSink(nullptr);
    reader.Stop();
    Checkpoint(reader);
    follower.Stop();
    return result;
  }

  // A collection created after the task (by the source's clock) is copied from its creation:
  // the pins are taken when the pipeline first starts, a moment after the create call returned,
  // and what a client wrote into a new collection in between must not count as older than the task.
  // How the task reads the source: its scope, from these checkpoints (pins: see PinLatest).
  source::LogReaderOptions ReaderOptions(const std::map<std::string, decode::Position>& resume,
                                         const std::map<std::string, int64_t>& pins) const {
    const Config& cfg = *ctx_.config;
    source::LogReaderOptions ro;
    ro.mq = source::MqConfigFrom(cfg.source);
    ro.collection_in_scope = [this](const std::string& db, const std::string& c) {
      return scope_.CollectionInScope(db, c);
    };
    ro.database_in_scope = [this](const std::string& db) { return scope_.DatabaseInScope(db); };
    ro.rbac = scope_.spec().enable_user_role;
    ro.replay_from_creation = [this](const std::string& db, const std::string& c) {
      return scope_.ReplayFromCreation(db, c);
    };
    ro.pins = pins;
    ro.resume = resume;
    ro.queue_packs = static_cast<size_t>(std::max(2, cfg.source.read_chan_len * 16));
    return ro;
  }

  // A paused task on a standby target: reads on from the stored checkpoints and forwards the
  // source's time ticks while no change is waiting (StandbyTickSink), so the standby's Strong
  // reads answer. Sends no data and stores nothing; the resume takes over from the checkpoints.
  Status RunIdleTicker(source::Catalog& catalog, source::MetaFollower& follower, target::MilvusApplier& applier) {
    auto stored = ctx_.store->GetPositions(task_id_);
    if (!stored.ok()) return stored.status();
    std::map<std::string, decode::Position> resume;
    std::map<std::string, int64_t> pins;
    std::set<std::string> checkpointed;
    for (const auto& p : *stored) {
      int64_t offset = 0;
      uint64_t ts = 0;
      if (!DecodeCheckpoint(p.data, &offset, &ts)) continue;
      if (p.collection_id == kPinId) pins[p.channel] = offset;
      if (p.collection_id != kCheckpointId) continue;
      resume[p.channel] = decode::Position{p.channel, offset, ts};
      checkpointed.insert(p.channel);
    }
    if (resume.empty()) return Status::Ok();  // never replicated: nothing to keep moving
    StandbyWriter writer(&applier, [](const std::string&, const decode::Position&) {
      return Internal("the idle ticker stores no checkpoint");
    });
    // A collection not yet on the standby will be created there on resume, on channels the
    // target picks, possibly ones ticked here past its waiting rows: then tick nothing.
    for (const auto& meta : catalog.Collections()) {
      if (!scope_.CollectionInScope(meta->db_name, meta->name)) continue;
      auto [db, name] = scope_.Map(meta->db_name, meta->name);
      Status st = writer.Map(*meta, db, name);
      if (!st.ok()) {
        GetLogger("pipeline")->info("task {}: paused; no ticks forwarded to the standby until the resume: {}.{} is "
                                    "not there yet ({})", task_id_, db, name, st.message());
        return Status::Ok();
      }
    }
    StandbyTickSink sink(&writer, checkpointed);
    source::LogReader reader(ReaderOptions(resume, pins), &follower, &catalog, &sink);
    Status st = Retry(source::MqConfigFrom(ctx_.config->source).name(), [&] { return reader.Start(); });
    if (!st.ok()) return st;
    GetLogger("pipeline")->info("task {}: paused; forwarding the source's time ticks to the standby", task_id_);
    Status result;
    while (Wait(std::chrono::milliseconds(500))) {
      if (Status f = reader.fatal(); !f.ok()) {
        result = f;
        break;
      }
    }
    reader.Stop();
    return result;
  }

  // Stores the current end offset of the replicate channel and of every pchannel an
  // in-scope collection uses as the task's pins, and as its first checkpoints where no
  // collection replays from its creation.
  Status PinLatest(const source::Catalog& catalog, std::map<std::string, decode::Position>* resume,
                   std::map<std::string, int64_t>* pins) {
    const Config& cfg = *ctx_.config;
    std::set<std::string> topics;
    std::set<std::string> replayed;  // channels read from a collection's creation instead
    for (const auto& c : catalog.Collections()) {
      if (!scope_.CollectionInScope(c->db_name, c->name)) continue;
      topics.insert(c->pchannels.begin(), c->pchannels.end());
      if (scope_.ReplayFromCreation(c->db_name, c->name)) replayed.insert(c->pchannels.begin(), c->pchannels.end());
    }
    if (!cfg.source.replicate_chan.empty()) {
      topics.insert(cfg.source.replicate_chan);
      if (!replayed.empty()) replayed.insert(cfg.source.replicate_chan);
    }
    const source::MqConfig mq = source::MqConfigFrom(cfg.source);
    std::vector<ChannelPosition> pinned;
    for (const auto& topic : topics) {
      // One attempt: a topic the queue cannot describe yet (never written) starts at its end
      // when the reader opens it, which is the same place.
      auto reader = source::OpenMqReader(mq, topic, source::StartAt::Latest());
      auto hw = reader.ok() ? (*reader)->HighWatermark(5000) : StatusOr<int64_t>(reader.status());
      if (!hw.ok()) {
        GetLogger("pipeline")->warn("task {}: cannot pin the end of {}: {}", task_id_, topic, hw.status().message());
        continue;
      }
      const int64_t end = *hw;
      (*pins)[topic] = end;
      pinned.push_back(ChannelPosition{kPinId, topic, EncodeCheckpoint(end, 0)});
      if (replayed.count(topic)) continue;
      (*resume)[topic] = decode::Position{topic, end, 0};
      const int64_t id = topic == cfg.source.replicate_chan ? kReplicateCheckpointId : kCheckpointId;
      pinned.push_back(ChannelPosition{id, topic, EncodeCheckpoint(end, 0)});
      std::lock_guard<std::mutex> lock(checkpoint_mu_);
      saved_[topic] = pinned.back().data;
      stored_offset_[topic] = end;
    }
    return ctx_.store->PutPositions(task_id_, pinned);
  }

  // Watches health, stores checkpoints and lag until stopped or failed.
  Status Monitor(source::LogReader& reader, source::MetaFollower& follower, ChangeApplier& sink) {
    // Since when each dependency has been failing (time_point::max(): healthy).
    Clock::time_point mq_down_since = Clock::time_point::max();
    Clock::time_point etcd_down_since = Clock::time_point::max();
    while (Wait(std::chrono::milliseconds(500))) {
      if (Status f = reader.fatal(); !f.ok()) return f.WithContext("fail to handle the replicate event, err");
      Status h = reader.health();
      if (!h.ok() && h.code() != StatusCode::kUnavailable) return h.WithContext("fail to handle the replicate event, err");
      if (!h.ok()) {
        if (mq_down_since == Clock::time_point::max()) mq_down_since = Clock::now();
        if (Clock::now() - mq_down_since > outage_budget_) return h.WithContext("fail to read the message, err");
      } else {
        mq_down_since = Clock::time_point::max();
      }
      Status eh = follower.health();
      if (!eh.ok()) {
        if (etcd_down_since == Clock::time_point::max()) etcd_down_since = Clock::now();
        if (Clock::now() - etcd_down_since > outage_budget_) return eh.WithContext("source etcd");
      } else {
        etcd_down_since = Clock::time_point::max();
      }
      Checkpoint(reader);
      auto channels = reader.Channels();
      auto progress = ProgressOf(channels);
      FillLag(&progress, NowMs());
      int64_t max_lag = 0;
      for (const auto& p : progress) max_lag = std::max(max_lag, p.lag_ms);
      std::string note = "replicating " + std::to_string(channels.size()) + " channels; rows inserted " +
                         std::to_string(sink.rows_inserted()) + ", deleted " + std::to_string(sink.rows_deleted()) +
                         "; lag " + std::to_string(max_lag) + " ms";
      if (!h.ok()) note += "; " + h.message();
      if (!eh.ok()) note += "; " + eh.message();
      if (!h.ok() || !eh.ok()) SetError(!h.ok() ? h.message() : eh.message());
      SetNote(note);
    }
    return Status::Ok();
  }

  void Checkpoint(source::LogReader& reader) {
    std::vector<std::tuple<int64_t, std::string, decode::Position>> all;
    for (const auto& c : reader.Channels()) {
      if (c.applied.offset < 0) continue;
      const int64_t id = c.channel == ctx_.config->source.replicate_chan ? kReplicateCheckpointId : kCheckpointId;
      all.emplace_back(id, c.channel, c.applied);
    }
    Status st = StoreCheckpoints(all);
    if (!st.ok()) GetLogger("pipeline")->warn("task {}: cannot store checkpoints: {}", task_id_, st.message());
  }

  // Stores the positions that move a channel's checkpoint forward; never one behind what this
  // run stored (the applier thread stores a standby's checkpoints itself, this thread the rest).
  Status StoreCheckpoints(const std::vector<std::tuple<int64_t, std::string, decode::Position>>& positions) {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    std::vector<ChannelPosition> changed;
    for (const auto& [id, channel, pos] : positions) {
      auto it = stored_offset_.find(channel);
      if (it != stored_offset_.end() && pos.offset < it->second) continue;
      std::string data = EncodeCheckpoint(pos.offset, pos.timestamp);
      if (saved_[channel] == data) continue;
      changed.push_back(ChannelPosition{id, channel, data});
    }
    if (changed.empty()) return Status::Ok();
    RETURN_IF_ERROR(ctx_.store->PutPositions(task_id_, changed));
    for (const auto& p : changed) {
      saved_[p.channel] = p.data;
      int64_t offset = 0;
      uint64_t ts = 0;
      if (DecodeCheckpoint(p.data, &offset, &ts)) stored_offset_[p.channel] = offset;
    }
    return Status::Ok();
  }

  // The write mode the task asked for, checked against what the target is.
  StatusOr<target::WriteMode> ResolveWriteMode(target::MilvusApplier& applier) {
    const std::string& asked = scope_.spec().milvus.write_mode;
    if (asked == "api") return target::WriteMode::kApi;
    auto detected = applier.DetectWriteMode();
    if (!detected.ok()) return detected.status().WithContext("fail to connect target milvus server");
    if (asked == "replicate" && *detected == target::WriteMode::kApi) {
      return FailedPrecondition(
          "write_mode replicate needs a standby target (common.ttMsgEnabled=false), but the target runs with "
          "common.ttMsgEnabled=true and refuses ReplicateMessage; use write_mode api (or auto) for it");
    }
    GetLogger("pipeline")->info("task {}: write mode {} (asked {})", task_id_, target::WriteModeName(*detected), asked);
    return detected;
  }

  const PipelineContext ctx_;
  const std::string task_id_;
  const TaskScope scope_;
  const PipelineFailure on_failure_;
  const bool idle_ticker_;
  target::RetryPolicy retry_;
  std::chrono::seconds outage_budget_{0};
  bool pinned_ = false;  // where the task starts reading is stored (guarded by mu_)

  std::thread thread_;
  mutable std::mutex mu_;  // guards note_, last_error*, finished_, client_, source_client_, reader_, sink_,
                           // missing_users_,
                           // failed_change_; with cv_, the stop waits
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  bool finished_ = false;                    // the thread is done with the target
  target::MilvusClient* client_ = nullptr;   // while the thread uses it
  target::MilvusClient* source_client_ = nullptr;  // likewise (sourceConfig.milvus)
  source::LogReader* reader_ = nullptr;    // while reading (its status calls are thread-safe)
  ChangeApplier* sink_ = nullptr;          // while applying (its status calls are thread-safe)
  BackfillEngine* backfill_ = nullptr;     // while reading (Request and Progress are thread-safe)
  std::vector<std::string> missing_users_;  // the last sink's, once it is gone
  std::optional<FailedChange> failed_change_;
  std::string note_;
  std::string last_error_;
  int64_t last_error_ms_ = 0;
  std::mutex checkpoint_mu_;                   // guards saved_ and stored_offset_
  std::map<std::string, std::string> saved_;  // last stored checkpoint per channel
  std::map<std::string, int64_t> stored_offset_;  // its offset
  std::string write_mode_;                      // "api" or "replicate" once known (mu_)
};

}  // namespace

std::unique_ptr<Pipeline> TaskPipelineFactory::Create(const std::string& task_id, const TaskSpec& spec,
                                                      PipelineFailure on_failure) {
  return std::make_unique<TaskPipeline>(context_, task_id, spec, std::move(on_failure));
}

std::unique_ptr<Pipeline> TaskPipelineFactory::CreateIdleTicker(const std::string& task_id, const TaskSpec& spec) {
  if (spec.milvus.write_mode == "api" || spec.milvus.Empty()) return nullptr;
  return std::make_unique<TaskPipeline>(context_, task_id, spec, nullptr, true);
}

}  // namespace cdc::pipeline

#include "pipeline/backfill_engine.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "util/log.h"
#include "util/clock.h"

namespace cdc::pipeline {

namespace {

using Clock = std::chrono::steady_clock;

bool NotLoaded(const Status& st) {
  const std::string& m = st.message();
  return m.find("not loaded") != std::string::npos || m.find("NotLoad") != std::string::npos ||
         m.find("not load") != std::string::npos;
}

constexpr int kAttempts = 5;  // per source call, before the copy of a collection fails
constexpr size_t kRepairBatch = 1000;  // keys per `pk in [...]` read

// The primary key and the partitions a copy reads one at a time (rows name no partition when
// read), unless Milvus places the rows itself (partition key) or there is only one: then "".
struct Layout {
  std::string pk_field;
  bool varchar = false;
  std::vector<std::string> partitions;
};

StatusOr<Layout> LayoutOf(const source::CollectionMeta& meta) {
  Layout l;
  bool partition_key = false;
  for (const auto& f : meta.schema.fields()) {
    if (f.is_primary_key()) {
      l.pk_field = f.name();
      l.varchar = f.data_type() == milvus::proto::schema::DataType::VarChar;
    }
    partition_key = partition_key || f.is_partition_key();
  }
  if (l.pk_field.empty()) return Internal("no primary key in the schema of " + meta.db_name + "." + meta.name);
  if (!partition_key && meta.partitions.size() > 1) {
    for (const auto& [pid, p] : meta.partitions) l.partitions.push_back(p.name);
  } else {
    l.partitions.push_back("");
  }
  return l;
}

}  // namespace

BackfillEngine::BackfillEngine(Context ctx) : ctx_(std::move(ctx)) {
  ctx_.metrics->Describe("milvus_cdc_backfill_rows_total", Metrics::Type::kCounter,
                         "Rows of existing data copied to the target by backfill");
  ctx_.metrics->Describe("milvus_cdc_backfill_rows_estimated", Metrics::Type::kGauge,
                         "count(*) of a collection when its backfill started");
  ctx_.metrics->Describe("milvus_cdc_backfill_state", Metrics::Type::kGauge,
                         "Backfill state per collection: 0 pending, 1 copying, 2 done, -1 failed");
}

BackfillEngine::~BackfillEngine() { Stop(); }

Status BackfillEngine::Start(bool queue_in_scope) {
  ASSIGN_OR_RETURN(auto positions, ctx_.store->GetPositions(ctx_.task_id));
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : BackfillStatesOf(positions)) {
      if (s.state == "pending" || s.state == "copying") queue_.push_back(s.collection_id);
      states_[s.collection_id] = std::move(s);
    }
  }
  if (queue_in_scope) {
    for (const auto& meta : ctx_.catalog->Collections()) {
      if (ctx_.scope->CollectionInScope(meta->db_name, meta->name)) Queue(*meta);
    }
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void BackfillEngine::Stop() {
  stop_ = true;
  wake_.notify_all();
  ctx_.gate->Clear();  // wakes a Submit waiting for room; queued chunks are redone after a restart
  if (thread_.joinable()) thread_.join();
}

void BackfillEngine::Queue(const source::CollectionMeta& meta) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(meta.id);
    if (it != states_.end() && (it->second.state == "pending" || it->second.state == "copying")) return;
    BackfillState s;
    s.collection_id = meta.id;
    s.db = meta.db_name;
    s.name = meta.name;
    states_[meta.id] = s;
    queue_.push_back(meta.id);
  }
  Persist(meta.id);
  wake_.notify_all();
}

Status BackfillEngine::Request(const std::vector<std::pair<std::string, std::string>>& collections) {
  std::vector<std::shared_ptr<const source::CollectionMeta>> metas;
  for (const auto& [db, name] : collections) {
    auto meta = ctx_.catalog->CollectionByName(db, name);
    if (!meta) return NotFound("the source has no collection " + db + "." + name);
    if (!ctx_.scope->CollectionInScope(db, name)) {
      return InvalidArgument("the collection " + db + "." + name + " is not in the task's scope");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = states_.find(meta->id); it != states_.end() && it->second.state == "copying") {
      return FailedPrecondition("the backfill of " + db + "." + name + " is running; request it again when done");
    }
    metas.push_back(meta);
  }
  for (const auto& meta : metas) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      states_.erase(meta->id);  // a fresh copy
    }
    Queue(*meta);
  }
  return Status::Ok();
}

void BackfillEngine::RequestId(int64_t collection_id) {
  if (auto meta = ctx_.catalog->CollectionById(collection_id)) Queue(*meta);
}

StatusOr<int64_t> BackfillEngine::IdOf(const std::string& db, const std::string& name) const {
  auto meta = ctx_.catalog->CollectionByName(db, name);
  if (!meta) return NotFound("the source has no collection " + db + "." + name);
  if (!ctx_.scope->CollectionInScope(db, name)) {
    return InvalidArgument("the collection " + db + "." + name + " is not in the task's scope");
  }
  return meta->id;
}

void BackfillEngine::RepairKeys(int64_t collection_id, std::vector<target::PkValue> keys,
                                std::function<void(const Status&)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    repairs_.push_back(Repair{collection_id, std::move(keys), std::move(done)});
  }
  wake_.notify_all();
}

void BackfillEngine::Run() {
  for (;;) {
    int64_t id = 0;
    std::optional<Repair> repair;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stop_.load() || !queue_.empty() || !repairs_.empty(); });
      if (stop_) break;
      if (!repairs_.empty()) {  // short: before a long copy
        repair = std::move(repairs_.front());
        repairs_.pop_front();
      } else {
        id = queue_.front();
        queue_.pop_front();
      }
    }
    if (repair) {
      Status st = RepairChunks(*repair);
      if (!st.ok() && repair->done) repair->done(st);
    } else {
      Copy(id);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& r : repairs_) {
    if (r.done) r.done(Unavailable("the task stopped before the repair ran"));
  }
  repairs_.clear();
}

// Per batch of keys: one window opened before the reads covers the deletes; each partition's
// read is a chunk of its own; the last chunk of the last batch reports to `done`.
Status BackfillEngine::RepairChunks(Repair& job) {
  auto meta = ctx_.catalog->CollectionById(job.collection_id);
  if (!meta) return NotFound("the collection was dropped on the source");
  if (!ctx_.source) return FailedPrecondition("repair reads the source through its own API: set sourceConfig.milvus.uri");
  ASSIGN_OR_RETURN(Layout layout, LayoutOf(*meta));
  target::CollectionReader reader(ctx_.source->client(), meta->db_name, meta->name, layout.pk_field, layout.varchar);
  auto failed = std::make_shared<Status>();
  auto remaining = std::make_shared<std::atomic<size_t>>(1);  // released after the last submit
  auto finish = [failed, remaining, done = job.done](const Status& st) {
    if (!st.ok() && failed->ok()) *failed = st;
    if (--*remaining == 0 && done) done(*failed);
  };
  for (size_t start = 0; start < job.keys.size() && !stop_; start += kRepairBatch) {
    std::vector<target::PkValue> batch(job.keys.begin() + static_cast<long>(start),
                                       job.keys.begin() + static_cast<long>(std::min(job.keys.size(), start + kRepairBatch)));
    ASSIGN_OR_RETURN(uint64_t g0, ctx_.source->AllocTimestamp());
    const uint64_t delete_window = ctx_.gate->OpenWindow(meta->id, g0);
    std::set<std::string> found;
    uint64_t h = g0;
    for (const auto& partition : layout.partitions) {
      ASSIGN_OR_RETURN(uint64_t g, ctx_.source->AllocTimestamp());
      const uint64_t window = ctx_.gate->OpenWindow(meta->id, g);
      target::ReadOptions options;
      options.guarantee_ts = g;
      if (!partition.empty()) options.partitions = {partition};
      auto page = reader.ReadKeys(batch, options);
      if (!page.ok()) {
        ctx_.gate->CloseWindow(window);
        ctx_.gate->CloseWindow(delete_window);
        return page.status();
      }
      ASSIGN_OR_RETURN(h, ctx_.source->AllocTimestamp());
      for (const auto& k : page->keys) found.insert(GateKey(k));
      BackfillChunk chunk{meta->id, partition, window, g, h, std::move(*page), {}, layout.pk_field, nullptr};
      ++*remaining;
      chunk.done = [finish](const Status& st, int64_t) { finish(st); };
      if (!ctx_.gate->Submit(std::move(chunk), stop_)) {
        ctx_.gate->CloseWindow(delete_window);
        return Unavailable("the task stopped during the repair");
      }
    }
    BackfillChunk deletes{meta->id, "", delete_window, g0, h, {}, {}, layout.pk_field, nullptr};
    for (auto& k : batch) {
      if (!found.count(GateKey(k))) deletes.deletes.push_back(std::move(k));
    }
    ++*remaining;
    deletes.done = [finish](const Status& st, int64_t) { finish(st); };
    if (!ctx_.gate->Submit(std::move(deletes), stop_)) return Unavailable("the task stopped during the repair");
  }
  if (stop_) return Unavailable("the task stopped during the repair");
  finish(Status::Ok());
  return Status::Ok();
}

void BackfillEngine::Persist(int64_t collection_id) {
  std::lock_guard<std::mutex> persist(persist_mu_);  // one writer at a time, always the newest state
  BackfillState s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(collection_id);
    if (it == states_.end()) return;
    s = it->second;
  }
  Status st = ctx_.store->PutPositions(ctx_.task_id, {EncodeBackfillState(s)});
  if (!st.ok()) GetLogger("backfill")->warn("task {}: cannot store the backfill state of {}.{}: {}", ctx_.task_id, s.db,
                                            s.name, st.message());
  const Labels labels{{"task_id", ctx_.task_id}, {"db", s.db}, {"collection", s.name}};
  const double code = s.state == "pending" ? 0 : s.state == "copying" ? 1 : s.state == "done" ? 2 : -1;
  ctx_.metrics->Set("milvus_cdc_backfill_state", labels, code);
  if (s.rows_estimated >= 0) ctx_.metrics->Set("milvus_cdc_backfill_rows_estimated", labels, static_cast<double>(s.rows_estimated));
}

void BackfillEngine::Fail(int64_t collection_id, const std::string& reason) {
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& s = states_[collection_id];
    if (s.state == "done" || s.state == "failed") return;
    s.state = "failed";
    s.reason = reason;
    s.finished_ms = NowMs();
    name = s.db + "." + s.name;
  }
  GetLogger("backfill")->error("task {}: backfill of {} failed: {}", ctx_.task_id, name, reason);
  Persist(collection_id);
}

void BackfillEngine::Copy(int64_t id) {
  BackfillState state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = states_[id];
  }
  if (state.state != "pending" && state.state != "copying") return;
  auto meta = ctx_.catalog->CollectionById(id);
  if (!meta) return Fail(id, "the collection was dropped on the source");
  if (!ctx_.scope->CollectionInScope(meta->db_name, meta->name)) return Fail(id, "the collection left the task's scope");
  if (!ctx_.source) {
    return Fail(id, "backfill reads the source through its own API: set sourceConfig.milvus.uri (and token) in "
                    "the server's configuration");
  }
  Status st = CopyPartitions(std::move(state), *meta);
  if (!st.ok() && !stop_) {
    Fail(id, NotLoaded(st) ? "the source collection " + meta->db_name + "." + meta->name +
                                 " is not loaded (Milvus reads only loaded collections): load it on the source, then "
                                 "request a backfill of it. Source said: " + st.message()
                           : st.message());
  }
}

Status BackfillEngine::CopyPartitions(BackfillState state, const source::CollectionMeta& meta) {
  ASSIGN_OR_RETURN(Layout layout, LayoutOf(meta));
  const std::vector<std::string>& partitions = layout.partitions;
  target::CollectionReader reader(ctx_.source->client(), meta.db_name, meta.name, layout.pk_field, layout.varchar);

  // Retries a source call a few times (a query node busy or restarting) before giving up.
  auto retry = [this](auto call) -> decltype(call()) {
    decltype(call()) got = call();
    for (int attempt = 1; !got.ok() && attempt < kAttempts && !stop_ && !NotLoaded(got.status()); ++attempt) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::seconds(attempt), [this] { return stop_.load(); });
      lock.unlock();
      got = call();
    }
    return got;
  };

  // The estimate and the key bound are read at one source time: a Strong read would wait for
  // the next time tick on every probe.
  target::ReadOptions at_start;
  if (state.rows_estimated < 0 || !state.upper_pk) {
    ASSIGN_OR_RETURN(at_start.guarantee_ts, retry([&] { return ctx_.source->AllocTimestamp(); }));
  }
  if (state.rows_estimated < 0) {
    ASSIGN_OR_RETURN(state.rows_estimated, retry([&] { return reader.Count(std::nullopt, std::nullopt, at_start); }));
  }
  if (!state.upper_pk) {
    ASSIGN_OR_RETURN(auto max, retry([&] { return reader.MaxKey(at_start); }));
    if (!max) {  // empty: rows written from now on come with the stream
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto& s = states_[meta.id];
        s.state = "done";
        s.rows_estimated = state.rows_estimated;
        s.started_ms = s.finished_ms = NowMs();
      }
      Persist(meta.id);
      return Status::Ok();
    }
    state.upper_pk = std::visit([](const auto& v) { return std::variant<int64_t, std::string>(v); }, *max);
  }
  state.state = "copying";
  if (state.started_ms == 0) state.started_ms = NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    states_[meta.id] = state;
  }
  Persist(meta.id);
  GetLogger("backfill")->info("task {}: backfill of {}.{} {} ({} rows on the source)", ctx_.task_id, meta.db_name,
                              meta.name, state.rows_copied > 0 ? "continues" : "starts", state.rows_estimated);

  const std::optional<target::PkValue> upto =
      std::visit([](const auto& v) { return target::PkValue(v); }, *state.upper_pk);
  int64_t limit = 2048;
  for (size_t p = static_cast<size_t>(state.partition_index); p < partitions.size(); ++p) {
    std::optional<target::PkValue> last;
    if (static_cast<int>(p) == state.partition_index && state.last_pk) {
      last = std::visit([](const auto& v) { return target::PkValue(v); }, *state.last_pk);
    }
    target::ReadOptions options;
    if (!partitions[p].empty()) options.partitions = {partitions[p]};
    while (!stop_) {
      // G: how far the stream has applied the collection, so the read (which waits until the
      // source has made G visible) does not wait for the next time tick; a fresh source time
      // before the stream has applied anything.
      auto [window, g] = ctx_.gate->OpenWindowAtApplied(meta.id, meta.pchannels);
      if (window == 0) {
        ASSIGN_OR_RETURN(g, retry([&] { return ctx_.source->AllocTimestamp(); }));
        window = ctx_.gate->OpenWindow(meta.id, g);
      }
      options.guarantee_ts = g;
      auto page = retry([&] { return reader.ReadRange(last, upto, limit, options); });
      if (!page.ok() || page->keys.empty()) {
        ctx_.gate->CloseWindow(window);
        if (!page.ok()) return page.status();
        break;  // this partition is copied
      }
      ASSIGN_OR_RETURN(uint64_t h, retry([&] { return ctx_.source->AllocTimestamp(); }));
      // Aim at max_chunk_bytes per chunk: Milvus caps a page at 16384 rows.
      const size_t bytes = std::max<size_t>(1, page->bytes);
      limit = std::clamp<int64_t>(static_cast<int64_t>(static_cast<double>(page->keys.size()) *
                                                       static_cast<double>(ctx_.max_chunk_bytes) / static_cast<double>(bytes)),
                                  64, target::CollectionReader::kMaxPageRows);
      last = page->keys.back();
      BackfillChunk chunk;
      chunk.collection_id = meta.id;
      chunk.partition = partitions[p];
      chunk.window = window;
      chunk.g = g;
      chunk.h = h;
      chunk.rows = std::move(*page);
      const int index = static_cast<int>(p);
      const target::PkValue hi = *last;
      chunk.done = [this, id = meta.id, index, hi](const Status& st, int64_t rows) {
        Acknowledged(id, index, hi, st, rows);
      };
      if (!ctx_.gate->Submit(std::move(chunk), stop_)) return Status::Ok();
    }
    if (stop_) return Status::Ok();
    // A marker behind the partition's chunks: the next partition starts from its beginning.
    BackfillChunk marker;
    marker.collection_id = meta.id;
    const bool last_partition = p + 1 == partitions.size();
    marker.done = [this, id = meta.id, next = static_cast<int>(p + 1), last_partition](const Status& st, int64_t) {
      if (!st.ok()) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto& s = states_[id];
        if (s.state != "copying") return;
        s.partition_index = next;
        s.last_pk.reset();
        if (last_partition) {
          s.state = "done";
          s.finished_ms = NowMs();
          GetLogger("backfill")->info("task {}: backfill of {}.{} done: {} rows in {} s", ctx_.task_id, s.db, s.name,
                                      s.rows_copied, (s.finished_ms - s.started_ms) / 1000);
        }
      }
      Persist(id);
    };
    if (!ctx_.gate->Submit(std::move(marker), stop_)) return Status::Ok();
  }
  return Status::Ok();
}

void BackfillEngine::Acknowledged(int64_t id, int partition_index, const target::PkValue& hi, const Status& st,
                                  int64_t rows) {
  if (!st.ok()) return Fail(id, "writing to the target: " + st.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& s = states_[id];
    if (s.state != "copying") return;
    s.partition_index = partition_index;
    if (const auto* i = std::get_if<int64_t>(&hi)) {
      s.last_pk = *i;
    } else {
      s.last_pk = std::get<std::string>(hi);
    }
    s.rows_copied += rows;
    auto& samples = rates_[id].samples;
    samples.emplace_back(Clock::now(), s.rows_copied);
    while (samples.size() > 2 && Clock::now() - samples.front().first > std::chrono::seconds(10)) samples.pop_front();
    ctx_.metrics->Add("milvus_cdc_backfill_rows_total", {{"task_id", ctx_.task_id}, {"db", s.db}, {"collection", s.name}},
                      static_cast<double>(rows));
  }
  Persist(id);
  LogProgress();
}

void BackfillEngine::LogProgress() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  if (now - last_log_ < std::chrono::seconds(10)) return;
  last_log_ = now;
  for (const auto& [id, s] : states_) {
    if (s.state != "copying") continue;
    GetLogger("backfill")->info("task {}: backfill of {}.{}: {} of ~{} rows copied", ctx_.task_id, s.db, s.name,
                                s.rows_copied, s.rows_estimated);
  }
}

std::vector<BackfillProgress> BackfillEngine::Progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BackfillProgress> out;
  for (const auto& [id, s] : states_) {
    BackfillProgress p{s.db, s.name, s.state, s.reason, s.rows_copied, s.rows_estimated, 0};
    if (auto r = rates_.find(id); r != rates_.end() && s.state == "copying" && r->second.samples.size() >= 2) {
      const auto& first = r->second.samples.front();
      const auto& last = r->second.samples.back();
      const double secs = std::chrono::duration<double>(last.first - first.first).count();
      if (secs > 0) p.rows_per_s = static_cast<double>(last.second - first.second) / secs;
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace cdc::pipeline
